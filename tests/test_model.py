"""Golden model: stream timing, every implemented instruction, stagger, cycle count."""

import re
from fractions import Fraction
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from opentsp import fp, isa, packing
from opentsp.config import CONFIGS
from opentsp.firmware.asm import assemble_file
from opentsp.firmware.image import Image
from opentsp.sim.model import CycleLimitError, Model, run

CFG = CONFIGS["default"]
E, W = isa.Dir.E, isa.Dir.W
POS = {s.name: s.position for s in isa.floorplan(CFG)}
MEMS = [s.name for s in isa.mem_slices(CFG)]


def make_image(programs, data=None, config=CFG):
    """An image from {slice name: [(mnemonic, fields)...]} and {(slice, addr): bytes}."""
    queues = []
    for slice_ in isa.queues(config):
        program = [isa.encode(name, **fields) for name, fields in programs.get(slice_.name, [])]
        queues.append(program + [isa.encode("end")])
    mems = [s.name for s in isa.mem_slices(config)]
    records = {(mems.index(name), addr): np.asarray(value, dtype=np.uint8)
               for (name, addr), value in (data or {}).items()}
    return Image(config, queues, records)


def s(direction, stream):
    return isa.StreamRef(direction, stream)


def vec(values, config=CFG):
    return np.asarray(values, dtype=np.int64).astype(np.uint8) if len(values) == config.lanes \
        else np.resize(np.asarray(values, dtype=np.int64).astype(np.uint8), config.lanes)


def test_value_moves_one_hop_per_cycle_east_until_the_edge():
    value = vec(range(1, 9))
    image = make_image({"MEM_W1": [("nop", {"count": 3}), ("read", {"s": s(E, 2), "addr": 7})],
                        "VXM": [("nop", {"count": 20})]},
                       {("MEM_W1", 7): value})
    result = Model(image, trace="streams").run()
    trace = result.trace
    issue = 3
    # Superlane 0's lanes at every position p >= MEM_W1 one cycle per hop after issue + L.
    p0 = POS["MEM_W1"]
    for record in trace:
        regs = record.streams[int(E), :, 2]
        for p in range(len(POS)):
            hop_cycle = issue + isa.MEM_READ_LATENCY + (p - p0)
            expect = value[:4] if p >= p0 and record.cycle == hop_cycle else 0
            assert np.array_equal(regs[p, :4], np.broadcast_to(expect, 4)), (record.cycle, p)
    assert len(trace) == result.cycles == 20 + CFG.superlanes - 1 + isa.DRAIN  # VXM ends last


def test_superlane_k_runs_k_cycles_later():
    value = vec(range(10, 18))
    image = make_image({"MEM_E1": [("read", {"s": s(W, 0), "addr": 0})],
                        "VXM": [("nop", {"count": 30})]},
                       {("MEM_E1", 0): value})
    trace = Model(image, trace="streams").run().trace
    p0 = POS["MEM_E1"]
    lps = CFG.lanes_per_superlane
    for k in range(CFG.superlanes):
        lanes = slice(k * lps, (k + 1) * lps)
        for hops in range(p0 + 1):
            cycle = 0 + isa.MEM_READ_LATENCY + k + hops
            assert np.array_equal(trace[cycle].streams[int(W), p0 - hops, 0, lanes], value[lanes])
            assert not trace[cycle - 1].streams[int(W), p0 - hops, 0, lanes].any()


def test_write_reads_its_input_at_issue_and_commits_one_cycle_later():
    value = vec([5, 6, 7, 8, 9, 10, 11, 12])
    # MEM_W0 reads at 0 -> readable at MEM_E0 (2 hops) at 0 + 1 + 2 = 3.
    programs = {
        "MEM_W0": [("read", {"s": s(E, 1), "addr": 3})],
        "MEM_E0": [("nop", {"count": 3}), ("write", {"addr": 9, "s": s(E, 1)}),
                   ("write", {"addr": 10, "s": s(E, 1)})],
    }
    result = run(make_image(programs, {("MEM_W0", 3): value}))
    assert np.array_equal(result.memory("MEM_E0")[9], value)
    assert not result.memory("MEM_E0")[10].any()     # one cycle late: the value has passed


