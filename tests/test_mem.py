"""MEM slice: read latency, write commit, banks (old data on same-cycle read+write), stagger,
host access, out-of-range stream ids and address wrap, against a small reference model."""

import random
from collections import defaultdict

from amaranth.sim import Simulator

from opentsp import isa
from opentsp.config import CONFIGS, Config
from opentsp.hdl.mem import MemSlice

CONFIG = CONFIGS["default"]
LPS = CONFIG.lanes_per_superlane
SL = CONFIG.superlanes
READ_L = isa.OPS_BY_NAME["read"].latency
WRITE_C = isa.OPS_BY_NAME["write"].commit
E, W = int(isa.Dir.E), int(isa.Dir.W)


def stream_ref(direction, stream):
    return isa.StreamRef(isa.Dir(direction), stream)


def pack_bundle(values, config):
    """values[s][k] -> int (superlane vector ints) in the bundle layout."""
    lps_bits = 8 * config.lanes_per_superlane
    word = 0
    for s in range(config.streams):
        for k in range(config.superlanes):
            word |= values[s][k] << ((s * config.superlanes + k) * lps_bits)
    return word


def field(word, s, k, config):
    lps_bits = 8 * config.lanes_per_superlane
    return (word >> ((s * config.superlanes + k) * lps_bits)) & ((1 << lps_bits) - 1)


