"""Host program for a chip on an FPGA board, over the UART bridge (:mod:`opentsp.hdl.bridge`).

The host side is written once, as *operations*: generators that yield ``(request bytes, answer
length)`` and receive the answer bytes (:func:`op_write`, :func:`op_read`, :func:`op_load`,
:func:`op_run`, :func:`op_read_memories`). :class:`Board` runs them over a :class:`Transport`
(a serial port with :class:`SerialTransport`); the cocotb bridge test
(:mod:`opentsp.verif.tb_bridge`) runs the very same operations on the simulated UART pins.
"""

import time

import numpy as np

from opentsp import bridge_protocol as proto
from opentsp import hostmap, isa
from opentsp.config import Config

__all__ = [
    "BoardError", "BoardTimeout", "Transport", "SerialTransport", "Board", "load_writes",
    "op_write", "op_read", "op_load", "op_run", "op_read_memories", "memory_words",
]

DEFAULT_BAUD = 115200


class BoardError(Exception):
    """The board answered, but not as expected (wrong configuration, protocol error, hang)."""


class BoardTimeout(BoardError):
    """The board did not answer in time."""


# Operations ---------------------------------------------------------------------------------

def op_write(addr, data):
    """Host-port write of ``data`` to ``addr``."""
    reply = yield proto.encode_write(addr, data), proto.WRITE_REPLY_BYTES
    proto.decode_write_reply(reply)


def op_read(addr):
    """Host-port read of ``addr``; returns the word."""
    reply = yield proto.encode_read(addr), proto.READ_REPLY_BYTES
    return proto.decode_read_reply(reply)


def op_check_config(config):
    """Check that the chip on the board was built for ``config`` (``REG_CONFIG``)."""
    value = yield from op_read(hostmap.control_addr(hostmap.REG_CONFIG))
    expected = int.from_bytes(config.hash[:4], "little")
    if value != expected:
        raise BoardError(f"the board's chip was built for another configuration than "
                         f"{config.name!r} (config word {value:#010x}, expected {expected:#010x})")


def _chunks(config, vector):
    """One memory word (``lanes`` bytes) as ``(superlane, chunk, value)`` host chunks."""
    lps = config.lanes_per_superlane
    for superlane in range(config.superlanes):
        lanes = bytes(vector[superlane * lps:(superlane + 1) * lps])
        for chunk in range(hostmap.chunks_per_superlane(config)):
            part = lanes[4 * chunk:4 * chunk + 4]
            yield superlane, chunk, int.from_bytes(part.ljust(4, b"\0"), "little")


def load_writes(image, *, holding=None):
    """The host-port writes that load ``image``: a run-state reset, every queue entry, and
    every memory word (the image's data, zeros elsewhere).

    Parameters
    ----------
    holding : numpy array, optional
        What the memories hold now (uint8, ``(memories, mem_words, lanes)``): words that hold
        their target already are not written. Zeros right after the FPGA is configured (its
        block RAM starts at zero).
    """
    config = image.config
    writes = [(hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_RESET)]
    for queue in range(len(image.queues)):
        writes += [(hostmap.queue_addr(queue, index), word)
                   for index, word in enumerate(image.words(queue))]
    for mem in range(len(isa.mem_slices(config))):
        target = image.memory(mem)
        for word in range(config.mem_words):
            if holding is not None and np.array_equal(holding[mem, word], target[word]):
                continue
            writes += [(hostmap.mem_addr(mem, word, superlane, chunk), value)
                       for superlane, chunk, value in _chunks(config, target[word])]
    return writes


def op_load(image, *, holding=None):
    """Load ``image`` (see :func:`load_writes`) after checking the board's configuration."""
    yield from op_check_config(image.config)
    for addr, value in load_writes(image, holding=holding):
        yield from op_write(addr, value)


def op_run(max_polls=100_000):
    """Start the loaded program and poll ``REG_STATUS`` until done; returns the cycle count."""
    yield from op_write(hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_START)
    for _ in range(max_polls):
        status = yield from op_read(hostmap.control_addr(hostmap.REG_STATUS))
        if status & hostmap.STATUS_DONE:
            return (yield from op_read(hostmap.control_addr(hostmap.REG_CYCLES)))
    raise BoardError(f"the program is still running after {max_polls} status reads")