def test_overwrite_replaces_the_value_downstream():
    # MEM_W1's value reaches MEM_W0's input in cycle 2; MEM_W0 writes the same stream at the
    # end of cycle 2 (read at 1, L = 1), so only MEM_W0's value travels on to MEM_E0.
    programs = {
        "MEM_W1": [("read", {"s": s(E, 0), "addr": 0})],
        "MEM_W0": [("nop", {"count": 1}), ("read", {"s": s(E, 0), "addr": 1})],
        "MEM_E0": [("nop", {"count": 4}), ("write", {"addr": 0, "s": s(E, 0)})],
    }
    data = {("MEM_W1", 0): vec([1] * 8), ("MEM_W0", 1): vec([2] * 8)}
    result = run(make_image(programs, data))
    assert np.array_equal(result.memory("MEM_E0")[0], vec([2] * 8))


def test_read_sees_old_word_when_a_write_commits_in_the_same_cycle():
    programs = {
        "MEM_W1": [("read", {"s": s(E, 0), "addr": 4})],        # at MEM_W0 (1 hop) in cycle 2
        "MEM_W0": [("nop", {"count": 2}), ("write", {"addr": 6, "s": s(E, 0)}),
                   ("read", {"s": s(E, 1), "addr": 6}),          # commit lands end of 3
                   ("read", {"s": s(E, 2), "addr": 6})],
        "MEM_E0": [("nop", {"count": 6}), ("write", {"addr": 0, "s": s(E, 1)}),
                   ("write", {"addr": 1, "s": s(E, 2)})],
    }
    data = {("MEM_W1", 4): vec([9] * 8), ("MEM_W0", 6): vec([3] * 8)}
    result = run(make_image(programs, data))
    assert np.array_equal(result.memory("MEM_E0")[0], vec([3] * 8))   # old word
    assert np.array_equal(result.memory("MEM_E0")[1], vec([9] * 8))   # new word


