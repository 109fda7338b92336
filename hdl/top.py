"""The chip: queues, slices, stream fabric, run control and the host port."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import hostmap, isa
from opentsp.config import Config
from opentsp.hdl.c2c import EAST, WEST, C2cSlice
from opentsp.hdl.fabric import StreamFabric
from opentsp.hdl.host_port import HostPort
from opentsp.hdl.icu import InstructionQueue, NotifyBus
from opentsp.hdl.mem import MemSlice
from opentsp.hdl.mxm import MxmSlice
from opentsp.hdl.sxm import SxmSlice
from opentsp.hdl.vxm import VxmSlice

__all__ = ["Chip", "link_ports", "link_port_prefix"]

_REGION_BITS = 32 - hostmap.REGION_SHIFT

# The slice classes by kind, but for MEM slices, which also connect to the host port.
_SLICE_UNITS = {
    isa.SliceKind.VXM: VxmSlice,
    isa.SliceKind.MXM: MxmSlice,
    isa.SliceKind.SXM: SxmSlice,
}


def link_port_prefix(side, link):
    """The prefix of the top-level ports of link ``link`` of the C2C slice ``side`` (``WEST``
    or ``EAST``, or its name ``"C2C_W"``/``"C2C_E"``): ``c2c_w0_``."""
    if side in ("C2C_W", "C2C_E"):
        side = WEST if side == "C2C_W" else EAST
    return f"c2c_{'we'[side]}{link}_"


def link_ports(config):
    """Names of the chip's top-level link ports: per link, ``tx_valid``, ``tx_data``,
    ``rx_valid``, ``rx_data`` after its prefix (none without links)."""
    return [link_port_prefix(side, link) + port
            for side in (WEST, EAST) for link in range(config.c2c_links)
            for port in ("tx_valid", "tx_data", "rx_valid", "rx_data")]


class Chip(wiring.Component):
    """The whole TSP with a flat host port (the Verilog top level ``tsp_top``).

    Run control
        Writing ``CTRL_START`` to ``REG_CTRL`` while not running clears the run state (as
        ``CTRL_RESET`` does) and sets ``running`` from the next cycle on, which is cycle 0: every
        queue issues its first slot in it. ``CTRL_RESET`` clears the run state (stream
        registers, queue sequencers, stagger lines, pipeline registers, ``done``, the cycle
        counter) and stops the chip; queue and memory contents are kept. The slices' run state
        is held clear in every cycle in which the chip is not running (a registered ``clear``
        that is ``~running``): in the start cycle, as the start requires, and, after a reset
        mid-run, from the next cycle, with the commits and ECC reports due then dropped, so
        that nothing issued in the reset's cycle lands, as if it were cleared in that cycle.
    Done
        With ``E`` the cycle in which the last queue is in its ``end`` slot, the chip runs
        through cycle ``E + superlanes - 1 + isa.DRAIN - 1`` and then stops: ``running`` falls,
        ``done`` rises, and ``REG_CYCLES`` reads ``E + superlanes - 1 + isa.DRAIN`` (the counter
        counts the cycles with ``running`` high).
    Host port
        Decoded as in :mod:`opentsp.hostmap`. A write (``host_wen``) takes effect at the end of
        its cycle; a read (``host_ren``) answers in the next cycle on ``host_rdata`` with
        ``host_rvalid`` high. Queue and memory accesses are ignored (reads return 0) while
        running. Queue entries are write-only (they read as 0); writes to an index
        ``>= queue_depth`` are ignored. Memory word addresses wrap modulo ``mem_words``;
        superlanes and chunks that do not exist are not written and read as 0.
    ECC (section 6b)
        ``REG_ECC_CORRECTED`` and ``REG_ECC_DETECTED`` count (saturating) the code words the
        MEM slices' decoders corrected and found uncorrectable in reads and gathers of the
        run; the first uncorrectable one (earliest cycle, then lowest memory, then lowest lane)
        sets ``STATUS_ECC_ERROR`` and latches ``REG_ECC_FIRST_PLACE`` (``hostmap.ecc_place``)
        and ``REG_ECC_FIRST_CYCLE`` (the cycle of its SRAM read). All are cleared by
        ``CTRL_START`` and ``CTRL_RESET``. Each of the ``hostmap.INJECT_ENTRIES`` injection
        entries (cycle, place, 13-bit mask; read/write at any time, kept over runs, 0 after
        ``rst``) fires at the end of run cycle ``cycle`` in the memory its place names.

    Links (section 7d, on a configuration with ``c2c_links > 0``)
        Every link of the C2C slices is a top-level port group named after its slice and
        number, ``c2c_{side}{link}_`` with ``side`` ``w`` (``C2C_W``) or ``e`` (``C2C_E``):
        ``c2c_w0_tx_valid`` (Out 1) and ``c2c_w0_tx_data`` (Out ``8 * c2c_bytes``, the beat's
        first byte in bits 7..0) are what link ``C2C_W.0`` sends, ``c2c_w0_rx_valid`` (In 1) and
        ``c2c_w0_rx_data`` what it receives (:func:`link_ports` lists them). A cable between two
        chips joins one's ``tx`` to the other's ``rx``, each way, delaying every beat by the
        link's latency. A frame's last beat received in cycle ``c`` is in the buffer from
        ``c + 1``. The C2C slices' notify joins the notify bus; a deskew's mark loads the cycle
        counter (``REG_CYCLES`` reads the chip's time, the sender's after a deskew). A frame
        still leaving when the chip is done goes out whole (a start or reset empties the
        transmitters, not the end of the run).
        ``REG_C2C_CRC``, ``REG_C2C_ERRORS`` count (saturating) the slices' errors of the run,
        the first of them (earliest cycle, then ``C2C_W`` before ``C2C_E``, lowest link, lowest
        kind) sets ``STATUS_C2C_ERROR`` and latches ``REG_C2C_FIRST`` and
        ``REG_C2C_FIRST_CYCLE`` (the chip's time of the error); all are cleared by
        ``CTRL_START`` and ``CTRL_RESET``, as are the receive buffers and transmitters.

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    def __init__(self, config):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        if config.superlanes - 1 + isa.DRAIN < 1:
            raise ValueError(f"superlanes - 1 + DRAIN must be at least 1, not "
                             f"{config.superlanes - 1 + isa.DRAIN!r}")
        self._config = config
        members = {
            "host_addr": In(32), "host_wdata": In(32), "host_wen": In(1), "host_ren": In(1),
            "host_rdata": Out(32), "host_rvalid": Out(1), "done": Out(1), "running": Out(1),
        }
        width = 8 * config.c2c_bytes
        for name in link_ports(config):
            members[name] = ((Out if "_tx_" in name else In)
                             (1 if name.endswith("_valid") else width))
        super().__init__(members)

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        """Build the host port, then the fabric, queues and slices, then the registers.

        The order of the steps is the order of the statements in the netlist; keep it.
        """
        m = Module()
        cfg = self._config
        host = HostPort(m, self, cfg)
        m.submodules.fabric = fabric = StreamFabric(cfg)
        m.d.comb += fabric.clear.eq(host.slice_clear)
        release = Signal()      # the notify bus at the queues (section 5a)
        mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(cfg))}
        queues = []
        links = []      # the C2C slices
        for qi, sl in enumerate(isa.queues(cfg)):
            queue = self._add_queue(m, sl, qi, host, release)
            unit = self._add_unit(m, sl, queue, host, mem_index)
            self._connect_unit(m, sl, queue, unit, fabric, host.slice_clear)
            queues.append(queue)
            if sl.kind == isa.SliceKind.C2C:
                links.append(unit)
        self._add_notify_bus(m, [queue.notify for queue in queues]
                             + [unit.notify for unit in links], release, host.slice_clear)
        host.add_run_control(Cat(*(queue.ended | queue.ending for queue in queues)).all())
        host.add_ecc_registers()
        if links:
            host.add_c2c_registers()
        host.add_readback()
        return m

    def _add_queue(self, m, sl, index, host, release):
        """Add the instruction queue of slice ``sl``, queue ``index`` of the host map.

        The host loads it while the chip is not running; it steps in the cycles with
        ``running`` high and leaves a ``sync`` in a cycle with ``release`` high.
        """
        cfg = self._config
        queue = InstructionQueue(cfg.queue_depth, cfg.streams,
                                 deskew=sl.kind == isa.SliceKind.C2C)
        m.submodules[f"queue_{sl.name.lower()}"] = queue
        host.connect_queue(queue, index)
        m.d.comb += [
            queue.run.eq(host.running),
            queue.run_next.eq(host.running_next),
            queue.clear.eq(host.slice_clear),
            queue.release.eq(release),
        ]
        return queue

    def _add_unit(self, m, sl, queue, host, mem_index):
        """Add the functional slice ``sl``; a MEM slice also gets its host port, MEM and MXM
        slices their ``halt``.

        ``halt`` is high from the cycle of the queue's ``end`` slot on.
        """
        cfg = self._config
        if sl.kind == isa.SliceKind.MEM:
            unit = MemSlice(cfg)
            # sequences issue nothing in or after the queue's end slot (section 6a)
            m.d.comb += unit.halt.eq(queue.ending | queue.ended)
            host.connect_memory(unit, mem_index[sl.name])
        elif sl.kind == isa.SliceKind.C2C:
            unit = C2cSlice(cfg, WEST if sl.name == "C2C_W" else EAST)
            m.d.comb += [queue.deskew_release.eq(unit.deskew_release),
                         unit.tx_clear.eq(host.clear)]
            self._connect_links(m, unit)
            host.connect_c2c(unit)
        elif sl.kind in _SLICE_UNITS:
            unit = _SLICE_UNITS[sl.kind](cfg)
            if sl.kind == isa.SliceKind.MXM:
                # sequences run nothing in or after the queue's end slot (section 7a)
                m.d.comb += unit.halt.eq(queue.ending | queue.ended)
        else:
            raise NotImplementedError(f"no RTL for slice kind {sl.kind!r}")
        m.submodules[sl.name.lower()] = unit
        return unit

    def _connect_links(self, m, unit):
        """Join the links of the C2C slice ``unit`` to the chip's link ports."""
        for link in range(self._config.c2c_links):
            prefix = link_port_prefix(unit.side, link)
            port = unit.link[link]
            m.d.comb += [getattr(self, prefix + "tx_valid").eq(port.tx_valid),
                         getattr(self, prefix + "tx_data").eq(port.tx_data),
                         port.rx_valid.eq(getattr(self, prefix + "rx_valid")),
                         port.rx_data.eq(getattr(self, prefix + "rx_data"))]

    def _connect_unit(self, m, sl, queue, unit, fabric, slice_clear):
        """Wire slice ``sl`` to its queue (issue in the slot's cycle) and the stream fabric.

        The slice writes the fabric's stream registers at its position (loaded at the end of
        the cycle) and reads its neighbours' (eastward streams from the west, westward from the
        east), as does the queue's ``ifetch``.
        """
        cfg = self._config
        last = fabric.positions - 1
        p = sl.position
        wiring.connect(m, queue.issue, unit.issue)
        m.d.comb += [
            unit.clear.eq(slice_clear),
            fabric.e_we[p].eq(unit.e_we), fabric.w_we[p].eq(unit.w_we),
            fabric.e_wdata[p].eq(unit.e_wdata), fabric.w_wdata[p].eq(unit.w_wdata),
        ]
        # ifetch (section 5b): lane 0 of superlane 0 of every stream at the slice input
        if p > 0:
            m.d.comb += [unit.e_in.eq(fabric.e[p - 1]),
                         queue.fetch_e.eq(Cat(*(fabric.e[p - 1][s][0][0]
                                                for s in range(cfg.streams))))]
        if p < last:
            m.d.comb += [unit.w_in.eq(fabric.w[p + 1]),
                         queue.fetch_w.eq(Cat(*(fabric.w[p + 1][s][0][0]
                                                for s in range(cfg.streams))))]

    @staticmethod
    def _add_notify_bus(m, notifies, release, slice_clear):
        """Add the notify bus (section 5a): every queue's notify (and the C2C slices', which
        notify when a deskew's mark arrives, section 7d) to every queue's release.

        ``release`` is high ``isa.NOTIFY_LATENCY - 1`` cycles after a cycle with a ``notify``.
        """
        m.submodules.notify_bus = notify_bus = NotifyBus(len(notifies))
        m.d.comb += [notify_bus.notify.eq(Cat(*notifies)),
                     notify_bus.clear.eq(slice_clear),
                     release.eq(notify_bus.release)]
