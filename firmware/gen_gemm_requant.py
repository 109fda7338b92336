"""Generate ``firmware/examples/gemm_requant.s``: the GEMM of :mod:`gen_gemm` followed by
requantisation of its int32 result to int8 with ReLU, on the VXM:

    Q = cvt.i32.i8(relu(rshr(mulh(C, M), S)))        per lane: multiplier M, shift S

Run ``python -m opentsp.firmware.gen_gemm_requant`` to rewrite the example.
:func:`reference` computes ``Q`` from ``numpy.matmul`` with Python integers, independently of
the golden model's ALU.

The plan: row ``r`` of ``C`` lies spread over the four MEM slices of one hemisphere, side X
(byte ``i`` at word ``C_BASE + r`` of slice ``i``); ``M`` and ``S`` lie spread the same way on
both sides, so the other side Y can supply the second operand. A row's ``mulh`` in cycle ``V``
reads its operands in ``X_i`` and ``Y_i`` in cycle ``V - 2 - i`` (``i + 1`` hops from the
VXM, read latency 1), ``S`` comes from ``Y_i`` two cycles later, and the ``cvt`` in ``V + 6``
sends the int8 row back to X, where ``X_0`` stores it at word ``Q_BASE + r``. With ALU
chaining the four steps run two cycles apart (``rshr``, ``relu`` and ``cvt`` take operand
``r``, the result of ``isa.VXM_CHAIN_DISTANCE`` = 2 cycles before), so ``C`` is read once and
only ``Q`` is written. A greedy list scheduler places every row at the earliest cycle where no
queue slot is taken twice and no read meets a write commit in the same bank: the next row's
steps fill the cycles between, so two rows' chains interleave.
"""

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from opentsp import isa
from opentsp.config import get_config
from opentsp.firmware import gen_gemm
from opentsp.firmware.asm import assemble
from opentsp.queue_timing import end_slot

__all__ = ["MULTIPLIER", "SHIFT", "Q_BASE", "reference", "generate", "result_from_memories",
           "EXAMPLE", "main"]

MULTIPLIER = (1 << 30, 3 << 29, (1 << 31) - 1, 5 << 27)   # per lane: 1/4, 3/8, ~1/2, 5/32
SHIFT = (8, 9, 7, 6)
M_ADDR, S_ADDR = 24, 25         # constants, in every MEM slice of both hemispheres
Q_BASE = 56                     # int8 result rows (words 56..63) in X_0
_CHAIN = isa.VXM_CHAIN_DISTANCE  # cycles between a row's chained steps
EXAMPLE = Path(__file__).parent / "examples" / "gemm_requant.s"


def reference(a, b):
    """``Q`` from ``numpy.matmul`` and Python integer arithmetic (floor, round half up)."""
    c = np.matmul(a.astype(np.int64), b.astype(np.int64))
    q = np.zeros(c.shape, dtype=np.int8)
    for (r, j), value in np.ndenumerate(c):
        lane = j % len(MULTIPLIER)
        high = (int(value) * MULTIPLIER[lane]) >> 32
        n = SHIFT[lane]
        rounded = (high + (1 << (n - 1))) >> n if n else high
        q[r, j] = min(127, max(0, rounded))
    return q


def _sides(config):
    plan = {s.name: s for s in isa.floorplan(config)}
    return {side: [plan[f"MEM_{side}{i}"] for i in range(isa.INT32_GROUP)] for side in "WE"}


def generate(a, b, config="default"):
    """Assembly text of the GEMM followed by the chained requantisation of every row."""
    config = get_config(config)
    gemm_text = gen_gemm.generate(a, b, config)
    gemm = assemble(gemm_text, config)
    start = max(end_slot(q) for q in gemm.image.queues) + 2     # every C commit has landed
    m, n = a.shape[0], b.shape[1]
    sides = _sides(config)
    slots = _Slots(config.mem_banks)
    for r in range(m):
        _requantise_row(slots, sides, r, m, start)
    lines = _header(gemm_text, m) + _constants(sides, n)
    lines += gen_gemm.queue_sections(slots.queues, config)
    return "\n".join(lines) + "\n"


class _Slots:
    """The instructions placed so far and the MEM bank accesses they make."""

    def __init__(self, banks):
        self.banks = banks
        self.taken = defaultdict(set)       # slice -> cycles with an instruction
        self.commits = defaultdict(dict)    # slice -> {cycle: bank committing}
        self.reads = defaultdict(dict)      # slice -> {cycle: bank read}
        self.queues = defaultdict(list)     # slice -> [(cycle, text)]

    def free(self, name, cycle, addr, reading):
        """Slot free, and no read meeting a write commit on the same bank (rule 3)."""
        if cycle in self.taken[name]:
            return False
        bank = addr % self.banks
        if reading:
            return self.commits[name].get(cycle) != bank
        return self.reads[name].get(cycle + isa.MEM_WRITE_COMMIT) != bank

    def add(self, name, cycle, text):
        self.taken[name].add(cycle)
        self.queues[name].append((cycle, text))

    def add_read(self, name, cycle, addr, text):
        self.add(name, cycle, text)
        self.reads[name][cycle] = addr % self.banks

    def add_write(self, name, cycle, addr, text):
        self.add(name, cycle, text)
        self.commits[name][cycle + isa.MEM_WRITE_COMMIT] = addr % self.banks


