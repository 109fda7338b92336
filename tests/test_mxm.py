"""The MXM (docs/architecture.md section 7a, ISA v4): the golden model against numpy's own
matmul (tiling K with ``abc add=1``, double buffering, the stagger's partial-sum chain up to the
``groq`` span of 20 superlanes), the whole-chip model, and the RTL slice against the golden
model cycle by cycle and against numpy, with both planes computing and draining on their own
sequencers in the same cycles."""

import random
from collections import defaultdict
from dataclasses import replace
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from opentsp import fp, isa, packing
from opentsp.config import CONFIGS, Config
from opentsp.firmware.asm import assemble
from opentsp.firmware.checker import check
from opentsp.hdl import mxm_float
from opentsp.hdl.mxm import MxmSlice
from opentsp.sim.model import run
from opentsp.sim.mxm import Mxm, Wide, wrap32

DEFAULT = CONFIGS["default"]
#: The default chip without floating point: 8-bit weights, int32 accumulators and chains.
INTEGER = replace(DEFAULT, name="default-int", floating_point=False)
#: span 3 (mxm_size 5 on 2 lanes per superlane), a fourth superlane beyond the span, lane 5 of
#: superlane 2 beyond N, 3 accumulators (not a power of two).
SPAN3 = Config(name="span3", superlanes=4, lanes_per_superlane=2, streams=8, mem_slices=1,
               mem_words=16, mxm_size=5, mxm_accumulators=3, queue_depth=16)
#: two planes of 4 x 4 over two superlanes, weights loaded three rows a cycle (4 is not a
#: multiple of 3: the last element writes one row), each plane with its own compute and drain
#: sequencers.
PLANES = Config(name="planes", superlanes=2, lanes_per_superlane=2, streams=8, mem_slices=1,
                mem_words=16, mxm_size=4, mxm_accumulators=5, mxm_planes=2, mxm_load_rows=3,
                queue_depth=16)
E, W = isa.Dir.E, isa.Dir.W


def ref(direction, ident):
    return isa.StreamRef(direction, ident)


class SliceModel:
    """One MXM slice on its own, cycle by cycle: the golden :class:`Mxm`'s sequencers
    (:meth:`Mxm.issue`) behind a stagger.

    :meth:`step` takes the instruction issued this cycle (or None) and the slice inputs of
    this cycle (uint8, shape ``(2, streams, superlanes, lanes_per_superlane)``) and returns
    the stream writes driven in this cycle: ``{(dir, stream, superlane): uint8 lanes}``. The
    elements of a cycle run in :meth:`Mxm.issue`'s order, plane 0's before plane 1's, so
    that plane 1's drain wins a stream both planes write.
    """

    def __init__(self, config):
        self.config = config
        self.unit = Mxm(config)
        self.running = defaultdict(list)      # cycle -> [(element, superlane)]
        self.pending = defaultdict(dict)
        self.cycle = 0
        self.f32_words = []                   # every acc.f32 element's lanes 0..N-1 (int32)

    def step(self, instr, inputs, ended=False):
        cfg, t = self.config, self.cycle
        for element in self.unit.issue(instr, ended):
            for k in range(cfg.superlanes):
                self.running[t + k].append((element, k))
        for element, k in self.running.pop(t, ()):
            self._run(element, k, inputs)
        self.unit.end_cycle()
        self.cycle += 1
        return self.pending.pop(t, {})

    def _run(self, element, k, inputs):
        cfg, t = self.config, self.cycle
        types = dict(element.op.operand_types)
        dtype = types.get("s")          # lw/abc: None for int8, else f16 or bf16

        def streams(field):
            """The operand's elements, one per group: int8, or 16-bit patterns (int16)."""
            direction, ids = element.group(field, cfg)
            planes = np.stack([inputs[int(direction), s, k] if s < cfg.streams
                               else np.zeros(cfg.lanes_per_superlane, np.uint8) for s in ids])
            width = 1 if dtype is None else dtype.bytes
            return [packing.unpack(planes[g:g + width], dtype or isa.DType.I8)
                    for g in range(0, len(ids), width)]
        name = element.op.mnemonic
        if name == "lw":
            self.unit.lw(k, element["p"], element["row"], streams("s"))
        elif name == "iw":
            self.unit.iw(k, element["p"])
        elif name == "abc":
            self.unit.abc(k, element["p"], element["acc"], element["add"], streams("s")[0],
                          dtype)
        elif name == "acc":
            direction, ids = element.group("dst", cfg)
            values = self.unit.read_acc(k, element["p"], element["acc"], types["dst"])
            if types["dst"] == isa.DType.F32:
                lanes = self.unit.lanes(k)
                self.f32_words.append(values[:lanes.stop - lanes.start])
            for ident, byte in zip(ids, packing.pack(values, types["dst"]), strict=True):
                if ident < cfg.streams:
                    self.pending[t + 1][int(direction), ident, k] = byte


def vector(config, values):
    """A whole vector (lanes bytes) from int8 values for lanes 0.., split by superlane."""
    out = np.zeros(config.lanes, np.int8)
    out[:len(values)] = values
    return out.view(np.uint8).reshape(config.superlanes, config.lanes_per_superlane)


def gemm_schedule(config, m, k_tiles, add_first=0, interleave=True):
    """lw/iw/abc/acc for C = A @ B with B in K tiles of N rows: load tile 0, install it, then
    for each tile the abc of every row of A (add=1 after the first tile) with the lw of the
    next tile interleaved (double buffering), iw, and finally acc of every row (span cycles
    after its last abc)."""
    n = config.mxm_size
    span = isa.mxm_span(config)
    schedule = [("lw", {"p": 0, "row": j, "s": "x", "n": 1}) for j in range(n)]
    schedule += [("iw", {"p": 0})]
    for tile in range(k_tiles):
        abcs = [("abc", {"p": 0, "acc": row, "s": "x", "add": int(tile > 0 or add_first),
                         "n": 1})
                for row in range(m)]
        lws = ([("lw", {"p": 0, "row": j, "s": "x", "n": 1}) for j in range(n)]
               if tile + 1 < k_tiles else [])
        if interleave:
            merged = []
            for i in range(max(len(abcs), len(lws))):
                merged += abcs[i:i + 1] + lws[i:i + 1]
        else:
            merged = abcs + lws
        schedule += merged + ([("iw", {"p": 0})] if lws else [])
    schedule += [None] * span
    schedule += [("acc", {"p": 0, "dst": ref(E, 0), "acc": row, "n": 1}) for row in range(m)]
    return schedule


