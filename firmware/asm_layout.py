"""The assembler's second pass: statements to queue contents and initial memory words.

:class:`SliceMap` resolves slice names, :class:`MemoryInit` collects the initial memory words
(``.data`` and fetched instructions), :class:`QueueBuilder` fills the instruction queues
(instructions, ``.word``, ``.at`` padding, ``.fetched`` code) and finally ends them.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from opentsp import fp, isa, queue_timing
from opentsp.firmware.asm_encode import InstrEncoder
from opentsp.firmware.asm_expr import node_loc
from opentsp.firmware.asm_parser import DATA_TYPES, FLOAT_DATA_TYPES, data_width
from opentsp.firmware.asm_timing import nop_padding, resolve_ats_after_sync
from opentsp.firmware.lexer import AsmError, Loc

__all__ = ["SliceMap", "MemoryInit", "QueueBuilder"]


class SliceMap:
    """The slices of a configuration by (case-insensitive) name."""

    def __init__(self, config):
        self.config = config
        self.by_name = {s.name.upper(): s for s in isa.floorplan(config)}
        self.mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(config))}

    def find(self, tok):
        """The slice named by token ``tok``."""
        slice_ = self.by_name.get(tok.text.upper())
        if slice_ is None:
            raise AsmError(tok.loc, f"unknown slice {tok.text!r}; this configuration has "
                           f"{', '.join(s.name for s in isa.floorplan(self.config))}")
        return slice_

    def mems(self, toks):
        """``(memory index, slice, token)`` of each MEM slice named in ``toks``."""
        mems = []
        for tok in toks:
            slice_ = self.find(tok)
            if slice_.kind != isa.SliceKind.MEM:
                raise AsmError(tok.loc, f"{slice_.name} is not a MEM slice")
            mems.append((self.mem_index[slice_.name], slice_, tok))
        return mems


class MemoryInit:
    """The initial memory words: ``(memory index, word address) -> lanes`` uint8 bytes, each
    set once."""

    def __init__(self, config, slices, symbols):
        self.config = config
        self.slices = slices
        self.symbols = symbols
        self.data = {}
        self.locs = {}          # where each word was set

    def set_word(self, mem, word, value, loc, what=""):
        """Set word ``word`` of memory ``mem`` (``(index, slice, token)``) to ``value``;
        ``what`` prefixes the error message if it is already set."""
        index, slice_, _ = mem
        key = (index, word)
        if key in self.data:
            raise AsmError(loc, f"{what}word {word} of {slice_.name} is already "
                           f"initialised at {self.locs[key]}")
        self.data[key] = value
        self.locs[key] = loc

    def add_data(self, stmt):
        """Store the values of a ``.data`` statement, byte-planar (one word per byte of an
        element) or spread (one slice per byte)."""
        slice_arg, addr_node, type_tok, values = stmt.args
        spread = isinstance(slice_arg, tuple)
        mems = self.slices.mems(slice_arg[1] if spread else (slice_arg,))
        type_name = type_tok.text.lower()
        width = data_width(type_name)
        if spread and len(mems) != width:
            raise AsmError(slice_arg[0].loc, f"{type_name} spreads over {width} slice(s), not "
                           f"{len(mems)}")
        addr = self.symbols.evaluate(addr_node)
        self._check_words(addr, addr_node, 1 if spread else width)
        raw = self._elements(values, type_name)
        for i in range(width):
            mem = mems[i] if spread else mems[0]
            plane = ((raw >> np.uint64(8 * i)) & np.uint64(0xFF)).astype(np.uint8)
            self.set_word(mem, addr if spread else addr + i, plane, mem[2].loc)

    def _check_words(self, addr, addr_node, words):
        """Words ``addr`` to ``addr + words - 1`` exist."""
        if not 0 <= addr or addr + words > self.config.mem_words:
            span = f"words {addr}..{addr + words - 1}" if words > 1 else f"word {addr}"
            raise AsmError(node_loc(addr_node), f"{span} out of range "
                           f"(0..{self.config.mem_words - 1})")

    def _elements(self, values, type_name):
        """The values (expression trees) of type ``type_name`` as unsigned uint64 lanes, zero
        past the last value."""
        lanes = self.config.lanes
        if len(values) > lanes:
            raise AsmError(node_loc(values[lanes]), f"{len(values)} values for {lanes} lanes")
        if type_name in FLOAT_DATA_TYPES:
            elements = [_float_bits(node, type_name) for node in values]
            return np.array(elements + [0] * (lanes - len(elements)), dtype=np.uint64)
        width, low, high = DATA_TYPES[type_name]
        elements = []
        for node in values:
            value = self.symbols.evaluate(node)
            if not low <= value <= high:
                raise AsmError(node_loc(node), f"value {value} out of range for "
                               f"{type_name} ({low}..{high})")
            elements.append(value & ((1 << 8 * width) - 1))
        elements += [0] * (lanes - len(elements))
        return np.array(elements, dtype=np.uint64)


def _float_bits(node, type_name):
    """The bits of float literal ``node`` in ``type_name``, rounded to nearest even; a finite
    literal that overflows, or a non-zero one that rounds to zero (or, in f32, to a subnormal,
    which f32 reads as zero), does not fit."""
    _, value, text, loc = node
    fmt = FLOAT_DATA_TYPES[type_name]
    bits = fp.encode_float(value, fmt)
    magnitude = bits & ((1 << (fmt.exp_bits + fmt.man_bits)) - 1)
    inf = fmt.exp_max << fmt.man_bits
    if magnitude == inf and not text.lstrip("+-").lower() == "inf":
        largest = (2 - 2.0 ** -fmt.man_bits) * 2.0 ** (fmt.exp_max - 1 - fmt.bias)
        raise AsmError(loc, f"value {text} does not fit {type_name}: beyond its largest "
                       f"finite value {largest:g}")
    smallest = 1 << fmt.man_bits if fmt is fp.FP32 else 1
    if value != 0 and magnitude < smallest and not math.isnan(value):
        what = "smallest normal 2**-126 (f32 reads subnormals as zero)" if fmt is fp.FP32 \
            else f"smallest value 2**{1 - fmt.bias - fmt.man_bits}"
        raise AsmError(loc, f"value {text} does not fit {type_name}: below its {what}")
    return bits


@dataclass
class _FetchBlock:
    """Where a queue's fetched code goes (section 5b): one byte per MEM slice."""
    mems: list                      # (memory index, slice, token) of byte 0..3
    next_addr: int
    loc: Loc                        # of the .fetched
    addr_node: tuple


