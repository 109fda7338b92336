"""The disassembler: a firmware image back to assembly text.

The text assembles (for the same configuration) to a byte-identical image: every instruction
is written out, ``nop`` and ``end`` included, and every data record becomes a ``.data ... u8``
line. An instruction with an operand the assembler refuses for this configuration (past
``mem_words``, ``streams``, ``mxm_size`` ..., which the encoding and the hardware allow), or a
``repeat`` with nothing before it to repeat, is written as ``.word`` with its text in the
comment.
"""

import numpy as np

from opentsp import isa

__all__ = ["disassemble"]


def disassemble(image):
    """Return assembly text for ``image`` (an :class:`~opentsp.firmware.image.Image`).

    Each instruction line carries a comment with its issue slot (for ``repeat``: the slots of
    its copies).
    """
    config = image.config
    lines = [f"; disassembled OpenTSP image for configuration {config.name!r}",
             f".config {config.name}"]
    mems = isa.mem_slices(config)
    if image.data:
        lines.append("")
    for (mem, addr) in sorted(image.data):
        values = ", ".join(str(int(v)) for v in np.asarray(image.data[(mem, addr)]))
        lines.append(f".data {mems[mem].name}, {addr}, u8: {values}")
    for slice_, instrs in zip(isa.queues(config), image.queues, strict=True):
        if len(instrs) == 1 and instrs[0].op.mnemonic == "end":
            continue
        lines += ["", f".queue {slice_.name}"]
        slot = 0
        has_real = False        # the assembler refuses a repeat with nothing to repeat
        for instr in instrs:
            raw = not _assemblable(instr, config) or (instr.op.mnemonic == "repeat"
                                                      and not has_real)
            has_real = has_real or instr.op.unit != isa.Unit.ICU
            text = f"    .word {instr.encode():#010x}" if raw else f"    {instr}"
            if instr.op.mnemonic == "repeat":
                n, d = instr["n"], instr["d"]
                first = slot + d - 1
                copies = (f"copies at {first}" if n == 1 else
                          f"copies at {first}, {first + d}, .. {first + (n - 1) * d}")
                comment = f"slots {slot}..{slot + n * d - 1}, {copies}"
            elif instr.op.mnemonic == "nop":
                comment = f"slots {slot}..{slot + instr.slots - 1}"
            else:
                comment = f"slot {slot}"
            if raw:
                comment += f": {instr} (not accepted as text)"
            lines.append(f"{text:<28} ; {comment}")
            slot += instr.slots
    return "\n".join(lines) + "\n"


def _assemblable(instr, config):
    """True if the assembler takes ``instr`` as text for ``config`` (operands within the
    configuration's limits)."""
    op = instr.op
    for field in op.fields:
        if field.kind == "dtype" or field.name == "chain":
            continue
        value = instr[field.name]
        if field.kind == "stream":
            if field.name == "a" and instr.chained:
                continue
            width = op.operand_width(field.name, instr.dtype, instr.rtype)
            if isa.StreamRef.decode(value).id + width > config.streams:
                return False
        elif not (1 if field.kind == "count" else 0) <= value <= isa.field_limit(field, config):
            return False
    return True
