"""Golden model of the C2C slices (docs/architecture.md section 7d): links, frames, deskew.

Each C2C slice has ``c2c_links`` links. A link's transmitter takes one frame at a time (a
``send`` or ``mark`` issued while it is still taking the last one is not sent: error
``busy``); its receive buffer holds ``c2c_buffer`` frames, each kept with whether its CRC held.
Frames leave the chip through :attr:`C2cLog.outbox` (the multi-chip model,
:mod:`opentsp.sim.system`, carries them to the peer chip) and come in through
:meth:`opentsp.sim.model.Model.deliver`.

One function per instruction (:func:`execute` dispatches): ``send`` collects superlane k's share
in cycle t + k and puts the frame out once the last share is in; ``recv`` takes the oldest
frame in cycle t and writes superlane k of it in cycle t + 1 + k; ``mark`` puts out a mark
stamped with the chip's cycle. ``deskew`` parks its queue (:class:`opentsp.sim.icu.Queue`);
the model releases it when a mark arrives (:meth:`opentsp.sim.model.Model.deliver`).
"""

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from opentsp import c2c_frame, hostmap, isa

__all__ = ["C2c", "C2cLog", "Outgoing", "MNEMONICS", "execute", "side_number"]

MNEMONICS = tuple(op.mnemonic for op in isa.C2C_OPS)


def side_number(side):
    """0 for ``C2C_W``, 1 for ``C2C_E`` (``REG_C2C_FIRST``)."""
    return ("C2C_W", "C2C_E").index(side)


@dataclass(frozen=True)
class Outgoing:
    """A frame put on a link: its first beat is on the wire in the sender's internal cycle
    ``leaves`` (issue + superlanes); ``data`` its bytes."""
    side: str
    link: int
    leaves: int
    kind: isa.FrameKind
    data: bytes


@dataclass
class C2cLog:
    """What the links saw in a run, as the host reads it (``REG_C2C_*``), and the frames out.

    ``first`` is ``(kind, side, link, cycle)`` of the first error (``hostmap.C2C_*`` kinds,
    side 0 west / 1 east, the chip's time), or None."""
    crc: int = 0
    errors: int = 0
    first: tuple | None = None
    outbox: list = field(default_factory=list)

    def error(self, kind, side, link, cycle):
        """Count an error; the first is the earliest, and of several in one cycle the one of
        ``C2C_W`` before ``C2C_E``, then the lower link, then the lower kind (section 7d)."""
        if kind == hostmap.C2C_CRC:
            self.crc = min(self.crc + 1, hostmap.C2C_COUNT_MAX)
        else:
            self.errors = min(self.errors + 1, hostmap.C2C_COUNT_MAX)
        key = (cycle, side_number(side), link, kind)
        if self.first is None or key < (self.first[3], self.first[1], self.first[2],
                                        self.first[0]):
            self.first = (kind, side_number(side), link, cycle)


class _Link:
    def __init__(self):
        self.free = 0               # first issue cycle the transmitter takes a frame in
        self.buffer = deque()       # received frames: (good, payload)


class C2c:
    """The state of one C2C slice: its links, and the instructions running on it."""

    def __init__(self, config, side):
        self.config, self.side = config, side
        self.links = [_Link() for _ in range(config.c2c_links)]
        self._sending = {}          # issue cycle -> (link, shares) of a send being collected
        self._receiving = {}        # issue cycle -> the vector a recv writes, by superlane

    def reserve(self, log, kind, link, issue, time):
        """A ``send`` or ``mark`` on ``link`` issued in internal cycle ``issue`` (chip's time
        ``time``): True if the link takes its frame, False if it is busy (error) or names no
        link (past ``c2c_links``)."""
        if link >= len(self.links):
            return False
        state = self.links[link]
        if issue < state.free:
            log.error(hostmap.C2C_BUSY, self.side, link, time)
            return False
        state.free = issue + isa.c2c_frame_cycles(self.config, kind)
        return True

    def transmit(self, log, kind, link, issue, payload):
        """The frame of a reserved ``send``/``mark`` issued in ``issue``: on the wire from
        ``issue + superlanes``."""
        data = c2c_frame.frame_bytes(self.config, kind, payload)
        log.outbox.append(Outgoing(self.side, link, issue + self.config.superlanes, kind, data))

    def receive(self, log, link, data, time):
        """A data frame's bytes have all arrived on ``link``: the buffer takes it (or drops it,
        full). Returns nothing; marks are handled by the model (deskew)."""
        frame = c2c_frame.parse(self.config, data)
        state = self.links[link]
        if not frame.good:
            log.error(hostmap.C2C_CRC, self.side, link, time)
        if len(state.buffer) >= self.config.c2c_buffer:
            log.error(hostmap.C2C_OVERFLOW, self.side, link, time)
            return
        state.buffer.append((frame.good, frame.payload))


def _share(model, vector, superlane):
    per = model.config.lanes_per_superlane
    return vector[superlane * per:(superlane + 1) * per]


def _exec_send(model, slice_, instr, superlane):
    unit, t = model.c2cs[slice_.name], model.cycle - superlane
    if superlane == 0:      # the link is taken (or found busy) in the issue cycle
        taken = unit.reserve(model.c2c_log, isa.FrameKind.DATA, instr["l"], t, model.time_of(t))
        unit._sending[t] = (taken, [])
    direction, (stream,) = instr.group("s")
    taken, shares = unit._sending[t]
    shares.append(model._input(slice_.position, direction, stream, superlane))
    if superlane == model.config.superlanes - 1:
        del unit._sending[t]
        if taken:
            unit.transmit(model.c2c_log, isa.FrameKind.DATA, instr["l"], t,
                          np.concatenate(shares))


def _exec_recv(model, slice_, instr, superlane):
    unit, t = model.c2cs[slice_.name], model.cycle - superlane
    if superlane == 0:
        link = instr["l"]
        buffer = unit.links[link].buffer if link < len(unit.links) else ()
        vector = None
        if not buffer:
            model.c2c_log.error(hostmap.C2C_EMPTY, unit.side, instr["l"], model.time_of(t))
        else:
            good, payload = buffer.popleft()
            vector = payload if good else None      # a bad frame is never used: zeros
        unit._receiving[t] = (np.zeros(model.config.lanes, dtype=np.uint8) if vector is None
                              else vector)
    vector = unit._receiving[t]
    if superlane == model.config.superlanes - 1:
        del unit._receiving[t]
    direction, (stream,) = instr.group("dst")
    model._write_stream(model.cycle + isa.C2C_RECV_LATENCY, slice_, direction, stream,
                        superlane, _share(model, vector, superlane))


def _exec_mark(model, slice_, instr, superlane):
    if superlane == 0:
        unit, t = model.c2cs[slice_.name], model.cycle
        if unit.reserve(model.c2c_log, isa.FrameKind.MARK, instr["l"], t, model.time_of(t)):
            unit.transmit(model.c2c_log, isa.FrameKind.MARK, instr["l"], t, model.time_of(t))


_EXECUTORS = {"send": _exec_send, "recv": _exec_recv, "mark": _exec_mark}


def execute(model, slice_, instr, superlane):
    """Run C2C instruction ``instr`` (not ``deskew``, which the queue runs) on ``superlane``."""
    _EXECUTORS[instr.op.mnemonic](model, slice_, instr, superlane)
