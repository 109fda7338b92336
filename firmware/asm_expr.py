"""Assembler expressions: their grammar, and the names (``.equ`` constants, labels) they use.

An expression is integers (literals as :func:`~opentsp.firmware.lexer.number_value` reads
them), names, ``+ - * // %`` and parentheses. It parses to a tree of
tuples: ``("num", value, loc)``, ``("name", text, loc)``, ``("neg", node, loc)`` and
``("bin", op, left, right, loc)``. Names may be used before their definition, so trees are
evaluated only once the whole program is parsed (:class:`SymbolTable`).
"""

from opentsp.firmware.lexer import AsmError, describe, number_value

__all__ = ["parse_expr", "node_loc", "SymbolTable"]


def parse_expr(cur):
    """Parse an expression at :class:`~opentsp.firmware.lexer.Cursor` ``cur``; its tree."""
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
        return ("num", number_value(tok), tok.loc)
    if tok.kind == "float":
        raise AsmError(tok.loc, f"{tok.text!r} is a float literal; an integer is expected here "
                       f"(floats stand only in .data of f32, f16 or bf16)")
    if tok.kind == "ident" and not tok.text.startswith("."):
        cur.next()
        return ("name", tok.text, tok.loc)
    if cur.at_op("("):
        cur.next()
        node = parse_expr(cur)
        cur.expect_op(")", "to close the parenthesis")
        return node
    raise AsmError(tok.loc, f"expected a number, a name or '(', found {describe(tok)}")


def node_loc(node):
    """Where an expression starts."""
    while node[0] == "bin":
        node = node[2]
    return node[-1]


class SymbolTable:
    """The program's names: their definitions, evaluated on first use."""

    def __init__(self):
        self._definitions = {}      # name -> (tree, loc of the name)
        self._values = {}
        self._resolving = set()     # names being evaluated, to catch circular definitions

    def define(self, tok, node):
        """Define name ``tok`` (a token) as expression ``node``; names are unique."""
        if tok.text in self._definitions:
            first = self._definitions[tok.text][1]
            raise AsmError(tok.loc, f"duplicate name {tok.text!r} (first defined at {first})")
        self._definitions[tok.text] = (node, tok.loc)

    def evaluate(self, node):
        """The integer value of expression tree ``node``."""
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "neg":
            return -self.evaluate(node[1])
        if kind == "name":
            return self.lookup(node[1], node[2])
        _, op, left, right, loc = node
        a, b = self.evaluate(left), self.evaluate(right)
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
        """The value of ``name``, used at ``loc``."""
        if name in self._values:
            return self._values[name]
        if name not in self._definitions:
            raise AsmError(loc, f"unknown name {name!r}")
        if name in self._resolving:
            raise AsmError(loc, f"circular definition of {name!r}")
        self._resolving.add(name)
        try:
            value = self.evaluate(self._definitions[name][0])
        finally:
            self._resolving.discard(name)
        self._values[name] = value
        return value

    def values(self):
        """``name -> value`` of every name, in the order of definition."""
        return {name: self.lookup(name, loc) for name, (_, loc) in self._definitions.items()}
