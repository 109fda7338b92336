"""SECDED code of the SRAM (docs/architecture.md section 6b), the specification that the golden
model (:mod:`opentsp.sim.mem`) and the RTL codec (:mod:`opentsp.hdl.ecc`) both follow: an extended
Hamming (13,8) code word per stored byte, in pure numpy.

Code word layout (13 bits, as stored in the SRAM and as an injection mask names them):

* bits 7..0: the data byte ``d``;
* bits 11..8: Hamming check bits ``c0..c3``;
* bit 12: overall parity ``p`` (the XOR of all 13 bits is 0 in a clean word).

Hamming positions: data bit ``j`` sits at position ``DATA_POSITIONS[j]`` (3, 5, 6, 7, 9, 10, 11,
12), check bit ``i`` at position ``2**i``; ``c_i`` is the XOR of the data bits whose position has
bit ``i`` set. Decoding recomputes the check bits: the *syndrome* is their XOR with the stored
ones, the *parity* the XOR of all 13 stored bits.

=========  ==============  ===================================================================
parity     syndrome        outcome
=========  ==============  ===================================================================
0          0               clean
1          0               single error in ``p``: corrected (data unchanged)
1          1, 2, 4, 8      single error in a check bit: corrected (data unchanged)
1          data position   single error in that data bit: corrected (bit flipped back)
1          13, 14, 15      detected (no single error gives these: three or more bits flipped)
0          not 0           detected (two bits flipped)
=========  ==============  ===================================================================

A detected error delivers the raw data bits (bits 7..0 as stored). Every function takes and
returns numpy arrays (or scalars) elementwise, with explicit dtypes. :func:`encode` and
:func:`decode` look their results up in tables that the bitwise definitions
(:func:`check_bits`, :func:`syndrome`, :func:`parity`) fill once, over all 256 bytes and all
8192 13-bit words: the golden model decodes every lane of every read.
"""

import numpy as np

__all__ = ["DATA_BITS", "CHECK_BITS", "CODE_BITS", "CODE_MASK", "DATA_POSITIONS",
           "check_bits", "encode", "syndrome", "parity", "decode"]

DATA_BITS = 8
CHECK_BITS = 4
CODE_BITS = DATA_BITS + CHECK_BITS + 1
CODE_MASK = (1 << CODE_BITS) - 1
#: Hamming position of data bit j (positions that are not powers of two).
DATA_POSITIONS = (3, 5, 6, 7, 9, 10, 11, 12)
#: Per check bit i: the mask of the data bits it covers.
CHECK_MASKS = tuple(sum(1 << j for j, pos in enumerate(DATA_POSITIONS) if pos >> i & 1)
                    for i in range(CHECK_BITS))


def _parity(values, mask):
    """XOR of the bits of ``values & mask``, as uint8 (0 or 1)."""
    x = np.asarray(values, dtype=np.uint16) & np.uint16(mask)
    out = np.zeros(x.shape, dtype=np.uint8)
    for bit in range(CODE_BITS):
        out ^= ((x >> np.uint16(bit)) & np.uint16(1)).astype(np.uint8)
    return out


def check_bits(data):
    """The 4 Hamming check bits of data bytes (uint8 in, uint8 ``c3..c0`` out)."""
    data = np.asarray(data, dtype=np.uint8)
    out = np.zeros(data.shape, dtype=np.uint8)
    for i, mask in enumerate(CHECK_MASKS):
        out |= _parity(data, mask) << np.uint8(i)
    return out


def _encode_bitwise(data):
    data = np.asarray(data, dtype=np.uint8)
    word = data.astype(np.uint16) | check_bits(data).astype(np.uint16) << np.uint16(DATA_BITS)
    return word | _parity(word, CODE_MASK).astype(np.uint16) << np.uint16(CODE_BITS - 1)


_ENCODED = _encode_bitwise(np.arange(1 << DATA_BITS, dtype=np.uint8))


def encode(data):
    """Data bytes (uint8) to 13-bit code words (uint16)."""
    return _ENCODED[np.asarray(data, dtype=np.uint8)]


def syndrome(code):
    """The 4-bit syndrome (uint8) of stored code words: recomputed XOR stored check bits."""
    code = np.asarray(code, dtype=np.uint16)
    stored = ((code >> np.uint16(DATA_BITS)) & np.uint16(0xF)).astype(np.uint8)
    return check_bits((code & np.uint16(0xFF)).astype(np.uint8)) ^ stored


def parity(code):
    """The XOR of all 13 bits of stored code words (uint8, 0 for a clean word)."""
    return _parity(code, CODE_MASK)


def _decode_bitwise(code):
    code = np.asarray(code, dtype=np.uint16) & np.uint16(CODE_MASK)
    raw = (code & np.uint16(0xFF)).astype(np.uint8)
    s = syndrome(code)
    odd = parity(code).astype(bool)
    flip = np.zeros(raw.shape, dtype=np.uint8)
    in_data = np.zeros(raw.shape, dtype=bool)
    for j, pos in enumerate(DATA_POSITIONS):
        hit = s == pos
        flip |= np.where(hit, np.uint8(1 << j), np.uint8(0)).astype(np.uint8)
        in_data |= hit
    in_check = (s == 0) | (s == 1) | (s == 2) | (s == 4) | (s == 8)
    corrected = odd & (in_data | in_check)
    detected = (odd & ~corrected) | (~odd & (s != 0))
    data = np.where(corrected, raw ^ flip, raw).astype(np.uint8)
    return data, corrected, detected


_DECODED = _decode_bitwise(np.arange(1 << CODE_BITS, dtype=np.uint16))


def decode(code):
    """Stored code words (uint16) to ``(data, corrected, detected)``.

    ``data`` (uint8) is the corrected byte, or the raw data bits if the error is detected but
    not correctable; ``corrected`` and ``detected`` (bool) flag a corrected single-bit error and
    an uncorrectable (double or worse) error. Bits above bit 12 are ignored.
    """
    index = np.asarray(code, dtype=np.uint16) & np.uint16(CODE_MASK)
    return tuple(table[index] for table in _DECODED)
