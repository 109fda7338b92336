"""MEM slice addressing: word addresses, and each lane's word address in a cycle."""

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned

from opentsp.hdl.layouts import select_stream

__all__ = ["MemAddressing", "lane_addresses", "log2"]


def log2(value):
    """Base-2 logarithm of the power of two ``value``."""
    return value.bit_length() - 1


class MemAddressing:
    """The word addresses of a MEM slice (``mem_words`` is a power of two).

    Combinational only: the methods slice an address, they add no logic to a module. Word
    ``a`` lives in bank ``a % mem_banks`` (rule 3 of section 6 keeps a read and a commit off
    one bank); the RTL holds a lane's banks in one memory with one read and one write port,
    which behaves as the banks do: a read and a write in one cycle both happen, the read
    returning the old word.

    Parameters
    ----------
    config : Config
        Chip parameters (``mem_words``).

    Attributes
    ----------
    addr_bits : int
        Bits of a word address (0 for a single word).
    addr_shape : Shape
        Shape of a word address as the RTL holds it (at least one bit).
    """

    def __init__(self, config):
        self.addr_bits = log2(config.mem_words)
        self.addr_shape = unsigned(max(self.addr_bits, 1))

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
        lane = Signal(addressing.addr_shape, name=f"{name}_addr_{k}_{j}")
        m.d.comb += lane.eq(Mux(is_lanewise, Cat(lo[j], hi[j]), word.addr))
        addrs.append(addressing.word_of(lane))
    return addrs
