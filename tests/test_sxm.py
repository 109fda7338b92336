"""The SXM (docs/architecture.md section 7b): lane movements against independent numpy
references on several configurations (``groq`` included), the latency rule in the golden
model and the checker, the checker's permutation rule, assembler errors, the examples, and the
RTL slice against the golden model cycle by cycle and against numpy."""

import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from opentsp import isa
from opentsp.config import CONFIGS, Config
from opentsp.firmware.asm import AsmError, assemble, assemble_file
from opentsp.firmware.checker import RULE_SXM_PERMUTATION, check
from opentsp.hdl.sxm import SxmSlice
from opentsp.sim import sxm
from opentsp.sim.model import run

DEFAULT = CONFIGS["default"]
#: One superlane (latency 1, nothing to wait for).
ONE = Config(name="one", superlanes=1, lanes_per_superlane=4, streams=8, mem_slices=1,
             mem_words=16, queue_depth=16)
#: Three superlanes of three lanes: 9 lanes (not a power of two), transpose blocks that cross
#: superlanes and a last partial block.
ODD = Config(name="odd", superlanes=3, lanes_per_superlane=3, streams=8, mem_slices=1,
             mem_words=16, mxm_size=3, queue_depth=16)
CONFIG_IDS = ["default", "one", "odd", "medium", "groq"]
ALL = [DEFAULT, ONE, ODD, CONFIGS["medium"], CONFIGS["groq"]]
E, W = isa.Dir.E, isa.Dir.W
EXAMPLES = Path(__file__).parent.parent / "firmware" / "examples"


def ref(direction, ident):
    return isa.StreamRef(direction, ident)


# Independent references ------------------------------------------------------------------------

def ref_shiftu(a, n):
    return np.concatenate([np.zeros(min(n, len(a)), np.uint8), a[:max(len(a) - n, 0)]])


def ref_shiftd(a, n):
    return np.concatenate([a[n:], np.zeros(min(n, len(a)), np.uint8)])


