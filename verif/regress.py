"""Differential regression: many seeded random programs (:mod:`opentsp.verif.randprog`) on the
RTL in Verilator against the golden model; stops at the first batch with a mismatch.

    make regress SEEDS=1000            # or: python -m opentsp.verif.regress --seeds 1000

A failing seed is written to ``build/regress/random<seed>.bin`` and reported with the command
that replays it (``opentsp run build/regress/random<seed>.bin``), so that it can become a fixed
test.
"""

import argparse
import sys
import time
from pathlib import Path

from opentsp.config import get_config
from opentsp.verif.randprog import random_image
from opentsp.verif.runner import BUILD_ROOT, run_images

__all__ = ["regress", "main"]


def regress(config, seeds, *, first=0, batch=100, length=16):
    """Run seeds ``first .. first + seeds - 1``; return (programs, cycles, failures)."""
    config = get_config(config)
    out = BUILD_ROOT / "regress"
    out.mkdir(parents=True, exist_ok=True)
    done = cycles = 0
    failures = []
    for start in range(first, first + seeds, batch):
        programs = []
        for seed in range(start, min(start + batch, first + seeds)):
            path = out / f"random{seed}.bin"
            random_image(config, seed, length=length).save(path)
            programs.append((f"random{seed}", path))
        records = run_images(config, programs, max_cycles=100_000, log_level="WARNING")
        for (name, path), record in zip(programs, records, strict=True):
            done += 1
            cycles += record["cycles_rtl"] or 0
            if record["error"] or not record["match"]:
                failures.append((name, path, record["error"] or "; ".join(record["mismatches"])))
            else:
                Path(path).unlink()
        print(f"seeds {start}..{start + len(programs) - 1}: {len(programs)} programs, "
              f"{len(failures)} failing so far", flush=True)
        if failures:
            break
    return done, cycles, failures


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.verif.regress",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--first", type=int, default=1000,
                        help="first seed (make test uses 0..39)")
    parser.add_argument("--config", default="default")
    parser.add_argument("--length", type=int, default=16, help="instructions per queue")
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    done, cycles, failures = regress(args.config, args.seeds, first=args.first,
                                     length=args.length)
    print(f"{done} random programs, {cycles} cycles compared with the golden model in "
          f"{time.perf_counter() - wall:.0f} s: {len(failures)} failed")
    for name, path, why in failures:
        print(f"FAILED {name}: {why}\n  replay: opentsp run {path} --config {args.config}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
