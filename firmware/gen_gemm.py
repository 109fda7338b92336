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
  ``C`` is spread over the four slices as in ``dot_relu.s``. A configuration with only four
  streams per direction (``fpga``) uses the group ``0..3`` instead: the results travel the
  other way from the operands, and the checker and the golden model pass the program.
"""

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from opentsp import isa, packing
from opentsp.config import get_config

__all__ = ["SEED", "SHAPE", "C_BASE", "operands", "generate", "queue_sections",
           "result_from_memories", "EXAMPLE", "main"]

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
    """Assembly text of ``C = a @ b``.

    Returns
    -------
    str
        The program.

    Raises
    ------
    ValueError
        If the shapes do not fit the plan (see the module's description) or ``C`` the memory.
    """
    config = get_config(config)
    _check_shapes(a, b, config)
    program = _GemmProgram(a, b, config)
    for half, (mxm, mems, into, out) in enumerate(_hemispheres(config)):
        program.add_hemisphere(half * program.rows, mxm, mems, into, out)
    return program.text()


def queue_sections(queues, config):
    """The ``.queue`` sections of ``queues`` (slice name -> ``[(cycle, text)]``), in queue
    order, each instruction after the ``.at`` of its cycle."""
    lines = []
    order = [s.name for s in isa.queues(config)]
    for name in sorted(queues, key=order.index):
        lines += ["", f".queue {name}"]
        for cycle, text in sorted(queues[name]):
            lines += [f".at {cycle}", f"    {text}"]
    return lines


def _check_shapes(a, b, config):
    m, k = a.shape
    n = config.mxm_size
    if b.shape != (k, n) or k % n or m % 2 or m // 2 > config.mxm_accumulators:
        raise ValueError(f"shapes {a.shape} x {b.shape} do not fit this GEMM plan")
    if C_BASE + m > config.mem_words:
        raise ValueError("C does not fit in memory")


class _GemmProgram:
    """The GEMM program under construction: every queue's timed instructions and the input
    data, hemisphere by hemisphere."""

    def __init__(self, a, b, config):
        self.a, self.b, self.config = a, b, config
        self.n = config.mxm_size
        self.tiles, self.rows = a.shape[1] // self.n, a.shape[0] // 2
        self.queues = defaultdict(list)         # slice name -> [(cycle, text)]
        self.data = []                          # (slice name, addr, values, comment)
        self.commits = defaultdict(dict)        # slice name -> {cycle: bank a write commits to}
        self.plan = _mxm_plan(self.rows, self.tiles, self.n, isa.mxm_span(config))
        # the int32 group of the results: 4..7 where there is one, else 0..3
        self.group = isa.INT32_GROUP if config.streams >= 2 * isa.INT32_GROUP else 0
        # The first MXM issue: the nearest MEM slice reads its operand the cycle before.
        self.start = 1 + min(abs(mem.position - mxm.position)
                             for mxm, mems, _, _ in _hemispheres(config) for mem in mems)

    def add_hemisphere(self, row0, mxm, mems, into, out):
        """The instructions of ``mxm`` for rows ``row0..`` of ``C`` and of the MEM slices
        ``mems`` that feed it (on streams ``into``) and store its results (from ``out``)."""
        hops = [abs(mem.position - mxm.position) for mem in mems]
        # Outputs first: their cycles are fixed by the acc issues, and reads must avoid them.
        self._store_results(row0, mems, hops, out)
        feeder = _Feeder(self, mems, hops, into)
        for index, (name, args, payload) in enumerate(self.plan):
            cycle = self.start + index
            if name == "nop":
                continue
            stream = feeder.feed(cycle, name, payload, row0) if name in ("lw", "abc") else ""
            text = _mxm_text(name, args, stream, out, self.group)
            self.queues[mxm.name].append((cycle, text))

    def _store_results(self, row0, mems, hops, out):
        """A ``write`` per byte of each row of ``C`` the ``acc`` put out."""
        for index, (name, args, _) in enumerate(self.plan):
            if name != "acc":
                continue
            issue = self.start + index
            for i, mem in enumerate(mems):
                cycle = issue + isa.MXM_ACC_LATENCY + hops[i]
                addr = C_BASE + row0 + args[0]
                self.commits[mem.name][cycle + isa.MEM_WRITE_COMMIT] = addr % self.config.mem_banks
                self.queues[mem.name].append((cycle, f"write {addr}, "
                                                     f"{out.name.lower()}{self.group + i}"
                                                     f"    ; byte {i} of C[{row0 + args[0]}]"))

    def text(self):
        """The program's assembly text."""
        m, k = self.a.shape
        lines = _header(m, k, self.n, self.rows, self.tiles, self.config)
        for name, addr, values, note in sorted(self.data, key=lambda d: (d[0], d[1])):
            lines.append(f".data {name}, {addr}, i8: {', '.join(str(int(v)) for v in values)}"
                         f"    ; {note}")
        lines += queue_sections(self.queues, self.config)
        return "\n".join(lines) + "\n"


class _Feeder:
    """Feeds the MXM of one hemisphere: picks, per input instruction, the least loaded MEM
    slice free to ``read`` its vector in time, and lays that vector out in the slice."""

    def __init__(self, program, mems, hops, into):
        self.program = program
        self.mems, self.hops, self.into = mems, hops, into
        self.next_addr = defaultdict(int)       # slice name -> next free input word
        self.load = defaultdict(int)            # slice number -> reads so far

    def feed(self, cycle, name, payload, row0):
        """Read the vector of ``payload`` for MXM instruction ``name`` issued in ``cycle``;
        the stream it arrives on."""
        i, read_cycle = self._pick(cycle, name)
        mem = self.mems[i]
        addr = self._address(mem.name, read_cycle)
        self.load[i] += 1
        values, note = self._vector(payload, row0)
        self.program.data.append((mem.name, addr, values, note))
        stream = f"{self.into.name.lower()}{i}"
        self.program.queues[mem.name].append((read_cycle, f"read {stream}, {addr}"))
        return stream

    def _pick(self, cycle, name):
        """The slice number and the read cycle for an MXM instruction issued in ``cycle``."""
        options = []
        for i, mem in enumerate(self.mems):
            read_cycle = cycle - 1 - self.hops[i]
            taken = self.program.queues[mem.name]
            if read_cycle >= 0 and all(c != read_cycle for c, _ in taken):
                options.append((self.load[i], i, read_cycle))
        if not options:
            raise RuntimeError(f"no MEM slice can feed {name} in cycle {cycle}")
        _, i, read_cycle = min(options)
        return i, read_cycle

    def _address(self, mem_name, read_cycle):
        """The next input word of the slice, skipping one whose bank a write commits to in
        the cycle of the read."""
        config = self.program.config
        addr = self.next_addr[mem_name]
        committing = self.program.commits[mem_name].get(read_cycle)
        if committing is not None and addr % config.mem_banks == committing:
            addr += 1
        self.next_addr[mem_name] = addr + 1
        if addr >= C_BASE:
            raise RuntimeError(f"{mem_name} is out of input words")
        return addr

    def _vector(self, payload, row0):
        """The values of ``payload`` (``("w", tile, column)`` of B or ``("x", tile, row)`` of
        A) and a comment naming them."""
        kind, t, j = payload
        n = self.program.n
        if kind == "w":
            return (self.program.b[t * n:(t + 1) * n, j],
                    f"column {j} of B rows {t * n}..{t * n + n - 1}")
        return (self.program.a[row0 + j, t * n:(t + 1) * n],
                f"A[{row0 + j}, {t * n}..{t * n + n - 1}]")


def _mxm_text(name, args, stream, out, group=4):
    """The text of MXM instruction ``name`` (``stream``: its input, for lw and abc; ``group``:
    the first stream of the int32 group ``acc`` puts out)."""
    if name == "lw":
        return f"lw 0, {args[0]}, {stream}, 1"
    if name == "abc":
        return f"abc 0, {args[0]}, {stream}, {int(args[1])}, 1"
    if name == "acc":
        return f"acc 0, {out.name.lower()}{group}, {args[0]}, 1"
    return "iw 0"


def _header(m, k, n, rows, tiles, config):
    """The comment lines that open the program, and its ``.config``."""
    return [
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
