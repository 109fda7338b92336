"""Generate ``firmware/examples/gemm.s``: an int8 GEMM ``C = A @ B`` (int32 result) on both MXMs.

Run ``python -m opentsp.firmware.gen_gemm`` to rewrite the example. The operands come from a
fixed-seed numpy generator (:func:`operands`), so tests can recompute ``numpy.matmul(A, B)``
and read the result back with :func:`result_from_memories`.

The plan, for the ``default`` configuration (MXM 4 x 4, 4 MEM slices per hemisphere):

* ``A`` is ``M x K`` and ``B`` is ``K x N`` (``N = mxm_size``, ``K`` a multiple of it). The
  MXM of each hemisphere computes half of the rows of ``C``: ``MXM_W`` rows ``0..M/2-1``,
  ``MXM_E`` the others, each row in its own accumulator.
* ``B`` is cut into ``K / N`` tiles of ``N`` rows. Array row ``j`` takes column ``j`` of the
  tile (``lw j``); ``iw`` installs the tile. Every row of ``A`` goes through ``abc`` once per
  tile, ``add = 0`` for the first tile and ``add = 1`` after, so the accumulators sum the
  tiles. The ``lw`` of the next tile are interleaved with the ``abc`` of the current one
  (double buffering); then ``iw`` swaps them in.
* The MEM slices of the MXM's hemisphere feed it: a ``read`` by a slice ``h`` hops away in
  cycle ``c - 1 - h`` is readable by the MXM in cycle ``c``. Slice ``MEM_Xi`` uses stream
  ``i`` towards the MXM, so values never overwrite one another.
* ``acc`` puts a row of ``C`` on the int32 group ``4..7`` away from the MXM (eastward from
  ``MXM_W``); ``MEM_Xi`` stores byte ``i`` (stream ``4 + i``) at word ``C_BASE + row``, so
  ``C`` is spread over the four slices as in ``dot_relu.s``.
"""

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from opentsp import isa, packing
from opentsp.config import get_config

__all__ = ["SEED", "SHAPE", "C_BASE", "operands", "generate", "result_from_memories",
           "EXAMPLE", "main"]

SEED = 2024
SHAPE = (8, 8, 4)       # M, K, N
C_BASE = 32             # word of row 0 of C
EXAMPLE = Path(__file__).parent / "examples" / "gemm.s"


def operands(seed=SEED, shape=SHAPE):
    """The int8 matrices ``A`` (M x K) and ``B`` (K x N)."""
    m, k, n = shape
    rng = np.random.default_rng(seed)
    return (rng.integers(-128, 128, size=(m, k), dtype=np.int8),
            rng.integers(-128, 128, size=(k, n), dtype=np.int8))


def _hemispheres(config):
    """(mxm slice, MEM slices 0..3 of its hemisphere, direction into the MXM, out of it)."""
    plan = {s.name: s for s in isa.floorplan(config)}
    return [(plan["MXM_W"], [plan[f"MEM_W{i}"] for i in range(4)], isa.Dir.W, isa.Dir.E),
            (plan["MXM_E"], [plan[f"MEM_E{i}"] for i in range(4)], isa.Dir.E, isa.Dir.W)]


def _mxm_plan(rows, tiles, n, span):
    """The MXM's instructions in issue order: (mnemonic, operands, payload) where payload
    says which vector an input instruction takes."""
    items = [("lw", (j,), ("w", 0, j)) for j in range(n)] + [("iw", (), None)]
    for t in range(tiles):
        abcs = [("abc", (r, t > 0), ("x", t, r)) for r in range(rows)]
        lws = [("lw", (j,), ("w", t + 1, j)) for j in range(n)] if t + 1 < tiles else []
        for i in range(max(len(abcs), len(lws))):
            items += abcs[i:i + 1] + lws[i:i + 1]
        if lws:
            items.append(("iw", (), None))
    items += [("nop", (), None)] * (span - 1)
    items += [("acc", (r,), None) for r in range(rows)]
    return items


