"""VXM slice: every function x every type (and every cvt pair) with extreme values, compared
with ``opentsp.sim.alu.execute`` and with a direct numpy computation, with the stagger and the
one-cycle latency, wide groups on both directions and out-of-range stream ids."""

import itertools
import random
from collections import defaultdict

import ml_dtypes
import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed
from amaranth.sim import Simulator

from opentsp import isa, packing
from opentsp.config import CONFIGS
from opentsp.hdl.vxm import PARTIALS, VxmSlice, partial_products, product_of
from opentsp.hdl.vxm import alu as vxm_alu
from opentsp.sim import alu

CONFIG = CONFIGS["default"]
LPS = CONFIG.lanes_per_superlane
SL = CONFIG.superlanes
LATENCY = isa.VXM_LATENCY
BINARY = [f for f in isa.VXM_FUNCS if f not in isa.VXM_UNARY]
UNARY = [f for f in isa.VXM_UNARY if f != "cvt"]
HALVES = {isa.DType.F16: (np.float16, 10), isa.DType.BF16: (ml_dtypes.bfloat16, 7)}
#: The f32 functions and their float64 references: within one ulp (docs/floating-point.md).
FUNCTIONS = {"exp": np.exp, "tanh": np.tanh, "recip": lambda x: 1 / x,
             "rsqrt": lambda x: 1 / np.sqrt(x)}


#: f32 patterns (as int32): zeros, a subnormal, the extreme normals, ones, 2**24 + 2 (it
#: rounds in int conversions), 0.5 and 2.5 (ties), 1e9, 3e9 (beyond int32), infinities, NaNs.
FLOAT_EXTREMES = [0x00000000, 0x80000000, 0x00000001, 0x00800000, 0x7F7FFFFF, 0x3F800000,
                  0xBF800000, 0x4B800001, 0x3F000000, 0x40200000, 0x4E6E6B28, 0x4F32D05E,
                  0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001]


#: f32 arguments of the functions: small, moderate, near exp's overflow and underflow, tanh's
#: saturation, powers of two and exact squares.
FUNCTION_ARGUMENTS = [0x3DCCCCCD, 0xBE800000, 0x40490FDB, 0xC0A00000, 0x42B17218, 0xC2AEAC50,
                      0x41800000, 0x40800000, 0x41100000, 0x2E000000, 0xB8D1B717, 0x7E800000]


def extremes(dtype):
    bits = 8 * dtype.bytes
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    ints = [lo, lo + 1, -129, -128, -1, 0, 1, 2, 127, 128, 255, hi - 1, hi, 0x7F7F]
    if dtype in HALVES:     # zeros, subnormals, ones, the largest finite, infinities, NaNs
        top = HALVES[dtype][0](np.inf).view(np.uint16)
        patterns = [0x8000, 1, 0x8001, top >> 1, top - 1, top, top | 0x8000, top + 1,
                    0xFFFF, 0x3C00, 0x3F80, 0x4000]
        return ints + [int(v) - (1 << 16) if v >= 1 << 15 else int(v) for v in patterns]
    if dtype is isa.DType.F32:
        return ints + [v - (1 << 32) if v >= 1 << 31 else v
                       for v in FLOAT_EXTREMES + FUNCTION_ARGUMENTS]
    return ints


F32, F64 = np.float32, np.float64
FLOAT = ("add", "sub", "mul", "min", "max", "relu", "neg", "abs", "cmpeq", "cmpgt")


def _floats(x):
    """int32 bit patterns as float64 values, subnormals read as zero (DAZ)."""
    bits = np.asarray(x, dtype=np.int64).astype(np.uint32)
    bits = np.where((bits & 0x7F800000) == 0, bits & 0x80000000, bits).astype(np.uint32)
    with np.errstate(invalid="ignore"):
        return bits.view(F32).astype(F64)


