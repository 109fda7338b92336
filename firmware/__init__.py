"""Firmware tools: the image format (:mod:`.image`), the assembler (:mod:`.asm`: its lexer
:mod:`.lexer`, then :mod:`.asm_parser`, :mod:`.asm_expr`, :mod:`.asm_encode`,
:mod:`.asm_layout`, :mod:`.asm_timing`), the disassembler (:mod:`.disasm`), the static timing
checker (:mod:`.checker`, one module per rule family) and the GEMM generators
(:mod:`.gen_gemm`, :mod:`.gen_gemm_requant`)."""

from opentsp.firmware.asm import AsmError, Loc, Program, assemble, assemble_file
from opentsp.firmware.checker import CheckError, check, check_or_raise
from opentsp.firmware.disasm import disassemble
from opentsp.firmware.image import Image, ImageError, load

__all__ = [
    "AsmError", "Loc", "Program", "assemble", "assemble_file", "CheckError", "check",
    "check_or_raise", "disassemble", "Image", "ImageError", "load",
]