class Harness:
    """Testbench helpers around one :class:`MemSlice`."""

    def __init__(self, ctx, dut, config):
        self.ctx, self.dut, self.config = ctx, dut, config

    async def host_write(self, word, superlane, chunk, value):
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.host_word, word)
        ctx.set(dut.host_superlane, superlane)
        ctx.set(dut.host_chunk, chunk)
        ctx.set(dut.host_wdata, value)
        ctx.set(dut.host_we, 1)
        await ctx.tick()
        ctx.set(dut.host_we, 0)

    async def host_read(self, word, superlane, chunk):
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.host_word, word)
        ctx.set(dut.host_superlane, superlane)
        ctx.set(dut.host_chunk, chunk)
        ctx.set(dut.host_re, 1)
        await ctx.tick()
        ctx.set(dut.host_re, 0)
        return ctx.get(dut.host_rdata)

    async def store(self, word, vectors):
        """Host-write a whole word: vectors[k] is superlane k's int."""
        for k, vector in enumerate(vectors):
            for chunk in range(-(-self.config.lanes_per_superlane // 4)):
                await self.host_write(word, k, chunk, (vector >> (32 * chunk)) & 0xFFFFFFFF)

    async def load(self, word):
        vectors = []
        for k in range(self.config.superlanes):
            vector = 0
            for chunk in range(-(-self.config.lanes_per_superlane // 4)):
                vector |= await self.host_read(word, k, chunk) << (32 * chunk)
            vectors.append(vector)
        return vectors

    def outputs(self):
        """{(dir, stream, superlane): value} of this cycle's stream register writes."""
        ctx, dut, cfg = self.ctx, self.dut, self.config
        writes = {}
        for direction, we, wdata in ((E, dut.e_we, dut.e_wdata), (W, dut.w_we, dut.w_wdata)):
            mask = ctx.get(we.as_value())
            value = ctx.get(wdata.as_value())
            for s in range(cfg.streams):
                for k in range(cfg.superlanes):
                    if mask >> (s * cfg.superlanes + k) & 1:
                        writes[direction, s, k] = field(value, s, k, cfg)
        return writes


def simulate(config, body):
    dut = MemSlice(config)

    async def tb(ctx):
        await body(Harness(ctx, dut, config))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def test_host_access():
    async def body(h):
        rng = random.Random(1)
        words = {w: [rng.getrandbits(8 * LPS) for _ in range(SL)] for w in (0, 1, 7, 63)}
        for w, vectors in words.items():
            await h.store(w, vectors)
        for w, vectors in words.items():
            assert await h.load(w) == vectors
        # one chunk only changes its own lanes
        await h.host_write(7, 1, 0, 0x01020304)
        assert (await h.load(7))[1] == 0x01020304
        assert (await h.load(7))[0] == words[7][0]
    simulate(CONFIG, body)


def test_host_chunks_of_wide_superlane():
    config = Config(name="wide", superlanes=1, lanes_per_superlane=10, streams=4, mem_slices=1,
                    mem_words=8, mem_banks=4, queue_depth=4)

    async def body(h):
        await h.store(5, [0x0A0B_0C0D0E0F_10111213])
        assert await h.host_read(5, 0, 0) == 0x10111213
        assert await h.host_read(5, 0, 1) == 0x0C0D0E0F
        assert await h.host_read(5, 0, 2) == 0x0A0B
        await h.host_write(5, 0, 1, 0xFFFFFFFF)
        assert await h.load(5) == [0x0A0B_FFFFFFFF_10111213]
    simulate(config, body)


def test_read_latency_and_stagger():
    async def body(h):
        ctx, dut = h.ctx, h.dut
        await h.store(5, [0x11111111, 0x22222222])
        await h.store(64 + 6, [0x33333333, 0x44444444])  # host wraps too (row of word 6)
        ctx.set(dut.issue.valid, 1)
        ctx.set(dut.issue.word, isa.encode("read", s=stream_ref(E, 3), addr=5).encode())
        assert h.outputs() == {}
        await ctx.tick()
        ctx.set(dut.issue.word,
                isa.encode("read", s=stream_ref(W, 7), addr=6 + 2 * 64).encode())
        # cycle t+1: superlane 0 writes e3
        assert h.outputs() == {(E, 3, 0): 0x11111111}
        await ctx.tick()
        ctx.set(dut.issue.valid, 0)
        # cycle t+2: superlane 1 of the first read, superlane 0 of the second (address wraps)
        assert h.outputs() == {(E, 3, 1): 0x22222222, (W, 7, 0): 0x33333333}
        await ctx.tick()
        assert h.outputs() == {(W, 7, 1): 0x44444444}
        await ctx.tick()
        assert h.outputs() == {}
    simulate(CONFIG, body)


def test_injected_flips_are_corrected_or_detected_and_rewritten_away():
    """Section 6b on one slice: a single flip is corrected on the stream and counted, a double
    is delivered raw and flagged with its word and lowest lane; host reads are corrected and
    not counted; a host write replaces the flipped word."""
    async def body(h):
        ctx, dut = h.ctx, h.dut

        async def inject(entry, word, lane, mask):
            ctx.set(dut.inject[entry].word, word)
            ctx.set(dut.inject[entry].lane, lane)
            ctx.set(dut.inject[entry].mask, mask)
            ctx.set(dut.inject[entry].fire, 1)
            await ctx.tick()
            ctx.set(dut.inject[entry].fire, 0)

        async def read(word):
            """Issue ``read e0, word``; return the superlane 0 value in the decode cycle and
            (corrected, detected, error, lane, error word) as reported in the cycle after,
            checking that the report is empty in the decode cycle."""
            ctx.set(dut.issue.valid, 1)
            ctx.set(dut.issue.word, isa.encode("read", s=stream_ref(E, 0), addr=word).encode())
            await ctx.tick()
            ctx.set(dut.issue.valid, 0)
            value = h.outputs()[E, 0, 0]
            assert report() == (0, 0, 0, 0, 0)       # registered: nothing yet
            await ctx.tick()
            return (value, *report())

        def report():
            return (ctx.get(dut.ecc_corrected), ctx.get(dut.ecc_detected),
                    ctx.get(dut.ecc_error), ctx.get(dut.ecc_error_lane),
                    ctx.get(dut.ecc_error_word))

        await h.store(9, [0x44332211, 0x88776655])
        assert await read(9) == (0x44332211, 0, 0, 0, 0, 0)
        await inject(0, 9, 1, 1 << 3)                 # data bit 3 of lane 1
        await inject(1, 9, 2, 1 << 8 | 1 << 0)        # check bit 0 and data bit 0 of lane 2
        await inject(2, 9, 3, 1 << 4 | 1 << 5)        # lane 3 too: the lowest lane is named
        await inject(3, 10, 1, 1)                     # another word: not read
        value, corrected, detected, error, lane, word = await read(9)
        assert (value, corrected, detected, error, lane, word) == (
            0x44332211 ^ 0x30 << 24 ^ 0x01 << 16, 1, 2, 1, 2, 9)
        await ctx.tick()
        assert report() == (0, 0, 0, 0, 0)            # reported for one cycle
        assert await h.load(9) == [0x44332211 ^ 0x30 << 24 ^ 0x01 << 16, 0x88776655]
        for _ in range(2):                            # the host reads are not counted
            assert report() == (0, 0, 0, 0, 0)
            await ctx.tick()
        await h.store(9, [0x44332211, 0x88776655])    # rewritten: the flips are gone
        assert await read(9) == (0x44332211, 0, 0, 0, 0, 0)
    simulate(CONFIG, body)


class RefMem:
    """Reference for one MEM slice, directly from the timing rules (per superlane)."""

    def __init__(self, config):
        self.config = config
        self.mem = defaultdict(lambda: [0] * config.superlanes)
        self.stream_writes = defaultdict(dict)   # cycle -> {(dir, s, k): value}
        self.commits = defaultdict(list)         # cycle -> [(addr, k, value)]
        self.executing = defaultdict(list)       # cycle -> [(instr, k)]

    def cycle(self, t, instr, inputs):
        """inputs[dir][s][k]: the slice's input values in cycle t."""
        cfg = self.config
        if instr is not None:
            for k in range(cfg.superlanes):
                self.executing[t + k].append((instr, k))
        for instr, k in self.executing.pop(t, ()):
            ref = instr.stream("s")
            addr = instr["addr"] % cfg.mem_words
            if instr.op.mnemonic == "read":
                if ref.id < cfg.streams:
                    self.stream_writes[t + READ_L][int(ref.dir), ref.id, k] = self.mem[addr][k]
            else:
                value = inputs[int(ref.dir)][ref.id][k] if ref.id < cfg.streams else 0
                self.commits[t + WRITE_C].append((addr, k, value))
        writes = self.stream_writes.pop(t, {})
        for addr, k, value in self.commits.pop(t, ()):
            self.mem[addr][k] = value
        return writes


def test_random_against_reference():
    """Random reads and writes on few addresses (many same-bank read+write conflicts)."""
    rng = random.Random(7)
    cfg = CONFIG
    addrs = [0, 1, 2, 3, 64 + 2, 4095]
    program = []
    for _ in range(300):
        r = rng.random()
        s = stream_ref(rng.randrange(2), rng.choice(range(cfg.streams + 2)))
        if r < 0.4:
            program.append(isa.encode("read", s=s, addr=rng.choice(addrs)))
        elif r < 0.8:
            program.append(isa.encode("write", s=s, addr=rng.choice(addrs)))
        else:
            program.append(None)
    program += [None] * (SL + 2)

    async def body(h):
        ctx, dut = h.ctx, h.dut
        ref = RefMem(cfg)
        busy = 0
        for t, instr in enumerate(program):
            inputs = [[[rng.getrandbits(8 * LPS) for _ in range(SL)] for _ in range(cfg.streams)]
                      for _ in range(2)]
            ctx.set(dut.e_in.as_value(), pack_bundle(inputs[E], cfg))
            ctx.set(dut.w_in.as_value(), pack_bundle(inputs[W], cfg))
            ctx.set(dut.issue.valid, instr is not None)
            ctx.set(dut.issue.word, instr.encode() if instr is not None else 0)
            expected = ref.cycle(t, instr, inputs)
            assert h.outputs() == expected, t
            busy += bool(expected)
            await ctx.tick()
        assert busy > 100
        ctx.set(dut.issue.valid, 0)
        for addr in sorted({a % cfg.mem_words for a in addrs}):
            assert await h.load(addr) == ref.mem[addr], addr
    simulate(cfg, body)


def test_same_bank_read_sees_old_word_and_clear():
    async def body(h):
        ctx, dut = h.ctx, h.dut
        await h.store(4, [0xAAAAAAAA, 0xBBBBBBBB])
        # cycle t: write 4 <- w2 ; cycle t+1 (commit cycle on superlane 0): read 4
        ctx.set(dut.w_in[2][0].as_value(), 0x12345678)
        ctx.set(dut.w_in[2][1].as_value(), 0)
        ctx.set(dut.issue.valid, 1)
        ctx.set(dut.issue.word, isa.encode("write", addr=4, s=stream_ref(W, 2)).encode())
        await ctx.tick()
        ctx.set(dut.w_in[2][1].as_value(), 0x9ABCDEF0)   # superlane 1 captures one cycle late
        ctx.set(dut.issue.word, isa.encode("read", s=stream_ref(E, 0), addr=4).encode())
        await ctx.tick()
        ctx.set(dut.issue.word, isa.encode("read", s=stream_ref(E, 1), addr=4).encode())
        assert h.outputs() == {(E, 0, 0): 0xAAAAAAAA}       # old word on superlane 0
        await ctx.tick()
        ctx.set(dut.issue.valid, 0)
        # superlane 1 reads old too (its commit lands at the end of this cycle);
        # superlane 0's second read sees the new word
        assert h.outputs() == {(E, 0, 1): 0xBBBBBBBB, (E, 1, 0): 0x12345678}
        await ctx.tick()
        assert h.outputs() == {(E, 1, 1): 0x9ABCDEF0}
        # clear drops an instruction in flight in the stagger and the pipelines
        ctx.set(dut.issue.valid, 1)
        ctx.set(dut.issue.word, isa.encode("read", s=stream_ref(E, 0), addr=4).encode())
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.issue.valid, 0)
        ctx.set(dut.clear, 0)
        for _ in range(3):
            assert h.outputs() == {}
            await ctx.tick()
    simulate(CONFIG, body)


# Gather, scatter and the address sequencers (section 6a) ---------------------------------------
# The chip in Amaranth's simulator against the golden model (cycles and every memory), the
# golden model against numpy, and the checker's and the assembler's diagnostics.

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_top import ODD, ONE  # noqa: E402
from test_top import simulate as simulate_chip  # noqa: E402

from opentsp import mem_sequence  # noqa: E402
from opentsp.firmware.asm import AsmError, assemble, assemble_file  # noqa: E402
from opentsp.firmware.checker import RULE_MEM_SEQ, check  # noqa: E402
from opentsp.firmware.image import Image  # noqa: E402
from opentsp.sim import mem as mem_model  # noqa: E402
from opentsp.sim.model import run  # noqa: E402

EXAMPLES = Path(__file__).parent.parent / "firmware" / "examples"


def run_on_chip(image):
    """Run ``image`` on the RTL chip; return (cycles, memories like Result.memories)."""
    config = image.config
    mems = len(isa.mem_slices(config))
    out = {}

    async def body(host):
        for q, program in enumerate(image.queues):
            await host.load_queue(q, program)
        for (mem, word), lanes in image.data.items():
            await host.store(mem, word, list(np.asarray(lanes, dtype=np.uint8)))
        out["cycles"] = await host.run()
        out["mems"] = np.array([[await host.load(m, w) for w in range(config.mem_words)]
                                for m in range(mems)], dtype=np.uint8)
    simulate_chip(body, config)
    return out["cycles"], out["mems"]


def assert_chip_matches_model(image):
    golden = run(image)
    cycles, mems = run_on_chip(image)
    assert cycles == golden.cycles
    np.testing.assert_array_equal(mems, golden.memories)
    return golden


def test_mem_examples_on_chip_match_golden_model_and_numpy():
    gather = assert_chip_matches_model(assemble_file(EXAMPLES / "mem_gather.s").image)
    addrs = np.array([3, 12, 259, 7, 40, 63, 0, 69]) % CONFIG.mem_words
    lanes = np.arange(CONFIG.lanes)
    assert list(gather.memory("MEM_W0")[30]) == list(addrs + lanes)    # word a lane l: a + l
    e1 = gather.memory("MEM_E1").view(np.int8)
    expected = np.zeros((CONFIG.mem_words, CONFIG.lanes), dtype=np.int8)
    expected[3] = 9
    expected[addrs, lanes] = -(lanes + 1)
    np.testing.assert_array_equal(e1, expected)

    stride = assert_chip_matches_model(assemble_file(EXAMPLES / "mem_stride.s").image)
    matrix = stride.memory("MEM_W0")[0:8]          # word 2c + r = element (r, c)
    by_rows = matrix.reshape(4, 2, -1).transpose(1, 0, 2).reshape(8, -1)
    np.testing.assert_array_equal(stride.memory("MEM_E0")[16:24], by_rows)
    np.testing.assert_array_equal(stride.memory("MEM_W0")[40:48],
                                  stride.memory("MEM_E0")[33:41])
    assert stride.cycles == 17 + CONFIG.superlanes - 1 + isa.DRAIN


def random_mem_queue(rng, config, length):
    """A MEM queue of random sequencer, gather/scatter and plain instructions, with no regard
    to the rules (elements lost to the queue, restarts, sequences cut off by the end)."""
    words = config.mem_words

    def ref(width=1):
        return isa.StreamRef(isa.Dir(rng.randrange(2)),
                             rng.randrange(0, config.streams + 2, width))

    program = []
    for _ in range(length):
        r = rng.random()
        if r < 0.15:
            program.append(isa.encode(rng.choice(("agi", "ago")), g=rng.randrange(2),
                                      stride=rng.randrange(words), count=rng.randint(1, 5)))
        elif r < 0.3:
            program.append(isa.encode("sread", s=ref(), addr=rng.randrange(2 * words)))
        elif r < 0.45:
            program.append(isa.encode("swrite", s=ref(), addr=rng.randrange(2 * words)))
        elif r < 0.55:
            program.append(isa.encode("gather", s=ref(), a=ref(2)))
        elif r < 0.65:
            program.append(isa.encode("scatter", s=ref(), a=ref(2)))
        elif r < 0.72:
            program.append(isa.encode("read", s=ref(), addr=rng.randrange(words)))
        elif r < 0.79:
            program.append(isa.encode("write", s=ref(), addr=rng.randrange(words)))
        elif r < 0.85:
            program.append(isa.encode("repeat", n=rng.randint(1, 3), d=rng.randint(1, 2)))
        else:
            program.append(isa.encode("nop", count=rng.randint(1, 4)))
    if program[0].op.mnemonic == "repeat":
        program[0] = isa.encode("nop", count=1)
    return program + [isa.encode("end")]


def random_mem_image(rng, config, length=30):
    length = min(length, config.queue_depth - 1)
    queues = []
    for slice_ in isa.queues(config):
        if slice_.kind == isa.SliceKind.MEM:
            queues.append(random_mem_queue(rng, config, length))
        else:
            queues.append([isa.encode("end")])
    data = {(m, w): np.frombuffer(rng.randbytes(config.lanes), dtype=np.uint8)
            for m in range(len(isa.mem_slices(config))) for w in range(config.mem_words)
            if rng.random() < 0.7}
    return Image(config, queues, data)


@pytest.mark.parametrize("config,seed", [(CONFIG, 1), (CONFIG, 2), (ODD, 3), (ONE, 4)])
def test_random_sequencer_programs_on_chip_match_golden_model(config, seed):
    rng = random.Random(seed)
    image = random_mem_image(rng, config)
    golden = assert_chip_matches_model(image)
    initial = np.zeros_like(golden.memories)
    for (m, w), lanes in image.data.items():
        initial[m, w] = lanes
    assert (golden.memories != initial).sum() > config.lanes    # the programs changed memory


def test_sequencer_matches_numpy_address_arithmetic():
    """Cycle-by-cycle Sequencer and static sequence() against a numpy index grid."""
    rng = random.Random(5)
    for _ in range(50):
        cfg = mem_sequence.SeqConfig(rng.randrange(64), rng.randint(1, 6), rng.randrange(64),
                                  rng.randint(1, 4))
        start = rng.randrange(8192)
        i, j = np.meshgrid(np.arange(cfg.count), np.arange(cfg.ocount))
        expected = list(((start + i * cfg.stride + j * cfg.ostride) % 64).ravel())
        assert mem_sequence.sequence(start, cfg, 64) == expected
        seq = mem_model.Sequencer(CONFIG)
        seq.cfg = cfg
        got = [seq.start(isa.encode("sread", s=0, addr=start))["addr"]]
        while seq.active:
            got.append(seq.next("read")["addr"])
        assert got == expected


def _issue_at(program_text, config=CONFIG):
    return check(assemble(program_text, config))


def test_checker_flags_lost_sequence_elements():
    base = ".queue MEM_W0\n agi 0, 1, 4\n sread e0, 0\n"
    assert [e for e in _issue_at(base + " nop 3\n") if e.rule == RULE_MEM_SEQ] == []
    cut = [e for e in _issue_at(base + " nop 2\n") if e.rule == RULE_MEM_SEQ]
    assert len(cut) == 1 and cut[0].cycle == 4 and "cut off by the queue's end" in str(cut[0])
    assert cut[0].loc.line == 3
    taken = [e for e in _issue_at(base + " read e1, 9\n nop 2\n") if e.rule == RULE_MEM_SEQ]
    assert len(taken) == 1 and taken[0].cycle == 2 and "lost" in str(taken[0])
    restart = [e for e in _issue_at(base + " sread e1, 9\n nop 4\n")
               if e.rule == RULE_MEM_SEQ]
    assert len(restart) == 1 and "abandoned" in str(restart[0])
    # a write on the other port does not take the read port
    assert [e for e in _issue_at(base + " write 9, e1\n nop 2\n")
            if e.rule == RULE_MEM_SEQ] == []


def test_checker_sees_sequence_elements_as_reads_and_writes():
    # bank rule with the elements' addresses: the write of word 2 (bank 0) commits at the
    # end of cycle 2, when the read sequence started in cycle 2 reads word 0 (bank 0)
    text = ".queue MEM_W0\n agi 0, 2, 3\n write 2, e1\n sread e0, 0\n nop 2\n"
    errors = check(assemble(text))
    assert [e.rule for e in errors] == [1, 3]           # write reads e1 before any data
    assert "bank conflict" in str(errors[1]) and "word 0 in cycle 2" in str(errors[1])
    assert errors[1].loc.line == 4
    ok = ".queue MEM_W0\n agi 0, 2, 3\n write 3, e1\n sread e0, 0\n nop 2\n"
    assert [e.rule for e in check(assemble(ok))] == [1]
    # an swrite's elements read the stream every cycle: the 4th finds nothing
    text = (".queue MEM_W1\n agi 0, 1, 3\n sread e0, 0\n nop 2\n"
            ".queue MEM_W0\n agi 1, 1, 4\n.at 3\n swrite 8, e0\n nop 4\n")
    errors = check(assemble(text))
    assert [(e.rule, e.cycle) for e in errors] == [(1, 6)]      # elements read in 3, 4, 5, 6
    assert "read of e0 at MEM_W0 in cycle 6" in str(errors[0])


def test_asm_sequencer_and_gather_operands():
    program = assemble(".queue MEM_E0\n agi 1, 63, 4095\n ago 0, 0, 1\n gather w0, e2\n"
                       " scatter w4, e1\n sread e3, 5\n swrite 6, w3\n")
    text = [str(i) for i in program.image.queues[isa.queues(CONFIG).index(
        next(s for s in isa.queues(CONFIG) if s.name == "MEM_E0"))]]
    assert text[:6] == ["agi 1, 63, 4095", "ago 0, 0, 1", "gather w0, e2", "scatter w4, e1",
                        "sread e3, 5", "swrite 6, w3"]
    for bad, what in ((" agi 0, 64, 1", "2:9: error: operand stride of agi must be in 0..63"),
                      (" ago 1, 1, 0", "count of ago must be in 1..4095"),
                      (" agi 2, 1, 1", "operand g of agi must be 0 or 1"),
                      (" gather e0, e1", "i16 operand a must start an aligned group of 2"),
                      (" scatter e5, e0", "i16 operand a must start an aligned group of 2")):
        with pytest.raises(AsmError) as info:
            assemble(".queue MEM_W0\n" + bad, filename="x.s")
        assert what in str(info.value) and str(info.value).startswith("x.s:2:"), str(info.value)
