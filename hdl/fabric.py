"""The stream fabric: every position's eastward and westward output stream registers."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from opentsp import isa
from opentsp.config import Config
from opentsp.hdl.layouts import bundle_layout, mask_layout

__all__ = ["StreamFabric"]


class StreamFabric(wiring.Component):
    """Output stream registers ``E[p][s]`` and ``W[p][s]`` of every floorplan position.

    Every cycle, for each position ``p``, stream ``s`` and superlane ``k``::

        E[p][s][k] <= e_we[p][s][k] ? e_wdata[p][s][k] : E[p-1][s][k]     (E[-1] = 0)
        W[p][s][k] <= w_we[p][s][k] ? w_wdata[p][s][k] : W[p+1][s][k]     (W[P] = 0)

    so a value moves one position per cycle and a write replaces the value arriving from
    upstream. The slice at ``q`` reads ``e[q-1]`` and ``w[q+1]``. A position whose slice does
    not write in a cycle is a pass-through stage.

    Parameters
    ----------
    config : Config
        Chip parameters; the number of positions is ``len(isa.floorplan(config))``.

    Attributes
    ----------
    clear : In(1)
        Soft reset: every stream register is zero after a cycle with ``clear`` high.
    e_we, w_we : In(ArrayLayout(mask, positions))
        Per position, stream and superlane: load the slice's value instead of the upstream one.
    e_wdata, w_wdata : In(ArrayLayout(bundle, positions))
        Values written by each position's slice.
    e, w : Out(ArrayLayout(bundle, positions))
        The registers themselves (latency 1 from ``*_we``/``*_wdata`` and from upstream).
    """

    def __init__(self, config):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        self._config = config
        self._positions = len(isa.floorplan(config))
        bundles = data.ArrayLayout(bundle_layout(config), self._positions)
        masks = data.ArrayLayout(mask_layout(config), self._positions)
        super().__init__({
            "clear": In(1),
            "e_we": In(masks), "w_we": In(masks),
            "e_wdata": In(bundles), "w_wdata": In(bundles),
            "e": Out(bundles), "w": Out(bundles),
        })

    @property
    def config(self):
        return self._config

    @property
    def positions(self):
        return self._positions

    def elaborate(self, platform):
        """One register per position, stream, superlane and direction, each its own signal
        (``e_P_S_K``, ``w_P_S_K``) driving its slice of ``e``/``w``: assigned into the wide
        outputs directly, every register update became a concatenation of the whole bundle
        array (21,504 bits on ``medium``), which cost Verilator a third of its time there.
        Each position's outputs are driven by one statement: Amaranth checks every statement
        bit by bit against the whole signal it drives, so one statement per register took a
        fifth of ``medium``'s elaboration."""
        m = Module()
        cfg = self._config
        last = self._positions - 1
        for p in range(self._positions):
            for name, out, we, wdata, up in (
                ("e", self.e, self.e_we, self.e_wdata, p - 1 if p > 0 else None),
                ("w", self.w, self.w_we, self.w_wdata, p + 1 if p < last else None),
            ):
                regs = []
                for s in range(cfg.streams):
                    for k in range(cfg.superlanes):
                        reg = Signal(out[p][s][k].shape(), name=f"{name}_{p}_{s}_{k}")
                        upstream = out[up][s][k] if up is not None else 0
                        m.d.sync += reg.eq(
                            Mux(self.clear, 0, Mux(we[p][s][k], wdata[p][s][k], upstream)))
                        regs.append(reg)
                m.d.comb += out[p].eq(Cat(*regs))
        return m
