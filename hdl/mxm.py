"""MXM slice: a weight-stationary ``mxm_size x mxm_size`` int8 MAC array with int32
accumulators (docs/architecture.md section 7a)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory

from opentsp import isa
from opentsp.hdl.layouts import is_op, merged_layout, select_stream
from opentsp.hdl.slice import FunctionalSlice
from opentsp.hdl.stagger import Stagger

__all__ = ["MxmSlice"]

_ACC_BITS = 32
_GROUP = isa.INT32_GROUP


class MxmSlice(FunctionalSlice):
    """The MXM slice, with the same ports as the other slices.

    ``N = mxm_size`` lanes (columns ``i``) take part; they sit on the first
    ``span = isa.mxm_span(config)`` superlanes. Superlane ``k`` runs every instruction ``k``
    cycles after issue (:class:`Stagger`) on its own lanes:

    * ``lw row, s``: back weights ``B[row][i] <= s[i]`` (registers; rows ``>= N`` ignored);
    * ``iw``: front weights ``F[j][i] <= B[j][i]`` for every row ``j`` (registers);
    * ``abc a, s, add``: ``p_k[j] = p_(k-1)[j] + sum_i F[j][i] * s[i]``, int8 x int8 -> int16
      products summed in int32 (wrapping). ``p_k`` goes into a register for superlane
      ``k + 1``'s next cycle; the last superlane of the span writes
      ``acc[a][j] = (add ? acc[a][j] : 0) + p[j]`` at the end of its cycle (``a`` beyond
      ``mxm_accumulators``: no write);
    * ``acc dst, a``: reads ``acc[a][j]`` for its lanes (0 for ``j >= N``, for ``a`` beyond
      ``mxm_accumulators`` and for accumulators not written since ``clear``), registers it and
      drives the int32 group ``dst`` (byte ``i`` on stream ``dst + i``) so that it loads at the
      end of cycle ``t + k + 1``.

    Accumulators: one :class:`~amaranth.lib.memory.Memory` per superlane of the span (its
    lanes, ``mxm_accumulators`` deep) with asynchronous read ports (one for ``acc``, one for
    the ``abc`` read-modify-write) and one write port, plus a valid bit per accumulator so that
    ``clear`` empties them in one cycle.

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        layout = merged_layout([op for op in isa.OPS if op.unit == isa.Unit.MXM])
        latency = isa.OPS_BY_NAME["acc"].latency
        if latency != 1:
            raise ValueError(f"the MXM implements acc latency 1, not {latency!r}")

        m.submodules.stagger = stagger = Stagger(cfg)
        m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(self.issue.valid),
                     stagger.i_word.eq(self.issue.word)]

        cleared = []        # registers that clear empties
        back, front = self._weights(cleared)
        valid = Signal(cfg.mxm_accumulators, name="acc_valid")
        cleared.append(valid)
        banks = self._accumulator_banks(m)

        chain = None        # p_(k-1), the register written by the previous superlane
        for k in range(cfg.superlanes):
            ins = stagger.o[k]
            word = layout(ins.word)
            acc_here = word.acc < cfg.mxm_accumulators
            self._drain(m, k, ins, word, acc_here, banks, valid, cleared)
            lanes = self._lanes_of(k)
            if not lanes:
                continue        # superlanes beyond the span only run acc (zeros)
            x = select_stream(m, self.e_in, self.w_in, word.s.dir, word.s.id, k, cfg, f"x_{k}")
            xs = [x[i - lanes.start].as_signed() for i in lanes]
            self._load_weights(m, ins, word, lanes, xs, back, front)
            partial = self._multiply(m, k, lanes, xs, front, chain)
            if k < isa.mxm_span(cfg) - 1:
                chain = self._chain(m, k, partial, cleared)
            else:
                self._accumulate(m, ins, word, acc_here, partial, banks, valid)

        with m.If(self.clear):      # last, so that it wins over every update above
            m.d.sync += [reg.eq(0) for reg in cleared]
        return m

    def _lanes_of(self, k):
        """The MAC-array lanes (columns ``i``) on superlane ``k``: its own lanes below
        ``mxm_size``, none beyond the span."""
        lps = self._config.lanes_per_superlane
        return range(k * lps, min((k + 1) * lps, self._config.mxm_size))

    def _weights(self, cleared):
        """Create the back and front weight registers ``[row j][column i]`` (int8, added to
        ``cleared``); :meth:`_load_weights` writes them."""
        n = self._config.mxm_size
        back = [[Signal(signed(8), name=f"back_{j}_{i}") for i in range(n)] for j in range(n)]
        front = [[Signal(signed(8), name=f"front_{j}_{i}") for i in range(n)] for j in range(n)]
        cleared += [r for row in back + front for r in row]
        return back, front

    def _accumulator_banks(self, m):
        """Add the accumulator memories ``acc_k``, one per superlane ``k`` of the span (its
        lanes' int32 values side by side, ``mxm_accumulators`` deep).

        Returns
        -------
        list of tuple
            Per bank: the ``acc`` read port, the ``abc`` read port (both asynchronous: data
            in the cycle of the address) and the write port (writes at the end of the cycle).
        """
        banks = []
        for k in range(isa.mxm_span(self._config)):
            width = _ACC_BITS * len(self._lanes_of(k))
            mem = memory.Memory(shape=unsigned(width), depth=self._config.mxm_accumulators,
                                init=[])
            m.submodules[f"acc_{k}"] = mem
            banks.append((mem.read_port(domain="comb"), mem.read_port(domain="comb"),
                          mem.write_port()))
        return banks

    def _drain(self, m, k, ins, word, acc_here, banks, valid, cleared):
        """``acc dst, a`` on superlane ``k``: in its cycle ``t + k`` read ``acc[a]`` (zero
        when absent, not valid or beyond the span) into the stage register ``out_k``, which
        drives the group ``dst`` in ``t + k + 1`` (:meth:`_drive_group`)."""
        cfg = self._config
        lps = cfg.lanes_per_superlane
        lanes = self._lanes_of(k)
        is_acc = ins.valid & is_op(ins.word, "acc")
        stage_layout = data.StructLayout({
            "valid": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS),
            "lanes": data.ArrayLayout(unsigned(_ACC_BITS), lps),
        })
        stage = Signal(stage_layout, name=f"out_{k}")
        cleared.append(stage.valid)
        m.d.sync += [stage.valid.eq(is_acc & (word.dst.id < cfg.streams)),
                     stage.dir.eq(word.dst.dir), stage.id.eq(word.dst.id)]
        if lanes:
            rd_out = banks[k][0]
            m.d.comb += rd_out.addr.eq(word.acc)
            hit = acc_here & _is_valid(valid, word.acc)
            for offset, _ in enumerate(lanes):
                value = rd_out.data.word_select(offset, _ACC_BITS)
                m.d.sync += stage.lanes[offset].eq(Mux(hit, value, 0))
        for offset in range(len(lanes), lps):
            m.d.sync += stage.lanes[offset].eq(0)
        self._drive_group(m, k, stage)

    def _drive_group(self, m, k, stage):
        """Drive the int32 group of ``stage`` (an ``out_k`` register) on superlane ``k``,
        combinationally: byte ``i`` of each lane onto stream ``id + i``, loading at the end of
        this cycle."""
        for s in range(self._config.streams):
            delta = (Const(s, isa.STREAM_BITS + 1) - stage.id)[:isa.STREAM_BITS + 1]
            hit = stage.valid & (stage.id <= s) & (delta < _GROUP)
            m.d.comb += [
                self.e_we[s][k].eq(hit & (stage.dir == int(isa.Dir.E))),
                self.w_we[s][k].eq(hit & (stage.dir == int(isa.Dir.W))),
            ]
            byte = delta[:(_GROUP - 1).bit_length()]
            for j in range(self._config.lanes_per_superlane):
                value = stage.lanes[j].word_select(byte, 8)
                m.d.comb += [self.e_wdata[s][k][j].eq(value),
                             self.w_wdata[s][k][j].eq(value)]

    def _load_weights(self, m, ins, word, lanes, xs, back, front):
        """``lw row, s`` and ``iw`` on the columns ``lanes`` of one superlane: the back
        weights of ``row`` take ``xs`` (the stream, int8), or every front weight takes its
        back weight, at the end of the superlane's cycle ``t + k``."""
        is_lw = ins.valid & is_op(ins.word, "lw")
        for row in range(self._config.mxm_size):
            with m.If(is_lw & (word.row == row)):
                m.d.sync += [back[row][i].eq(xs[o]) for o, i in enumerate(lanes)]
        with m.If(ins.valid & is_op(ins.word, "iw")):
            m.d.sync += [front[j][i].eq(back[j][i])
                         for j in range(self._config.mxm_size) for i in lanes]

    def _multiply(self, m, k, lanes, xs, front, chain):
        """``abc`` on superlane ``k``, combinational in its cycle ``t + k``: per row ``j`` the
        int32 partial sum ``p_k_j`` of this superlane's products plus ``chain`` (the previous
        superlane's partial sums, or ``None`` on the first)."""
        partial = []
        for j in range(self._config.mxm_size):
            products = [front[j][i] * xs[o] for o, i in enumerate(lanes)]  # signed 16
            total = products[0]
            for product in products[1:]:
                total = total + product
            if chain is not None:
                total = total + chain[j]
            value = Signal(signed(_ACC_BITS), name=f"p_{k}_{j}")
            m.d.comb += value.eq(total)     # sign-extends, or wraps to 32 bits
            partial.append(value)
        return partial

    def _chain(self, m, k, partial, cleared):
        """Register superlane ``k``'s partial sums (``chain_k_j``, added to ``cleared``) for
        superlane ``k + 1``, which runs the same instruction one cycle later."""
        chain = [Signal(signed(_ACC_BITS), name=f"chain_{k}_{j}")
                 for j in range(self._config.mxm_size)]
        cleared += chain
        m.d.sync += [reg.eq(value) for reg, value in zip(chain, partial, strict=True)]
        return chain

    def _accumulate(self, m, ins, word, acc_here, partial, banks, valid):
        """``abc a, s, add`` on the last superlane of the span: read-modify-write of
        accumulator ``a`` in every bank, ``acc[a] = (add ? acc[a] : 0) + p``, written with its
        valid bit at the end of the cycle (``t + span - 1``)."""
        write = Signal(name="acc_write")
        add = Signal(name="acc_add")
        m.d.comb += [write.eq(ins.valid & is_op(ins.word, "abc") & acc_here),
                     add.eq(word.add & _is_valid(valid, word.acc))]
        for bank, (_, rd_old, wr) in enumerate(banks):
            new = []
            for offset, j in enumerate(self._lanes_of(bank)):
                old = rd_old.data.word_select(offset, _ACC_BITS).as_signed()
                new.append((Mux(add, old, 0) + partial[j])[:_ACC_BITS])
            m.d.comb += [rd_old.addr.eq(word.acc), wr.addr.eq(word.acc),
                         wr.data.eq(Cat(*new)), wr.en.eq(write)]
        for a in range(self._config.mxm_accumulators):
            with m.If(write & (word.acc == a)):
                m.d.sync += valid[a].eq(1)


def _is_valid(valid, addr):
    """1 when accumulator ``addr`` holds a value: its bit of ``valid`` (0 beyond)."""
    return Cat(*(valid[a] & (addr == a) for a in range(len(valid)))).any()