def feed_order(schedule, a, b, config):
    """The vectors each 'x' operand of ``schedule`` takes, in order."""
    n = config.mxm_size
    tiles = [b[t * n:(t + 1) * n] for t in range(b.shape[0] // n)]
    lw_rows = iter([tile[:, j] for tile in tiles for j in range(n)])
    rows = iter([a[r, t * n:(t + 1) * n] for t in range(len(tiles)) for r in range(a.shape[0])])
    out = []
    for item in schedule:
        if item is not None and item[1].get("s") == "x":
            out.append(next(lw_rows) if item[0] == "lw" else next(rows))
    return out


def lower(config, plan, a, b):
    """Plan items to (schedule of Instr or None per cycle, {issue cycle: vector on w0})."""
    feeds = iter(feed_order(plan, a, b, config))
    schedule, stream_value = [], {}
    for t, item in enumerate(plan):
        if item is None:
            schedule.append(None)
            continue
        name, fields = item
        if fields.get("s") == "x":
            stream_value[t] = vector(config, next(feeds))
            fields = dict(fields, s=ref(W, 0))
        schedule.append(isa.encode(name, **fields))
    return schedule, w0_inputs(config, stream_value)


def w0_inputs(config, stream_value):
    """``inputs_of(t)``: the slice inputs in cycle t, stream W0 of superlane k carrying
    superlane k of ``stream_value[t - k]`` (the vector of the issue in cycle t - k)."""
    shape = (2, config.streams, config.superlanes, config.lanes_per_superlane)

    def inputs_of(t):
        inputs = np.zeros(shape, np.uint8)
        for k in range(config.superlanes):
            if t - k in stream_value:
                inputs[int(W), 0, k] = stream_value[t - k][k]
        return inputs
    return inputs_of


def acc_results(config, schedule, seen):
    """The int32 lanes 0..N-1 of every acc of ``schedule``, from the writes of each cycle
    (superlane k of an acc issued in u is driven in cycle u + 1 + k)."""
    return np.stack([group(config, seen, u, instr.stream("dst"))
                     for u, instr in enumerate(schedule)
                     if instr is not None and instr.op.mnemonic == "acc"])


def run_gemm(config, a, b, interleave=True):
    """C = A @ B on the golden :class:`SliceModel` with :func:`gemm_schedule`."""
    plan = gemm_schedule(config, a.shape[0], b.shape[0] // config.mxm_size,
                         interleave=interleave)
    schedule, inputs_of = lower(config, plan, a, b)
    model = SliceModel(config)
    seen = [model.step(schedule[t] if t < len(schedule) else None, inputs_of(t))
            for t in range(len(schedule) + config.superlanes + 2)]
    return acc_results(config, schedule, seen)


# Golden model vs numpy ------------------------------------------------------------------------

@pytest.mark.parametrize("config", [DEFAULT, SPAN3], ids=["default", "span3"])
@pytest.mark.parametrize("interleave", [True, False], ids=["double-buffered", "sequential"])
def test_tiled_gemm_matches_numpy(config, interleave):
    rng = np.random.default_rng(7)
    n = config.mxm_size
    a = rng.integers(-128, 128, size=(config.mxm_accumulators, 3 * n), dtype=np.int8)
    b = rng.integers(-128, 128, size=(3 * n, n), dtype=np.int8)
    got = run_gemm(config, a, b, interleave)
    expect = a.astype(np.int32) @ b.astype(np.int32)       # numpy's own matmul
    np.testing.assert_array_equal(got, expect)
    assert got.dtype == np.int32


@pytest.mark.parametrize("config", [DEFAULT, INTEGER], ids=["float-chip", "integer-chip"])
def test_extreme_values_and_int32_wrap(config):
    """-128 * -128 summed: exact in int32 for one tile; the accumulator wraps modulo 2**32 (on
    a chip with floating point its int32 reading does: bits 2**0 .. 2**31 of the wide sum)."""
    n = config.mxm_size
    a = np.full((1, n), -128, np.int8)
    b = np.full((n, n), -128, np.int8)
    np.testing.assert_array_equal(run_gemm(config, a, b), np.full((1, n), 4 * 16384))
    unit = Mxm(config)
    if config.floating_point:
        unit.acc.store((0, 0), Wide.from_int([2 ** 31 - 1] * n))
    else:
        unit.acc[0, 0] = np.iinfo(np.int32).max
    unit.front[:] = 1
    unit.abc(0, 0, 0, 1, np.ones(4, np.int8))
    unit.end_cycle()
    np.testing.assert_array_equal(unit.read_acc(0, 0, 0)[:n], wrap32([2 ** 31 - 1 + 4] * n))
    weight = np.int16 if config.floating_point else np.int8
    assert unit.front.dtype == weight
    if not config.floating_point:
        assert unit.acc.dtype == np.int32


def test_groq_span_of_20_superlanes_on_a_small_case():
    """groq: N = 320 over 20 superlanes of 16 lanes. The partial sums ride the stagger; with
    K = 320 (one tile) and a few rows the result is numpy's, and an acc one cycle too early
    (issued span - 1 cycles after its abc) still sees the old accumulator."""
    config = CONFIGS["groq"]
    assert isa.mxm_span(config) == 20
    rng = np.random.default_rng(3)
    n = config.mxm_size
    a = rng.integers(-128, 128, size=(2, n), dtype=np.int8)
    b = rng.integers(-128, 128, size=(n, n), dtype=np.int8)
    got = run_gemm(config, a, b)
    np.testing.assert_array_equal(got, a.astype(np.int32) @ b.astype(np.int32))


def test_acc_before_the_abc_lands_reads_the_old_value():
    config = SPAN3
    span = isa.mxm_span(config)
    model = SliceModel(config)
    n = config.mxm_size
    ones = vector(config, [1] * n)
    shape = (2, config.streams, config.superlanes, config.lanes_per_superlane)
    program = {0: isa.encode("lw", p=0, row=0, s=ref(W, 0), n=1), 1: isa.encode("iw", p=0),
               2: isa.encode("abc", p=0, acc=1, add=0, s=ref(W, 0), n=1),
               2 + span - 1: isa.encode("acc", p=0, dst=ref(E, 4), acc=1, n=1),
               2 + span: isa.encode("acc", p=0, dst=ref(E, 0), acc=1, n=1)}
    outputs = {}
    for t in range(12):
        inputs = np.zeros(shape, np.uint8)
        for k in range(config.superlanes):
            inputs[int(W), 0, k] = ones[k]
        for key, lanes in model.step(program.get(t), inputs).items():
            outputs[key + (t,)] = lanes
    early = [outputs[(int(E), 4, 0, 2 + span - 1 + 1)][0]]
    late = [outputs[(int(E), 0, 0, 2 + span + 1)][0]]
    assert early == [0] and late == [n], (early, late)    # row 0 of W is ones: sum of n ones


def test_whole_chip_model_with_assembler():
    """MXM_W in the full golden model: x from MEM_W3 (2 hops, westward), W^T rows too; the
    result (int32 on e4..e7 eastward) stored by MEM_W0..MEM_W3, byte i in MEM_Wi."""
    n = DEFAULT.mxm_size
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, size=n, dtype=np.int8)
    w = rng.integers(-128, 128, size=(n, n), dtype=np.int8)
    lines = [f".data MEM_W3, {j}, i8: {', '.join(map(str, w[:, j]))}" for j in range(n)]
    lines += [f".data MEM_W3, 8, i8: {', '.join(map(str, x))}", ".queue MEM_W3"]
    lines += [f".at {j}\n    read w0, {j}" for j in range(n)] + [f".at {n + 1}\n    read w0, 8"]
    lines += [".queue MXM_W"] + [f".at {j + 3}\n    lw 0, {j}, w0, 1" for j in range(n)]
    lines += [f".at {n + 3}\n    iw 0", f".at {n + 4}\n    abc 0, 5, w0, 0, 1",
              "    acc 0, e4, 5, 1"]
    u = n + 5         # acc issue; MEM_Wi (5 - i hops from MXM_W) writes in u + 1 + 5 - i
    for i in range(4):
        lines += [f".queue MEM_W{i}", f".at {u + 6 - i}", f"    write 20, e{4 + i}"]
    program = assemble("\n".join(lines), DEFAULT)
    assert check(program) == []
    result = run(program.image)
    planes = np.stack([result.memory(f"MEM_W{i}")[20] for i in range(4)])
    got = packing.unpack(planes, isa.DType.I32)
    np.testing.assert_array_equal(got[:n], x.astype(np.int32) @ w.astype(np.int32))
    np.testing.assert_array_equal(got[n:], 0)


class Program:
    """An MXM program for :func:`run_rtl`: one instruction (or None) per cycle, and int8 vectors
    fed westward on the slice's input streams, each in an issue cycle (superlane ``k`` sees it
    ``k`` cycles later, with the stagger)."""

    def __init__(self, config):
        self.config = config
        self.schedule = []
        self.feed = defaultdict(dict)       # cycle -> {westward stream id: vector}

    def issue(self, name, at=None, **fields):
        """Issue ``name`` in cycle ``at`` (default: the next cycle); returns the cycle."""
        t = len(self.schedule) if at is None else at
        assert t >= len(self.schedule), (name, t)
        self.schedule += [None] * (t - len(self.schedule)) + [isa.encode(name, **fields)]
        return t

    def put(self, t, stream, values):
        self.feed[t][stream] = vector(self.config, values)

    def put16(self, t, stream, patterns):
        """16-bit patterns for lanes 0.. on the stream pair ``w<stream>`` (low bytes) and
        ``w<stream + 1>`` (high bytes)."""
        raw = np.asarray(patterns).astype(np.uint16)
        self.put(t, stream, (raw & 0xFF).astype(np.uint8).view(np.int8))
        self.put(t, stream + 1, (raw >> 8).astype(np.uint8).view(np.int8))

    def _put_typed(self, name, t, slot, values):
        """``values`` for instruction ``name``'s ``slot``-th stream operand (an int8 stream, or
        for a 16-bit type the pair ``2 slot``, ``2 slot + 1`` from the first)."""
        if isa.OPS_BY_NAME[name].suffix:
            self.put16(t, 2 * slot, values)
        else:
            self.put(t, slot, values)

    def load(self, weights, name="lw"):
        """``lw p, 0, w0, ceil(N / R)`` (or typed ``name``) for every plane ``p`` of ``weights``
        (``N x N`` each, int8 or 16-bit patterns; row ``e*R + r`` of plane ``p``, column ``e*R
        + r`` of ``weights[p]``, on stream ``w<r>`` or the pair ``w<2r>``, ``w<2r+1>`` in cycle
        ``t + e``), then ``iw p`` of every plane."""
        n, rows_per = self.config.mxm_size, self.config.mxm_load_rows
        loads = -(-n // rows_per)
        for p, w in enumerate(weights):
            t = self.issue(name, p=p, row=0, s=ref(W, 0), n=loads)
            for row in range(n):
                self._put_typed(name, t + row // rows_per, row % rows_per, w[:, row])
            self.schedule += [None] * (loads - 1)
        for p in range(len(weights)):
            self.issue("iw", p=p)

    def compute(self, p, acc, stream, rows, at=None, add=0, name="abc"):
        """``abc p, acc, w<stream>, add, len(rows)`` (or typed ``name``: ``rows`` of 16-bit
        patterns on the pair from ``w<stream>``) with ``rows[e]`` in the cycle of element
        ``e``; returns the issue cycle."""
        t = self.issue(name, at=at, p=p, acc=acc, s=ref(W, stream), add=add, n=len(rows))
        for e, row in enumerate(rows):
            if isa.OPS_BY_NAME[name].suffix:
                self.put16(t + e, stream, row)
            else:
                self.put(t + e, stream, row)
        return t

    def inputs_of(self, t):
        config = self.config
        inputs = np.zeros((2, config.streams, config.superlanes, config.lanes_per_superlane),
                          np.uint8)
        for k in range(config.superlanes):
            for stream, value in self.feed.get(t - k, {}).items():
                inputs[int(W), stream, k] = value[k]
        return inputs

    def run(self):
        """:func:`run_rtl` (the RTL checked against the golden model every cycle), on until
        the last sequence has run."""
        tail = max([instr["n"] for instr in self.schedule
                    if instr is not None and instr.op.mnemonic in isa.MXM_SEQUENCERS] + [1])
        return run_rtl(self.config, self.schedule + [None] * tail, self.inputs_of)


def group(config, seen, cycle, dst):
    """The int32 lanes 0..N-1 that the group ``dst`` takes from an ``acc`` element of
    ``cycle`` (superlane ``k`` driven in ``cycle + 1 + k``) in the writes ``seen``."""
    planes = np.stack([np.concatenate([seen[cycle + 1 + k][(int(dst.dir), dst.id + i, k)]
                                       for k in range(config.superlanes)])
                       for i in range(isa.INT32_GROUP)])
    return packing.unpack(planes, isa.DType.I32)[:config.mxm_size]


def products(x, w):
    """numpy's int32 ``x @ w``."""
    return np.asarray(x).astype(np.int32) @ np.asarray(w).astype(np.int32)


@pytest.mark.parametrize("config", [DEFAULT, SPAN3, PLANES], ids=["default", "span3", "planes"])
def test_sequenced_gemm_on_the_rtl_matches_the_model_and_numpy(config):
    """ISA v4: a multi-row load sequence into every plane; then per plane ``p`` one ``abc p``
    sequence over the rows of its own A_p from its own stream (``w7``, ``w6``), issued a cycle
    apart, so that the planes compute in the same cycles from different streams; and one
    ``acc p`` sequence onto the group ``e<4p>``, a cycle apart too (the planes drain in the
    same cycles onto different groups). The RTL equals the golden model cycle by cycle
    (:func:`run_rtl`) and every plane's results numpy's A_p @ B_p."""
    rng = np.random.default_rng(17)
    n, planes, m = config.mxm_size, config.mxm_planes, config.mxm_accumulators
    a = rng.integers(-128, 128, size=(planes, m, n), dtype=np.int8)
    b = rng.integers(-128, 128, size=(planes, n, n), dtype=np.int8)
    prog = Program(config)
    prog.load(b)
    t = prog.compute(0, 0, 7, a[0])
    for p in range(1, planes):
        prog.compute(p, 0, 7 - p, a[p])
    u = t + max(planes, isa.mxm_span(config))       # every element lands before its drain
    for p in range(planes):
        prog.issue("acc", at=u + p, p=p, dst=ref(E, 4 * p), acc=0, n=m)
    seen = prog.run()
    for p in range(planes):
        got = np.stack([group(config, seen, u + p + f, ref(E, 4 * p)) for f in range(m)])
        np.testing.assert_array_equal(got, products(a[p], b[p]), err_msg=f"plane {p}")


def test_both_planes_drain_in_one_cycle_and_plane_1_wins_a_stream():
    """Plane 0 drains three accumulators onto ``e0``; plane 1's drain element onto ``e0`` in
    the cycle of plane 0's second takes the streams (plane 1 wins), and plane 1's onto ``w0``
    in the cycle of plane 0's third leaves ``e0`` to plane 0."""
    config = PLANES
    rng = np.random.default_rng(23)
    n = config.mxm_size
    w = rng.integers(-128, 128, size=(2, n, n), dtype=np.int8)
    x = rng.integers(-128, 128, size=(2, 3, n), dtype=np.int8)
    prog = Program(config)
    prog.load(w)
    prog.compute(0, 0, 7, x[0])
    prog.compute(1, 0, 6, x[1])
    u = prog.issue("acc", at=len(prog.schedule) + 4, p=0, dst=ref(E, 0), acc=0, n=3)
    prog.issue("acc", p=1, dst=ref(E, 0), acc=0, n=1)
    prog.issue("acc", p=1, dst=ref(W, 0), acc=1, n=1)
    seen = prog.run()
    expect = [products(x[p], w[p]) for p in range(2)]
    np.testing.assert_array_equal(group(config, seen, u, ref(E, 0)), expect[0][0])
    np.testing.assert_array_equal(group(config, seen, u + 1, ref(E, 0)), expect[1][0])
    np.testing.assert_array_equal(group(config, seen, u + 2, ref(E, 0)), expect[0][2])
    np.testing.assert_array_equal(group(config, seen, u + 2, ref(W, 0)), expect[1][1])


@pytest.mark.parametrize("config", [DEFAULT, PLANES], ids=["one-plane", "planes"])
def test_each_plane_runs_its_own_sequences(config):
    """``abc 1``/``acc 1`` neither drop nor disturb plane 0's running sequences, and a new
    ``abc 0``/``acc 0`` restarts plane 0's sequence alone (plane 1's runs on). On one plane
    (``default``) ``abc 1`` and ``acc 1`` do nothing at all (no element, no stream written)
    and ``lw 1``/``iw 1`` write nothing."""
    rng = np.random.default_rng(29)
    n, span = config.mxm_size, isa.mxm_span(config)
    w = rng.integers(-128, 128, size=(2, n, n), dtype=np.int8)
    x = rng.integers(-128, 128, size=(2, 4, n), dtype=np.int8)
    prog = Program(config)
    prog.load(w)
    t = prog.compute(0, 0, 7, x[0, :3])     # plane 0: accumulators 0, 1 (2 dropped below)
    prog.compute(1, 0, 6, x[1, :3])         # t + 1, plane 1: accumulators 0, 1, 2
    prog.compute(0, 3, 5, x[0, 3:])         # t + 2: plane 0 anew, accumulator 3
    u = prog.issue("acc", at=t + 3 + span, p=0, dst=ref(E, 0), acc=0, n=4)
    prog.issue("acc", p=1, dst=ref(E, 4), acc=0, n=3)     # u + 1 .. u + 3
    prog.issue("acc", p=0, dst=ref(E, 0), acc=3, n=1)     # u + 2: drops plane 0's last
    prog.issue("acc", p=0, dst=ref(W, 0), acc=2, n=1)     # u + 3: never written
    seen = prog.run()
    expect = products(x[0], w[0])
    for cycle, row in ((u, 0), (u + 1, 1), (u + 2, 3)):
        np.testing.assert_array_equal(group(config, seen, cycle, ref(E, 0)), expect[row])
    np.testing.assert_array_equal(group(config, seen, u + 3, ref(W, 0)), np.zeros(n))
    assert not any((int(E), 0, 0) in seen[c] for c in range(u + 4, len(seen)))
    plane_1 = [group(config, seen, u + 1 + f, ref(E, 4)) for f in range(3)
               ] if config.mxm_planes > 1 else []
    if plane_1:
        np.testing.assert_array_equal(np.stack(plane_1), products(x[1, :3], w[1]))
    else:
        assert not any(key[:2] == (int(E), s) for writes in seen for key in writes
                       for s in range(4, 8))


def test_a_plane_loads_in_ceil_n_over_r_cycles_and_installs_alone():
    """On PLANES (N = 4, R = 3) a load sequence of 2 elements writes rows 0..2 then row 3
    (row 4 and 5 do not exist); iw installs only its own plane."""
    config = PLANES
    unit = Mxm(config)
    rows = [np.full(config.lanes_per_superlane, v, np.int8) for v in (1, 2, 3)]
    for k in range(config.superlanes):
        unit.lw(k, 1, 0, rows)
        unit.lw(k, 1, 3, rows)
    unit.end_cycle()
    assert unit.back[1][:, 0].tolist() == [1, 2, 3, 1] and not unit.back[0].any()
    for k in range(config.superlanes):
        unit.iw(k, 1)
    unit.end_cycle()
    assert (unit.front[1] == unit.back[1]).all() and not unit.front[0].any()


# RTL vs the golden model -----------------------------------------------------------------------

def pack_bundle(config, planes):
    """uint8 (streams, superlanes, lps) to the bundle's integer value."""
    return int.from_bytes(np.ascontiguousarray(planes, np.uint8).tobytes(), "little")


def rtl_writes(ctx, dut, config):
    writes = {}
    lps, sl = config.lanes_per_superlane, config.superlanes
    for direction, we, wdata in ((0, dut.e_we, dut.e_wdata), (1, dut.w_we, dut.w_wdata)):
        mask = ctx.get(we.as_value())
        value = ctx.get(wdata.as_value())
        for s in range(config.streams):
            for k in range(sl):
                if mask >> (s * sl + k) & 1:
                    shift = (s * sl + k) * 8 * lps
                    word = (value >> shift) & ((1 << 8 * lps) - 1)
                    writes[direction, s, k] = np.frombuffer(word.to_bytes(lps, "little"),
                                                            np.uint8)
    return writes


def typed_names(mnemonic, config):
    """The names of the MXM instructions of ``mnemonic`` that ``config``'s chip runs: with
    floating point every type (``abc``, ``abc.f16``, ``abc.bf16``), else the integer one."""
    return [op.name for op in isa.OPS if op.unit == isa.Unit.MXM and op.mnemonic == mnemonic
            and (config.floating_point or not op.suffix)]


def random_instr(rng, config):
    """A random MXM instruction: sequences of 1 to 5 elements; rows, accumulators, planes and
    streams sometimes beyond the configuration's; accumulators mostly among the first four, so
    that drains read what the computes wrote. With floating point, ``lw``, ``abc`` and ``acc``
    of every type (:func:`typed_names`), 16-bit operands on aligned stream pairs."""
    r = rng.random()
    n = rng.choice([1, 1, 2, 3, 5])

    def stream(width=1):
        return ref(isa.Dir(rng.randrange(2)), rng.randrange(0, config.streams + width, width))

    def accumulator():
        return (rng.randrange(min(config.mxm_accumulators, 4)) if rng.random() < 0.85
                else config.mxm_accumulators)
    plane = rng.randrange(1 << isa.MXM_PLANE_BITS)     # on one plane, p = 1 is missing
    def typed(mnemonic):
        """A random type's name and the alignment of its stream operand."""
        name = rng.choice(typed_names(mnemonic, config))
        return name, 2 if isa.OPS_BY_NAME[name].suffix else 1
    if r < 0.2:
        name, width = typed("lw")
        return isa.encode(name, p=plane, row=rng.randrange(config.mxm_size + 1),
                          s=stream(width), n=n)
    if r < 0.3:
        return isa.encode("iw", p=plane)
    if r < 0.65:
        name, width = typed("abc")
        return isa.encode(name, p=plane, acc=accumulator(), add=rng.randrange(2),
                          s=stream(width), n=n)
    return isa.encode(rng.choice(typed_names("acc", config)), p=plane, dst=stream(4),
                      acc=accumulator(), n=n)


#: 16-bit patterns that the floating-point products must get right: signed zeros, fp16 and
#: bf16 infinities and NaNs, fp16 and bf16 subnormals, bf16 2**127 (its square overflows to
#: an infinity) and just below 2**128, bf16 2**-126 and 2**-80 (products truncated below the
#: accumulator's 2**-160, wholly or in part), fp16's largest.
SPECIAL_PATTERNS = (0x0000, 0x8000, 0x7C00, 0xFC00, 0x7F80, 0xFF80, 0x7E00, 0x7FC0, 0xFF81,
                    0x0001, 0x8001, 0x03FF, 0x007F, 0x807F, 0x7F00, 0xFF00, 0x7F7F, 0x0080,
                    0x8100, 0x1780, 0x97C3, 0x7BFF)


def random_inputs(np_rng, shape, floating_point):
    """Random slice inputs (uint8, ``shape``). With floating point, the stream pairs ``(2q,
    2q + 1)`` carry 16-bit patterns: mostly moderate values (bf16 exponents 120..135, which
    read as fp16 have exponent 15 or 16), 4% :data:`SPECIAL_PATTERNS`, 10% any 16 bits."""
    raw = np_rng.integers(0, 256, size=shape, dtype=np.uint8)
    if not floating_point:
        return raw
    pairs = (shape[0], shape[1] // 2) + shape[2:]
    moderate = (np_rng.integers(0, 2, pairs) << 15) | np_rng.integers(120 << 7, 136 << 7, pairs)
    special = np.array(SPECIAL_PATTERNS)[np_rng.integers(0, len(SPECIAL_PATTERNS), pairs)]
    uniform = np_rng.integers(0, 1 << 16, pairs)
    pick = np_rng.random(pairs)
    pattern = np.where(pick < 0.86, moderate, np.where(pick < 0.9, special, uniform))
    out = np.empty(shape, np.uint8)
    out[:, 0::2] = pattern & 0xFF
    out[:, 1::2] = pattern >> 8
    return out


def run_rtl(config, schedule, inputs_of, clear_at=(), halt_from=None, models=None):
    """Drive the RTL slice with ``schedule`` (Instr or None per cycle) and
    ``inputs_of(t)``, with ``halt`` high from cycle ``halt_from`` on; check every cycle's
    stream writes against :class:`SliceModel`. Returns the writes per cycle; ``models``, a
    list, receives every :class:`SliceModel` used (a new one at each soft reset)."""
    dut = MxmSlice(config)
    extra = config.superlanes + 2
    seen = []
    models = [] if models is None else models

    async def tb(ctx):
        model = SliceModel(config)
        models.append(model)
        for t in range(len(schedule) + extra):
            instr = schedule[t] if t < len(schedule) else None
            inputs = inputs_of(t)
            if t in clear_at:
                # clear acts at the end of the cycle: what was due in it is still driven
                expect = model.pending.get(t, {})
                model = SliceModel(config)
                models.append(model)
                model.cycle = t + 1
                ctx.set(dut.clear, 1)
                ctx.set(dut.issue.valid, 0)
                instr = None
            else:
                ctx.set(dut.clear, 0)
                ctx.set(dut.issue.valid, instr is not None)
                ctx.set(dut.issue.word, instr.encode() if instr is not None else 0)
            ctx.set(dut.e_in.as_value(), pack_bundle(config, inputs[0]))
            ctx.set(dut.w_in.as_value(), pack_bundle(config, inputs[1]))
            halted = halt_from is not None and t >= halt_from
            ctx.set(dut.halt, halted)
            if t not in clear_at:
                expect = model.step(instr, inputs, ended=halted)
            got = rtl_writes(ctx, dut, config)
            assert got.keys() == expect.keys(), (t, got.keys(), expect.keys())
            for key in got:
                np.testing.assert_array_equal(got[key], expect[key], err_msg=str((t, key)))
            seen.append(got)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return seen


@pytest.mark.parametrize("config, seed", [(DEFAULT, 0), (DEFAULT, 1), (SPAN3, 2), (SPAN3, 3),
                                          (PLANES, 4), (PLANES, 5), (INTEGER, 6)],
                         ids=["default-0", "default-1", "span3-2", "span3-3", "planes-4",
                              "planes-5", "integer-6"])
def test_rtl_random_programs_match_the_golden_model(config, seed):
    """Random lw/iw/abc/acc sequences (out-of-range rows, accumulators, planes and streams
    included, and on two planes both planes' sequences overlapping) with random stream inputs
    every cycle, a soft reset in the middle and ``halt`` (the queue's end) for the last cycles.
    Every plane gets whole weights first, and again after the soft reset. With floating point
    the sequences are of every type (int8, fp16, bf16; int32 and f32 drains) and the inputs
    :func:`random_inputs`' 16-bit patterns, special values included; the f32 drains read finite
    sums (:func:`test_rtl_float_special_values` makes sure of NaNs, infinities and zeros)."""
    rng = random.Random(seed)
    shape = (2, config.streams, config.superlanes, config.lanes_per_superlane)
    schedule = [random_instr(rng, config) if rng.random() < 0.6 else None for _ in range(200)]
    loads = -(-config.mxm_size // config.mxm_load_rows)
    for start in (0, 111):
        names = [rng.choice(typed_names("lw", config)) for _ in range(config.mxm_planes)]
        preamble = [item for p, name in enumerate(names)
                    for item in [isa.encode(name, p=p, row=0, n=loads, s=ref(
                        E, 2 * p if isa.OPS_BY_NAME[name].suffix else p))]
                    + [None] * (loads - 1)]
        preamble += [isa.encode("iw", p=p) for p in range(config.mxm_planes)]
        schedule[start:start + len(preamble)] = preamble
    np_rng = np.random.default_rng(seed)
    inputs = [random_inputs(np_rng, shape, config.floating_point)
              for _ in range(len(schedule) + config.superlanes + 2)]
    models = []
    seen = run_rtl(config, schedule, lambda t: inputs[t], clear_at=(110,), halt_from=185,
                   models=models)
    nonzero = sum(int(lanes.any()) for writes in seen for lanes in writes.values())
    assert nonzero > 25     # drains of what the computes wrote, not only zeros
    if config.floating_point:
        words = np.concatenate([w for model in models for w in model.f32_words]).view(np.uint32)
        finite = (words & 0x7F800000) != 0x7F800000
        assert (finite & (words != 0)).sum() > 10, words


@pytest.mark.parametrize("config", [INTEGER, DEFAULT, SPAN3], ids=["integer", "default",
                                                                     "span3"])
def test_rtl_drain_in_the_landing_cycle_sees_the_sum(config):
    """The RTL writes an accumulator one cycle after the architecture's landing cycle (its
    accumulate stage) and forwards the value being written to a drain: ``abc add=0`` then
    ``abc add=1`` on one accumulator in consecutive cycles, drained in the second's landing
    cycle, read twice the product; an ``abc`` drained in its landing cycle reads the product,
    a cycle early the old value (zero) on superlane 0; a soft reset in the cycle in which the
    stage writes drops the write. Every cycle is checked against the golden model, the values
    against numpy's."""
    span = isa.mxm_span(config)
    n = config.mxm_size
    rng = np.random.default_rng(11)
    w = rng.integers(-128, 128, size=(n, n), dtype=np.int8)     # plane row j = w[j]
    x = rng.integers(-128, 128, size=n, dtype=np.int8)
    program = {j: isa.encode("lw", p=0, row=j, s=ref(W, 0), n=1) for j in range(n)}
    feeds = {j: vector(config, w[j]) for j in range(n)}
    start = n + 1
    second = start + span + 2     # after the first pair has landed
    late = second + span + 2
    program |= {n: isa.encode("iw", p=0),
                start: isa.encode("abc", p=0, acc=1, add=0, s=ref(W, 0), n=1),
                start + 1: isa.encode("abc", p=0, acc=1, add=1, s=ref(W, 0), n=1),
                start + span + 1: isa.encode("acc", p=0, dst=ref(E, 0), acc=1, n=1),
                second: isa.encode("abc", p=0, acc=2, add=0, s=ref(W, 0), n=1),
                second + span: isa.encode("acc", p=0, dst=ref(E, 4), acc=2, n=1),
                late: isa.encode("abc", p=0, acc=0, add=0, s=ref(W, 0), n=1),
                late + span + 1: isa.encode("acc", p=0, dst=ref(E, 0), acc=0, n=1)}
    if span > 1:
        program[second + span - 1] = isa.encode("acc", p=0, dst=ref(E, 0), acc=2, n=1)
    feeds |= {t: vector(config, x) for t in (start, start + 1, second, late)}
    schedule = [program.get(t) for t in range(late + span + 3)]
    seen = run_rtl(config, schedule, w0_inputs(config, feeds), clear_at=(late + span,))
    product = wrap32(w.astype(np.int64) @ x.astype(np.int64))
    np.testing.assert_array_equal(group(config, seen, start + span + 1, ref(E, 0)),
                                  wrap32(2 * product.astype(np.int64)))
    np.testing.assert_array_equal(group(config, seen, second + span, ref(E, 4)), product)
    if span > 1:    # superlane 0 reads before the landing, the others (a cycle later) after
        early = np.where(np.arange(n) < config.lanes_per_superlane, 0, product)
        np.testing.assert_array_equal(group(config, seen, second + span - 1, ref(E, 0)), early)
    np.testing.assert_array_equal(group(config, seen, late + span + 1, ref(E, 0)), 0)
    assert product.any()


@pytest.mark.parametrize("config", [DEFAULT, SPAN3], ids=["default", "span3"])
def test_rtl_gemm_matches_numpy(config):
    """The tiled, double-buffered GEMM schedule on the RTL: acc results equal numpy's."""
    rng = np.random.default_rng(5)
    n = config.mxm_size
    a = rng.integers(-128, 128, size=(config.mxm_accumulators, 2 * n), dtype=np.int8)
    b = rng.integers(-128, 128, size=(2 * n, n), dtype=np.int8)
    plan = gemm_schedule(config, a.shape[0], 2)
    schedule, inputs_of = lower(config, plan, a, b)
    seen = run_rtl(config, schedule, inputs_of)
    np.testing.assert_array_equal(acc_results(config, schedule, seen),
                                  a.astype(np.int32) @ b.astype(np.int32))


# The floating-point mode (ISA v6) --------------------------------------------------------------

_FORMATS = {None: None, isa.DType.F16: fp.FP16, isa.DType.BF16: fp.BF16}


def _wide_value(total, nan=False, plus_inf=False, minus_inf=False):
    """A :data:`mxm_float.WIDE` bit pattern from a Python int total and the flags."""
    bits = total % (1 << mxm_float.WIDE_BITS)
    for i, flag in enumerate((nan, plus_inf, minus_inf)):
        bits |= int(flag) << (mxm_float.WIDE_BITS + i)
    return bits


def _signed_total(bits):
    total = bits & ((1 << mxm_float.WIDE_BITS) - 1)
    return total - (1 << mxm_float.WIDE_BITS) if total >> (mxm_float.WIDE_BITS - 1) else total


def run_comb(m, drive, probe, cases):
    """Simulate the combinational module ``m``: for each case ``drive(ctx, case)`` then
    ``probe(ctx)``; returns the probes."""
    results = []

    async def tb(ctx):
        for case in cases:
            drive(ctx, case)
            results.append(probe(ctx))
    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    return results


def _int8(bits):
    """The int8 in the low byte of ``bits``."""
    return (bits & 0xFF) - ((bits & 0x80) << 1)


def _pattern_cases(rng, count):
    """``(x, w, format code)``: every special pattern against every other in both float
    formats, and random patterns (any 16 bits, and moderate ones) in all three formats."""
    cases = [(x, w, code) for code in (1, 2) for x in SPECIAL_PATTERNS
             for w in SPECIAL_PATTERNS[::3]]
    for _ in range(count):
        code = rng.randrange(3)
        pool = [rng.randrange(1 << 16), rng.randrange(0x3800, 0x4800) | rng.randrange(2) << 15,
                rng.choice(SPECIAL_PATTERNS)]
        cases.append((rng.choice(pool), rng.choice(pool), code))
    return cases


def test_rtl_product_and_round_of_one_pair_match_the_accumulator():
    """:func:`mxm_float.decode`, :func:`mxm_float.superlane_sum` of one product and
    :func:`mxm_float.round_f32` against :meth:`opentsp.fp.Accumulator.add_product` and
    :meth:`~opentsp.fp.Accumulator.read` (int8: the exact product at ``2**0``, no flags),
    for special patterns against each other and random ones: the wide total and flags bit for
    bit, and the f32 word."""
    m = Module()
    x, w, fmt = Signal(16), Signal(16), Signal(mxm_float.FORMAT_BITS)
    q = mxm_float.superlane_sum(m, [mxm_float.decode(m, x, fmt, "x")],
                                [mxm_float.decode(m, w, fmt, "w")], None, "q")
    word = mxm_float.round_f32(m, q, "word")

    def drive(ctx, case):
        for signal, value in zip((x, w, fmt), case, strict=True):
            ctx.set(signal, value)
    cases = _pattern_cases(random.Random(41), 1500)
    got = run_comb(m, drive, lambda ctx: (ctx.get(q.as_value()), ctx.get(word)), cases)
    for (a, b, code), (bits, f32) in zip(cases, got, strict=True):
        acc = fp.Accumulator()
        fmt_ = _FORMATS[mxm_float.FORMATS[code]]
        if fmt_ is None:
            acc.total = (_int8(a) * _int8(b)) << -fp.MXM_ACC_LSB
        else:
            acc.add_product(a, b, fmt_)
        expect = _wide_value(acc.total, acc.nan, acc.plus_inf, acc.minus_inf)
        assert (bits, f32) == (expect, acc.read()), (hex(a), hex(b), code)


def _round_cases(rng):
    """Wide values for :func:`mxm_float.round_f32`: around every power of two of the range,
    exact ties (even and odd), rounding carries into the next binade and into 2**128, the
    smallest normal's neighbourhood, the most negative total, every flag combination."""
    lsb = fp.MXM_ACC_LSB
    cases = [(0, 0, 0, 0), (-(1 << 319), 0, 0, 0), ((1 << 319) - 1, 0, 0, 0)]
    cases += [(rng.randrange(-9, 10) << 100, *flags)
              for flags in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1)]]
    for top in range(0, 320):
        for _ in range(3):
            value = (1 << top) | rng.getrandbits(top) if top else 1
            cases.append((value * rng.choice((1, -1)), 0, 0, 0))
        if top >= 25:
            base = (1 << top) | rng.getrandbits(23) << (top - 23)
            for tail in (1 << (top - 24), (1 << (top - 24)) + 1, (1 << (top - 24)) - 1):
                cases.append((base + tail, 0, 0, 0))          # ties, just above, just below
                cases.append((-(base | 1 << (top - 23)) - tail, 0, 0, 0))
            cases.append((((1 << 24) - 1) << (top - 23) | 1 << (top - 24), 0, 0, 0))  # carry
    for edge in (-126 - lsb, 128 - lsb):
        for delta in range(-3, 4):
            value = (((1 << 24) - 1) << (edge - 24)) + delta * (1 << (edge - 26))
            cases += [(value, 0, 0, 0), (-value, 0, 0, 0)]
    half = 1 << (mxm_float.WIDE_BITS - 1)
    return [case for case in cases if -half <= case[0] < half]     # what the wide sums hold


def test_rtl_round_of_a_wide_value_matches_the_accumulator():
    """:func:`mxm_float.round_f32` equals :meth:`opentsp.fp.Accumulator.read` bit for bit:
    nearest even, carries, flushes to a signed zero below 2**-126, overflows to a signed
    infinity from 2**128 on, the flags' NaN and infinities."""
    m = Module()
    wide = Signal(mxm_float.WIDE)
    word = mxm_float.round_f32(m, wide, "word")
    cases = _round_cases(random.Random(43))
    got = run_comb(m, lambda ctx, case: ctx.set(wide.as_value(), _wide_value(*case)),
                   lambda ctx: ctx.get(word), cases)
    for (total, nan, plus, minus), f32 in zip(cases, got, strict=True):
        expect = fp.Accumulator(total, bool(nan), bool(plus), bool(minus)).read()
        assert f32 == expect, (hex(total), nan, plus, minus, hex(f32), hex(expect))
    assert {0x7F800000, 0xFF800000, 0x80000000, fp.FP32.nan} <= set(got)


def test_rtl_float_special_values():
    """bf16 products and sums at the edges, on the RTL (against the golden model cycle by
    cycle) and against :class:`opentsp.fp.Accumulator`: weight rows ``2**127`` (twice),
    ``+inf``, subnormal and smallest normal, ``1`` and ``-1``; activations whose sums round
    to an infinity (``2**127 + 2**127``) or whose product is one (``2**127 * 2``), an
    infinity times zero (NaN), products truncated to nothing below ``2**-160``, a negative sum
    below ``2**-126`` (``-0``), and an ``add`` of ``-inf`` onto ``+inf`` (NaN)."""
    config = DEFAULT
    span = isa.mxm_span(config)
    one, minus_one, two, big, inf, sub = 0x3F80, 0xBF80, 0x4000, 0x7F00, 0x7F80, 0x0001
    weights = np.array([[big, big, 0, 0], [inf, 0, 0, 0], [sub, 0x0080, 0, 0],
                        [one, minus_one, 0, 0]], dtype=np.uint16)      # row j: W[j][i]
    xs = np.array([[one, one, 0, 0], [two, 0, 0, 0], [0, minus_one, 0, 0],
                   [sub, 0x8001, one, 0], [0x8001, 0, 0, 0]], dtype=np.uint16)
    prog = Program(config)
    prog.load([weights.T], name="lw.bf16")
    t = prog.compute(0, 0, 6, xs, name="abc.bf16")
    prog.schedule += [None] * (len(xs) - 1 + span)
    prog.compute(0, 1, 6, [[minus_one, 0, 0, 0]], add=1, name="abc.bf16")  # onto element 1
    u = prog.issue("acc.f32", at=len(prog.schedule) + span, p=0, dst=ref(E, 0), acc=0,
                   n=len(xs))
    seen = prog.run()
    got = np.stack([group(config, seen, u + f, ref(E, 0))
                    for f in range(len(xs))]).view(np.uint32)
    expect = np.zeros_like(got)
    for e, x in enumerate(xs):
        for j, row in enumerate(weights):
            acc = fp.Accumulator()
            for a, b in zip(x, row, strict=True):
                acc.add_product(int(a), int(b), fp.BF16)
            if e == 1:
                acc.add_product(minus_one, int(row[0]), fp.BF16)
            expect[e, j] = acc.read()
    np.testing.assert_array_equal(got, expect)
    assert t == len(weights) + 1
    assert got[0, 0] == 0x7F800000 and got[1, 0] == 0x7F800000     # sum overflows; product
    assert got[2, 1] == fp.FP32.nan and got[1, 1] == fp.FP32.nan    # inf * 0; +inf - inf
    assert got[4, 3] == 0x80000000 and got[3, 2] == 0 and got[4, 1] == 0xFF800000
    assert got[2, 0] == 0xFF000000 and got[0, 2] == 0x00810000      # -2**127; 2**-126 + ...


def round_to_f32(exact):
    """The rational ``exact`` rounded once to fp32 (nearest, ties to even), as a numpy float32,
    independently of :mod:`opentsp.fp`; it must be a normal fp32 number or zero."""
    if exact == 0:
        return np.float32(0)
    magnitude = abs(exact)
    top = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** top > magnitude:
        top -= 1                                 # 2**top <= magnitude < 2**(top + 1)
    significand = round(magnitude / Fraction(2) ** (top - 23))     # round() ties to even
    value = significand * 2.0 ** (top - 23)      # exact in float64
    assert 2.0 ** -126 <= value < 2.0 ** 128
    return np.float32(value if exact > 0 else -value)


def float_operands(rng, dtype, shape):
    """Random 16-bit floats of ``dtype`` over a few binades, with zeros: numpy values (float16
    or ml_dtypes.bfloat16) and their bit patterns."""
    np_type = {isa.DType.F16: np.float16, isa.DType.BF16: ml_dtypes.bfloat16}[dtype]
    spread = 6 if dtype == isa.DType.F16 else 30
    values = rng.normal(size=shape) * 2.0 ** rng.integers(-spread, spread + 1, size=shape)
    values[rng.random(shape) < 0.05] = 0
    numbers = values.astype(np_type)
    return numbers, numbers.view(np.uint16)


@pytest.mark.parametrize("config", [DEFAULT, SPAN3, PLANES], ids=["default", "span3", "planes"])
@pytest.mark.parametrize("dtype", [isa.DType.F16, isa.DType.BF16], ids=["f16", "bf16"])
def test_rtl_float_gemm_matches_the_model_and_exact_sums(config, dtype):
    """C = A @ B in two K tiles (``lw.T`` of each tile's rows, ``iw``, then ``abc.T`` of every
    row of A, ``add`` from the second tile on) and ``acc.f32`` of every row. The RTL equals the
    golden model cycle by cycle (:func:`run_rtl`) and every result is the exact sum of the
    exact products (Python fractions from numpy's float16 / bfloat16 values as float64, which
    is exact) rounded once to fp32, which is also numpy's float32 of that sum."""
    rng = np.random.default_rng(31 + dtype.value)
    n, m, span = config.mxm_size, config.mxm_accumulators, isa.mxm_span(config)
    a, a_bits = float_operands(rng, dtype, (m, 2 * n))
    b, b_bits = float_operands(rng, dtype, (2 * n, n))
    prog = Program(config)
    for tile in range(2):
        prog.load([b_bits[tile * n:(tile + 1) * n]], name=f"lw.{dtype.suffix}")
        prog.compute(0, 0, 6, a_bits[:, tile * n:(tile + 1) * n], add=tile,
                     name=f"abc.{dtype.suffix}")
        prog.schedule += [None] * (m - 1)      # the sequence ends before the next iw
    u = prog.issue("acc.f32", at=len(prog.schedule) + span, p=0, dst=ref(E, 0), acc=0, n=m)
    seen = prog.run()
    got = np.stack([group(config, seen, u + f, ref(E, 0)) for f in range(m)]).view(np.uint32)
    fmt = _FORMATS[dtype]
    golden = np.array([[fp.mxm_dot32(a_bits[r], b_bits[:, j], fmt) for j in range(n)]
                       for r in range(m)], dtype=np.uint32)
    np.testing.assert_array_equal(got, golden)
    exact = [[sum((Fraction(float(a[r, i])) * Fraction(float(b[i, j])) for i in range(2 * n)),
                  Fraction(0)) for j in range(n)] for r in range(m)]
    reference = np.array([[round_to_f32(e) for e in row] for row in exact], dtype=np.float32)
    np.testing.assert_array_equal(got, reference.view(np.uint32))
    numpy_f32 = np.array([[np.float32(float(e)) for e in row] for row in exact], np.float32)
    np.testing.assert_array_equal(got, numpy_f32.view(np.uint32))
    rounded = sum(Fraction(float(f)) != e for f, e in zip(reference.ravel(),
                                                          np.ravel(exact), strict=True))
    assert rounded > got.size // 4 and (got != 0).all()    # most sums needed the rounding


# The GEMM example -----------------------------------------------------------------------------

def test_gemm_example_is_generated_and_matches_numpy():
    """firmware/examples/gemm.s is what firmware/gen_gemm.py writes, passes the checker and,
    on the golden model, stores numpy.matmul(A, B)."""
    from opentsp.firmware import gen_gemm
    from opentsp.firmware.asm import assemble_file

    a, b = gen_gemm.operands()
    assert gen_gemm.EXAMPLE.read_text() == gen_gemm.generate(a, b)
    program = assemble_file(gen_gemm.EXAMPLE, DEFAULT)
    assert check(program) == []
    result = run(program.image)
    np.testing.assert_array_equal(gen_gemm.result_from_memories(result.memories),
                                  np.matmul(a.astype(np.int32), b.astype(np.int32)))
    assert result.cycles == 33


def test_gemm_requant_example_is_generated_and_matches_numpy():
    """firmware/examples/gemm_requant.s is what gen_gemm_requant.py writes, passes the checker,
    and on the golden model gives the integer requantisation of numpy.matmul(A, B)."""
    from opentsp.firmware import gen_gemm, gen_gemm_requant
    from opentsp.firmware.asm import assemble_file

    a, b = gen_gemm.operands()
    assert gen_gemm_requant.EXAMPLE.read_text() == gen_gemm_requant.generate(a, b)
    program = assemble_file(gen_gemm_requant.EXAMPLE, DEFAULT)
    assert check(program) == []
    result = run(program.image)
    expect = gen_gemm_requant.reference(a, b)
    np.testing.assert_array_equal(gen_gemm_requant.result_from_memories(result.memories), expect)
    # The reference itself, from numpy floats: round(C * M / 2^32 / 2^S), ReLU, clip to int8.
    c = np.matmul(a.astype(np.float64), b.astype(np.float64))
    lanes = np.arange(c.shape[1]) % len(gen_gemm_requant.MULTIPLIER)
    scale = (np.array(gen_gemm_requant.MULTIPLIER, dtype=np.float64)[lanes] / 2.0 ** 32
             / 2.0 ** np.array(gen_gemm_requant.SHIFT)[lanes])
    approx = np.clip(np.round(c * scale), 0, 127)
    assert np.abs(approx - expect).max() <= 1      # floor in mulh: at most one step apart
