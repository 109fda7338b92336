"""VXM slice: the vector ALU (add, sub, mul, min, max, relu, cvt on i8/i16/i32)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from opentsp import isa
from opentsp.config import Config

from .layouts import (
    bundle_layout,
    dtype_bytes,
    is_op,
    mask_layout,
    merged_layout,
    select_stream,
)
from .stagger import Stagger

__all__ = ["VxmSlice", "alu"]

_WIDE = max(dtype.bytes for dtype in isa.DType)     # bytes of the widest type
_BITS = 8 * _WIDE


def _typed(code, raw):
    """``raw`` (``_BITS`` bits, little-endian bytes) read as a signed element of type
    ``code``, sign-extended to ``_BITS`` bits."""
    value = raw.as_signed()
    for dtype in sorted(isa.DType, key=lambda d: -d.bytes):
        value = Mux(code == dtype.value, raw[:8 * dtype.bytes].as_signed(), value)
    return value


def _limits(code):
    """Signed range of type ``code`` as ``_BITS``-bit constants (lo, hi)."""
    lo = Const(-(1 << (_BITS - 1)), signed(_BITS))
    hi = Const((1 << (_BITS - 1)) - 1, signed(_BITS))
    for dtype in isa.DType:
        bits = 8 * dtype.bytes
        lo = Mux(code == dtype.value, Const(-(1 << (bits - 1)), signed(_BITS)), lo)
        hi = Mux(code == dtype.value, Const((1 << (bits - 1)) - 1, signed(_BITS)), hi)
    return lo, hi


def alu(m, func, a, b, rtype):
    """One lane of the ALU, combinational.

    Parameters
    ----------
    func : dict of str to Value
        One-hot function select, one entry per name of ``isa.VXM_FUNCS``.
    a, b : Value
        Operands, sign-extended to 32 bits.
    rtype : Value
        Result type code (saturation range of ``cvt``).

    Returns
    -------
    Value
        32-bit result; the low ``8 * bytes(rtype)`` bits are the element (wrapping add, sub and
        mul keep the low half; min, max signed; relu = max(a, 0); cvt saturates to rtype).
    """
    lo, hi = _limits(rtype)
    zero = Const(0, signed(_BITS))
    results = {
        "add": (a + b)[:_BITS],
        "sub": (a - b)[:_BITS],
        "mul": (a * b)[:_BITS],
        "min": Mux(a < b, a, b),
        "max": Mux(a > b, a, b),
        "relu": Mux(a < zero, zero, a),
        "cvt": Mux(a > hi, hi, Mux(a < lo, lo, a)),
    }
    if set(results) != set(isa.VXM_FUNCS):
        raise ValueError(f"the ALU must implement {isa.VXM_FUNCS}, not {sorted(results)!r}")
    result = Signal(unsigned(_BITS))
    with m.If(func["add"]):
        m.d.comb += result.eq(results["add"])
    for name in isa.VXM_FUNCS[1:]:
        with m.Elif(func[name]):
            m.d.comb += result.eq(results[name])
    return result


class VxmSlice(wiring.Component):
    """The VXM slice: per superlane and lane, one 32-bit ALU (:func:`alu`).

    An instruction executed on superlane ``k`` in cycle ``t`` (issue cycle + ``k``, through a
    :class:`Stagger`) reads its operand groups (byte ``i`` of an element on stream ``id+i``,
    ids ``>= streams`` read zero) from the slice inputs ``e_in``/``w_in`` in cycle ``t``,
    registers the result at the end of ``t`` and drives the output stream registers of group
    ``dst`` so that they load at the end of cycle ``t + isa.VXM_LATENCY`` (stream ids
    ``>= streams`` are not written).

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    def __init__(self, config):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        self._config = config
        bundle = bundle_layout(config)
        mask = mask_layout(config)
        super().__init__({
            "clear": In(1),
            "issue_valid": In(1),
            "issue_word": In(unsigned(isa.INSTR_BITS)),
            "e_in": In(bundle), "w_in": In(bundle),
            "e_we": Out(mask), "w_we": Out(mask),
            "e_wdata": Out(bundle), "w_wdata": Out(bundle),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        lps = cfg.lanes_per_superlane
        ops = [isa.OPS_BY_NAME[name] for name in isa.VXM_FUNCS]
        latency = {op.latency for op in ops}
        if len(latency) != 1 or min(latency) < 1:
            raise ValueError(f"VXM latencies must be one value >= 1, not {sorted(latency)!r}")
        latency = latency.pop()
        layout = merged_layout(ops)
        id_bits = isa.STREAM_BITS + 1       # room for id + 3

        m.submodules.stagger = stagger = Stagger(cfg)
        m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(self.issue_valid),
                     stagger.i_word.eq(self.issue_word)]

        result_layout = data.StructLayout({
            "valid": 1, "dir": 1, "id": unsigned(id_bits), "bytes": unsigned(3),
            "lanes": data.ArrayLayout(unsigned(_BITS), lps),
        })

        def fetch(ref, dtype, k, name):
            """Operand group ``ref`` of superlane ``k``: per lane, the element of type
            ``dtype`` (bytes from streams ``id..id+3``) sign-extended to 32 bits."""
            vectors = [select_stream(m, self.e_in, self.w_in, ref.dir,
                                     ref.id + Const(i, id_bits), k, cfg, f"{name}{i}_{k}")
                       for i in range(_WIDE)]
            return [_typed(dtype, Cat(*(vec[j] for vec in vectors))) for j in range(lps)]

        for k in range(cfg.superlanes):
            ins = stagger.o[k]
            word = layout(ins.word)
            func = {name: is_op(ins.word, name) for name in isa.VXM_FUNCS}
            valid = ins.valid & Cat(*func.values()).any()
            rtype = Mux(func["cvt"], word.rtype, word.dtype)

            a_lanes = fetch(word.a, word.dtype, k, "a")
            b_lanes = fetch(word.b, word.dtype, k, "b")

            stage = Signal(result_layout, name=f"result_{k}_1")
            with m.If(self.clear):
                m.d.sync += stage.valid.eq(0)
            with m.Else():
                m.d.sync += [stage.valid.eq(valid), stage.dir.eq(word.dst.dir),
                             stage.id.eq(word.dst.id), stage.bytes.eq(dtype_bytes(rtype))]
            for j in range(lps):
                m.d.sync += stage.lanes[j].eq(alu(m, func, a_lanes[j], b_lanes[j], rtype))
            for i in range(1, latency):
                nxt = Signal(result_layout, name=f"result_{k}_{i + 1}")
                m.d.sync += nxt.eq(Mux(self.clear, 0, stage))
                stage = nxt

            for s in range(cfg.streams):
                offset = (Const(s, id_bits) - stage.id)[:id_bits]
                hit = stage.valid & (stage.id <= s) & (offset < stage.bytes)
                m.d.comb += [
                    self.e_we[s][k].eq(hit & (stage.dir == int(isa.Dir.E))),
                    self.w_we[s][k].eq(hit & (stage.dir == int(isa.Dir.W))),
                ]
                byte_index = offset[:(_WIDE - 1).bit_length()]
                for j in range(lps):
                    byte = stage.lanes[j].word_select(byte_index, 8)
                    m.d.comb += [self.e_wdata[s][k][j].eq(byte), self.w_wdata[s][k][j].eq(byte)]
        return m
