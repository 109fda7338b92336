"""Functional coverage of random programs, measured on what the golden model executes.

Every program runs on the golden model (:class:`opentsp.sim.model.Model`, with a trace of what
each queue issues, repeat copies and fetched words included, and a look at the VXM's operand
values); the bins below count what was hit. All bins are declared up front from the ISA tables
and the configuration, so a bin never hit shows as a hole:

==================  ===========================================================================
group               bins
==================  ===========================================================================
instruction         every mnemonic (issued; ``nop``/``repeat``/``end`` reached, ``sync``
                    released, ``notify`` issued, ``ifetch`` words executed)
vxm func x type     every VXM function on every type (``cvt``: every source -> result pair)
vxm operand a       every VXM function with operand ``a`` from a stream and chained (``r``)
vxm chain           a chained operand in cycle c reading: the result of c - 2 (no VXM
                    instruction in c - 1), an older one (a gap), none yet (zero), and one
                    passing over the result of an instruction in c - 1 (chains interleaved)
vxm values          operands holding 0, -1, min and max of every integer type, and a zero, one,
                    an infinity and a NaN of f32 (some lane); f16 and bf16, which only four
                    ``cvt`` pairs read, meet their special values in the directed tests
                    (``tests/test_vxm.py``), not here
producer dir        every stream-writing instruction writing eastward and westward
consumer dir        every stream operand read from eastward and westward streams
slice x op          every instruction of a unit on every slice of that unit (every MEM slice)
stream              every (direction, stream id) written, and ids past ``streams`` used
immediate           every non-stream field at its smallest value, at its configuration limit
                    and past it (``addr``: high bits set; ``ifetch n``: only above 1, see
                    :mod:`opentsp.verif.randprog`)
mem bank            reads and commits of every bank (plain and sequenced elements by address)
icu                 a sync that waits, a repeat with spacing 1 and above 1, a fetched word run
stagger             every queue issuing in two consecutive cycles (superlane k of the first and
                    k - 1 of the second at work in the same cycle)
==================  ===========================================================================

Thresholds (:data:`THRESHOLDS`, checked by ``tests/test_coverage.py`` and ``make coverage``):
100 % of the groups ``instruction``, ``vxm func x type``, ``producer dir``, ``consumer dir``,
``slice x op`` and ``vxm values``; at least 90 % of every other group and of all bins together.

    python -m opentsp.verif.coverage --seeds 200 --first 0      # make coverage
"""

import argparse
import sys

import numpy as np

from opentsp import isa, packing, queue_timing
from opentsp.config import get_config
from opentsp.sim.model import Model
from opentsp.verif.randprog import BATCH, parse_mix, random_image

__all__ = ["Coverage", "THRESHOLDS", "TOTAL_THRESHOLD", "measure", "main"]

#: Least fraction of each group's bins that a batch must hit (groups not named: 0.9).
THRESHOLDS = {"instruction": 1.0, "vxm func x type": 1.0, "producer dir": 1.0,
              "consumer dir": 1.0, "slice x op": 1.0, "vxm values": 1.0}
#: Least fraction of all bins together (and of every group not in :data:`THRESHOLDS`).
TOTAL_THRESHOLD = 0.9
_VALUE_CLASSES = ("0", "-1", "min", "max")
#: The bins of ``vxm chain``: what a chained operand in cycle c reads (:func:`_chain_case`).
_CHAIN_CASES = ("result of c-2", "older result", "no result yet", "passes over c-1")
#: The classes of float results: a zero, exactly one, an infinity, a NaN.
_FLOAT_CLASSES = ("zero", "one", "inf", "nan")


def _classes(dtype):
    return _FLOAT_CLASSES if dtype.is_float else _VALUE_CLASSES


def _value_classes(values, dtype):
    values = np.asarray(values).astype(np.int64) & 0xFFFFFFFF
    if dtype.is_float:
        fmt = packing.FLOAT_FORMATS[dtype]
        exp_bits, man_bits = fmt.exp_bits, fmt.man_bits
        magnitude = values & ((1 << (exp_bits + man_bits)) - 1)
        one = ((1 << (exp_bits - 1)) - 1) << man_bits
        inf = ((1 << exp_bits) - 1) << man_bits
        found = {"zero": magnitude == 0, "one": magnitude == one, "inf": magnitude == inf,
                 "nan": magnitude > inf}
        return [name for name, hit in found.items() if hit.any()]
    bits = 8 * dtype.bytes
    values = ((values + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))
    wanted = {"0": 0, "-1": -1, "min": -(1 << (bits - 1)), "max": (1 << (bits - 1)) - 1}
    return [name for name, value in wanted.items() if (values == value).any()]


