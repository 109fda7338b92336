"""The disassembler: a firmware image back to assembly text.

The text assembles (for the same configuration) to a byte-identical image: every instruction
is written out, ``nop`` and ``end`` included, and every data record becomes a ``.data ... u8``
line.
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
        for instr in instrs:
            text = f"    {instr}"
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
            lines.append(f"{text:<28} ; {comment}")
            slot += instr.slots
    return "\n".join(lines) + "\n"
