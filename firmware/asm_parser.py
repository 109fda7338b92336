"""The assembler's first pass: tokens to statements (see :mod:`opentsp.firmware.asm`).

Parsing checks the syntax and collects every name's definition; values, slices and the
configuration's limits are checked by the second pass, once every name is known.
"""

import math
import re
from dataclasses import dataclass

from opentsp import fp, isa
from opentsp.firmware.asm_expr import parse_expr
from opentsp.firmware.lexer import (
    AsmError,
    Cursor,
    Loc,
    describe,
    logical_lines,
    number_value,
)

__all__ = ["DATA_TYPES", "FLOAT_DATA_TYPES", "Stmt", "parse_program", "data_width"]

#: ``.data`` integer element types: (bytes per element, smallest value, largest value).
DATA_TYPES = {
    "i8": (1, -(1 << 7), (1 << 7) - 1),
    "u8": (1, 0, (1 << 8) - 1),
    "i16": (2, -(1 << 15), (1 << 15) - 1),
    "i32": (4, -(1 << 31), (1 << 31) - 1),
}
#: ``.data`` float element types: their formats (values are float literals).
FLOAT_DATA_TYPES = {"f32": fp.FP32, "f16": fp.FP16, "bf16": fp.BF16}

def data_width(type_name):
    """Bytes per element of ``.data`` type ``type_name`` (lower case)."""
    if type_name in FLOAT_DATA_TYPES:
        fmt = FLOAT_DATA_TYPES[type_name]
        return (1 + fmt.exp_bits + fmt.man_bits) // 8
    return DATA_TYPES[type_name][0]


def _parse_float(cur):
    """A float literal of ``.data``: an optional sign, then a decimal (``1.5``, ``-2e-3``, an
    integer) or ``inf`` or ``nan``; a ``("float", value, text, loc)`` node (``value`` is
    infinite for ``inf`` and for a literal too large for binary64; ``text`` tells which)."""
    sign, loc = "", cur.tok.loc
    if cur.at_op("-") or cur.at_op("+"):
        sign = cur.next().text
    tok = cur.tok
    if tok.kind == "float":
        value = float(tok.text.replace("_", ""))
    elif tok.kind == "num":
        try:
            value = float(number_value(tok))
        except OverflowError:
            value = math.inf
    elif tok.kind == "ident" and tok.text.lower() in ("inf", "nan"):
        value = float(tok.text.lower())
    else:
        raise AsmError(tok.loc, f"expected a float literal (such as 1.5, -2e-3, 7, inf or "
                       f"nan), found {describe(tok)}")
    cur.next()
    return ("float", -value if sign == "-" else value, sign + tok.text, loc)


_STREAM_OPERAND = re.compile(r"([eEwW])([0-9]+)?")


@dataclass
class Stmt:
    """One statement.

    Attributes
    ----------
    kind : str
        ``config``, ``equ``, ``data``, ``queue``, ``at``, ``word``, ``fetched`` or ``instr``.
    loc : Loc
        Where its directive or mnemonic is.
    args : tuple
        What the parser made of the rest (tokens and expression trees), per kind.
    """
    kind: str
    loc: Loc
    args: tuple


def parse_program(text, filename, symbols):
    """Parse every line of ``text``; names defined go into ``symbols``.

    Parameters
    ----------
    text : str
        The source.
    filename : str
        Its name, for source locations.
    symbols : SymbolTable
        Receives every ``.equ`` name and label.

    Returns
    -------
    list of Stmt
    """
    parser = _StatementParser(symbols)
    return [parser.parse_line(tokens) for tokens in logical_lines(text, filename)]