class Coverage:
    """Bins (``group -> {bin: hits}``) for one configuration; :meth:`add` runs a program."""

    def __init__(self, config):
        self.config = config = get_config(config)
        self.programs = self.cycles = 0
        self.bins = {}
        # the instructions this configuration runs (without floating point, no f32 functions
        # and no MXM floating-point mode; without links, no C2C instructions)
        units = {isa.Unit.ICU} | {isa.unit_of(s) for s in isa.queues(config)}
        ops = [op for op in isa.OPS if (config.floating_point or not isa.needs_float(op))
               and op.unit in units]
        self._declare("instruction", [op.name for op in ops])
        floating = config.floating_point
        pairs = []
        for func in isa.VXM_FUNCS:
            for dtype, rtype in isa.type_pairs(isa.OPS_BY_NAME[func], floating):
                pairs.append(("cvt", f"{dtype.suffix}->{rtype.suffix}") if func == "cvt"
                             else (func, dtype.suffix))
        self._declare("vxm func x type", pairs)
        self._declare("vxm operand a", [(f, how) for f in isa.VXM_FUNCS
                                        if isa.type_pairs(isa.OPS_BY_NAME[f], floating)
                                        for how in ("stream", "r")])
        self._declare("vxm chain", list(_CHAIN_CASES))
        types = [t for t in isa.DType
                 if (floating or not t.is_float) and t not in isa.HALF_TYPES]
        self._declare("vxm values", [(t.suffix, c) for t in types for c in _classes(t)])
        self._declare("producer dir", [(op.name, d.name) for op in ops if op.writes
                                       for d in isa.Dir])
        self._declare("consumer dir", [(op.name, name, d.name) for op in ops
                                       for name in op.reads for d in isa.Dir])
        slices = isa.queues(config)
        self._declare("slice x op", [(s.name, op.name) for s in slices for op in ops
                                     if op.unit == isa.unit_of(s)])
        self._declare("stream", [(d.name, s) for d in isa.Dir for s in range(config.streams)]
                      + [(d.name, "past") for d in isa.Dir])
        fields = sorted({(op.mnemonic, f.name, f.kind) for op in ops for f in op.fields
                         if f.kind not in ("stream", "dtype") and f.name != "chain"})
        immediate = []
        for mnemonic, name, kind in fields:
            classes = {"flag": ("0", "1"), "count": ("1", ">1")}.get(kind, ("0", "limit",
                                                                          "past"))
            if mnemonic == "ifetch":    # n = 1 runs its word before it lands: never generated
                classes = (">1",)
            field = isa.OPS_BY_NAME[mnemonic].field(name)
            limit = isa.field_limit(field, config)
            if classes[0] == "0" and limit == 0:
                classes = ("limit", "past")     # 0 is the limit (one MXM plane)
            if classes[-1] == "past" and limit == field.mask:
                classes = classes[:-1]          # the field holds nothing past it (two planes)
            immediate += [(mnemonic, name, c) for c in classes]
        self._declare("immediate", immediate)
        self._declare("mem bank", [(what, b) for what in ("read", "commit")
                                   for b in range(config.mem_banks)])
        self._declare("icu", ["sync waits", "repeat d=1", "repeat d>1", "fetched word runs"])
        self._declare("stagger", [s.name for s in slices])

    def _declare(self, group, names):
        self.bins[group] = dict.fromkeys(names, 0)

    def _hit(self, group, name, times=1):
        bins = self.bins[group]
        if name not in bins:
            raise KeyError(f"coverage bin {name!r} is not declared in group {group!r}")
        bins[name] += times

    # Measuring ------------------------------------------------------------------------------

    def add(self, image, max_cycles=1_000_000):
        """Run ``image`` on the golden model and count what it exercised; returns its cycles."""
        model = _CoverageModel(image, self, max_cycles=max_cycles)
        result = model.run()
        self.programs += 1
        self.cycles += result.cycles
        last_issue = {}
        for record in result.trace:
            for name, instr in record.issued:
                self._issued(name, instr)
                if last_issue.get(name) == record.cycle - 1:
                    self._hit("stagger", name)
                last_issue[name] = record.cycle
        # ICU instructions issue nothing: count them from the queues' words and the schedule.
        self._icu(image, model)
        return result.cycles

    def _icu(self, image, model):
        """Count the ICU instructions (and ICU bins) of a run of ``image`` on ``model``."""
        slices = isa.queues(self.config)
        programs = [list(q) for q in image.queues]
        for q, queue in enumerate(model.queues):
            fetched = [isa.decode(word) for _, word in queue.fetched if word]
            programs[q] += fetched
            if fetched:
                self._hit("instruction", "ifetch")
        stopped = [p + [queue_timing.Stop()] for p in programs]
        for q, sched in enumerate(queue_timing.schedule(stopped, issues=False)):
            self._icu_words(slices[q].name, programs[q], sched, len(image.queues[q]))
            self._hit("instruction", "notify", len(sched.notifies))
            for _, arrival, resume in sched.syncs:
                if resume is not None:
                    self._hit("instruction", "sync")
                    if resume > arrival + 1:
                        self._hit("icu", "sync waits")

    def _icu_words(self, slice_name, program, sched, preloaded):
        """Count the words of one queue that it reached (``sched``); the first ``preloaded``
        were in the image, the rest fetched."""
        for index, (instr, start) in enumerate(zip(program, sched.starts, strict=False)):
            if start is None:
                continue
            name = instr.op.mnemonic
            if index >= preloaded:
                self._hit("icu", "fetched word runs")
            if name in ("nop", "end", "repeat"):
                self._hit("instruction", name)
                self._immediates(instr)
            if name == "repeat":
                self._hit("icu", "repeat d=1" if instr["d"] == 1 else "repeat d>1")
            if name == "ifetch":
                self._immediates(instr)
                self._reads(slice_name, instr)

    def _immediates(self, instr):
        config = self.config
        for field in instr.op.fields:
            if field.kind in ("stream", "dtype") or field.name == "chain":
                continue
            value = instr[field.name]
            if field.kind == "flag":
                cls = str(value)
            elif field.kind == "count":
                cls = "1" if value == 1 else ">1"
            else:
                limit = isa.field_limit(field, config)
                cls = {0: "0", limit: "limit"}.get(value, "past" if value > limit else None)
            if cls is not None:
                self._hit("immediate", (instr.op.mnemonic, field.name, cls))

    def _reads(self, slice_name, instr):
        for name in instr.stream_reads:
            ref = instr.stream(name)
            self._hit("consumer dir", (instr.op.name, name, ref.dir.name))
            if ref.id >= self.config.streams:
                self._hit("stream", (ref.dir.name, "past"))

    def _issued(self, slice_name, instr):
        op = instr.op
        self._hit("instruction", op.name)
        self._hit("slice x op", (slice_name, op.name))
        self._immediates(instr)
        self._reads(slice_name, instr)
        for name in op.writes:
            direction, ids = instr.group(name)
            self._hit("producer dir", (op.name, direction.name))
            for s in ids:
                self._hit("stream", (direction.name, s if s < self.config.streams else "past"))
        if op.unit == isa.Unit.VXM:
            key = (op.mnemonic, f"{instr.dtype.suffix}->{instr.rtype.suffix}"
                   if op.converts else instr.dtype.suffix)
            self._hit("vxm func x type", key)
            self._hit("vxm operand a", (op.mnemonic, "r" if instr.chained else "stream"))
        if op.mnemonic in ("read", "write") or op.mnemonic in isa.MEM_SEQ_STARTS:
            bank = instr["addr"] % self.config.mem_banks
            self._hit("mem bank", ("commit" if op.commit is not None else "read", bank))

    def merge(self, other):
        """Add the hits, programs and cycles of ``other`` (a :class:`Coverage` of the same
        configuration, measured elsewhere: another worker of ``make regress``) to these bins;
        returns self.

        Raises
        ------
        ValueError
            ``other`` is of another configuration, or declares other bins (another version of
            this module).
        """
        if other.config.to_json() != self.config.to_json():
            raise ValueError(f"coverage: cannot merge configuration {other.config.name!r} into "
                             f"{self.config.name!r}")
        if ({group: list(bins) for group, bins in other.bins.items()}
                != {group: list(bins) for group, bins in self.bins.items()}):
            raise ValueError(f"coverage of {self.config.name!r}: the bins to merge are declared "
                             f"otherwise (another version of opentsp.verif.coverage)")
        for group, bins in other.bins.items():
            mine = self.bins[group]
            for name, hits in bins.items():
                mine[name] += hits
        self.programs += other.programs
        self.cycles += other.cycles
        return self

    # Reporting ------------------------------------------------------------------------------

    def fractions(self):
        """``{group: (hit bins, bins)}`` and ``"total"``."""
        out = {group: (sum(1 for v in bins.values() if v), len(bins))
               for group, bins in self.bins.items()}
        out["total"] = (sum(h for h, _ in out.values()), sum(n for _, n in out.values()))
        return out

    def holes(self, group):
        """Bins of ``group`` never hit."""
        return [name for name, hits in self.bins[group].items() if not hits]

    def failures(self):
        """One line per group (or the total) below its threshold; empty if none."""
        lines = []
        for group, (hit, total) in self.fractions().items():
            need = THRESHOLDS.get(group, TOTAL_THRESHOLD)
            if hit < need * total:
                holes = [] if group == "total" else self.holes(group)
                lines.append(f"coverage of {group!r} is {hit}/{total} = {hit / total:.1%}, "
                             f"below {need:.0%}; holes: {holes[:12]}"
                             + (f" and {len(holes) - 12} more" if len(holes) > 12 else ""))
        return lines

    def summary(self):
        """The coverage table, one line per group, holes of incomplete groups below it."""
        lines = [f"functional coverage of {self.programs} programs ({self.cycles} cycles), "
                 f"configuration {self.config.name!r}:",
                 f"  {'group':<18} {'hit':>5} {'bins':>5} {'cover':>7} {'need':>6}"]
        for group, (hit, total) in self.fractions().items():
            need = THRESHOLDS.get(group, TOTAL_THRESHOLD)
            flag = "" if hit >= need * total else "  <- below"
            lines.append(f"  {group:<18} {hit:>5} {total:>5} {hit / total:>7.1%} "
                         f"{need:>6.0%}{flag}")
        for group in self.bins:
            holes = self.holes(group)
            if holes:
                shown = ", ".join(map(str, holes[:8]))
                more = f" and {len(holes) - 8} more" if len(holes) > 8 else ""
                lines.append(f"  holes in {group}: {shown}{more}")
        return "\n".join(lines)