def memory_words(config):
    """Every ``(mem, word)`` of the chip, memory numbering of :func:`opentsp.isa.mem_slices`."""
    return [(mem, word) for mem in range(len(isa.mem_slices(config)))
            for word in range(config.mem_words)]


def op_read_memories(config, words=None):
    """Read memory words back; returns ``uint8`` ``(memories, mem_words, lanes)`` with the
    words not read left at zero.

    Parameters
    ----------
    words : iterable of (mem, word), optional
        The words to read; all of them by default.
    """
    lps = config.lanes_per_superlane
    memories = np.zeros((len(isa.mem_slices(config)), config.mem_words, config.lanes), np.uint8)
    for mem, word in (memory_words(config) if words is None else words):
        for superlane in range(config.superlanes):
            for chunk in range(hostmap.chunks_per_superlane(config)):
                value = yield from op_read(hostmap.mem_addr(mem, word, superlane, chunk))
                lane = superlane * lps + 4 * chunk
                width = min(4, lps - 4 * chunk)
                memories[mem, word, lane:lane + width] = list(value.to_bytes(4, "little")[:width])
    return memories


# Transports and the host-side driver ---------------------------------------------------------

class Transport:
    """A byte pipe to the bridge. ``read`` returns fewer than ``count`` bytes on a timeout."""

    name = "transport"

    def write(self, data):
        raise NotImplementedError

    def read(self, count, timeout):
        raise NotImplementedError


class SerialTransport(Transport):
    """A serial port (the board's USB serial) through pyserial, 8N1."""

    def __init__(self, port, baud=DEFAULT_BAUD):
        import serial

        if not isinstance(baud, int) or baud < 1:
            raise ValueError(f"baud must be a positive integer, not {baud!r}")
        try:
            self._serial = serial.Serial(port, baud, timeout=0)
        except serial.SerialException as error:
            raise BoardError(f"cannot open serial port {port!r}: {error}") from None
        self._serial.reset_input_buffer()
        self.name = f"{port} at {baud} baud"

    def write(self, data):
        self._serial.write(data)
        self._serial.flush()

    def read(self, count, timeout):
        self._serial.timeout = timeout
        return self._serial.read(count)

    def close(self):
        self._serial.close()


class Board:
    """Runs host operations over a :class:`Transport`.

    Parameters
    ----------
    transport : Transport
    config : Config
        The configuration the board's chip was built for.
    timeout : float
        Seconds to wait for each answer before :class:`BoardTimeout`.
    """

    def __init__(self, transport, config, *, timeout=1.0):
        if not isinstance(transport, Transport):
            raise TypeError(f"transport must be a Transport, not {transport!r}")
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        if not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.transport = transport
        self.config = config
        self.timeout = timeout

    def execute(self, operation):
        """Drive one operation (a generator of requests) to its end; returns its result."""
        try:
            request = next(operation)
            while True:
                data, count = request
                self.transport.write(data)
                reply = self.transport.read(count, self.timeout)
                if len(reply) < count:
                    raise BoardTimeout(
                        f"no answer from the board on {self.transport.name} within "
                        f"{self.timeout} s ({len(reply)} of {count} bytes): is it powered, "
                        f"programmed with the OpenTSP bitstream and at this baud rate?")
                try:
                    request = operation.send(reply)
                except proto.ProtocolError as error:
                    raise BoardError(f"board on {self.transport.name}: {error}") from None
        except StopIteration as stop:
            return stop.value

    def check_config(self):
        return self.execute(op_check_config(self.config))

    def load(self, image, *, holding=None):
        return self.execute(op_load(image, holding=holding))

    def run(self, max_seconds=10.0):
        """Start and wait for done; returns the cycle count."""
        deadline = time.monotonic() + max_seconds
        self.execute(op_write(hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_START))
        while time.monotonic() < deadline:
            status = self.execute(op_read(hostmap.control_addr(hostmap.REG_STATUS)))
            if status & hostmap.STATUS_DONE:
                return self.execute(op_read(hostmap.control_addr(hostmap.REG_CYCLES)))
        raise BoardTimeout(f"the program on {self.transport.name} did not finish within "
                           f"{max_seconds} s")

    def read_memories(self, words=None):
        return self.execute(op_read_memories(self.config, words))
