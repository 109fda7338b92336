"""Instruction control unit: one slice's instruction queue and its issue logic."""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from opentsp import isa
from opentsp.hdl.layouts import is_op, op_layout
from opentsp.hdl.slice import IssueSignature

__all__ = ["InstructionQueue", "NotifyBus"]


class InstructionQueue(wiring.Component):
    """One queue: instruction memory plus the slot sequencer of ``opentsp.sim.icu.Queue``.

    The queue holds ``depth`` 32-bit words, written by the host through ``w_*`` while the chip
    is not running. The slot of cycle ``t`` executes the word its index holds as of the writes
    through the end of cycle ``t - 2`` (prefetch): the word the queue would find on a
    synchronous read port addressed with the *next* program counter, which reads index 0 while
    ``run`` is low, so that cycle 0 (the first cycle with ``run`` high, after a cycle with
    ``clear``) finds the first instruction. That is the port timing, unchanged; inside, the slot
    decode reads a register (``word``), not the block RAM, which is read one slot ahead (the
    word after ``pc``), and the one write each of them misses is forwarded into ``word`` as it
    loads (:meth:`_add_prefetch`). So the queue's outputs start at flip-flops, not at the block
    RAM's 5.8 ns from clock to data on the ECP5. The equivalence holds as long as ``run`` rises
    only after a cycle with ``clear`` (the chip drives ``clear`` with ``~run``): after a pause
    without ``clear`` both give index 0 in the first slot, but if that slot does not advance
    the read port gave the word at ``pc`` in the next one, the queue index 0 again.

    Per cycle with ``run`` high (exactly ``Queue.step()``):

    * ``nop N``: ``N`` slots, nothing issued;
    * ``repeat n, d``: ``n*d`` slots; in slot ``d-1 + k*d`` the last issued instruction is
      issued again (nothing if none has issued since ``clear``);
    * ``end``: ``ending`` is high in this slot, ``ended`` from the next cycle on; nothing more
      issues until ``clear``;
    * ``sync``: the queue stays on it, issuing nothing, until a cycle with ``release`` high;
      the next instruction is in the next cycle's slot (``parked`` is high while it waits);
    * ``notify``: ``notify`` is high in its one slot; nothing is issued to the slice;
    * ``ifetch s, n``: ``n`` slots, nothing issued; in each, lane 0 of superlane 0 of the int32
      group ``s`` at the slice input (byte ``i`` on stream ``s + i``, from ``fetch_e`` or
      ``fetch_w``; a group beyond the streams reads 0) is written into the queue memory at the
      fill pointer at the end of the cycle, and the fill pointer advances;
    * anything else issues in its one slot.

    **Ring buffer** (section 5b). The memory is a ring: the program counter and the fill pointer
    wrap at ``depth``. The fill pointer is set by ``clear`` to ``length``: one past the index of
    the last host write (the host loads index 0 up, so this is the preloaded length, modulo
    ``depth``). The host and ``ifetch`` share the one write port (the host writes only while
    ``run`` is low). A word written at the end of cycle ``c`` is executed from slot ``c + 2``
    on (the read port above reads it in ``c + 1``): ``isa.FETCH_LATENCY``. A slot executes
    whatever its index holds.

    ``issue`` is combinational in the issue cycle (latency 0).

    With ``deskew`` (the queue of a C2C slice, section 7d), ``deskew l``: the queue stays on
    it until a cycle with ``deskew_release`` high (the slice's own notify coming back over the
    notify bus; ``release`` does not end a deskew), showing it on ``issue`` in every cycle it
    is on it, so that the slice knows which link waits; it is not an issued instruction for
    ``repeat`` (which re-issues the last instruction before it). Without ``deskew`` the queue
    has no ``deskew_release`` and builds exactly what it built before ISA v7.

    Parameters
    ----------
    depth : int
        Words in the queue (a power of two).
    streams : int
        Streams per direction at the slice input (``config.streams``, a multiple of 4).
    deskew : bool
        Handle ``deskew`` (the queue of a C2C slice).

    Attributes
    ----------
    w_en, w_addr, w_data : In
        Host write port (one word per cycle, written at the end of the cycle).
    run : In(1)
        The chip is running: advance one slot this cycle.
    run_next : In(1)
        ``run`` of the next cycle (the chip drives it with the input of its ``running``
        register). It loads the queue's own ``active`` register (``run & ~ended`` of the next
        cycle), which gates ``issue.valid`` and the rest of the slot decode: the chip-wide
        ``running`` reaches every queue and was the start of the routed critical path into
        the MXM (docs/fpga.md).
    clear : In(1)
        Soft reset of the sequencer (program counter, counters, last instruction, ended); the
        queue contents are kept.
    issue : Out(IssueSignature())
        The instruction issued this cycle (to superlane 0): ``issue.valid``, ``issue.word``
        (meaningful only with ``valid``: it shows the slot's word in every cycle).
    ending : Out(1)
        This cycle is the queue's ``end`` slot.
    ended : Out(1)
        The queue passed its ``end`` slot in an earlier cycle.
    notify : Out(1)
        This cycle is a ``notify`` slot (combinational, to the chip's notify bus).
    release : In(1)
        The notify bus: a queue on a ``sync`` leaves it at the end of this cycle. The chip
        drives it with the OR of all queues' ``notify`` delayed by ``isa.NOTIFY_LATENCY - 1``
        registers.
    parked : Out(1)
        This cycle is spent waiting on a ``sync`` (``release`` low).
    fetch_e, fetch_w : In(8 * streams)
        Lane 0 of superlane 0 of every eastward (westward) stream at the slice input, stream
        ``s`` in bits ``8s+7..8s`` (read by ``ifetch`` in its issue cycles).
    fetch : Out(1)
        This cycle is an ``ifetch`` slot (it writes a word at the end of the cycle).
    deskew_release : In(1)
        Only with ``deskew``: a queue on a ``deskew`` leaves it at the end of this cycle.
    """

    def __init__(self, depth, streams=8, deskew=False):
        if not isinstance(depth, int) or depth < 1 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two, not {depth!r}")
        self._depth = depth
        self._index_bits = max(depth.bit_length() - 1, 1)
        if streams < isa.INT32_GROUP or streams % isa.INT32_GROUP:
            raise ValueError(f"streams must be a multiple of {isa.INT32_GROUP}, not {streams!r}")
        self._streams = streams
        if not isinstance(deskew, bool):
            raise TypeError(f"deskew must be a bool, not {deskew!r}")
        self._deskew = deskew
        extra = {"deskew_release": In(1)} if deskew else {}
        super().__init__({
            "fetch_e": In(unsigned(8 * streams)),
            "fetch_w": In(unsigned(8 * streams)),
            "fetch": Out(1),
            "w_en": In(1),
            "w_addr": In(unsigned(self._index_bits)),
            "w_data": In(unsigned(isa.INSTR_BITS)),
            "run": In(1),
            "run_next": In(1),
            "clear": In(1),
            "issue": Out(IssueSignature()),
            "ending": Out(1),
            "ended": Out(1),
            "notify": Out(1),
            "release": In(1),
            "parked": Out(1),
            **extra,
        })

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=unsigned(isa.INSTR_BITS),
                                                depth=self._depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        word = Signal(unsigned(isa.INSTR_BITS))     # the word at pc: what the slot decodes
        word_class = _WordClass()                   # its kind, decoded as it loads
        length, fill = self._add_write_port(m, wp, word)
        state = _SlotState(self._index_bits)
        self._add_slot_decode(m, word, word_class, state)
        next_pc = Mux(state.advance, state.pc + 1, state.pc)
        word_class.load(m, self._add_prefetch(m, wp, rp, word, state))
        m.d.comb += self.ended.eq(state.ended)
        self._add_state_update(m, state, next_pc, length, fill)
        return m

    def _add_prefetch(self, m, wp, rp, word, state):
        """Load ``word``, the register the slot decode reads, with the queue memory's word at
        the index the old read port would have read (one slot ahead, see the class).

        The block RAM is read one slot ahead of ``word``: at ``pc + 1`` of the next cycle (1
        after a ``clear``), so that its read data ``ahead`` is the word after ``pc``. At the end
        of a cycle with ``run`` high, ``word`` loads ``ahead`` if the slot advances, else keeps
        its value (``first`` after a ``clear``, as ``pc`` is then 0); while ``run`` is low it
        loads ``first``, a copy of index 0 kept from the write port (not reset, like the
        memory), so that cycle 0 finds index 0 in ``word`` and index 1 on the read port. Both
        ``ahead`` and ``word`` were read a cycle before they are loaded, so each is patched with
        the one write it missed, that of the previous cycle (``w_prev_*``, the write port
        registered), when that hit its index: this is also the fetch that changes the word under
        a multi-slot instruction (section 5b). Returns the value ``word`` loads.

        The read port is not transparent (a read of an index written in the same cycle returns
        the old word; ``read_port``'s default): the patch supplies the new one. A transparent
        port would give the same words (the patch would rewrite what it already holds) but
        costs bypass logic after the ECP5's block RAM output.
        """
        w_prev_en = Signal()
        w_prev_addr = Signal.like(wp.addr)
        w_prev_data = Signal.like(wp.data)
        m.d.sync += [w_prev_en.eq(wp.en), w_prev_addr.eq(wp.addr), w_prev_data.eq(wp.data)]
        first = Signal.like(wp.data, reset_less=True)   # index 0, as the memory holds it
        with m.If(wp.en & (wp.addr == 0)):
            m.d.sync += first.eq(wp.data)
        at_pc = Signal()        # word holds the index pc (it followed the slots last cycle)
        m.d.sync += at_pc.eq(self.run & ~self.clear)
        pc, advance = state.pc, state.advance
        pc_1 = Signal.like(pc)
        m.d.comb += [pc_1.eq(pc + 1),
                     rp.addr.eq(Mux(self.clear, 1, Mux(advance, pc_1 + 1, pc_1)))]
        ahead = Mux(w_prev_en & (w_prev_addr == pc_1), w_prev_data, rp.data)
        same = Mux(at_pc, Mux(w_prev_en & (w_prev_addr == pc), w_prev_data, word), first)
        word_next = Signal.like(word)
        m.d.comb += word_next.eq(Mux(self.run, Mux(advance, ahead, same), first))
        m.d.sync += word.eq(word_next)
        return word_next

    def _add_write_port(self, m, wp, word):
        """Drive the memory's write port from the host and ``ifetch`` (the ring, section 5b).

        In an ``ifetch`` slot the fetched word is written at the fill pointer at the end of the
        cycle, otherwise the host's word at ``w_addr``; a host write also loads ``length`` with
        one past its index at the end of its cycle.

        Returns
        -------
        length, fill : Signal
            One past the last host write, and the fill pointer (advanced by
            :meth:`_add_state_update`).
        """
        as_ifetch = op_layout(isa.OPS_BY_NAME["ifetch"])(word)
        # The fetched word: lane 0 of the int32 group s at the slice input (aligned groups only).
        fetched = Signal(unsigned(isa.INSTR_BITS))
        source = Mux(as_ifetch.s.dir, self.fetch_w, self.fetch_e)
        with m.Switch(as_ifetch.s.id):
            for base in range(0, self._streams, isa.INT32_GROUP):
                with m.Case(base):
                    m.d.comb += fetched.eq(source[8 * base:8 * (base + isa.INT32_GROUP)])
        length = Signal(unsigned(self._index_bits))     # one past the last host write
        fill = Signal(unsigned(self._index_bits))
        m.d.comb += [
            wp.en.eq(self.w_en | self.fetch),
            wp.addr.eq(Mux(self.fetch, fill, self.w_addr)),
            wp.data.eq(Mux(self.fetch, fetched, self.w_data)),
        ]
        with m.If(self.w_en):
            m.d.sync += length.eq(self.w_addr + 1)
        return length, fill

    def _add_slot_decode(self, m, word, word_class, state):
        """Decode the slot of this cycle: the outputs and the sequencer's next state.

        Combinational in the cycle in which ``word`` (the instruction at ``pc``) is on the read
        port: what issues, ``ending``, ``parked``, ``notify``, ``fetch``, and whether the
        instruction's last slot is this one (``advance``); nothing while ``run`` is low or the
        queue has ended.

        ``issue.word`` is ``word``, or the last issued instruction under a ``repeat``, whether
        or not anything issues (it is meaningful only with ``issue.valid``). ``valid`` and the
        rest of the decode (``ending``, which the MXM and MEM slices' ``halt`` reads,
        ``parked``, ``advance``) wait for the queue's ``active`` (``run & ~ended`` in a register
        of its own, see ``run_next``), not for the chip-wide ``running`` that reaches every
        queue, so the slices' first-cycle logic starts from the queue's own registers.
        ``issue.valid`` and the ``repeat`` mux of ``issue.word`` read the word's kind from
        ``word_class``, registers decoded from the value ``word`` loads, not from ``word``
        through an opcode decode.
        """
        as_nop = op_layout(isa.OPS_BY_NAME["nop"])(word)
        as_repeat = op_layout(isa.OPS_BY_NAME["repeat"])(word)
        as_ifetch = op_layout(isa.OPS_BY_NAME["ifetch"])(word)
        count, phase, advance = state.count, state.phase, state.advance
        next_count, next_phase = state.next_count, state.next_phase
        # phase + 1 == d, from the register holding phase + 1: a subtraction's carry chain
        # (phase == d - 1) was on the routed critical path, ahead of issue.valid
        repetition_due = state.phase_1 == as_repeat.d
        m.d.comb += self.issue.valid.eq(
            state.active
            & (word_class.issues | word_class.repeat & repetition_due & state.last_valid))
        m.d.comb += [next_count.eq(count), next_phase.eq(phase),
                     self.issue.word.eq(Mux(word_class.repeat, state.last, word))]

        # active == run & ~ended: ending (and so the slices' halt) from the queue's registers
        with m.If(state.active):
            with m.If(is_op(word, "end")):
                m.d.comb += self.ending.eq(1)
            with m.Elif(is_op(word, "sync")):
                with m.If(self.release):
                    m.d.comb += advance.eq(1)
                with m.Else():
                    m.d.comb += self.parked.eq(1)
            if self._deskew:
                with m.Elif(is_op(word, "deskew")):
                    self._add_deskew_slot(m, word, state)
            with m.Elif(is_op(word, "notify")):
                m.d.comb += [self.notify.eq(1), advance.eq(1)]
            with m.Elif(is_op(word, "ifetch")):
                m.d.comb += self.fetch.eq(1)
                with m.If(count + 1 >= as_ifetch.n):
                    m.d.comb += [advance.eq(1), next_count.eq(0)]
                with m.Else():
                    m.d.comb += next_count.eq(count + 1)
            with m.Elif(is_op(word, "nop")):
                # count + 1 >= N rather than == N: a (forbidden) nop 0 takes one slot
                with m.If(count + 1 >= as_nop.count):
                    m.d.comb += [advance.eq(1), next_count.eq(0)]
                with m.Else():
                    m.d.comb += next_count.eq(count + 1)
            with m.Elif(is_op(word, "repeat")):
                with m.If(repetition_due):
                    m.d.comb += next_phase.eq(0)
                    with m.If(count + 1 >= as_repeat.n):
                        m.d.comb += [advance.eq(1), next_count.eq(0)]
                    with m.Else():
                        m.d.comb += next_count.eq(count + 1)
                with m.Else():
                    m.d.comb += next_phase.eq(phase + 1)
            with m.Else():
                m.d.comb += advance.eq(1)

    def _add_deskew_slot(self, m, word, state):
        """A ``deskew`` slot: shown to the slice on ``issue`` (not kept as the last issued
        instruction), left at the end of a cycle with ``deskew_release`` high."""
        m.d.comb += state.deskew.eq(1)
        with m.If(self.deskew_release):
            m.d.comb += state.advance.eq(1)
        with m.Else():
            m.d.comb += self.parked.eq(1)

    def _add_state_update(self, m, state, next_pc, length, fill):
        """Load the sequencer's registers at the end of the cycle.

        ``clear`` resets them (the fill pointer to ``length``); otherwise, while ``run`` is
        high, they take the next state of :meth:`_add_slot_decode`.
        """
        pc, count, phase, phase_1 = state.pc, state.count, state.phase, state.phase_1
        last, last_valid, ended = state.last, state.last_valid, state.ended
        # active = run & ~ended of the next cycle: ended as it loads below, run as announced
        ended_next = Mux(self.clear, 0, ended | self.run & self.ending)
        m.d.sync += state.active.eq(self.run_next & ~ended_next)
        with m.If(self.clear):
            m.d.sync += [pc.eq(0), count.eq(0), phase.eq(0), phase_1.eq(1), last.eq(0),
                         last_valid.eq(0), ended.eq(0), fill.eq(length)]
        with m.Elif(self.run):
            # count and phase start from 0 in every word (also when a fetch changed the word
            # under a multi-slot instruction, section 5b)
            m.d.sync += [pc.eq(next_pc), count.eq(Mux(state.advance, 0, state.next_count)),
                         phase.eq(Mux(state.advance, 0, state.next_phase)),
                         phase_1.eq(Mux(state.advance, 1, state.next_phase + 1))]
            with m.If(self.fetch):
                m.d.sync += fill.eq(fill + 1)
            with m.If(self.ending):
                m.d.sync += ended.eq(1)
            with m.If(self.issue.valid & ~state.deskew if self._deskew else self.issue.valid):
                m.d.sync += [last.eq(self.issue.word), last_valid.eq(1)]


