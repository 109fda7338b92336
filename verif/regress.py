"""Differential regression: many seeded random programs (:mod:`opentsp.verif.randprog`) on the
RTL in Verilator against the golden model, bit for bit and cycle for cycle, in batches spread
over worker processes on this machine or on a Dask cluster (:mod:`opentsp.verif.farm`).

    make regress SEEDS=1000            # or: python -m opentsp.verif.regress --seeds 1000
    python -m opentsp.verif.regress --seeds 500 --mix vxm=3,sync=0 --length 40 --coverage
    python -m opentsp.verif.regress --cluster tcp://HOST:8786 --seeds 100000 --keep-going
    make regress-nightly               # 10,000 programs: 2 configurations x lengths 16, 40 x
                                       # wild and --legal programs

The seeds ``first .. first + seeds - 1`` of every suite (a configuration, a length, wild or
checker-clean programs; several with ``--config a,b``, ``--length 16,40``, ``--wild-and-legal``,
which share the seeds out evenly) are cut into batches of ``--batch`` seeds in seed order
(:func:`partition`), the same for any number of workers. Every batch is one Verilator run
(:func:`run_batch`) on a worker: ``--workers N`` processes of a local cluster (default: one
per core), those of the cluster at ``--cluster``, or this process alone with ``--workers 0``.
The simulation model of each configuration is built once before the batches go out (on a
cluster, once per host, by its first worker) and only read after that.

A failing seed is written to ``build/regress/`` (a folder per suite when there are several) as
``random<seed>.bin`` (the image) and ``random<seed>.s`` (its disassembly, which assembles back
to the same image, ready to become a fixed test), and reported with the commands that replay
it. The run stops after the first batch with a failure unless ``--keep-going``; the seeds it
did not run are listed. ``--shrink`` then reduces the first failure with
:func:`opentsp.verif.shrink.shrink` (delta debugging on the RTL, a round of candidates per
Verilator run) to ``random<seed>-min.bin`` / ``.s``. ``--coverage`` measures the functional
coverage of every program (:mod:`opentsp.verif.coverage`, on the golden model, on the
workers), merged into one report per configuration with the thresholds of ``make coverage``.
A JUnit XML file (``--junit``, default ``build/regress/junit.xml``) has a test case per seed.

A batch whose worker dies is run again by another worker (the scheduler's doing); the summary
says which seeds ran again, and accounts for every seed: passed, failed, not checked (an error
or a batch lost with every worker that ran it) or not run (stopped).
"""

import argparse
import functools
import hashlib
import shlex
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import opentsp
import opentsp.firmware
import opentsp.hdl
import opentsp.sim
import opentsp.verif
from opentsp.config import Config, get_config
from opentsp.firmware.disasm import disassemble
from opentsp.firmware.image import load
from opentsp.verif import runner
from opentsp.verif.coverage import Coverage
from opentsp.verif.farm import Farm, FarmError, run_serial
from opentsp.verif.randprog import DEFAULT_MIX, parse_mix, random_image
from opentsp.verif.runner import BUILD_ROOT, progress, run_images
from opentsp.verif.shrink import mismatch_test, shrink

__all__ = ["Suite", "Batch", "Report", "suites_for", "partition", "run_batch", "prepare_models",
           "sources_fingerprint", "check_fingerprints", "regress", "replay_command",
           "write_junit", "main", "MAX_CYCLES"]

#: Cycles a random program may take on the RTL before it counts as hung.
MAX_CYCLES = 100_000


def _mix_text(mix):
    return ",".join(f"{name}={weight:g}" for name, weight in mix.items()
                    if DEFAULT_MIX.get(name) != weight)


def replay_command(seed, config, *, length=16, mix=None, legal=False):
    """The command line that regenerates and reruns ``seed`` alone."""
    args = ["python", "-m", "opentsp.verif.regress", "--first", str(seed), "--seeds", "1",
            "--config", get_config(config).name]
    if length != 16:
        args += ["--length", str(length)]
    if mix and _mix_text(mix):
        args += ["--mix", _mix_text(mix)]
    if legal:
        args += ["--legal"]
    return shlex.join(args)


