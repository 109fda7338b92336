"""The chip behind the UART host bridge, and its top level on an FPGA board."""

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from opentsp.config import Config
from opentsp.hdl.board.bridge import HostBridge
from opentsp.hdl.board.pll import Ecp5Pll, check_mhz, pll_setting
from opentsp.hdl.board.uart import check_divisor
from opentsp.hdl.top import Chip

__all__ = ["BridgedChip", "BoardTop", "LED_RUNNING", "LED_DONE"]

LED_RUNNING = 0     # board LED numbers
LED_DONE = 1


class BridgedChip(wiring.Component):
    """:class:`~opentsp.hdl.top.Chip` with its host port driven by a
    :class:`~opentsp.hdl.board.bridge.HostBridge`: the whole design talks over two UART pins.

    This is the design the FPGA flow places on a board and the cocotb bridge test simulates
    (Verilog top level ``tsp_bridged``). Timing is that of the chip and the bridge.

    Parameters
    ----------
    config : Config
        Chip parameters.
    divisor : int
        Clock cycles per UART bit.
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    done: Out(1)
    running: Out(1)

    def __init__(self, config, divisor):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        self._config = config
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def config(self):
        return self._config

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        m.submodules.chip = chip = Chip(self._config)
        m.submodules.bridge = bridge = HostBridge(self._divisor)
        m.d.comb += [
            bridge.rx.eq(self.uart_rx), self.uart_tx.eq(bridge.tx),
            chip.host_addr.eq(bridge.host_addr), chip.host_wdata.eq(bridge.host_wdata),
            chip.host_wen.eq(bridge.host_wen), chip.host_ren.eq(bridge.host_ren),
            bridge.host_rdata.eq(chip.host_rdata), bridge.host_rvalid.eq(chip.host_rvalid),
            self.done.eq(chip.done), self.running.eq(chip.running),
        ]
        return m


class BoardTop(Elaboratable):
    """Top level on an Amaranth board platform: a :class:`BridgedChip` on the board's ``uart``
    resource 0; LED :data:`LED_RUNNING` shows ``running``, LED :data:`LED_DONE` shows ``done``.

    The chip's clock is ``clock_mhz``. When that is the board oscillator's frequency, the
    platform's default clock and power-on reset drive it; otherwise an :class:`Ecp5Pll` makes
    it from the oscillator and holds the chip in reset until the PLL has locked.

    Parameters
    ----------
    config : Config
        Chip parameters.
    baud : int
        UART bit rate; the bridge's divisor is the chip clock over ``baud``, rounded.
    clock_mhz : float, optional
        The chip clock; defaults to ``config.clock_mhz``.
    """

    def __init__(self, config, baud=115200, clock_mhz=None):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        if not isinstance(baud, int) or baud < 1:
            raise ValueError(f"baud must be a positive integer, not {baud!r}")
        clock_mhz = config.clock_mhz if clock_mhz is None else clock_mhz
        self.config = config
        self.baud = baud
        self.clock_mhz = float(check_mhz("clock_mhz", clock_mhz))

    def pll_setting(self, platform):
        """The PLL dividers on ``platform``, or None when the chip runs on the oscillator."""
        board_mhz = platform.default_clk_frequency / 1e6
        if abs(self.clock_mhz - board_mhz) <= 1e-9 * board_mhz:
            return None
        return pll_setting(board_mhz, self.clock_mhz)

    def divisor(self, platform):
        """The bridge's UART divisor on ``platform``: chip clock cycles per bit, rounded."""
        setting = self.pll_setting(platform)
        chip_hz = (platform.default_clk_frequency if setting is None
                   else setting.out_mhz * 1e6)
        return round(chip_hz / self.baud)

    def elaborate(self, platform):
        m = Module()
        setting = self.pll_setting(platform)
        if setting is not None:
            clk = platform.request(platform.default_clk, dir="-")
            m.submodules.clk_buffer = clk_buffer = io.Buffer("i", clk)
            m.submodules.pll = pll = Ecp5Pll(setting)
            # As Amaranth's own ECP5 clock: a reset-less domain whose flip-flops the global
            # set/reset (SGSR) initialises, held until the PLL has locked and released after
            # two flip-flops on the new clock. (A ResetSynchronizer, i.e. a synchronous reset
            # on every flip-flop, made Yosys 0.66 emit two flip-flops driving one net.)
            m.domains.sync = ClockDomain("sync", reset_less=True)
            locked_0, locked_1 = Signal(), Signal()
            m.d.comb += [pll.clk_in.eq(clk_buffer.i), ClockSignal("sync").eq(pll.clk_out)]
            m.submodules.lock_sync_0 = Instance("FD1S3AX", p_GSR="DISABLED", i_CK=pll.clk_out,
                                                i_D=pll.locked, o_Q=locked_0)
            m.submodules.lock_sync_1 = Instance("FD1S3AX", p_GSR="DISABLED", i_CK=pll.clk_out,
                                                i_D=locked_0, o_Q=locked_1)
            m.submodules.sgsr = Instance("SGSR", i_CLK=pll.clk_out, i_GSR=locked_1)
        m.submodules.design = design = BridgedChip(self.config, self.divisor(platform))
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.submodules.running_led = running = io.Buffer("o", platform.request("led", LED_RUNNING,
                                                                            dir="-"))
        m.submodules.done_led = done = io.Buffer("o", platform.request("led", LED_DONE, dir="-"))
        m.d.comb += [design.uart_rx.eq(rx.i), tx.o.eq(design.uart_tx),
                     running.o.eq(design.running), done.o.eq(design.done)]
        return m