def generate(a, b, config="default"):
    """Assembly text of ``C = a @ b`` and the cycle of the last issue (for reports).

    Returns
    -------
    str
        The program.
    """
    config = get_config(config)
    m, k = a.shape
    n = config.mxm_size
    if b.shape != (k, n) or k % n or m % 2 or m // 2 > config.mxm_accumulators:
        raise ValueError(f"shapes {a.shape} x {b.shape} do not fit this GEMM plan")
    if C_BASE + m > config.mem_words:
        raise ValueError("C does not fit in memory")
    tiles, rows = k // n, m // 2
    span = isa.mxm_span(config)
    queues = defaultdict(list)       # slice name -> [(cycle, text)]
    data = []                        # (slice name, addr, values, comment)
    commits = defaultdict(dict)      # slice name -> {cycle: bank a write commits to}
    plan = _mxm_plan(rows, tiles, n, span)
    start = 1 + min(abs(mem.position - mxm.position)
                    for mxm, mems, _, _ in _hemispheres(config) for mem in mems)

    for half, (mxm, mems, into, out) in enumerate(_hemispheres(config)):
        row0 = half * rows
        hops = [abs(mem.position - mxm.position) for mem in mems]
        # Outputs first: their cycles are fixed by the acc issues.
        for index, (name, args, _) in enumerate(plan):
            if name != "acc":
                continue
            u = start + index
            for i, mem in enumerate(mems):
                w = u + isa.MXM_ACC_LATENCY + hops[i]
                addr = C_BASE + row0 + args[0]
                commits[mem.name][w + isa.MEM_WRITE_COMMIT] = addr % config.mem_banks
                queues[mem.name].append((w, f"write {addr}, {out.name.lower()}{4 + i}"
                                            f"    ; byte {i} of C[{row0 + args[0]}]"))
        next_addr = defaultdict(int)
        load = defaultdict(int)
        for index, (name, args, payload) in enumerate(plan):
            c = start + index
            dst = ""
            if name == "lw" or name == "abc":
                options = []
                for i, mem in enumerate(mems):
                    r = c - 1 - hops[i]
                    if r >= 0 and all(cycle != r for cycle, _ in queues[mem.name]):
                        options.append((load[i], i, r))
                if not options:
                    raise RuntimeError(f"no MEM slice can feed {name} in cycle {c}")
                _, i, r = min(options)
                mem = mems[i]
                addr = next_addr[mem.name]
                committing = commits[mem.name].get(r)
                if committing is not None and addr % config.mem_banks == committing:
                    addr += 1
                next_addr[mem.name] = addr + 1
                if addr >= C_BASE:
                    raise RuntimeError(f"{mem.name} is out of input words")
                load[i] += 1
                kind, t, j = payload
                if kind == "w":
                    values = b[t * n:(t + 1) * n, j]
                    note = f"column {j} of B rows {t * n}..{t * n + n - 1}"
                else:
                    values = a[row0 + j, t * n:(t + 1) * n]
                    note = f"A[{row0 + j}, {t * n}..{t * n + n - 1}]"
                data.append((mem.name, addr, values, note))
                stream = f"{into.name.lower()}{i}"
                queues[mem.name].append((r, f"read {stream}, {addr}"))
                dst = stream
            if name == "nop":
                continue
            if name == "lw":
                text = f"lw {args[0]}, {dst}"
            elif name == "abc":
                text = f"abc {args[0]}, {dst}, {int(args[1])}"
            elif name == "acc":
                text = f"acc {out.name.lower()}4, {args[0]}"
            else:
                text = "iw"
            queues[mxm.name].append((c, text))

    lines = [
        f"; gemm.s: C = A @ B, A {m}x{k} int8, B {k}x{n} int8, C int32, on both MXMs.",
        "; Generated by `python -m opentsp.firmware.gen_gemm` (firmware/gen_gemm.py, which",
        f"; explains the plan) from numpy seed {SEED}; do not edit by hand.",
        f"; MXM_W computes rows 0..{rows - 1} of C, MXM_E rows {rows}..{m - 1}; K = {k} is "
        f"{tiles} tiles of {n}:",
        "; abc add=0 for the first tile, add=1 after; the lw of the next tile run between the",
        "; abc of the current one (double buffering), then iw swaps them in.",
        f"; Row r of C is at word {C_BASE} + r, byte i in MEM_Wi (rows 0..{rows - 1}) or MEM_Ei"
        f" (the others).",
        f".config {config.name}",
        "",
    ]
    for name, addr, values, note in sorted(data, key=lambda d: (d[0], d[1])):
        lines.append(f".data {name}, {addr}, i8: {', '.join(str(int(v)) for v in values)}"
                     f"    ; {note}")
    order = [s.name for s in isa.queues(config)]
    for name in sorted(queues, key=order.index):
        lines += ["", f".queue {name}"]
        for cycle, text in sorted(queues[name]):
            lines += [f".at {cycle}", f"    {text}"]
    return "\n".join(lines) + "\n"


def result_from_memories(memories, config="default", shape=SHAPE):
    """``C`` (int32, M x N) from memory contents ``(memories, mem_words, lanes)`` uint8."""
    config = get_config(config)
    m, _, n = shape
    names = [s.name for s in isa.mem_slices(config)]
    rows = []
    for r in range(m):
        side = "W" if r < m // 2 else "E"
        planes = np.stack([memories[names.index(f"MEM_{side}{i}"), C_BASE + r]
                           for i in range(isa.INT32_GROUP)])
        rows.append(packing.unpack(planes, isa.DType.I32)[:n])
    return np.stack(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.firmware.gen_gemm",
                                     description="write the GEMM example program")
    parser.add_argument("-o", "--output", type=Path, default=EXAMPLE)
    args = parser.parse_args(argv)
    a, b = operands()
    args.output.write_text(generate(a, b))
    print(f"{args.output}: C = A @ B with A {a.shape}, B {b.shape}")


if __name__ == "__main__":
    main()
