"""C2C rule (docs/architecture.md section 7d): rule 15, what one chip's program must keep for
its links. The rules across chips (a ``recv`` and the frame it takes, the deskews) are
:mod:`opentsp.firmware.system`'s."""

from opentsp import isa
from opentsp.firmware.checker.progressions import EXPAND, Issue
from opentsp.firmware.checker.report import error_at

__all__ = ["RULE_C2C", "check_c2c"]

#: A ``send``/``mark`` into a busy link, a stream operand of the wrong direction for the
#: slice's edge, a ``deskew`` that is not its queue's first instruction, a second ``deskew``,
#: or a chip with a ``deskew`` whose other queues do not start with ``sync``.
RULE_C2C = 15

# The direction a C2C slice reads (what arrives at its edge) and writes (into the chip).
_READS = {"C2C_W": isa.Dir.W, "C2C_E": isa.Dir.E}


def check_c2c(timing):
    """Rule 15 for every C2C queue of ``timing`` (a :class:`Timing`).

    Yields
    ------
    CheckError
    """
    if not timing.config.c2c_links:
        return
    for q, slice_ in enumerate(timing.slices):
        if slice_.kind == isa.SliceKind.C2C:
            issues = [i for i in timing.issues if i.queue == q]
            yield from _directions(timing, slice_.name, issues)
            yield from _busy(timing, slice_.name, issues)
    yield from _deskews(timing)


def _directions(timing, name, issues):
    reads = _READS[name]
    for issue in issues:
        instr = issue.instr
        for operand in instr.stream_reads + instr.op.writes:
            want = reads if operand in instr.stream_reads else isa.Dir(1 - reads)
            ref = instr.stream(operand)
            if ref.dir != want:
                what = "reads" if operand in instr.stream_reads else "writes"
                way = "eastward" if want == isa.Dir.E else "westward"
                cause = f"{instr.op.name} of {name} {what} {ref}: at this edge it {what} " \
                        f"only {way} streams"
                yield error_at(timing, issue, RULE_C2C, issue.t0, cause, 0)


def _busy(timing, name, issues):
    """Frames on one link at least the previous frame's cycles apart."""
    frames = {}         # link -> [(cycle, kind, issue, copy)]
    for issue in issues:
        mnemonic = issue.instr.op.mnemonic
        if mnemonic not in ("send", "mark"):
            continue
        kind = isa.FrameKind.DATA if mnemonic == "send" else isa.FrameKind.MARK
        for k in range(min(issue.n, EXPAND)):
            frames.setdefault(issue.instr["l"], []).append((issue.cycle(k), kind, issue, k))
    for link, sent in frames.items():
        sent.sort(key=lambda frame: frame[0])
        for (before, kind, _, _), (cycle, _, issue, k) in zip(sent, sent[1:], strict=False):
            cycles = isa.c2c_frame_cycles(timing.config, kind)
            if cycle < before + cycles:
                cause = (f"{issue.instr.op.name} on {isa.c2c_link_name(name, link)} in cycle "
                         f"{cycle}: the link is busy until cycle {before + cycles - 1} with "
                         f"the frame of cycle {before} ({cycles} cycles)")
                yield error_at(timing, issue, RULE_C2C, cycle, cause, k)


def _deskews(timing):
    """One ``deskew`` at most, first in its queue; then every other queue starts with
    ``sync`` (or ends at once)."""
    found = [(q, index) for q, program in enumerate(timing.programs)
             for index, instr in enumerate(program)
             if isinstance(instr, isa.Instr) and instr.op.mnemonic == "deskew"]
    for number, (q, index) in enumerate(found):
        issue = Issue(q, index, timing.programs[q][index], 0, 1, 1, False)
        if index:
            yield error_at(timing, issue, RULE_C2C, 0, "deskew must be its queue's first "
                           "instruction: a chip takes another's time before it does anything")
        elif number:
            yield error_at(timing, issue, RULE_C2C, 0, "a second deskew on the chip: it "
                           "takes another's time once")
    if not found or found[0][1]:
        return
    for q, program in enumerate(timing.programs):
        first = program[0] if program else None
        if q == found[0][0] or not isinstance(first, isa.Instr):
            continue
        if first.op.mnemonic not in ("sync", "deskew", "end"):
            issue = Issue(q, 0, first, 0, 1, 1, False)
            cause = (f"{first} of {timing.slices[q].name} in cycle 0, on a chip that "
                     f"deskews: its queues must wait on sync until the deskew releases them")
            yield error_at(timing, issue, RULE_C2C, 0, cause)
