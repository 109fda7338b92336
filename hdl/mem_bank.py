"""MEM slice storage: per lane the SRAM banks, its SECDED codec and the ECC findings."""

from amaranth.hdl import Cat, Mux, Signal, unsigned
from amaranth.lib import memory

from opentsp import secded
from opentsp.hdl.ecc import Secded

__all__ = ["SramBanks"]


class SramBanks:
    """The SRAM of a MEM slice with its ECC, built lane by lane (:meth:`build_lane`).

    Per superlane, lane and bank one memory of 13-bit code words with one synchronous read
    port and one write port, so that every lane can use its own address. Each lane has one
    :class:`~opentsp.hdl.ecc.Secded`: its encoder on the lane's write data (run commit, else
    host write), its decoder between the bank-selected read data (with any injected flip) and
    the read pipeline, so ECC adds no cycle. :meth:`drive_ecc_report` adds the count of the
    decoders' findings once every lane is built.

    Parameters
    ----------
    m : Module
        Module to add the SRAM and codecs to (as submodules ``sram_*`` and ``secded_*``).
    mem : MemSlice
        The slice (its ``clear`` input, ``ecc_*`` outputs and configuration).
    addressing : MemAddressing
        The slice's bank geometry.
    host : HostPort
        The host's access, which writes and reads through the same ports.
    injection : FaultInjection
        The injected flips, applied to the read data and cleared by the writes.
    """

    def __init__(self, m, mem, addressing, host, injection):
        self._m, self._mem, self._addressing = m, mem, addressing
        self._host, self._injection = host, injection
        # Per global lane (superlane-major): the decoder's findings on a run read.
        self._corrected_lanes, self._detected_lanes, self._error_words = [], [], []

    def build_lane(self, superlane, lane, commit, rd, read_addr, reading, rdata):
        """Add the SRAM banks and the codec of ``lane`` of ``superlane``.

        In cycle ``t`` the banks are read at ``read_addr`` when ``reading`` (else at the
        host's row) and written at the end of ``t`` by the commit ``commit`` (else by the
        host); a commit due in a cycle with ``clear`` high is dropped. In cycle ``t + 1``
        the decoder sees the code word of the bank ``rd`` addressed, corrects it into the
        lane's byte of ``rdata`` and of the host's read data, and reports its findings.

        Parameters
        ----------
        superlane, lane : int
            Superlane index and lane index within the superlane.
        commit : View
            The lane's commit of this cycle (:func:`~opentsp.hdl.mem_write.commit_layout`).
        rd : View
            The superlane's read request (:func:`~opentsp.hdl.mem_read.build_read_request`).
        read_addr : Value
            The word address the lane reads this cycle.
        reading : Value
            A run ``read``/``gather`` addresses the SRAM this cycle.
        rdata : Signal
            The superlane's corrected read data, driven lane by lane.
        """
        m, mem = self._m, self._mem
        k, j = superlane, lane
        global_lane = k * mem.config.lanes_per_superlane + j
        codec = Secded()
        m.submodules[f"secded_{k}_{j}"] = codec
        # a commit due in a cycle with clear high is dropped (a reset mid-run)
        committing = Signal(name=f"committing_{k}_{j}")
        m.d.comb += committing.eq(commit.valid & ~mem.clear)
        m.d.comb += codec.data.eq(Mux(committing, commit.data, self._host.lane_data(j)))
        stored = Signal(mem.stored_width, name=f"stored_{k}_{j}")
        flip = Signal(secded.CODE_BITS, name=f"flip_{k}_{j}")
        m.d.comb += flip.eq(self._injection.flip_then(rd.lookup[j], global_lane))
        for b in range(mem.config.mem_banks):
            rp_data = self._build_bank(k, j, b, codec, committing, commit, read_addr, reading)
            with m.If(rd.bank[j] == b):
                m.d.comb += stored.eq(rp_data ^ flip)
        m.d.comb += [codec.stored.eq(stored),
                     rdata[8 * j:8 * j + 8].eq(codec.corrected_data)]
        self._corrected_lanes.append(rd.read & codec.corrected)
        self._detected_lanes.append(rd.read & codec.detected)
        self._error_words.append(rd.lookup[j])     # a run read's address when rd.read
        self._note_write(k, j, global_lane, committing, commit)
        self._host.drive_read_data(m, k, j, codec.corrected_data)

    def _build_bank(self, k, j, bank, codec, committing, commit, read_addr, reading):
        """Add bank ``bank`` of lane ``j`` of superlane ``k``; return its read data (the row
        addressed in the previous cycle: old data on a same-cycle write)."""
        m, mem, addressing = self._m, self._mem, self._addressing
        sram = memory.Memory(shape=unsigned(mem.stored_width),
                             depth=mem.config.words_per_bank, init=[])
        m.submodules[f"sram_{k}_{j}_{bank}"] = sram
        rp = sram.read_port(transparent_for=())
        wp = sram.write_port()
        commit_here = committing & (commit.bank == bank)
        host_here = self._host.writes_bank(k, j, bank)
        m.d.comb += [
            rp.addr.eq(Mux(reading & (addressing.bank_of(read_addr) == bank),
                           addressing.row_of(read_addr), self._host.row)),
            wp.addr.eq(Mux(commit_here, commit.row, self._host.row)),
            wp.data.eq(codec.code),
            wp.en.eq(commit_here | host_here),
        ]
        return rp.data

    def _note_write(self, k, j, global_lane, committing, commit):
        """Writes that replace an injected word (run commit or host write), compared on the
        one address the lane's write port uses (the commit's, else the host's)."""
        m, addressing = self._m, self._addressing
        host_lane_we = self._host.writes_lane(k, j)
        written = Signal(max(addressing.addr_bits, 1), name=f"wr_lookup_{k}_{j}")
        m.d.comb += written.eq(Mux(committing, Cat(commit.bank[:addressing.bank_bits],
                                                   commit.row), self._host.addr))
        self._injection.note_write(global_lane, committing, host_lane_we, written)

    def drive_ecc_report(self, m):
        """The decoders' findings of this cycle (on the run reads of the previous cycle):
        ``ecc_corrected``/``ecc_detected`` count the lanes, the lowest lane with an
        uncorrectable word names the first error (``ecc_error_word``/``ecc_error_lane``)."""
        mem, detected = self._mem, self._detected_lanes
        m.d.comb += [mem.ecc_corrected.eq(_count(self._corrected_lanes)),
                     mem.ecc_detected.eq(_count(detected)),
                     mem.ecc_error.eq(Cat(*detected).any())]
        for lane in reversed(range(len(detected))):
            with m.If(detected[lane]):
                m.d.comb += [mem.ecc_error_word.eq(self._error_words[lane]),
                             mem.ecc_error_lane.eq(lane)]


def _count(bits):
    """Number of set bits among ``bits``, as a balanced adder tree."""
    values = list(bits)
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]
