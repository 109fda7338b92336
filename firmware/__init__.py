"""Firmware tools: the image format, the assembler, the disassembler and the timing checker."""

from .asm import AsmError, Loc, Program, assemble, assemble_file
from .checker import CheckError, check, check_or_raise
from .disasm import disassemble
from .image import Image, ImageError, load

__all__ = [
    "AsmError", "Loc", "Program", "assemble", "assemble_file", "CheckError", "check",
    "check_or_raise", "disassemble", "Image", "ImageError", "load",
]
