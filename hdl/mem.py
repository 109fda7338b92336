"""MEM slice: lane-granular SRAM, the ``read`` and ``write`` instructions, host access."""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from opentsp import hostmap, isa, secded
from opentsp.hdl.layouts import is_op
from opentsp.hdl.mem_address import MemAddressing, lane_addresses
from opentsp.hdl.mem_bank import SramBanks
from opentsp.hdl.mem_host import HostPort
from opentsp.hdl.mem_inject import FaultInjection
from opentsp.hdl.mem_read import build_read_output, build_read_request
from opentsp.hdl.mem_sequencer import build_sequencers, instruction_layout
from opentsp.hdl.mem_write import build_write_pipeline
from opentsp.hdl.slice import FunctionalSlice
from opentsp.hdl.stagger import Stagger

__all__ = ["MemSlice", "inject_layout"]

#: Widths of the host's memory address fields (see :mod:`opentsp.hostmap`).
HOST_WORD_BITS = hostmap.MEM_SHIFT - hostmap.WORD_SHIFT
HOST_SUPERLANE_BITS = hostmap.WORD_SHIFT - hostmap.SUPERLANE_SHIFT
HOST_CHUNK_BITS = hostmap.SUPERLANE_SHIFT
#: Widths of the word and lane fields of an ECC place (:func:`opentsp.hostmap.ecc_place`).
PLACE_WORD_BITS = hostmap.PLACE_MEM_SHIFT - hostmap.PLACE_WORD_SHIFT
PLACE_LANE_BITS = hostmap.PLACE_WORD_SHIFT

#: One fault injection entry as a MEM slice sees it (section 6b): ``fire`` is high in the
#: entry's cycle if the entry names this slice.
INJECT_ENTRY = data.StructLayout({"fire": 1, "word": unsigned(PLACE_WORD_BITS),
                                  "lane": unsigned(PLACE_LANE_BITS),
                                  "mask": unsigned(secded.CODE_BITS)})


def inject_layout():
    """The ``inject`` port of :class:`MemSlice`: every injection entry of the host port."""
    return data.ArrayLayout(INJECT_ENTRY, hostmap.INJECT_ENTRIES)


