"""MEM slice storage: per lane the SRAM, its SECDED codec and the ECC findings."""

from amaranth.hdl import Cat, Mux, Signal, unsigned
from amaranth.lib import memory

from opentsp.hdl.ecc import Secded

__all__ = ["SramBanks"]


class SramBanks:
    """The SRAM of a MEM slice with its ECC, built lane by lane (:meth:`build_lane`).

    Per superlane and lane one memory of ``mem_words`` 13-bit code words, holding that lane's
    banks, with one synchronous read port and one write port, so that every lane can use its
    own address. A read and a write in one cycle both happen whatever their banks, the read
    returning the old word: what a bank with a read and a write port does when rule 3 is
    broken (section 6), and what separate banks do when it is kept. Each lane has one
    :class:`~opentsp.hdl.ecc.Secded`: its encoder on the lane's write data (run commit, else
    host write), its decoder between the read data (with any injected flip) and the read
    pipeline, so ECC adds no cycle. :meth:`drive_ecc_report` adds the count of the decoders'
    findings once every lane is built.

    Parameters
    ----------
    m : Module
        Module to add the SRAM and codecs to (as submodules ``sram_*`` and ``secded_*``).
    mem : MemSlice
        The slice (its ``clear`` input, ``ecc_*`` outputs and configuration).
    host : HostPort
        The host's access, which writes and reads through the same ports.
    injection : FaultInjection
        The injected flips, applied to the read data and cleared by the writes.
    """

    def __init__(self, m, mem, host, injection):
        self._m, self._mem = m, mem
        self._host, self._injection = host, injection
        # Per global lane (superlane-major): the decoder's findings on a run read.
        self._corrected_lanes, self._detected_lanes, self._error_words = [], [], []

    def build_lane(self, superlane, lane, commit, rd, lookup, rdata):
        """Add the SRAM and the codec of ``lane`` of ``superlane``.

        In cycle ``t`` the lane's memory is read at ``lookup`` and written at the end of
        ``t`` by the commit ``commit`` (else by the host); a commit due in a cycle with
        ``clear`` high is dropped. In cycle ``t + 1`` the decoder sees the code word read,
        corrects it into the lane's byte of ``rdata`` and of the host's read data, and
        reports its findings.

        Parameters
        ----------
        superlane, lane : int
            Superlane index and lane index within the superlane.
        commit : View
            The lane's commit of this cycle (:func:`~opentsp.hdl.mem_write.commit_layout`).
        rd : View
            The superlane's read request (:func:`~opentsp.hdl.mem_read.build_read_request`).
        lookup : Value
            The word address the lane reads this cycle (run read, else the host's).
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
        host_writing = self._host.writes_lane(k, j)
        m.d.comb += committing.eq(commit.valid & ~mem.clear)
        m.d.comb += codec.data.eq(Mux(committing, commit.data, self._host.lane_data(j)))
        written = Signal.like(commit.addr, name=f"wr_lookup_{k}_{j}")
        m.d.comb += written.eq(Mux(committing, commit.addr, self._host.addr))

        sram = memory.Memory(shape=unsigned(mem.stored_width), depth=mem.config.mem_words,
                             init=[])
        m.submodules[f"sram_{k}_{j}"] = sram
        read_port = sram.read_port(transparent_for=())
        write_port = sram.write_port()
        stored = Signal(mem.stored_width, name=f"stored_{k}_{j}")
        m.d.comb += [
            read_port.addr.eq(lookup),
            write_port.addr.eq(written),
            write_port.data.eq(codec.code),
            write_port.en.eq(committing | host_writing),
            stored.eq(read_port.data ^ self._injection.flip_then(rd.lookup[j], global_lane)),
            codec.stored.eq(stored),
            rdata[8 * j:8 * j + 8].eq(codec.corrected_data),
        ]
        self._corrected_lanes.append(rd.read & codec.corrected)
        self._detected_lanes.append(rd.read & codec.detected)
        self._error_words.append(rd.lookup[j])     # a run read's address when rd.read
        self._injection.note_write(global_lane, committing, host_writing, written)
        self._host.drive_read_data(m, k, j, codec.corrected_data)

    def drive_ecc_report(self, m):
        """Register the decoders' findings of this cycle (on the run reads of the previous
        cycle), so the slice reports them in the next: ``ecc_corrected``/``ecc_detected``
        count the lanes, the lowest lane with an uncorrectable word names the first error
        (``ecc_error_word``/``ecc_error_lane``).

        The register keeps the decoders' path (flip, SECDED decode, count) inside the slice;
        the host port combines what the slices report one cycle later
        (:meth:`~opentsp.hdl.host_port.HostPort.add_ecc_registers`).
        """
        mem, detected = self._mem, self._detected_lanes
        m.d.sync += [mem.ecc_corrected.eq(_count(self._corrected_lanes)),
                     mem.ecc_detected.eq(_count(detected)),
                     mem.ecc_error.eq(Cat(*detected).any())]
        error_word = Signal.like(mem.ecc_error_word, name="ecc_first_word")
        error_lane = Signal.like(mem.ecc_error_lane, name="ecc_first_lane")
        for lane in reversed(range(len(detected))):
            with m.If(detected[lane]):
                m.d.comb += [error_word.eq(self._error_words[lane]), error_lane.eq(lane)]
        m.d.sync += [mem.ecc_error_word.eq(error_word), mem.ecc_error_lane.eq(error_lane)]


def _count(bits):
    """Number of set bits among ``bits``, as a balanced adder tree."""
    values = list(bits)
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]
