"""MEM slice write pipeline: a ``write``/``scatter``'s bytes, from capture to commit."""

from amaranth.hdl import Mux, Signal, unsigned
from amaranth.lib import data

from opentsp.hdl.layouts import select_stream

__all__ = ["build_write_pipeline", "commit_layout"]


def commit_layout(addressing, lanes):
    """Per lane: one byte on its way to the SRAM (``valid``, word ``addr``, ``data``)."""
    return data.ArrayLayout(data.StructLayout({
        "valid": 1, "addr": addressing.addr_shape, "data": unsigned(8)}), lanes)


def build_write_pipeline(m, mem, addressing, superlane, word, is_write, is_scatter, wr_addrs,
                         write_commit):
    """One superlane's write pipeline, up to the commit into the SRAM.

    Capture the stream value in the issue cycle ``t``, commit at the end of cycle
    ``t + write_commit``, one byte per lane (write: every lane at one address; scatter: each
    its own). A stream id ``>= streams`` stores zeros. ``clear`` empties the pipeline at the
    end of the cycle.

    Parameters
    ----------
    m : Module
        Module to add the pipeline to.
    mem : MemSlice
        The slice (its ``e_in``/``w_in`` inputs, ``clear`` and configuration).
    addressing : MemAddressing
        The slice's bank geometry.
    superlane : int
        Superlane index.
    word : View
        The write port's instruction on this superlane this cycle (merged MEM layout).
    is_write, is_scatter : Signal
        The instruction is a ``write`` (``scatter``) to run.
    wr_addrs : list of Value
        Per lane, the word address written (:func:`~opentsp.hdl.mem_address.lane_addresses`).
    write_commit : int
        Cycles from capture to commit (at least 1).

    Returns
    -------
    View
        The commit of this cycle, in :func:`commit_layout`: per lane whether, where and what
        to write at the end of this cycle.
    """
    cfg, k = mem.config, superlane
    lps = cfg.lanes_per_superlane
    value = select_stream(m, mem.e_in, mem.w_in, word.s.dir, word.s.id, k, cfg, f"wr_value_{k}")
    commit = commit_layout(addressing, lps)
    stage = Signal(commit, name=f"wr_0_{k}")
    with m.If(mem.clear):
        for j in range(lps):
            m.d.sync += stage[j].valid.eq(0)
    with m.Else():
        in_range = word.s.id < cfg.streams
        for j in range(lps):
            m.d.sync += [stage[j].valid.eq(is_write | is_scatter),
                         stage[j].addr.eq(wr_addrs[j]),
                         stage[j].data.eq(Mux(in_range, value[j], 0))]
    for i in range(1, write_commit):
        nxt = Signal(commit, name=f"wr_{i}_{k}")
        m.d.sync += nxt.eq(Mux(mem.clear, 0, stage))
        stage = nxt
    return stage