class MemSlice(FunctionalSlice):
    """One MEM slice: lane-granular SRAM, two address sequencers and its pipelines.

    Word ``a`` (taken modulo ``mem_words``) lives in bank ``a % mem_banks``. The SRAM is one
    memory of ``mem_words`` code words per superlane and lane, holding that lane's banks,
    with one synchronous read port and one write port, so that every lane can use its own
    address (``gather``, ``scatter``); a read and a write in one cycle both happen, the read
    returning the old word, which is what a bank does when rule 3 is broken (section 6).

    Superlane 0 (issue cycle): the two address sequencers of section 6a
    (:func:`~opentsp.hdl.mem_sequencer.build_sequencers`) turn the queue's instruction
    (``issue_*``) and their running sequences into at most one ``read``/``gather`` for the
    read port and one ``write``/``scatter`` for the write port; each reaches superlane ``k``
    ``k`` cycles later through its own :class:`Stagger`. ``halt`` (the queue is in or past its
    ``end`` slot) stops sequences from issuing.

    Timing on each superlane, for an instruction it executes in cycle ``t``:

    * ``read s, a``: the SRAM's synchronous read port is addressed in cycle ``t``; it returns
      the word as at the start of ``t`` (a write landing at the end of ``t`` is not seen). The
      word drives the output stream register ``s`` (``e_we``/``w_we``) so that it loads at the
      end of cycle ``t + isa.MEM_READ_LATENCY``.
    * ``write a, s``: the slice input of stream ``s`` is captured in cycle ``t`` and the SRAM
      is written at the end of cycle ``t + isa.MEM_WRITE_COMMIT``, unless ``clear`` is high in
      that cycle (the chip holds ``clear`` high from the cycle after a reset mid-run).
    * ``gather s, a``: like ``read``, but lane ``j`` reads its byte from word ``a[j]`` (the
      unsigned int16 of streams ``a``, ``a+1`` at the slice input in cycle ``t``, modulo
      ``mem_words``); each lane addresses its own memory.
    * ``scatter a, s``: like ``write``, but lane ``j`` writes its byte into word ``a[j]``.
    * stream ids ``>= streams``: ``read`` writes no stream, ``write`` stores zeros, an
      address pair beyond the streams reads as address 0.

    SECDED ECC (section 6b): the SRAM stores 13-bit code words. Each lane of each superlane
    has one :class:`~opentsp.hdl.ecc.Secded`: its encoder on the lane's write data (stream
    writes, scatters, host writes), its decoder between the lane's read data and
    the output stream register (reads, gathers, host reads), so no latency changes. The
    decoders' findings on a ``read``/``gather`` addressing the SRAM in cycle ``t`` (whatever
    its stream) are registered at the end of ``t + 1`` and reported in ``t + 2``:
    ``ecc_corrected`` and ``ecc_detected`` count the lanes whose code word was corrected or
    found uncorrectable, and ``ecc_error`` with ``ecc_error_word``/``ecc_error_lane`` names the
    lowest such lane (superlane-major) with an uncorrectable word; host reads are corrected
    but not counted.

    Fault injection: an ``inject`` entry with ``fire`` high in cycle ``c`` flips (XOR
    ``mask``) the code word of its word and lane from the end of ``c`` on, after a write that
    lands there at the end of ``c``, until a later write to that word and lane (run or host).
    The flip is held beside the SRAM (one flag per entry, applied to the read data before the
    decoder) rather than written into it, which would need a read-modify-write port; what
    every read sees is the same. ``rst`` drops the flips; ``clear`` does not.

    Host access (only while the chip is not running): ``host_we`` writes the 32-bit chunk
    ``host_chunk`` (lanes ``4*chunk..4*chunk+3``, lane ``4*chunk`` in bits 7..0) of superlane
    ``host_superlane`` of word ``host_word`` at the end of the cycle; ``host_re`` reads one,
    ``host_rdata`` holds it in the next cycle.

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    def __init__(self, config):
        super().__init__(config, {
            "halt": In(1),
            "host_word": In(unsigned(HOST_WORD_BITS)),
            "host_superlane": In(unsigned(HOST_SUPERLANE_BITS)),
            "host_chunk": In(unsigned(HOST_CHUNK_BITS)),
            "host_we": In(1),
            "host_re": In(1),
            "host_wdata": In(32),
            "host_rdata": Out(32),
            "inject": In(inject_layout()),
            "ecc_corrected": Out(range(config.lanes + 1)),
            "ecc_detected": Out(range(config.lanes + 1)),
            "ecc_error": Out(1),
            "ecc_error_word": Out(unsigned(PLACE_WORD_BITS)),
            "ecc_error_lane": Out(unsigned(PLACE_LANE_BITS)),
        })

    @property
    def stored_width(self):
        """Bits of one SRAM entry: one lane's SECDED code word."""
        return secded.CODE_BITS

    def elaborate(self, platform):
        """Build the slice from its parts: the sequencers and staggers (superlane 0, issue
        cycle), the fault injection flags and the host port, then each superlane
        (:meth:`_superlane`), then the injection flags' update and the ECC report, which
        need every lane's writes and decoders."""
        m = Module()
        cfg = self._config
        timing = _pipeline_timing()

        (rd_valid, rd_word), (wr_valid, wr_word) = build_sequencers(m, self, self.halt)
        m.submodules.rd_stagger = rd_stagger = Stagger(cfg)
        m.submodules.wr_stagger = wr_stagger = Stagger(cfg)
        for stagger, v, w in ((rd_stagger, rd_valid, rd_word), (wr_stagger, wr_valid, wr_word)):
            m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(v),
                         stagger.i_word.eq(w)]

        addressing = MemAddressing(cfg)
        injection = FaultInjection(m, self.inject, cfg.lanes)
        host = HostPort(m, self, addressing)
        banks = SramBanks(m, self, host, injection)
        for k in range(cfg.superlanes):
            self._superlane(m, k, rd_stagger.o[k], wr_stagger.o[k], addressing, host, banks,
                            timing)
        injection.update_flags(m)
        banks.drive_ecc_report(m)
        return m

    def _superlane(self, m, k, rd_ins, wr_ins, addressing, host, banks, timing):
        """Superlane ``k``: run the read port's and the write port's instruction of this
        cycle (``rd_ins``, ``wr_ins`` from the staggers), with the read pipeline
        (:mod:`~opentsp.hdl.mem_read`), the write pipeline (:mod:`~opentsp.hdl.mem_write`)
        and each lane's SRAM (``banks``); ``timing`` is ``(read_latency,
        write_commit)``."""
        read_latency, write_commit = timing
        layout = instruction_layout()
        rword, wword = layout(rd_ins.word), layout(wr_ins.word)
        # Which instruction each port runs on this superlane in this cycle.
        is_read = Signal(name=f"is_read_{k}")
        is_gather = Signal(name=f"is_gather_{k}")
        is_write = Signal(name=f"is_write_{k}")
        is_scatter = Signal(name=f"is_scatter_{k}")
        m.d.comb += [is_read.eq(rd_ins.valid & is_op(rd_ins.word, "read")),
                     is_gather.eq(rd_ins.valid & is_op(rd_ins.word, "gather")),
                     is_write.eq(wr_ins.valid & is_op(wr_ins.word, "write")),
                     is_scatter.eq(wr_ins.valid & is_op(wr_ins.word, "scatter"))]
        rd_addrs = lane_addresses(m, self, addressing, rword, is_gather, k, "rd")
        wr_addrs = lane_addresses(m, self, addressing, wword, is_scatter, k, "wr")

        wr = build_write_pipeline(m, self, addressing, k, wword, is_write, is_scatter, wr_addrs,
                                  write_commit)

        # Read: per lane a synchronous read port (old data on a same-cycle write); in the
        # next cycle the lane's decoder sees the addressed code word (with
        # any injected flip) for a run read or, when not running, a host read.
        reading = is_read | is_gather
        lookups, rd = build_read_request(m, self, addressing, k, rword, reading, rd_addrs,
                                         host.addr)
        rdata = Signal(8 * self._config.lanes_per_superlane, name=f"rdata_{k}")
        for j in range(self._config.lanes_per_superlane):
            banks.build_lane(k, j, wr[j], rd, lookups[j], rdata)
        build_read_output(m, self, k, rd, rdata, read_latency)


def _pipeline_timing():
    """``(read_latency, write_commit)`` of the MEM instructions, checked to be shared by
    every instruction of a port and to be at least 1."""
    read_latency = isa.OPS_BY_NAME["read"].latency
    write_commit = isa.OPS_BY_NAME["write"].commit
    for name in ("gather", "sread"):
        if isa.OPS_BY_NAME[name].latency != read_latency:
            raise ValueError(f"{name} must have the read latency {read_latency}")
    for name in ("scatter", "swrite"):
        if isa.OPS_BY_NAME[name].commit != write_commit:
            raise ValueError(f"{name} must have the write commit {write_commit}")
    if read_latency < 1 or write_commit < 1:
        raise ValueError("MEM read latency and write commit must be at least 1, not "
                         f"{read_latency!r} and {write_commit!r}")
    return read_latency, write_commit