class _StatementParser:
    """Parses one logical line at a time into a :class:`Stmt`, defining names as it goes."""

    def __init__(self, symbols):
        self.symbols = symbols
        self.directives = {".config": self.parse_config, ".equ": self.parse_equ,
                           ".data": self.parse_data, ".queue": self.parse_queue,
                           ".at": self.parse_at, ".word": self.parse_word,
                           ".fetched": self.parse_fetched}

    def parse_line(self, tokens):
        """The statement of one logical line (its tokens, ending with ``eol``). Every
        directive's parser takes its head token, the cursor after it and the line's label."""
        cur = Cursor(tokens)
        label = _parse_label(cur)
        head = cur.expect_ident("a directive or an instruction")
        word = head.text.lower()
        if word.startswith("."):
            directive = self.directives.get(word)
            if directive is None:
                raise AsmError(head.loc, f"unknown directive {head.text!r}; known: .config, "
                               f".equ, .data, .queue, .at, .fetched, .word")
            stmt = directive(head, cur, label)
        else:
            stmt = parse_instr(head, cur)
        cur.expect_eol()
        return stmt

    def parse_config(self, head, cur, label):
        """``.config NAME``."""
        name = cur.expect_ident("a configuration name")
        return Stmt("config", head.loc, (name,))

    def parse_equ(self, head, cur, label):
        """``.equ NAME, EXPR``: defines the name."""
        name = cur.expect_ident("a name")
        if name.text.startswith("."):
            raise AsmError(name.loc, f"bad name {name.text!r}")
        cur.expect_op(",", "after the name")
        node = parse_expr(cur)
        self.symbols.define(name, node)
        return Stmt("equ", head.loc, (name, node))

    def parse_data(self, head, cur, label):
        """``.data SLICE, ADDR, TYPE: VALUES``; SLICE may be a ``[...]`` list (spread)."""
        if cur.at_op("["):
            open_tok = cur.next()
            slice_arg = (open_tok, _parse_slice_list(cur))
        else:
            slice_arg = cur.expect_ident("a MEM slice name")
        cur.expect_op(",", "after the slice")
        addr = parse_expr(cur)
        cur.expect_op(",", "after the address")
        known = [*DATA_TYPES, *FLOAT_DATA_TYPES]
        type_tok = cur.expect_ident(f"a data type ({', '.join(known)})")
        if type_tok.text.lower() not in known:
            raise AsmError(type_tok.loc, f"unknown data type {type_tok.text!r}; known: "
                           f"{', '.join(known)}")
        cur.expect_op(":", "after the data type")
        value = _parse_float if type_tok.text.lower() in FLOAT_DATA_TYPES else parse_expr
        values = [value(cur)]
        while cur.at_op(","):
            cur.next()
            values.append(value(cur))
        if label is not None:
            self.symbols.define(label, addr)
        return Stmt("data", head.loc, (slice_arg, addr, type_tok, values))

    def parse_queue(self, head, cur, label):
        """``.queue SLICE``."""
        slice_tok = cur.expect_ident("a slice name")
        return Stmt("queue", head.loc, (slice_tok,))

    def parse_at(self, head, cur, label):
        """``.at EXPR``."""
        return Stmt("at", head.loc, (parse_expr(cur),))

    def parse_word(self, head, cur, label):
        """``.word EXPR``."""
        return Stmt("word", head.loc, (parse_expr(cur),))

    def parse_fetched(self, head, cur, label):
        """``.fetched [MEM, MEM, MEM, MEM], ADDR``."""
        open_tok = cur.expect_op("[", "before the list of four MEM slices")
        slice_toks = _parse_slice_list(cur)
        cur.expect_op(",", "after the slices")
        return Stmt("fetched", head.loc, (open_tok, slice_toks, parse_expr(cur)))


def _parse_label(cur):
    """Take a leading ``NAME:``, if any; only ``.data`` may follow it."""
    tokens = cur.tokens
    if not (tokens[0].kind == "ident" and not tokens[0].text.startswith(".")
            and tokens[1].kind == "op" and tokens[1].text == ":"):
        return None
    label = cur.next()
    cur.next()
    if cur.tok.kind == "eol" or cur.tok.text.lower() != ".data":
        raise AsmError(label.loc, f"label {label.text!r} must be followed by a "
                       f".data directive on the same line")
    return label


def _parse_slice_list(cur):
    """The slice names of a list whose ``[`` was taken, up to and including its ``]``."""
    slice_toks = [cur.expect_ident("a MEM slice name")]
    while cur.at_op(","):
        cur.next()
        slice_toks.append(cur.expect_ident("a MEM slice name"))
    cur.expect_op("]", "to close the list of slices")
    return tuple(slice_toks)


# Instructions -------------------------------------------------------------------------------