@dataclass(frozen=True)
class Suite:
    """Seeds ``first .. first + seeds - 1`` of one kind of random program.

    Attributes
    ----------
    config : Config
    length : int
        Most instructions per queue.
    legal : bool
        Checker-clean programs (``--legal``) rather than wild ones.
    mix : tuple of (str, float)
        The slot weights (:func:`opentsp.verif.randprog.parse_mix`) as pairs; empty: the
        default mix.
    first, seeds : int
    """

    config: Config
    length: int = 16
    legal: bool = False
    mix: tuple = ()
    first: int = 1000
    seeds: int = 1000

    @property
    def name(self):
        """``<config>-L<length>-wild`` or ``-legal``."""
        return f"{self.config.name}-L{self.length}-{'legal' if self.legal else 'wild'}"

    @property
    def mix_dict(self):
        """The mix as :func:`random_image` takes it (None: the default)."""
        return dict(self.mix) if self.mix else None

    def replay(self, seed):
        """:func:`replay_command` of ``seed`` of this suite."""
        return replay_command(seed, self.config, length=self.length, mix=self.mix_dict,
                              legal=self.legal)


@dataclass(frozen=True)
class Batch:
    """Seeds ``first .. first + count - 1`` of ``suite``: one Verilator run on one worker."""

    suite: Suite
    first: int
    count: int

    @property
    def seeds(self):
        return range(self.first, self.first + self.count)

    @property
    def key(self):
        """The batch's task key, unique within a run."""
        return f"regress-{self.suite.name}-{self.first}-{self.count}"

    def __str__(self):
        return f"{self.suite.name} seeds {_span(self.seeds)}"


def _span(seeds):
    seeds = list(seeds)
    return str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}..{seeds[-1]}"


def suites_for(configs, lengths, kinds, seeds, *, first=1000, mix=None):
    """The suites of every (configuration, length, kind) in that order, ``seeds`` programs
    shared out as evenly as possible (the first suites take one more), each starting at seed
    ``first``.

    Parameters
    ----------
    configs : list of Config or str
    lengths : list of int
    kinds : list of bool
        ``legal`` of each kind (``[False]``: wild programs only; ``[False, True]``: both).
    seeds : int
        Programs in all; at least one per suite.
    first : int
    mix : dict or None

    Raises
    ------
    ValueError
        Fewer seeds than suites, a negative length, an unknown configuration.
    """
    combos = [(get_config(c), length, legal) for c in configs for length in lengths
              for legal in kinds]
    if seeds < len(combos):
        raise ValueError(f"--seeds {seeds}: {len(combos)} suites need at least one seed each")
    for _, length, _ in combos:
        if length < 0:
            raise ValueError(f"--length {length}: must be >= 0")
    share, extra = divmod(seeds, len(combos))
    pairs = tuple(sorted(mix.items())) if mix else ()
    return [Suite(config, length, legal, pairs, first, share + (index < extra))
            for index, (config, length, legal) in enumerate(combos)]


def partition(suites, batch):
    """The batches of ``suites``: each suite's seeds cut in seed order into runs of ``batch``
    (the last may be shorter); suite after suite. Depends on nothing but the arguments."""
    if batch < 1:
        raise ValueError(f"--batch {batch}: must be >= 1")
    return [Batch(suite, start, min(batch, suite.first + suite.seeds - start))
            for suite in suites
            for start in range(suite.first, suite.first + suite.seeds, batch)]


