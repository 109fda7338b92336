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
        ctx.set(dut.issue_valid, 1)
        ctx.set(dut.issue_word, isa.encode("read", s=stream_ref(E, 3), addr=5).encode())
        assert h.outputs() == {}
        await ctx.tick()
        ctx.set(dut.issue_word,
                isa.encode("read", s=stream_ref(W, 7), addr=6 + 2 * 64).encode())
        # cycle t+1: superlane 0 writes e3
        assert h.outputs() == {(E, 3, 0): 0x11111111}
        await ctx.tick()
        ctx.set(dut.issue_valid, 0)
        # cycle t+2: superlane 1 of the first read, superlane 0 of the second (address wraps)
        assert h.outputs() == {(E, 3, 1): 0x22222222, (W, 7, 0): 0x33333333}
        await ctx.tick()
        assert h.outputs() == {(W, 7, 1): 0x44444444}
        await ctx.tick()
        assert h.outputs() == {}
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
            ctx.set(dut.issue_valid, instr is not None)
            ctx.set(dut.issue_word, instr.encode() if instr is not None else 0)
            expected = ref.cycle(t, instr, inputs)
            assert h.outputs() == expected, t
            busy += bool(expected)
            await ctx.tick()
        assert busy > 100
        ctx.set(dut.issue_valid, 0)
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
        ctx.set(dut.issue_valid, 1)
        ctx.set(dut.issue_word, isa.encode("write", addr=4, s=stream_ref(W, 2)).encode())
        await ctx.tick()
        ctx.set(dut.w_in[2][1].as_value(), 0x9ABCDEF0)   # superlane 1 captures one cycle late
        ctx.set(dut.issue_word, isa.encode("read", s=stream_ref(E, 0), addr=4).encode())
        await ctx.tick()
        ctx.set(dut.issue_word, isa.encode("read", s=stream_ref(E, 1), addr=4).encode())
        assert h.outputs() == {(E, 0, 0): 0xAAAAAAAA}       # old word on superlane 0
        await ctx.tick()
        ctx.set(dut.issue_valid, 0)
        # superlane 1 reads old too (its commit lands at the end of this cycle);
        # superlane 0's second read sees the new word
        assert h.outputs() == {(E, 0, 1): 0xBBBBBBBB, (E, 1, 0): 0x12345678}
        await ctx.tick()
        assert h.outputs() == {(E, 1, 1): 0x9ABCDEF0}
        # clear drops an instruction in flight in the stagger and the pipelines
        ctx.set(dut.issue_valid, 1)
        ctx.set(dut.issue_word, isa.encode("read", s=stream_ref(E, 0), addr=4).encode())
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.issue_valid, 0)
        ctx.set(dut.clear, 0)
        for _ in range(3):
            assert h.outputs() == {}
            await ctx.tick()
    simulate(CONFIG, body)
