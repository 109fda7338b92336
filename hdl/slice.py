"""The ports every functional slice shares: its queue's issue, its stream inputs and outputs."""

from amaranth.hdl import unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import isa
from opentsp.config import Config
from opentsp.hdl.layouts import bundle_layout, mask_layout

__all__ = ["IssueSignature", "FunctionalSlice"]


class IssueSignature(wiring.Signature):
    """The instruction a queue issues to its slice in a cycle, on superlane 0: the queue drives
    ``Out(IssueSignature())``, the slice takes ``In(IssueSignature())``, and the chip joins them
    with :func:`amaranth.lib.wiring.connect`.

    Members
    -------
    valid : Out(1)
        An instruction issues this cycle.
    word : Out(unsigned(isa.INSTR_BITS))
        Its encoding, meaningful while ``valid``; combinational in the issue cycle (latency 0).
    """

    def __init__(self):
        super().__init__({"valid": Out(1), "word": Out(unsigned(isa.INSTR_BITS))})


class FunctionalSlice(wiring.Component):
    """Base of the MEM, VXM, MXM and SXM slices.

    Every slice has these ports, which :class:`~opentsp.hdl.top.Chip` wires alike:

    * ``clear`` (In 1): soft reset of the run state, in the cycle it is high;
    * ``issue`` (In(:class:`IssueSignature`)): the instruction its queue issues this cycle on
      superlane 0 (each slice delays it by ``k`` cycles for superlane ``k``: the stagger);
    * ``e_in``, ``w_in`` (In, bundles): the eastward and westward stream registers at the
      slice's input (its upstream neighbours' outputs);
    * ``e_we``, ``w_we`` (Out, masks) and ``e_wdata``, ``w_wdata`` (Out, bundles): per stream
      and superlane, load the slice's own value into its output stream register at the end of
      this cycle instead of the upstream one.

    Parameters
    ----------
    config : Config
        Chip parameters.
    extra : dict, optional
        Signature members of the particular slice.
    """

    def __init__(self, config, extra=None):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        self._config = config
        bundle = bundle_layout(config)
        mask = mask_layout(config)
        super().__init__({
            "clear": In(1),
            "issue": In(IssueSignature()),
            "e_in": In(bundle), "w_in": In(bundle),
            "e_we": Out(mask), "w_we": Out(mask),
            "e_wdata": Out(bundle), "w_wdata": Out(bundle),
            **(extra or {}),
        })

    @property
    def config(self):
        return self._config
