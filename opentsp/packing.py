"""Byte-plane packing: how typed elements travel on byte streams (docs/architecture.md
section 8), shared by the golden model, the compiler, the firmware generators and the tests.

A value of a type ``dtype`` occupies ``dtype.bytes`` streams: byte ``i`` (little-endian) on
stream ``s + i``. :func:`pack` and :func:`unpack` convert between these *byte planes* (uint8,
plane ``i`` = byte ``i``) and signed elements of the type's numpy dtype (:data:`NP_DTYPE`).
"""

import numpy as np

from opentsp import fp
from opentsp.isa import DType

__all__ = ["NP_DTYPE", "FLOAT_FORMATS", "pack", "unpack"]

#: Float elements travel as their bit patterns in signed containers of their width (f32 in
#: int32, f16 and bf16 in int16); opentsp.fp works on them.
NP_DTYPE = {DType.I8: np.int8, DType.I16: np.int16, DType.I32: np.int32, DType.F32: np.int32,
            DType.F16: np.int16, DType.BF16: np.int16}
#: The :class:`opentsp.fp.Format` of each float type.
FLOAT_FORMATS = {DType.F32: fp.FP32, DType.F16: fp.FP16, DType.BF16: fp.BF16}


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