def sources_fingerprint():
    """A hash of the sources that make and check a random program (``opentsp/*.py`` and every
    file of ``hdl/``, ``sim/``, ``firmware/`` and ``verif/``): equal on every worker that runs
    the same commit, so that a seed means the same program everywhere."""
    digest = hashlib.sha256()
    roots = [(Path(opentsp.__file__).parent, "*.py")]
    roots += [(Path(package.__file__).parent, "**/*")
              for package in (opentsp.hdl, opentsp.sim, opentsp.firmware, opentsp.verif)]
    for root, pattern in roots:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                name = f"{root.name}/{path.relative_to(root).as_posix()}"
                digest.update(f"{name}\0{path.stat().st_size}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def prepare_models(configs):
    """Build the Verilator model of every configuration unless built (on a worker: the first
    worker of a host builds, the others wait on the build's lock and find it); returns
    :func:`sources_fingerprint`."""
    for config in configs:
        runner.build(config)
    return sources_fingerprint()


def check_fingerprints(prepared, mine):
    """Refuse workers whose sources differ from this machine's: ``prepared`` is
    :meth:`opentsp.verif.farm.Farm.prepare`'s ``{worker: (host, fingerprint)}``, ``mine``
    :func:`sources_fingerprint` here; returns the hosts' names.

    Raises
    ------
    FarmError
        Naming the first worker that differs.
    """
    for worker, (host, theirs) in sorted(prepared.items()):
        if theirs != mine:
            raise FarmError(f"worker {worker} on {host} runs other OpenTSP sources than this "
                            f"machine (fingerprint {theirs}, here {mine}): install the same "
                            f"commit there")
    return sorted({host for host, _ in prepared.values()})


def _why(record):
    """Why ``record`` (of :func:`run_images`) fails, or None if it passed."""
    if record["error"]:
        return record["error"]
    if not record["match"]:
        return "; ".join(record["mismatches"]) or "memories differ"
    if record["cycles_rtl"] != record["cycles_golden"]:
        return f"{record['cycles_rtl']} RTL cycles, {record['cycles_golden']} golden"
    return None


def run_batch(batch, progress=None, *, coverage=False, max_cycles=MAX_CYCLES):
    """Generate and run one batch on the RTL (in this process and its Verilator subprocess).

    Parameters
    ----------
    batch : Batch
    progress : callable or None
        Called with the number of programs finished so far.
    coverage : bool
        Also measure the batch's functional coverage on the golden model.
    max_cycles : int

    Returns
    -------
    dict
        ``programs``, ``cycles`` (the RTL's, of all programs), ``seeds`` (per seed
        ``(seed, cycles, seconds)``), ``failures`` (per failing seed a dict of ``seed``,
        ``why``, ``image``: the image's bytes, and ``asm``: its disassembly, so that the client
        writes the files wherever the batch ran), ``coverage`` (a Coverage or None) and
        ``seconds`` (wall time).
    """
    wall = time.perf_counter()
    suite = batch.suite
    config = suite.config
    measured = Coverage(config) if coverage else None
    with tempfile.TemporaryDirectory(prefix="opentsp-regress-") as tmp:
        images = {}
        for seed in batch.seeds:
            image = random_image(config, seed, length=suite.length, mix=suite.mix_dict,
                                 legal=suite.legal)
            images[seed] = image
            image.save(Path(tmp) / f"random{seed}.bin")
            if measured is not None:
                measured.add(image)
        records = run_images(config, [(f"random{seed}", Path(tmp) / f"random{seed}.bin")
                                      for seed in batch.seeds],
                             max_cycles=max_cycles, log_level="WARNING", on_progress=progress)
    by_name = {record["name"]: record for record in records}
    seeds, failures, cycles = [], [], 0
    for seed, image in images.items():
        record = by_name.get(f"random{seed}")
        why = ("no result from the testbench (its simulation stopped early)" if record is None
               else _why(record))
        seed_cycles = (record or {}).get("cycles_rtl") or 0
        cycles += seed_cycles
        seeds.append((seed, seed_cycles, (record or {}).get("seconds") or 0.0))
        if why is not None:
            failures.append({"seed": seed, "why": why, "image": image.to_bytes(),
                             "asm": disassemble(image)})
    return {"programs": len(images), "cycles": cycles, "seeds": seeds, "failures": failures,
            "coverage": measured, "seconds": time.perf_counter() - wall}


@dataclass
class Failure:
    """A failing seed: its suite, the image written and why it failed."""

    seed: int
    suite: Suite
    path: Path
    why: str


@dataclass
class Report:
    """What a regression did: every batch's outcome and their sums (see :meth:`summary`)."""

    suites: list
    outcomes: list
    engine: str
    seconds: float
    failures: list = field(default_factory=list)
    coverage: dict = field(default_factory=dict)

    @property
    def done(self):
        return [o for o in self.outcomes if o.state == "done"]

    @property
    def programs(self):
        return sum(o.result["programs"] for o in self.done)

    @property
    def cycles(self):
        return sum(o.result["cycles"] for o in self.done)

    @property
    def seeds(self):
        return sum(o.item.count for o in self.outcomes)

    @property
    def unchecked(self):
        """Outcomes of batches that ran without a result (an error, lost workers)."""
        return [o for o in self.outcomes if o.state in ("error", "lost")]

    @property
    def stopped(self):
        return [o for o in self.outcomes if o.state == "stopped"]

    @property
    def reruns(self):
        """Outcomes of batches that started on a worker that then died, and ran again."""
        return [o for o in self.outcomes if o.rerun]

    @property
    def reassigned(self):
        """Outcomes of batches that waited on a worker that died, and went to another."""
        return [o for o in self.outcomes if o.reassigned]

    def coverage_failures(self):
        """``make coverage``'s threshold failures of every configuration's merged coverage."""
        return [f"{name}: {line}" for name, cov in self.coverage.items()
                for line in cov.failures()]

    def ok(self):
        """No failure, every seed checked, coverage (if measured) above its thresholds."""
        return not (self.failures or self.unchecked or self.stopped
                    or self.coverage_failures())

    def summary(self):
        """The report printed at the end (module docstring)."""
        rate = self.programs / self.seconds if self.seconds else 0.0
        lines = [f"{self.programs} random programs, {self.cycles} cycles compared with the "
                 f"golden model in {self.seconds:.0f} s on {self.engine} ({rate:.2f} programs/s)"
                 f": {len(self.failures)} failed"]
        if len(self.suites) > 1:
            for suite in self.suites:
                mine = [o for o in self.done if o.item.suite == suite]
                failed = sum(1 for f in self.failures if f.suite == suite)
                seeds = _span(range(suite.first, suite.first + suite.seeds))
                lines.append(f"  {suite.name}: seeds {seeds}, "
                             f"{sum(o.result['programs'] for o in mine)} programs, "
                             f"{sum(o.result['cycles'] for o in mine)} cycles, {failed} failed")
        for outcome in self.reruns:
            lines.append(f"rerun: {outcome.item}: {_rerun_text(outcome)}")
        for outcome in self.reassigned:
            ran = outcome.ran_on
            then = (f"ran on {ran['worker']} (pid {ran['pid']}, {ran['host']})" if ran
                    else f"not finished: {outcome.error}")
            lines.append(f"reassigned: {outcome.item}: waited on a worker that died before it "
                         f"started; {then}")
        for outcome in self.unchecked:
            lines.append(f"not checked: {outcome.item}: {outcome.error}")
        for outcome in self.stopped:
            lines.append(f"not run: {outcome.item}: stopped after the first failing batch "
                         f"(--keep-going runs every batch)")
        checked = sum(o.item.count for o in self.done)
        lines.append(f"seeds: {checked - len(self.failures)} passed + {len(self.failures)} "
                     f"failed + {sum(o.item.count for o in self.unchecked)} not checked + "
                     f"{sum(o.item.count for o in self.stopped)} not run = {self.seeds}; "
                     f"{sum(o.item.count for o in self.reruns)} rerun after a worker died, "
                     f"{sum(o.item.count for o in self.reassigned)} reassigned")
        for coverage in self.coverage.values():
            lines.append(coverage.summary())
        lines += [f"FAILED coverage of {line}" for line in self.coverage_failures()]
        for failure in self.failures:
            config = failure.suite.config.name
            lines.append(f"FAILED seed {failure.seed}: {failure.why}\n"
                         f"  program: {failure.path} and {failure.path.with_suffix('.s')}\n"
                         f"  replay: opentsp run {failure.path} --config {config}\n"
                         f"  or: {failure.suite.replay(failure.seed)}")
        return "\n".join(lines)


def _rerun_text(outcome):
    """Which attempts of a batch there were: the dead workers', then the one that finished."""
    parts = [f"its worker {a['worker']} (pid {a['pid']}, {a['host']}) died"
             for a in outcome.dead_attempts]
    if outcome.ran_on is not None:
        ran = outcome.ran_on
        parts.append(f"ran again on {ran['worker']} (pid {ran['pid']}, {ran['host']})")
    else:
        parts.append(f"not finished: {outcome.error}")
    return "; ".join(parts)


def _failure_dir(out, suites, suite):
    return out if len(suites) == 1 else out / suite.name


class _Progress:
    """The progress bar of a regression and its line per finished batch."""

    def __init__(self, total, describe):
        self.bar = progress(total=total, desc="random programs on the RTL", unit="program")
        self.counts = {}
        self.describe = describe
        self.failed = 0

    def start(self, key, attempt):
        self.counts[key] = 0
        self._show()

    def step(self, key, count):
        self.counts[key] = count
        self._show()

    def done(self, outcome):
        if outcome.state == "done":
            self.counts[outcome.key] = outcome.result["programs"]
            self.failed += len(outcome.result["failures"])
        self._show()
        self.bar.write(self.describe(outcome, self.failed), file=sys.stdout)
        sys.stdout.flush()

    def _show(self):
        self.bar.update(sum(self.counts.values()) - self.bar.n)

    def close(self):
        self.bar.close()


def _batch_line(outcome, failed):
    """The line printed when a batch's outcome is known."""
    if outcome.state == "done":
        where = outcome.ran_on["worker"]
        rerun = " (rerun)" if outcome.rerun else ""
        return (f"{outcome.item}: {outcome.result['programs']} programs on {where}{rerun}, "
                f"{failed} failing so far")
    if outcome.state == "stopped":
        return f"{outcome.item}: not run (stopped)"
    return f"{outcome.item}: not checked: {outcome.error}"


def regress(suites, *, batch=100, farm=None, out=None, coverage=False, keep_going=False,
            on_start=None):
    """Run ``suites`` in batches on ``farm``'s workers (None: in this process, one after
    another) and write every failing seed's files; returns a :class:`Report`.

    Parameters
    ----------
    suites : list of Suite
    batch : int
        Seeds per Verilator run (:func:`partition`).
    farm : opentsp.verif.farm.Farm or None
        An entered farm; with None the batches run here (:func:`opentsp.verif.farm.run_serial`).
    out : path or None
        Where the failing seeds go (default ``build/regress``; a folder per suite when there
        are several).
    coverage : bool
        Measure functional coverage (merged per configuration into ``Report.coverage``).
    keep_going : bool
        Run every batch; otherwise stop after the first with a failure.
    on_start : callable or None
        Also called as ``on_start(key, attempt)`` when a batch starts (the fault test kills
        its worker there).
    """
    out = Path(BUILD_ROOT / "regress" if out is None else out)
    batches = partition(suites, batch)
    function = functools.partial(run_batch, coverage=coverage)
    bar = _Progress(sum(b.count for b in batches), _batch_line)
    failing = []

    def started(key, attempt):
        bar.start(key, attempt)
        if on_start is not None:
            on_start(key, attempt)

    def finished(outcome):
        bar.done(outcome)
        if outcome.state != "done" or outcome.result["failures"]:
            failing.append(outcome)

    def stop():
        return bool(failing) and not keep_going

    wall = time.perf_counter()
    try:
        if farm is None:
            outcomes = run_serial(function, batches, [b.key for b in batches], on_start=started,
                                  on_progress=bar.step, on_done=finished, stop=stop)
            engine = "this process"
        else:
            outcomes = farm.run(function, batches, [b.key for b in batches], on_start=started,
                                on_progress=bar.step, on_done=finished, stop=stop)
            engine = farm.describe()
    finally:
        bar.close()
    report = Report(suites, outcomes, engine, time.perf_counter() - wall)
    for outcome in report.done:
        suite = outcome.item.suite
        for failure in outcome.result["failures"]:
            directory = _failure_dir(out, suites, suite)
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"random{failure['seed']}.bin"
            path.write_bytes(failure["image"])
            path.with_suffix(".s").write_text(failure["asm"])
            report.failures.append(Failure(failure["seed"], suite, path, failure["why"]))
        if coverage:
            measured = outcome.result["coverage"]
            merged = report.coverage.setdefault(suite.config.name, Coverage(suite.config))
            merged.merge(measured)
    report.failures.sort(key=lambda f: (suites.index(f.suite), f.seed))
    return report


def write_junit(report, path):
    """Write ``report`` as JUnit XML to ``path``: a test suite per regression suite, a test case
    per seed (failed: why, and the replay command; not checked: an error; not run: skipped),
    and one per configuration's coverage when it was measured."""
    root = ET.Element("testsuites", name="opentsp regress", time=f"{report.seconds:.3f}")
    failures = {(f.suite, f.seed): f for f in report.failures}
    for suite in report.suites:
        element = ET.SubElement(root, "testsuite", name=f"regress.{suite.name}")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for outcome in (o for o in report.outcomes if o.item.suite == suite):
            times = ({seed: seconds for seed, _, seconds in outcome.result["seeds"]}
                     if outcome.state == "done" else {})
            for seed in outcome.item.seeds:
                case = ET.SubElement(element, "testcase", classname=f"regress.{suite.name}",
                                     name=f"seed {seed}", time=f"{times.get(seed, 0.0):.3f}")
                counts["tests"] += 1
                if outcome.state == "stopped":
                    ET.SubElement(case, "skipped", message="not run: stopped after the first "
                                                           "failing batch")
                    counts["skipped"] += 1
                elif outcome.state != "done":
                    ET.SubElement(case, "error", message=outcome.error or "not checked")
                    counts["errors"] += 1
                elif (suite, seed) in failures:
                    failure = failures[(suite, seed)]
                    node = ET.SubElement(case, "failure", message=failure.why)
                    node.text = (f"program: {failure.path}\nreplay: opentsp run {failure.path} "
                                 f"--config {suite.config.name}\nor: {suite.replay(seed)}\n")
                    counts["failures"] += 1
        element.attrib.update({name: str(value) for name, value in counts.items()})
    if report.coverage:
        element = ET.SubElement(root, "testsuite", name="regress.coverage")
        failed = 0
        for name, coverage in report.coverage.items():
            case = ET.SubElement(element, "testcase", classname="regress.coverage",
                                 name=f"coverage {name}")
            lines = coverage.failures()
            if lines:
                failed += 1
                ET.SubElement(case, "failure", message=lines[0]).text = "\n".join(lines)
        element.attrib.update(tests=str(len(report.coverage)), failures=str(failed),
                              errors="0", skipped="0")
    totals = {name: sum(int(s.get(name)) for s in root)
              for name in ("tests", "failures", "errors", "skipped")}
    root.attrib.update({name: str(value) for name, value in totals.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _shrink(config, seed, path):
    image = load(path, config)
    small = shrink(image, mismatch_test(config, path.parent / "shrinking"),
                   log=lambda line: print(line, flush=True))
    small_path = path.with_name(f"random{seed}-min.bin")
    small.save(small_path)
    small_path.with_suffix(".s").write_text(disassemble(small))
    count = sum(len(q) for q in small.queues)
    print(f"  shrunk to {count} words ({sum(len(q) for q in image.queues)} before): "
          f"{small_path} and {small_path.with_suffix('.s')}\n"
          f"  replay: opentsp run {small_path} --config {config.name}")


class _Parser(argparse.ArgumentParser):
    """argparse with errors on one line: ``prog: error: ...``, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser():
    parser = _Parser(prog="python -m opentsp.verif.regress",
                     description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000, help="how many programs in all")
    parser.add_argument("--first", type=int, default=1000,
                        help="first seed of every suite (make test runs randprog.BATCH, 0..199)")
    parser.add_argument("--config", default="default",
                        help="configuration, or several: 'default,fpga'")
    parser.add_argument("--length", default="16",
                        help="most instructions per queue, or several: '16,40'")
    parser.add_argument("--mix", default="",
                        help="slot weights, e.g. 'vxm=3,sync=0,ifetch=1,add=2' (families "
                             "nop, repeat, notify, sync, op; ifetch: chance of a fetch block; "
                             "units mem, vxm, mxm, sxm; mnemonics)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--legal", action="store_true",
                      help="checker-clean programs only (randprog.legalise)")
    kind.add_argument("--wild-and-legal", action="store_true",
                      help="wild and checker-clean programs, half each")
    parser.add_argument("--batch", type=int, default=100, help="programs per Verilator run")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of the local cluster (default: one per core; "
                             "0: run here, one batch after another)")
    parser.add_argument("--cluster", default=None, metavar="ADDRESS",
                        help="a Dask scheduler to farm the batches out to, e.g. "
                             "tcp://host:8786")
    parser.add_argument("--connect-timeout", type=float, default=3.0, metavar="SECONDS",
                        help="seconds to reach --cluster's scheduler")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every batch, not stopping after the first failing one")
    parser.add_argument("--junit", default=None, metavar="PATH",
                        help="JUnit XML report (default: build/regress/junit.xml)")
    parser.add_argument("--shrink", action="store_true",
                        help="reduce the first failing program by delta debugging")
    parser.add_argument("--coverage", action="store_true",
                        help="measure functional coverage (merged over the workers; fails "
                             "below make coverage's thresholds)")
    return parser


def _int_list(option, text):
    """``'16,40'`` as ``[16, 40]``; ValueError naming ``option`` otherwise."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected integers separated by commas") from None
    return values


def _suites(args):
    """The suites the arguments ask for (ValueError: a one-line message)."""
    configs = [get_config(name.strip()) for name in args.config.split(",")]
    lengths = _int_list("--length", args.length)
    kinds = [False, True] if args.wild_and_legal else [args.legal]
    if args.seeds < 1 or args.batch < 1:
        raise ValueError(f"--seeds and --batch must be >= 1, not {args.seeds!r} and "
                         f"{args.batch!r}")
    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers {args.workers}: must be >= 0")
    if args.workers == 0 and args.cluster:
        raise ValueError("--workers 0 runs in this process: not with --cluster")
    if args.connect_timeout <= 0:
        raise ValueError(f"--connect-timeout {args.connect_timeout:g}: must be > 0")
    return suites_for(configs, lengths, kinds, args.seeds, first=args.first,
                      mix=parse_mix(args.mix))


def _run(args, suites):
    """Run the regression the arguments ask for; returns its report (FarmError: no cluster)."""
    if args.workers == 0:
        return regress(suites, batch=args.batch, coverage=args.coverage,
                       keep_going=args.keep_going)
    configs = list({suite.config.name: suite.config for suite in suites}.values())
    if args.cluster is None:
        prepare_models(configs)     # here, with its progress bar, before the workers start
    with Farm(args.cluster, args.workers, timeout=args.connect_timeout) as farm:
        if args.cluster is not None:
            print(f"building or finding the models on the workers of {farm.describe()}",
                  flush=True)
        hosts = check_fingerprints(farm.prepare(prepare_models, configs),
                                   sources_fingerprint())
        if args.cluster is not None:
            print(f"models ready on {', '.join(hosts)}", flush=True)
        return regress(suites, batch=args.batch, farm=farm, coverage=args.coverage,
                       keep_going=args.keep_going)


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        suites = _suites(args)
    except ValueError as error:
        parser.error(str(error))
    try:
        report = _run(args, suites)
    except (FarmError, runner.BuildError) as error:
        parser.error(str(error))
    print(report.summary())
    junit = write_junit(report, args.junit or BUILD_ROOT / "regress" / "junit.xml")
    print(f"JUnit XML: {junit}")
    if report.failures and args.shrink:
        failure = report.failures[0]
        _shrink(failure.suite.config, failure.seed, failure.path)
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
