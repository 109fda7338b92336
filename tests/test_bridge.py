# amaranth: UnusedElaboratable=no
"""The UART host bridge in Amaranth's simulator: the host program's operations on the pins, a
model of the chip's host port behind it (read data one cycle after the strobe), exact strobe
timing, unknown commands and commands cut short."""

import pytest
from amaranth.sim import Simulator

from opentsp import bridge_protocol as proto
from opentsp.hdl.board.bridge import HostBridge
from opentsp.host_protocol import op_read, op_write

DIV = 4


def decode_line(trace, div):
    """Bytes of a sampled UART line (one sample per cycle)."""
    out, t = [], 1
    while t < len(trace):
        if trace[t - 1] == 1 and trace[t] == 0:
            middle = t + div // 2
            if middle + 9 * div >= len(trace):
                break
            bits = [trace[middle + i * div] for i in range(10)]
            assert bits[0] == 0 and bits[9] == 1, f"bad frame at cycle {t}: {bits}"
            out.append(sum(b << i for i, b in enumerate(bits[1:9])))
            t = middle + 9 * div
        t += 1
    return out


class Harness:
    """A host-port model behind the bridge, and a host that drives the pins cycle by cycle."""

    def __init__(self):
        self.dut = HostBridge(DIV)
        self.memory = {}
        self.accesses = []      # (cycle, "w"/"r", addr, data)
        self.cycle = 0
        self.tx_trace = [1]

    async def host_port(self, ctx):
        dut = self.dut
        async for _, _, wen, ren, addr, wdata in ctx.tick().sample(
                dut.host_wen, dut.host_ren, dut.host_addr, dut.host_wdata):
            ctx.set(dut.host_rvalid, ren)
            ctx.set(dut.host_rdata, self.memory.get(addr, 0) if ren else 0)
            if wen:
                self.memory[addr] = wdata
                self.accesses.append(("w", addr, wdata))
            if ren:
                self.accesses.append(("r", addr, None))

    async def step(self, ctx, rx=1):
        ctx.set(self.dut.rx, rx)
        await ctx.tick()
        self.cycle += 1
        self.tx_trace.append(ctx.get(self.dut.tx))

    async def exchange(self, ctx, request, count, limit=2000):
        """Send ``request`` and return the ``count`` answer bytes (fewer after ``limit``)."""
        start = len(self.tx_trace)
        for byte in request:
            for bit in proto.uart_frame(byte):
                for _ in range(DIV):
                    await self.step(ctx, bit)
        for _ in range(limit):
            reply = decode_line(self.tx_trace[start - 1:], DIV)
            if len(reply) >= count:
                return bytes(reply)
            await self.step(ctx)
        return bytes(decode_line(self.tx_trace[start - 1:], DIV))

    async def execute(self, ctx, operation):
        try:
            request = next(operation)
            while True:
                data, count = request
                reply = await self.exchange(ctx, data, count)
                assert len(reply) == count, f"no full answer to {data!r}: {reply!r}"
                request = operation.send(reply)
        except StopIteration as stop:
            return stop.value

    def run(self, body):
        async def tb(ctx):
            await body(ctx)

        sim = Simulator(self.dut)
        sim.add_clock(1e-6)
        sim.add_process(self.host_port)
        sim.add_testbench(tb)
        sim.run()


def test_host_operations_reach_the_host_port():
    h = Harness()
    words = {0x2012_3084: 0xDEADBEEF, 0x1000_0003: 0x0000_0001, 0x0000_0000: 0xFFFF_FFFF,
             0xFFFF_FFFF: 0x8000_0000}
    got = {}

    async def body(ctx):
        for addr, value in words.items():
            await h.execute(ctx, op_write(addr, value))
        for addr in words:
            got[addr] = await h.execute(ctx, op_read(addr))
        got["unwritten"] = await h.execute(ctx, op_read(0x2000_0001))

    h.run(body)
    assert got == {**words, "unwritten": 0}
    assert h.accesses == ([("w", a, v) for a, v in words.items()]
                          + [("r", a, None) for a in words] + [("r", 0x2000_0001, None)])


def test_strobe_timing():
    """``host_wen`` is high for exactly one cycle, two cycles after the last byte arrives."""
    h = Harness()
    strobes = []

    async def body(ctx):
        for byte in proto.encode_write(0x1234_5678, 0x9ABC_DEF0):
            for bit in proto.uart_frame(byte):
                for _ in range(DIV):
                    await h.step(ctx, bit)
                    if ctx.get(h.dut.host_wen):
                        strobes.append(h.cycle)
        for _ in range(4 * DIV):
            await h.step(ctx)
            if ctx.get(h.dut.host_wen):
                strobes.append((h.cycle, ctx.get(h.dut.host_addr), ctx.get(h.dut.host_wdata)))

    h.run(body)
    # Cycle c is the one after the c-th clock edge: the last byte's start bit begins in cycle
    # 8 * 10 * DIV; the UART delivers it 3 + DIV // 2 + 9 * DIV cycles later, the strobe
    # follows a cycle after.
    last_start = 8 * 10 * DIV
    assert strobes == [(last_start + 3 + DIV // 2 + 9 * DIV + 1, 0x1234_5678, 0x9ABC_DEF0)]


def test_unknown_command_is_answered_with_nak():
    h = Harness()
    answers = []

    async def body(ctx):
        for byte in (0x00, ord("w"), 0xFF):
            answers.append(await h.exchange(ctx, bytes([byte]), 1))
        answers.append(await h.execute(ctx, op_read(0x7)))

    h.memory[0x7] = 0x55AA
    h.run(body)
    assert answers == [bytes([proto.NAK])] * 3 + [0x55AA]
    assert h.accesses == [("r", 0x7, None)]


def test_command_cut_short_is_dropped():
    h = Harness()
    answers = []

    async def body(ctx):
        # three bytes of a write, then silence: no answer, no access
        answers.append(await h.exchange(ctx, proto.encode_write(1, 2)[:3], 1,
                                        limit=proto.IDLE_TIMEOUT_BYTES * 10 * DIV + 20))
        answers.append(await h.execute(ctx, op_write(0x10, 0x20)))

    h.run(body)
    assert answers == [b"", None]
    assert h.accesses == [("w", 0x10, 0x20)]


@pytest.mark.parametrize("call, message", [
    (lambda: proto.encode_write(-1, 0), "addr must be a 32-bit unsigned integer, not -1"),
    (lambda: proto.encode_write(0, 1 << 32), "data must be a 32-bit unsigned integer, not"),
    (lambda: proto.encode_read("0"), "addr must be a 32-bit unsigned integer, not '0'"),
    (lambda: proto.decode_write_reply(b"?"), "write answer must be b'K', not b'\\?'"),
    (lambda: proto.decode_read_reply(b"K1234"), "read answer must be b'D'"),
    (lambda: proto.decode_read_reply(b"D12"), "read answer must be b'D'"),
])
def test_bad_protocol_values(call, message):
    with pytest.raises((ValueError, proto.ProtocolError), match=message):
        call()


def test_bad_divisor():
    with pytest.raises(ValueError, match="divisor must be an integer of at least 4, not 2"):
        HostBridge(2)
