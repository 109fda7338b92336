"""MEM slice: banked SRAM per superlane, the ``read`` and ``write`` instructions, host access."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory
from amaranth.lib.wiring import In, Out

from opentsp import hostmap, isa, secded
from opentsp.hdl.ecc import Secded
from opentsp.hdl.layouts import is_op, merged_layout, select_stream
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
      is written at the end of cycle ``t + isa.MEM_WRITE_COMMIT``, unless ``clear`` is high in
      that cycle (the chip holds ``clear`` high from the cycle after a reset mid-run).
    * ``gather s, a``: like ``read``, but lane ``j`` reads its byte from word ``a[j]`` (the
      unsigned int16 of streams ``a``, ``a+1`` at the slice input in cycle ``t``, modulo
      ``mem_words``); each lane addresses its own bank.
    * ``scatter a, s``: like ``write``, but lane ``j`` writes its byte into word ``a[j]``.
    * stream ids ``>= streams``: ``read`` writes no stream, ``write`` stores zeros, an
      address pair beyond the streams reads as address 0.

    SECDED ECC (section 6b): the SRAM stores 13-bit code words. Each lane of each superlane
    has one :class:`~opentsp.hdl.ecc.Secded`: its encoder on the lane's write data (stream
    writes, scatters, host writes), its decoder between the lane's bank-selected read data and
    the output stream register (reads, gathers, host reads), so no latency changes. In the
    cycle after a ``read``/``gather`` addresses the SRAM (whatever its stream), ``ecc_corrected``
    and ``ecc_detected`` count the lanes whose code word was corrected or found uncorrectable,
    and ``ecc_error`` with ``ecc_error_word``/``ecc_error_lane`` names the lowest such lane
    (superlane-major) with an uncorrectable word; host reads are corrected but not counted.

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
        host_addr = self.host_word[:abits] if abits else Const(0, 1)

        # Fault injection (section 6b): per entry, whether its flip is in effect, and where.
        entries = [self.inject[i] for i in range(hostmap.INJECT_ENTRIES)]
        active = [Signal(name=f"inject_active_{i}") for i in range(len(entries))]
        rewritten = [[] for _ in entries]   # per entry: the writes that replace its word
        entry_in_range = [entries[i].word[abits:] == 0 if abits < PLACE_WORD_BITS else Const(1)
                          for i in range(len(entries))]

        # The entries and flags as they were in the previous cycle: a read's flip is worked
        # out in the cycle after it addresses the SRAM, from registered addresses, so that the
        # comparators sit beside the SRAM access rather than after the wide stream-select
        # muxes of the gather addresses (where synthesis duplicated those muxes into them).
        entries_then = Signal(inject_layout(), name="inject_then")
        active_then = [Signal(name=f"inject_active_then_{i}") for i in range(len(entries))]
        m.d.sync += entries_then.eq(self.inject)
        m.d.sync += [then.eq(now) for then, now in zip(active_then, active, strict=True)]

        def flip_then(addr, lane):
            """XOR of the masks that were in effect on ``addr`` of global ``lane`` at the
            start of the previous cycle (``addr`` registered in that cycle)."""
            out = Const(0, secded.CODE_BITS)
            for i in range(len(entries)):
                entry = entries_then[i]
                hit = active_then[i] & (entry.lane == lane) & (entry.word == addr)
                out = out ^ Mux(hit, entry.mask, 0)
            return out

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
        host_rd_chunk = Signal.like(self.host_chunk)
        with m.If(self.host_re):
            m.d.sync += [host_rd_superlane.eq(self.host_superlane),
                         host_rd_chunk.eq(self.host_chunk)]
        corrected_lanes, detected_lanes, error_words = [], [], []

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

            # Read: per lane and bank a synchronous read port (old data on a same-cycle write);
            # in the next cycle the lane's decoder sees the addressed bank's code word (with
            # any injected flip) for a run read or, when not running, a host read.
            reading = is_read | is_gather
            rd_out = data.StructLayout({
                "valid": 1, "read": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS),
                "bank": data.ArrayLayout(unsigned(max(bbits, 1)), lps),
                "lookup": data.ArrayLayout(unsigned(max(abits, 1)), lps)})
            rd = Signal(rd_out, name=f"rd_0_{k}")
            with m.If(self.clear):
                m.d.sync += [rd.valid.eq(0), rd.read.eq(0)]
            with m.Else():
                m.d.sync += [rd.valid.eq(reading & (rword.s.id < cfg.streams)),
                             rd.read.eq(reading), rd.dir.eq(rword.s.dir), rd.id.eq(rword.s.id)]
            for j in range(lps):
                lane = k * lps + j
                # One address per lane (run read or host read) before the injection compare:
                # comparing both and muxing the flips doubled the comparators.
                looked_up = Signal(max(abits, 1), name=f"rd_lookup_{k}_{j}")
                m.d.comb += looked_up.eq(Mux(reading, rd_addrs[j], host_addr))
                m.d.sync += [
                    rd.bank[j].eq(bank_of(looked_up)),
                    rd.lookup[j].eq(looked_up),
                ]

            rdata = Signal(sl_bits, name=f"rdata_{k}")
            for j in range(lps):
                lane = k * lps + j
                codec = Secded()
                m.submodules[f"secded_{k}_{j}"] = codec
                # a commit due in a cycle with clear high is dropped (a reset mid-run)
                committing = Signal(name=f"committing_{k}_{j}")
                m.d.comb += committing.eq(wr[j].valid & ~self.clear)
                m.d.comb += codec.data.eq(Mux(committing, wr[j].data,
                                              host_row_data[8 * j:8 * j + 8]))
                stored = Signal(self.stored_width, name=f"stored_{k}_{j}")
                flip = Signal(secded.CODE_BITS, name=f"flip_{k}_{j}")
                m.d.comb += flip.eq(flip_then(rd.lookup[j], lane))
                for b in range(cfg.mem_banks):
                    mem = memory.Memory(shape=unsigned(self.stored_width),
                                        depth=cfg.words_per_bank, init=[])
                    m.submodules[f"sram_{k}_{j}_{b}"] = mem
                    rp = mem.read_port(transparent_for=())
                    wp = mem.write_port()
                    commit_here = committing & (wr[j].bank == b)
                    host_here = (self.host_we & (self.host_superlane == k) & (host_bank == b)
                                 & host_lane_en[j])
                    m.d.comb += [
                        rp.addr.eq(Mux(reading & (bank_of(rd_addrs[j]) == b),
                                       row_of(rd_addrs[j]), host_row)),
                        wp.addr.eq(Mux(commit_here, wr[j].row, host_row)),
                        wp.data.eq(codec.code),
                        wp.en.eq(commit_here | host_here),
                    ]
                    with m.If(rd.bank[j] == b):
                        m.d.comb += stored.eq(rp.data ^ flip)
                m.d.comb += [codec.stored.eq(stored),
                             rdata[8 * j:8 * j + 8].eq(codec.corrected_data)]
                corrected_lanes.append(rd.read & codec.corrected)
                detected_lanes.append(rd.read & codec.detected)
                error_words.append(rd.lookup[j])     # a run read's address when rd.read
                # Writes that replace an injected word (run commit or host write), compared
                # on the one address the lane's write port uses (the commit's, else the host's).
                host_lane_we = self.host_we & (self.host_superlane == k) & host_lane_en[j]
                written = Signal(max(abits, 1), name=f"wr_lookup_{k}_{j}")
                m.d.comb += written.eq(Mux(committing, Cat(wr[j].bank[:bbits], wr[j].row),
                                           host_addr))
                for i, entry in enumerate(entries):
                    rewritten[i].append((entry.lane == lane) & entry_in_range[i]
                                        & (committing | host_lane_we)
                                        & (written == entry.word))
                # Host read data of this lane of this superlane.
                c, jc = divmod(j, chunk_lanes)
                with m.If((host_rd_superlane == k) & (host_rd_chunk == c)):
                    m.d.comb += self.host_rdata[8 * jc:8 * jc + 8].eq(codec.corrected_data)

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

        # Injection flags: set at the end of the entry's cycle (after that cycle's write),
        # cleared by a later write to the word and lane.
        for i, entry in enumerate(entries):
            with m.If(entry.fire):
                m.d.sync += active[i].eq(1)
            with m.Elif(Cat(*rewritten[i]).any()):
                m.d.sync += active[i].eq(0)

        # The decoders' findings of this cycle; the lowest lane names the first error.
        m.d.comb += [self.ecc_corrected.eq(_count(corrected_lanes)),
                     self.ecc_detected.eq(_count(detected_lanes)),
                     self.ecc_error.eq(Cat(*detected_lanes).any())]
        for lane in reversed(range(len(detected_lanes))):
            with m.If(detected_lanes[lane]):
                m.d.comb += [self.ecc_error_word.eq(error_words[lane]),
                             self.ecc_error_lane.eq(lane)]
        return m


def _count(bits):
    """Number of set bits among ``bits``, as a balanced adder tree."""
    values = list(bits)
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]