def _bits_of(values, subnormals=False):
    """float64 values rounded to 24 bits with an unbounded exponent, then FTZ (unless
    ``subnormals``: exact values below 2**-126 kept) and overflow; NaN canonical: int32
    patterns as int64 (docs/floating-point.md, from numpy alone)."""
    with np.errstate(all="ignore"):
        mantissa, exponent = np.frexp(values)
        value = np.ldexp(np.rint(mantissa * 2.0 ** 24) / 2.0 ** 24, exponent)
        if not subnormals:
            value = np.where(np.abs(value) < 2.0 ** -126, np.copysign(0.0, value), value)
        value = np.where(np.abs(value) >= 2.0 ** 128, np.copysign(np.inf, value), value)
        bits = value.astype(F32).view(np.uint32).astype(np.int64)
    bits = np.where(np.isnan(values), 0x7FC00000, bits)
    return np.where(bits >= 1 << 31, bits - (1 << 32), bits)


def _direct_float(func, a, b):
    """f32 functions from numpy float64 (independent of opentsp.fp): -0 < +0 for min and
    max, -1 masks for the compares, NaN canonical."""
    x, y = _floats(a), _floats(b) if b is not None else None
    with np.errstate(all="ignore"):
        if func in ("add", "sub", "mul"):
            return _bits_of({"add": np.add, "sub": np.subtract, "mul": np.multiply}[func](x, y))
        if func in ("cmpeq", "cmpgt"):
            return np.where(x == y if func == "cmpeq" else x > y, -1, 0).astype(np.int64)
        if func in ("neg", "abs"):
            return _bits_of(-x if func == "neg" else np.abs(x))
        if func == "relu":
            y = np.zeros_like(x)
        signed_zero = np.where(np.signbit(x) == np.signbit(y), x, -0.0 if func == "min" else 0.0)
        pick = np.where(x == y, signed_zero, (np.maximum if func != "min" else np.minimum)(x, y))
        return _bits_of(pick)


def _direct_half(dtype, rtype, a):
    """cvt between f32 and f16/bf16 by numpy's float16 and ml_dtypes' bfloat16 (no DAZ: a
    subnormal f32 narrows as its value; NaN canonical)."""
    if dtype in HALVES:
        np_type, man_bits = HALVES[dtype]
        halves = np.asarray(a, dtype=np.int64).astype(np.uint16).view(np_type)
        with np.errstate(invalid="ignore"):
            return _bits_of(halves.astype(F64), subnormals=True)
    np_type, man_bits = HALVES[rtype]
    values = np.asarray(a, dtype=np.int64).astype(np.uint32).view(F32)
    with np.errstate(all="ignore"):
        bits = values.astype(np_type).view(np.uint16).astype(np.int64)
    canonical = int(np_type(np.nan).view(np.uint16)) & 0x7FFF
    bits = np.where(np.isnan(values), canonical, bits)
    return np.where(bits >= 1 << 15, bits - (1 << 16), bits)


def _direct_cvt_float(dtype, rtype, a):
    if dtype in HALVES or rtype in HALVES:
        return _direct_half(dtype, rtype, a)
    if dtype is isa.DType.F32 and rtype is isa.DType.F32:
        return a
    if dtype is isa.DType.F32:
        rbits = 8 * rtype.bytes
        with np.errstate(invalid="ignore"):
            values = np.rint(_floats(a))
        values = np.where(np.isnan(values), 0, values)
        return np.clip(values, -(2.0 ** (rbits - 1)), 2.0 ** (rbits - 1) - 1).astype(np.int64)
    return _bits_of(a.astype(np.int32).astype(F32).astype(F64))


def direct(func, dtype, rtype, a, b):
    """Independent reference (not via sim.alu): element arrays in, int64 array out. The new
    functions use Python integers (object arrays), so nothing can overflow on the way; f32
    uses numpy's float64 with the documented rules applied."""
    bits = 8 * dtype.bytes
    if func == "cvt" and isa.DType.F32 in (dtype, rtype):
        return _direct_cvt_float(dtype, rtype, a)
    if func in FUNCTIONS:
        with np.errstate(all="ignore"):
            return _bits_of(FUNCTIONS[func](_floats(a)))
    if dtype is isa.DType.F32 and func in FLOAT:
        return _direct_float(func, a, b)
    if func == "cvt":
        rbits = 8 * rtype.bytes
        return np.clip(a, -(1 << (rbits - 1)), (1 << (rbits - 1)) - 1)
    if func in ("add", "sub", "mul", "min", "max", "relu"):
        return _direct_int64(func, bits, a, b)
    if func in ("neg", "abs"):
        return _direct_unary(func, bits, _big(a))
    if func in ("shl", "shr", "rshr", "mulh"):
        return _direct_shift(func, bits, _big(a), _big(b))
    return _direct_logic(func, bits, _big(a), _big(b))


