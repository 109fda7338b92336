"""MEM slice: banked SRAM per superlane, the ``read`` and ``write`` instructions, host access."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory
from amaranth.lib.wiring import In, Out

from opentsp import hostmap, isa

from .layouts import is_op, merged_layout, select_stream
from .slice import FunctionalSlice
from .stagger import Stagger

__all__ = ["MemSlice"]

#: Widths of the host's memory address fields (see :mod:`opentsp.hostmap`).
HOST_WORD_BITS = hostmap.MEM_SHIFT - hostmap.WORD_SHIFT
HOST_SUPERLANE_BITS = hostmap.WORD_SHIFT - hostmap.SUPERLANE_SHIFT
HOST_CHUNK_BITS = hostmap.SUPERLANE_SHIFT


#: Instructions of the MEM slice (their fields share one layout).
_MEM_OPS = ("read", "write", "gather", "scatter", "agi", "ago", "sread", "swrite")
#: Per port (0 = read, 1 = write): the sequence starter and the queue's plain instructions.
_PORTS = (("sread", ("read", "gather")), ("swrite", ("write", "scatter")))


def _log2(value):
    return value.bit_length() - 1


class MemSlice(FunctionalSlice):
    """One MEM slice: lane-granular banked SRAM, two address sequencers and its pipelines.

    Word ``a`` (taken modulo ``mem_words``) lives in bank ``a % mem_banks``, row
    ``a // mem_banks``. The SRAM is one byte-wide memory per superlane, lane and bank
    (``superlanes x lanes_per_superlane x mem_banks``, each with one synchronous read port and
    one write port), so that every lane can use its own address (``gather``, ``scatter``).

    Superlane 0 (issue cycle): the two address sequencers of section 6a (:meth:`_sequencers`)
    turn the queue's instruction (``issue_*``) and their running sequences into at most one
    ``read``/``gather`` for the read port and one ``write``/``scatter`` for the write port;
    each reaches superlane ``k`` ``k`` cycles later through its own :class:`Stagger`. ``halt``
    (the queue is in or past its ``end`` slot) stops sequences from issuing.

    Timing on each superlane, for an instruction it executes in cycle ``t``:

    * ``read s, a``: the bank's synchronous read port is addressed in cycle ``t``; it returns
      the word as at the start of ``t`` (a write landing at the end of ``t`` is not seen). The
      word drives the output stream register ``s`` (``e_we``/``w_we``) so that it loads at the
      end of cycle ``t + isa.MEM_READ_LATENCY``.
    * ``write a, s``: the slice input of stream ``s`` is captured in cycle ``t`` and the bank
      is written at the end of cycle ``t + isa.MEM_WRITE_COMMIT``.
    * ``gather s, a``: like ``read``, but lane ``j`` reads its byte from word ``a[j]`` (the
      unsigned int16 of streams ``a``, ``a+1`` at the slice input in cycle ``t``, modulo
      ``mem_words``); each lane addresses its own bank.
    * ``scatter a, s``: like ``write``, but lane ``j`` writes its byte into word ``a[j]``.
    * stream ids ``>= streams``: ``read`` writes no stream, ``write`` stores zeros, an
      address pair beyond the streams reads as address 0.

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
        super().__init__(config, {
            "halt": In(1),
            "host_word": In(unsigned(HOST_WORD_BITS)),
            "host_superlane": In(unsigned(HOST_SUPERLANE_BITS)),
            "host_chunk": In(unsigned(HOST_CHUNK_BITS)),
            "host_we": In(1),
            "host_re": In(1),
            "host_wdata": In(32),
            "host_rdata": Out(32),
        })

    # ECC hooks: every SRAM write and read passes here --------------------------------------

    @property
    def stored_width(self):
        """Bits of one SRAM entry: one lane's byte (data plus check bits, none yet)."""
        return 8

    def ecc_encode(self, m, value):
        """A lane's byte to the stored form (identity until SECDED is added)."""
        return value

    def ecc_decode(self, m, stored):
        """A stored lane entry to its byte (identity until SECDED is added; would also flag
        errors)."""
        return stored

    # -----------------------------------------------------------------------------------------

    def _sequencers(self, m, halt):
        """Superlane 0: the two address sequencers (section 6a) in front of the ports.

        Returns ``(valid, word)`` per port (0 = read, 1 = write): the plain ``read``/``gather``
        (``write``/``scatter``) that the port runs this cycle, from the queue or generated.
        Port priority as in :mod:`opentsp.sim.mem`: a starter (``sread``/``swrite``) begins a
        sequence whose element 0 is its own address, a plain instruction of the queue takes
        the port (the sequence still advances), else a running sequence issues its element
        unless ``halt`` (the queue is in or past its ``end`` slot).
        """
        cfg = self._config
        aw = max(_log2(cfg.mem_words), 1)
        cw = isa.MEM_SEQ_COUNT_BITS
        layout = merged_layout([isa.OPS_BY_NAME[name] for name in _MEM_OPS])
        word = layout(self.issue_word)
        valid = self.issue_valid
        ports = []
        for p, (starter, plain) in enumerate(_PORTS):
            cfg_regs = {
                "stride": Signal(aw, init=1, name=f"ag{p}_stride"),
                "count": Signal(cw, init=1, name=f"ag{p}_count"),
                "ostride": Signal(aw, init=0, name=f"ag{p}_ostride"),
                "ocount": Signal(cw, init=1, name=f"ag{p}_ocount"),
            }
            active = Signal(name=f"seq{p}_active")
            s = Signal(isa.STREAM_OPERAND_BITS, name=f"seq{p}_s")
            addr = Signal(aw, name=f"seq{p}_addr")
            row = Signal(aw, name=f"seq{p}_row")
            i_left = Signal(cw, name=f"seq{p}_i_left")
            j_left = Signal(cw, name=f"seq{p}_j_left")
            stride = Signal(aw, name=f"seq{p}_stride")
            ostride = Signal(aw, name=f"seq{p}_ostride")
            count = Signal(cw, name=f"seq{p}_count")

            is_start = Signal(name=f"seq{p}_start")
            is_plain = Signal(name=f"seq{p}_plain")
            m.d.comb += [
                is_start.eq(valid & is_op(self.issue_word, starter)),
                is_plain.eq(valid & (is_op(self.issue_word, plain[0])
                                     | is_op(self.issue_word, plain[1]))),
            ]
            emit = Signal(name=f"seq{p}_emit")
            m.d.comb += emit.eq(~is_start & ~is_plain & active & ~halt)

            # The element of this cycle (from the starter itself, or from the registers).
            cur = {
                "s": Mux(is_start, word.s.as_value(), s),
                "addr": Mux(is_start, word.addr[:aw], addr),
                "row": Mux(is_start, word.addr[:aw], row),
                "i": Mux(is_start, cfg_regs["count"] - 1, i_left),
                "j": Mux(is_start, cfg_regs["ocount"] - 1, j_left),
                "stride": Mux(is_start, cfg_regs["stride"], stride),
                "ostride": Mux(is_start, cfg_regs["ostride"], ostride),
                "count": Mux(is_start, cfg_regs["count"], count),
            }
            element = Signal(layout, name=f"seq{p}_element")
            m.d.comb += [element.opcode.eq(isa.OPS_BY_NAME[isa.MEM_SEQ_STARTS[starter]].opcode),
                         element.s.eq(cur["s"]), element.addr.eq(cur["addr"])]
            port_valid = Signal(name=f"port{p}_valid")
            port_word = Signal(isa.INSTR_BITS, name=f"port{p}_word")
            m.d.comb += [port_valid.eq(is_start | is_plain | emit),
                         port_word.eq(Mux(is_plain, self.issue_word, element.as_value()))]
            ports.append((port_valid, port_word))

            advance = is_start | (active & (is_plain | ~halt))
            with m.If(self.clear):
                m.d.sync += active.eq(0)
                for reg in cfg_regs.values():
                    m.d.sync += reg.eq(reg.init)
            with m.Else():
                for name in ("agi", "ago"):
                    regs = ("stride", "count") if name == "agi" else ("ostride", "ocount")
                    with m.If(valid & is_op(self.issue_word, name) & (word.g == p)):
                        m.d.sync += [cfg_regs[regs[0]].eq(word.stride[:aw]),
                                     cfg_regs[regs[1]].eq(word.count)]
                with m.If(advance):
                    m.d.sync += [s.eq(cur["s"]), stride.eq(cur["stride"]),
                                 ostride.eq(cur["ostride"]), count.eq(cur["count"])]
                    with m.If(cur["i"] != 0):
                        m.d.sync += [active.eq(1), addr.eq(cur["addr"] + cur["stride"]),
                                     row.eq(cur["row"]), i_left.eq(cur["i"] - 1),
                                     j_left.eq(cur["j"])]
                    with m.Elif(cur["j"] != 0):
                        next_row = (cur["row"] + cur["ostride"])[:aw]
                        m.d.sync += [active.eq(1), addr.eq(next_row), row.eq(next_row),
                                     i_left.eq(cur["count"] - 1), j_left.eq(cur["j"] - 1)]
                    with m.Else():
                        m.d.sync += active.eq(0)
        return ports

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        lps = cfg.lanes_per_superlane
        abits, bbits = _log2(cfg.mem_words), _log2(cfg.mem_banks)
        row_shape = unsigned(max(abits - bbits, 1))
        sl_bits = 8 * lps
        layout = merged_layout([isa.OPS_BY_NAME[name] for name in _MEM_OPS])
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

        (rd_valid, rd_word), (wr_valid, wr_word) = self._sequencers(m, self.halt)
        m.submodules.rd_stagger = rd_stagger = Stagger(cfg)
        m.submodules.wr_stagger = wr_stagger = Stagger(cfg)
        for stagger, v, w in ((rd_stagger, rd_valid, rd_word), (wr_stagger, wr_valid, wr_word)):
            m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(v),
                         stagger.i_word.eq(w)]

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

        def lane_addrs(word, is_lanewise, k, name):
            """Per lane: the word address (one for all lanes, or the lane's own from the
            int16 pair ``a`` of a gather/scatter), modulo mem_words."""
            lo = select_stream(m, self.e_in, self.w_in, word.a.dir, word.a.id, k, cfg,
                               f"{name}_alo_{k}")
            hi = select_stream(m, self.e_in, self.w_in, word.a.dir, word.a.id | 1, k, cfg,
                               f"{name}_ahi_{k}")
            addrs = []
            for j in range(lps):
                lane = Signal(max(abits, 1), name=f"{name}_addr_{k}_{j}")
                m.d.comb += lane.eq(Mux(is_lanewise, Cat(lo[j], hi[j]), word.addr))
                addrs.append(lane[:abits] if abits else Const(0, 1))
            return addrs

        for k in range(cfg.superlanes):
            rd_ins, wr_ins = rd_stagger.o[k], wr_stagger.o[k]
            rword, wword = layout(rd_ins.word), layout(wr_ins.word)
            is_read = Signal(name=f"is_read_{k}")
            is_gather = Signal(name=f"is_gather_{k}")
            is_write = Signal(name=f"is_write_{k}")
            is_scatter = Signal(name=f"is_scatter_{k}")
            m.d.comb += [is_read.eq(rd_ins.valid & is_op(rd_ins.word, "read")),
                         is_gather.eq(rd_ins.valid & is_op(rd_ins.word, "gather")),
                         is_write.eq(wr_ins.valid & is_op(wr_ins.word, "write")),
                         is_scatter.eq(wr_ins.valid & is_op(wr_ins.word, "scatter"))]
            rd_addrs = lane_addrs(rword, is_gather, k, "rd")
            wr_addrs = lane_addrs(wword, is_scatter, k, "wr")

            # Write: capture the stream value in the issue cycle, commit write_commit later,
            # one byte per lane (write: every lane at one address; scatter: each its own).
            value = select_stream(m, self.e_in, self.w_in, wword.s.dir, wword.s.id, k, cfg,
                                  f"wr_value_{k}")
            commit = data.ArrayLayout(data.StructLayout({
                "valid": 1, "bank": unsigned(max(bbits, 1)), "row": row_shape,
                "data": unsigned(8)}), lps)
            stage = Signal(commit, name=f"wr_0_{k}")
            with m.If(self.clear):
                for j in range(lps):
                    m.d.sync += stage[j].valid.eq(0)
            with m.Else():
                in_range = wword.s.id < cfg.streams
                for j in range(lps):
                    m.d.sync += [stage[j].valid.eq(is_write | is_scatter),
                                 stage[j].bank.eq(bank_of(wr_addrs[j])),
                                 stage[j].row.eq(row_of(wr_addrs[j])),
                                 stage[j].data.eq(Mux(in_range, value[j], 0))]
            for i in range(1, write_commit):
                nxt = Signal(commit, name=f"wr_{i}_{k}")
                m.d.sync += nxt.eq(Mux(self.clear, 0, stage))
                stage = nxt
            wr = stage

            # Read: per lane and bank a synchronous read port (old data on a same-cycle write).
            reading = is_read | is_gather
            rd_out = data.StructLayout({"valid": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS),
                                        "bank": data.ArrayLayout(unsigned(max(bbits, 1)), lps)})
            rd = Signal(rd_out, name=f"rd_0_{k}")
            with m.If(self.clear):
                m.d.sync += rd.valid.eq(0)
            with m.Else():
                m.d.sync += [rd.valid.eq(reading & (rword.s.id < cfg.streams)),
                             rd.dir.eq(rword.s.dir), rd.id.eq(rword.s.id)]
                for j in range(lps):
                    m.d.sync += rd.bank[j].eq(bank_of(rd_addrs[j]))

            rdata = Signal(sl_bits, name=f"rdata_{k}")
            for j in range(lps):
                lane_data = []
                for b in range(cfg.mem_banks):
                    mem = memory.Memory(shape=unsigned(self.stored_width),
                                        depth=cfg.words_per_bank, init=[])
                    m.submodules[f"sram_{k}_{j}_{b}"] = mem
                    rp = mem.read_port(transparent_for=())
                    wp = mem.write_port()
                    commit_here = wr[j].valid & (wr[j].bank == b)
                    host_here = (self.host_we & (self.host_superlane == k) & (host_bank == b)
                                 & host_lane_en[j])
                    m.d.comb += [
                        rp.addr.eq(Mux(reading & (bank_of(rd_addrs[j]) == b),
                                       row_of(rd_addrs[j]), host_row)),
                        wp.addr.eq(Mux(commit_here, wr[j].row, host_row)),
                        wp.data.eq(self.ecc_encode(m, Mux(commit_here, wr[j].data,
                                                          host_row_data[8 * j:8 * j + 8]))),
                        wp.en.eq(commit_here | host_here),
                    ]
                    decoded = Signal(8, name=f"rdata_{k}_{j}_{b}")
                    m.d.comb += decoded.eq(self.ecc_decode(m, rp.data))
                    lane_data.append(decoded)
                with m.Switch(rd.bank[j]):
                    for b in range(cfg.mem_banks):
                        with m.Case(b):
                            m.d.comb += rdata[8 * j:8 * j + 8].eq(lane_data[b])
                # Host read data of this lane of this superlane.
                c, jc = divmod(j, chunk_lanes)
                with m.If((host_rd_superlane == k) & (host_rd_chunk == c)):
                    with m.Switch(host_rd_bank):
                        for b in range(cfg.mem_banks):
                            with m.Case(b):
                                m.d.comb += self.host_rdata[8 * jc:8 * jc + 8].eq(lane_data[b])

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
