"""Link frames of the C2C slices (docs/architecture.md section 7d): their bytes, CRC and beats.

A frame is a header byte (:class:`opentsp.isa.FrameKind`), the payload (a data frame: one
stream vector, lane 0 first; a mark: the sender's cycle, 4 bytes little-endian) and the
CRC-16/CCITT-FALSE of header and payload, low byte first. A link carries ``c2c_bytes`` bytes a
cycle: beat ``j`` holds bytes ``j*c2c_bytes ..``, the last beat padded with zeros.

This module is part of the specification floor: the golden model builds and checks frames with
it, and the RTL's tests use it as the reference of the hardware's serialiser and CRC.
"""

import numpy as np

from opentsp import isa

__all__ = ["crc16", "frame_bytes", "parse", "beats", "kind_of", "Frame", "FrameError"]

CRC_POLY = 0x1021
CRC_INIT = 0xFFFF
_STAMP_MASK = (1 << (8 * isa.C2C_STAMP_BYTES)) - 1


class FrameError(ValueError):
    """Bytes that are not a frame of the configuration."""


def _crc_table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data):
    """CRC-16/CCITT-FALSE of ``data`` (bytes or a sequence of ints 0..255): polynomial
    ``0x1021``, initial value ``0xFFFF``, no reflection, no final XOR (``crc16(b"123456789")``
    is ``0x29B1``)."""
    crc = CRC_INIT
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[(crc >> 8) ^ byte]
    return crc


def frame_bytes(config, kind, payload):
    """The bytes of a frame of ``kind`` on ``config``'s links.

    Parameters
    ----------
    kind : opentsp.isa.FrameKind
    payload : array_like or int
        DATA: the vector, ``lanes`` bytes, lane 0 first; MARK: the stamp (an int, taken modulo
        2**32).
    """
    kind = isa.FrameKind(kind)
    if kind == isa.FrameKind.DATA:
        body = np.asarray(payload, dtype=np.uint8).reshape(-1)
        if body.size != config.lanes:
            raise FrameError(f"a data frame of {config.name!r} carries {config.lanes} bytes, "
                             f"not {body.size}")
        body = bytes(body)
    else:
        body = (int(payload) & _STAMP_MASK).to_bytes(isa.C2C_STAMP_BYTES, "little")
    head = bytes([int(kind)]) + body
    return head + crc16(head).to_bytes(isa.C2C_CRC_BYTES, "little")


class Frame:
    """A frame as the receiver finds it: its kind, payload and whether its CRC held.

    Attributes
    ----------
    kind : opentsp.isa.FrameKind
        The kind its header is taken for (:func:`kind_of`), which sets its length.
    good : bool
        The CRC matched and the header is exactly its kind's.
    payload : numpy.ndarray or int or None
        DATA: ``lanes`` uint8; MARK: the stamp; None when not good.
    """

    def __init__(self, kind, good, payload):
        self.kind, self.good, self.payload = kind, good, payload

    def __repr__(self):
        return f"Frame({self.kind!r}, good={self.good}, payload={self.payload!r})"


def kind_of(header):
    """The kind the receiver takes a frame for from its header byte, and so its length: a data
    frame's if the byte is within 4 bits of ``0xA5``, else a mark's (the two headers differ in
    all 8 bits, so a header with up to 3 flipped bits is still read right; its CRC fails)."""
    return (isa.FrameKind.DATA if bin(header ^ isa.FrameKind.DATA).count("1") <= 4
            else isa.FrameKind.MARK)


def parse(config, data):
    """Check the bytes ``data`` of one frame as the receiver does: the CRC over all but the last
    two bytes against those two, and the header byte against its kind's."""
    data = bytes(data)
    head, crc = data[:-isa.C2C_CRC_BYTES], int.from_bytes(data[-isa.C2C_CRC_BYTES:], "little")
    kind = kind_of(head[0])
    if crc16(head) != crc or head[0] != kind:
        return Frame(kind, False, None)
    if kind == isa.FrameKind.DATA:
        return Frame(kind, True, np.frombuffer(head[1:], dtype=np.uint8).copy())
    return Frame(kind, True, int.from_bytes(head[1:], "little"))


def beats(config, data):
    """The beats (``c2c_bytes`` bytes each, the last padded with zeros) that carry ``data``."""
    width = config.c2c_bytes
    padded = bytes(data) + bytes(-len(data) % width)
    return [padded[i:i + width] for i in range(0, len(padded), width)]
