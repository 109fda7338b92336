"""The stream fabric: one hop per cycle in both directions, overwrite, edges, soft reset."""

from amaranth.sim import Simulator

from opentsp import isa
from opentsp.config import CONFIGS
from opentsp.hdl.fabric import StreamFabric
from opentsp.hdl.stagger import Stagger

CONFIG = CONFIGS["default"]
P = len(isa.floorplan(CONFIG))


def run(tb_body, dut=None):
    dut = dut or StreamFabric(CONFIG)

    async def tb(ctx):
        await tb_body(ctx, dut)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


async def write_once(ctx, dut, direction, p, s, k, value):
    """Drive one write for one cycle; returns after the register has loaded it."""
    we, wdata = (dut.e_we, dut.e_wdata) if direction == "e" else (dut.w_we, dut.w_wdata)
    ctx.set(we[p][s], 1 << k)
    ctx.set(wdata[p][s][k].as_value(), value)
    await ctx.tick()
    ctx.set(we[p][s], 0)
    ctx.set(wdata[p][s][k].as_value(), 0)


def get(ctx, dut, direction, p, s, k):
    reg = dut.e if direction == "e" else dut.w
    return ctx.get(reg[p][s][k].as_value())


def test_hop_per_cycle_both_directions():
    async def body(ctx, dut):
        await write_once(ctx, dut, "e", 2, 3, 1, 0xA1B2C3D4)
        for hop in range(P - 2):
            p = 2 + hop
            assert get(ctx, dut, "e", p, 3, 1) == 0xA1B2C3D4, hop
            for q in range(P):      # nowhere else, and not on other superlanes / streams
                if q != p:
                    assert get(ctx, dut, "e", q, 3, 1) == 0
                assert get(ctx, dut, "e", q, 3, 0) == 0
                assert get(ctx, dut, "e", q, 2, 1) == 0
                assert get(ctx, dut, "w", q, 3, 1) == 0
            await ctx.tick()
        # fell off the east edge
        assert all(get(ctx, dut, "e", q, 3, 1) == 0 for q in range(P))

        await write_once(ctx, dut, "w", 6, 0, 0, 0x11223344)
        for hop in range(7):
            assert get(ctx, dut, "w", 6 - hop, 0, 0) == 0x11223344, hop
            await ctx.tick()
        assert all(get(ctx, dut, "w", q, 0, 0) == 0 for q in range(P))
    run(body)


def test_overwrite_and_pass_through():
    async def body(ctx, dut):
        await write_once(ctx, dut, "e", 0, 5, 0, 0x01010101)
        await ctx.tick()          # at position 1 now, arriving at position 2's register next
        assert get(ctx, dut, "e", 1, 5, 0) == 0x01010101
        await write_once(ctx, dut, "e", 2, 5, 0, 0x02020202)
        # position 2 replaced the value arriving from position 1
        assert get(ctx, dut, "e", 2, 5, 0) == 0x02020202
        await ctx.tick()
        assert get(ctx, dut, "e", 3, 5, 0) == 0x02020202
        assert all(get(ctx, dut, "e", q, 5, 0) != 0x01010101 for q in range(P))
    run(body)


def test_edges_and_clear():
    async def body(ctx, dut):
        await write_once(ctx, dut, "w", 0, 7, 1, 0xDEADBEEF)
        assert get(ctx, dut, "w", 0, 7, 1) == 0xDEADBEEF
        await ctx.tick()
        assert get(ctx, dut, "w", 0, 7, 1) == 0             # zero enters at the east edge
        await write_once(ctx, dut, "e", P - 1, 7, 1, 0xCAFEF00D)
        assert get(ctx, dut, "e", P - 1, 7, 1) == 0xCAFEF00D
        await write_once(ctx, dut, "w", P - 1, 1, 0, 0x55)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for q in range(P):
            for s in range(CONFIG.streams):
                for k in range(CONFIG.superlanes):
                    assert get(ctx, dut, "e", q, s, k) == 0
                    assert get(ctx, dut, "w", q, s, k) == 0
    run(body)


def test_stagger_delays_by_superlane():
    config = CONFIGS["medium"]
    dut = Stagger(config)

    async def tb(ctx):
        ctx.set(dut.i_valid, 1)
        ctx.set(dut.i_word, 0x12345678)
        assert ctx.get(dut.o[0].valid) and ctx.get(dut.o[0].word) == 0x12345678
        await ctx.tick()
        ctx.set(dut.i_valid, 0)
        ctx.set(dut.i_word, 0)
        for k in range(1, config.superlanes):
            for j in range(config.superlanes):
                assert ctx.get(dut.o[j].valid) == (j == k)
            assert ctx.get(dut.o[k].word) == 0x12345678
            await ctx.tick()
        assert not any(ctx.get(dut.o[j].valid) for j in range(config.superlanes))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
