"""The OpenTSP assembler: text to a firmware :class:`~opentsp.firmware.image.Image`.

Syntax (one statement a line; ``;`` and ``#`` start comments; a trailing backslash continues a
line; mnemonics, directives, slice names, types and stream prefixes are case-insensitive,
``.equ`` names and labels are case-sensitive)::

    .config default                 ; optional; must match the configuration assembled for
    .equ N, 4 * (2 + 1)             ; named constant: integers (12, 0x1f, 0b101, -3), names,
                                    ; + - * // % and parentheses
    x: .data MEM_W1, 8, i8: 1, -2   ; initial memory: MEM slice, word address, type, values
    .data MEM_W0, 0, i32: 70000, -1 ; i16/i32 are byte-planar: word ADDR+i holds byte i
    .data [MEM_W0, MEM_W1], 0, i16: 5  ; or spread: byte i in word ADDR of the i-th slice
    .queue MEM_W1                   ; instructions for this slice's queue (any slice)
        read e0, x                  ; stream operands: e<id>, w<id>, e(EXPR), w(EXPR)
    .at 10                          ; pad with nop so that the next instruction issues in 10
        write 3, w2
        repeat 4, 1                 ; re-issue the previous instruction 4 times
    .queue VXM
        add.i8 e1, e0, w4
        cvt.i32.i8 w0, e4           ; cvt.T.R: from type T to type R

Instruction fetch (docs/architecture.md section 5b)::

    .queue VXM
        ifetch e0, 3                ; preloaded: takes 3 words from e0..e3 in cycles 0, 1, 2
    .fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 40
        add.i32 e4, e0, w0          ; fetched word 0: byte i in word 40 of the i-th slice
        relu.i32 e4, e0             ; fetched word 1: word 41
        end                         ; fetched word 2: word 42

``.word EXPR`` places one instruction given as its 32-bit word (any word that decodes, with
operands past the configuration's limits too, e.g. an address with high bits set, or a
``repeat`` with nothing to repeat: the disassembler writes such instructions this way, so that
its text assembles back to the image).

Every instruction of a queue after its ``.fetched`` is not preloaded but placed in memory, one
instruction word per address as int32 lane 0 (byte i in the i-th of the four MEM slices, the
other lanes zero), from the address given on: the queue's program continues with them in order.
Getting them there is the program's job: a timed ``read`` (or ``sread`` sequence) per slice so
that the bytes reach the queue's slice together in the cycles of its ``ifetch``, as for any
int32 operand; the checker decodes what actually arrives (rule 11). A later ``.fetched`` in the
same queue continues at another address. In fetched code every statement is one word: ``.at`` is
not allowed (use ``nop``), and the queue must end with an explicit ``end``.

Every queue gets an ``end`` appended unless its last instruction is one or it has an ``ifetch``
(its ``end`` is then fetched, or written explicitly); slices without a ``.queue`` section get
just ``end``. Errors are :class:`AsmError` with a one-line message
``FILE:LINE:COL: error: cause``.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from opentsp import isa, queue_timing
from opentsp.config import Config, get_config
from opentsp.firmware.image import Image

__all__ = ["Loc", "AsmError", "Program", "assemble", "assemble_file", "DATA_TYPES"]

#: ``.data`` element types: (bytes per element, smallest value, largest value).
DATA_TYPES = {
    "i8": (1, -(1 << 7), (1 << 7) - 1),
    "u8": (1, 0, (1 << 8) - 1),
    "i16": (2, -(1 << 15), (1 << 15) - 1),
    "i32": (4, -(1 << 31), (1 << 31) - 1),
}
MAX_NOP = (1 << isa.COUNT_BITS) - 1


@dataclass(frozen=True)
class Loc:
    """A source location: file name, 1-based line and column."""
    file: str
    line: int
    col: int

    def __str__(self):
        return f"{self.file}:{self.line}:{self.col}"


class AsmError(ValueError):
    """An error in a program, located in its source; ``str()`` is one line.

    Attributes
    ----------
    loc : Loc or None
        Where the error is.
    cause : str
        What is wrong, without the location.
    """

    def __init__(self, loc, cause):
        self.loc = loc
        self.cause = cause
        where = f"{loc}: " if loc is not None else ""
        super().__init__(f"{where}error: {cause}")


@dataclass
class Program:
    """An assembled program: the image and where each instruction came from.

    Attributes
    ----------
    image : Image
        The firmware image.
    locations : dict
        ``(queue_index, instr_index) -> Loc`` for every instruction of the image (padding
        ``nop`` points at its ``.at``, an appended ``end`` at the last ``.queue`` of its slice;
        queues never opened have no entries).
    symbols : dict
        Values of every ``.equ`` name and label.
    filename : str
        The source's name.
    fetch_locations : dict
        ``(mem, address) -> Loc`` of every instruction placed by ``.fetched`` (byte 0's word).
    """
    image: Image
    locations: dict = field(default_factory=dict)
    symbols: dict = field(default_factory=dict)
    filename: str = "<input>"
    fetch_locations: dict = field(default_factory=dict)

    @property
    def config(self):
        return self.image.config


# Lexing -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>0[xX][0-9a-fA-F_]+|0[bB][01_]+|[0-9][0-9_]*)
  | (?P<ident>[A-Za-z_.$][A-Za-z0-9_.$]*)
  | (?P<op>//|[-+*%(),:\[\]])
""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str       # "num", "ident", "op", "eol"
    text: str
    loc: Loc


def _logical_lines(text, filename):
    """Yield (tokens, loc of the line start) per logical line (continuations joined)."""
    chars, locs = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        cut = len(raw)
        for marker in (";", "#"):
            index = raw.find(marker)
            if index >= 0:
                cut = min(cut, index)
        line = raw[:cut].rstrip()
        continued = line.endswith("\\")
        if continued:
            line = line[:-1]
        for col, char in enumerate(line, start=1):
            chars.append(char)
            locs.append(Loc(filename, number, col))
        chars.append(" ")
        locs.append(Loc(filename, number, len(line) + 1))
        if continued:
            continue
        joined = "".join(chars)
        tokens = []
        pos = 0
        while pos < len(joined):
            match = _TOKEN.match(joined, pos)
            if match is None:
                raise AsmError(locs[pos], f"unexpected character {joined[pos]!r}")
            if match.lastgroup != "ws":
                tokens.append(_Tok(match.lastgroup, match.group(), locs[pos]))
            pos = match.end()
        if tokens:
            tokens.append(_Tok("eol", "", locs[-1]))
            yield tokens
        chars, locs = [], []
    if chars:
        raise AsmError(locs[-1], "line continuation at the end of the file")


class _Cursor:
    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0

    @property
    def tok(self):
        return self.tokens[self.pos]

    def next(self):
        tok = self.tokens[self.pos]
        if tok.kind != "eol":
            self.pos += 1
        return tok

    def at_op(self, text):
        return self.tok.kind == "op" and self.tok.text == text

    def expect_op(self, text, what):
        tok = self.tok
        if not self.at_op(text):
            raise AsmError(tok.loc, f"expected {text!r} {what}, found {_describe(tok)}")
        return self.next()

    def expect_ident(self, what):
        tok = self.tok
        if tok.kind != "ident":
            raise AsmError(tok.loc, f"expected {what}, found {_describe(tok)}")
        return self.next()

    def expect_eol(self):
        tok = self.tok
        if tok.kind != "eol":
            raise AsmError(tok.loc, f"unexpected {_describe(tok)} at the end of the statement")


def _describe(tok):
    return "end of line" if tok.kind == "eol" else repr(tok.text)


# Expressions --------------------------------------------------------------------------------
# Trees of tuples: ("num", value, loc), ("name", text, loc), ("neg", node, loc),
# ("bin", op, left, right, loc).

def _parse_expr(cur):
    node = _parse_term(cur)
    while cur.at_op("+") or cur.at_op("-"):
        op = cur.next()
        node = ("bin", op.text, node, _parse_term(cur), op.loc)
    return node


def _parse_term(cur):
    node = _parse_unary(cur)
    while cur.at_op("*") or cur.at_op("//") or cur.at_op("%"):
        op = cur.next()
        node = ("bin", op.text, node, _parse_unary(cur), op.loc)
    return node


def _parse_unary(cur):
    if cur.at_op("-") or cur.at_op("+"):
        op = cur.next()
        inner = _parse_unary(cur)
        return ("neg", inner, op.loc) if op.text == "-" else inner
    tok = cur.tok
    if tok.kind == "num":
        cur.next()
        return ("num", int(tok.text.replace("_", ""), 0), tok.loc)
    if tok.kind == "ident" and not tok.text.startswith("."):
        cur.next()
        return ("name", tok.text, tok.loc)
    if cur.at_op("("):
        cur.next()
        node = _parse_expr(cur)
        cur.expect_op(")", "to close the parenthesis")
        return node
    raise AsmError(tok.loc, f"expected a number, a name or '(', found {_describe(tok)}")


def _node_loc(node):
    """Where an expression starts."""
    while node[0] == "bin":
        node = node[2]
    return node[-1]


# Statements ---------------------------------------------------------------------------------

@dataclass
class _Stmt:
    kind: str            # config, equ, data, queue, at, instr
    loc: Loc
    args: tuple


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
    fetch: list | None = None       # [[(mem, slice, tok)] * 4, next address, .fetched loc]
    fetched: int = 0                # instructions placed in memory (the last ones of instrs)


class _Assembler:
    def __init__(self, text, config, filename):
        self.filename = filename
        self.config = config
        self.text = text
        self.symbols = {}        # name -> (node, loc)
        self.values = {}
        self.resolving = set()

    # Pass 1: parse every line, collect names.

    def parse(self):
        stmts = []
        for tokens in _logical_lines(self.text, self.filename):
            cur = _Cursor(tokens)
            label = None
            if (tokens[0].kind == "ident" and not tokens[0].text.startswith(".")
                    and tokens[1].kind == "op" and tokens[1].text == ":"):
                label = cur.next()
                cur.next()
                if cur.tok.kind == "eol" or cur.tok.text.lower() != ".data":
                    raise AsmError(label.loc, f"label {label.text!r} must be followed by a "
                                   f".data directive on the same line")
            head = cur.expect_ident("a directive or an instruction")
            word = head.text.lower()
            if word.startswith("."):
                stmts.append(self.parse_directive(word, head, cur, label))
            else:
                stmts.append(self.parse_instr(head, cur))
            cur.expect_eol()
        return stmts

    def define(self, tok, node):
        if tok.text in self.symbols:
            first = self.symbols[tok.text][1]
            raise AsmError(tok.loc, f"duplicate name {tok.text!r} (first defined at {first})")
        self.symbols[tok.text] = (node, tok.loc)

    def parse_directive(self, word, head, cur, label):
        if word == ".config":
            name = cur.expect_ident("a configuration name")
            return _Stmt("config", head.loc, (name,))
        if word == ".equ":
            name = cur.expect_ident("a name")
            if name.text.startswith("."):
                raise AsmError(name.loc, f"bad name {name.text!r}")
            cur.expect_op(",", "after the name")
            node = _parse_expr(cur)
            self.define(name, node)
            return _Stmt("equ", head.loc, (name, node))
        if word == ".data":
            if cur.at_op("["):
                open_tok = cur.next()
                slice_tok = [cur.expect_ident("a MEM slice name")]
                while cur.at_op(","):
                    cur.next()
                    slice_tok.append(cur.expect_ident("a MEM slice name"))
                cur.expect_op("]", "to close the list of slices")
                slice_tok = (open_tok, tuple(slice_tok))
            else:
                slice_tok = cur.expect_ident("a MEM slice name")
            cur.expect_op(",", "after the slice")
            addr = _parse_expr(cur)
            cur.expect_op(",", "after the address")
            type_tok = cur.expect_ident("a data type (i8, u8, i16, i32)")
            if type_tok.text.lower() not in DATA_TYPES:
                raise AsmError(type_tok.loc, f"unknown data type {type_tok.text!r}; known: "
                               f"{', '.join(DATA_TYPES)}")
            cur.expect_op(":", "after the data type")
            values = [_parse_expr(cur)]
            while cur.at_op(","):
                cur.next()
                values.append(_parse_expr(cur))
            if label is not None:
                self.define(label, addr)
            return _Stmt("data", head.loc, (slice_tok, addr, type_tok, values))
        if word == ".queue":
            slice_tok = cur.expect_ident("a slice name")
            return _Stmt("queue", head.loc, (slice_tok,))
        if word == ".at":
            return _Stmt("at", head.loc, (_parse_expr(cur),))
        if word == ".word":
            return _Stmt("word", head.loc, (_parse_expr(cur),))
        if word == ".fetched":
            open_tok = cur.expect_op("[", "before the list of four MEM slices")
            slice_toks = [cur.expect_ident("a MEM slice name")]
            while cur.at_op(","):
                cur.next()
                slice_toks.append(cur.expect_ident("a MEM slice name"))
            cur.expect_op("]", "to close the list of slices")
            cur.expect_op(",", "after the slices")
            return _Stmt("fetched", head.loc, (open_tok, tuple(slice_toks), _parse_expr(cur)))
        raise AsmError(head.loc, f"unknown directive {head.text!r}; known: .config, .equ, "
                       f".data, .queue, .at, .fetched, .word")

    def parse_instr(self, head, cur):
        parts = head.text.lower().split(".")
        base, suffixes = parts[0], parts[1:]
        op = isa.OPS_BY_NAME.get(base)
        if op is None:
            raise AsmError(head.loc, f"unknown mnemonic {head.text!r}")
        wanted = 2 if op.converts else 1 if op.typed else 0
        if len(suffixes) != wanted:
            form = {0: base, 1: f"{base}.T", 2: f"{base}.T.R"}[wanted]
            raise AsmError(head.loc, f"{head.text!r}: expected the form {form}")
        types = []
        for suffix in suffixes:
            try:
                types.append(isa.DType[suffix.upper()])
            except KeyError:
                raise AsmError(head.loc, f"{head.text!r}: unknown type {suffix!r}; known: "
                               f"i8, i16, i32") from None
        operands = []
        if cur.tok.kind != "eol":
            while True:
                operands.append(self.parse_operand(cur))
                if not cur.at_op(","):
                    break
                cur.next()
        if cur.tok.kind != "eol":
            raise AsmError(cur.tok.loc, f"unexpected {_describe(cur.tok)} in the operands")
        if len(operands) != len(op.operands):
            loc = operands[len(op.operands)][1] if len(operands) > len(op.operands) else head.loc
            raise AsmError(loc, f"{base} takes {len(op.operands)} operand(s) "
                           f"({', '.join(op.operands) or 'none'}), not {len(operands)}")
        for index, ((kind, loc, node), name) in enumerate(zip(operands, op.operands,
                                                              strict=True)):
            if kind == "chain" and not (name == "a" and op.chainable):
                kind = "expr"       # just a name elsewhere (e.g. `.equ r, 5`)
                operands[index] = (kind, loc, node)
            want = "stream" if op.field(name).kind == "stream" else "expr"
            if kind != want and kind != "chain":
                what = "a stream (e<id> or w<id>)" if want == "stream" else "a number"
                raise AsmError(loc, f"operand {name} of {base} must be {what}")
        return _Stmt("instr", head.loc, (head, op, types, operands))

    def parse_operand(self, cur):
        tok = cur.tok
        if (tok.kind == "ident" and tok.text == isa.CHAIN_OPERAND
                and cur.tokens[cur.pos + 1].kind in ("eol", "op")
                and cur.tokens[cur.pos + 1].text in ("", ",")):
            cur.next()
            # ALU chaining (the VXM's previous result) where operand a takes it.
            return ("chain", tok.loc, ("name", tok.text, tok.loc))
        if tok.kind == "ident":
            match = re.fullmatch(r"([eEwW])([0-9]+)?", tok.text)
            if match and (match.group(2) is not None or
                          cur.tokens[cur.pos + 1].kind == "op"
                          and cur.tokens[cur.pos + 1].text == "("):
                cur.next()
                direction = isa.Dir[match.group(1).upper()]
                if match.group(2) is not None:
                    node = ("num", int(match.group(2)), tok.loc)
                else:
                    cur.next()
                    node = _parse_expr(cur)
                    cur.expect_op(")", "to close the stream id")
                return ("stream", tok.loc, (direction, node))
        return ("expr", tok.loc, _parse_expr(cur))

    # Names.

    def eval(self, node):
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "neg":
            return -self.eval(node[1])
        if kind == "name":
            return self.lookup(node[1], node[2])
        _, op, left, right, loc = node
        a, b = self.eval(left), self.eval(right)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise AsmError(loc, "division by zero")
        return a // b if op == "//" else a % b

    def lookup(self, name, loc):
        if name in self.values:
            return self.values[name]
        if name not in self.symbols:
            raise AsmError(loc, f"unknown name {name!r}")
        if name in self.resolving:
            raise AsmError(loc, f"circular definition of {name!r}")
        self.resolving.add(name)
        try:
            value = self.eval(self.symbols[name][0])
        finally:
            self.resolving.discard(name)
        self.values[name] = value
        return value

    # Pass 2: lay out queues and data.

    def run(self):
        stmts = self.parse()
        for stmt in stmts:
            if stmt.kind == "config":
                self.check_config(stmt.args[0])
        if self.config is None:
            self.config = get_config("default")
        config = self.config
        self.slices = {s.name.upper(): s for s in isa.floorplan(config)}
        self.mems = {s.name: i for i, s in enumerate(isa.mem_slices(config))}
        self.queues = [_Queue(s) for s in isa.queues(config)]
        self.queue_of = {q.slice.name: i for i, q in enumerate(self.queues)}
        self.data = {}
        self.data_locs = {}
        self.fetch_locations = {}
        current = None
        for stmt in stmts:
            if stmt.kind == "equ":
                self.lookup(stmt.args[0].text, stmt.args[0].loc)
            elif stmt.kind == "data":
                self.do_data(*stmt.args)
            elif stmt.kind == "queue":
                current = self.do_queue(stmt)
            elif stmt.kind == "at":
                self.do_at(current, stmt)
            elif stmt.kind == "fetched":
                self.do_fetched(current, stmt)
            elif stmt.kind == "instr":
                self.do_instr(current, stmt)
            elif stmt.kind == "word":
                self.do_word(current, stmt)
        return self.finish()

    def check_config(self, tok):
        try:
            named = get_config(tok.text)
        except ValueError as error:
            raise AsmError(tok.loc, str(error)) from None
        if self.config is None:
            self.config = named
        elif named != self.config:
            raise AsmError(tok.loc, f"program is written for configuration {named.name!r}, "
                           f"assembling for {self.config.name!r}")

    def find_slice(self, tok):
        slice_ = self.slices.get(tok.text.upper())
        if slice_ is None:
            raise AsmError(tok.loc, f"unknown slice {tok.text!r}; this configuration has "
                           f"{', '.join(s.name for s in isa.floorplan(self.config))}")
        return slice_

    def do_data(self, slice_arg, addr_node, type_tok, values):
        config = self.config
        spread = isinstance(slice_arg, tuple)
        tokens = slice_arg[1] if spread else (slice_arg,)
        mems = []
        for tok in tokens:
            slice_ = self.find_slice(tok)
            if slice_.kind != isa.SliceKind.MEM:
                raise AsmError(tok.loc, f"{slice_.name} is not a MEM slice")
            mems.append((self.mems[slice_.name], slice_, tok))
        type_name = type_tok.text.lower()
        width, low, high = DATA_TYPES[type_name]
        if spread and len(mems) != width:
            raise AsmError(slice_arg[0].loc, f"{type_name} spreads over {width} slice(s), not "
                           f"{len(mems)}")
        addr = self.eval(addr_node)
        words = 1 if spread else width
        if not 0 <= addr or addr + words > config.mem_words:
            span = f"words {addr}..{addr + words - 1}" if words > 1 else f"word {addr}"
            raise AsmError(_node_loc(addr_node), f"{span} out of range "
                           f"(0..{config.mem_words - 1})")
        if len(values) > config.lanes:
            raise AsmError(_node_loc(values[config.lanes]), f"{len(values)} values for "
                           f"{config.lanes} lanes")
        elements = []
        for node in values:
            value = self.eval(node)
            if not low <= value <= high:
                raise AsmError(_node_loc(node), f"value {value} out of range for "
                               f"{type_name} ({low}..{high})")
            elements.append(value & ((1 << 8 * width) - 1))
        elements += [0] * (config.lanes - len(elements))
        raw = np.array(elements, dtype=np.uint64)
        for i in range(width):
            mem, slice_, tok = mems[i] if spread else mems[0]
            word = addr if spread else addr + i
            key = (mem, word)
            if key in self.data:
                raise AsmError(tok.loc, f"word {word} of {slice_.name} is already "
                               f"initialised at {self.data_locs[key]}")
            self.data[key] = ((raw >> np.uint64(8 * i)) & np.uint64(0xFF)).astype(np.uint8)
            self.data_locs[key] = tok.loc

    def do_queue(self, stmt):
        tok = stmt.args[0]
        slice_ = self.find_slice(tok)
        if not slice_.has_queue:
            raise AsmError(tok.loc, f"{slice_.name} has no instruction queue")
        index = self.queue_of[slice_.name]
        self.queues[index].last_open = stmt.loc
        return index

    def need_queue(self, current, loc, what):
        if current is None:
            raise AsmError(loc, f"{what} outside a .queue section")
        queue = self.queues[current]
        if queue.end_loc is not None:
            raise AsmError(loc, f"{what} after 'end' in the queue of {queue.slice.name} "
                           f"(ended at {queue.end_loc})")
        return queue

    def do_fetched(self, current, stmt):
        queue = self.need_queue(current, stmt.loc, ".fetched")
        open_tok, toks, addr_node = stmt.args
        if len(toks) != isa.INT32_GROUP:
            raise AsmError(open_tok.loc, f".fetched takes {isa.INT32_GROUP} MEM slices (one per "
                           f"byte of an instruction word), not {len(toks)}")
        mems = []
        for tok in toks:
            slice_ = self.find_slice(tok)
            if slice_.kind != isa.SliceKind.MEM:
                raise AsmError(tok.loc, f"{slice_.name} is not a MEM slice")
            mems.append((self.mems[slice_.name], slice_, tok))
        addr = self.eval(addr_node)
        if not 0 <= addr < self.config.mem_words:
            raise AsmError(_node_loc(addr_node), f"word {addr} out of range "
                           f"(0..{self.config.mem_words - 1})")
        queue.fetch = [mems, addr, stmt.loc, addr_node]

    def place_fetched(self, queue, instr, loc):
        """Put ``instr`` into memory at the queue's next ``.fetched`` address (section 5b)."""
        mems, addr, _, addr_node = queue.fetch
        if addr >= self.config.mem_words:
            raise AsmError(loc, f"no room for this fetched instruction: word {addr} is beyond "
                           f"mem_words {self.config.mem_words} (the .fetched block starts at "
                           f"{_node_loc(addr_node)})")
        word = instr.encode()
        for i, (mem, slice_, _) in enumerate(mems):
            key = (mem, addr)
            if key in self.data:
                raise AsmError(loc, f"fetched instruction: word {addr} of {slice_.name} is "
                               f"already initialised at {self.data_locs[key]}")
            value = np.zeros(self.config.lanes, dtype=np.uint8)
            value[0] = (word >> (8 * i)) & 0xFF
            self.data[key] = value
            self.data_locs[key] = loc
        self.fetch_locations[(mems[0][0], addr)] = loc
        queue.fetch[1] = addr + 1
        queue.fetched += 1

    def append(self, queue, instr, loc):
        if queue.fetch is not None:
            self.place_fetched(queue, instr, loc)
            queue.instrs.append(instr)
            queue.locs.append(loc)
            queue.slot += instr.slots
            return
        if len(queue.instrs) >= self.config.queue_depth:
            raise AsmError(loc, f"queue of {queue.slice.name} is full: more than queue_depth "
                           f"{self.config.queue_depth} instructions")
        queue.instrs.append(instr)
        queue.locs.append(loc)
        queue.slot += instr.slots

    def do_at(self, current, stmt):
        queue = self.need_queue(current, stmt.loc, ".at")
        if queue.fetch is not None:
            raise AsmError(stmt.loc, f".at in fetched code of {queue.slice.name} (after "
                           f".fetched at {queue.fetch[2]}): every statement there is one word; "
                           f"use nop")
        node = stmt.args[0]
        target = self.eval(node)
        if queue.synced is not None:    # placed once all queues are known (resolve_ats)
            queue.ats.append((len(queue.instrs), queue_timing.At(target, _node_loc(node))))
            return
        if target < queue.slot:
            raise AsmError(_node_loc(node), f".at {target}: the queue of {queue.slice.name} "
                           f"is already at slot {queue.slot}")
        pad = target - queue.slot
        while pad:
            count = min(pad, MAX_NOP)
            self.append(queue, isa.encode("nop", count=count), stmt.loc)
            pad -= count

    def do_instr(self, current, stmt):
        head, op, types, operands = stmt.args
        queue = self.need_queue(current, head.loc, "instruction")
        unit = isa.unit_of(queue.slice)
        if op.unit not in (isa.Unit.ICU, unit):
            raise AsmError(head.loc, f"{op.mnemonic} is a {op.unit.name} instruction; the "
                           f"queue of {queue.slice.name} takes {unit.name} and flow-control "
                           f"instructions only")
        if op.mnemonic == "repeat" and not queue.has_real:
            raise AsmError(head.loc, f"repeat has no instruction before it to repeat in the "
                           f"queue of {queue.slice.name}")
        values = {}
        if op.typed:
            values["dtype"] = int(types[0])
        if op.converts:
            values["rtype"] = int(types[1])
            if types[0] == types[1]:
                raise AsmError(head.loc, f"{head.text}: source and result types are both "
                               f"{types[0].suffix}")
        dtype = types[0] if op.typed else None
        rtype = types[-1] if op.converts else dtype
        for (kind, loc, payload), name in zip(operands, op.operands, strict=True):
            fld = op.field(name)
            if kind == "chain":
                values["chain"], values[name] = 1, 0
                continue
            if kind == "stream":
                direction, node = payload
                ident = self.eval(node)
                width = op.operand_width(name, dtype, rtype)
                if ident < 0 or ident + width > self.config.streams:
                    span = (f"streams {ident}..{ident + width - 1}" if width > 1
                            else f"stream {ident}")
                    raise AsmError(loc, f"{span} out of range: this configuration has "
                                   f"{self.config.streams} streams per direction")
                if ident % width:
                    suffix = op.operand_type(name, dtype, rtype).suffix
                    raise AsmError(loc, f"{suffix} operand {name} must start an aligned "
                                   f"group of {width} streams (id a multiple of {width}), "
                                   f"not {ident}")
                values[name] = isa.StreamRef(direction, ident).encode()
            else:
                values[name] = self.check_field(op, fld, self.eval(payload), loc)
        try:
            instr = isa.encode(op.mnemonic, **values)
        except isa.EncodingError as error:
            raise AsmError(head.loc, str(error)) from None
        self.place(queue, instr, head.loc)

    def do_word(self, current, stmt):
        """``.word EXPR``: one instruction given as its 32-bit word. Any word that decodes and
        belongs to the queue is taken, operands past the configuration's limits and a
        ``repeat`` with nothing to repeat included (the hardware defines them; the
        disassembler writes such instructions this way)."""
        queue = self.need_queue(current, stmt.loc, ".word")
        value = self.eval(stmt.args[0])
        try:
            instr = isa.decode(value)
        except isa.EncodingError as error:
            raise AsmError(stmt.loc, f".word: {error}") from None
        unit = isa.unit_of(queue.slice)
        if instr.op.unit not in (isa.Unit.ICU, unit):
            raise AsmError(stmt.loc, f".word {value:#010x} is {instr.op.mnemonic}, a "
                           f"{instr.op.unit.name} instruction; the queue of {queue.slice.name} "
                           f"takes {unit.name} and flow-control instructions only")
        self.place(queue, instr, stmt.loc)

    def place(self, queue, instr, loc):
        """Append ``instr`` (from an instruction line or ``.word``) to ``queue``."""
        op = instr.op
        self.append(queue, instr, loc)
        if op.unit != isa.Unit.ICU:
            queue.has_real = True
        if op.mnemonic == "end":
            queue.end_loc = loc
        if op.mnemonic == "sync" and queue.synced is None:
            queue.synced = loc

    #: How range errors name a field kind (the others say "operand NAME of MNEMONIC").
    _KIND_NAMES = {"addr": ("address", "mem_words"), "row": ("weight row", "mxm_size"),
                   "accum": ("accumulator", "mxm_accumulators"),
                   "lane": ("lane count", "lanes")}

    def check_field(self, op, fld, value, loc):
        """``value`` of number field ``fld`` within ``isa.field_limit`` for this
        configuration (and at least 1 for counts); returns it."""
        low = 1 if fld.kind == "count" else 0
        high = isa.field_limit(fld, self.config)
        if low <= value <= high:
            return value
        if fld.kind in self._KIND_NAMES:
            what, parameter = self._KIND_NAMES[fld.kind]
            limit = (f" ({parameter} {getattr(self.config, parameter)})"
                     if high < fld.mask else "")
            raise AsmError(loc, f"{what} {value} out of range {low}..{high}{limit}")
        if fld.kind == "flag":
            raise AsmError(loc, f"operand {fld.name} of {op.mnemonic} must be 0 or 1, "
                           f"not {value}")
        raise AsmError(loc, f"operand {fld.name} of {op.mnemonic} must be in {low}..{high}, "
                       f"not {value}")

    def resolve_ats(self):
        """Turn every ``.at`` after a ``sync`` into ``nop`` padding: the cycle in which its queue
        gets there depends on other queues' notifies, so the whole program is scheduled
        (:func:`opentsp.queue_timing.schedule`, with :class:`~opentsp.queue_timing.At`
        placeholders) and
        the target is, as everywhere, an absolute cycle."""
        if not any(queue.ats for queue in self.queues):
            return
        programs = []
        for queue in self.queues:
            items = list(queue.instrs)
            for index, at in reversed(queue.ats):
                items.insert(index, at)
            fetches = any(instr.op.mnemonic == "ifetch" for instr in queue.instrs)
            tail = queue_timing.Stop() if fetches else isa.encode("end")     # the end to come
            programs.append(items + ([tail] if queue.end_loc is None else []))
        try:
            schedules = queue_timing.schedule(programs)
        except queue_timing.AtError as error:
            name = self.queues[error.queue].slice.name
            raise AsmError(error.at.tag, f".at {error.at.cycle}: the queue of {name} is "
                           f"already at cycle {error.cycle} (after its sync)") from None
        for queue, items, sched in zip(self.queues, programs, schedules, strict=True):
            if not queue.ats:
                continue
            instrs, locs, source = [], [], iter(zip(queue.instrs, queue.locs, strict=True))
            for item, start in zip(items, sched.starts, strict=False):
                if not isinstance(item, queue_timing.At):
                    pair = next(source, None)
                    if pair is None:        # the end added for scheduling
                        break
                    instrs.append(pair[0])
                    locs.append(pair[1])
                    continue
                if start is None:
                    raise AsmError(item.tag, f".at {item.cycle}: the queue of "
                                   f"{queue.slice.name} never gets here: its sync at "
                                   f"{queue.synced} or a later one is never released")
                pad = item.cycle - start
                while pad:
                    count = min(pad, MAX_NOP)
                    instrs.append(isa.encode("nop", count=count))
                    locs.append(item.tag)
                    pad -= count
            if len(instrs) - queue.fetched > self.config.queue_depth:
                raise AsmError(locs[self.config.queue_depth], f"queue of {queue.slice.name} is "
                               f"full: more than queue_depth {self.config.queue_depth} "
                               f"instructions (with the padding of .at after a sync)")
            queue.instrs, queue.locs = instrs, locs

    def finish(self):
        self.resolve_ats()
        config = self.config
        end = isa.encode("end")
        locations = {}
        queues = []
        for index, queue in enumerate(self.queues):
            if queue.fetch is not None and queue.end_loc is None:
                raise AsmError(queue.fetch[2], f"the queue of {queue.slice.name} has fetched "
                               f"code but no 'end': end it with an explicit 'end'")
            fetches = any(instr.op.mnemonic == "ifetch" for instr in queue.instrs)
            if queue.end_loc is None and not fetches:
                if len(queue.instrs) >= config.queue_depth:
                    raise AsmError(queue.locs[-1], f"no room for the final 'end' in the queue "
                                   f"of {queue.slice.name} (queue_depth {config.queue_depth})")
                queue.instrs.append(end)
                queue.locs.append(queue.last_open)
            for i, loc in enumerate(queue.locs):
                if loc is not None:
                    locations[(index, i)] = loc
            queues.append(queue.instrs[:len(queue.instrs) - queue.fetched])
        image = Image(config, queues, dict(self.data))
        symbols = {name: self.lookup(name, loc) for name, (_, loc) in self.symbols.items()}
        return Program(image, locations, symbols, self.filename, dict(self.fetch_locations))


def assemble(text, config=None, filename="<input>"):
    """Assemble program ``text``.

    Parameters
    ----------
    text : str
        The source.
    config : Config or str or None
        The configuration to assemble for. ``None`` takes the program's ``.config`` directive,
        or ``default`` without one.
    filename : str
        Name used in error messages and source locations.

    Returns
    -------
    Program

    Raises
    ------
    AsmError
        On the first error, with a ``FILE:LINE:COL: error: cause`` message.
    """
    if config is not None and not isinstance(config, Config):
        config = get_config(config)
    return _Assembler(text, config, filename).run()


def assemble_file(path, config=None):
    """Assemble the file at ``path``; see :func:`assemble`. Text that is not UTF-8 is an
    :class:`AsmError` at the first bad byte; a file that cannot be read, an ``OSError``."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        col = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise AsmError(Loc(str(path), line, col), f"not UTF-8 text: byte "
                       f"{raw[error.start]:#04x}") from None
    return assemble(text, config, filename=str(path))
