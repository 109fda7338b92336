"""A program's schedule: which instruction issues in which cycle on every functional slice, and
how full the streams are, from the golden model's run (so the picture is what the RTL does,
cycle for cycle).

:func:`collect` runs an image on the golden model and records a :class:`Schedule`;
:func:`plot` draws it with matplotlib (Agg, no display needed) to a ``.png`` or ``.svg`` file;
:func:`text` is the terminal form. ``opentsp schedule PROGRAM --plot FILE`` (or ``--text``)
uses them; docs/schedule.md explains how to read the picture.

Stream occupancy of direction ``d``, stream ``s`` in cycle ``t`` is the number of slice
positions whose ``(d, s)`` register of superlane 0 holds a value that some instruction put on
the stream (at the end of cycle ``t``): a value lands in the producer's register and moves one
position a cycle until it leaves the chip at the edge. The other superlanes hold the same
pattern one cycle later per superlane (the stagger, section 4 of docs/architecture.md).
"""

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opentsp import isa
from opentsp.sim.model import Model

__all__ = ["Issue", "Schedule", "ScheduleError", "collect", "text", "plot", "PLOT_SUFFIXES",
           "UNIT_COLOURS"]

PLOT_SUFFIXES = (".png", ".svg")
#: Bar colour per unit (colour-blind safe Okabe-Ito colours).
UNIT_COLOURS = {isa.Unit.MEM: "#0072B2", isa.Unit.VXM: "#D55E00", isa.Unit.MXM: "#009E73",
                isa.Unit.SXM: "#CC79A7", isa.Unit.ICU: "#999999"}


class ScheduleError(ValueError):
    """Bad input to the schedule tools (one line naming the place and the cause)."""


@dataclass(frozen=True)
class Issue:
    """One issued instruction: the cycle in which superlane 0 executes it, and where."""
    cycle: int
    queue: str
    instr: isa.Instr


@dataclass(frozen=True)
class Schedule:
    """A program's run on the golden model.

    Attributes
    ----------
    issues : tuple of Issue
        Every issued instruction in cycle order (queues west to east within a cycle).
    occupancy : numpy.ndarray
        ``(2, streams, cycles)`` int: positions holding a value, per direction (``isa.Dir``),
        stream and cycle, superlane 0.
    """
    config: object
    cycles: int
    issues: tuple
    occupancy: np.ndarray
    name: str = "program"


class _Recorder(Model):
    """The golden model, also tracking which stream registers hold a produced value."""

    def __init__(self, image, **kwargs):
        super().__init__(image, trace=True, **kwargs)
        self._live = np.zeros((2, self.positions, self.config.streams), dtype=bool)
        self._landing = defaultdict(list)
        self.occupancy = []

    def _write_stream(self, when, slice_, direction, stream, superlane, value):
        super()._write_stream(when, slice_, direction, stream, superlane, value)
        if superlane == 0 and stream < self.config.streams:
            self._landing[when].append((direction, slice_.position, stream))

    def step(self):
        t = self.cycle
        super().step()
        live = self._live       # the same shift as the stream registers', then the landings
        live[isa.Dir.E, 1:] = live[isa.Dir.E, :-1].copy()
        live[isa.Dir.E, 0] = False
        live[isa.Dir.W, :-1] = live[isa.Dir.W, 1:].copy()
        live[isa.Dir.W, -1] = False
        for direction, position, stream in self._landing.pop(t, ()):
            live[direction, position, stream] = True
        self.occupancy.append(live.sum(axis=1))


def collect(image, *, name="program", max_cycles=1_000_000):
    """Run ``image`` on the golden model and return its :class:`Schedule`."""
    model = _Recorder(image, max_cycles=max_cycles)
    result = model.run()
    issues = tuple(Issue(record.cycle, queue, instr)
                   for record in result.trace for queue, instr in record.issued)
    occupancy = np.stack(model.occupancy, axis=-1) if model.occupancy else \
        np.zeros((2, image.config.streams, 0), dtype=int)
    return Schedule(image.config, result.cycles, issues, occupancy, name)


def text(schedule):
    """The terminal form: a header, one line per issued instruction (``cycle queue instr``),
    and per queue its instruction count and first and last issue cycle."""
    config = schedule.config
    lines = [f"{schedule.name}: {schedule.cycles} cycles on config {config.name} "
             f"({config.superlanes} superlanes: superlane k executes an instruction k cycles "
             f"after it issues), {len(schedule.issues)} instructions issued",
             f"{'cycle':>7}  {'queue':<8} instruction"]
    lines += [f"{issue.cycle:>7}  {issue.queue:<8} {issue.instr}" for issue in schedule.issues]
    per_queue = defaultdict(list)
    for issue in schedule.issues:
        per_queue[issue.queue].append(issue.cycle)
    lines.append("per queue (west to east): instructions, first..last cycle")
    for slice_ in isa.queues(config):
        cycles = per_queue.get(slice_.name)
        span = f"{cycles[0]}..{cycles[-1]}" if cycles else "-"
        lines.append(f"  {slice_.name:<8} {len(cycles or ()):>6}  {span}")
    peak = schedule.occupancy.max(initial=0)
    lines.append(f"stream occupancy: at most {peak} of {len(isa.floorplan(config))} positions "
                 f"of one stream hold a value")
    return "\n".join(lines) + "\n"


