"""Differential regression: many seeded random programs (:mod:`opentsp.verif.randprog`) on the
RTL in Verilator against the golden model; stops after the first batch with a mismatch.

    make regress SEEDS=1000            # or: python -m opentsp.verif.regress --seeds 1000
    python -m opentsp.verif.regress --seeds 500 --mix vxm=3,sync=0 --length 40 --coverage

A failing seed is written to ``build/regress/`` as ``random<seed>.bin`` (the image) and
``random<seed>.s`` (its disassembly, which assembles back to the same image, ready to become a
fixed test), and reported with the commands that replay it. ``--shrink`` then reduces it with
:func:`opentsp.verif.shrink.shrink` (delta debugging on the RTL, a round of candidates per
Verilator run) to ``random<seed>-min.bin`` / ``.s``. ``--coverage`` also prints the functional
coverage of the seeds run (:mod:`opentsp.verif.coverage`, on the golden model).
"""

import argparse
import shlex
import sys
import time

from opentsp.config import get_config
from opentsp.firmware.disasm import disassemble
from opentsp.firmware.image import load
from opentsp.verif.coverage import Coverage
from opentsp.verif.randprog import DEFAULT_MIX, parse_mix, random_image
from opentsp.verif.runner import BUILD_ROOT, progress, run_images
from opentsp.verif.shrink import mismatch_test, shrink

__all__ = ["regress", "replay_command", "main"]


def _mix_text(mix):
    return ",".join(f"{name}={weight:g}" for name, weight in mix.items()
                    if DEFAULT_MIX.get(name) != weight)


def replay_command(seed, config, *, length=16, mix=None, legal=False):
    """The command line that regenerates and reruns ``seed`` alone."""
    args = ["python", "-m", "opentsp.verif.regress", "--first", str(seed), "--seeds", "1",
            "--config", config.name]
    if length != 16:
        args += ["--length", str(length)]
    if mix and _mix_text(mix):
        args += ["--mix", _mix_text(mix)]
    if legal:
        args += ["--legal"]
    return shlex.join(args)


def regress(config, seeds, *, first=0, batch=100, length=16, mix=None, legal=False, out=None,
            coverage=None):
    """Run seeds ``first .. first + seeds - 1``; return (programs, cycles, failures).

    ``failures`` holds ``(seed, image path, why)``; ``coverage`` (a
    :class:`opentsp.verif.coverage.Coverage`) if given counts every program run. A terminal
    shows the seeds run so far on a progress bar (:func:`opentsp.verif.runner.progress`).
    """
    config = get_config(config)
    out = BUILD_ROOT / "regress" if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    bar = progress(total=seeds, desc="random programs on the RTL", unit="program")
    try:
        return _regress(config, seeds, first, batch, length, mix, legal, out, coverage, bar)
    finally:
        bar.close()


def _regress(config, seeds, first, batch, length, mix, legal, out, coverage, bar):
    """:func:`regress`'s batches, counted on ``bar``."""
    done = cycles = 0
    failures = []
    for start in range(first, first + seeds, batch):
        programs = []
        for seed in range(start, min(start + batch, first + seeds)):
            image = random_image(config, seed, length=length, mix=mix, legal=legal)
            path = out / f"random{seed}.bin"
            image.save(path)
            programs.append((seed, image, path))
            if coverage is not None:
                coverage.add(image)
        before = done

        def ran(count, before=before):
            bar.update(before + count - bar.n)

        records = run_images(config, [(f"random{seed}", path) for seed, _, path in programs],
                             max_cycles=100_000, log_level="WARNING", on_progress=ran)
        for (seed, image, path), record in zip(programs, records, strict=True):
            done += 1
            cycles += record["cycles_rtl"] or 0
            if (record["error"] or not record["match"]
                    or record["cycles_rtl"] != record["cycles_golden"]):
                path.with_suffix(".s").write_text(disassemble(image))
                why = record["error"] or "; ".join(record["mismatches"]) or (
                    f"{record['cycles_rtl']} RTL cycles, {record['cycles_golden']} golden")
                failures.append((seed, path, why))
            else:
                path.unlink()
        bar.write(f"seeds {start}..{start + len(programs) - 1}: {len(programs)} programs, "
                  f"{len(failures)} failing so far", file=sys.stdout)
        sys.stdout.flush()
        if failures:
            break
    return done, cycles, failures


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.verif.regress",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000, help="how many programs")
    parser.add_argument("--first", type=int, default=1000,
                        help="first seed (make test runs randprog.BATCH, 0..199)")
    parser.add_argument("--config", default="default")
    parser.add_argument("--length", type=int, default=16, help="most instructions per queue")
    parser.add_argument("--mix", default="",
                        help="slot weights, e.g. 'vxm=3,sync=0,ifetch=1,add=2' (families "
                             "nop, repeat, notify, sync, op; ifetch: chance of a fetch block; "
                             "units mem, vxm, mxm, sxm; mnemonics)")
    parser.add_argument("--legal", action="store_true",
                        help="checker-clean programs only (randprog.legalise)")
    parser.add_argument("--batch", type=int, default=100, help="programs per Verilator run")
    parser.add_argument("--shrink", action="store_true",
                        help="reduce the first failing program by delta debugging")
    parser.add_argument("--coverage", action="store_true",
                        help="print the functional coverage of the programs run")
    args = parser.parse_args(argv)
    try:
        config = get_config(args.config)
        mix = parse_mix(args.mix)
        if args.seeds < 1 or args.batch < 1 or args.length < 0:
            raise ValueError(f"--seeds and --batch must be >= 1 and --length >= 0, not "
                             f"{args.seeds!r}, {args.batch!r}, {args.length!r}")
    except ValueError as error:
        parser.error(str(error))
    coverage = None
    if args.coverage:
        coverage = Coverage(config)
    wall = time.perf_counter()
    done, cycles, failures = regress(config, args.seeds, first=args.first, batch=args.batch,
                                     length=args.length, mix=mix, legal=args.legal,
                                     coverage=coverage)
    print(f"{done} random programs, {cycles} cycles compared with the golden model in "
          f"{time.perf_counter() - wall:.0f} s: {len(failures)} failed")
    if coverage is not None:
        print(coverage.summary())
    for seed, path, why in failures:
        replay = replay_command(seed, config, length=args.length, mix=mix, legal=args.legal)
        print(f"FAILED seed {seed}: {why}\n"
              f"  program: {path} and {path.with_suffix('.s')}\n"
              f"  replay: opentsp run {path} --config {config.name}\n"
              f"  or: {replay}")
    if failures and args.shrink:
        seed, path, _ = failures[0]
        _shrink(config, seed, path)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