def ref_distribute(a, table, lps):
    out = np.zeros_like(a)
    for sl in range(len(a) // lps):
        block = a[sl * lps:(sl + 1) * lps]
        for j in range(lps):
            entry = table[sl * lps + j]
            out[sl * lps + j] = block[entry] if entry < lps else 0
    return out


def ref_transpose(planes):
    """4 streams x lanes: every 4x4 block (lanes 4b..4b+3, zero-padded) transposed."""
    lanes = planes.shape[1]
    padded = np.zeros((4, -(-lanes // 4) * 4), np.uint8)
    padded[:, :lanes] = planes
    blocks = padded.reshape(4, -1, 4)              # stream, block, lane in block
    return blocks.transpose(2, 1, 0).reshape(4, -1)[:, :lanes]


@pytest.mark.parametrize("config", ALL, ids=CONFIG_IDS)
def test_movements_match_numpy(config):
    rng = np.random.default_rng(config.lanes)
    lanes = config.lanes
    a = rng.integers(0, 256, size=lanes, dtype=np.uint8)
    one = a[None]
    for n in sorted({0, 1, config.lanes_per_superlane, lanes - 1, lanes, 511}):
        np.testing.assert_array_equal(sxm.movement("shiftu", config, one, n)[0],
                                      ref_shiftu(a, n))
        np.testing.assert_array_equal(sxm.movement("shiftd", config, one, n)[0],
                                      ref_shiftd(a, n))
        np.testing.assert_array_equal(sxm.movement("rotate", config, one, n)[0],
                                      np.roll(a, n))
    perm = rng.permutation(lanes)
    np.testing.assert_array_equal(sxm.movement("permute", config, one, perm=perm)[0], a[perm])
    # not a permutation: a gather, entries >= lanes give zero (the documented behaviour)
    gather = rng.integers(0, lanes + 3, size=lanes)
    expect = np.where(gather < lanes, a[np.minimum(gather, lanes - 1)], 0)
    np.testing.assert_array_equal(sxm.movement("permute", config, one, perm=gather)[0], expect)
    table = rng.integers(0, config.lanes_per_superlane + 2, size=lanes)
    np.testing.assert_array_equal(sxm.movement("distribute", config, one, dist=table)[0],
                                  ref_distribute(a, table, config.lanes_per_superlane))
    planes = rng.integers(0, 256, size=(4, lanes), dtype=np.uint8)
    np.testing.assert_array_equal(sxm.movement("transpose", config, planes),
                                  ref_transpose(planes))
    assert sxm.movement("rotate", config, one, 3)[0][3 % lanes] == a[0]


def test_latency_is_the_superlane_count_and_only_for_sxm_producers():
    for config in ALL:
        for op in isa.OPS:
            got = isa.latency(op, config)
            if op.unit == isa.Unit.SXM:
                assert got == (config.superlanes if op.writes else None), op.mnemonic
            else:
                assert got == op.latency
    assert [s.name for s in isa.queues(DEFAULT)][:2] == ["MXM_W", "SXM_W"]
    assert isa.unit_of(isa.queues(DEFAULT)[-2]) == isa.Unit.SXM


# Programs on the whole chip (golden model + checker) ------------------------------------------

ROTATE = """
.data MEM_W{m}, 0, u8: {values}
.queue MEM_W{m}
    read w0, 0
.queue SXM_W
.at {t}
    rotate e1, w0, 3
.queue MEM_W{m}
.at {w}
    write 1, e1
"""


@pytest.mark.parametrize("config", [DEFAULT, ONE, ODD, CONFIGS["medium"]],
                         ids=CONFIG_IDS[:4])
def test_result_is_readable_latency_plus_hops_after_issue(config):
    """SXM_W (position 1) rotates a word read by the MEM slice next to it (position 2):
    readable there L + 1 cycles after issue with L = superlanes, and not one cycle earlier."""
    m = config.mem_slices - 1
    values = ", ".join(str(v) for v in range(1, config.lanes + 1))
    latency = config.superlanes
    source = ROTATE.format(m=m, values=values, t=2, w=2 + latency + 1)
    program = assemble(source, config)
    assert check(program) == []
    result = run(program.image)
    np.testing.assert_array_equal(result.memory(f"MEM_W{m}")[1],
                                  np.roll(np.arange(1, config.lanes + 1), 3))
    early = assemble(ROTATE.format(m=m, values=values, t=2, w=2 + latency), config)
    (error,) = check(early)
    assert error.rule == 1 and "readable here in cycle" in str(error)


PERM = """
.data MEM_W3, 0, i8: 10, 11, 12, 13, 14, 15, 16, 17
.data MEM_W3, 2, u8: {table}
.queue MEM_W3
.at 2
    read w2, 2
    read w0, 0
.queue MEM_W2
.at 1
    read w3, 4
.queue SXM_W
.at 4
    perm_load w2
.at 5
    permute e1, w0
"""


def _perm(table):
    return assemble(PERM.format(table=", ".join(map(str, table))), DEFAULT, filename="perm.s")


def test_checker_accepts_a_permutation_from_data():
    program = _perm([7, 6, 5, 4, 3, 2, 1, 0])
    assert check(program) == []


@pytest.mark.parametrize("table, words", [
    ([7, 6, 5, 4, 3, 2, 1, 1], "lane 1 appears 2 times"),
    ([0, 1, 2, 3, 4, 5, 6, 8], "entry 7 is 8"),
])
def test_checker_rejects_a_table_that_is_not_a_permutation(table, words):
    errors = check(_perm(table))
    assert [e.rule for e in errors] == [RULE_SXM_PERMUTATION]
    message = str(errors[0])
    assert message.startswith("perm.s:13:5: error: perm_load in cycle 4 loads the table in "
                              "MEM_W3 word 2 and MEM_W2 word 4")
    assert words in message and "\n" not in message


def test_checker_rejects_permute_before_perm_load():
    source = PERM.replace(".at 4\n    perm_load w2\n.at 5\n    permute e1, w0",
                          ".at 4\n    permute e1, w0\n.at 5\n    perm_load w2")
    source = source.format(table="7, 6, 5, 4, 3, 2, 1, 0")
    errors = [e for e in check(assemble(source, DEFAULT, filename="p.s"))
              if e.rule == RULE_SXM_PERMUTATION]
    assert len(errors) == 1
    assert "p.s:13:5: error: permute in cycle 4 before any perm_load of SXM_W" in str(errors[0])


def test_table_computed_on_the_chip_is_not_checked():
    """A word written by the program before it is read is not static: no rule 10 error."""
    source = _perm([1, 1, 1, 1, 1, 1, 1, 1])
    text = PERM.format(table="1, 1, 1, 1, 1, 1, 1, 1")
    text = text.replace(".queue MEM_W3\n.at 2\n", ".queue MEM_W3\n    write 2, e7\n.at 2\n")
    assert check(source) and not [e for e in check(assemble(text, DEFAULT))
                                  if e.rule == RULE_SXM_PERMUTATION]


@pytest.mark.parametrize("text, where, words", [
    ("shiftu e0, w0, 8", "2:20", "lane count 8 out of range 0..7 (lanes 8)"),
    ("perm_load w1", "2:15", "i16 operand s must start an aligned group of 2 streams"),
    ("transpose e2, w0", "2:15", "i32 operand dst must start an aligned group of 4"),
    ("add.i8 e0, e1, e2", "2:5", "add is a VXM instruction; the queue of SXM_E takes SXM"),
])
def test_assembler_errors(text, where, words):
    with pytest.raises(AsmError) as info:
        assemble(f".queue SXM_E\n    {text}\n", DEFAULT, filename="x.s")
    message = str(info.value)
    assert message.startswith(f"x.s:{where}: error: ") and words in message, message


def test_shift_example_gives_the_documented_vectors():
    program = assemble_file(EXAMPLES / "sxm_shift.s", DEFAULT)
    assert check(program) == []
    result = run(program.image)
    x = np.arange(1, 9, dtype=np.uint8)
    np.testing.assert_array_equal(result.memory("MEM_E3")[0], x)
    e0 = result.memory("MEM_E0")
    np.testing.assert_array_equal(e0[8], ref_shiftu(x, 3))
    np.testing.assert_array_equal(e0[9], ref_shiftd(x, 2))
    np.testing.assert_array_equal(e0[10], np.roll(x, 5))
    np.testing.assert_array_equal(e0[11], ref_distribute(x, [0, 0, 9, 3, 1, 1, 1, 1], 4))
    planes = np.stack([result.memory(f"MEM_W{i}")[0] for i in range(4)])
    got = np.stack([result.memory(f"MEM_W{i}")[12] for i in range(4)])
    np.testing.assert_array_equal(got, ref_transpose(planes))
    assert result.cycles == _cycles("sxm_shift.s")


def test_permute_example_gives_the_documented_vectors():
    program = assemble_file(EXAMPLES / "sxm_permute.s", DEFAULT)
    assert check(program) == []
    result = run(program.image)
    x = result.memory("MEM_W0")[0]
    perm = result.memory("MEM_W0")[1].astype(int) | result.memory("MEM_W1")[1].astype(int) << 8
    assert isa.is_permutation(perm, DEFAULT.lanes)
    np.testing.assert_array_equal(result.memory("MEM_E0")[8], x[perm])
    np.testing.assert_array_equal(result.memory("MEM_W0")[2], np.argsort(perm))
    np.testing.assert_array_equal(result.memory("MEM_E0")[9], x)   # permuted back
    assert result.cycles == _cycles("sxm_permute.s")


def _cycles(name):
    """The cycle count an example documents in its header (``; cycles: N``)."""
    for line in (EXAMPLES / name).read_text().splitlines():
        if line.startswith("; cycles:"):
            return int(line.split(":")[1])
    raise AssertionError(f"{name} documents no cycle count")


# The RTL slice -----------------------------------------------------------------------------

class _Port:
    """What :func:`opentsp.sim.sxm.execute` needs of the chip model, for one slice on its
    own: the slice's inputs of this cycle and a record of its stream writes."""

    def __init__(self, config):
        self.config = config
        self.sxms = {"SXM": sxm.Sxm(config)}
        self.cycle = 0
        self.inputs = None
        self.pending = defaultdict(dict)

    def _input(self, position, direction, stream, superlane):
        if stream >= self.config.streams:
            return np.zeros(self.config.lanes_per_superlane, np.uint8)
        return self.inputs[int(direction), stream, superlane].copy()

    def _write_stream(self, when, slice_, direction, stream, superlane, value):
        if stream < self.config.streams:
            self.pending[when][int(direction), stream, superlane] = value


class SliceModel:
    """The golden SXM executor behind a stagger; :meth:`step` returns the writes driven in
    this cycle ``{(dir, stream, superlane): uint8 lanes}``."""

    def __init__(self, config, cycle=0):
        self.port = _Port(config)
        self.port.cycle = cycle
        self.slice = isa.Slice("SXM", isa.SliceKind.SXM, 1, True)
        self.issued = {}

    def step(self, instr, inputs):
        port = self.port
        t = port.cycle
        port.inputs = inputs
        if instr is not None:
            self.issued[t] = instr
        for k in range(port.config.superlanes):
            if t - k in self.issued:
                sxm.execute(port, self.slice, self.issued[t - k], k)
        port.sxms["SXM"].end_cycle()
        port.cycle += 1
        return port.pending.pop(t, {})


def pack_bundle(planes):
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
                    word = (value >> (s * sl + k) * 8 * lps) & ((1 << 8 * lps) - 1)
                    writes[direction, s, k] = np.frombuffer(word.to_bytes(lps, "little"),
                                                            np.uint8)
    return writes


def run_rtl(config, schedule, inputs_of, clear_at=()):
    """Drive the RTL slice; check every cycle's writes against :class:`SliceModel`."""
    dut = SxmSlice(config)
    seen = []

    async def tb(ctx):
        model = SliceModel(config)
        for t in range(len(schedule) + 2 * config.superlanes + 2):
            instr = schedule[t] if t < len(schedule) else None
            inputs = inputs_of(t)
            ctx.set(dut.e_in.as_value(), pack_bundle(inputs[0]))
            ctx.set(dut.w_in.as_value(), pack_bundle(inputs[1]))
            if t in clear_at:       # acts at the end of the cycle: what is due still drives
                expect = model.step(None, inputs)
                model = SliceModel(config, t + 1)
                ctx.set(dut.clear, 1)
                ctx.set(dut.issue.valid, 0)
            else:
                expect = model.step(instr, inputs)
                ctx.set(dut.clear, 0)
                ctx.set(dut.issue.valid, instr is not None)
                ctx.set(dut.issue.word, instr.encode() if instr is not None else 0)
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


def random_instr(rng, config):
    op = rng.choice(isa.SXM_OPS)
    values = {}
    for field in op.fields:
        if field.kind == "stream":
            width = op.operand_width(field.name)
            values[field.name] = ref(isa.Dir(rng.randrange(2)),
                                     rng.randrange(0, config.streams + width, width))
        else:
            values[field.name] = rng.choice([0, 1, rng.randrange(config.lanes),
                                             config.lanes, rng.randrange(512)])
    return isa.encode(op.mnemonic, **values)


@pytest.mark.parametrize("config, seed", [(DEFAULT, 0), (DEFAULT, 1), (ONE, 2), (ODD, 3)],
                         ids=["default-0", "default-1", "one-2", "odd-3"])
def test_rtl_random_programs_match_the_golden_model(config, seed):
    """Random SXM instructions (every opcode, out-of-range streams and lane counts, tables
    that are not permutations) back to back, with random inputs, and a soft reset."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    shape = (2, config.streams, config.superlanes, config.lanes_per_superlane)
    schedule = [random_instr(rng, config) if rng.random() < 0.8 else None for _ in range(100)]
    inputs = []
    for _ in range(len(schedule) + 2 * config.superlanes + 2):
        value = np_rng.integers(0, 256, size=shape, dtype=np.uint8)
        if np_rng.random() < 0.6:      # small values: table entries that are lanes
            value %= config.lanes + 2
            value[:, 1::2] = np_rng.integers(0, 2, size=value[:, 1::2].shape) * (
                np_rng.random() < 0.2)
        inputs.append(value)
    seen = run_rtl(config, schedule, lambda t: inputs[t], clear_at=(60,))
    assert sum(len(w) for w in seen) > 60
    assert any(np.any(v) for w in seen for v in w.values())


def test_rtl_matches_numpy_on_a_permutation():
    """perm_load of a permutation on w0/w1, then permute, rotate and transpose of fixed
    vectors: the RTL's writes, assembled over superlanes, equal numpy's results."""
    config = DEFAULT
    lanes, nsl, lps = config.lanes, config.superlanes, config.lanes_per_superlane
    perm = np.array([3, 7, 0, 5, 1, 6, 2, 4])
    x = np.arange(100, 100 + 4 * lanes, dtype=np.uint8).reshape(4, lanes)
    bundle = np.zeros((2, config.streams, nsl, lps), np.uint8)
    bundle[W, 0] = (perm & 0xFF).reshape(nsl, lps)
    bundle[W, 1] = (perm >> 8).reshape(nsl, lps)
    bundle[E, 4:8] = x.reshape(4, nsl, lps)
    schedule = [isa.encode("perm_load", s=ref(W, 0)),
                isa.encode("permute", dst=ref(W, 2), a=ref(E, 4)),
                isa.encode("rotate", dst=ref(E, 3), a=ref(E, 5), n=6),
                isa.encode("transpose", dst=ref(W, 4), a=ref(E, 4))]
    seen = run_rtl(config, schedule, lambda t: bundle)

    def vector(t, direction, stream):
        return np.concatenate([seen[t + nsl + k][direction, stream, k] for k in range(nsl)])

    np.testing.assert_array_equal(vector(1, W, 2), x[0][perm])
    np.testing.assert_array_equal(vector(2, E, 3), np.roll(x[1], 6))
    got = np.stack([vector(3, W, 4 + r) for r in range(4)])
    np.testing.assert_array_equal(got, ref_transpose(x))
