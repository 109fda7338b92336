# amaranth: UnusedElaboratable=no
"""The UART: frames on the line, exact receive latency, glitches and framing errors."""

import pytest
from amaranth.sim import Simulator

from opentsp.bridge_protocol import uart_frame
from opentsp.hdl.board.uart import Uart

DIV = 6


def simulate(dut, body):
    async def tb(ctx):
        await body(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


async def drive_bits(ctx, pin, bits, divisor):
    for bit in bits:
        ctx.set(pin, bit)
        await ctx.tick().repeat(divisor)


def test_receives_bytes_with_the_documented_latency():
    dut = Uart(DIV)
    seen = []

    async def body(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        for byte in (0x00, 0xFF, 0xA5, 0x3C, 0x81):
            ctx.set(dut.rx, 0)      # first cycle of the start bit
            for cycle in range(1, 10 * DIV + 8):
                if cycle < DIV:
                    pass
                elif cycle < 10 * DIV:
                    ctx.set(dut.rx, uart_frame(byte)[cycle // DIV])
                else:
                    ctx.set(dut.rx, 1)
                await ctx.tick()
                if ctx.get(dut.rx_valid):
                    seen.append((ctx.get(dut.rx_data), cycle))
            await ctx.tick().repeat(2)

    simulate(dut, body)
    latency = 3 + DIV // 2 + 9 * DIV
    assert seen == [(b, latency) for b in (0x00, 0xFF, 0xA5, 0x3C, 0x81)]


def test_transmits_frames_and_signals_ready():
    dut = Uart(DIV)
    line = []

    async def body(ctx):
        await ctx.tick()
        assert ctx.get(dut.tx_ready) == 1 and ctx.get(dut.tx) == 1
        for byte in (0x5A, 0x01):
            ctx.set(dut.tx_data, byte)
            ctx.set(dut.tx_valid, 1)
            await ctx.tick()
            ctx.set(dut.tx_valid, 0)
            bits = []
            for _ in range(10 * DIV):
                bits.append(ctx.get(dut.tx))
                assert ctx.get(dut.tx_ready) == 0
                await ctx.tick()
            assert ctx.get(dut.tx_ready) == 1
            line.append(bits)

    simulate(dut, body)
    assert line == [[b for b in uart_frame(byte) for _ in range(DIV)] for byte in (0x5A, 0x01)]


def test_loopback_of_every_byte():
    dut = Uart(4)
    got = []

    async def body(ctx):
        for byte in range(256):
            ctx.set(dut.tx_data, byte)
            ctx.set(dut.tx_valid, 1)
            await ctx.tick()
            ctx.set(dut.tx_valid, 0)
            for _ in range(60):
                ctx.set(dut.rx, ctx.get(dut.tx))
                await ctx.tick()
                if ctx.get(dut.rx_valid):
                    got.append(ctx.get(dut.rx_data))

    simulate(dut, body)
    assert got == list(range(256))


def test_glitch_and_framing_error_are_dropped():
    dut = Uart(DIV)
    seen = []

    async def body(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        await drive_bits(ctx, dut.rx, [0], 1)           # a one-cycle glitch
        await drive_bits(ctx, dut.rx, [1], 3 * DIV)
        await drive_bits(ctx, dut.rx, uart_frame(0x42)[:-1] + [0], DIV)  # stop bit low
        await drive_bits(ctx, dut.rx, [1], 3 * DIV)
        await drive_bits(ctx, dut.rx, uart_frame(0x24), DIV)
        await drive_bits(ctx, dut.rx, [1], 2 * DIV)

    async def watch(ctx):
        async for _, _, valid, byte in ctx.tick().sample(dut.rx_valid, dut.rx_data):
            if valid:
                seen.append(byte)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(body)
    sim.add_process(watch)
    sim.run()
    assert seen == [0x24]


@pytest.mark.parametrize("divisor", [3, 0, 4.0, "8"])
def test_bad_divisor(divisor):
    with pytest.raises(ValueError, match=r"divisor must be an integer of at least 4, not"):
        Uart(divisor)


@pytest.mark.parametrize("byte", [-1, 256, 1.5])
def test_bad_frame_byte(byte):
    with pytest.raises(ValueError, match=r"byte must be an integer 0\.\.255, not"):
        uart_frame(byte)
