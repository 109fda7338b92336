"""Where a short program's simulation time goes: N seeded random programs run on the RTL under
cocotb in one ``run_images`` call, split into the models' free runs and the rest (the host-port
loading and read-back through cocotb, and the testbench's start-up); the golden model's time
for the same programs beside it.

    .venv/bin/python bench/host_traffic.py [--config default] [--programs 40] [--sim verilator]

A benchmark, not a test: it prints figures and checks only that every program matched.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from opentsp.config import get_config
from opentsp.sim.model import run as golden_run
from opentsp.verif.randprog import random_image
from opentsp.verif.runner import SIMULATORS, build, run_images


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default")
    parser.add_argument("--programs", type=int, default=40)
    parser.add_argument("--sim", default="verilator", choices=SIMULATORS)
    args = parser.parse_args(argv)
    config = get_config(args.config)
    images = [random_image(config, seed) for seed in range(args.programs)]
    start = time.perf_counter()
    cycles = sum(golden_run(image).cycles for image in images)
    golden = time.perf_counter() - start
    build(config, simulator=args.sim)       # a first build is not counted
    with tempfile.TemporaryDirectory() as tmp:
        programs = []
        for seed, image in enumerate(images):
            path = Path(tmp) / f"random{seed}.bin"
            image.save(path)
            programs.append((f"random{seed}", path))
        start = time.perf_counter()
        records = run_images(config, programs, simulator=args.sim, log_level="WARNING")
        total = time.perf_counter() - start
    free = sum(record["seconds"] or 0 for record in records)
    print(f"{len(records)} random programs (seeds 0..{args.programs - 1}), config {config.name}, "
          f"{args.sim}: {cycles} cycles")
    print(f"  under cocotb, in all   {total:8.2f} s")
    print(f"  free runs of the model {free:8.2f} s ({100 * free / total:.1f}%)")
    print(f"  the rest (host port)   {total - free:8.2f} s ({100 * (total - free) / total:.1f}%)")
    print(f"  golden model alone     {golden:8.2f} s")
    if not all(record["match"] for record in records):
        print("MISMATCH: " + ", ".join(r["name"] for r in records if not r["match"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
