"""The ECP5 PLL: the divider search against the PLL's own formulas and ranges, its Instance,
and the board top with and without it."""

import pytest
from amaranth.back import rtlil

from opentsp.app.fpga import FpgaError, build, get_platform
from opentsp.config import CONFIGS, Config
from opentsp.hdl.board.pll import PFD_MHZ, VCO_MHZ, Ecp5Pll, PllSetting, pll_setting
from opentsp.hdl.board.shell import BoardTop

SMALL = Config(name="pll", superlanes=1, lanes_per_superlane=4, streams=4, mem_slices=1,
               mem_words=4, queue_depth=4, clock_mhz=12.5, floating_point=False)


def ref_pll_out(in_mhz, clki_div, clkfb_div, clkop_div):
    """EHXPLLL with CLKOP fed back: the feedback divider sees CLKOP, so the phase detector
    compares in/clki with out/clkfb; the VCO runs at out * clkop."""
    pfd = in_mhz / clki_div
    out = pfd * clkfb_div
    return pfd, out, out * clkop_div


@pytest.mark.parametrize("out_mhz", [3.125, 5, 10, 12.5, 15, 20, 33.333, 40, 50, 62.5, 100,
                                     133.33, 200, 400])
def test_setting_makes_the_clock_within_the_pll_ranges(out_mhz):
    setting = pll_setting(25.0, out_mhz)
    pfd, out, vco = ref_pll_out(25.0, setting.clki_div, setting.clkfb_div, setting.clkop_div)
    assert abs(out - out_mhz) / out_mhz <= 1e-3
    assert setting.out_mhz == pytest.approx(out) and setting.vco_mhz == pytest.approx(vco)
    assert PFD_MHZ[0] <= pfd <= PFD_MHZ[1] and VCO_MHZ[0] <= vco <= VCO_MHZ[1]


def test_half_the_board_clock_is_exact():
    setting = pll_setting(25.0, 12.5)
    assert setting.out_mhz == 12.5
    assert (setting.clki_div, setting.clkfb_div) == (2, 1)
    assert setting.vco_mhz == 600.0          # the middle of the VCO range


@pytest.mark.parametrize("in_mhz, out_mhz, message", [
    (25.0, 0, "PLL out_mhz must be a positive number, not 0"),
    (25.0, -3.0, "PLL out_mhz must be a positive number, not -3.0"),
    (25.0, True, "PLL out_mhz must be a positive number, not True"),
    (25.0, "12", "PLL out_mhz must be a positive number, not '12'"),
    (0, 12.5, "PLL in_mhz must be a positive number, not 0"),
    (25.0, 500.0, "PLL output must be between 3.125 and 400.0 MHz, not 500.0"),
    (25.0, 1.0, "PLL output must be between 3.125 and 400.0 MHz, not 1.0"),
    (2.0, 12.5, "the ECP5 PLL cannot make 12.5 MHz from 2.0 MHz within 0.1%"),
])
def test_clocks_the_pll_cannot_make(in_mhz, out_mhz, message):
    with pytest.raises(ValueError) as info:
        pll_setting(in_mhz, out_mhz)
    assert str(info.value) == message


def test_pll_instance_parameters():
    pll = Ecp5Pll(pll_setting(25.0, 12.5))
    text = rtlil.convert(pll, ports=[pll.clk_in, pll.clk_out, pll.locked])
    assert "cell \\EHXPLLL" in text
    for name, value in (("CLKI_DIV", 2), ("CLKFB_DIV", 1), ("CLKOP_DIV", 48)):
        assert f"parameter \\{name} {value}\n" in text, name
    assert 'parameter \\FEEDBK_PATH "CLKOP"' in text
    with pytest.raises(TypeError, match="setting must be a PllSetting, not 12.5"):
        Ecp5Pll(12.5)
    assert Ecp5Pll(PllSetting(25.0, 2, 1, 48)).setting.vco_mhz == 600.0


def test_board_top_uses_the_pll_only_off_the_oscillator():
    platform = get_platform("ulx3s-85f")
    with_pll = platform.prepare(BoardTop(SMALL), name="opentsp")
    for cell in ("EHXPLLL", "SGSR", "FD1S3AX"):      # reset held until the PLL locks
        assert f"cell \\{cell} " in with_pll.files["opentsp.il"], cell
    assert 'FREQUENCY PORT "clk25_0__io" 25000000' in with_pll.files["opentsp.lpf"]
    direct = get_platform("ulx3s-85f").prepare(BoardTop(SMALL, clock_mhz=25), name="opentsp")
    assert "EHXPLLL" not in direct.files["opentsp.il"]
    assert "cell \\SGSR " in direct.files["opentsp.il"]          # Amaranth's own reset
    assert BoardTop(SMALL).pll_setting(platform).out_mhz == 12.5
    assert BoardTop(SMALL, clock_mhz=25.0).pll_setting(platform) is None
    with pytest.raises(ValueError, match="clock_mhz must be a positive number, not -1"):
        BoardTop(SMALL, clock_mhz=-1)


def test_flow_refuses_a_clock_or_router_before_running_tools(tmp_path):
    with pytest.raises(FpgaError) as info:
        build(config=SMALL, out_dir=tmp_path, clock_mhz=1000.0)
    assert str(info.value) == ("--clock-mhz 1000: PLL output must be between 3.125 and 400.0 "
                               "MHz, not 1000.0")
    with pytest.raises(FpgaError, match="router must be one of router2, router1, not 'fast'"):
        build(config=SMALL, out_dir=tmp_path, router="fast")
    assert not any(tmp_path.iterdir())


def test_the_fpga_configurations_clocks_are_made_exactly():
    """Each FPGA configuration's clock comes from the oscillator itself or from PLL dividers
    that make it exactly (``fpga``: 35 MHz = 25 MHz x 7 / 5, docs/fpga.md)."""
    platform = get_platform("ulx3s-85f")
    for name in ("fpga", "fpga_small", "fpga_large"):
        top = BoardTop(CONFIGS[name])
        setting = top.pll_setting(platform)
        made = 25.0 if setting is None else setting.out_mhz
        assert made == CONFIGS[name].clock_mhz, name
    assert BoardTop(CONFIGS["fpga"]).pll_setting(platform) == PllSetting(25.0, 5, 7, 17)
