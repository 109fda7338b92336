"""Cycle-exact golden model of several chips cabled by links (docs/multichip.md).

Every chip is an :class:`opentsp.sim.model.Model` of its own image; they run on one clock, the
*global* cycle. Chip ``i`` is started by its host in global cycle ``starts[i]`` and steps from
then on until it is done. A frame a chip puts on a link (its first beat in the sender's cycle
``leaves``) is in the peer's receive buffer ``c2c_frame_cycles + latency`` cycles later
(section 7d), ``latency`` the cable's in that direction, fixed for the run, anywhere in
``c2c_latency .. c2c_latency + c2c_window``. Injected faults flip bits of chosen frames in
flight; the receiver's CRC finds them.

A frame that comes to a chip that is not running, or a run that does not finish in the cycle
limit, is a :class:`SystemError` naming the chip, the link and the cycle.
"""

import random
from collections import defaultdict
from dataclasses import dataclass

from opentsp import isa
from opentsp.sim.model import CycleLimitError, Model
from opentsp.topology import Port, Topology

__all__ = ["System", "SystemResult", "SystemError", "LinkFault", "run_system",
           "random_latencies"]


class SystemError(RuntimeError):
    """A multi-chip run that cannot go on as the chips were programmed."""


@dataclass(frozen=True)
class LinkFault:
    """Flip bit ``bit`` (0 = bit 0 of the first byte) of the ``frame``-th frame (0 first) that
    ``port`` sends, in flight."""
    port: Port
    frame: int
    bit: int


@dataclass
class SystemResult:
    """Per chip, its :class:`opentsp.sim.model.Result` (``cycles`` in the chip's time), and
    the global cycle in which each chip finished."""
    chips: list
    finished: list

    @property
    def cycles(self):
        """Every chip's cycle count, in chip order."""
        return [result.cycles for result in self.chips]


def random_latencies(topology, seed):
    """A latency per sending port, drawn uniformly from the window (section 7d)."""
    config, rng = topology.config, random.Random(seed)
    return {port: config.c2c_latency + rng.randint(0, config.c2c_window)
            for port in topology.ports}


