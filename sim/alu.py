"""VXM arithmetic: one numpy function per ALU opcode, the reference for the RTL's ALU.

Values travel as bytes on streams (:mod:`opentsp.packing` converts them). Every function takes
and returns arrays of the element type's numpy dtype, so wrap-around is numpy's own modular
arithmetic on that width, and saturation is an explicit clip. Shifts, the rounding
shift and ``mulh`` work in int64 (wide enough for every intermediate of an int32) and convert back
to the element type explicitly; see ``docs/architecture.md`` section 8.
"""

import numpy as np

from opentsp import fp
from opentsp.isa import HALF_TYPES, VXM_F32_ONLY, VXM_FUNCS, VXM_UNARY, DType
from opentsp.packing import FLOAT_FORMATS, NP_DTYPE, pack, unpack

__all__ = ["execute", "FUNCS"]


def op_add(a, b):
    return a + b


def op_sub(a, b):
    return a - b


def op_mul(a, b):
    return a * b


def op_min(a, b):
    return np.minimum(a, b)


def op_max(a, b):
    return np.maximum(a, b)


def op_relu(a):
    return np.maximum(a, a.dtype.type(0))


def op_cvt(a, rtype):
    info = np.iinfo(NP_DTYPE[rtype])
    return np.clip(a.astype(np.int64), info.min, info.max).astype(NP_DTYPE[rtype])


def _bits(a):
    return 8 * a.dtype.itemsize


def _wrap(wide, like):
    """int64 values back to ``like``'s dtype, modulo 2^bits (astype wraps)."""
    return np.asarray(wide, dtype=np.int64).astype(like.dtype)


def _amount(a, b):
    """Per-lane shift amount: ``b`` modulo the type's bits (its low log2(bits) bits)."""
    return (b.astype(np.int64) & (_bits(a) - 1)).astype(np.int64)


def op_neg(a):
    return _wrap(-a.astype(np.int64), a)


def op_abs(a):
    return _wrap(np.abs(a.astype(np.int64)), a)       # |min| wraps back to min


def op_shl(a, b):
    return _wrap(a.astype(np.int64) << _amount(a, b), a)


def op_shr(a, b):
    return (a.astype(np.int64) >> _amount(a, b)).astype(a.dtype)    # arithmetic, always fits


def op_rshr(a, b):
    n = _amount(a, b)
    wide = a.astype(np.int64)
    half = np.where(n > 0, np.int64(1) << np.maximum(n - 1, 0), np.int64(0))
    # (a + 2^(n-1)) >> n in int64 cannot overflow and always fits the type again.
    return np.where(n > 0, (wide + half) >> n, wide).astype(a.dtype)


def op_mulh(a, b):
    # The double-width product of two int32 fits int64 (|min * min| = 2^62).
    return ((a.astype(np.int64) * b.astype(np.int64)) >> _bits(a)).astype(a.dtype)


def op_and(a, b):
    return np.bitwise_and(a, b)


def op_or(a, b):
    return np.bitwise_or(a, b)


def op_xor(a, b):
    return np.bitwise_xor(a, b)


def op_cmpeq(a, b):
    return np.where(a == b, -1, 0).astype(a.dtype)


def op_cmpgt(a, b):
    return np.where(a > b, -1, 0).astype(a.dtype)


#: The integer functions; the f32-only ones are in :data:`FLOAT_FUNCS` alone.
FUNCS = {"add": op_add, "sub": op_sub, "mul": op_mul, "min": op_min, "max": op_max,
         "relu": op_relu, "cvt": op_cvt, "neg": op_neg, "abs": op_abs, "shl": op_shl,
         "shr": op_shr, "rshr": op_rshr, "mulh": op_mulh, "and": op_and, "or": op_or,
         "xor": op_xor, "cmpeq": op_cmpeq, "cmpgt": op_cmpgt}
if set(FUNCS) | set(VXM_F32_ONLY) != set(VXM_FUNCS):
    raise ImportError(f"sim.alu implements {sorted(FUNCS)}, the ISA has {VXM_FUNCS}")


#: The functions that f32 computes as floating point (:mod:`opentsp.fp`); the others (shifts,
#: ``mulh``, ``and``, ``or``, ``xor``) act on its bit pattern as on an int32.
FLOAT_FUNCS = {"add": fp.add32, "sub": fp.sub32, "mul": fp.mul32, "min": fp.min32,
               "max": fp.max32, "relu": fp.relu32, "neg": fp.neg32, "abs": fp.abs32,
               "cmpeq": fp.cmpeq32, "cmpgt": fp.cmpgt32, "exp": fp.exp32,
               "recip": fp.reciprocal32, "rsqrt": fp.rsqrt32, "tanh": fp.tanh32}


def op_float(func, a, b=None):
    """An f32 function of :data:`FLOAT_FUNCS` on bit patterns held as int32; int32 back."""
    operands = [a.view(np.uint32)] + ([] if b is None else [b.view(np.uint32)])
    return np.asarray(FLOAT_FUNCS[func](*operands)).astype(np.uint32).view(np.int32)


def op_cvt_float(a, dtype, rtype):
    """``cvt`` with a float type on either side: f32 to an integer type rounds to nearest even
    and saturates (NaN gives 0); an integer to f32 rounds; f16 and bf16 widen to f32 exactly;
    f32 narrows to them rounding to nearest even (:func:`opentsp.fp.narrow`)."""
    if dtype in HALF_TYPES:
        return fp.widen(a.view(np.uint16), FLOAT_FORMATS[dtype]).view(np.int32)
    if rtype in HALF_TYPES:
        return fp.narrow(a.view(np.uint32), FLOAT_FORMATS[rtype]).view(np.int16)
    if dtype.is_float:
        info = np.iinfo(NP_DTYPE[rtype])
        ints = fp.to_int32(a.view(np.uint32)).astype(np.int64)
        return np.clip(ints, info.min, info.max).astype(NP_DTYPE[rtype])
    return fp.from_int32(a.astype(np.int32)).view(np.int32)


def execute(func, dtype, rtype, a_planes, b_planes=None):
    """Run ALU function ``func`` on byte planes; returns the result's byte planes.

    ``a_planes`` and ``b_planes`` have shape ``(dtype.bytes, ...)``; the result has shape
    ``(rtype.bytes, ...)``.
    """
    a = unpack(a_planes, dtype)
    with np.errstate(over="ignore"):
        if func == "cvt" and (dtype.is_float or rtype.is_float):
            result = op_cvt_float(a, dtype, rtype)
        elif func == "cvt":
            result = op_cvt(a, rtype)
        elif dtype is DType.F32 and func in FLOAT_FUNCS:
            result = op_float(func, a, None if func in VXM_UNARY
                              else unpack(b_planes, dtype))
        elif func in VXM_UNARY:
            result = FUNCS[func](a)
        else:
            result = FUNCS[func](a, unpack(b_planes, dtype))
    return pack(result, rtype)