def _requantise_row(slots, sides, r, m, start):
    """One chained pass for row ``r`` at the earliest cycle from ``start`` that fits: mulh (C
    from X, M from Y), rshr r (S from Y two cycles later), relu r, cvt r, each
    ``isa.VXM_CHAIN_DISTANCE`` cycles after the one before; the int8 row leaves on X's side and
    X_0 stores it."""
    x = "W" if r < m // 2 else "E"
    y = "E" if x == "W" else "W"
    into_vxm = {"W": "e", "E": "w"}
    out_to_x = {"W": "w", "E": "e"}[x]
    v = start
    while True:
        reads, write = _row_accesses(sides, x, y, r, v)
        if (all(v + step * _CHAIN not in slots.taken["VXM"] for step in range(4))
                and all(slots.free(name, c, addr, True) for name, c, addr in reads)
                and slots.free(*write, False)):
            break
        v += 1
    chain = [f"mulh.i32 {out_to_x}4, {into_vxm[x]}0, {into_vxm[y]}0    ; row {r}",
             f"rshr.i32 {out_to_x}4, r, {into_vxm[y]}0", f"relu.i32 {out_to_x}4, r",
             f"cvt.i32.i8 {out_to_x}4, r"]
    for step, text in enumerate(chain):
        slots.add("VXM", v + step * _CHAIN, text)
    for name, c, addr in reads:
        direction = into_vxm[x] if name[4] == x else into_vxm[y]
        slots.add_read(name, c, addr, f"read {direction}{int(name[-1])}, {addr}")
    name, c, dest = write
    slots.add_write(name, c, dest, f"write {dest}, {out_to_x}4    ; Q[{r}]")


def _row_accesses(sides, x, y, r, v):
    """The reads ``(slice, cycle, addr)`` and the write of row ``r``'s pass whose mulh issues
    in cycle ``v``: ``i + 1`` hops from the VXM, read latency 1."""
    reads = [(mem.name, v - 2 - i, gen_gemm.C_BASE + r) for i, mem in enumerate(sides[x])]
    reads += [(mem.name, v - 2 - i, M_ADDR) for i, mem in enumerate(sides[y])]
    reads += [(mem.name, v - 2 - i + _CHAIN, S_ADDR) for i, mem in enumerate(sides[y])]
    write = (sides[x][0].name, v + 3 * _CHAIN + isa.VXM_LATENCY + 1, Q_BASE + r)
    return reads, write


def _header(gemm_text, m):
    """The GEMM's text, renamed part 1, and the comment lines of part 2."""
    return [gemm_text.replace("; gemm.s:", "; gemm_requant.s (part 1, the GEMM of gemm.s):", 1),
            "; Part 2: Q = cvt.i32.i8(relu(rshr(mulh(C, M), S))), per row four chained VXM",
            "; instructions two cycles apart (operand r: the result of two cycles before;",
            "; the rows' chains interleave),",
            f"; M = {list(MULTIPLIER)}, S = {list(SHIFT)} per lane; row r of Q (int8) at word "
            f"{Q_BASE} + r of MEM_W0 (rows 0..{m // 2 - 1}) or MEM_E0.",
            "; Generated by `python -m opentsp.firmware.gen_gemm_requant`; do not edit by hand."]


def _constants(sides, n):
    """The ``.data`` of M and S, spread over the MEM slices of each side."""
    lines = []
    for side in "WE":
        names = ", ".join(mem.name for mem in sides[side])
        for addr, values in ((M_ADDR, MULTIPLIER), (S_ADDR, SHIFT)):
            vector = [values[j % len(values)] for j in range(n)]
            lines.append(f".data [{names}], {addr}, i32: {', '.join(map(str, vector))}")
    return lines


def result_from_memories(memories, config="default", shape=gen_gemm.SHAPE):
    """``Q`` (int8, M x N) from memory contents ``(memories, mem_words, lanes)`` uint8."""
    config = get_config(config)
    m, _, n = shape
    names = [s.name for s in isa.mem_slices(config)]
    rows = [memories[names.index("MEM_W0" if r < m // 2 else "MEM_E0"), Q_BASE + r, :n]
            for r in range(m)]
    return np.stack(rows).view(np.int8)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.firmware.gen_gemm_requant",
                                     description="write the requantised GEMM example")
    parser.add_argument("-o", "--output", type=Path, default=EXAMPLE)
    args = parser.parse_args(argv)
    a, b = gen_gemm.operands()
    args.output.write_text(generate(a, b))
    print(f"{args.output}: Q = requant(A @ B), expected\n{reference(a, b)}")


if __name__ == "__main__":
    main()
