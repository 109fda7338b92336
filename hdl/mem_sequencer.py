"""MEM slice address sequencers (docs/architecture.md section 6a), on superlane 0."""

from amaranth.hdl import Mux, Signal

from opentsp import isa
from opentsp.hdl.layouts import is_op, merged_layout
from opentsp.hdl.mem_address import log2

__all__ = ["MEM_OPS", "PORTS", "build_sequencers", "instruction_layout"]

#: Instructions of the MEM slice (their fields share one layout).
MEM_OPS = ("read", "write", "gather", "scatter", "agi", "ago", "sread", "swrite")
#: Per port (0 = read, 1 = write): the sequence starter and the queue's plain instructions.
PORTS = (("sread", ("read", "gather")), ("swrite", ("write", "scatter")))


def instruction_layout():
    """The merged layout of the fields of every MEM instruction (:data:`MEM_OPS`)."""
    return merged_layout([isa.OPS_BY_NAME[name] for name in MEM_OPS])


def build_sequencers(m, mem, halt):
    """Superlane 0: the two address sequencers (section 6a) in front of the ports.

    Combinational in the issue cycle (the port's instruction of this cycle); the sequences'
    registers and the ``agi``/``ago`` configuration load at its end. ``clear`` stops the
    sequences and restores the configuration (stride 1, count 1, outer stride 0, outer count
    1) at the end of the cycle.

    Port priority as in :mod:`opentsp.sim.mem`: a starter (``sread``/``swrite``) begins a
    sequence whose element 0 is its own address, a plain instruction of the queue takes the
    port (the sequence still advances), else a running sequence issues its element unless
    ``halt`` (the queue is in or past its ``end`` slot).

    Parameters
    ----------
    m : Module
        Module to add the sequencers to.
    mem : MemSlice
        The slice (its ``issue`` and ``clear`` inputs).
    halt : Value
        Stops running sequences from issuing.

    Returns
    -------
    list of (Signal, Signal)
        ``(valid, word)`` per port (0 = read, 1 = write): the plain ``read``/``gather``
        (``write``/``scatter``) that the port runs this cycle, from the queue or generated.
    """
    word = instruction_layout()(mem.issue.word)
    addr_bits = max(log2(mem.config.mem_words), 1)
    return [_AddressSequencer(port, starter, plain, addr_bits).build(m, mem, word, halt)
            for port, (starter, plain) in enumerate(PORTS)]


