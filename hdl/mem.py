"""MEM slice: banked SRAM per superlane, the ``read`` and ``write`` instructions, host access."""

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from opentsp import hostmap, isa
from opentsp.config import Config

from .layouts import bundle_layout, is_op, mask_layout, merged_layout, select_stream
from .stagger import Stagger

__all__ = ["MemSlice"]

#: Widths of the host's memory address fields (see :mod:`opentsp.hostmap`).
HOST_WORD_BITS = hostmap.MEM_SHIFT - hostmap.WORD_SHIFT
HOST_SUPERLANE_BITS = hostmap.WORD_SHIFT - hostmap.SUPERLANE_SHIFT
HOST_CHUNK_BITS = hostmap.SUPERLANE_SHIFT


def _log2(value):
    return value.bit_length() - 1


class MemSlice(wiring.Component):
    """One MEM slice: ``superlanes x mem_banks`` SRAM banks and its instruction pipeline.

    Word ``a`` (taken modulo ``mem_words``) lives in bank ``a % mem_banks``, row
    ``a // mem_banks``; each superlane has its own banks of ``lanes_per_superlane`` bytes per
    row. The instruction issued by the slice's queue (``issue_*``, superlane 0) reaches
    superlane ``k`` ``k`` cycles later through a :class:`Stagger`.

    Timing on each superlane, for an instruction it executes in cycle ``t``:

    * ``read s, a``: the bank's synchronous read port is addressed in cycle ``t``; it returns
      the word as at the start of ``t`` (a write landing at the end of ``t`` is not seen). The
      word drives the output stream register ``s`` (``e_we``/``w_we``) so that it loads at the
      end of cycle ``t + isa.MEM_READ_LATENCY``.
    * ``write a, s``: the slice input of stream ``s`` is captured in cycle ``t`` and the bank
      is written at the end of cycle ``t + isa.MEM_WRITE_COMMIT``.
    * stream ids ``>= streams``: ``read`` writes no stream, ``write`` stores zeros.

    Every SRAM write goes through :meth:`ecc_encode` and every SRAM read through
    :meth:`ecc_decode` (identity today), the one place where SECDED ECC is to be added.

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
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        self._config = config
        bundle = bundle_layout(config)
        mask = mask_layout(config)
        super().__init__({
            "clear": In(1),
            "issue_valid": In(1),
            "issue_word": In(unsigned(isa.INSTR_BITS)),
            "e_in": In(bundle), "w_in": In(bundle),
            "e_we": Out(mask), "w_we": Out(mask),
            "e_wdata": Out(bundle), "w_wdata": Out(bundle),
            "host_word": In(unsigned(HOST_WORD_BITS)),
            "host_superlane": In(unsigned(HOST_SUPERLANE_BITS)),
            "host_chunk": In(unsigned(HOST_CHUNK_BITS)),
            "host_we": In(1),
            "host_re": In(1),
            "host_wdata": In(32),
            "host_rdata": Out(32),
        })

    @property
    def config(self):
        return self._config

    # ECC hooks: every SRAM write and read passes here --------------------------------------

    @property
    def stored_width(self):
        """Bits of one SRAM row (data plus check bits, none yet)."""
        return 8 * self._config.lanes_per_superlane

    def ecc_encode(self, m, value):
        """Row data to the stored form (identity until SECDED is added)."""
        return value

    def ecc_decode(self, m, stored):
        """Stored row to data (identity until SECDED is added; would also flag errors)."""
        return stored

    # -----------------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        lps = cfg.lanes_per_superlane
        abits, bbits = _log2(cfg.mem_words), _log2(cfg.mem_banks)
        row_shape = unsigned(max(abits - bbits, 1))
        sl_bits = 8 * lps
        layout = merged_layout([isa.OPS_BY_NAME["read"], isa.OPS_BY_NAME["write"]])
        read_latency = isa.OPS_BY_NAME["read"].latency
        write_commit = isa.OPS_BY_NAME["write"].commit
        if read_latency < 1 or write_commit < 1:
            raise ValueError("MEM read latency and write commit must be at least 1, not "
                             f"{read_latency!r} and {write_commit!r}")

        m.submodules.stagger = stagger = Stagger(cfg)
        m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(self.issue_valid),
                     stagger.i_word.eq(self.issue_word)]

        def bank_of(addr):
            return addr[:bbits] if bbits else Const(0, 1)

        def row_of(addr):
            return addr[bbits:abits] if abits > bbits else Const(0, 1)

        host_bank = bank_of(self.host_word)
        host_row = row_of(self.host_word)

        # Host write data and byte enables for a row of one superlane.
        chunk_lanes = hostmap.LANES_PER_CHUNK
        host_row_data = Signal(sl_bits)
        host_lane_en = Signal(lps)
        for j in range(lps):
            m.d.comb += [
                host_row_data[8 * j:8 * j + 8].eq(
                    self.host_wdata[8 * (j % chunk_lanes):8 * (j % chunk_lanes) + 8]),
                host_lane_en[j].eq(self.host_chunk == j // chunk_lanes),
            ]

        # Host read: remember what was asked for, answer from the read ports next cycle.
        host_rd_superlane = Signal.like(self.host_superlane)
        host_rd_bank = Signal.like(host_bank)
        host_rd_chunk = Signal.like(self.host_chunk)
        with m.If(self.host_re):
            m.d.sync += [host_rd_superlane.eq(self.host_superlane),
                         host_rd_bank.eq(host_bank), host_rd_chunk.eq(self.host_chunk)]

        for k in range(cfg.superlanes):
            ins = stagger.o[k]
            word = layout(ins.word)
            addr = word.addr[:abits]
            bank, row = bank_of(addr), row_of(addr)
            in_range = word.s.id < cfg.streams
            is_read = Signal(name=f"is_read_{k}")
            is_write = Signal(name=f"is_write_{k}")
            m.d.comb += [is_read.eq(ins.valid & is_op(ins.word, "read")),
                         is_write.eq(ins.valid & is_op(ins.word, "write"))]

            # Write: capture the stream value in the issue cycle, commit write_commit later.
            value = select_stream(m, self.e_in, self.w_in, word.s.dir, word.s.id, k, cfg,
                                  f"wr_value_{k}")
            commit = data.StructLayout({"valid": 1, "bank": unsigned(len(bank)),
                                        "row": row_shape, "data": unsigned(sl_bits)})
            stage = Signal(commit, name=f"wr_0_{k}")
            with m.If(self.clear):
                m.d.sync += stage.valid.eq(0)
            with m.Else():
                m.d.sync += [stage.valid.eq(is_write), stage.bank.eq(bank), stage.row.eq(row),
                             stage.data.eq(Mux(in_range, value, 0))]
            for i in range(1, write_commit):
                nxt = Signal(commit, name=f"wr_{i}_{k}")
                m.d.sync += nxt.eq(Mux(self.clear, 0, stage))
                stage = nxt
            wr = stage

            # Read: per bank a synchronous read port (old data on a same-cycle write).
            rd_out = data.StructLayout({"valid": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS),
                                        "bank": unsigned(len(bank))})
            rd = Signal(rd_out, name=f"rd_0_{k}")
            with m.If(self.clear):
                m.d.sync += rd.valid.eq(0)
            with m.Else():
                m.d.sync += [rd.valid.eq(is_read & in_range), rd.dir.eq(word.s.dir),
                             rd.id.eq(word.s.id), rd.bank.eq(bank)]

            bank_data = []
            for b in range(cfg.mem_banks):
                mem = memory.Memory(shape=unsigned(self.stored_width), depth=cfg.words_per_bank,
                                    init=[])
                m.submodules[f"sram_{k}_{b}"] = mem
                rp = mem.read_port(transparent_for=())
                wp = mem.write_port(granularity=self.stored_width // lps)
                commit_here = wr.valid & (wr.bank == b)
                host_here = self.host_we & (self.host_superlane == k) & (host_bank == b)
                m.d.comb += [
                    rp.addr.eq(Mux(is_read & (bank == b), row, host_row)),
                    wp.addr.eq(Mux(commit_here, wr.row, host_row)),
                    wp.data.eq(self.ecc_encode(m, Mux(commit_here, wr.data, host_row_data))),
                    wp.en.eq(Mux(commit_here, (1 << lps) - 1,
                                 Mux(host_here, host_lane_en, 0))),
                ]
                decoded = Signal(sl_bits, name=f"rdata_{k}_{b}")
                m.d.comb += decoded.eq(self.ecc_decode(m, rp.data))
                bank_data.append(decoded)

            rdata = Signal(sl_bits, name=f"rdata_{k}")
            with m.Switch(rd.bank):
                for b in range(cfg.mem_banks):
                    with m.Case(b):
                        m.d.comb += rdata.eq(bank_data[b])

            # Host read data of this superlane.
            with m.If(host_rd_superlane == k):
                with m.Switch(host_rd_bank):
                    for b in range(cfg.mem_banks):
                        with m.Case(b):
                            for c in range(hostmap.chunks_per_superlane(cfg)):
                                lanes = min(chunk_lanes, lps - c * chunk_lanes)
                                with m.If(host_rd_chunk == c):
                                    m.d.comb += self.host_rdata.eq(
                                        bank_data[b][8 * chunk_lanes * c:][:8 * lanes])

            # Further latency stages, then drive the output stream register.
            out_layout = data.StructLayout({"valid": 1, "dir": 1,
                                            "id": unsigned(isa.STREAM_BITS),
                                            "data": unsigned(sl_bits)})
            out = Signal(out_layout, name=f"rd_out_1_{k}")
            m.d.comb += [out.valid.eq(rd.valid), out.dir.eq(rd.dir), out.id.eq(rd.id),
                         out.data.eq(rdata)]
            for i in range(1, read_latency):
                nxt = Signal(out_layout, name=f"rd_out_{i + 1}_{k}")
                m.d.sync += nxt.eq(Mux(self.clear, 0, out))
                out = nxt
            for s in range(cfg.streams):
                hit = out.valid & (out.id == s)
                m.d.comb += [
                    self.e_we[s][k].eq(hit & (out.dir == int(isa.Dir.E))),
                    self.w_we[s][k].eq(hit & (out.dir == int(isa.Dir.W))),
                    self.e_wdata[s][k].eq(out.data),
                    self.w_wdata[s][k].eq(out.data),
                ]
        return m
