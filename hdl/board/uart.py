"""A UART (8N1): a receiver and a transmitter at one fixed bit time."""

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["Uart", "check_divisor"]


def check_divisor(divisor):
    """``divisor`` if it is a valid bit time in cycles (an integer of at least 4)."""
    if not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"divisor must be an integer of at least 4, not {divisor!r}")
    return divisor


class Uart(wiring.Component):
    """8N1 UART: one start bit (0), eight data bits least significant first, one stop bit (1).

    Receiver
        ``rx`` passes a two-register synchroniser, then is sampled in the middle of each bit.
        ``rx_valid`` is high for one cycle, with the byte on ``rx_data``, ``3 + divisor // 2 +
        9 * divisor`` cycles after the first cycle of the start bit on ``rx``. A start bit that
        is high again at its middle is taken for a glitch and ignored; a frame whose stop bit
        is low (a framing error or a break) is dropped.
    Transmitter
        ``tx_ready`` is high while idle. A byte offered with ``tx_valid`` while ``tx_ready`` is
        high is taken in that cycle; its start bit appears on ``tx`` from the next cycle on, each
        bit lasting ``divisor`` cycles, and ``tx_ready`` rises again after the stop bit.
        Throughput: one byte per ``10 * divisor + 1`` cycles.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), at least 4.
    """

    rx: In(1)
    tx: Out(1, init=1)
    rx_data: Out(8)
    rx_valid: Out(1)
    tx_data: In(8)
    tx_valid: In(1)
    tx_ready: Out(1)

    def __init__(self, divisor):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        div = self._divisor

        # Receiver ------------------------------------------------------------------------
        rx = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx, init=1)
        rx_timer = Signal(range(div))
        rx_bits = Signal(range(10))
        rx_shift = Signal(8)
        m.d.sync += self.rx_valid.eq(0)
        with m.FSM(name="rx_fsm"):
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += rx_timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):      # wait for the middle of the start bit
                with m.If(rx_timer != 0):
                    m.d.sync += rx_timer.eq(rx_timer - 1)
                with m.Elif(rx):
                    m.next = "IDLE"     # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [rx_timer.eq(div - 1), rx_bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):       # eight data bits, then the stop bit, each at its middle
                with m.If(rx_timer != 0):
                    m.d.sync += rx_timer.eq(rx_timer - 1)
                with m.Elif(rx_bits == 8):
                    m.d.sync += [self.rx_valid.eq(rx), self.rx_data.eq(rx_shift)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [rx_shift.eq(Cat(rx_shift[1:], rx)), rx_bits.eq(rx_bits + 1),
                                 rx_timer.eq(div - 1)]

        # Transmitter ---------------------------------------------------------------------
        tx_timer = Signal(range(div))
        tx_bits = Signal(range(11))
        tx_shift = Signal(unsigned(10), init=0x3FF)
        m.d.comb += [self.tx.eq(tx_shift[0]), self.tx_ready.eq(tx_bits == 0)]
        with m.If(tx_bits == 0):
            with m.If(self.tx_valid):
                m.d.sync += [tx_shift.eq(Cat(Const(0, 1), self.tx_data, Const(1, 1))),
                             tx_bits.eq(10), tx_timer.eq(div - 1)]
        with m.Elif(tx_timer != 0):
            m.d.sync += tx_timer.eq(tx_timer - 1)
        with m.Else():
            m.d.sync += [tx_shift.eq(Cat(tx_shift[1:], Const(1, 1))), tx_bits.eq(tx_bits - 1),
                         tx_timer.eq(div - 1)]
        return m
