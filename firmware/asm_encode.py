"""Instruction statements to :class:`~opentsp.isa.Instr`: operand values checked against the
limits of the configuration assembled for."""

from opentsp import isa
from opentsp.firmware.lexer import AsmError

__all__ = ["InstrEncoder"]

#: How range errors name a field kind (the others say "operand NAME of MNEMONIC"): the
#: thing, and the configuration parameter that bounds it.
_KIND_NAMES = {"addr": ("address", "mem_words"), "row": ("weight row", "mxm_size"),
               "accum": ("accumulator", "mxm_accumulators"), "lane": ("lane count", "lanes"),
               "plane": ("MXM plane", "mxm_planes")}


class InstrEncoder:
    """Encodes parsed instructions for one configuration, evaluating names in ``symbols``.

    Parameters
    ----------
    config : Config
        The configuration assembled for.
    symbols : SymbolTable
        The program's names.
    """

    def __init__(self, config, symbols):
        self.config = config
        self.symbols = symbols

    def encode(self, stmt):
        """The instruction of ``instr`` statement ``stmt``."""
        head, op, types, operands = stmt.args
        values = {}
        if op.typed:
            values["dtype"] = int(types[0])
        if op.converts:
            values["rtype"] = int(types[1])
            if types[0] == types[1]:
                raise AsmError(head.loc, f"{head.text}: source and result types are both "
                               f"{types[0].suffix}")
        dtype = types[0] if op.typed else None
        rtype = types[-1] if op.converts else dtype
        for (kind, loc, payload), name in zip(operands, op.operands, strict=True):
            if kind == "chain":
                values["chain"], values[name] = 1, 0
            elif kind == "stream":
                values[name] = self.stream_field(op, name, payload, loc, dtype, rtype)
            else:
                value = self.symbols.evaluate(payload)
                values[name] = self.check_field(op, op.field(name), value, loc)
        try:
            instr = isa.encode(op.name, **values)
            isa.check_config(instr, self.config)
            return instr
        except isa.EncodingError as error:
            raise AsmError(head.loc, str(error)) from None

    def stream_field(self, op, name, payload, loc, dtype, rtype):
        """The encoded stream operand ``name`` of ``op``: its streams exist (every group it
        spans on this configuration) and, for a wide type, start an aligned group."""
        direction, node = payload
        ident = self.symbols.evaluate(node)
        width = op.operand_width(name, dtype, rtype)
        spanned = op.operand_width(name, dtype, rtype, self.config)
        streams = self.config.streams
        if ident < 0 or ident + spanned > streams:
            span = f"streams {ident}..{ident + spanned - 1}" if spanned > 1 else f"stream {ident}"
            raise AsmError(loc, f"{span} out of range: this configuration has "
                           f"{streams} streams per direction")
        if ident % width:
            suffix = op.operand_type(name, dtype, rtype).suffix
            raise AsmError(loc, f"{suffix} operand {name} must start an aligned "
                           f"group of {width} streams (id a multiple of {width}), "
                           f"not {ident}")
        return isa.StreamRef(direction, ident).encode()

    def check_field(self, op, fld, value, loc):
        """``value`` of number field ``fld`` within ``isa.field_limit`` for this
        configuration (and at least 1 for counts); returns it."""
        low = 1 if fld.kind == "count" else 0
        high = isa.field_limit(fld, self.config)
        if low <= value <= high:
            return value
        if fld.kind in _KIND_NAMES:
            what, parameter = _KIND_NAMES[fld.kind]
            limit = (f" ({parameter} {getattr(self.config, parameter)})"
                     if high < fld.mask else "")
            raise AsmError(loc, f"{what} {value} out of range {low}..{high}{limit}")
        if fld.kind == "flag":
            raise AsmError(loc, f"operand {fld.name} of {op.name} must be 0 or 1, "
                           f"not {value}")
        raise AsmError(loc, f"operand {fld.name} of {op.name} must be in {low}..{high}, "
                       f"not {value}")