def _wrap(x, bits):
    return ((x + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def _big(x):
    return np.array([int(v) for v in x], dtype=object)


def _out(x):
    return np.array([int(v) for v in x], dtype=np.int64)


def _direct_int64(func, bits, a, b):
    """add, sub, mul, min, max and relu, on int64 arrays (wide enough for these)."""
    if func == "add":
        return _wrap(a + b, bits)
    if func == "sub":
        return _wrap(a - b, bits)
    if func == "mul":
        return _wrap(a * b, bits)
    if func == "min":
        return np.minimum(a, b)
    if func == "max":
        return np.maximum(a, b)
    return np.maximum(a, 0)                      # relu


def _direct_unary(func, bits, a):
    if func == "neg":
        return _out(_wrap(-a, bits))
    return _out(_wrap(np.array([abs(v) for v in a], dtype=object), bits))     # abs


def _direct_shift(func, bits, a, b):
    """Shifts by ``b`` modulo the width, and the high half of the product."""
    n = b % bits                                  # Python modulo: 0..bits-1 also for b < 0
    if func == "shl":
        return _out(_wrap(a * 2 ** n, bits))
    if func == "shr":
        return _out(a // 2 ** n)                  # floor division = arithmetic shift
    if func == "rshr":
        return _out([x if k == 0 else (x + 2 ** (k - 1)) // 2 ** k
                     for x, k in zip(a, n, strict=True)])
    return _out(a * b // 2 ** bits)               # mulh


def _direct_logic(func, bits, a, b):
    """Bitwise functions (on the unsigned bits) and comparisons (-1 for true)."""
    unsigned = {"and": lambda x, y: x & y, "or": lambda x, y: x | y,
                "xor": lambda x, y: x ^ y}
    if func in unsigned:
        return _out(_wrap(unsigned[func](a % 2 ** bits, b % 2 ** bits), bits))
    if func == "cmpeq":
        return _out([-1 if x == y else 0 for x, y in zip(a, b, strict=True)])
    if func == "cmpgt":
        return _out([-1 if x > y else 0 for x, y in zip(a, b, strict=True)])
    raise AssertionError(f"no reference for {func}")


def combos():
    for func in BINARY + UNARY + ["cvt"]:
        for dtype, rtype in isa.type_pairs(isa.OPS_BY_NAME[func]):
            yield func, dtype, rtype


def assert_direct(got, want, func, message=""):
    """``got`` equals the direct reference ``want``; for the f32 functions (float64 rounded
    once) within one ulp, ``-0`` and ``+0`` apart."""
    got, want = np.asarray(got, dtype=np.int64), np.asarray(want, dtype=np.int64)
    if func in FUNCTIONS:
        ulps = np.abs(np.where(got < 0, -(1 << 31) - got, got)
                      - np.where(want < 0, -(1 << 31) - want, want))
        assert ulps.max(initial=0) <= 1, (message, got[ulps > 1], want[ulps > 1])
    else:
        np.testing.assert_array_equal(got, want, err_msg=message)


def random_instr(rng, func, dtype, rtype):
    def operand(width, allow_out=True):
        top = CONFIG.streams + (isa.INT32_GROUP if allow_out and rng.random() < 0.1 else 0)
        return isa.StreamRef(isa.Dir(rng.randrange(2)), rng.randrange(0, top, width))

    values = {"dtype": int(dtype), "dst": operand(rtype.bytes), "a": operand(dtype.bytes)}
    if func in BINARY:
        values["b"] = operand(dtype.bytes)
    if func == "cvt":
        values["rtype"] = int(rtype)
    if rng.random() < 0.3:          # ALU chaining: operand a is the previous result
        values.update(chain=1, a=0)
    return isa.encode(func, **values)


def planes_of(inputs, ref, width, k):
    """Byte planes (width, lanes) of a group at the slice input (zero beyond streams)."""
    planes = np.zeros((width, LPS), dtype=np.uint8)
    for i in range(width):
        s = ref.id + i
        if s < CONFIG.streams:
            vector = inputs[int(ref.dir)][s][k]
            planes[i] = [(vector >> (8 * j)) & 0xFF for j in range(LPS)]
    return planes


def pack_bundle(values):
    word = 0
    for s in range(CONFIG.streams):
        for k in range(SL):
            word |= values[s][k] << ((s * SL + k) * 8 * LPS)
    return word


def put_elements(rng, inputs, ref, dtype, k):
    """Write random extreme elements of ``dtype`` into group ``ref`` on superlane ``k``."""
    elems = np.array([rng.choice(extremes(dtype)) if rng.random() < 0.8
                      else rng.randint(-(1 << (8 * dtype.bytes - 1)),
                                       (1 << (8 * dtype.bytes - 1)) - 1)
                      for _ in range(LPS)], dtype=np.int64)
    elems = ((elems + (1 << (8 * dtype.bytes - 1))) % (1 << 8 * dtype.bytes)
             - (1 << (8 * dtype.bytes - 1)))
    planes = packing.pack(elems, dtype)
    for i in range(dtype.bytes):
        s = ref.id + i
        if s < CONFIG.streams:
            inputs[int(ref.dir)][s][k] = sum(int(planes[i][j]) << (8 * j) for j in range(LPS))


def chained_operand(results, t):
    """The chained operand in cycle ``t`` from ``results``, a superlane's ``(cycle, int32 byte
    planes)`` in execution order: the last executed ``VXM_CHAIN_DISTANCE`` or more cycles
    before ``t``, zero if none."""
    visible = [planes for cycle, planes in results if cycle <= t - isa.VXM_CHAIN_DISTANCE]
    return visible[-1] if visible else np.zeros((isa.INT32_GROUP, LPS), dtype=np.uint8)


def expected_writes(instr, inputs, k, seen, results, t):
    """Stream writes of ``instr`` executed on superlane ``k`` in cycle ``t``; ``results[k]``
    is that superlane's results so far (:func:`chained_operand`), and gets this one."""
    dtype, rtype, func = instr.dtype, instr.rtype, instr.op.mnemonic
    if instr.chained:
        a = chained_operand(results[k], t)[:dtype.bytes]
        seen["chained"] += 1
        seen["chained back to back"] += any(cycle == t - 1 for cycle, _ in results[k])
    else:
        a = planes_of(inputs, instr.stream("a"), dtype.bytes, k)
    b = planes_of(inputs, instr.stream("b"), dtype.bytes, k) if func in BINARY else None
    result = alu.execute(func, dtype, rtype, a, b)
    results[k].append((t, packing.pack(packing.unpack(result, rtype).astype(np.int32),
                                       isa.DType.I32)))
    ref_direct = direct(func, dtype, rtype, packing.unpack(a, dtype).astype(np.int64),
                        packing.unpack(b, dtype).astype(np.int64) if b is not None else None)
    assert_direct(packing.unpack(result, rtype).astype(np.int64), ref_direct, func)
    seen[func, dtype, rtype] += 1
    dst = instr.stream("dst")
    writes = {}
    for i in range(rtype.bytes):
        s = dst.id + i
        if s < CONFIG.streams:
            writes[int(dst.dir), s, k] = sum(int(result[i][j]) << (8 * j) for j in range(LPS))
    return writes


def rtl_writes(ctx, dut):
    writes = {}
    for direction, we, wdata in ((0, dut.e_we, dut.e_wdata), (1, dut.w_we, dut.w_wdata)):
        mask = ctx.get(we.as_value())
        value = ctx.get(wdata.as_value())
        for s in range(CONFIG.streams):
            for k in range(SL):
                if mask >> (s * SL + k) & 1:
                    shift = (s * SL + k) * 8 * LPS
                    writes[direction, s, k] = (value >> shift) & ((1 << 8 * LPS) - 1)
    return writes


def run_schedule(schedule, rng):
    """Issue ``schedule[t]`` (Instr or None) in cycle t; check every cycle's stream writes."""
    dut = VxmSlice(CONFIG)
    seen = defaultdict(int)
    checked = [0]
    results = {k: [] for k in range(SL)}

    async def tb(ctx):
        pending = defaultdict(dict)
        for t in range(len(schedule) + SL + LATENCY):
            instr = schedule[t] if t < len(schedule) else None
            inputs = [[[rng.getrandbits(8 * LPS) for _ in range(SL)]
                       for _ in range(CONFIG.streams)] for _ in range(2)]
            executing = [(schedule[t - k], k) for k in range(SL)
                         if 0 <= t - k < len(schedule) and schedule[t - k] is not None]
            for ex, k in executing:
                if not ex.chained:
                    put_elements(rng, inputs, ex.stream("a"), ex.dtype, k)
                if ex.op.mnemonic in BINARY:
                    put_elements(rng, inputs, ex.stream("b"), ex.dtype, k)
            for ex, k in executing:
                pending[t + LATENCY].update(expected_writes(ex, inputs, k, seen, results, t))
            ctx.set(dut.e_in.as_value(), pack_bundle(inputs[0]))
            ctx.set(dut.w_in.as_value(), pack_bundle(inputs[1]))
            ctx.set(dut.issue.valid, instr is not None)
            ctx.set(dut.issue.word, instr.encode() if instr is not None else 0)
            assert rtl_writes(ctx, dut) == pending.pop(t, {}), (t, schedule[t - 1 - LATENCY:t])
            checked[0] += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert checked[0] == len(schedule) + SL + LATENCY
    return seen


def test_every_function_and_type():
    rng = random.Random(3)
    schedule = [random_instr(rng, *combo) for combo in combos() for _ in range(12)]
    rng.shuffle(schedule)
    seen = run_schedule(schedule, rng)
    assert seen.pop("chained") > 0.2 * len(schedule) * SL      # ALU chaining exercised
    # ... also right after another instruction, whose result the chain does not yet see
    assert seen.pop("chained back to back") > 0.1 * len(schedule) * SL
    assert set(seen) == set(combos())
    assert min(seen.values()) >= 12 * SL - 12   # a few land beyond streams: no check there


def test_sparse_issue_and_fixed_example():
    rng = random.Random(4)
    E0, W4 = isa.StreamRef(isa.Dir.E, 0), isa.StreamRef(isa.Dir.W, 4)
    schedule = [isa.encode("mul", dtype=int(isa.DType.I32), dst=W4, a=E0, b=W4), None, None,
                isa.encode("cvt", dtype=int(isa.DType.I32), rtype=int(isa.DType.I8),
                           dst=isa.StreamRef(isa.Dir.E, 7), a=W4), None]
    run_schedule(schedule, rng)


def test_saturation_examples_direct():
    """A few hand-checked values of the references themselves."""
    i8, i32 = isa.DType.I8, isa.DType.I32
    a = np.array([-(1 << 31), 300, -129, 5], dtype=np.int64)
    assert list(direct("cvt", i32, i8, a, None)) == [-128, 127, -128, 5]
    assert list(direct("mul", i8, i8, np.array([16, -128]), np.array([16, -1]))) == [0, -128]
    x = np.array([-128, 127, -1, 64, -64, 5, -5, 100])
    n = np.array([1, 0, 8, 7, 7, 1, 1, -1])          # amounts mod 8: 1, 0, 0, 7, 7, 1, 1, 7
    assert list(direct("neg", i8, i8, x, None)) == [-128, -127, 1, -64, 64, -5, 5, -100]
    assert list(direct("abs", i8, i8, x, None)) == [-128, 127, 1, 64, 64, 5, 5, 100]
    assert list(direct("shl", i8, i8, x, n)) == [0, 127, -1, 0, 0, 10, -10, 0]
    assert list(direct("shr", i8, i8, x, n)) == [-64, 127, -1, 0, -1, 2, -3, 0]
    assert list(direct("rshr", i8, i8, x, n)) == [-64, 127, -1, 1, 0, 3, -2, 1]
    assert list(direct("mulh", i8, i8, x, n)) == [-1, 0, -1, 1, -2, 0, -1, -1]
    assert list(direct("mulh", i32, i32, np.array([-(1 << 31)]), np.array([-(1 << 31)]))) \
        == [1 << 30]
    assert list(direct("cmpgt", i8, i8, x, n)) == [0, -1, 0, -1, 0, -1, 0, -1]


def grid(dtype):
    """Every pair of extreme values and every shift amount 0..bits (a, b as int64 arrays)."""
    bits = 8 * dtype.bytes
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = sorted({v for v in extremes(dtype) + [-2, 3, bits - 1, bits, bits + 1, -bits]
                     if lo <= v <= hi})
    pairs = list(itertools.product(values, values))
    pairs += [(v, n) for v in (lo, lo + 1, -3, -1, 1, 5, hi - 1, hi) for n in range(bits + 1)]
    a, b = zip(*pairs, strict=True)
    return np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)


def test_alu_grid_matches_numpy_references():
    """sim.alu against the independent reference on a grid of extremes (every function and
    type, every cvt pair, every shift amount); i8 binary functions on all 65536 pairs."""
    for func, dtype, rtype in combos():
        a, b = grid(dtype)
        if dtype == isa.DType.I8 and func in BINARY:
            a, b = (x.ravel() for x in np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)))
        b_planes = packing.pack(b, dtype) if func in BINARY else None
        got = packing.unpack(alu.execute(func, dtype, rtype, packing.pack(a, dtype), b_planes),
                             rtype)
        assert_direct(got, direct(func, dtype, rtype, a, b), func,
                      f"{func} {dtype.suffix} {rtype.suffix}")


class _Lane(Elaboratable):
    """One lane of the RTL ALU with its inputs as ports; ``split``: the product from the
    partial products of the VXM's pipeline, as the slice forms it."""

    def __init__(self, split=False):
        self.split = split
        self.func = Signal(range(len(isa.VXM_FUNCS)))
        self.dtype = Signal(isa.TYPE_BITS)
        self.rtype = Signal(isa.TYPE_BITS)
        self.a = Signal(signed(32))
        self.b = Signal(signed(32))
        self.result = Signal(32)

    def elaborate(self, platform):
        m = Module()
        onehot = {name: self.func == i for i, name in enumerate(isa.VXM_FUNCS)}
        product = None
        if self.split:
            partials = Signal(PARTIALS)
            for name, value in partial_products(self.a, self.b).items():
                m.d.comb += getattr(partials, name).eq(value)
            product = product_of(partials)
        m.d.comb += self.result.eq(vxm_alu(m, onehot, self.a, self.b, self.rtype, self.dtype,
                                           product=product))
        return m


@pytest.mark.parametrize("split", [False, True], ids=["product", "partial_products"])
def test_rtl_alu_lane_on_the_grid(split):
    """The RTL ALU lane (combinational) against sim.alu on the grid of extremes: every
    function, every type, every shift amount 0..bits; with the product formed by ``*`` and
    from the slice's four partial products."""
    dut = _Lane(split)
    checked = [0]

    async def tb(ctx):
        for func, dtype, rtype in combos():
            a, b = grid(dtype)
            b_planes = packing.pack(b, dtype) if func in BINARY else None
            want = packing.unpack(alu.execute(func, dtype, rtype, packing.pack(a, dtype), b_planes),
                              rtype).astype(np.int64)
            assert_direct(want, direct(func, dtype, rtype, a, b), func)
            ctx.set(dut.func, isa.VXM_FUNCS.index(func))
            ctx.set(dut.dtype, int(dtype))
            ctx.set(dut.rtype, int(rtype))
            rbits = 8 * rtype.bytes
            for x, y, w in zip(a, b, want, strict=True):
                ctx.set(dut.a, int(x))
                ctx.set(dut.b, int(y))
                got = ctx.get(dut.result) & ((1 << rbits) - 1)
                assert got == int(w) & ((1 << rbits) - 1), (func, dtype, rtype, x, y, got, w)
                checked[0] += 1

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    assert checked[0] > 10000
