"""VXM arithmetic: one numpy function per ALU opcode, the reference for the RTL's ALU.

Values travel as bytes on streams; :func:`pack` and :func:`unpack` convert between a group of
byte streams (little-endian, byte ``i`` on stream ``s+i``) and signed elements of a type. Every
function takes and returns arrays of the element type's numpy dtype, so wrap-around is numpy's
own modular arithmetic on that width, and saturation is an explicit clip.
"""

import numpy as np

from opentsp.isa import DType

__all__ = ["NP_DTYPE", "pack", "unpack", "execute", "FUNCS"]

NP_DTYPE = {DType.I8: np.int8, DType.I16: np.int16, DType.I32: np.int32}


def unpack(byte_planes, dtype):
    """Bytes ``(width, ...)`` of uint8, byte ``i`` in plane ``i``, to signed elements."""
    planes = np.asarray(byte_planes, dtype=np.uint8)
    assert planes.shape[0] == dtype.bytes
    value = np.zeros(planes.shape[1:], dtype=np.uint32)
    for i in range(dtype.bytes):
        value |= planes[i].astype(np.uint32) << np.uint32(8 * i)
    unsigned = {1: np.uint8, 2: np.uint16, 4: np.uint32}[dtype.bytes]
    return value.astype(unsigned).view(NP_DTYPE[dtype])


def pack(values, dtype):
    """Signed elements of ``dtype`` to byte planes ``(width, ...)`` of uint8."""
    raw = np.asarray(values, dtype=NP_DTYPE[dtype]).astype(np.int64) & ((1 << 8 * dtype.bytes) - 1)
    return np.stack([((raw >> (8 * i)) & 0xFF).astype(np.uint8) for i in range(dtype.bytes)])


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


FUNCS = {"add": op_add, "sub": op_sub, "mul": op_mul, "min": op_min, "max": op_max,
         "relu": op_relu, "cvt": op_cvt}


def execute(func, dtype, rtype, a_planes, b_planes=None):
    """Run ALU function ``func`` on byte planes; returns the result's byte planes.

    ``a_planes`` and ``b_planes`` have shape ``(dtype.bytes, ...)``; the result has shape
    ``(rtype.bytes, ...)``.
    """
    a = unpack(a_planes, dtype)
    with np.errstate(over="ignore"):
        if func == "cvt":
            result = op_cvt(a, rtype)
        elif func == "relu":
            result = op_relu(a)
        else:
            result = FUNCS[func](a, unpack(b_planes, dtype))
    return pack(result, rtype)
