"""Byte protocol of the UART host bridge, shared by the RTL (:mod:`opentsp.hdl.board.bridge`),
its tests, and the host protocol's operations (:mod:`opentsp.host_protocol`) that the cocotb
testbench and the board host program (:mod:`opentsp.app.board`) run.

The host sends commands; the bridge answers every command, so the host can tell a board that
does not answer (a timeout) from one that does. Integers are little-endian.

====================  ==============================  ====================================
command               bytes from the host             answer
====================  ==============================  ====================================
write a word          ``W`` addr[4] data[4]           ``K`` after the host-port write
read a word           ``R`` addr[4]                   ``D`` data[4]
anything else         one byte that is not W or R     ``?``
====================  ==============================  ====================================

Addresses and data are those of the chip's host port (:mod:`opentsp.hostmap`). A command whose
bytes stop arriving for :data:`IDLE_TIMEOUT_BYTES` byte times is dropped, so a host that died
mid-command cannot wedge the bridge.
"""

__all__ = [
    "CMD_WRITE", "CMD_READ", "ACK_WRITE", "ACK_READ", "NAK", "IDLE_TIMEOUT_BYTES",
    "ProtocolError", "encode_write", "encode_read", "WRITE_REPLY_BYTES", "READ_REPLY_BYTES",
    "decode_write_reply", "decode_read_reply", "uart_frame",
]

CMD_WRITE = ord("W")
CMD_READ = ord("R")
ACK_WRITE = ord("K")
ACK_READ = ord("D")
NAK = ord("?")

WRITE_REPLY_BYTES = 1
READ_REPLY_BYTES = 5
#: Byte times without a byte after which the bridge drops a half-received command.
IDLE_TIMEOUT_BYTES = 64


class ProtocolError(Exception):
    """The bridge answered something the protocol does not allow."""


def _word(value, what):
    if not isinstance(value, int) or not 0 <= value < 1 << 32:
        raise ValueError(f"{what} must be a 32-bit unsigned integer, not {value!r}")
    return value.to_bytes(4, "little")


def encode_write(addr, data):
    """The 9 bytes of a host-port write of ``data`` to ``addr``."""
    return bytes([CMD_WRITE]) + _word(addr, "addr") + _word(data, "data")


def encode_read(addr):
    """The 5 bytes of a host-port read of ``addr``."""
    return bytes([CMD_READ]) + _word(addr, "addr")


def decode_write_reply(reply):
    """Check the answer to a write; raises :class:`ProtocolError` if it is not ``K``."""
    if bytes(reply) != bytes([ACK_WRITE]):
        raise ProtocolError(f"write answer must be {bytes([ACK_WRITE])!r}, not {bytes(reply)!r}")


def decode_read_reply(reply):
    """The data word of the answer to a read (``D`` data[4])."""
    reply = bytes(reply)
    if len(reply) != READ_REPLY_BYTES or reply[0] != ACK_READ:
        raise ProtocolError(f"read answer must be {bytes([ACK_READ])!r} and 4 data bytes, "
                            f"not {reply!r}")
    return int.from_bytes(reply[1:], "little")


def uart_frame(byte):
    """Line levels of one UART frame (8N1, least significant bit first): start bit 0, eight
    data bits, stop bit 1."""
    if not isinstance(byte, int) or not 0 <= byte < 256:
        raise ValueError(f"byte must be an integer 0..255, not {byte!r}")
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]
