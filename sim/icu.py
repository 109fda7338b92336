"""Golden model of the instruction queues (ICU): which instruction issues in which cycle.

A queue advances one slot per cycle (docs/architecture.md, section 5): ``nop N`` occupies N
slots and issues nothing, ``repeat n, d`` occupies n*d slots and re-issues the previous issued
instruction in slots ``d-1 + k*d`` of them, ``end`` stops the queue, anything else issues in its
single slot.

Sync and notify (section 5a) tie the queues together: ``sync`` parks its queue until a
``notify`` of any queue releases it, so issue cycles are a property of the whole program.
:func:`opentsp.queue_timing.schedule` computes them for every queue at once, per instruction
rather than per cycle (the specification); :class:`Queue` is the cycle-by-cycle form, driven by
the chip's notify bus, and issues in exactly those cycles.

Instruction fetch (section 5b): ``ifetch s, n`` occupies n slots and appends one word per slot,
taken from the streams at the slice input (the model's hook), to the queue, a ring buffer of
``queue_depth`` words; a word fetched in cycle c is executed from slot c + FETCH_LATENCY on.
"""


from opentsp import isa

__all__ = ["Queue", "FetchError"]


class FetchError(RuntimeError):
    """A queue slot whose word is not an instruction the golden model can execute (section 5b:
    a word fetched from memory that does not decode)."""


