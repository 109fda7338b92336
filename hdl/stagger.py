"""The superlane stagger: a delay line of issued instructions, one register per superlane."""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from opentsp import isa
from opentsp.config import Config
from opentsp.hdl.layouts import ISSUE

__all__ = ["Stagger"]


class Stagger(wiring.Component):
    """Delay line that hands an issued instruction to superlane ``k`` ``k`` cycles late.

    ``o[0]`` is ``i`` combinationally (superlane 0 executes in the issue cycle ``t``);
    ``o[k]`` is ``o[k-1]`` delayed by one register, so superlane ``k`` sees the instruction
    in cycle ``t + k``.

    Parameters
    ----------
    config : Config
        Chip parameters (``superlanes``).

    Attributes
    ----------
    clear : In(1)
        Soft reset: empties the delay line (valid bits to zero) at the end of the cycle.
    i_valid, i_word : In(1), In(32)
        The instruction issued by the queue this cycle.
    o : Out(ArrayLayout(ISSUE, superlanes))
        The instruction each superlane executes this cycle.
    """

    def __init__(self, config):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        self._config = config
        super().__init__({
            "clear": In(1),
            "i_valid": In(1),
            "i_word": In(unsigned(isa.INSTR_BITS)),
            "o": Out(data.ArrayLayout(ISSUE, config.superlanes)),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        prev = Signal(ISSUE, name="line_0")
        m.d.comb += [prev.valid.eq(self.i_valid), prev.word.eq(self.i_word), self.o[0].eq(prev)]
        for k in range(1, self._config.superlanes):
            reg = Signal(ISSUE, name=f"line_{k}")
            with m.If(self.clear):
                m.d.sync += reg.eq(0)
            with m.Else():
                m.d.sync += reg.eq(prev)
            m.d.comb += self.o[k].eq(reg)
            prev = reg
        return m