def parse_instr(head, cur):
    """An instruction statement: ``args`` is ``(head, op, types, operands)``, each operand
    ``(kind, loc, payload)`` with kind ``stream`` (payload ``(direction, tree)``), ``expr``
    or ``chain``."""
    op, types = _parse_mnemonic(head)
    operands = _parse_operand_list(cur)
    _check_operands(head, op, operands)
    return Stmt("instr", head.loc, (head, op, types, operands))


def _parse_mnemonic(head):
    """The operation of ``head`` (``name``, an instruction whose name fixes its type such as
    ``abc.bf16``, or ``base.T`` or ``base.T.R``) and its types."""
    text = head.text.lower()
    named = isa.OPS_BY_NAME.get(text)
    if named is not None and not named.typed:
        return named, []
    base, *suffixes = text.split(".")
    op = isa.OPS_BY_NAME.get(base)
    if op is None:
        raise AsmError(head.loc, f"unknown mnemonic {head.text!r}")
    known = [other.name for other in isa.OPS if other.mnemonic == base]
    if suffixes and len(known) > 1:
        raise AsmError(head.loc, f"{head.text!r}: unknown instruction; {base} comes as "
                       f"{', '.join(known)}")
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
                           f"{', '.join(t.suffix for t in isa.DType)}") from None
    return op, types


def _parse_operand_list(cur):
    """The comma-separated operands up to the end of the line."""
    operands = []
    if cur.tok.kind != "eol":
        while True:
            operands.append(_parse_operand(cur))
            if not cur.at_op(","):
                break
            cur.next()
    if cur.tok.kind != "eol":
        raise AsmError(cur.tok.loc, f"unexpected {describe(cur.tok)} in the operands")
    return operands


def _check_operands(head, op, operands):
    """Check the number and kinds of ``operands`` for ``op``; a chain marker where operand
    ``a`` cannot chain becomes an ordinary name (in place)."""
    base = op.name
    if len(operands) != len(op.operands):
        loc = operands[len(op.operands)][1] if len(operands) > len(op.operands) else head.loc
        raise AsmError(loc, f"{base} takes {len(op.operands)} operand(s) "
                       f"({', '.join(op.operands) or 'none'}), not {len(operands)}")
    for index, ((kind, loc, node), name) in enumerate(zip(operands, op.operands, strict=True)):
        if kind == "chain" and not (name == "a" and op.chainable):
            kind = "expr"       # just a name elsewhere (e.g. `.equ r, 5`)
            operands[index] = (kind, loc, node)
        want = "stream" if op.field(name).kind == "stream" else "expr"
        if kind != want and kind != "chain":
            what = "a stream (e<id> or w<id>)" if want == "stream" else "a number"
            raise AsmError(loc, f"operand {name} of {base} must be {what}")


def _parse_operand(cur):
    tok = cur.tok
    after = cur.peek()
    if (tok.kind == "ident" and tok.text == isa.CHAIN_OPERAND
            and after.kind in ("eol", "op") and after.text in ("", ",")):
        cur.next()
        # ALU chaining (the VXM's previous result) where operand a takes it.
        return ("chain", tok.loc, ("name", tok.text, tok.loc))
    if tok.kind == "ident":
        match = _STREAM_OPERAND.fullmatch(tok.text)
        if match and (match.group(2) is not None or after.kind == "op" and after.text == "("):
            return _parse_stream(cur, match)
    return ("expr", tok.loc, parse_expr(cur))


def _parse_stream(cur, match):
    """A stream operand ``e<id>``, ``w<id>``, ``e(EXPR)`` or ``w(EXPR)`` (``match`` is the
    current token's match of the prefix and number)."""
    tok = cur.next()
    direction = isa.Dir[match.group(1).upper()]
    digits = match.group(2)
    if digits is not None:
        if len(digits) > 1 and digits[0] == "0":
            raise AsmError(tok.loc, f"stream {tok.text!r} has a leading zero: write "
                           f"{tok.text[0]}{int(digits)}")
        node = ("num", int(digits), tok.loc)
    else:
        cur.next()
        node = parse_expr(cur)
        cur.expect_op(")", "to close the stream id")
    return ("stream", tok.loc, (direction, node))
