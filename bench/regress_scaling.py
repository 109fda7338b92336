"""Programs per second of ``make regress`` on 1 and on 2 local workers, in one run.

The same seeds (the same batches, :func:`opentsp.verif.regress.partition`) run on a local Dask
cluster of each size in turn; the time counted is the regression's, from the first batch handed
out to the last result (the cluster started and the models built beforehand, as in a long run
where they are a fixed cost), and, beside it, the wall time with the cluster's start included,
the load average (1 minute) before and after each, and the CPU time the run got (this process
and every process of the cluster, the simulations included) as cores on average: on a machine
shared with other work, 2 workers get fewer than 2 cores, and the speed-up shows it.

    .venv/bin/python bench/regress_scaling.py --seeds 400 --batch 25
"""

import argparse
import os
import resource
import sys
import time

from opentsp.verif.farm import Farm
from opentsp.verif.regress import partition, prepare_models, regress, suites_for


def _cpu_seconds():
    """CPU seconds of this process and of its children that ended (the cluster's nannies, and
    through them its workers and their simulation processes, once the cluster is closed)."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def measure(suites, batch, workers):
    """Run ``suites`` on a local cluster of ``workers``; returns (programs, regression seconds,
    wall seconds with the cluster's start, CPU seconds of the run, failures)."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    with Farm(workers=workers) as farm:
        farm.prepare(prepare_models, list({s.config.name: s.config for s in suites}.values()))
        report = regress(suites, batch=batch, farm=farm, keep_going=True)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    return (report.programs, report.seconds, wall, cpu,
            len(report.failures) + len(report.unchecked))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=400)
    parser.add_argument("--first", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--config", default="default")
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="the cluster sizes to compare")
    args = parser.parse_args(argv)
    suites = suites_for([args.config], [args.length], [False], args.seeds, first=args.first)
    sizes = [int(n) for n in args.workers.split(",")]
    prepare_models([suites[0].config])
    print(f"{args.seeds} random programs ({args.config}, length {args.length}, seeds "
          f"{args.first}..{args.first + args.seeds - 1}) in {len(partition(suites, args.batch))} "
          f"batches of {args.batch}", flush=True)
    rates = {}
    for workers in sizes:
        before = os.getloadavg()[0]
        programs, seconds, wall, cpu, bad = measure(suites, args.batch, workers)
        rates[workers] = programs / seconds
        print(f"{workers} worker{'s' if workers != 1 else ''}: {programs} programs in "
              f"{seconds:.1f} s = {rates[workers]:.2f} programs/s ({wall:.1f} s with the "
              f"cluster's start; {bad} failing; load average {before:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after; {cpu:.1f} CPU s = {cpu / wall:.2f} cores "
              f"on average)", flush=True)
    base = rates[sizes[0]]
    for workers in sizes[1:]:
        print(f"speed-up of {workers} workers over {sizes[0]}: {rates[workers] / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
