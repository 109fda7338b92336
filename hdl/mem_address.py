"""MEM slice addressing: which bank and row hold a word, and each lane's word address."""

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned

from opentsp.hdl.layouts import select_stream

__all__ = ["MemAddressing", "lane_addresses", "log2"]


def log2(value):
    """Base-2 logarithm of the power of two ``value``."""
    return value.bit_length() - 1


class MemAddressing:
    """The bank geometry of a MEM slice: word ``a`` lives in bank ``a % mem_banks``, row
    ``a // mem_banks`` (``mem_words`` and ``mem_banks`` are powers of two).

    Combinational only: the methods slice an address, they add no logic to a module.

    Parameters
    ----------
    config : Config
        Chip parameters (``mem_words``, ``mem_banks``).

    Attributes
    ----------
    addr_bits : int
        Bits of a word address (0 for a single word).
    bank_bits : int
        Bits of a bank number (0 for a single bank).
    row_shape : Shape
        Shape of a row number within a bank (at least one bit).
    """

    def __init__(self, config):
        self.addr_bits = log2(config.mem_words)
        self.bank_bits = log2(config.mem_banks)
        self.row_shape = unsigned(max(self.addr_bits - self.bank_bits, 1))

    def bank_of(self, addr):
        """The bank of word address ``addr`` (a 1-bit zero when there is one bank)."""
        return addr[:self.bank_bits] if self.bank_bits else Const(0, 1)

    def row_of(self, addr):
        """The row of word address ``addr`` within its bank (a 1-bit zero when the banks
        have one row each)."""
        abits, bbits = self.addr_bits, self.bank_bits
        return addr[bbits:abits] if abits > bbits else Const(0, 1)

    def word_of(self, addr):
        """``addr`` modulo ``mem_words`` (a 1-bit zero when there is one word)."""
        return addr[:self.addr_bits] if self.addr_bits else Const(0, 1)


def lane_addresses(m, mem, addressing, word, is_lanewise, superlane, name):
    """Per lane of ``superlane``: the word address the lane uses in this cycle.

    Combinational, in the cycle the superlane executes the instruction ``word``: one address
    for all lanes (``word.addr``: ``read``, ``write``), or when ``is_lanewise`` the lane's own
    (the unsigned int16 of the stream pair ``a``, ``a+1`` at the slice input: ``gather``,
    ``scatter``); each taken modulo ``mem_words``.

    Parameters
    ----------
    m : Module
        Module to add the stream selection to.
    mem : MemSlice
        The slice (its ``e_in``/``w_in`` inputs and configuration).
    addressing : MemAddressing
        The slice's bank geometry.
    word : View
        The instruction, in the MEM instructions' merged layout.
    is_lanewise : Value
        High when every lane takes its own address from the streams.
    superlane : int
        Superlane index.
    name : str
        Prefix of the signal names (``rd``, ``wr``).

    Returns
    -------
    list of Value
        One word address per lane of the superlane.
    """
    cfg = mem.config
    k = superlane
    lo = select_stream(m, mem.e_in, mem.w_in, word.a.dir, word.a.id, k, cfg, f"{name}_alo_{k}")
    hi = select_stream(m, mem.e_in, mem.w_in, word.a.dir, word.a.id | 1, k, cfg,
                       f"{name}_ahi_{k}")
    addrs = []
    for j in range(cfg.lanes_per_superlane):
        lane = Signal(max(addressing.addr_bits, 1), name=f"{name}_addr_{k}_{j}")
        m.d.comb += lane.eq(Mux(is_lanewise, Cat(lo[j], hi[j]), word.addr))
        addrs.append(addressing.word_of(lane))
    return addrs
