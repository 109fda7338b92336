"""Firmware tools: the image format, the assembler, the disassembler and the timing checker."""

from opentsp.firmware.asm import AsmError, Loc, Program, assemble, assemble_file
from opentsp.firmware.checker import CheckError, check, check_or_raise
from opentsp.firmware.disasm import disassemble
from opentsp.firmware.image import Image, ImageError, load

__all__ = [
    "AsmError", "Loc", "Program", "assemble", "assemble_file", "CheckError", "check",
    "check_or_raise", "disassemble", "Image", "ImageError", "load",
]
