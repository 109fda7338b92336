"""MEM slice read pipeline: a ``read``/``gather``'s request, latency stages and stream write."""

from amaranth.hdl import Mux, Signal, unsigned
from amaranth.lib import data

from opentsp import isa

__all__ = ["build_read_output", "build_read_request"]


def build_read_request(m, mem, addressing, superlane, word, reading, rd_addrs, host_addr):
    """One superlane's read request, registered beside the SRAM's synchronous read ports.

    In the cycle ``t`` a ``read``/``gather`` (``reading``) addresses the SRAM, the request
    loads at its end, so that in cycle ``t + 1`` the lanes' decoders can pick the addressed
    bank's code word. When not running, the lookups are the host's address (a host read).
    ``clear`` drops the request.

    Parameters
    ----------
    m : Module
        Module to add the registers to.
    mem : MemSlice
        The slice (its ``clear`` input and configuration).
    addressing : MemAddressing
        The slice's bank geometry.
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
    View
        The request of the previous cycle: ``valid`` (a stream to write), ``read`` (a run
        read, whatever its stream), the stream ``dir``/``id``, and per lane the ``bank`` and
        word (``lookup``) it addressed.
    """
    cfg, k = mem.config, superlane
    lps = cfg.lanes_per_superlane
    abits, bbits = addressing.addr_bits, addressing.bank_bits
    rd_out = data.StructLayout({
        "valid": 1, "read": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS),
        "bank": data.ArrayLayout(unsigned(max(bbits, 1)), lps),
        "lookup": data.ArrayLayout(unsigned(max(abits, 1)), lps)})
    rd = Signal(rd_out, name=f"rd_0_{k}")
    with m.If(mem.clear):
        m.d.sync += [rd.valid.eq(0), rd.read.eq(0)]
    with m.Else():
        m.d.sync += [rd.valid.eq(reading & (word.s.id < cfg.streams)),
                     rd.read.eq(reading), rd.dir.eq(word.s.dir), rd.id.eq(word.s.id)]
    for j in range(lps):
        # One address per lane (run read or host read) before the injection compare:
        # comparing both and muxing the flips doubled the comparators.
        looked_up = Signal(max(abits, 1), name=f"rd_lookup_{k}_{j}")
        m.d.comb += looked_up.eq(Mux(reading, rd_addrs[j], host_addr))
        m.d.sync += [
            rd.bank[j].eq(addressing.bank_of(looked_up)),
            rd.lookup[j].eq(looked_up),
        ]
    return rd


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
    for s in range(cfg.streams):
        hit = out.valid & (out.id == s)
        m.d.comb += [
            mem.e_we[s][k].eq(hit & (out.dir == int(isa.Dir.E))),
            mem.w_we[s][k].eq(hit & (out.dir == int(isa.Dir.W))),
            mem.e_wdata[s][k].eq(out.data),
            mem.w_wdata[s][k].eq(out.data),
        ]
