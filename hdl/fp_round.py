"""Helpers shared by the floating-point datapaths (not components): rounding, the leading one,
the 16-bit format check."""

from amaranth.hdl import Const, Signal

from opentsp import fp

__all__ = ["round_shift", "top_bit", "half_format"]


def round_shift(m, value, shift, width, name):
    """``value >> shift`` rounded to nearest, ties to even, as a ``width``-bit signal (``shift
    >= 1``, an unsigned signal; the caller caps it where every larger shift gives 0)."""
    kept = Signal(width, name=f"{name}_kept")
    rest = Signal(len(value), name=f"{name}_rest")
    half = Signal(len(value) + 1, name=f"{name}_half")
    below = Signal.like(shift, name=f"{name}_below")
    rounded = Signal(width, name=name)
    m.d.comb += [kept.eq(value >> shift),
                 rest.eq(value - (kept << shift)),
                 below.eq(shift - 1),
                 half.eq(Const(1, 1) << below),
                 rounded.eq(kept + ((rest > half) | ((rest == half) & kept[0])))]
    return rounded


def top_bit(m, value, name):
    """The index of the highest set bit of ``value`` (0 when ``value`` is 0), a signal."""
    top = Signal(range(max(len(value), 2)), name=name)
    for i in range(len(value)):
        with m.If(value[i]):
            m.d.comb += top.eq(i)
    return top



def half_format(fmt, component):
    """``fmt`` if it is fp16 or bf16, else ``ValueError`` naming ``component``."""
    if fmt not in (fp.FP16, fp.BF16):
        raise ValueError(f"{component} format must be fp.FP16 or fp.BF16, not {fmt!r}")
    return fmt
