"""Rule 14 (docs/architecture.md section 8): a VXM or MXM instruction reads a float operand only
where its producer wrote that float type, and an integer operand only where it wrote an integer.

The checker sees the types of the producers that state one (a typed VXM instruction's result,
an MXM ``acc``'s int32, an ``acc.f32``'s f32) and of the operands of the VXM and of the MXM
(``lw``/``abc`` read int8, ``lw.bf16``/``abc.bf16`` bf16, ...), on streams and through the
chain (``r``: the superlane's VXM result of ``isa.VXM_CHAIN_DISTANCE`` or more cycles before).
Integers of other widths may be read (a byte of an int32 is an int8); bytes that pass through
memory or the SXM carry no type the checker can see.
"""

from opentsp import isa
from opentsp.firmware.checker.report import describe, error_at

__all__ = ["RULE_TYPE", "check_types"]

#: A float operand read from an integer producer, an integer from a float one, or one float type
#: from another.
RULE_TYPE = 14
#: Copies of a ``repeat`` whose reads are checked (the first ones: they share their producers'
#: kinds unless the program changes them, which the first copies show).
_COPIES = 8


def _kind(dtype):
    """What must agree: the float type itself, or "integer" for every integer width."""
    return dtype.suffix if dtype.is_float else "integer"


def _result_type(instr, s, config):
    """The type ``instr`` writes on stream ``s`` (one of its groups), or None if it states
    none."""
    if not (instr.op.typed or instr.op.mnemonic == "acc"):
        return None
    for name in instr.op.writes:
        _, ids = instr.group(name, config)
        if s in ids:
            return instr.op.operand_type(name, instr.dtype, instr.rtype)
    return None


def check_types(timing):
    """Rule 14 for every typed VXM issue of ``timing``: at most one error per instruction.

    Yields
    ------
    CheckError
    """
    chain = _VxmResults(timing)
    for issue in timing.issues:
        if issue.instr.op.typed or issue.instr.op.unit == isa.Unit.MXM:
            yield from _check_issue(timing, chain, issue)


def _check_issue(timing, chain, issue):
    """The first mismatch of ``issue``'s operands (copies up to ``_COPIES``), if any."""
    instr = issue.instr
    for name in instr.op.reads:
        wanted = instr.op.operand_type(name, instr.dtype, instr.rtype) or isa.DType.I8
        for k in range(min(issue.n, _COPIES)):
            found = (chain.before(issue.cycle(k)) if name == "a" and instr.chained
                     else _stream_producer(timing, issue, name, k))
            if found is None:
                continue
            producer, written, where = found
            if _kind(written) != _kind(wanted):
                cause = (f"type mismatch: {instr} reads {where} as {wanted.suffix}, but "
                         f"{describe(timing, producer)} wrote {written.suffix} there")
                yield error_at(timing, issue, RULE_TYPE, issue.cycle(k), cause, k)
                return


def _stream_producer(timing, issue, name, k):
    """``(producer issue, its type, where)`` of the first stream of operand ``name`` in copy
    ``k`` of ``issue``, or None if nothing with a type wrote it."""
    direction, ids = issue.instr.group(name, timing.config)
    diag = timing.read_diagonal(issue, direction, k)
    found = timing.writer_at(direction, ids[0], diag, timing.position(issue.queue))
    if found is None:
        return None
    _, producer, _ = found
    written = _result_type(producer.instr, ids[0], timing.config)
    if written is None:
        return None
    return producer, written, f"{direction.name.lower()}{ids[0]}"


class _VxmResults:
    """The VXM's results in issue order: what a chained operand reads in a cycle."""

    def __init__(self, timing):
        copies = []
        for issue in timing.issues:
            if issue.instr.op.unit == isa.Unit.VXM and issue.instr.op.typed:
                copies += [(issue.cycle(k), issue) for k in range(issue.n)]
        copies.sort(key=lambda copy: copy[0])
        self._cycles = [cycle for cycle, _ in copies]
        self._issues = [issue for _, issue in copies]

    def before(self, cycle):
        """``(issue, result type, "r")`` of the result a chained operand reads in ``cycle``
        (the last VXM instruction executed ``isa.VXM_CHAIN_DISTANCE`` or more cycles before),
        or None."""
        source = isa.chain_source(self._cycles, cycle)
        if source is None:
            return None
        producer = self._issues[source]
        return producer, producer.instr.rtype, "r"
