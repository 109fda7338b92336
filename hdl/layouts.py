"""Data layouts shared by the RTL, all derived from :mod:`opentsp.isa` and a :class:`Config`.

Nothing here restates an opcode or a field position: instruction layouts are built from the
:class:`opentsp.isa.Field` entries of each :class:`opentsp.isa.OpInfo`.

* A *superlane vector* is ``lanes_per_superlane`` bytes (lane ``j`` in bits ``8j+7..8j``).
* A *vector* is one superlane vector per superlane (superlane ``k`` in element ``k``).
* A *bundle* is one vector per stream of one direction.
* A *mask* holds one bit per superlane (bit ``k``) for each stream of one direction.
"""

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned
from amaranth.lib import data

from opentsp import isa

__all__ = [
    "STREAM", "ISSUE", "superlane_layout", "vector_layout", "bundle_layout", "mask_layout",
    "op_layout", "merged_layout", "is_op", "opcode_of", "dtype_bytes", "select_stream",
]

if isa.STREAM_OPERAND_BITS != isa.STREAM_BITS + 1:
    raise ValueError("a stream operand must be a direction bit above the stream id")

#: A stream operand: the stream id below the direction bit (``opentsp.isa.StreamRef``).
STREAM = data.StructLayout({"id": unsigned(isa.STREAM_BITS), "dir": unsigned(1)})

#: One issued instruction: a valid bit and the raw instruction word.
ISSUE = data.StructLayout({"valid": 1, "word": unsigned(isa.INSTR_BITS)})


def superlane_layout(config):
    """Bytes of one stream on one superlane: ``lanes_per_superlane`` lanes of 8 bits."""
    return data.ArrayLayout(unsigned(8), config.lanes_per_superlane)


def vector_layout(config):
    """A whole vector of one stream, split by superlane."""
    return data.ArrayLayout(superlane_layout(config), config.superlanes)


def bundle_layout(config):
    """Every stream of one direction: ``bundle[s][k][j]`` is byte ``j`` of superlane ``k``."""
    return data.ArrayLayout(vector_layout(config), config.streams)


def mask_layout(config):
    """One write-enable bit per superlane for every stream of one direction."""
    return data.ArrayLayout(unsigned(config.superlanes), config.streams)


def _field_shape(field):
    if field.kind == "stream":
        if field.width != isa.STREAM_OPERAND_BITS:
            raise ValueError(f"stream field {field.name} must be {isa.STREAM_OPERAND_BITS} "
                             f"bits wide, not {field.width!r}")
        return STREAM
    return unsigned(field.width)


def _opcode_field():
    return data.Field(unsigned(isa.OPCODE_BITS), isa.OPCODE_LSB)


def op_layout(op):
    """Layout of an instruction word of ``op`` (an :class:`opentsp.isa.OpInfo`)."""
    fields = {"opcode": _opcode_field()}
    for field in op.fields:
        fields[field.name] = data.Field(_field_shape(field), field.lsb)
    return data.FlexibleLayout(isa.INSTR_BITS, fields)


def merged_layout(ops):
    """One layout for several instructions whose common fields sit at the same positions."""
    fields = {"opcode": _opcode_field()}
    for op in ops:
        for field in op.fields:
            new = data.Field(_field_shape(field), field.lsb)
            if field.name in fields and fields[field.name] != new:
                raise ValueError(f"field {field.name} of {op.mnemonic} must sit where the "
                                 f"other instructions have it, not at bit {field.lsb!r}")
            fields[field.name] = new
    return data.FlexibleLayout(isa.INSTR_BITS, fields)


def opcode_of(word):
    """The opcode bits of an instruction word (a Value)."""
    return word[isa.OPCODE_LSB:isa.OPCODE_LSB + isa.OPCODE_BITS]


def is_op(word, mnemonic):
    """1 when the instruction word ``word`` has the opcode of ``mnemonic``."""
    return opcode_of(word) == isa.OPS_BY_NAME[mnemonic].opcode


def dtype_bytes(code):
    """Bytes of a type code as a Value: 1, 2 or 4 (codes that are not a type read as the
    widest type; the loader never lets them in)."""
    widest = max(dtype.bytes for dtype in isa.DType)
    result = Const(widest, 3)
    for dtype in sorted(isa.DType, key=lambda d: -d.value):
        result = Mux(code == dtype.value, dtype.bytes, result)
    return result


def select_stream(m, e_bundle, w_bundle, direction, stream, superlane, config, name):
    """Drive and return a signal with one superlane of stream ``stream`` (a Value) at a slice
    input: from ``e_bundle`` if ``direction`` is east, else from ``w_bundle``. Stream ids
    ``>= config.streams`` read zero.

    The direction picks one superlane's streams, then the id indexes them (an indexed part
    select, which reads zero beyond the streams): one shift for the simulators, where a case
    per stream was a priority chain of comparisons."""
    value = Signal(superlane_layout(config), name=name)
    east = Cat(*(e_bundle[s][superlane] for s in range(config.streams)))
    west = Cat(*(w_bundle[s][superlane] for s in range(config.streams)))
    chosen = Mux(direction == int(isa.Dir.W), west, east)
    m.d.comb += value.eq(chosen.word_select(stream, 8 * config.lanes_per_superlane))
    return value
