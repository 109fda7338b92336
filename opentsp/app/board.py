"""Host program for a chip on an FPGA board, over the UART bridge
(:mod:`opentsp.hdl.board.bridge`).

The protocol is :mod:`opentsp.host_protocol`'s: its *operations* (generators that yield
``(request bytes, answer length)`` and receive the answer bytes) load, run and read back a
program. :class:`Board` runs them over a :class:`Transport` (a serial port with
:class:`SerialTransport`); the cocotb bridge testbench (:mod:`opentsp.verif.tb.bridge`) runs the
very same operations on the simulated UART pins.
"""

import time

from opentsp import bridge_protocol as proto
from opentsp import hostmap
from opentsp.config import Config
from opentsp.host_protocol import (
    HostError,
    HostTimeout,
    op_check_config,
    op_load,
    op_read,
    op_read_memories,
    op_write,
    start_write,
)

__all__ = ["BoardError", "BoardTimeout", "Transport", "SerialTransport", "Board"]

DEFAULT_BAUD = 115200


class BoardError(HostError):
    """The board answered, but not as expected (wrong configuration, protocol error, hang)."""


class BoardTimeout(BoardError, HostTimeout):
    """The board did not answer in time."""


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
                except (proto.ProtocolError, HostError) as error:
                    raise BoardError(f"board on {self.transport.name}: {error}") from None
        except StopIteration as stop:
            return stop.value

    def check_config(self):
        return self.execute(op_check_config(self.config))

    def load(self, image, *, holding=None):
        """Load ``image`` (:func:`opentsp.host_protocol.op_load`); ``holding``: what the
        memories hold now, so that words already right are not rewritten."""
        return self.execute(op_load(image.config, image.queue_words(), image.memories(),
                                    holding=holding))

    def run(self, max_seconds=10.0):
        """Start and wait for done; returns the cycle count."""
        deadline = time.monotonic() + max_seconds
        self.execute(op_write(*start_write()))
        while time.monotonic() < deadline:
            status = self.execute(op_read(hostmap.control_addr(hostmap.REG_STATUS)))
            if status & hostmap.STATUS_DONE:
                return self.execute(op_read(hostmap.control_addr(hostmap.REG_CYCLES)))
        raise BoardTimeout(f"the program on {self.transport.name} did not finish within "
                           f"{max_seconds} s")

    def read_memories(self, words=None):
        return self.execute(op_read_memories(self.config, words))
