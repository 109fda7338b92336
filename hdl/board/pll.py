"""ECP5 PLL (``EHXPLLL``): the chip's clock made from a board oscillator."""

from dataclasses import dataclass

from amaranth.hdl import Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PllSetting", "check_mhz", "pll_setting", "Ecp5Pll"]

# ECP5 sysCLOCK PLL ranges (Lattice FPGA-TN-02200, "ECP5 and ECP5-5G sysCLOCK PLL/DLL Design
# and Usage Guide", table of PLL timing parameters), in MHz.
PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)
OUT_MHZ = (3.125, 400.0)
CLKI_DIVS = range(1, 129)
CLKFB_DIVS = range(1, 81)
CLKOP_DIVS = range(1, 129)
#: The largest relative error :func:`pll_setting` accepts between the asked and the made clock.
TOLERANCE = 1e-3


@dataclass(frozen=True)
class PllSetting:
    """Dividers of one ``EHXPLLL`` with ``CLKOP`` fed back: ``out = in * clkfb / clki`` and
    the VCO runs at ``out * clkop``."""

    in_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def out_mhz(self):
        return self.in_mhz * self.clkfb_div / self.clki_div

    @property
    def vco_mhz(self):
        return self.out_mhz * self.clkop_div


def check_mhz(name, value):
    """``value`` if it is a positive number of MHz, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return value


def pll_setting(in_mhz, out_mhz):
    """The dividers that make ``out_mhz`` from ``in_mhz`` (within :data:`TOLERANCE`), with the
    VCO nearest the middle of its range; a clock the PLL cannot make raises ``ValueError``."""
    check_mhz("PLL in_mhz", in_mhz)
    check_mhz("PLL out_mhz", out_mhz)
    if not OUT_MHZ[0] <= out_mhz <= OUT_MHZ[1]:
        raise ValueError(f"PLL output must be between {OUT_MHZ[0]} and {OUT_MHZ[1]} MHz, "
                         f"not {out_mhz!r}")
    best = None
    middle = sum(VCO_MHZ) / 2
    for clki in CLKI_DIVS:
        if not PFD_MHZ[0] <= in_mhz / clki <= PFD_MHZ[1]:
            continue
        for clkfb in CLKFB_DIVS:
            made = in_mhz * clkfb / clki
            error = abs(made - out_mhz) / out_mhz
            if error > TOLERANCE:
                continue
            for clkop in CLKOP_DIVS:
                if not VCO_MHZ[0] <= made * clkop <= VCO_MHZ[1]:
                    continue
                key = (error, abs(made * clkop - middle), clki)
                if best is None or key < best[0]:
                    best = (key, PllSetting(float(in_mhz), clki, clkfb, clkop))
    if best is None:
        raise ValueError(f"the ECP5 PLL cannot make {out_mhz} MHz from {in_mhz} MHz within "
                         f"{TOLERANCE:.1%}")
    return best[1]


class Ecp5Pll(wiring.Component):
    """An ``EHXPLLL`` that makes ``clk_out`` from ``clk_in``; ``locked`` is its ``LOCK``.

    The user defines the clock domain on ``clk_out`` and holds it in reset while ``locked``
    is low, so that nothing runs before the clock is stable (:class:`~opentsp.hdl.board.BoardTop`
    does it with the global set/reset). Only synthesis knows the vendor primitive.

    Parameters
    ----------
    setting : PllSetting
        From :func:`pll_setting`.
    """

    clk_in: In(1)
    clk_out: Out(1)
    locked: Out(1)

    def __init__(self, setting):
        if not isinstance(setting, PllSetting):
            raise TypeError(f"setting must be a PllSetting, not {setting!r}")
        self._setting = setting
        super().__init__()

    @property
    def setting(self):
        return self._setting

    def elaborate(self, platform):
        m = Module()
        s = self._setting
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{s.in_mhz:.6f}",
            a_FREQUENCY_PIN_CLKOP=f"{s.out_mhz:.6f}",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=s.clki_div, p_CLKFB_DIV=s.clkfb_div, p_FEEDBK_PATH="CLKOP",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=s.clkop_div, p_CLKOP_CPHASE=s.clkop_div - 1,
            p_CLKOP_FPHASE=0,
            i_CLKI=self.clk_in, i_CLKFB=self.clk_out, o_CLKOP=self.clk_out,
            o_LOCK=self.locked,
            i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=0, i_PHASESTEP=0,
            i_PHASELOADREG=0, i_PLLWAKESYNC=0, i_ENCLKOP=0,
        )
        return m
