"""MEM slice fault injection (docs/architecture.md section 6b): flips held beside the SRAM."""

from amaranth.hdl import Cat, Const, Mux, Signal

from opentsp import hostmap, secded

__all__ = ["FaultInjection"]


class FaultInjection:
    """The flips of the ``inject`` entries: per entry, whether its flip is in effect.

    An entry with ``fire`` high in cycle ``c`` flips (XOR ``mask``) the code word of its word
    and lane from the end of ``c`` on, until a later write to that word and lane (run commit
    or host write, noted with :meth:`note_write`). The flip is applied to the read data
    before the decoder (:meth:`flip_then`), not written into the SRAM.

    Creating the object adds the flags (``inject_active_*``) and the registered copies of the
    entries and flags of the previous cycle; :meth:`update_flags` adds the flags' update once
    every write has been noted.

    Parameters
    ----------
    m : Module
        Module to add the logic to.
    inject : View
        The slice's ``inject`` port (``hostmap.INJECT_ENTRIES`` entries).
    lanes : int
        Lanes of the slice (an entry's lane beyond them never matches). An entry's word
        beyond the slice's words never matches either: the addresses it is compared with are
        zero-extended.
    """

    def __init__(self, m, inject, lanes):
        self.entries = entries = [inject[i] for i in range(hostmap.INJECT_ENTRIES)]
        self.active = [Signal(name=f"inject_active_{i}") for i in range(len(entries))]
        self._rewritten = [[] for _ in entries]   # per entry: the writes that replace its word
        # Each entry's lane decoded once into one bit per lane, which every lane picks its
        # own bit from: a comparator per lane and entry was most of the slice's logic.
        self._lane_hot = [_decoded(m, entry.lane, lanes, f"inject_lane_{i}")
                          for i, entry in enumerate(entries)]

        # The entries and flags as they were in the previous cycle: a read's flip is worked
        # out in the cycle after it addresses the SRAM, from registered addresses, so that the
        # comparators sit beside the SRAM access rather than after the wide stream-select
        # muxes of the gather addresses (where synthesis duplicated those muxes into them).
        self._entries_then = Signal(inject.shape(), name="inject_then")
        self._active_then = [Signal(name=f"inject_active_then_{i}") for i in range(len(entries))]
        m.d.sync += self._entries_then.eq(inject)
        m.d.sync += [then.eq(now) for then, now in zip(self._active_then, self.active,
                                                         strict=True)]
        self._lane_hot_then = [_decoded(m, self._entries_then[i].lane, lanes,
                                        f"inject_lane_then_{i}") for i in range(len(entries))]

    def flip_then(self, addr, lane):
        """XOR of the masks that were in effect on ``addr`` of global ``lane`` at the start of
        the previous cycle (``addr`` registered in that cycle): the flip of a read that
        addressed the SRAM then, combinational in the cycle its data arrives."""
        out = Const(0, secded.CODE_BITS)
        for i in range(len(self.entries)):
            entry = self._entries_then[i]
            hit = self._active_then[i] & self._lane_hot_then[i][lane] & (entry.word == addr)
            out = out ^ Mux(hit, entry.mask, 0)
        return out

    def note_write(self, lane, committing, host_writing, written):
        """Note a write port of global ``lane`` that writes word ``written`` at the end of
        this cycle when ``committing`` (run commit) or ``host_writing`` (host write)."""
        for i, entry in enumerate(self.entries):
            self._rewritten[i].append(self._lane_hot[i][lane] & (committing | host_writing)
                                      & (written == entry.word))

    def update_flags(self, m):
        """The flags: set at the end of the entry's cycle (after that cycle's write), cleared
        at the end of a cycle with a later write to the word and lane."""
        for i, entry in enumerate(self.entries):
            with m.If(entry.fire):
                m.d.sync += self.active[i].eq(1)
            with m.Elif(Cat(*self._rewritten[i]).any()):
                m.d.sync += self.active[i].eq(0)


def _decoded(m, index, width, name):
    """Drive and return a ``width``-bit signal with bit ``index`` set (none if ``index`` is
    ``width`` or more)."""
    hot = Signal(width, name=name)
    bits = max((width - 1).bit_length(), 1)
    if len(index) <= bits:
        m.d.comb += hot.eq(Const(1, 1) << index)
    else:   # shift by the low bits only: a shift by all of them is 2 ** len(index) bits wide
        m.d.comb += hot.eq(Mux(index[bits:] == 0, Const(1, 1) << index[:bits], 0))
    return hot
