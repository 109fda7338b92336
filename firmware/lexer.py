"""The assembler's lexer: source text to tokens, each with its source location.

Comments (``;`` or ``#`` to the end of the line) are dropped and lines ending with a backslash
are joined to the next one, so the parser sees one token list per logical line. Number literals
are checked here (:func:`number_value`): decimal without a leading zero, ``0x``, ``0o`` and
``0b`` with their digits, ``_`` anywhere after the first character. The location
types and :class:`AsmError` live here because every stage of the assembler, this one first,
reports errors at a source location.
"""

import re
from dataclasses import dataclass

__all__ = ["Loc", "AsmError", "Token", "Cursor", "logical_lines", "describe", "number_value"]


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


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<float>[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+(?![0-9A-Za-z_.$])
      |[0-9][0-9_]*\.[0-9_]*(?![0-9A-Za-z_.$]))
  | (?P<num>[0-9][0-9A-Za-z_.$]*)
  | (?P<ident>[A-Za-z_.$][A-Za-z0-9_.$]*)
  | (?P<op>//|[-+*%(),:\[\]])
""", re.VERBOSE)

_COMMENT_MARKERS = (";", "#")

#: Number prefixes: (base, name of the base, its digits).
_BASES = {"0x": (16, "hexadecimal", "0123456789abcdef"), "0o": (8, "octal", "01234567"),
          "0b": (2, "binary", "01")}
_DIGIT_NAMES = {16: "0-9, a-f", 10: "0-9", 8: "0-7", 2: "0 or 1"}


@dataclass(frozen=True)
class Token:
    """One token: its kind (``num``, ``float``, ``ident``, ``op`` or ``eol``), its text and
    location. A ``float`` is decimal digits with a fraction (``1.5``, ``2.``) or an exponent
    (``1e-3``, ``2.5E+4``); ``_`` may stand between digits."""
    kind: str
    text: str
    loc: Loc


def logical_lines(text, filename):
    """Tokenise ``text``: one token list per non-empty logical line.

    Parameters
    ----------
    text : str
        The source.
    filename : str
        Name recorded in every :class:`Loc`.

    Yields
    ------
    list of Token
        The tokens of one logical line (continuations joined), ending with an ``eol`` token.

    Raises
    ------
    AsmError
        On a character that starts no token, or a continuation on the last line.
    """
    chars, locs = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        continued = line.endswith("\\")
        if continued:
            line = line[:-1]
        for col, char in enumerate(line, start=1):
            chars.append(char)
            locs.append(Loc(filename, number, col))
        # A blank stands for the line break, so tokens never run across joined lines.
        chars.append(" ")
        locs.append(Loc(filename, number, len(line) + 1))
        if continued:
            continue
        tokens = _tokenise("".join(chars), locs)
        if tokens:
            tokens.append(Token("eol", "", locs[-1]))
            yield tokens
        chars, locs = [], []
    if chars:
        raise AsmError(locs[-1], "line continuation at the end of the file")


def _strip_comment(raw):
    """``raw`` up to its first comment marker, trailing blanks removed."""
    cut = len(raw)
    for marker in _COMMENT_MARKERS:
        index = raw.find(marker)
        if index >= 0:
            cut = min(cut, index)
    return raw[:cut].rstrip()


def _tokenise(joined, locs):
    """The tokens of one logical line ``joined``, whose character ``i`` is at ``locs[i]``."""
    tokens = []
    pos = 0
    while pos < len(joined):
        match = _TOKEN.match(joined, pos)
        if match is None:
            raise AsmError(locs[pos], f"unexpected character {joined[pos]!r}")
        if match.lastgroup != "ws":
            tokens.append(Token(match.lastgroup, match.group(), locs[pos]))
            if match.lastgroup == "num":
                number_value(tokens[-1])        # a bad literal is refused where it stands
        pos = match.end()
    return tokens


def number_value(tok):
    """The value of number token ``tok``.

    A literal is ``0x`` (hexadecimal), ``0o`` (octal) or ``0b`` (binary; prefixes in either
    case) followed by at least one digit of its base, or decimal digits; ``_`` may stand
    anywhere after the first character and is ignored. A decimal literal other than ``0`` must
    not start with ``0``: C would read ``007`` as octal and Python refuses it, so it is refused,
    with what to write instead.

    Parameters
    ----------
    tok : Token
        A ``num`` token: a digit followed by letters, digits, ``_``, ``.`` or ``$``.

    Returns
    -------
    int

    Raises
    ------
    AsmError
        At the token, on a bad literal.
    """
    text = tok.text
    base, name, digits = _BASES.get(text[:2].lower(), (10, "decimal", "0123456789"))
    body = (text if base == 10 else text[2:]).replace("_", "").lower()
    if not body:
        raise AsmError(tok.loc, f"bad number {text!r}: no {name} digits after {text[:2]}")
    for char in body:
        if char not in digits:
            article = "an" if name[0] in "aeiou" else "a"
            raise AsmError(tok.loc, f"bad number {text!r}: {char!r} is not {article} {name} "
                           f"digit ({_DIGIT_NAMES[base]})")
    if base == 10 and len(body) > 1 and body[0] == "0":
        raise AsmError(tok.loc, _leading_zero(text, body))
    return int(body, base)


def _leading_zero(text, body):
    """The message for decimal literal ``text`` (digits ``body``) with a leading zero."""
    decimal = int(body, 10)
    significant = body.lstrip("0")
    octal = ""
    if significant and set(significant) <= set("01234567"):
        value = int(significant, 8)
        octal = f" or 0o{significant} (octal{'' if value == decimal else f', {value}'})"
    return f"number {text!r} has a leading zero: write {decimal} (decimal){octal}"


def describe(tok):
    """How an error message names ``tok``."""
    return "end of line" if tok.kind == "eol" else repr(tok.text)


class Cursor:
    """A read position in the tokens of one logical line; it never moves past ``eol``."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0

    @property
    def tok(self):
        """The current token."""
        return self.tokens[self.pos]

    def peek(self):
        """The token after the current one (the current ``eol`` at the end)."""
        return self.tokens[min(self.pos + 1, len(self.tokens) - 1)]

    def next(self):
        """Return the current token and move past it (unless it is ``eol``)."""
        tok = self.tokens[self.pos]
        if tok.kind != "eol":
            self.pos += 1
        return tok

    def at_op(self, text):
        """True if the current token is operator ``text``."""
        return self.tok.kind == "op" and self.tok.text == text

    def expect_op(self, text, what):
        """Take operator ``text``; ``what`` completes the error message without it."""
        tok = self.tok
        if not self.at_op(text):
            raise AsmError(tok.loc, f"expected {text!r} {what}, found {describe(tok)}")
        return self.next()

    def expect_ident(self, what):
        """Take an identifier; ``what`` names the one expected in the error message."""
        tok = self.tok
        if tok.kind != "ident":
            raise AsmError(tok.loc, f"expected {what}, found {describe(tok)}")
        return self.next()

    def expect_eol(self):
        """Raise :class:`AsmError` unless the statement ends here."""
        tok = self.tok
        if tok.kind != "eol":
            raise AsmError(tok.loc, f"unexpected {describe(tok)} at the end of the statement")