class _CoverageModel(Model):
    """The golden model, also classifying the VXM's operand values (module docstring)."""

    def __init__(self, image, coverage, **kwargs):
        self._coverage = coverage
        super().__init__(image, trace=True, **kwargs)

    def _exec_vxm_values(self, slice_, instr, superlane):
        if instr.chained and superlane == 0:        # every superlane sees the same timing
            self._coverage._hit("vxm chain", _chain_case(
                [cycle for cycle, _ in self._vxm_results[superlane]], self.cycle))
        for name in instr.op.reads:
            if name == "a" and instr.chained:
                planes = self._chained(superlane)[:instr.dtype.bytes]
            else:
                direction, ids = instr.group(name)
                planes = np.stack([self._input(slice_.position, direction, s, superlane)
                                   for s in ids])
            if instr.dtype in isa.HALF_TYPES:
                continue
            for cls in _value_classes(packing.unpack(planes, instr.dtype), instr.dtype):
                self._coverage._hit("vxm values", (instr.dtype.suffix, cls))
        Model._EXECUTORS[instr.op.mnemonic](self, slice_, instr, superlane)

    _EXECUTORS = {**Model._EXECUTORS, **dict.fromkeys(isa.VXM_FUNCS, _exec_vxm_values)}


def _chain_case(cycles, now):
    """The ``vxm chain`` bin of a chained operand read in cycle ``now`` of a superlane whose
    VXM instructions executed in ``cycles`` (those still readable, in order)."""
    if now - 1 in cycles:
        return "passes over c-1"
    source = isa.chain_source(cycles, now)
    if source is None:
        return "no result yet"
    return "result of c-2" if cycles[source] == now - isa.VXM_CHAIN_DISTANCE else "older result"


def measure(config, images):
    """A :class:`Coverage` of ``images`` (an iterable of Image)."""
    coverage = Coverage(config)
    for image in images:
        coverage.add(image)
    return coverage


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.verif.coverage",
                                     description="functional coverage of random programs on "
                                                 "the golden model")
    parser.add_argument("--seeds", type=int, default=len(BATCH),
                        help=f"programs (default: the make test batch, {len(BATCH)})")
    parser.add_argument("--first", type=int, default=BATCH.start, help="first seed")
    parser.add_argument("--config", default="default")
    parser.add_argument("--length", type=int, default=16, help="most instructions per queue")
    parser.add_argument("--mix", default="", help="slot weights (see randprog)")
    parser.add_argument("--legal", action="store_true", help="checker-clean programs only")
    args = parser.parse_args(argv)
    try:
        mix = parse_mix(args.mix)
    except ValueError as error:
        parser.error(str(error))
    coverage = measure(args.config, (random_image(args.config, seed, length=args.length,
                                                  mix=mix, legal=args.legal)
                                     for seed in range(args.first, args.first + args.seeds)))
    print(coverage.summary())
    failures = coverage.failures()
    for line in failures:
        print(f"FAILED {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
