"""MEM slice host access: 32-bit chunks of the SRAM, written and read while not running."""

from amaranth.hdl import Const, Mux, Signal

from opentsp import hostmap

__all__ = ["HostPort"]


class HostPort:
    """The host's side of a MEM slice's SRAM (only while the chip is not running).

    ``host_we`` writes the 32-bit chunk ``host_chunk`` (lanes ``4*chunk..4*chunk+3``, lane
    ``4*chunk`` in bits 7..0) of superlane ``host_superlane`` of word ``host_word`` at the
    end of the cycle; ``host_re`` reads one, ``host_rdata`` holds it in the next cycle.

    Creating the object adds the write data and lane enables of a superlane's row and the
    registers of the read request; :meth:`drive_read_data` adds each lane's read data.

    Parameters
    ----------
    m : Module
        Module to add the logic to.
    mem : MemSlice
        The slice (its ``host_*`` ports).
    addressing : MemAddressing
        The slice's word addresses.

    Attributes
    ----------
    addr : Value
        The word address (modulo ``mem_words``) of ``host_word``.
    """

    def __init__(self, m, mem, addressing):
        self._mem = mem
        self.addr = addressing.word_of(mem.host_word)

        # Host write data and byte enables for a row of one superlane.
        chunk_lanes = hostmap.LANES_PER_CHUNK
        self._row_data = Signal(8 * mem.config.lanes_per_superlane, name="host_row_data")
        self._lane_en = Signal(mem.config.lanes_per_superlane, name="host_lane_en")
        for j in range(mem.config.lanes_per_superlane):
            m.d.comb += [
                self._row_data[8 * j:8 * j + 8].eq(
                    mem.host_wdata[8 * (j % chunk_lanes):8 * (j % chunk_lanes) + 8]),
                self._lane_en[j].eq(mem.host_chunk == j // chunk_lanes),
            ]

        # Which superlane the host writes this cycle, decoded once.
        self._superlane_we = Signal(mem.config.superlanes, name="host_superlane_we")
        m.d.comb += self._superlane_we.eq(Mux(mem.host_we, Const(1, 1) << mem.host_superlane, 0))

        # Host read: remember what was asked for, answer from the read ports next cycle.
        self._rd_superlane = Signal.like(mem.host_superlane, name="host_rd_superlane")
        self._rd_chunk = Signal.like(mem.host_chunk, name="host_rd_chunk")
        with m.If(mem.host_re):
            m.d.sync += [self._rd_superlane.eq(mem.host_superlane),
                         self._rd_chunk.eq(mem.host_chunk)]

    def lane_data(self, lane):
        """The byte the host writes into ``lane`` (of any superlane) this cycle."""
        return self._row_data[8 * lane:8 * lane + 8]

    def writes_lane(self, superlane, lane):
        """High when the host writes ``lane`` of ``superlane`` this cycle."""
        return self._superlane_we[superlane] & self._lane_en[lane]

    def drive_read_data(self, m, superlane, lane, data):
        """Answer with ``data`` (``lane``'s corrected read data, in the cycle after the
        host's ``host_re``) when the request named this lane's superlane and chunk."""
        chunk, lane_in_chunk = divmod(lane, hostmap.LANES_PER_CHUNK)
        with m.If((self._rd_superlane == superlane) & (self._rd_chunk == chunk)):
            m.d.comb += self._mem.host_rdata[8 * lane_in_chunk:8 * lane_in_chunk + 8].eq(data)
