"""The host bridge: commands over a UART to the host port (:mod:`opentsp.bridge_protocol`)."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import bridge_protocol as proto
from opentsp.hdl.board.uart import Uart, check_divisor

__all__ = ["HostBridge"]


class HostBridge(wiring.Component):
    """Turns the byte protocol of :mod:`opentsp.bridge_protocol` on a UART into host-port
    accesses, one command at a time.

    Write ``W`` addr data
        One cycle after the UART delivers the last data byte, ``host_wen`` is high for one
        cycle with ``host_addr`` and ``host_wdata``; the answer ``K`` starts on ``tx`` in the
        cycle after.
    Read ``R`` addr
        ``host_ren`` is high for one cycle, one cycle after the last address byte; the chip's
        ``host_rdata`` is taken in the next cycle (its read latency, with ``host_rvalid``) and
        ``D`` with the four data bytes, least significant first, follows on ``tx``.
    Other bytes
        Answered with ``?``.

    Bytes that arrive while an answer is being sent are ignored: the host waits for each
    answer. A command that stops short for ``IDLE_TIMEOUT_BYTES`` byte times is dropped.
    ``host_addr`` and ``host_wdata`` hold their last values between commands.

    Parameters
    ----------
    divisor : int
        Clock cycles per UART bit (clock frequency / baud rate).
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    host_addr: Out(32)
    host_wdata: Out(32)
    host_wen: Out(1)
    host_ren: Out(1)
    host_rdata: In(32)
    host_rvalid: In(1)

    def __init__(self, divisor):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart = uart = Uart(self._divisor)
        m.d.comb += [uart.rx.eq(self.rx), self.tx.eq(uart.tx)]

        args = Signal(64)               # addr in bytes 0..3, data in bytes 4..7
        received = Signal(range(9))
        needed = Signal(range(9))
        is_write = Signal()
        reply = Signal(40)              # bytes to send, least significant first
        reply_left = Signal(range(6))
        idle_limit = proto.IDLE_TIMEOUT_BYTES * 10 * self.divisor
        idle = Signal(range(idle_limit + 1))

        m.d.comb += [self.host_addr.eq(args[:32]), self.host_wdata.eq(args[32:]),
                     uart.tx_data.eq(reply[:8])]

        with m.FSM(name="bridge_fsm"):
            with m.State("COMMAND"):
                with m.If(uart.rx_valid):
                    m.d.sync += [received.eq(0), idle.eq(0)]
                    with m.If(uart.rx_data == proto.CMD_WRITE):
                        m.d.sync += [is_write.eq(1), needed.eq(8)]
                        m.next = "ARGS"
                    with m.Elif(uart.rx_data == proto.CMD_READ):
                        m.d.sync += [is_write.eq(0), needed.eq(4)]
                        m.next = "ARGS"
                    with m.Else():
                        m.d.sync += [reply.eq(proto.NAK), reply_left.eq(1)]
                        m.next = "REPLY"
            with m.State("ARGS"):
                with m.If(uart.rx_valid):
                    m.d.sync += idle.eq(0)
                    with m.Switch(received):
                        for index in range(8):
                            with m.Case(index):
                                m.d.sync += args[8 * index:8 * index + 8].eq(uart.rx_data)
                    m.d.sync += received.eq(received + 1)
                    with m.If(received + 1 == needed):
                        m.next = "ACCESS"
                with m.Elif(idle == idle_limit):
                    m.next = "COMMAND"  # the host gave up mid-command
                with m.Else():
                    m.d.sync += idle.eq(idle + 1)
            with m.State("ACCESS"):
                m.d.comb += [self.host_wen.eq(is_write), self.host_ren.eq(~is_write)]
                with m.If(is_write):
                    m.d.sync += [reply.eq(proto.ACK_WRITE), reply_left.eq(1)]
                    m.next = "REPLY"
                with m.Else():
                    m.next = "READ_DATA"
            with m.State("READ_DATA"):
                m.d.sync += [reply.eq(Cat(Const(proto.ACK_READ, 8), self.host_rdata)),
                             reply_left.eq(proto.READ_REPLY_BYTES)]
                m.next = "REPLY"
            with m.State("REPLY"):
                m.d.comb += uart.tx_valid.eq(1)
                with m.If(uart.tx_ready):
                    m.d.sync += [reply.eq(reply[8:]), reply_left.eq(reply_left - 1)]
                    with m.If(reply_left == 1):
                        m.next = "COMMAND"
        return m
