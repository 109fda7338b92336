"""Verilog generation of the chip: module ``tsp_top`` with the flat host port plus clk, rst, and
on a configuration with links (``Config.c2c_links``) the link ports of
:func:`opentsp.hdl.top.link_ports`."""

from amaranth.back import verilog

from opentsp.config import get_config
from opentsp.hdl.top import Chip, link_ports

__all__ = ["TOP_NAME", "PORTS", "ports", "generate"]

TOP_NAME = "tsp_top"
#: The host-port ports of ``tsp_top`` besides ``clk`` and ``rst`` (synchronous, active high):
#: every configuration's (:func:`ports` adds the link ports).
PORTS = ("host_addr", "host_wdata", "host_wen", "host_ren", "host_rdata", "host_rvalid",
         "done", "running")


def ports(config):
    """The ports of ``tsp_top`` for ``config`` besides ``clk`` and ``rst``: :data:`PORTS`, then
    the link ports (``c2c_w0_tx_valid``, ...: none without links)."""
    return PORTS + tuple(link_ports(get_config(config)))


def generate(config):
    """Return the Verilog source of :class:`~opentsp.hdl.top.Chip` for ``config`` (a
    :class:`~opentsp.config.Config` or a configuration name), with the ports of
    :func:`ports`."""
    config = get_config(config)
    chip = Chip(config)
    return verilog.convert(chip, name=TOP_NAME,
                           ports=[getattr(chip, name) for name in ports(config)])