@dataclass
class _Queue:
    slice: isa.Slice
    instrs: list = field(default_factory=list)
    locs: list = field(default_factory=list)
    slot: int = 0
    end_loc: Loc | None = None
    has_real: bool = False
    last_open: Loc | None = None
    synced: Loc | None = None       # the queue's first sync: slots after it are not known yet
    ats: list = field(default_factory=list)     # (instr index, At) per .at after a sync
    fetch: _FetchBlock | None = None
    fetched: int = 0                # instructions placed in memory (the last ones of instrs)
    first_fetched: Loc | None = None    # the queue's first .fetched


class QueueBuilder:
    """Fills the instruction queues, statement after statement, in the current ``.queue``.

    Parameters
    ----------
    config : Config
        The configuration assembled for.
    slices : SliceMap
        Its slices.
    memory : MemoryInit
        Receives fetched instructions.
    symbols : SymbolTable
        The program's names.
    """

    def __init__(self, config, slices, memory, symbols):
        self.config = config
        self.slices = slices
        self.memory = memory
        self.symbols = symbols
        self.encoder = InstrEncoder(config, symbols)
        self.queues = [_Queue(s) for s in isa.queues(config)]
        self.queue_of = {q.slice.name: i for i, q in enumerate(self.queues)}
        self.current = None             # index of the queue of the last .queue
        self.fetch_locations = {}       # (mem, address) -> Loc of each fetched instruction

    # Statements -----------------------------------------------------------------------------

    def open_queue(self, stmt):
        """``.queue SLICE``: later statements go to its queue."""
        tok = stmt.args[0]
        slice_ = self.slices.find(tok)
        if not slice_.has_queue:
            raise AsmError(tok.loc, f"{slice_.name} has no instruction queue")
        self.current = self.queue_of[slice_.name]
        self.queues[self.current].last_open = stmt.loc

    def add_instr(self, stmt):
        """An instruction line."""
        head, op = stmt.args[:2]
        queue = self._current_queue(head.loc, "instruction")
        unit = isa.unit_of(queue.slice)
        if op.unit not in (isa.Unit.ICU, unit):
            raise AsmError(head.loc, f"{op.mnemonic} is a {op.unit.name} instruction; the "
                           f"queue of {queue.slice.name} takes {unit.name} and flow-control "
                           f"instructions only")
        if op.mnemonic == "repeat" and not queue.has_real:
            raise AsmError(head.loc, f"repeat has no instruction before it to repeat in the "
                           f"queue of {queue.slice.name}")
        self._place(queue, self.encoder.encode(stmt), head.loc)

    def add_word(self, stmt):
        """``.word EXPR``: one instruction given as its 32-bit word. Any word that decodes and
        belongs to the queue is taken, operands past the configuration's limits and a
        ``repeat`` with nothing to repeat included (the hardware defines them; the
        disassembler writes such instructions this way)."""
        queue = self._current_queue(stmt.loc, ".word")
        value = self.symbols.evaluate(stmt.args[0])
        try:
            instr = isa.decode(value)
            isa.check_config(instr, self.config)
        except isa.EncodingError as error:
            raise AsmError(stmt.loc, f".word: {error}") from None
        unit = isa.unit_of(queue.slice)
        if instr.op.unit not in (isa.Unit.ICU, unit):
            raise AsmError(stmt.loc, f".word {value:#010x} is {instr.op.mnemonic}, a "
                           f"{instr.op.unit.name} instruction; the queue of {queue.slice.name} "
                           f"takes {unit.name} and flow-control instructions only")
        self._place(queue, instr, stmt.loc)

    def pad_to(self, stmt):
        """``.at EXPR``: pad with ``nop`` up to that cycle (after a ``sync``: later, once every
        queue is known)."""
        queue = self._current_queue(stmt.loc, ".at")
        if queue.fetch is not None:
            raise AsmError(stmt.loc, f".at in fetched code of {queue.slice.name} (after "
                           f".fetched at {queue.fetch.loc}): every statement there is one "
                           f"word; use nop")
        node = stmt.args[0]
        target = self.symbols.evaluate(node)
        if queue.synced is not None:
            queue.ats.append((len(queue.instrs), queue_timing.At(target, node_loc(node))))
            return
        if target < queue.slot:
            raise AsmError(node_loc(node), f".at {target}: the queue of {queue.slice.name} "
                           f"is already at slot {queue.slot}")
        for nop in nop_padding(target - queue.slot):
            self._append(queue, nop, stmt.loc)

    def start_fetched(self, stmt):
        """``.fetched [MEM x4], ADDR``: the queue's next instructions go to memory."""
        queue = self._current_queue(stmt.loc, ".fetched")
        open_tok, toks, addr_node = stmt.args
        if len(toks) != isa.INT32_GROUP:
            raise AsmError(open_tok.loc, f".fetched takes {isa.INT32_GROUP} MEM slices (one per "
                           f"byte of an instruction word), not {len(toks)}")
        mems = self.slices.mems(toks)
        addr = self.symbols.evaluate(addr_node)
        if not 0 <= addr < self.config.mem_words:
            raise AsmError(node_loc(addr_node), f"word {addr} out of range "
                           f"(0..{self.config.mem_words - 1})")
        queue.fetch = _FetchBlock(mems, addr, stmt.loc, addr_node)
        if queue.first_fetched is None:
            queue.first_fetched = stmt.loc

    # Placement ------------------------------------------------------------------------------

    def _current_queue(self, loc, what):
        """The current queue, which must exist and not be ended; ``what`` names the
        statement in errors."""
        if self.current is None:
            raise AsmError(loc, f"{what} outside a .queue section")
        queue = self.queues[self.current]
        if queue.end_loc is not None:
            raise AsmError(loc, f"{what} after 'end' in the queue of {queue.slice.name} "
                           f"(ended at {queue.end_loc})")
        return queue

    def _place(self, queue, instr, loc):
        """Append ``instr`` (from an instruction line or ``.word``) to ``queue``."""
        op = instr.op
        self._append(queue, instr, loc)
        if op.unit != isa.Unit.ICU:
            queue.has_real = True
        if op.mnemonic == "end":
            queue.end_loc = loc
        if op.mnemonic in ("sync", "deskew") and queue.synced is None:
            queue.synced = loc

    def _append(self, queue, instr, loc):
        if queue.fetch is not None:
            self._store_fetched(queue, instr, loc)
        elif len(queue.instrs) >= self.config.queue_depth:
            raise AsmError(loc, f"queue of {queue.slice.name} is full: more than queue_depth "
                           f"{self.config.queue_depth} instructions")
        queue.instrs.append(instr)
        queue.locs.append(loc)
        queue.slot += instr.slots

    def _store_fetched(self, queue, instr, loc):
        """Put ``instr`` into memory at the queue's next ``.fetched`` address (section 5b):
        int32 lane 0, byte ``i`` in the ``i``-th slice, the other lanes zero."""
        block = queue.fetch
        addr = block.next_addr
        if addr >= self.config.mem_words:
            raise AsmError(loc, f"no room for this fetched instruction: word {addr} is beyond "
                           f"mem_words {self.config.mem_words} (the .fetched block starts at "
                           f"{node_loc(block.addr_node)})")
        word = instr.encode()
        for i, mem in enumerate(block.mems):
            value = np.zeros(self.config.lanes, dtype=np.uint8)
            value[0] = (word >> (8 * i)) & 0xFF
            self.memory.set_word(mem, addr, value, loc, what="fetched instruction: ")
        self.fetch_locations[(block.mems[0][0], addr)] = loc
        block.next_addr = addr + 1
        queue.fetched += 1

    # The end --------------------------------------------------------------------------------

    def finish(self, deskew=None):
        """Resolve the ``.at`` after a ``sync`` (``deskew``: the cycle the chip's ``deskew``
        releases its queues in, section 7d) and end every queue.

        Returns
        -------
        queues : list of list of isa.Instr
            The preloaded instructions of every queue.
        locations : dict
            ``(queue index, instr index) -> Loc``, as :class:`~opentsp.firmware.asm.Program`.
        """
        for queue in self.queues:
            self._check_fetcher(queue)
        resolve_ats_after_sync(self.queues, self.config, deskew)
        locations = {}
        preloaded = []
        for index, queue in enumerate(self.queues):
            self._end(queue)
            for i, loc in enumerate(queue.locs):
                if loc is not None:
                    locations[(index, i)] = loc
            preloaded.append(queue.instrs[:len(queue.instrs) - queue.fetched])
        return preloaded, locations

    @staticmethod
    def _check_fetcher(queue):
        """A queue with fetched code fetches it: an ``ifetch`` stands among its preloaded
        instructions (fetched code alone is never reached, and the image would refuse the
        queue). A queue with no ``end`` either is left to :meth:`_end`, which says so."""
        if queue.first_fetched is None or queue.end_loc is None:
            return
        preloaded = queue.instrs[:len(queue.instrs) - queue.fetched]
        if not any(instr.op.mnemonic == "ifetch" for instr in preloaded):
            raise AsmError(queue.first_fetched, f"the queue of {queue.slice.name} has fetched "
                           f"code but no ifetch before its first .fetched: nothing would "
                           f"fetch it")

    def _end(self, queue):
        """Append the final ``end`` unless the queue has one or fetches it."""
        if queue.fetch is not None and queue.end_loc is None:
            raise AsmError(queue.fetch.loc, f"the queue of {queue.slice.name} has fetched "
                           f"code but no 'end': end it with an explicit 'end'")
        fetches = any(instr.op.mnemonic == "ifetch" for instr in queue.instrs)
        if queue.end_loc is None and not fetches:
            depth = self.config.queue_depth
            if len(queue.instrs) >= depth:
                raise AsmError(queue.locs[-1], f"no room for the final 'end' in the queue "
                               f"of {queue.slice.name} (queue_depth {depth})")
            queue.instrs.append(isa.encode("end"))
            queue.locs.append(queue.last_open)
