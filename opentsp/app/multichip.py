"""``opentsp system``: assemble, check and run a multi-chip program on the multi-chip golden
model, many times, with the links' latencies and the chips' start times drawn at random within
what deskew absorbs (docs/multichip.md); every run must give the same memories and the same
cycle counts. ``make multichip-regress`` runs it on the examples 1,000 times each.
"""

import random
import time
from dataclasses import dataclass

from opentsp import isa
from opentsp.sim.system import random_latencies, run_system

__all__ = ["Regression", "latency_regression", "safe_start_skew"]


@dataclass
class Regression:
    """What :func:`latency_regression` saw: the runs, the cycle counts (every run's, if they
    agree), the first disagreement (``None`` if none) and the seconds taken."""
    runs: int
    cycles: tuple
    mismatch: str | None
    seconds: float


def safe_start_skew(config):
    """The most cycles a chip may be started after the leader in these examples: every chip
    must be running before its first mark arrives (the leader's marks leave from cycle 0)."""
    return isa.c2c_arrival(config, isa.FrameKind.MARK, 0) - 1


def _outcome(result):
    return (tuple(result.cycles),
            tuple(chip.memories.tobytes() for chip in result.chips),
            tuple((chip.c2c_crc, chip.c2c_errors) for chip in result.chips))


def latency_regression(system, runs, seed=0, max_start=None, progress=None):
    """Run ``system`` (a :class:`opentsp.firmware.system.SystemProgram`) ``runs`` times, run
    ``k`` with the latencies of :func:`opentsp.sim.system.random_latencies` for seed
    ``seed + k`` and every chip but the leader started up to ``max_start`` cycles late.

    Returns
    -------
    Regression
        ``mismatch`` names the first run whose cycles, memories or link counters differ from
        the first run's, with its seed.
    """
    config, topology = system.config, system.topology
    max_start = safe_start_skew(config) if max_start is None else max_start
    first, began = None, time.perf_counter()
    for k in range(runs):
        rng = random.Random(seed + k)
        starts = [0] + [rng.randint(0, max_start) for _ in range(topology.chips - 1)]
        latencies = random_latencies(topology, seed + k)
        result = run_system(system.images, topology, latencies=latencies, starts=starts)
        outcome = _outcome(result)
        if first is None:
            first = outcome
        elif outcome != first:
            what = ("cycles" if outcome[0] != first[0] else
                    "memories" if outcome[1] != first[1] else "link counters")
            return Regression(k + 1, first[0], f"run {k} (seed {seed + k}, starts {starts}): "
                              f"{what} differ from run 0's", time.perf_counter() - began)
        if progress is not None and (k + 1) % max(1, runs // 10) == 0:
            progress(k + 1)
    return Regression(runs, first[0] if first else (), None, time.perf_counter() - began)
