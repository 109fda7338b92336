"""SXM slice: shifts, rotations, permutation, distribution and transposition of lanes across
the whole vector (docs/architecture.md section 7b)."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data

from opentsp import isa
from opentsp.hdl.layouts import (
    ISSUE,
    is_op,
    merged_layout,
    select_stream,
    superlane_layout,
)
from opentsp.hdl.slice import FunctionalSlice
from opentsp.hdl.stagger import Stagger

__all__ = ["SxmSlice"]

_GROUP = isa.INT32_GROUP            # transpose block side, and the widest operand group
_PERM_BITS = 16                     # permute table entries: an int16 pair of streams
_DIST_BITS = 8


class SxmSlice(FunctionalSlice):
    """The SXM slice, with the same ports as the other slices.

    Timing (``S = superlanes``, latency ``L = isa.latency(op, config) = S``): an instruction
    issued in cycle ``t`` reaches superlane ``k`` in cycle ``t + k`` (:class:`Stagger`).

    * **Skew in.** In cycle ``t + k`` superlane ``k`` captures its share of the operand group
      (``a .. a+3``; only ``a`` matters except for ``transpose``) and its entries of both
      tables into a register chain ``S - k`` deep, so that in cycle ``t + S`` every superlane's
      share of instruction ``t`` sits in the last register of its chain (the whole vector).
      The instruction itself is ``Stagger.o[S-1]`` registered once.
    * **Crossbar.** In cycle ``t + S`` each output lane ``i`` picks one input lane (or zero),
      from an index computed per instruction: ``i - n`` (``shiftu``), ``i + n`` (``shiftd``),
      ``(i - n) mod lanes`` (``rotate``), ``P[i]`` (``permute``), the first lane of ``i``'s
      superlane plus ``D[i]`` (``distribute``); ``transpose`` is fixed wiring over the group.
    * **Deskew out.** Output superlane ``k`` goes through ``k`` registers and drives the
      group ``dst`` in cycle ``t + S + k``, so it loads at the end of cycle ``t + L + k``.
    * ``perm_load s`` / ``dist_load s``: superlane ``k`` loads its lanes' table entries
      (registers) at the end of cycle ``t + k``. A producer reads superlane ``k``'s entries in
      cycle ``t + k``, so it sees every table load issued before it.

    ``clear`` empties the tables (zero), the instruction register and the output stages.

    Parameters
    ----------
    config : Config
        Chip parameters.
    """

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        nsl, lanes = cfg.superlanes, cfg.lanes
        layout = merged_layout(isa.SXM_OPS)
        latencies = {isa.latency(op, cfg) for op in isa.SXM_OPS if op.writes}
        if latencies != {nsl}:
            raise ValueError(f"the SXM implements latency superlanes ({nsl}), not "
                             f"{sorted(latencies)!r}")

        m.submodules.stagger = stagger = Stagger(cfg)
        m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(self.issue.valid),
                     stagger.i_word.eq(self.issue.word)]

        perm = [Signal(_PERM_BITS, name=f"perm_{i}") for i in range(lanes)]
        dist = [Signal(_DIST_BITS, name=f"dist_{i}") for i in range(lanes)]
        cleared = perm + dist

        # Skew in: superlane k's share, captured in cycle t + k, aligned in cycle t + S.
        aligned = []
        for k in range(nsl):
            ins = stagger.o[k]
            word = layout(ins.word)
            self._load_tables(m, k, ins, word, perm, dist)
            aligned.append(self._skew_in(m, k, word, perm, dist))

        # The instruction in cycle t + S.
        inst = Signal(ISSUE, name="inst")
        m.d.sync += inst.eq(stagger.o[nsl - 1])
        cleared.append(inst.valid)
        word = layout(inst.word)

        planes = [[aligned[i // cfg.lanes_per_superlane].a[r][i % cfg.lanes_per_superlane]
                   for i in range(lanes)] for r in range(_GROUP)]
        moved = self._crossbar(m, inst, word, aligned, planes)
        transpose = is_op(inst.word, "transpose")
        result = self._transpose(m, transpose, planes, moved)
        self._deskew_out(m, inst, word, transpose, result, cleared)

        with m.If(self.clear):      # last, so that it wins over every update above
            m.d.sync += [reg.eq(0) for reg in cleared]
        return m

    def _stream(self, m, k, operand, offset, name):
        """Superlane ``k`` of stream ``operand.id + offset`` (direction ``operand.dir``) at the
        slice input this cycle, as the signal ``{name}_{k}``."""
        return select_stream(m, self.e_in, self.w_in, operand.dir, operand.id + offset, k,
                             self._config, f"{name}_{k}")

    def _load_tables(self, m, k, ins, word, perm, dist):
        """``perm_load s`` / ``dist_load s`` on superlane ``k``: its lanes' entries of ``perm``
        (int16 from streams ``s``, ``s + 1``) or ``dist`` (int8 from ``s``) load at the end of
        its cycle ``t + k``."""
        own = self._own_lanes(k)
        s_lo = self._stream(m, k, word.s, 0, "s0")
        s_hi = self._stream(m, k, word.s, 1, "s1")
        with m.If(ins.valid & is_op(ins.word, "perm_load")):
            m.d.sync += [perm[i].eq(Cat(s_lo[j], s_hi[j])) for j, i in enumerate(own)]
        with m.If(ins.valid & is_op(ins.word, "dist_load")):
            m.d.sync += [dist[i].eq(s_lo[j]) for j, i in enumerate(own)]

    def _skew_in(self, m, k, word, perm, dist):
        """Superlane ``k``'s share of the instruction in its cycle ``t + k`` (operand group
        ``a .. a+3`` and its lanes' table entries), delayed by ``S - k`` registers
        (``skew_k_*``).

        Returns
        -------
        Signal
            The share in cycle ``t + S``, aligned with every other superlane's.
        """
        lps = self._config.lanes_per_superlane
        share_layout = data.StructLayout({
            "a": data.ArrayLayout(superlane_layout(self._config), _GROUP),
            "perm": data.ArrayLayout(unsigned(_PERM_BITS), lps),
            "dist": data.ArrayLayout(unsigned(_DIST_BITS), lps),
        })
        share = Signal(share_layout, name=f"share_{k}")
        for r in range(_GROUP):
            m.d.comb += share.a[r].eq(self._stream(m, k, word.a, r, f"a{r}"))
        for j, i in enumerate(self._own_lanes(k)):
            m.d.comb += [share.perm[j].eq(perm[i]), share.dist[j].eq(dist[i])]
        prev = share
        for depth in range(self._config.superlanes - k):
            reg = Signal(share_layout, name=f"skew_{k}_{depth}")
            m.d.sync += reg.eq(prev)
            prev = reg
        return prev

    def _own_lanes(self, k):
        """The lanes of superlane ``k``."""
        lps = self._config.lanes_per_superlane
        return range(k * lps, (k + 1) * lps)

    def _crossbar(self, m, inst, word, aligned, planes):
        """The lane movements of ``inst`` in cycle ``t + S``, combinational: each output lane
        ``i`` takes input lane ``src_i`` of the operand ``a`` (``planes[0]``) when ``ok_i``,
        else zero (:meth:`_source`).

        Returns
        -------
        list of Signal
            ``moved_i``, one byte per lane.
        """
        lanes = self._config.lanes
        rot = Signal(range(lanes), name="rot")
        m.d.comb += rot.eq(word.n % lanes)
        lane_bits = max(1, (lanes - 1).bit_length())
        moved = []
        for i in range(lanes):
            src, ok = self._source(m, i, inst, word.n, rot, aligned)
            value = Signal(8, name=f"moved_{i}")
            m.d.comb += value.eq(Mux(ok, Array(planes[0])[src[:lane_bits]], 0))
            moved.append(value)
        return moved

    def _source(self, m, i, inst, n, rot, aligned):
        """The input lane ``src_i`` that output lane ``i`` takes, and ``ok_i`` (0: zero
        instead): ``i - n`` (``shiftu``), ``i + n`` (``shiftd``), ``(i - n) mod lanes``
        (``rotate``, ``rot = n mod lanes``), ``P[i]`` (``permute``), the first lane of ``i``'s
        superlane plus ``D[i]`` (``distribute``); combinational."""
        lps, lanes = self._config.lanes_per_superlane, self._config.lanes
        n_max = isa.OPS_BY_NAME["shiftu"].field("n").mask
        index_bits = max(lanes, 1 << isa.OPS_BY_NAME["shiftu"].field("n").width,
                         1 << _PERM_BITS).bit_length() + 1
        base = i - i % lps
        p_entry = aligned[i // lps].perm[i % lps]
        d_entry = aligned[i // lps].dist[i % lps]
        src = Signal(index_bits, name=f"src_{i}")
        ok = Signal(name=f"ok_{i}")
        with m.If(is_op(inst.word, "shiftu")):
            m.d.comb += [ok.eq(n <= i if i < n_max else 1), src.eq(i - n)]
        with m.Elif(is_op(inst.word, "shiftd")):
            m.d.comb += [ok.eq(n + i < lanes), src.eq(n + i)]
        with m.Elif(is_op(inst.word, "rotate")):
            direct = rot <= i if i < lanes - 1 else 1     # no constant compare
            m.d.comb += [ok.eq(1), src.eq(Mux(direct, i - rot, i + lanes - rot))]
        with m.Elif(is_op(inst.word, "permute")):
            m.d.comb += [ok.eq(p_entry < lanes), src.eq(p_entry)]
        with m.Elif(is_op(inst.word, "distribute")):
            m.d.comb += [ok.eq(d_entry < lps), src.eq(base + d_entry)]
        return src, ok

    def _transpose(self, m, transpose, planes, moved):
        """The result group in cycle ``t + S``, combinational: for ``transpose``, fixed wiring
        over blocks of 4 lanes (byte ``r`` of lane ``i`` is byte ``i mod 4`` of lane
        ``i - i mod 4 + r``, zero beyond the last lane), else ``moved`` in byte 0 and zero in
        the others.

        Returns
        -------
        list of list of Signal
            ``res_r_i``: byte ``r`` of lane ``i``.
        """
        lanes = self._config.lanes
        result = [[Signal(8, name=f"res_{r}_{i}") for i in range(lanes)] for r in range(_GROUP)]
        for r in range(_GROUP):
            for i in range(lanes):
                c = i % _GROUP
                src_lane = i - c + r
                fixed = planes[c][src_lane] if src_lane < lanes else Const(0, 8)
                other = moved[i] if r == 0 else Const(0, 8)
                m.d.comb += result[r][i].eq(Mux(transpose, fixed, other))
        return result

    def _deskew_out(self, m, inst, word, transpose, result, cleared):
        """Output superlane ``k`` of ``result`` (cycle ``t + S``) through ``k`` registers
        (``deskew_k_*``, valid bits added to ``cleared``): it drives the group ``dst`` in cycle
        ``t + S + k`` (:meth:`_drive_group`), one stream, or four for ``transpose``."""
        cfg = self._config
        lps = cfg.lanes_per_superlane
        producer = Cat(*(is_op(inst.word, o.mnemonic) for o in isa.SXM_OPS if o.writes)).any()
        out_layout = data.StructLayout({
            "valid": 1, "dir": 1, "id": unsigned(isa.STREAM_BITS), "wide": 1,
            "data": data.ArrayLayout(superlane_layout(cfg), _GROUP),
        })
        first = Signal(out_layout, name="out")
        m.d.comb += [first.valid.eq(inst.valid & producer), first.dir.eq(word.dst.dir),
                     first.id.eq(word.dst.id), first.wide.eq(transpose)]
        for k in range(cfg.superlanes):
            stage = Signal(out_layout, name=f"out_{k}")
            m.d.comb += [stage.valid.eq(first.valid), stage.dir.eq(first.dir),
                         stage.id.eq(first.id), stage.wide.eq(first.wide)]
            for r in range(_GROUP):
                for j in range(lps):
                    m.d.comb += stage.data[r][j].eq(result[r][k * lps + j])
            for depth in range(k):
                reg = Signal(out_layout, name=f"deskew_{k}_{depth}")
                m.d.sync += reg.eq(stage)
                cleared.append(reg.valid)
                stage = reg
            self._drive_group(m, k, stage)

    def _drive_group(self, m, k, stage):
        """Drive ``stage`` (an output stage of superlane ``k``) onto its streams,
        combinationally: byte ``r`` of each lane onto stream ``id + r`` for ``r`` below 4
        (``wide``) or 1, loading at the end of this cycle."""
        for s in range(self._config.streams):
            delta = (Const(s, isa.STREAM_BITS + 1) - stage.id)[:isa.STREAM_BITS + 1]
            width = Mux(stage.wide, _GROUP, 1)
            hit = stage.valid & (stage.id <= s) & (delta < width)
            m.d.comb += [
                self.e_we[s][k].eq(hit & (stage.dir == int(isa.Dir.E))),
                self.w_we[s][k].eq(hit & (stage.dir == int(isa.Dir.W))),
            ]
            byte = delta[:(_GROUP - 1).bit_length()]
            for j in range(self._config.lanes_per_superlane):
                value = Array(stage.data[r][j] for r in range(_GROUP))[byte]
                m.d.comb += [self.e_wdata[s][k][j].eq(value),
                             self.w_wdata[s][k][j].eq(value)]