class _WordClass:
    """The kind of the queue's ``word``, in registers loaded with the value ``word`` loads.

    ``issues``: an instruction that issues in its one slot (a ``deskew`` too: it is shown on
    ``issue``), not one of the queue's own (``nop``, ``repeat``, ``end``, ``sync``, ``notify``,
    ``ifetch``); ``repeat``: a ``repeat``. Both are 0 for the word 0 (a ``nop``) that ``word``
    holds after reset.
    """

    #: The queue's own instructions, as the ISA lists them (``isa.Unit.ICU``).
    QUEUE_OPS = tuple(op.mnemonic for op in isa.OPS if op.unit == isa.Unit.ICU)

    def __init__(self):
        self.issues = Signal(name="word_issues")
        self.repeat = Signal(name="word_repeat")

    def load(self, m, word_next):
        """Load the registers with the kind of ``word_next``."""
        own = Cat(*(is_op(word_next, name) for name in self.QUEUE_OPS)).any()
        m.d.sync += [self.issues.eq(~own), self.repeat.eq(is_op(word_next, "repeat"))]


class _SlotState:
    """The slot sequencer's registers and the combinational next state of this cycle.

    Registers (loaded at the end of a cycle): ``pc``, ``count`` (slots done of the current
    ``nop``/``ifetch``, repetitions of a ``repeat``), ``phase`` (slot within a repetition) and
    ``phase_1`` (``phase + 1``, a bit wider so that it never wraps to a ``d`` of 0),
    ``last``/``last_valid`` (the last issued instruction), ``ended``, ``active`` (``run &
    ~ended``, loaded from ``run_next``). Combinational:
    ``advance`` (this is the current instruction's last slot), ``next_count``, ``next_phase``,
    ``deskew`` (a ``deskew`` slot, only driven in a queue with ``deskew``).

    Parameters
    ----------
    index_bits : int
        Width of a queue index.
    """

    def __init__(self, index_bits):
        nop = isa.OPS_BY_NAME["nop"]
        repeat = isa.OPS_BY_NAME["repeat"]
        # locals first, so that the signals are named after them
        pc = Signal(unsigned(index_bits))
        count = Signal(unsigned(max(nop.field("count").width, repeat.field("n").width)))
        phase = Signal(unsigned(repeat.field("d").width))
        phase_1 = Signal(unsigned(repeat.field("d").width + 1), init=1)
        last = Signal(unsigned(isa.INSTR_BITS))
        last_valid = Signal()
        ended = Signal()
        active = Signal()
        advance = Signal()      # last slot of the current instruction
        deskew = Signal()       # a deskew slot (shown on issue, not an issued instruction)
        next_count = Signal.like(count)
        next_phase = Signal.like(phase)
        self.pc, self.count, self.phase, self.phase_1 = pc, count, phase, phase_1
        self.last, self.last_valid, self.ended, self.active = last, last_valid, ended, active
        self.advance, self.next_count, self.next_phase = advance, next_count, next_phase
        self.deskew = deskew