@pytest.mark.parametrize("func", [f for f in isa.VXM_FUNCS if f not in isa.VXM_F32_ONLY])
@pytest.mark.parametrize("dtype", [isa.DType.I8, isa.DType.I16, isa.DType.I32])
def test_vxm_ops_match_numpy(func, dtype):
    rng = np.random.default_rng(isa.VXM_FUNCS.index(func) * 3 + int(dtype))
    info = np.iinfo(packing.NP_DTYPE[dtype])
    extremes = [info.min, info.max, 0, -1, 1, info.min + 1, info.max - 1, 2]
    a = np.array(extremes[:CFG.lanes], dtype=packing.NP_DTYPE[dtype])
    b = rng.integers(info.min, info.max, CFG.lanes, endpoint=True).astype(packing.NP_DTYPE[dtype])
    b[::3] = a[::3]         # some equal lanes (cmpeq); shift amounts 0, bits - 1, bits - 2
    rtype = {isa.DType.I8: isa.DType.I32, isa.DType.I16: isa.DType.I8,
             isa.DType.I32: isa.DType.I8}[dtype] if func == "cvt" else dtype
    got = packing.unpack(run_vxm_chip(func, dtype, rtype, a, None if func in isa.VXM_UNARY
                                  else b), rtype)
    wide, wb = a.astype(np.int64), b.astype(np.int64)
    bits = 8 * dtype.bytes
    n = wb % bits                       # shift amounts, 0..bits-1
    expect = {
        "add": lambda: wide + wb, "sub": lambda: wide - wb, "mul": lambda: wide * wb,
        "min": lambda: np.minimum(wide, wb), "max": lambda: np.maximum(wide, wb),
        "relu": lambda: np.maximum(wide, 0),
        "cvt": lambda: np.clip(wide, *(lambda i: (i.min, i.max))(
            np.iinfo(packing.NP_DTYPE[rtype]))),
        "neg": lambda: -wide, "abs": lambda: np.abs(wide),
        "shl": lambda: wide * 2 ** n, "shr": lambda: wide // 2 ** n,
        "rshr": lambda: (wide + 2 ** n // 2) // 2 ** n,     # n = 0: (a + 0) // 1
        "mulh": lambda: wide * wb // 2 ** bits,             # |product| <= 2^62 fits int64
        "and": lambda: wide & wb, "or": lambda: wide | wb, "xor": lambda: wide ^ wb,
        "cmpeq": lambda: np.where(wide == wb, -1, 0), "cmpgt": lambda: np.where(wide > wb, -1, 0),
    }[func]()
    rbits = 8 * rtype.bytes
    expect = ((expect + (1 << (rbits - 1))) % (1 << rbits)) - (1 << (rbits - 1))
    assert np.array_equal(got.astype(np.int64), expect), (got, expect)


#: Inputs of the f32 functions: 8 lanes, normal values where each function is defined.
_FUNCTION_INPUTS = {
    "exp": [0.0, 1.0, -1.0, 0.5, 10.0, -20.0, 88.0, -87.0],
    "tanh": [0.0, 1.0, -1.0, 0.25, 3.0, -0.001, 9.0, -15.0],
    "recip": [1.0, -3.0, 0.1, 7.0, 1e30, -2.5e-30, 1.5, 1e-37],
    "rsqrt": [1.0, 4.0, 2.0, 0.1, 1e30, 3e-30, 123.0, 1e-37],
}


@pytest.mark.parametrize("func", isa.VXM_F32_ONLY)
def test_vxm_f32_functions_match_numpy(func):
    """The golden chip's exp, tanh, recip and rsqrt: opentsp.fp's algorithm, and within one ulp
    of numpy's float64 function rounded to float32."""
    x = np.array(_FUNCTION_INPUTS[func], dtype=np.float32)
    got = packing.unpack(run_vxm_chip(func, isa.DType.F32, isa.DType.F32,
                                      x.view(np.int32), None), isa.DType.F32)
    assert np.array_equal(got.view(np.uint32), getattr(fp, {
        "exp": "exp32", "tanh": "tanh32", "recip": "reciprocal32", "rsqrt": "rsqrt32"}[func])(
        x.view(np.uint32)))
    wide = x.astype(np.float64)
    reference = {"exp": np.exp, "tanh": np.tanh, "recip": lambda v: 1 / v,
                 "rsqrt": lambda v: 1 / np.sqrt(v)}[func](wide).astype(np.float32)
    ulps = np.abs(got.view(np.int32).astype(np.int64) - reference.view(np.int32))
    assert ulps.max() <= 1, (x, got.view(np.float32), reference)


@pytest.mark.parametrize("half", [isa.DType.F16, isa.DType.BF16])
def test_vxm_converts_halves_as_numpy(half):
    """cvt f32 -> f16/bf16 rounds as numpy (ml_dtypes for bf16) does, and back is exact."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    np_half = np.float16 if half is isa.DType.F16 else ml_dtypes.bfloat16
    x = np.array([1.0, -2.5, 1 / 3, 65504.0, 70000.0, 1e-6, -0.0, 3.0e38], dtype=np.float32)
    with np.errstate(over="ignore"):
        expected = x.astype(np_half)
    narrow = run_vxm_chip("cvt", isa.DType.F32, half, x.view(np.int32), None)
    assert np.array_equal(packing.unpack(narrow, half).view(np.uint16), expected.view(np.uint16))
    wide = run_vxm_chip("cvt", half, isa.DType.F32, packing.unpack(narrow, half), None)
    assert np.array_equal(packing.unpack(wide, isa.DType.F32).view(np.float32),
                          expected.astype(np.float32))


def timed(events):
    """Queue programs from {slice: [(cycle, mnemonic, fields)]}: nops fill the gaps."""
    programs = {}
    for name, items in events.items():
        program, slot = [], 0
        for cycle, mnemonic, fields in sorted(items, key=lambda item: item[0]):
            assert cycle >= slot, (name, cycle, slot)
            if cycle > slot:
                program.append(("nop", {"count": cycle - slot}))
            program.append((mnemonic, fields))
            slot = cycle + 1
        programs[name] = program
    return programs


def run_vxm_chip(func, dtype, rtype, a, b, config=CFG):
    """One VXM op on the golden model. Byte i of operand a lives in MEM_Wi and travels on
    eastward stream i, byte i of b in MEM_Ei on westward stream i; all bytes reach the VXM in
    cycle T. The result leaves on eastward streams 4.. and MEM_Ei stores its byte i."""
    pos = {sl.name: sl.position for sl in isa.floorplan(config)}
    mems = [sl.name for sl in isa.mem_slices(config)]
    target = 8
    events = {name: [] for name in mems}
    data = {}
    operands = [("a", packing.pack(a, dtype), E, "MEM_W")]
    if b is not None:
        operands.append(("b", packing.pack(b, dtype), W, "MEM_E"))
    for _, planes, direction, prefix in operands:
        for i, plane in enumerate(planes):
            name = f"{prefix}{i}"
            data[(name, 16 + i)] = plane
            hops = abs(pos["VXM"] - pos[name])
            events[name].append((target - isa.MEM_READ_LATENCY - hops, "read",
                                 {"s": s(direction, i), "addr": 16 + i}))
    fields = {"dtype": dtype, "dst": s(E, 4), "a": s(E, 0)}
    if b is not None:
        fields["b"] = s(W, 0)
    if func == "cvt":
        fields["rtype"] = rtype
    events["VXM"] = [(target, func, fields)]
    for i in range(rtype.bytes):
        name = f"MEM_E{i}"
        hops = pos[name] - pos["VXM"]
        events[name].append((target + isa.VXM_LATENCY + hops, "write",
                             {"addr": 32, "s": s(E, 4 + i)}))
    result = run(make_image(timed(events), data, config))
    planes = np.stack([result.memory(f"MEM_E{i}")[32] for i in range(rtype.bytes)])
    return planes


def test_groq_configuration_runs_a_small_program():
    groq = CONFIGS["groq"]
    value = (np.arange(groq.lanes) * 7).astype(np.uint8)
    # MEM_W43 -> MEM_E43 crosses the whole chip: 44 + 44 hops.
    pos = {sl.name: sl.position for sl in isa.floorplan(groq)}
    hops = pos["MEM_E43"] - pos["MEM_W43"]
    image = make_image({"MEM_W43": [("read", {"s": s(E, 31), "addr": 8191})],
                        "MEM_E43": [("nop", {"count": 1 + hops}),
                                    ("write", {"addr": 4096, "s": s(E, 31)})]},
                       {("MEM_W43", 8191): value}, config=groq)
    result = run(image)
    assert np.array_equal(result.memory("MEM_E43")[4096], value)
    assert result.cycles == 1 + hops + 1 + groq.superlanes - 1 + isa.DRAIN


def test_cycle_limit_stops_a_long_program():
    image = make_image({"VXM": [("nop", {"count": 65535})]})
    with pytest.raises(CycleLimitError, match="did not finish within 1000 cycles"):
        run(image, max_cycles=1000)


def test_repeat_streams_a_vector_every_d_cycles():
    # MEM_W0 reads word 0 at cycles 0, 3, 6; MEM_E0 (2 hops) writes at 3, 6, 9 into 0, 1, 2 with
    # a repeat whose address does not change, so only the timing is exercised.
    programs = {
        "MEM_W0": [("read", {"s": s(E, 3), "addr": 0}), ("repeat", {"n": 2, "d": 3})],
        "MEM_E0": [("nop", {"count": 3}), ("write", {"addr": 5, "s": s(E, 3)}),
                   ("repeat", {"n": 2, "d": 3})],
    }
    model = Model(make_image(programs, {("MEM_W0", 0): vec([4] * 8)}), trace=True)
    result = model.run()
    issued = [(r.cycle, name, str(instr)) for r in result.trace for name, instr in r.issued]
    assert issued == [(0, "MEM_W0", "read e3, 0"), (3, "MEM_W0", "read e3, 0"),
                      (3, "MEM_E0", "write 5, e3"), (6, "MEM_W0", "read e3, 0"),
                      (6, "MEM_E0", "write 5, e3"), (9, "MEM_E0", "write 5, e3")]
    assert np.array_equal(result.memory("MEM_E0")[5], vec([4] * 8))
    # END of MEM_E0 is in slot 3 + 1 + 6 = 10.
    assert result.cycles == 10 + CFG.superlanes - 1 + isa.DRAIN


def test_requant_example_gives_its_documented_result():
    """firmware/examples/requant.s: the int8 result and mask in memory are numpy's, and the
    lines of its header comment say so."""
    path = Path(__file__).parent.parent / "firmware" / "examples" / "requant.s"
    program = assemble_file(path)
    result = run(program.image)
    x = np.array([289626, 8000, 2147483647, -2147483648, 144000, 5800, 1448, -300000])
    m = np.array([1518500250] * 2 + [1 << 30, (1 << 31) - 1] + [1518500250] * 3 + [1288490189])
    shift = np.array([10] * 6 + [9, 10])
    exact = x.astype(object) * m.astype(object) / 2 ** 32 / 2 ** shift.astype(object)
    q = np.clip([int(np.floor(float(v) + 0.5)) for v in exact], 0, 127)
    y = np.where(q > 2, q, -1)
    mask = np.where(q > 2, -1, 0)
    sym = program.symbols
    assert list(result.memory("MEM_E0")[sym["Q"]].view(np.int8)) == list(q)
    assert list(result.memory("MEM_W1")[sym["K"]].view(np.int8)) == list(mask)
    assert list(result.memory("MEM_E0")[sym["Y"]].view(np.int8)) == list(y)
    header = dict(re.findall(r"^;\s+(q|mask|y)\s+= (-?\d+(?:, -?\d+)*)", path.read_text(),
                             re.MULTILINE))
    assert header == {"q": ", ".join(map(str, q)), "mask": ", ".join(map(str, mask)),
                      "y": ", ".join(map(str, y))}


# ALU chaining --------------------------------------------------------------------------------

def test_vxm_chain_example_requantises_in_four_steps_two_cycles_apart():
    """firmware/examples/vxm_chain.s: three instructions take the result `r` of two cycles
    before."""
    from opentsp.firmware.checker import check

    program = assemble_file(Path(__file__).parent.parent / "firmware/examples/vxm_chain.s", CFG)
    assert check(program) == []
    vxm = program.image.queues[[q.name for q in isa.queues(CFG)].index("VXM")]
    assert [i.chained for i in vxm if i.op.unit == isa.Unit.VXM] == [False, True, True, True]
    x = np.array([1000, -2000, 300000, 5, 6, 7, 8, 9], dtype=np.int64)
    n = 3
    expect = np.clip(np.maximum((x * 3 + (1 << (n - 1))) >> n, 0), -128, 127)
    got = run(program.image).memory("MEM_E0")[8].view(np.int8)
    np.testing.assert_array_equal(got, expect)


def test_chained_operand_is_the_previous_result_as_the_new_type():
    """A chained i8 op two cycles after an i32 op reads the low byte of the sign-extended
    result."""
    programs = {
        "MEM_W0": [("read", {"s": s(E, 0), "addr": 0})],          # at the VXM in cycle 2
        "VXM": [("nop", {"count": 2}),
                ("sub", {"dtype": isa.DType.I8, "dst": s(W, 0), "a": s(E, 0), "b": s(E, 1)}),
                ("nop", {"count": 1}),
                ("add", {"dtype": isa.DType.I32, "dst": s(E, 4), "a": 0, "chain": 1,
                         "b": s(W, 0)})],
        # The i32 add's group e4..e7 reaches MEM_E0..E3 (1..4 hops) in cycles 6..9.
        "MEM_E0": [("nop", {"count": 6}), ("write", {"addr": 1, "s": s(E, 4)})],
        "MEM_E1": [("nop", {"count": 7}), ("write", {"addr": 1, "s": s(E, 5)})],
    }
    value = vec([-3, 5, -128, 127, 0, 1, -1, 2])
    result = run(make_image(programs, {("MEM_W0", 0): value}))
    low = result.memory("MEM_E0")[1].view(np.int8)
    high = result.memory("MEM_E1")[1]
    np.testing.assert_array_equal(low, value.view(np.int8))          # a - 0, plus 0 (b = 0)
    np.testing.assert_array_equal(high, np.where(value.view(np.int8) < 0, 0xFF, 0))


def test_two_chains_interleave_and_a_chain_after_a_gap_reads_the_last_result():
    """`r` in cycle c is the result of the VXM instruction of c - 2 or earlier (ISA v8): A in
    2 and 4, B in 3 and 5 chain side by side; the step in 8 reads B's result of 5. Against
    numpy's int8 arithmetic (wrapping, abs(-128) = -128)."""
    x = np.array([-128, -3, 0, 1, 5, 64, 100, 127], dtype=np.int8)
    programs = {
        "MEM_W0": [("read", {"s": s(E, 0), "addr": 0}),          # x at the VXM in 2 and 3
                   ("read", {"s": s(E, 0), "addr": 0})],
        "VXM": [("nop", {"count": 2}),
                ("add", {"dtype": isa.DType.I8, "dst": s(W, 0), "a": s(E, 0), "b": s(E, 0)}),
                ("neg", {"dtype": isa.DType.I8, "dst": s(W, 0), "a": s(E, 0)}),
                ("neg", {"dtype": isa.DType.I8, "dst": s(E, 4), "a": 0, "chain": 1}),
                ("abs", {"dtype": isa.DType.I8, "dst": s(E, 5), "a": 0, "chain": 1}),
                ("nop", {"count": 2}),
                ("neg", {"dtype": isa.DType.I8, "dst": s(E, 6), "a": 0, "chain": 1})],
        # Results of 4, 5 and 8 reach MEM_E0 (1 hop) in 6, 7 and 10.
        "MEM_E0": [("nop", {"count": 6}), ("write", {"addr": 1, "s": s(E, 4)}),
                   ("write", {"addr": 2, "s": s(E, 5)}), ("nop", {"count": 2}),
                   ("write", {"addr": 3, "s": s(E, 6)})],
    }
    memory = run(make_image(programs, {("MEM_W0", 0): vec(x.view(np.uint8))})).memory("MEM_E0")
    with np.errstate(over="ignore"):
        chain_a = -(x + x)                          # add in 2, neg of it in 4
        chain_b = np.abs(-x)                        # neg in 3, abs of it in 5
        after_gap = -chain_b                        # 8 reads 5's result: nothing ran in 6, 7
    np.testing.assert_array_equal(memory[1].view(np.int8), chain_a)
    np.testing.assert_array_equal(memory[2].view(np.int8), chain_b)
    np.testing.assert_array_equal(memory[3].view(np.int8), after_gap)


# MEM: gather, scatter and the address sequencers (section 6a) -------------------------------------

def test_gather_and_scatter_against_numpy_fancy_indexing():
    """Random int16 addresses (beyond mem_words too: taken modulo) from MEM_W1 (low bytes) and
    MEM_W2 (high bytes); MEM_E0 gathers from its memory in cycle 5, MEM_E1 scatters MEM_W0's
    word 1 in cycle 6 (the same address pair, one hop later)."""
    rng = np.random.default_rng(11)
    addrs = rng.integers(0, 1 << 16, CFG.lanes)
    addrs[:2] = [CFG.mem_words + 3, 3]          # two lanes on one word, one through the wrap
    table = rng.integers(0, 256, (CFG.mem_words, CFG.lanes))
    src = rng.integers(0, 256, CFG.lanes)
    data = {("MEM_W1", 0): addrs & 0xFF, ("MEM_W2", 0): addrs >> 8, ("MEM_W0", 1): src}
    data.update({("MEM_E0", w): table[w] for w in range(CFG.mem_words)})
    image = make_image({
        "MEM_W2": [("read", dict(s=s(E, 1), addr=0))],
        "MEM_W1": [("nop", dict(count=1)), ("read", dict(s=s(E, 0), addr=0))],
        "MEM_W0": [("nop", dict(count=2)), ("read", dict(s=s(E, 2), addr=1)),
                   ("nop", dict(count=5)), ("write", dict(addr=9, s=s(W, 0)))],
        "MEM_E0": [("nop", dict(count=5)), ("gather", dict(s=s(W, 0), a=s(E, 0)))],
        "MEM_E1": [("nop", dict(count=6)), ("scatter", dict(a=s(E, 0), s=s(E, 2)))],
    }, data)
    result = run(image)
    lanes = np.arange(CFG.lanes)
    words = addrs % CFG.mem_words
    np.testing.assert_array_equal(result.memory("MEM_W0")[9], table[words, lanes])
    expected = np.zeros((CFG.mem_words, CFG.lanes), dtype=np.uint8)
    expected[words, lanes] = src
    np.testing.assert_array_equal(result.memory("MEM_E1"), expected)


def test_sequences_follow_numpy_index_grid_and_port_priority():
    """MEM_W0 streams a 3 x 2 grid (stride 5, row stride 16) east; MEM_E0 stores each element
    with a write sequence (stride -1 as mem_words - 1). A plain read in the middle takes MEM_W0's
    port (that element is lost, the others keep their cycles); the end cuts MEM_E0's last."""
    words = CFG.mem_words
    data = {("MEM_W0", w): np.full(CFG.lanes, w + 1) for w in range(words)}
    start, stride, count, ostride, ocount = 60, 5, 3, 16, 2
    image = make_image({
        "MEM_W0": [("agi", dict(g=0, stride=stride, count=count)),
                   ("ago", dict(g=0, stride=ostride, count=ocount)),
                   ("sread", dict(s=s(E, 0), addr=start)),        # elements in cycles 2..7
                   ("nop", dict(count=2)),
                   ("read", dict(s=s(E, 1), addr=0)),             # cycle 5: element 3 lost
                   ("nop", dict(count=2))],
        "MEM_E0": [("agi", dict(g=1, stride=words - 1, count=6)),
                   ("nop", dict(count=4)),
                   ("swrite", dict(addr=40, s=s(E, 0))),          # cycles 5..10, reads 5 + e
                   ("nop", dict(count=4))],                       # end in cycle 10: 5 elements
    }, data)
    result = run(image)
    i, j = np.meshgrid(np.arange(count), np.arange(ocount))
    grid = ((start + i * stride + j * ostride) % words).ravel()
    got = result.memory("MEM_E0")[[(40 - e) % words for e in range(6)], 0]
    expected = [w + 1 for w in grid]
    expected[3] = 0                   # lost to the plain read: e0 carries nothing that cycle
    expected[5] = 0                   # cut off by MEM_E0's end: word 35 keeps its 0
    assert list(got) == expected


def test_mxm_bf16_example_sums_exactly_and_rounds_once():
    """firmware/examples/mxm_bf16.s on the golden model: y = W x from bf16, against the exact
    sum (Python fractions of numpy's own bf16 values) rounded once to float32, and not what
    float32 additions in lane order give."""
    program = assemble_file(Path(__file__).parent.parent / "firmware" / "examples" /
                            "mxm_bf16.s", CFG)
    result = run(program.image)
    names = [s.name for s in isa.mem_slices(CFG)]
    planes = np.stack([result.memories[names.index(f"MEM_W{i}"), 8] for i in range(4)])
    y = packing.unpack(planes, isa.DType.F32).view(np.float32)

    def bf16(word):
        planes = np.stack([result.memories[names.index(f"MEM_W{i}"), word] for i in range(2)])
        return packing.unpack(planes, isa.DType.BF16).view(ml_dtypes.bfloat16)[:4]

    weights, x = np.stack([bf16(j) for j in range(4)]), bf16(4)
    exact = [sum(Fraction(float(w)) * Fraction(float(v)) for w, v in zip(row, x, strict=True))
             for row in weights]
    assert list(y[:4]) == [np.float32(float(e)) for e in exact] == [1.0, 0.25, 2.0**30, -4.8125]
    assert not y[4:].any()
    in_order = [np.float32(0)] * 2
    for j in range(2):
        for w, v in zip(weights[j], x, strict=True):
            in_order[j] = np.float32(in_order[j] + np.float32(w) * np.float32(v))
    assert in_order == [0.0, 0.0]
