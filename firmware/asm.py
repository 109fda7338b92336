"""The OpenTSP assembler: text to a firmware :class:`~opentsp.firmware.image.Image`.

Syntax (one statement a line; ``;`` and ``#`` start comments; a trailing backslash continues a
line; mnemonics, directives, slice names, types and stream prefixes are case-insensitive,
``.equ`` names and labels are case-sensitive)::

    .config default                 ; optional; must match the configuration assembled for
    .equ N, 4 * (2 + 1)             ; named constant: integers (12, 0x1f, 0o17, 0b101, 1_000,
                                    ; -3; not 007: a leading zero is an error), names,
                                    ; + - * // % and parentheses
    x: .data MEM_W1, 8, i8: 1, -2   ; initial memory: MEM slice, word address, type, values
    .data MEM_W0, 0, i32: 70000, -1 ; i16/i32 are byte-planar: word ADDR+i holds byte i
    .data [MEM_W0, MEM_W1], 0, i16: 5  ; or spread: byte i in word ADDR of the i-th slice
    .queue MEM_W1                   ; instructions for this slice's queue (any slice)
        read e0, x                  ; stream operands: e<id>, w<id>, e(EXPR), w(EXPR)
    .at 10                          ; pad with nop so that the next instruction issues in 10
        write 3, w2
        repeat 4, 1                 ; re-issue the previous instruction 4 times
    .queue VXM
        add.i8 e1, e0, w4
        cvt.i32.i8 w0, e4           ; cvt.T.R: from type T to type R

Instruction fetch (docs/architecture.md section 5b)::

    .queue VXM
        ifetch e0, 3                ; preloaded: takes 3 words from e0..e3 in cycles 0, 1, 2
    .fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 40
        add.i32 e4, e0, w0          ; fetched word 0: byte i in word 40 of the i-th slice
        relu.i32 e4, e0             ; fetched word 1: word 41
        end                         ; fetched word 2: word 42

``.word EXPR`` places one instruction given as its 32-bit word (any word that decodes, with
operands past the configuration's limits too, e.g. an address with high bits set, or a
``repeat`` with nothing to repeat: the disassembler writes such instructions this way, so that
its text assembles back to the image).

Every instruction of a queue after its ``.fetched`` is not preloaded but placed in memory, one
instruction word per address as int32 lane 0 (byte i in the i-th of the four MEM slices, the
other lanes zero), from the address given on: the queue's program continues with them in order.
Getting them there is the program's job: a timed ``read`` (or ``sread`` sequence) per slice so
that the bytes reach the queue's slice together in the cycles of its ``ifetch``, as for any
int32 operand; the checker decodes what actually arrives (rule 11). A later ``.fetched`` in the
same queue continues at another address. In fetched code every statement is one word: ``.at`` is
not allowed (use ``nop``), and the queue must end with an explicit ``end``.

The full reference, with the static checker's rules, is ``docs/assembly.md``.

Every queue gets an ``end`` appended unless its last instruction is one or it has an ``ifetch``
(its ``end`` is then fetched, or written explicitly); slices without a ``.queue`` section get
just ``end``. Errors are :class:`AsmError` with a one-line message
``FILE:LINE:COL: error: cause``.

The work is split by stage: :mod:`~opentsp.firmware.lexer` (tokens, :class:`Loc`,
:class:`AsmError`), :mod:`~opentsp.firmware.asm_parser` (pass 1: statements, names defined,
with :mod:`~opentsp.firmware.asm_expr`), :mod:`~opentsp.firmware.asm_layout` (pass 2: memory
words and queues, with :mod:`~opentsp.firmware.asm_encode` for instruction operands and
:mod:`~opentsp.firmware.asm_timing` for ``.at`` padding); this module drives them.
"""

from dataclasses import dataclass, field
from pathlib import Path

from opentsp.config import Config, get_config
from opentsp.firmware.asm_expr import SymbolTable
from opentsp.firmware.asm_layout import MemoryInit, QueueBuilder, SliceMap
from opentsp.firmware.asm_parser import DATA_TYPES, parse_program
from opentsp.firmware.image import Image
from opentsp.firmware.lexer import AsmError, Loc