class Queue:
    """Cycle-by-cycle model of one queue. :meth:`step` returns what issues this cycle.

    The queue memory is a ring of ``depth`` words (section 5b): the program is preloaded at
    indices ``0 ..``, the fill pointer starts after it and each ``ifetch`` slot (cycle ``c``)
    writes the word that ``fetch`` returns at the fill pointer, at the end of cycle ``c``. The
    program counter wraps; the word of slot ``t`` is read in cycle ``t - 1`` (the RTL's
    prefetch read port), so a word fetched in cycle ``c`` is executed from slot
    ``c + isa.FETCH_LATENCY`` on, and a slot executes whatever its index holds (an index never
    written holds 0, which takes one slot and issues nothing, as in the RTL after power-up).

    Parameters
    ----------
    program : sequence of opentsp.isa.Instr
        The queue's preloaded instructions (ending with ``end``, or containing an ``ifetch``).
    depth : int or None
        Words in the ring (``queue_depth``); None: the program's length, no fetching.
    fetch : callable or None
        ``fetch(instr)`` returns the 32-bit word that an ``ifetch`` slot takes this cycle
        (lane 0 of superlane 0 of its group at the slice input). None: fetched words are 0.

    Attributes
    ----------
    notified : bool
        The slot of the last :meth:`step` was a ``notify`` (it goes on the notify bus).
    parked : bool
        The last :meth:`step` was spent waiting on a ``sync`` or a ``deskew``.
    deskewing : int or None
        The link of the ``deskew`` the last :meth:`step` was spent on (section 7d), else None.
    fetched : list
        ``(cycle, word)`` of every word fetched.
    """

    def __init__(self, program, depth=None, fetch=None):
        program = list(program)
        self._depth = len(program) if depth is None else depth
        if len(program) > self._depth:
            raise ValueError(f"{len(program)} instructions for a queue of {self._depth}")
        self._preloaded = [instr.encode() for instr in program]
        self._ring = self._preloaded + [0] * (self._depth - len(program))
        self._decoded = {}
        self._pending = None    # (index, word) fetched in the previous cycle
        self._fetch = fetch
        self._clear()

    def _clear(self):
        """The sequencer's state after a start: program counter 0, nothing issued yet, the
        fill pointer one past the preloaded words."""
        self._fill = len(self._preloaded) % max(self._depth, 1)
        self._pc = 0
        self._count = 0         # slots (nop, ifetch) or copies (repeat) done in this word
        self._phase = 0         # slot within the repeat period
        self._last = None       # last issued instruction, for repeat
        self.cycle = 0
        self.ended = False
        self.end_cycle = None
        self.notified = False
        self.parked = False
        self.deskewing = None
        self.fetched = []

    def restart(self, reload=False):
        """What ``CTRL_START`` does to the queue of a chip that has run (docs/architecture.md
        section 10, "What a start keeps"): the ring keeps every word, the preloaded ones and
        those the fetches wrote; the sequencer starts again from index 0 and the fill pointer
        from one past the preloaded words (the RTL's ``length``: one past the host's last
        write).

        Parameters
        ----------
        reload : bool
            The host writes the preloaded words again before the start (a run whose fetches
            wrapped the ring overwrote some of them).
        """
        if self._pending is not None:       # written at the end of the fetch's cycle
            index, word = self._pending
            self._ring[index] = word
            self._pending = None
        if reload:
            self._ring[:len(self._preloaded)] = self._preloaded
        self._clear()

    def overwritten(self):
        """The indices of preloaded words that the ring no longer holds (a fetch that wrapped
        the ring wrote over them), lowest first."""
        ring = list(self._ring)
        if self._pending is not None:
            index, word = self._pending
            ring[index] = word
        return [index for index, word in enumerate(self._preloaded) if ring[index] != word]

    def _word(self):
        word = self._ring[self._pc]
        if word not in self._decoded:
            try:
                self._decoded[word] = None if word == 0 else isa.decode(word)
            except isa.EncodingError as error:
                raise FetchError(f"cycle {self.cycle}: queue index {self._pc}: {error}") from None
        return self._decoded[word]

    def step(self, release=False, deskew_release=False):
        """Advance one cycle; return the :class:`~opentsp.isa.Instr` issued in it, or None.

        ``release`` is the notify bus in this cycle: high when some queue issued a ``notify``
        in cycle ``cycle - (isa.NOTIFY_LATENCY - 1)``. A queue on a ``sync`` leaves it at the
        end of a cycle with ``release`` high (its next instruction issues in the next cycle)
        and otherwise stays on it. A queue on a ``deskew`` leaves it at the end of a cycle with
        ``deskew_release`` high: the release of the notify its slice made when the mark came
        (section 7d); another queue's notify does not release it.
        """
        issued = None
        self.notified = self.parked = False
        self.deskewing = None
        if not self.ended:
            instr = self._word()            # read in the previous cycle (prefetch)
        if self._pending is not None:       # the previous cycle's fetch lands now
            index, word = self._pending
            self._ring[index] = word
            self._pending = None
        if not self.ended:
            # The RTL's registers: ``count`` (slots or copies done) and ``phase`` (slot within a
            # repeat period), both cleared when the queue moves to the next word; they are
            # applied to whatever word the index holds in each cycle.
            name = instr.op.mnemonic if instr is not None else "nop"
            advance = False
            if name == "end":
                self.ended = True
                self.end_cycle = self.cycle
            elif name == "repeat":
                if self._phase == instr["d"] - 1:
                    issued = self._last
                    self._phase = 0
                    advance = self._count + 1 >= instr["n"]
                    self._count += 1
                else:
                    self._phase += 1
            elif name == "sync":
                self.parked = not release
                advance = release
            elif name == "deskew":
                self.parked = not deskew_release
                self.deskewing = instr["l"] if self.parked else None
                advance = deskew_release
            elif name == "notify":
                self.notified = advance = True
            elif name in ("nop", "ifetch"):
                if name == "ifetch":
                    word = self._fetch(instr) if self._fetch is not None else 0
                    self.fetched.append((self.cycle, word))
                    self._pending = (self._fill, word)
                    self._fill = (self._fill + 1) % self._depth
                limit = 0 if instr is None else instr.slots     # the word 0 is `nop 0`
                advance = self._count + 1 >= limit
                self._count += 1
            else:
                issued = self._last = instr
                advance = True
            if advance:
                self._pc = (self._pc + 1) % self._depth
                self._count = self._phase = 0
        self.cycle += 1
        return issued