def plot(schedule, path):
    """Draw ``schedule`` to ``path`` (``.png`` or ``.svg``): issue bars per queue (top) and
    stream occupancy (bottom). Returns the path."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise ScheduleError(f"{path}: plot file must end in .png or .svg, "
                            f"not {path.suffix or '(no suffix)'!r}")
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    config = schedule.config
    queue_slices = isa.queues(config)
    rows = {s.name: i for i, s in enumerate(queue_slices)}
    cycles = max(schedule.cycles, 1)
    superlanes = config.superlanes
    width = min(max(4.0 + 0.13 * cycles, 10.0), 60.0)
    streams = config.streams
    height_top = 0.32 * len(rows) + 0.8
    height_bottom = 0.16 * 2 * streams + 0.6
    figure, (top, bottom) = pyplot.subplots(
        2, 1, sharex=True, figsize=(width, height_top + height_bottom + 1.0),
        gridspec_kw={"height_ratios": [height_top, height_bottom]}, layout="constrained")

    # One parallelogram per instruction: superlane 0 (top edge of the row) executes it in its
    # issue cycle, superlane S-1 (bottom edge) S-1 cycles later.
    polygons, colours, labels = [], [], []
    for issue in schedule.issues:
        y0 = rows[issue.queue] - 0.4
        y1 = rows[issue.queue] + 0.4
        t = issue.cycle
        polygons.append([(t, y0), (t + 1, y0), (t + superlanes, y1), (t + superlanes - 1, y1)])
        colours.append(UNIT_COLOURS[issue.instr.op.unit])
        labels.append((t + superlanes / 2, rows[issue.queue], issue.instr.op.name))
    top.add_collection(PolyCollection(polygons, facecolors=colours, edgecolors="white",
                                      linewidths=0.4))
    # A label fits when one cycle is at least a font height wide (the text runs vertically).
    points_per_cycle = width * 72 * 0.85 / cycles
    fontsize = 6.5
    if points_per_cycle >= fontsize:
        for x, y, mnemonic in labels:
            top.text(x, y, mnemonic, rotation=90, ha="center", va="center", fontsize=fontsize,
                     color="white", clip_on=True)
    top.set_ylim(len(rows) - 0.5, -0.5)
    top.set_yticks(range(len(rows)), list(rows))
    top.set_ylabel("queue (west to east)")
    top.set_title(f"{schedule.name}: {schedule.cycles} cycles on config {config.name}, "
                  f"{len(schedule.issues)} instructions; each bar runs from superlane 0 (top) "
                  f"to superlane {superlanes - 1} (bottom, "
                  f"{superlanes - 1} cycle{'s' if superlanes != 2 else ''} later)",
                  fontsize=9, loc="left")
    top.grid(axis="x", color="#dddddd", linewidth=0.5)
    top.set_axisbelow(True)
    used = sorted({issue.instr.op.unit for issue in schedule.issues})
    top.legend(handles=[Patch(color=UNIT_COLOURS[u], label=u.name) for u in used],
               loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7, ncols=len(used) or 1,
               frameon=False, borderaxespad=0.1)

    occupancy = schedule.occupancy.reshape(2 * streams, -1)
    image = bottom.imshow(occupancy, aspect="auto", interpolation="nearest", cmap="Greys",
                          extent=(0, occupancy.shape[1], 2 * streams - 0.5, -0.5),
                          vmin=0, vmax=max(int(occupancy.max(initial=0)), 1))
    bottom.set_yticks(range(2 * streams),
                      [f"{d.name}{s}" for d in isa.Dir for s in range(streams)], fontsize=6)
    bottom.axhline(streams - 0.5, color="#D55E00", linewidth=0.8)
    bottom.set_ylabel("stream")
    bottom.set_xlabel("cycle")
    bottom.set_title("stream occupancy: positions whose register (superlane 0) holds a "
                     "value, eastward streams E0.. above westward W0..", fontsize=9, loc="left")
    figure.colorbar(image, ax=bottom, label="positions", pad=0.01, fraction=0.03)
    top.set_xlim(0, cycles + superlanes)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=130)
    pyplot.close(figure)
    return path
