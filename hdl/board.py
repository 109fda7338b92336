"""The chip behind the UART host bridge, and its top level on an FPGA board."""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from opentsp.config import Config

from .bridge import HostBridge
from .top import Chip
from .uart import check_divisor

__all__ = ["BridgedChip", "BoardTop", "LED_RUNNING", "LED_DONE"]

LED_RUNNING = 0     # board LED numbers
LED_DONE = 1


class BridgedChip(wiring.Component):
    """:class:`~opentsp.hdl.top.Chip` with its host port driven by a
    :class:`~opentsp.hdl.bridge.HostBridge`: the whole design talks over two UART pins.

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
    """Top level on an Amaranth board platform: the board clock (the platform's default clock
    and power-on reset) drives a :class:`BridgedChip` on the board's ``uart`` resource 0; LED
    :data:`LED_RUNNING` shows ``running``, LED :data:`LED_DONE` shows ``done``.

    Parameters
    ----------
    config : Config
        Chip parameters.
    baud : int
        UART bit rate; the bridge's divisor is the board clock over ``baud``, rounded.
    """

    def __init__(self, config, baud=115200):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        if not isinstance(baud, int) or baud < 1:
            raise ValueError(f"baud must be a positive integer, not {baud!r}")
        self.config = config
        self.baud = baud

    def elaborate(self, platform):
        m = Module()
        divisor = round(platform.default_clk_frequency / self.baud)
        m.submodules.design = design = BridgedChip(self.config, divisor)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.submodules.running_led = running = io.Buffer("o", platform.request("led", LED_RUNNING,
                                                                            dir="-"))
        m.submodules.done_led = done = io.Buffer("o", platform.request("led", LED_DONE, dir="-"))
        m.d.comb += [design.uart_rx.eq(rx.i), tx.o.eq(design.uart_tx),
                     running.o.eq(design.running), done.o.eq(design.done)]
        return m