__all__ = ["Loc", "AsmError", "Program", "assemble", "assemble_file", "DATA_TYPES"]


@dataclass
class Program:
    """An assembled program: the image and where each instruction came from.

    Attributes
    ----------
    image : Image
        The firmware image.
    locations : dict
        ``(queue_index, instr_index) -> Loc`` for every instruction of the image (padding
        ``nop`` points at its ``.at``, an appended ``end`` at the last ``.queue`` of its slice;
        queues never opened have no entries).
    symbols : dict
        Values of every ``.equ`` name and label.
    filename : str
        The source's name.
    fetch_locations : dict
        ``(mem, address) -> Loc`` of every instruction placed by ``.fetched`` (byte 0's word).
    deskew : int or None
        The cycle the chip's ``deskew`` releases its queues in, as given to :func:`assemble`.
    """
    image: Image
    locations: dict = field(default_factory=dict)
    symbols: dict = field(default_factory=dict)
    filename: str = "<input>"
    fetch_locations: dict = field(default_factory=dict)
    deskew: int | None = None

    @property
    def config(self):
        return self.image.config


def assemble(text, config=None, filename="<input>", deskew=None):
    """Assemble program ``text``.

    Parameters
    ----------
    text : str
        The source.
    config : Config or str or None
        The configuration to assemble for. ``None`` takes the program's ``.config`` directive,
        or ``default`` without one.
    filename : str
        Name used in error messages and source locations.
    deskew : int or None
        On a chip that takes another's time (section 7d of docs/architecture.md): the cycle
        ``isa.c2c_release`` gives for the peer's mark, in which the chip's ``deskew`` releases
        its queues; the ``.at`` after them count from it. None: not known (a chip alone).

    Returns
    -------
    Program

    Raises
    ------
    AsmError
        On the first error, with a ``FILE:LINE:COL: error: cause`` message.
    """
    if config is not None and not isinstance(config, Config):
        config = get_config(config)
    symbols = SymbolTable()
    statements = parse_program(text, filename, symbols)
    config = _configuration(statements, config)
    slices = SliceMap(config)
    memory = MemoryInit(config, slices, symbols)
    builder = QueueBuilder(config, slices, memory, symbols)
    for stmt in statements:
        _lay_out(stmt, symbols, memory, builder)
    queues, locations = builder.finish(deskew)
    image = Image(config, queues, dict(memory.data))
    return Program(image, locations, symbols.values(), filename, dict(builder.fetch_locations),
                   deskew)


def assemble_file(path, config=None):
    """Assemble the file at ``path``; see :func:`assemble`. Text that is not UTF-8 is an
    :class:`AsmError` at the first bad byte; a file that cannot be read, an ``OSError``."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        col = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise AsmError(Loc(str(path), line, col), f"not UTF-8 text: byte "
                       f"{raw[error.start]:#04x}") from None
    return assemble(text, config, filename=str(path))


def _configuration(statements, config):
    """The configuration to assemble for: ``config`` if given, else the program's ``.config``
    (every ``.config`` must agree with it), else ``default``."""
    for stmt in statements:
        if stmt.kind != "config":
            continue
        tok = stmt.args[0]
        try:
            named = get_config(tok.text)
        except ValueError as error:
            raise AsmError(tok.loc, str(error)) from None
        if config is None:
            config = named
        elif named != config:
            raise AsmError(tok.loc, f"program is written for configuration {named.name!r}, "
                           f"assembling for {config.name!r}")
    return config if config is not None else get_config("default")


def _lay_out(stmt, symbols, memory, builder):
    """Apply one statement of the second pass, in program order (``.config`` is done)."""
    if stmt.kind == "equ":
        name = stmt.args[0]
        symbols.lookup(name.text, name.loc)     # evaluated here, so errors come in line order
    elif stmt.kind == "data":
        memory.add_data(stmt)
    elif stmt.kind == "queue":
        builder.open_queue(stmt)
    elif stmt.kind == "at":
        builder.pad_to(stmt)
    elif stmt.kind == "fetched":
        builder.start_fetched(stmt)
    elif stmt.kind == "instr":
        builder.add_instr(stmt)
    elif stmt.kind == "word":
        builder.add_word(stmt)
