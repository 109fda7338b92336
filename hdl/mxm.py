"""MXM slice: ``mxm_planes`` weight-stationary ``mxm_size x mxm_size`` int8 MAC arrays with
int32 accumulators, fed by the MXM's load sequencer and by every plane's own compute and drain
sequencers (docs/architecture.md section 7a, ISA v4); with ``Config.floating_point`` (ISA v6)
16-bit weights, fp16/bf16 products summed exactly in wide accumulators and read as int32 or
rounded once to f32 (:mod:`~opentsp.hdl.mxm_float`)."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory
from amaranth.lib.wiring import In

from opentsp import isa
from opentsp.hdl import mxm_float
from opentsp.hdl.layouts import select_stream, superlane_layout
from opentsp.hdl.mxm_float import WIDE
from opentsp.hdl.mxm_sequencer import build_install, build_sequencer, delayed
from opentsp.hdl.slice import FunctionalSlice

__all__ = ["MxmSlice"]

_ACC_BITS = 32
_GROUP = isa.INT32_GROUP


@dataclass
class _Plane:
    """One plane's state: back and front weights ``[row j][column i]`` (int8 registers, 16-bit
    with floating point), the valid bit of every accumulator, the accumulator banks, and the
    accumulate stage (:meth:`MxmSlice._plane`): the register ``pending`` (``write``, ``add``,
    ``index``) with the partial sums ``sums`` of the compute element it holds, and ``new``, per
    bank the values that stage writes in this cycle."""
    back: list
    front: list
    valid: Signal
    banks: list
    pending: Signal
    sums: list
    new: list


class MxmSlice(FunctionalSlice):
    """The MXM slice, with the ports of every slice and ``halt``.

    ``N = mxm_size`` lanes (columns ``i``) take part; they sit on the first
    ``span = isa.mxm_span(config)`` superlanes. On superlane 0 the sequencers
    (:mod:`~opentsp.hdl.mxm_sequencer`: one load sequencer, and per plane ``p`` of ``P =
    mxm_planes`` a compute and a drain sequencer) turn the queue's ``lw``/``abc p``/``acc p``
    into one element per cycle each, and ``halt`` (the queue is in or past its ``end`` slot)
    stops them; an ``abc``/``acc`` of a plane ``p >= P`` has no sequencer and does nothing.
    Every element and every ``iw`` reaches superlane ``k`` ``k`` cycles later, which runs it on
    its own lanes. Superlane ``k`` selects an element's streams in the element's cycle ``u + k``
    and registers them with the element (``*_ready``); the weights change and the products are
    taken in the next cycle, ``u + k + 1``, so that the stream select and the multipliers are
    in different cycles (docs/fpga.md). Loads, installs and computes all move so, which keeps
    their order (an ``iw`` copies the back weights of every load before it, an ``abc`` uses
    the front weights of every ``iw`` before it):

    * load element (first row ``r0``, plane ``p``, streams ``s .. s+R-1``): back weights
      ``B_p[r0 + r][i] <= S_(s+r)[i]`` (registers; rows ``>= N`` and planes ``>= P`` ignored);
    * ``iw p``: front weights ``F_p[j][i] <= B_p[j][i]`` for every row ``j`` (registers);
    * plane ``p``'s compute element (accumulator ``a``, stream ``s``, ``add``), on plane ``p``
      alone, from its own stream (the planes compute in the same cycle from different
      streams): ``q_k[j] = q_(k-1)[j] + sum_i F_p[j][i] * s[i]``, int8 x int8 -> int16
      products summed in int32 (wrapping). ``q_k`` goes into a register for superlane
      ``k + 1``'s products; on the last superlane of the span it goes into the plane's
      accumulate stage, which in the next cycle reads, adds and writes ``acc_p[a][j] = (add ?
      acc_p[a][j] : 0) + q[j]`` (``a`` beyond ``mxm_accumulators``: no write). An element
      issued in cycle ``u`` thus lands in the memory at the end of cycle ``u + span + 1``, two
      cycles after the architecture's ``u + span - 1``;
    * plane ``p``'s drain element (accumulator ``a``, group ``dst``), registered once more:
      in cycle ``u + k + 1`` it reads ``acc_p[a][j]`` for its lanes (0 for ``j >= N``, for
      ``a`` beyond ``mxm_accumulators`` and for accumulators not written since ``clear``;
      the accumulate stage's value when it writes that accumulator in this cycle, forwarded)
      and drives the int32 group ``dst`` (byte ``b`` on stream ``dst + b``), which loads at
      the end of that cycle (latency 1). A stream both planes drive in one cycle takes plane
      1's value. The drain reads one cycle after the architecture's ``u + k`` and the
      compute lands two after, so a drain sees exactly the elements that landed by the
      architecture's timing.

    With ``Config.floating_point`` (ISA v6) every element carries its format (``fmt``) and:

    * weights are 16 bits: an int8 load element sign-extends its bytes, a 16-bit one
      (``lw.f16``/``lw.bf16``, alike) gives row ``r0 + r`` the pair of streams ``s + 2r`` (low
      byte) and ``s + 2r + 1``;
    * partial sums, chain registers and accumulators are wide
      (:data:`~opentsp.hdl.mxm_float.WIDE`: 320-bit fixed point in units of ``2**-160`` and
      the NaN and infinity flags); an int8 element multiplies the weights' low bytes by stream
      ``s`` (at ``2**0``), an fp16/bf16 element the weights by the pair ``s``, ``s + 1``, each
      product exact (:func:`~opentsp.hdl.mxm_float.superlane_sum`); the accumulator takes
      ``(add ? acc : 0) + q`` (totals wrap, flags OR when ``add``);
    * a drain element emits bits ``2**0 .. 2**31`` of the total (``acc``) or the value rounded
      once to f32 (``acc.f32``, :func:`~opentsp.hdl.mxm_float.round_f32`), same timing.

    Accumulators: per plane one :class:`~amaranth.lib.memory.Memory` per superlane of the span
    (its lanes, ``mxm_accumulators`` deep) with asynchronous read ports (one for the drain, one
    for the accumulate stage's read-modify-write) and one write port, plus a valid bit per
    accumulator so that ``clear`` empties them in one cycle (and the accumulate stage's
    register and the ``*_ready`` registers, so that an element of the cycle before a ``clear``
    does not land after it).

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    def __init__(self, config):
        super().__init__(config, {"halt": In(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        if isa.OPS_BY_NAME["acc"].latency != 1:
            raise ValueError(f"the MXM implements acc latency 1, not "
                             f"{isa.OPS_BY_NAME['acc'].latency!r}")
        loads = delayed(m, self, build_sequencer(m, self, "lw", self.halt).element, "lw")
        installs = delayed(m, self, build_install(m, self), "iw")
        sequences = [build_sequencer(m, self, "abc", self.halt, p) for p in range(cfg.mxm_planes)]
        computes = [delayed(m, self, seq.element, f"abc_{p}") for p, seq in enumerate(sequences)]
        drains = [delayed(m, self, build_sequencer(m, self, "acc", self.halt, p).element,
                          f"acc_{p}") for p in range(cfg.mxm_planes)]
        cleared = []        # registers that clear empties
        planes = [self._plane(m, p, cleared) for p in range(cfg.mxm_planes)]

        chains = [None] * cfg.mxm_planes    # q_(k-1) per plane, from the previous superlane
        for k in range(cfg.superlanes):
            self._drain(m, k, [line[k] for line in drains], planes, cleared)
            lanes = self._lanes_of(k)
            if not lanes:
                continue        # superlanes beyond the span only drain (zeros)
            self._load_weights(m, k, lanes, loads[k], installs[k], planes, cleared)
            for p, plane in enumerate(planes):
                chains[p] = self._compute(m, k, p, computes[p][k], sequences[p] if k == 0 else None,
                                          plane, chains[p], cleared)

        with m.If(self.clear):      # last, so that it wins over every update above
            m.d.sync += [reg.eq(0) for reg in cleared]
        return m

    def _lanes_of(self, k):
        """The MAC-array lanes (columns ``i``) on superlane ``k``: its own lanes below
        ``mxm_size``, none beyond the span."""
        lps = self._config.lanes_per_superlane
        return range(k * lps, min((k + 1) * lps, self._config.mxm_size))

    def _plane(self, m, p, cleared):
        """Create plane ``p``'s state (a :class:`_Plane`; its registers added to ``cleared``):
        back and front weights, which :meth:`_load_weights` writes, the accumulators' valid
        bits and memories ``acc_P_K``, one per superlane ``k`` of the span (its lanes' int32
        values side by side, ``mxm_accumulators`` deep), each with the drain's read port, the
        compute's read port (both asynchronous: data in the cycle of the address) and the
        write port (writes at the end of the cycle). With floating point the weights are 16
        bits and the accumulators :data:`~opentsp.hdl.mxm_float.WIDE`."""
        cfg = self._config
        n = cfg.mxm_size
        weight = unsigned(16) if cfg.floating_point else signed(8)
        back, front = ([[Signal(weight, name=f"{kind}_{p}_{j}_{i}") for i in range(n)]
                        for j in range(n)] for kind in ("back", "front"))
        valid = Signal(cfg.mxm_accumulators, name=f"acc_valid_{p}")
        cleared += [r for row in back + front for r in row] + [valid]
        banks = []
        for k in range(isa.mxm_span(cfg)):
            mem = memory.Memory(shape=unsigned(self._acc_bits * len(self._lanes_of(k))),
                                depth=cfg.mxm_accumulators, init=[])
            m.submodules[f"acc_{p}_{k}"] = mem
            banks.append((mem.read_port(domain="comb"), mem.read_port(domain="comb"),
                          mem.write_port()))
        pending = Signal(data.StructLayout({"write": 1, "add": 1,
                                            "index": unsigned(cfg.mxm_accumulators.bit_length())}),
                         name=f"acc_pending_{p}")
        sums = [Signal(WIDE if cfg.floating_point else signed(_ACC_BITS), name=f"acc_sum_{p}_{j}")
                for j in range(n)]
        cleared.append(pending)
        new = self._read_modify_write(m, p, pending, sums, valid, banks)
        return _Plane(back, front, valid, banks, pending, sums, new)

    def _read_modify_write(self, m, p, pending, sums, valid, banks):
        """The accumulate stage of a plane: the compute element held in ``pending`` (from the
        cycle before) reads its accumulator in every bank, adds its ``sums`` to it (or, ``add``
        clear or the accumulator not valid, to zero) and writes it with its valid bit at the
        end of the cycle. Returns per bank the values written (:meth:`_drain` forwards them)."""
        add = Signal(name=f"acc_add_{p}")
        m.d.comb += add.eq(pending.add & _is_valid(valid, pending.index))
        written = []
        for bank, (_, rd_old, wr) in enumerate(banks):
            new = []
            for offset, j in enumerate(self._lanes_of(bank)):
                old = rd_old.data.word_select(offset, self._acc_bits)
                if self._config.floating_point:
                    new.append(mxm_float.accumulate(WIDE(old), add, sums[j]))
                else:
                    new.append((Mux(add, old.as_signed(), 0) + sums[j])[:_ACC_BITS])
            m.d.comb += [rd_old.addr.eq(pending.index), wr.addr.eq(pending.index),
                         wr.data.eq(Cat(*new)), wr.en.eq(pending.write)]
            written.append(Cat(*new))
        for a in range(len(valid)):
            with m.If(pending.write & (pending.index == a)):
                m.d.sync += valid[a].eq(1)
        return written

    def _drain(self, m, k, elements, planes, cleared):
        """Plane ``p``'s drain element ``elements[p]`` on superlane ``k``, registered
        (``acc_P_K_ready``, emptied by ``clear``): in the next cycle read accumulator ``index``
        of the plane (zero when absent, not valid or beyond the span; the accumulate stage's
        value when it writes that accumulator in this cycle) into ``out_P_K``, which drives
        the group ``dst`` in that same cycle (:meth:`_drive_groups`)."""
        cfg = self._config
        lps = cfg.lanes_per_superlane
        lanes = self._lanes_of(k)
        stage_layout = data.StructLayout({
            "valid": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS),
            "lanes": data.ArrayLayout(unsigned(_ACC_BITS), lps)})
        stages = []
        for p, (issued, plane) in enumerate(zip(elements, planes, strict=True)):
            element = _registered(m, issued, f"acc_{p}_{k}_ready", cleared)
            stage = Signal(stage_layout, name=f"out_{p}_{k}")
            m.d.comb += [stage.valid.eq(element.valid), stage.dir.eq(element.dst.dir),
                         stage.id.eq(element.dst.id)]
            values = [0] * lps
            if lanes:
                rd_out = plane.banks[k][0]
                m.d.comb += rd_out.addr.eq(element.index)
                landing = plane.pending.write & (plane.pending.index == element.index)
                word = Mux(landing, plane.new[k], rd_out.data)
                hit = (element.index < cfg.mxm_accumulators) & (
                    landing | _is_valid(plane.valid, element.index))
                for offset, _ in enumerate(lanes):
                    values[offset] = Mux(hit, self._read_out(m, element, word, offset,
                                                             f"f32_{p}_{k}_{offset}"), 0)
            m.d.comb += [stage.lanes[j].eq(value) for j, value in enumerate(values)]
            stages.append(stage)
        self._drive_groups(m, k, stages)

    @property
    def _acc_bits(self):
        """Bits of one accumulator: int32, or a :data:`~opentsp.hdl.mxm_float.WIDE` value with
        floating point."""
        return WIDE.size if self._config.floating_point else _ACC_BITS

    def _read_out(self, m, element, data_, offset, name):
        """The 32 bits that drain ``element`` emits for the accumulator at ``offset`` of a
        bank's word ``data_``: the int32, or with floating point the int32 or (``fmt`` 1) the
        f32 of the wide value (:func:`~opentsp.hdl.mxm_float.round_f32`)."""
        value = data_.word_select(offset, self._acc_bits)
        if not self._config.floating_point:
            return value
        wide = WIDE(value)
        return Mux(element.fmt, mxm_float.round_f32(m, wide, name), mxm_float.int32_of(wide))

    def _drive_groups(self, m, k, stages):
        """Drive the int32 group of every plane's ``stage`` (its ``out_P_K``) on
        superlane ``k``, combinationally: byte ``b`` of its lanes onto stream ``id + b``,
        loading at the end of this cycle; a later plane's value wins a stream that two
        drive."""
        cfg = self._config
        ports = ((isa.Dir.E, self.e_we, self.e_wdata), (isa.Dir.W, self.w_we, self.w_wdata))
        for s in range(cfg.streams):
            driven = []     # per plane: (it drives stream s, its direction, its bytes)
            for stage in stages:
                delta = (Const(s, isa.STREAM_BITS + 1) - stage.id)[:isa.STREAM_BITS + 1]
                byte = delta[:(_GROUP - 1).bit_length()]
                driven.append((stage.valid & (stage.id <= s) & (delta < _GROUP), stage.dir,
                               Cat(*(lane.word_select(byte, 8) for lane in stage.lanes))))
            for direction, we, wdata in ports:
                hits = [hit & (to == int(direction)) for hit, to, _ in driven]
                value = driven[0][2]
                for hit, (_, _, later) in zip(hits[1:], driven[1:], strict=True):
                    value = Mux(hit, later, value)
                m.d.comb += [we[s][k].eq(Cat(*hits).any()), wdata[s][k].eq(value)]

    def _load_weights(self, m, k, lanes, load, install, planes, cleared):
        """A load element and an ``iw`` on the columns ``lanes`` of superlane ``k``: the back
        weights of rows ``index .. index + R - 1`` of the element's plane take the streams
        ``s .. s + R - 1`` (int8; with floating point sign-extended to 16 bits, or for a 16-bit
        load row ``r`` takes the pair ``s + 2r`` (low byte), ``s + 2r + 1``), and every front
        weight of the installed plane takes its back weight (``B`` as at the start of the
        cycle). The streams are selected in the element's cycle and registered with both
        elements (``w_K_R_I_ready``, ``lw_K_ready``, ``iw_K_ready``; ``clear`` empties the
        elements); the weights change at the end of the next cycle, the cycle the compute
        elements of the same cycle multiply in (:meth:`_compute`)."""
        cfg = self._config
        rows_of = cfg.mxm_load_rows
        streams = [select_stream(m, self.e_in, self.w_in, load.s.dir, load.s.id + r, k, cfg,
                                 f"w_{k}_{r}")
                   for r in range((2 if cfg.floating_point else 1) * rows_of)]
        rows = [[streams[r][i - lanes.start].as_signed() for i in lanes] for r in range(rows_of)]
        if cfg.floating_point:
            rows = [[Mux(load.fmt != 0, Cat(streams[2 * r][o], streams[2 * r + 1][o]), value)
                     for o, value in enumerate(row)] for r, row in enumerate(rows)]
        weight = planes[0].back[0][0].shape()
        rows = [[_registered(m, value, f"w_{k}_{r}_{i}_ready", shape=weight)
                 for i, value in zip(lanes, row, strict=True)] for r, row in enumerate(rows)]
        load, install = (_registered(m, load, f"lw_{k}_ready", cleared),
                         _registered(m, install, f"iw_{k}_ready", cleared))
        for p, plane in enumerate(planes):
            back, front = plane.back, plane.front
            here = load.valid & (load.plane == p)
            for j in range(cfg.mxm_size):
                for r in range(min(cfg.mxm_load_rows, j + 1)):
                    with m.If(here & (load.index == j - r)):
                        m.d.sync += [back[j][i].eq(rows[r][o]) for o, i in enumerate(lanes)]
            with m.If(install.valid & (install.plane == p)):
                m.d.sync += [front[j][i].eq(back[j][i])
                             for j in range(cfg.mxm_size) for i in lanes]

    def _compute(self, m, k, p, element, sequence, plane, chain, cleared):
        """Plane ``p``'s compute element ``element`` on superlane ``k`` of the span: the
        products of the plane's front weights with the element's own stream, plus ``chain``
        (:meth:`_multiply`); returns the registered partial sums for superlane ``k + 1``
        (:meth:`_chain`), or ``None`` on the last superlane, which accumulates them
        (:meth:`_accumulate`). The operands (:meth:`_operand`; on superlane 0 ``sequence`` is
        the plane's compute sequencer) and the element are registered in the element's cycle
        (``x_P_K_ready``, ``abc_P_K_ready``), and the products taken in the next."""
        cfg = self._config
        lanes = self._lanes_of(k)
        ready = _registered(m, element, f"abc_{p}_{k}_ready", cleared)
        x = _registered(m, self._operand(m, k, element, sequence, 0, f"x_{p}_{k}"),
                        f"x_{p}_{k}_ready")
        if cfg.floating_point:
            high = _registered(m, self._operand(m, k, element, sequence, 1, f"xh_{p}_{k}"),
                               f"xh_{p}_{k}_ready")
            xs = [Cat(x[o], high[o]) for o, _ in enumerate(lanes)]
            partial = self._multiply_wide(m, k, p, ready.fmt, lanes, xs, plane.front, chain)
        else:
            xs = [x[i - lanes.start].as_signed() for i in lanes]
            partial = self._multiply(m, k, p, lanes, xs, plane.front, chain)
        if k < isa.mxm_span(cfg) - 1:
            return self._chain(m, k, p, partial, cleared)
        self._accumulate(m, ready, partial, plane)
        return None

    def _operand(self, m, k, element, sequence, offset, name):
        """Stream ``s + offset`` of compute element ``element`` on superlane ``k``. On
        superlane 0 (``sequence`` given) the streams of the instruction issued in this cycle
        and of the running sequence are both selected, each from its own source, and the
        sequencer's ``start`` then picks one: the instruction's decode runs beside the stream
        select instead of before it (the routed critical path of 5f8c84f, docs/fpga.md). The
        value differs from a select on ``element.s`` only when there is no element."""
        def select(source, suffix):
            return select_stream(m, self.e_in, self.w_in, source.s.dir, source.s.id + offset,
                                 k, self._config, name + suffix)
        if sequence is None:
            return select(element, "")
        value = Signal(superlane_layout(self._config), name=name)
        m.d.comb += value.eq(Mux(sequence.start, select(sequence.first, "_first"),
                                 select(sequence.held, "_held")))
        return value

    def _multiply(self, m, k, p, lanes, xs, front, chain):
        """A compute element on superlane ``k``, plane ``p``, combinational in the cycle after
        its own (from its registered operands ``xs``): per
        row ``j`` the int32 partial sum ``p_P_K_J`` of this superlane's products plus ``chain``
        (the previous superlane's partial sums, or ``None`` on the first)."""
        partial = []
        for j in range(self._config.mxm_size):
            products = [front[j][i] * xs[o] for o, i in enumerate(lanes)]  # signed 16
            total = products[0]
            for product in products[1:]:
                total = total + product
            if chain is not None:
                total = total + chain[j]
            value = Signal(signed(_ACC_BITS), name=f"p_{p}_{k}_{j}")
            m.d.comb += value.eq(total)     # sign-extends, or wraps to 32 bits
            partial.append(value)
        return partial

    def _multiply_wide(self, m, k, p, fmt, lanes, xs, front, chain):
        """:meth:`_multiply` with floating point: the element's 16-bit operands ``xs`` (stream
        pair ``s``, ``s + 1``; int8 reads ``s``) of format ``fmt`` decoded once per lane, the
        weights once per cell; per row ``j`` the :data:`~opentsp.hdl.mxm_float.WIDE` partial
        sum ``p_P_K_J`` (:func:`~opentsp.hdl.mxm_float.superlane_sum`)."""
        decoded = [mxm_float.decode(m, x, fmt, f"x_{p}_{k}_{i}")
                   for x, i in zip(xs, lanes, strict=True)]
        partial = []
        for j in range(self._config.mxm_size):
            weights = [mxm_float.decode(m, front[j][i], fmt, f"w_{p}_{j}_{i}") for i in lanes]
            partial.append(mxm_float.superlane_sum(
                m, decoded, weights, None if chain is None else chain[j], f"p_{p}_{k}_{j}"))
        return partial

    def _chain(self, m, k, p, partial, cleared):
        """Register superlane ``k``'s partial sums of plane ``p`` (``chain_P_K_J``, added to
        ``cleared``) for superlane ``k + 1``, which runs the same element one cycle later."""
        shape = WIDE if self._config.floating_point else signed(_ACC_BITS)
        chain = [Signal(shape, name=f"chain_{p}_{k}_{j}") for j in range(self._config.mxm_size)]
        cleared += chain
        m.d.sync += [reg.eq(value) for reg, value in zip(chain, partial, strict=True)]
        return chain

    def _accumulate(self, m, compute, partial, plane):
        """A compute element on the last superlane of the span: its partial sums, accumulator
        index and ``add`` go into the plane's accumulate stage (``write`` when the element
        runs and its accumulator exists) at the end of its cycle; the stage reads, adds and
        writes the accumulator in the next (:meth:`_read_modify_write`)."""
        pending = plane.pending
        m.d.sync += [pending.write.eq(compute.valid
                                      & (compute.index < self._config.mxm_accumulators)),
                     pending.add.eq(compute.add), pending.index.eq(compute.index)]
        m.d.sync += [reg.eq(value) for reg, value in zip(plane.sums, partial, strict=True)]


def _registered(m, value, name, cleared=None, shape=None):
    """A register ``name`` (of ``value``'s shape, or ``shape``) loaded with ``value`` at the
    end of every cycle; with ``cleared`` (``value`` an element, with a ``valid`` member) its
    ``valid`` joins the registers that ``clear`` empties, so that an element of a cleared
    cycle is dropped."""
    reg = Signal(value.shape() if shape is None else shape, name=name)
    m.d.sync += reg.eq(value)
    if cleared is not None:
        cleared.append(reg.valid)
    return reg


def _is_valid(valid, addr):
    """1 when accumulator ``addr`` holds a value: its bit of ``valid`` (0 beyond)."""
    return Cat(*(valid[a] & (addr == a) for a in range(len(valid)))).any()
