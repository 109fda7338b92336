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
        n = cfg.mxm_size
        lps = cfg.lanes_per_superlane
        span = isa.mxm_span(cfg)
        naccs = cfg.mxm_accumulators
        ops = [op for op in isa.OPS if op.unit == isa.Unit.MXM]
        layout = merged_layout(ops)
        latency = isa.OPS_BY_NAME["acc"].latency
        if latency != 1:
            raise ValueError(f"the MXM implements acc latency 1, not {latency!r}")

        m.submodules.stagger = stagger = Stagger(cfg)
        m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(self.issue_valid),
                     stagger.i_word.eq(self.issue_word)]

        def lanes_of(k):
            return range(k * lps, min((k + 1) * lps, n))

        cleared = []        # registers that clear empties

        back = [[Signal(signed(8), name=f"back_{j}_{i}") for i in range(n)] for j in range(n)]
        front = [[Signal(signed(8), name=f"front_{j}_{i}") for i in range(n)] for j in range(n)]
        cleared += [r for row in back + front for r in row]
        valid = Signal(naccs, name="acc_valid")
        cleared.append(valid)

        def acc_valid(addr):
            return Cat(*(valid[a] & (addr == a) for a in range(naccs))).any()

        # Accumulators, one memory per superlane of the span.
        banks = []
        for k in range(span):
            width = _ACC_BITS * len(lanes_of(k))
            mem = memory.Memory(shape=unsigned(width), depth=naccs, init=[])
            m.submodules[f"acc_{k}"] = mem
            banks.append((mem.read_port(domain="comb"), mem.read_port(domain="comb"),
                          mem.write_port()))

        stage_layout = data.StructLayout({
            "valid": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS),
            "lanes": data.ArrayLayout(unsigned(_ACC_BITS), lps),
        })
        chain = None        # p_(k-1), the register written by the previous superlane
        for k in range(cfg.superlanes):
            ins = stagger.o[k]
            word = layout(ins.word)
            lanes = lanes_of(k)
            is_acc = ins.valid & is_op(ins.word, "acc")
            acc_here = word.acc < naccs

            # acc: read, register (stage), drive the group dst in the next cycle.
            stage = Signal(stage_layout, name=f"out_{k}")
            cleared.append(stage.valid)
            m.d.sync += [stage.valid.eq(is_acc & (word.dst.id < cfg.streams)),
                         stage.dir.eq(word.dst.dir), stage.id.eq(word.dst.id)]
            if lanes:
                rd_out = banks[k][0]
                m.d.comb += rd_out.addr.eq(word.acc)
                hit = acc_here & acc_valid(word.acc)
                for offset, _ in enumerate(lanes):
                    value = rd_out.data.word_select(offset, _ACC_BITS)
                    m.d.sync += stage.lanes[offset].eq(Mux(hit, value, 0))
            for offset in range(len(lanes), lps):
                m.d.sync += stage.lanes[offset].eq(0)
            for s in range(cfg.streams):
                delta = (Const(s, isa.STREAM_BITS + 1) - stage.id)[:isa.STREAM_BITS + 1]
                hit = stage.valid & (stage.id <= s) & (delta < _GROUP)
                m.d.comb += [
                    self.e_we[s][k].eq(hit & (stage.dir == int(isa.Dir.E))),
                    self.w_we[s][k].eq(hit & (stage.dir == int(isa.Dir.W))),
                ]
                byte = delta[:(_GROUP - 1).bit_length()]
                for j in range(lps):
                    value = stage.lanes[j].word_select(byte, 8)
                    m.d.comb += [self.e_wdata[s][k][j].eq(value),
                                 self.w_wdata[s][k][j].eq(value)]

            if not lanes:
                continue        # superlanes beyond the span only run acc (zeros)

            x = select_stream(m, self.e_in, self.w_in, word.s.dir, word.s.id, k, cfg, f"x_{k}")
            xs = [x[i - k * lps].as_signed() for i in lanes]

            # lw and iw on the lanes of this superlane.
            is_lw = ins.valid & is_op(ins.word, "lw")
            for row in range(n):
                with m.If(is_lw & (word.row == row)):
                    m.d.sync += [back[row][i].eq(xs[o]) for o, i in enumerate(lanes)]
            with m.If(ins.valid & is_op(ins.word, "iw")):
                m.d.sync += [front[j][i].eq(back[j][i]) for j in range(n) for i in lanes]

            # abc: this superlane's products, plus the partial sums of the previous superlane.
            partial = []
            for j in range(n):
                products = [front[j][i] * xs[o] for o, i in enumerate(lanes)]  # signed 16
                total = products[0]
                for product in products[1:]:
                    total = total + product
                if chain is not None:
                    total = total + chain[j]
                value = Signal(signed(_ACC_BITS), name=f"p_{k}_{j}")
                m.d.comb += value.eq(total)     # sign-extends, or wraps to 32 bits
                partial.append(value)
            if k < span - 1:
                chain = [Signal(signed(_ACC_BITS), name=f"chain_{k}_{j}") for j in range(n)]
                cleared += chain
                m.d.sync += [reg.eq(value) for reg, value in zip(chain, partial, strict=True)]
                continue

            # Last superlane of the span: read-modify-write of accumulator a in every bank.
            write = Signal(name="acc_write")
            add = Signal(name="acc_add")
            m.d.comb += [write.eq(ins.valid & is_op(ins.word, "abc") & acc_here),
                         add.eq(word.add & acc_valid(word.acc))]
            for bank in range(span):
                _, rd_old, wr = banks[bank]
                new = []
                for offset, j in enumerate(lanes_of(bank)):
                    old = rd_old.data.word_select(offset, _ACC_BITS).as_signed()
                    new.append((Mux(add, old, 0) + partial[j])[:_ACC_BITS])
                m.d.comb += [rd_old.addr.eq(word.acc), wr.addr.eq(word.acc),
                             wr.data.eq(Cat(*new)), wr.en.eq(write)]
            for a in range(naccs):
                with m.If(write & (word.acc == a)):
                    m.d.sync += valid[a].eq(1)

        with m.If(self.clear):      # last, so that it wins over every update above
            m.d.sync += [reg.eq(0) for reg in cleared]
        return m