class System:
    """Several chips on one clock.

    Parameters
    ----------
    images : sequence of opentsp.firmware.image.Image
        One per chip, all of ``topology.config``.
    topology : opentsp.topology.Topology
    latencies : dict, optional
        ``{sending Port: cycles}``; a port not named takes ``c2c_latency``.
    starts : sequence of int, optional
        Global cycle in which each chip's host starts it (default: all in cycle 0).
    faults : iterable of LinkFault
    max_cycles : int
        Global cycles after which a chip not done is an error.
    trace : bool
        Record every chip's trace (:class:`opentsp.sim.model.Model`).

    Raises
    ------
    SystemError
        Images that do not match the topology, a latency outside the window, a start or a
        fault that cannot be.
    """

    def __init__(self, images, topology, *, latencies=None, starts=None, faults=(),
                 max_cycles=1_000_000, trace=False):
        if not isinstance(topology, Topology):
            raise TypeError(f"topology must be a Topology, not {topology!r}")
        config = self.config = topology.config
        images = list(images)
        if len(images) != topology.chips:
            raise SystemError(f"{topology.name}: {topology.chips} chips, but {len(images)} "
                              f"images")
        for chip, image in enumerate(images):
            if image.config != config:
                raise SystemError(f"chip {chip}: image built for configuration "
                                  f"{image.config.name!r}, the system is of {config.name!r}")
        self.topology = topology
        self.latencies = self._check_latencies(latencies or {})
        self.starts = self._check_starts(starts)
        self.faults = self._check_faults(faults)
        self.models = [Model(image, trace=trace) for image in images]
        self.max_cycles = max_cycles
        self.cycle = 0
        self._sent = defaultdict(int)       # port -> frames sent so far
        self._arrivals = defaultdict(list)  # global cycle -> [(Port, bytes)]
        self._finished = [None] * topology.chips

    def _check_latencies(self, latencies):
        config, low = self.config, self.config.c2c_latency
        high = low + config.c2c_window
        for port, latency in latencies.items():
            peer = self.topology.peer(port)
            if peer is None:
                raise SystemError(f"{port}: a latency for a port without a cable")
            if not isinstance(latency, int) or not low <= latency <= high:
                raise SystemError(f"{port} -> {peer}: latency {latency!r} is outside the "
                                  f"window {low}..{high} that deskew absorbs (c2c_latency .. "
                                  f"c2c_latency + c2c_window)")
        return {port: latencies.get(port, low) for port in self.topology.ports}

    def _check_starts(self, starts):
        chips = self.topology.chips
        starts = [0] * chips if starts is None else list(starts)
        if len(starts) != chips or any(not isinstance(s, int) or s < 0 for s in starts):
            raise SystemError(f"starts must be {chips} cycles >= 0, one per chip, not "
                              f"{starts!r}")
        return starts

    def _check_faults(self, faults):
        table = {}
        for fault in faults:
            if not isinstance(fault, LinkFault):
                raise TypeError(f"faults must hold LinkFault objects, not {fault!r}")
            if self.topology.peer(fault.port) is None:
                raise SystemError(f"{fault.port}: a fault on a port without a cable")
            if fault.frame < 0 or fault.bit < 0:
                raise SystemError(f"{fault.port}: fault frame and bit must be >= 0, not "
                                  f"{fault.frame!r} and {fault.bit!r}")
            table.setdefault((fault.port, fault.frame), []).append(fault.bit)
        return table

    def _running(self, chip, cycle):
        return self.starts[chip] <= cycle and self._finished[chip] is None

    def step(self):
        """Run one global cycle: deliver the frames due, step every running chip, carry the
        frames they put on links."""
        g = self.cycle
        if g >= self.max_cycles:
            self._limit()
        for port, data in self._arrivals.pop(g, ()):
            if not self._running(port.chip, g):
                state = "not started yet" if g < self.starts[port.chip] else "finished"
                raise SystemError(f"chip {port.chip} {port.name}: a frame arrives in global "
                                  f"cycle {g}, when the chip is {state} (started in cycle "
                                  f"{self.starts[port.chip]})")
            self.models[port.chip].deliver(port.side, port.link, data)
        for chip, model in enumerate(self.models):
            if not self._running(chip, g):
                continue
            model.step()
            self._carry(chip, model, g)
            if model.done:
                self._finished[chip] = g + 1
        self.cycle += 1

    def _carry(self, chip, model, g):
        """The frames ``chip`` put on links in global cycle ``g``, on their way."""
        for frame in model.c2c_log.outbox:
            port = Port(chip, frame.side, frame.link)
            peer = self.topology.peer(port)
            number = self._sent[port]
            self._sent[port] += 1
            if peer is None:
                continue                # an unconnected link: the frame falls off
            data = bytearray(frame.data)
            for bit in self.faults.get((port, number), ()):
                if bit >= 8 * len(data):
                    raise SystemError(f"{port}: fault bit {bit} beyond frame {number}'s "
                                      f"{8 * len(data)} bits")
                data[bit // 8] ^= 1 << bit % 8
            leaves = g + frame.leaves - (model.cycle - 1)     # the global cycle of beat 0
            arrival = (leaves + isa.c2c_frame_cycles(self.config, frame.kind)
                       + self.latencies[port])
            self._arrivals[arrival].append((peer, bytes(data)))
        model.c2c_log.outbox.clear()

    def _limit(self):
        for chip, model in enumerate(self.models):
            if self._finished[chip] is not None:
                continue
            waiting = [(self.models[chip].queue_slices[q].name, queue)
                       for q, queue in enumerate(model.queues) if queue.deskewing is not None]
            if waiting:
                side, queue = waiting[0]
                raise SystemError(f"chip {chip}: its deskew on "
                                  f"{isa.c2c_link_name(side, queue.deskewing)} was never "
                                  f"released: no mark came by global cycle {self.cycle}")
            raise SystemError(f"chip {chip}: not finished by global cycle {self.cycle} (the "
                              f"limit)")

    @property
    def done(self):
        return all(finished is not None for finished in self._finished)

    def run(self):
        """Run until every chip is done; a :class:`SystemResult`."""
        try:
            while not self.done:
                self.step()
        except CycleLimitError as error:      # a chip's own limit
            raise SystemError(str(error)) from None
        if self._arrivals:                      # frames still in flight to finished chips
            g = min(self._arrivals)
            port = self._arrivals[g][0][0]
            raise SystemError(f"chip {port.chip} {port.name}: a frame arrives in global "
                              f"cycle {g}, when the chip is finished (in cycle "
                              f"{self._finished[port.chip]})")
        return SystemResult([model.result() for model in self.models], list(self._finished))


def run_system(images, topology, **kwargs):
    """Run ``images`` cabled as ``topology``; see :class:`System` for the options."""
    return System(images, topology, **kwargs).run()