class _AddressSequencer:
    """One port's sequencer: its configuration (``agi``/``ago``) and its running sequence.

    A sequence walks ``count`` elements ``stride`` apart (inner loop, ``i_left`` to go), then
    moves its row ``ostride`` on and starts again, ``ocount`` rows in all (``j_left`` to go).

    Parameters
    ----------
    port : int
        0 for the read port, 1 for the write port (also the ``g`` field of ``agi``/``ago``).
    starter : str
        The instruction that starts a sequence (``sread``, ``swrite``).
    plain : tuple of str
        The queue's instructions that take the port directly.
    addr_bits : int
        Width of the address registers.
    """

    def __init__(self, port, starter, plain, addr_bits):
        p, aw, cw = port, addr_bits, isa.MEM_SEQ_COUNT_BITS
        self.port, self.starter, self.plain, self.addr_bits = port, starter, plain, addr_bits
        # The configuration set by agi (stride, count) and ago (ostride, ocount).
        self.cfg_regs = {
            "stride": Signal(aw, init=1, name=f"ag{p}_stride"),
            "count": Signal(cw, init=1, name=f"ag{p}_count"),
            "ostride": Signal(aw, init=0, name=f"ag{p}_ostride"),
            "ocount": Signal(cw, init=1, name=f"ag{p}_ocount"),
        }
        # The running sequence: its next element and what is left of it.
        self.active = Signal(name=f"seq{p}_active")
        self.s = Signal(isa.STREAM_OPERAND_BITS, name=f"seq{p}_s")
        self.addr = Signal(aw, name=f"seq{p}_addr")
        self.row = Signal(aw, name=f"seq{p}_row")
        self.i_left = Signal(cw, name=f"seq{p}_i_left")
        self.j_left = Signal(cw, name=f"seq{p}_j_left")
        self.stride = Signal(aw, name=f"seq{p}_stride")
        self.ostride = Signal(aw, name=f"seq{p}_ostride")
        self.count = Signal(cw, name=f"seq{p}_count")

    def build(self, m, mem, word, halt):
        """Add the sequencer to ``m``; return the port's ``(valid, word)`` of this cycle."""
        p = self.port
        valid = mem.issue.valid
        is_start = Signal(name=f"seq{p}_start")
        is_plain = Signal(name=f"seq{p}_plain")
        m.d.comb += [
            is_start.eq(valid & is_op(mem.issue.word, self.starter)),
            is_plain.eq(valid & (is_op(mem.issue.word, self.plain[0])
                                 | is_op(mem.issue.word, self.plain[1]))),
        ]
        emit = Signal(name=f"seq{p}_emit")
        m.d.comb += emit.eq(~is_start & ~is_plain & self.active & ~halt)

        cur = self._current(word, is_start)
        port = self._port(m, mem, cur, is_start, is_plain, emit)

        advance = is_start | (self.active & (is_plain | ~halt))
        with m.If(mem.clear):
            m.d.sync += self.active.eq(0)
            for reg in self.cfg_regs.values():
                m.d.sync += reg.eq(reg.init)
        with m.Else():
            self._configure(m, mem, word)
            with m.If(advance):
                self._advance(m, cur)
        return port

    def _current(self, word, is_start):
        """The element of this cycle (from the starter itself, or from the registers)."""
        aw, regs = self.addr_bits, self.cfg_regs
        return {
            "s": Mux(is_start, word.s.as_value(), self.s),
            "addr": Mux(is_start, word.addr[:aw], self.addr),
            "row": Mux(is_start, word.addr[:aw], self.row),
            "i": Mux(is_start, regs["count"] - 1, self.i_left),
            "j": Mux(is_start, regs["ocount"] - 1, self.j_left),
            "stride": Mux(is_start, regs["stride"], self.stride),
            "ostride": Mux(is_start, regs["ostride"], self.ostride),
            "count": Mux(is_start, regs["count"], self.count),
        }

    def _port(self, m, mem, cur, is_start, is_plain, emit):
        """The port's instruction of this cycle: the queue's plain one, else the element
        (as the plain instruction its starter stands for)."""
        p = self.port
        layout = instruction_layout()
        element = Signal(layout, name=f"seq{p}_element")
        m.d.comb += [element.opcode.eq(isa.OPS_BY_NAME[isa.MEM_SEQ_STARTS[self.starter]].opcode),
                     element.s.eq(cur["s"]), element.addr.eq(cur["addr"])]
        port_valid = Signal(name=f"port{p}_valid")
        port_word = Signal(isa.INSTR_BITS, name=f"port{p}_word")
        m.d.comb += [port_valid.eq(is_start | is_plain | emit),
                     port_word.eq(Mux(is_plain, mem.issue.word, element.as_value()))]
        return port_valid, port_word

    def _configure(self, m, mem, word):
        """At the end of the cycle: ``agi`` (``ago``) for this port sets the (outer) stride
        and count."""
        for name in ("agi", "ago"):
            regs = ("stride", "count") if name == "agi" else ("ostride", "ocount")
            with m.If(mem.issue.valid & is_op(mem.issue.word, name) & (word.g == self.port)):
                m.d.sync += [self.cfg_regs[regs[0]].eq(word.stride[:self.addr_bits]),
                             self.cfg_regs[regs[1]].eq(word.count)]

    def _advance(self, m, cur):
        """At the end of the cycle: step past element ``cur`` (next in the row, else the
        first of the next row, else the sequence ends)."""
        m.d.sync += [self.s.eq(cur["s"]), self.stride.eq(cur["stride"]),
                     self.ostride.eq(cur["ostride"]), self.count.eq(cur["count"])]
        with m.If(cur["i"] != 0):
            m.d.sync += [self.active.eq(1), self.addr.eq(cur["addr"] + cur["stride"]),
                         self.row.eq(cur["row"]), self.i_left.eq(cur["i"] - 1),
                         self.j_left.eq(cur["j"])]
        with m.Elif(cur["j"] != 0):
            next_row = (cur["row"] + cur["ostride"])[:self.addr_bits]
            m.d.sync += [self.active.eq(1), self.addr.eq(next_row), self.row.eq(next_row),
                         self.i_left.eq(cur["count"] - 1), self.j_left.eq(cur["j"] - 1)]
        with m.Else():
            m.d.sync += self.active.eq(0)
