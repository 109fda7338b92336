"""Verilog generation of the chip: module ``tsp_top`` with the flat host port plus clk, rst."""

from amaranth.back import verilog

from opentsp.config import get_config
from opentsp.hdl.top import Chip

__all__ = ["TOP_NAME", "PORTS", "generate"]

TOP_NAME = "tsp_top"
#: Ports of ``tsp_top`` besides ``clk`` and ``rst`` (synchronous, active high).
PORTS = ("host_addr", "host_wdata", "host_wen", "host_ren", "host_rdata", "host_rvalid",
         "done", "running")


def generate(config):
    """Return the Verilog source of :class:`~opentsp.hdl.top.Chip` for ``config`` (a
    :class:`~opentsp.config.Config` or a configuration name)."""
    chip = Chip(get_config(config))
    return verilog.convert(chip, name=TOP_NAME,
                           ports=[getattr(chip, name) for name in PORTS])
