"""MXM slice: ``mxm_planes`` weight-stationary ``mxm_size x mxm_size`` int8 MAC arrays with
int32 accumulators, fed by the load, compute and drain sequencers (docs/architecture.md section
7a, ISA v3)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory
from amaranth.lib.wiring import In

from opentsp import isa
from opentsp.hdl.layouts import select_stream
from opentsp.hdl.mxm_sequencer import build_install, build_sequencer, delayed
from opentsp.hdl.slice import FunctionalSlice

__all__ = ["MxmSlice"]

_ACC_BITS = 32
_GROUP = isa.INT32_GROUP


class MxmSlice(FunctionalSlice):
    """The MXM slice, with the ports of every slice and ``halt``.

    ``N = mxm_size`` lanes (columns ``i``) take part; they sit on the first
    ``span = isa.mxm_span(config)`` superlanes. On superlane 0 the sequencers
    (:mod:`~opentsp.hdl.mxm_sequencer`) turn the queue's ``lw``/``abc``/``acc`` into one element
    per cycle each, and ``halt`` (the queue is in or past its ``end`` slot) stops them; every
    element and every ``iw`` reaches superlane ``k`` ``k`` cycles later, which runs it on its
    own lanes, for plane ``p`` of ``P = mxm_planes``:

    * load element (first row ``r0``, plane ``p``, streams ``s .. s+R-1``): back weights
      ``B_p[r0 + r][i] <= S_(s+r)[i]`` (registers; rows ``>= N`` ignored);
    * ``iw p``: front weights ``F_p[j][i] <= B_p[j][i]`` for every row ``j`` (registers);
    * compute element (accumulator ``a``, stream ``s``, ``add``), on every plane:
      ``q_k[j] = q_(k-1)[j] + sum_i F_p[j][i] * s[i]``, int8 x int8 -> int16 products summed in
      int32 (wrapping). ``q_k`` goes into a register for superlane ``k + 1``'s next cycle; the
      last superlane of the span writes ``acc_p[a][j] = (add ? acc_p[a][j] : 0) + q[j]`` at
      the end of its cycle (``a`` beyond ``mxm_accumulators``: no write);
    * drain element (accumulator ``a``, group ``dst``), on every plane: reads ``acc_p[a][j]``
      for its lanes (0 for ``j >= N``, for ``a`` beyond ``mxm_accumulators`` and for
      accumulators not written since ``clear``), registers it and drives the int32 group
      ``dst + 4p`` (byte ``b`` on stream ``dst + 4p + b``) so that it loads at the end of the
      next cycle.

    Accumulators: per plane one :class:`~amaranth.lib.memory.Memory` per superlane of the span
    (its lanes, ``mxm_accumulators`` deep) with asynchronous read ports (one for the drain, one
    for the compute read-modify-write) and one write port, plus a valid bit per accumulator so
    that ``clear`` empties them in one cycle.

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    def __init__(self, config):
        super().__init__(config, {"halt": In(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        if isa.OPS_BY_NAME["acc"].latency != 1:
            raise ValueError(f"the MXM implements acc latency 1, not "
                             f"{isa.OPS_BY_NAME['acc'].latency!r}")
        lines = {kind: delayed(m, self, build_sequencer(m, self, kind, self.halt), kind)
                 for kind in ("lw", "abc", "acc")}
        installs = delayed(m, self, build_install(m, self), "iw")

        cleared = []        # registers that clear empties
        planes = [self._weights(p, cleared) for p in range(cfg.mxm_planes)]
        valid = [Signal(cfg.mxm_accumulators, name=f"acc_valid_{p}")
                 for p in range(cfg.mxm_planes)]
        cleared += valid
        banks = [self._accumulator_banks(m, p) for p in range(cfg.mxm_planes)]

        chains = [None] * cfg.mxm_planes    # q_(k-1) per plane, from the previous superlane
        for k in range(cfg.superlanes):
            self._drain(m, k, lines["acc"][k], banks, valid, cleared)
            lanes = self._lanes_of(k)
            if not lanes:
                continue        # superlanes beyond the span only drain (zeros)
            self._load_weights(m, k, lanes, lines["lw"][k], installs[k], planes)
            compute = lines["abc"][k]
            x = select_stream(m, self.e_in, self.w_in, compute.s.dir, compute.s.id, k, cfg,
                              f"x_{k}")
            xs = [x[i - lanes.start].as_signed() for i in lanes]
            for p, (_, front) in enumerate(planes):
                partial = self._multiply(m, k, p, lanes, xs, front, chains[p])
                if k < isa.mxm_span(cfg) - 1:
                    chains[p] = self._chain(m, k, p, partial, cleared)
                else:
                    self._accumulate(m, p, compute, partial, banks[p], valid[p])

        with m.If(self.clear):      # last, so that it wins over every update above
            m.d.sync += [reg.eq(0) for reg in cleared]
        return m

    def _lanes_of(self, k):
        """The MAC-array lanes (columns ``i``) on superlane ``k``: its own lanes below
        ``mxm_size``, none beyond the span."""
        lps = self._config.lanes_per_superlane
        return range(k * lps, min((k + 1) * lps, self._config.mxm_size))

    def _weights(self, p, cleared):
        """Create plane ``p``'s back and front weight registers ``[row j][column i]`` (int8,
        added to ``cleared``); :meth:`_load_weights` writes them."""
        n = self._config.mxm_size
        back = [[Signal(signed(8), name=f"back_{p}_{j}_{i}") for i in range(n)]
                for j in range(n)]
        front = [[Signal(signed(8), name=f"front_{p}_{j}_{i}") for i in range(n)]
                 for j in range(n)]
        cleared += [r for row in back + front for r in row]
        return back, front

    def _accumulator_banks(self, m, p):
        """Add plane ``p``'s accumulator memories ``acc_p_k``, one per superlane ``k`` of the
        span (its lanes' int32 values side by side, ``mxm_accumulators`` deep).

        Returns
        -------
        list of tuple
            Per bank: the drain's read port, the compute's read port (both asynchronous: data
            in the cycle of the address) and the write port (writes at the end of the cycle).
        """
        banks = []
        for k in range(isa.mxm_span(self._config)):
            width = _ACC_BITS * len(self._lanes_of(k))
            mem = memory.Memory(shape=unsigned(width), depth=self._config.mxm_accumulators,
                                init=[])
            m.submodules[f"acc_{p}_{k}"] = mem
            banks.append((mem.read_port(domain="comb"), mem.read_port(domain="comb"),
                          mem.write_port()))
        return banks

    def _drain(self, m, k, element, banks, valid, cleared):
        """A drain element on superlane ``k``: in its cycle read accumulator ``index`` of
        every plane (zero when absent, not valid or beyond the span) into the stage register
        ``out_k``, which drives the groups ``dst + 4p`` in the next cycle
        (:meth:`_drive_groups`)."""
        cfg = self._config
        lps = cfg.lanes_per_superlane
        lanes = self._lanes_of(k)
        stage_layout = data.StructLayout({
            "valid": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS),
            "lanes": data.ArrayLayout(data.ArrayLayout(unsigned(_ACC_BITS), lps),
                                      cfg.mxm_planes),
        })
        stage = Signal(stage_layout, name=f"out_{k}")
        cleared.append(stage.valid)
        m.d.sync += [stage.valid.eq(element.valid & (element.dst.id < cfg.streams)),
                     stage.dir.eq(element.dst.dir), stage.id.eq(element.dst.id)]
        here = element.index < cfg.mxm_accumulators
        for p in range(cfg.mxm_planes):
            if lanes:
                rd_out = banks[p][k][0]
                m.d.comb += rd_out.addr.eq(element.index)
                hit = here & _is_valid(valid[p], element.index)
                for offset, _ in enumerate(lanes):
                    value = rd_out.data.word_select(offset, _ACC_BITS)
                    m.d.sync += stage.lanes[p][offset].eq(Mux(hit, value, 0))
            for offset in range(len(lanes), lps):
                m.d.sync += stage.lanes[p][offset].eq(0)
        self._drive_groups(m, k, stage)

    def _drive_groups(self, m, k, stage):
        """Drive the int32 groups of ``stage`` (an ``out_k`` register) on superlane ``k``,
        combinationally: byte ``b`` of plane ``p``'s lanes onto stream ``id + 4p + b``, loading
        at the end of this cycle."""
        cfg = self._config
        width = _GROUP * cfg.mxm_planes
        for s in range(cfg.streams):
            delta = (Const(s, isa.STREAM_BITS + 1) - stage.id)[:isa.STREAM_BITS + 1]
            hit = stage.valid & (stage.id <= s) & (delta < width)
            m.d.comb += [
                self.e_we[s][k].eq(hit & (stage.dir == int(isa.Dir.E))),
                self.w_we[s][k].eq(hit & (stage.dir == int(isa.Dir.W))),
            ]
            for j in range(cfg.lanes_per_superlane):
                planes = Cat(*(stage.lanes[p][j] for p in range(cfg.mxm_planes)))
                value = planes.word_select(delta[:max((width - 1).bit_length(), 1)], 8)
                m.d.comb += [self.e_wdata[s][k][j].eq(value),
                             self.w_wdata[s][k][j].eq(value)]

    def _load_weights(self, m, k, lanes, load, install, planes):
        """A load element and an ``iw`` on the columns ``lanes`` of superlane ``k``: the back
        weights of rows ``index .. index + R - 1`` of the element's plane take the streams
        ``s .. s + R - 1`` (int8), and every front weight of the installed plane takes its
        back weight (``B`` as at the start of the cycle), at the end of the cycle."""
        cfg = self._config
        rows = []
        for r in range(cfg.mxm_load_rows):
            x = select_stream(m, self.e_in, self.w_in, load.s.dir, load.s.id + r, k, cfg,
                              f"w_{k}_{r}")
            rows.append([x[i - lanes.start].as_signed() for i in lanes])
        for p, (back, front) in enumerate(planes):
            here = load.valid & (load.plane == p)
            for j in range(cfg.mxm_size):
                for r in range(min(cfg.mxm_load_rows, j + 1)):
                    with m.If(here & (load.index == j - r)):
                        m.d.sync += [back[j][i].eq(rows[r][o]) for o, i in enumerate(lanes)]
            with m.If(install.valid & (install.plane == p)):
                m.d.sync += [front[j][i].eq(back[j][i])
                             for j in range(cfg.mxm_size) for i in lanes]

    def _multiply(self, m, k, p, lanes, xs, front, chain):
        """A compute element on superlane ``k``, plane ``p``, combinational in its cycle: per
        row ``j`` the int32 partial sum ``p_P_K_J`` of this superlane's products plus ``chain``
        (the previous superlane's partial sums, or ``None`` on the first)."""
        partial = []
        for j in range(self._config.mxm_size):
            products = [front[j][i] * xs[o] for o, i in enumerate(lanes)]  # signed 16
            total = products[0]
            for product in products[1:]:
                total = total + product
            if chain is not None:
                total = total + chain[j]
            value = Signal(signed(_ACC_BITS), name=f"p_{p}_{k}_{j}")
            m.d.comb += value.eq(total)     # sign-extends, or wraps to 32 bits
            partial.append(value)
        return partial

    def _chain(self, m, k, p, partial, cleared):
        """Register superlane ``k``'s partial sums of plane ``p`` (``chain_P_K_J``, added to
        ``cleared``) for superlane ``k + 1``, which runs the same element one cycle later."""
        chain = [Signal(signed(_ACC_BITS), name=f"chain_{p}_{k}_{j}")
                 for j in range(self._config.mxm_size)]
        cleared += chain
        m.d.sync += [reg.eq(value) for reg, value in zip(chain, partial, strict=True)]
        return chain

    def _accumulate(self, m, p, compute, partial, banks, valid):
        """A compute element on the last superlane of the span, plane ``p``: read-modify-write
        of its accumulator in every bank, ``acc[a] = (add ? acc[a] : 0) + q``, written with
        its valid bit at the end of the cycle."""
        write = Signal(name=f"acc_write_{p}")
        add = Signal(name=f"acc_add_{p}")
        index = compute.index
        m.d.comb += [write.eq(compute.valid & (index < self._config.mxm_accumulators)),
                     add.eq(compute.add & _is_valid(valid, index))]
        for bank, (_, rd_old, wr) in enumerate(banks):
            new = []
            for offset, j in enumerate(self._lanes_of(bank)):
                old = rd_old.data.word_select(offset, _ACC_BITS).as_signed()
                new.append((Mux(add, old, 0) + partial[j])[:_ACC_BITS])
            m.d.comb += [rd_old.addr.eq(index), wr.addr.eq(index),
                         wr.data.eq(Cat(*new)), wr.en.eq(write)]
        for a in range(self._config.mxm_accumulators):
            with m.If(write & (index == a)):
                m.d.sync += valid[a].eq(1)


def _is_valid(valid, addr):
    """1 when accumulator ``addr`` holds a value: its bit of ``valid`` (0 beyond)."""
    return Cat(*(valid[a] & (addr == a) for a in range(len(valid)))).any()
