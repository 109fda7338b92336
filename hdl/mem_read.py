"""MEM slice read pipeline: a ``read``/``gather``'s request, latency stages and stream write."""

from amaranth.hdl import Const, Mux, Signal, unsigned
from amaranth.lib import data

from opentsp import isa

__all__ = ["build_read_output", "build_read_request"]


def build_read_request(m, mem, addressing, superlane, word, reading, rd_addrs, host_addr):
    """One superlane's read request: per lane the word its SRAM read port addresses this
    cycle, and the request registered beside the SRAM's synchronous read ports.

    In the cycle ``t`` a ``read``/``gather`` (``reading``) addresses the SRAM, the request
    loads at its end, so that in cycle ``t + 1`` the lanes' decoders see the addressed code
    word. When not running, the lookups are the host's address (a host read). ``clear``
    drops the request.

    Parameters
    ----------
    m : Module
        Module to add the registers to.
    mem : MemSlice
        The slice (its ``clear`` input and configuration).
    addressing : MemAddressing
        The slice's word addresses.
    superlane : int
        Superlane index.
    word : View
        The read port's instruction on this superlane this cycle (merged MEM layout).
    reading : Value
        The instruction is a ``read`` or ``gather`` to run.
    rd_addrs : list of Value
        Per lane, the word address read (:func:`~opentsp.hdl.mem_address.lane_addresses`).
    host_addr : Value
        The host's word address.

    Returns
    -------
    tuple of (list of Signal, View)
        Per lane the word looked up in this cycle (the read port's address), and the request
        of the previous cycle: ``valid`` (a stream to write), ``read`` (a run read, whatever
        its stream), the stream ``dir``/``id``, and per lane the word it looked up
        (``lookup``).
    """
    cfg, k = mem.config, superlane
    lps = cfg.lanes_per_superlane
    rd_out = data.StructLayout({
        "valid": 1, "read": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS),
        "lookup": data.ArrayLayout(addressing.addr_shape, lps)})
    rd = Signal(rd_out, name=f"rd_0_{k}")
    with m.If(mem.clear):
        m.d.sync += [rd.valid.eq(0), rd.read.eq(0)]
    with m.Else():
        m.d.sync += [rd.valid.eq(reading & (word.s.id < cfg.streams)),
                     rd.read.eq(reading), rd.dir.eq(word.s.dir), rd.id.eq(word.s.id)]
    lookups = []
    for j in range(lps):
        # One address per lane (run read or host read) before the injection compare:
        # comparing both and muxing the flips doubled the comparators.
        looked_up = Signal(addressing.addr_shape, name=f"rd_lookup_{k}_{j}")
        m.d.comb += looked_up.eq(Mux(reading, rd_addrs[j], host_addr))
        m.d.sync += rd.lookup[j].eq(looked_up)
        lookups.append(looked_up)
    return lookups, rd


def build_read_output(m, mem, superlane, rd, rdata, read_latency):
    """One superlane's further read latency stages, then its output stream registers.

    The decoded word ``rdata`` of the request ``rd`` (cycle ``t + 1`` of a read issued in
    ``t``) passes ``read_latency - 1`` registers (emptied by ``clear``) and drives the output
    stream register ``s`` (``e_we``/``w_we``), which loads at the end of cycle
    ``t + read_latency``. A stream id ``>= streams`` writes no stream.

    Parameters
    ----------
    m : Module
        Module to add the stages to.
    mem : MemSlice
        The slice (its ``clear`` input, stream outputs and configuration).
    superlane : int
        Superlane index.
    rd : View
        The request (:func:`build_read_request`).
    rdata : Signal
        The superlane's corrected read data of this cycle.
    read_latency : int
        The read latency (at least 1).
    """
    cfg, k = mem.config, superlane
    out_layout = data.StructLayout({"valid": 1, "dir": 1,
                                    "id": unsigned(isa.STREAM_BITS),
                                    "data": unsigned(8 * cfg.lanes_per_superlane)})
    out = Signal(out_layout, name=f"rd_out_1_{k}")
    m.d.comb += [out.valid.eq(rd.valid), out.dir.eq(rd.dir), out.id.eq(rd.id),
                 out.data.eq(rdata)]
    for i in range(1, read_latency):
        nxt = Signal(out_layout, name=f"rd_out_{i + 1}_{k}")
        m.d.sync += nxt.eq(Mux(mem.clear, 0, out))
        out = nxt
    # One bit per stream, decoded once (ids beyond the streams shift out of it).
    hits = Signal(cfg.streams, name=f"rd_hits_{k}")
    m.d.comb += hits.eq(Mux(out.valid, Const(1, 1) << out.id, 0))
    east, west = out.dir == int(isa.Dir.E), out.dir == int(isa.Dir.W)
    for s in range(cfg.streams):
        m.d.comb += [
            mem.e_we[s][k].eq(hits[s] & east),
            mem.w_we[s][k].eq(hits[s] & west),
            mem.e_wdata[s][k].eq(out.data),
            mem.w_wdata[s][k].eq(out.data),
        ]