class NotifyBus(wiring.Component):
    """The chip-wide notify bus of section 5a: every queue's ``notify`` to every ``release``.

    ``release`` in cycle ``c`` is the OR of the ``notify`` inputs of cycle
    ``c - (isa.NOTIFY_LATENCY - 1)``: ``isa.NOTIFY_LATENCY - 1`` register stages (at least
    one), so that every queue parked on a ``sync`` leaves it in the same cycle and its next
    instruction issues ``isa.NOTIFY_LATENCY`` cycles after the ``notify``.

    Parameters
    ----------
    queues : int
        Number of queues.

    Attributes
    ----------
    notify : In(queues)
        Bit ``q``: queue ``q`` is in a ``notify`` slot this cycle.
    clear : In(1)
        Soft reset: empties the stages (a notify in flight is dropped).
    release : Out(1)
        To every queue's ``release``.
    """

    def __init__(self, queues):
        if isa.NOTIFY_LATENCY < 2:
            raise ValueError(f"the notify bus needs isa.NOTIFY_LATENCY >= 2 (one register "
                             f"stage), not {isa.NOTIFY_LATENCY!r}")
        super().__init__({"notify": In(queues), "clear": In(1), "release": Out(1)})

    def elaborate(self, platform):
        m = Module()
        bus = self.notify.any()
        for stage in range(isa.NOTIFY_LATENCY - 1):
            reg = Signal(name=f"stage_{stage}")
            m.d.sync += reg.eq(Mux(self.clear, 0, bus))
            bus = reg
        m.d.comb += self.release.eq(bus)
        return m
