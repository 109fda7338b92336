"""C2C slices: the chip-to-chip links at the chip's edges (docs/architecture.md section 7d)."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from opentsp import hostmap, isa
from opentsp.c2c_frame import CRC_INIT, CRC_POLY
from opentsp.config import Config
from opentsp.hdl.layouts import STREAM, is_op, merged_layout, select_stream, superlane_layout
from opentsp.hdl.slice import FunctionalSlice
from opentsp.hdl.stagger import Stagger

__all__ = ["C2cSlice", "LinkSignature", "crc_terms", "WEST", "EAST"]

#: The slice's side, as ``REG_C2C_FIRST`` numbers it: ``C2C_W`` and ``C2C_E``.
WEST, EAST = 0, 1
_CRC_BITS = 8 * isa.C2C_CRC_BYTES
_TIME_BITS = 8 * isa.C2C_STAMP_BYTES
_KIND_BITS = 3
_DATA, _MARK = int(isa.FrameKind.DATA), int(isa.FrameKind.MARK)
#: A header within this many flipped bits of the data header frames a data frame.
_DATA_HEADER_DISTANCE = 4


def crc_terms(nbytes):
    """CRC-16/CCITT-FALSE of ``nbytes`` bytes as an affine function of their bits.

    Bit ``b`` of byte ``i`` is input bit ``8 i + b``. Returns 16 pairs ``(mask, const)``: bit
    ``r`` of the CRC is ``const`` XOR the parity of the input bits set in ``mask``.
    """
    state = [(0, CRC_INIT >> r & 1) for r in range(_CRC_BITS)]
    for byte in range(nbytes):
        for bit in reversed(range(8)):     # most significant bit first, no reflection
            top_mask, top_const = state[-1]
            feedback = (top_mask ^ 1 << (8 * byte + bit), top_const)
            state = [(0, 0)] + state[:-1]
            for r in range(_CRC_BITS):
                if CRC_POLY >> r & 1:
                    state[r] = (state[r][0] ^ feedback[0], state[r][1] ^ feedback[1])
    return state


def _crc(value, nbytes):
    """The CRC of the first ``nbytes`` bytes of ``value`` (a Value), a parallel XOR tree."""
    bits = []
    for mask, const in crc_terms(nbytes):
        taps = [value[i] for i in range(8 * nbytes) if mask >> i & 1]
        parity = Cat(*taps).xor() if taps else Const(0, 1)
        bits.append(parity ^ const)
    return Cat(*bits)


class LinkSignature(wiring.Signature):
    """One link of a C2C slice, as the slice drives it (``Out(LinkSignature(config))``).

    A beat is ``c2c_bytes`` bytes, the frame's first byte of the beat in bits 7..0.

    Members
    -------
    tx_valid : Out(1)
        A beat of a frame is on ``tx_data`` this cycle.
    tx_data : Out(8 * c2c_bytes)
        The beat (zero while not valid).
    rx_valid : In(1)
        A beat from the peer is on ``rx_data`` this cycle.
    rx_data : In(8 * c2c_bytes)
        The beat.
    """

    def __init__(self, config):
        width = unsigned(8 * config.c2c_bytes)
        super().__init__({"tx_valid": Out(1), "tx_data": Out(width),
                          "rx_valid": In(1), "rx_data": In(width)})


class C2cSlice(FunctionalSlice):
    """A C2C slice (``C2C_W`` or ``C2C_E``) with ``c2c_links`` links (section 7d).

    ``S = superlanes``, ``F`` a frame's cycles on the wire (``isa.c2c_frame_cycles``: ``Fd``
    for data, ``Fm`` for a mark), ``t`` the issue cycle (superlane ``k`` sees the instruction
    in ``t + k``, :class:`Stagger`). ``C2C_W`` reads westward streams (``w_in``) and writes
    eastward ones (``e_we``/``e_wdata``), ``C2C_E`` the other way round; a stream operand of
    the other direction reads zero and writes nothing.

    * ``send l, s``: superlane ``k`` reads stream ``s`` in cycle ``t + k`` into a skew chain
      ``S - 1 - k`` registers deep; in cycle ``t + S - 1`` the whole vector, its CRC (a
      parallel XOR tree) and the header load link ``l``'s transmitter, which drives beat ``j``
      on ``tx_data`` in cycle ``t + S + j`` (``tx_valid`` high for the ``Fd`` beats).
    * ``mark l``: the same with the mark frame, stamp ``time`` of cycle ``t``.
    * Busy: a ``send``/``mark`` issued while the link's previous frame issued less than its
      ``F`` cycles before is not sent (error ``C2C_BUSY`` in cycle ``t``).
    * Receive: beats are counted on ``rx_valid``; beat 0's header sets the frame's length (a
      data frame's if within 4 bits of ``0xA5``). In the cycle ``c`` of the last beat the CRC
      and the header are checked (parallel, over the beats received and ``rx_data``) and a data
      frame is written, good or bad, into the link's buffer (``c2c_buffer`` entries, a
      memory), where a ``recv`` from cycle ``a = c + 1`` on finds it; it is dropped
      (``C2C_OVERFLOW``) if the buffer holds ``c2c_buffer`` frames after this cycle's ``recv``.
      The frame's errors are reported in cycle ``a`` (``C2C_CRC``, ``C2C_OVERFLOW``; a bad
      frame into a full buffer is both).
    * A link number at or past ``c2c_links`` names no link: ``send`` and ``mark`` send
      nothing, ``recv`` finds nothing (zeros, ``C2C_EMPTY``), a ``deskew`` waits forever.
    * ``recv dst, l``: in cycle ``t`` it takes the oldest frame (``C2C_EMPTY`` if none); the
      buffer's read port gives it in ``t + 1``, and superlane ``k`` of its payload (zeros if
      the buffer was empty or the frame bad) drives stream ``dst`` in cycle ``t + 1 + k``
      through ``k`` registers: in the output register at the end of ``t + 1 + k`` (latency 1).
    * ``deskew l``: the queue shows it on ``issue`` in every cycle it waits on it
      (:class:`~opentsp.hdl.icu.InstructionQueue` with ``deskew=True``). A good mark that
      arrives on link ``l`` in such a cycle ``a`` (its notify not yet sent) raises ``notify``
      and ``time_load`` (value ``stamp + S + Fm + c2c_latency``) in cycle ``a``, and
      ``deskew_release`` ``isa.NOTIFY_LATENCY - 1`` cycles later, when the notify bus releases
      the queues on ``sync``. A good mark that arrives otherwise is ``C2C_STRAY``; a bad mark
      is ``C2C_CRC``; both are dropped.
    * ``events`` report the cycle's errors: CRC failures, errors of the other kinds, and the
      first of the cycle (lowest link, then lowest kind).

    ``clear`` empties the receivers, buffers, pipelines and busy counters; ``tx_clear`` (the
    host's start or reset, section 7d) the transmitters, which ``clear`` leaves alone: the chip
    holds ``clear`` high while it is not running, and a frame issued in the run's last cycles
    still leaves whole after the chip is done, as the golden model carries it.

    Parameters
    ----------
    config : Config
        Chip parameters, with ``c2c_links > 0``.
    side : int
        ``WEST`` (``C2C_W``) or ``EAST`` (``C2C_E``).

    Attributes
    ----------
    clear, issue, e_in, w_in, e_we, w_we, e_wdata, w_wdata
        As every slice (:class:`~opentsp.hdl.slice.FunctionalSlice`).
    tx_clear : In(1)
        Empties the transmitters at the end of the cycle (the host's start or reset).
    link : Out(LinkSignature(config)).array(c2c_links)
        The links: ``link[l].tx_valid``, ``tx_data`` out, ``rx_valid``, ``rx_data`` in.
    time : In(32)
        The chip's time this cycle (a ``mark``'s stamp).
    notify : Out(1)
        To OR into the chip's notify bus: a deskew's mark arrived this cycle.
    deskew_release : Out(1)
        To the slice's queue: leave the ``deskew`` at the end of this cycle.
    time_load : Out(valid 1, value 32)
        In a deskew's cycle ``a``: the chip's time is ``value`` in this cycle.
    events : Out(crc, errors, error, kind 3, link 4)
        This cycle's CRC failures and errors of kinds 2 to 5 (counts), whether there is any,
        and the first of them (``hostmap.C2C_*`` kind and link).
    """

    def __init__(self, config, side):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {config!r}")
        if config.c2c_links < 1:
            raise ValueError(f"a C2C slice needs c2c_links > 0, not {config.c2c_links!r}")
        if side not in (WEST, EAST):
            raise ValueError(f"side must be WEST ({WEST}) or EAST ({EAST}), not {side!r}")
        self._side = side
        links = config.c2c_links
        super().__init__(config, {
            "tx_clear": In(1),
            "link": Out(LinkSignature(config)).array(links),
            "time": In(_TIME_BITS),
            "notify": Out(1),
            "deskew_release": Out(1),
            "time_load": Out(wiring.Signature({"valid": Out(1),
                                               "value": Out(_TIME_BITS)})),
            "events": Out(wiring.Signature({
                "crc": Out(range(links + 1)),
                "errors": Out(range(2 * links + 1)),
                "error": Out(1),
                "kind": Out(_KIND_BITS),
                "link": Out(isa.C2C_LINK_BITS),
            })),
        })

    @property
    def side(self):
        return self._side

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.stagger = stagger = Stagger(cfg)
        m.d.comb += [stagger.clear.eq(self.clear), stagger.i_valid.eq(self.issue.valid),
                     stagger.i_word.eq(self.issue.word)]
        self._layout = merged_layout(isa.C2C_OPS)
        self._cleared = []
        self._tx_regs = []
        issue = self._decode_issue(m, stagger.o[0])
        meta = self._issue_frames(m, issue)
        payload = self._skew_in(m, stagger)
        self._transmit(m, meta, payload)
        arrivals = [self._receive(m, link, issue) for link in range(cfg.c2c_links)]
        self._recv_out(m, issue, arrivals)
        self._deskew(m, issue, arrivals)
        self._events(m, issue, arrivals)
        with m.If(self.clear):      # last, so that it wins over every update above
            m.d.sync += [reg.eq(0) for reg in self._cleared]
        with m.If(self.tx_clear):
            m.d.sync += [reg.eq(0) for reg in self._tx_regs]
        return m

    def _reg(self, shape, name):
        """A register that ``clear`` empties."""
        reg = Signal(shape, name=name)
        self._cleared.append(reg)
        return reg

    def _decode_issue(self, m, ins):
        """The instruction of superlane 0 (cycle ``t``): per link, whether it is a ``send``,
        ``mark``, ``recv`` or ``deskew`` on it."""
        word = self._layout(ins.word)
        issue = _Issue(word, self._config.c2c_links)
        links = self._config.c2c_links
        for link in range(links):
            on = ins.valid & (word.l == link)
            for op in ("send", "mark", "recv", "deskew"):
                m.d.comb += getattr(issue, op)[link].eq(on & is_op(ins.word, op))
        if links < 1 << isa.C2C_LINK_BITS:     # a recv of a link that does not exist
            m.d.comb += issue.recv_none.eq(ins.valid & is_op(ins.word, "recv")
                                           & (word.l >= links))
        return issue

    def _frame_cycles(self, kind):
        return isa.c2c_frame_cycles(self._config, kind)

    def _issue_frames(self, m, issue):
        """``send``/``mark`` in cycle ``t``: the busy check and its error, and the frame's
        metadata (valid, mark, link, stamp) through ``S - 1`` registers.

        Returns
        -------
        Signal
            The metadata in cycle ``t + S - 1``.
        """
        cfg = self._config
        f_data, f_mark = self._frame_cycles(isa.FrameKind.DATA), self._frame_cycles(
            isa.FrameKind.MARK)
        meta_layout = data.StructLayout({"valid": 1, "mark": 1,
                                         "link": unsigned(isa.C2C_LINK_BITS),
                                         "stamp": unsigned(_TIME_BITS)})
        meta = Signal(meta_layout, name="meta")
        m.d.comb += [meta.link.eq(issue.word.l), meta.stamp.eq(self.time)]
        for link in range(cfg.c2c_links):
            busy = self._reg(range(max(f_data, f_mark)), f"busy_{link}")
            frame = issue.send[link] | issue.mark[link]
            go = Signal(name=f"go_{link}")
            m.d.comb += [go.eq(frame & (busy == 0)),
                         issue.busy[link].eq(frame & (busy != 0))]
            with m.If(go):
                m.d.sync += busy.eq(Mux(issue.mark[link], f_mark - 1, f_data - 1))
            with m.Elif(busy != 0):
                m.d.sync += busy.eq(busy - 1)
            with m.If(go):
                m.d.comb += [meta.valid.eq(1), meta.mark.eq(issue.mark[link])]
        for depth in range(cfg.superlanes - 1):
            reg = Signal(meta_layout, name=f"meta_{depth}")
            m.d.sync += reg.eq(meta)
            self._cleared.append(reg.valid)
            meta = reg
        return meta

    def _skew_in(self, m, stagger):
        """Superlane ``k`` of stream ``s`` (of the slice's input direction, else zero) in cycle
        ``t + k``, through ``S - 1 - k`` registers.

        Returns
        -------
        list of Value
            Superlane ``k``'s bytes in cycle ``t + S - 1``, aligned.
        """
        cfg = self._config
        bundle = self.w_in if self._side == WEST else self.e_in
        in_dir = int(isa.Dir.W if self._side == WEST else isa.Dir.E)
        aligned = []
        for k in range(cfg.superlanes):
            operand = self._layout(stagger.o[k].word).s
            read = select_stream(m, bundle, bundle, operand.dir, operand.id, k, cfg,
                                 f"read_{k}")
            value = Signal(superlane_layout(cfg), name=f"share_{k}")
            m.d.comb += value.eq(Mux(operand.dir == in_dir, read, 0))
            for depth in range(cfg.superlanes - 1 - k):
                reg = Signal(superlane_layout(cfg), name=f"skew_{k}_{depth}")
                m.d.sync += reg.eq(value)
                value = reg
            aligned.append(value)
        return aligned

    def _frame(self, header, body, beats):
        """A frame's bytes, ``header``, ``body`` (a Value), the CRC (low byte first), padded
        with zeros to ``beats * c2c_bytes`` bytes."""
        head = Cat(Const(header, 8), body)
        nbytes = len(head) // 8
        return Cat(head, _crc(head, nbytes), Const(0, 8 * (beats * self._config.c2c_bytes
                                                            - nbytes) - _CRC_BITS))

    def _transmit(self, m, meta, payload):
        """The transmitters: in cycle ``t + S - 1`` the frame (data or mark) loads link
        ``meta.link``'s shift register; beat ``j`` is on ``tx_data`` in cycle ``t + S + j``
        (also after ``clear`` rose: only ``tx_clear`` empties them)."""
        cfg = self._config
        f_data, f_mark = self._frame_cycles(isa.FrameKind.DATA), self._frame_cycles(
            isa.FrameKind.MARK)
        beats = max(f_data, f_mark)
        beat_bits = 8 * cfg.c2c_bytes
        frame = Signal(beats * beat_bits, name="tx_frame")
        m.d.comb += frame.eq(Mux(meta.mark, self._frame(_MARK, meta.stamp, beats),
                                 self._frame(_DATA, Cat(*payload), beats)))
        for link in range(cfg.c2c_links):
            shift = Signal(beats * beat_bits, name=f"tx_shift_{link}")
            left = Signal(range(beats + 1), name=f"tx_left_{link}")
            self._tx_regs += [shift, left]      # emptied by tx_clear, not by clear
            with m.If(meta.valid & (meta.link == link)):
                m.d.sync += [shift.eq(frame), left.eq(Mux(meta.mark, f_mark, f_data))]
            with m.Elif(left != 0):
                m.d.sync += [shift.eq(shift >> beat_bits), left.eq(left - 1)]
            m.d.comb += [self.link[link].tx_valid.eq(left != 0),
                         self.link[link].tx_data.eq(shift[:beat_bits])]

    def _receive(self, m, link, issue):
        """Link ``link``'s receiver and buffer: framing, CRC, the buffer's write and the
        ``recv``'s pop in cycle ``t``; the frame's arrival events a cycle after its last beat.

        Returns
        -------
        _Arrival
        """
        cfg = self._config
        port = self.link[link]
        f_data, f_mark = self._frame_cycles(isa.FrameKind.DATA), self._frame_cycles(
            isa.FrameKind.MARK)
        beat = self._reg(range(max(f_data, f_mark)), f"rx_beat_{link}")
        header = self._reg(8, f"rx_header_{link}")
        got = [Signal(8 * cfg.c2c_bytes, name=f"rx_got_{link}_{j}")
               for j in range(max(f_data, f_mark) - 1)]
        head_now = Mux(beat == 0, port.rx_data[:8], header)
        distance = sum((head_now ^ _DATA)[i] for i in range(8))
        is_data = Signal(name=f"rx_is_data_{link}")
        last = Signal(name=f"rx_last_{link}")
        m.d.comb += [is_data.eq(distance <= _DATA_HEADER_DISTANCE),
                     last.eq(port.rx_valid & Mux(is_data, beat == f_data - 1,
                                                 beat == f_mark - 1))]
        with m.If(port.rx_valid):
            m.d.sync += [header.eq(head_now), beat.eq(Mux(last, 0, beat + 1))]
            for j, reg in enumerate(got):
                with m.If(beat == j):
                    m.d.sync += reg.eq(port.rx_data)
        data_bytes = Cat(*got[:f_data - 1], port.rx_data)
        mark_bytes = Cat(*got[:f_mark - 1], port.rx_data)
        data_good = self._check(m, data_bytes, _DATA, cfg.lanes, f"rx_data_good_{link}")
        mark_good = self._check(m, mark_bytes, _MARK, isa.C2C_STAMP_BYTES,
                                f"rx_mark_good_{link}")
        arrival = _Arrival(link)
        self._buffer(m, link, issue, arrival, last & is_data, data_bytes, data_good)
        m.d.sync += [arrival.mark.eq(last & ~is_data), arrival.mark_good.eq(mark_good),
                     arrival.stamp.eq(mark_bytes[8:8 + _TIME_BITS])]
        self._cleared += [arrival.mark, arrival.data_bad, arrival.overflow]
        return arrival

    @staticmethod
    def _check(m, frame, header, payload_bytes, name):
        """1 when ``frame``'s header byte is ``header`` and its CRC matches."""
        nbytes = 1 + payload_bytes
        good = Signal(name=name)
        m.d.comb += good.eq((frame[:8] == header)
                            & (_crc(frame, nbytes) == frame[8 * nbytes:8 * nbytes + _CRC_BITS]))
        return good

    def _buffer(self, m, link, issue, arrival, got_data, data_bytes, data_good):
        """The receive buffer of ``link``: a data frame completing this cycle is written
        (payload and good bit) unless the buffer is full after this cycle's ``recv``; a
        ``recv`` in cycle ``t`` pops the oldest frame, read on ``arrival.read`` in ``t + 1``."""
        cfg = self._config
        depth = cfg.c2c_buffer
        entry = unsigned(8 * cfg.lanes + 1)
        mem = memory.Memory(shape=entry, depth=depth, init=[])
        m.submodules[f"buffer_{link}"] = mem
        wp, rp = mem.write_port(), mem.read_port()
        head = self._reg(range(depth), f"rx_head_{link}")
        tail = self._reg(range(depth), f"rx_tail_{link}")
        count = self._reg(range(depth + 1), f"rx_count_{link}")
        pop = issue.recv[link] & (count != 0)
        room = (count != depth) | pop
        push = got_data & room
        m.d.comb += [issue.empty[link].eq(issue.recv[link] & (count == 0)),
                     issue.hit[link].eq(pop),
                     wp.en.eq(push), wp.addr.eq(tail),
                     wp.data.eq(Cat(data_bytes[8:8 + 8 * cfg.lanes], data_good)),
                     rp.addr.eq(head)]
        m.d.sync += [count.eq(count + push - pop),
                     arrival.data_bad.eq(got_data & ~data_good),
                     arrival.overflow.eq(got_data & ~room)]
        with m.If(push):
            m.d.sync += tail.eq(Mux(tail == depth - 1, 0, tail + 1))
        with m.If(pop):
            m.d.sync += head.eq(Mux(head == depth - 1, 0, head + 1))
        arrival.read = rp.data

    def _recv_out(self, m, issue, arrivals):
        """``recv dst, l``: the frame popped in cycle ``t`` (read port data in ``t + 1``),
        zero if the buffer was empty or the frame bad; superlane ``k`` drives ``dst`` in cycle
        ``t + 1 + k`` through ``k`` registers."""
        cfg = self._config
        lps = cfg.lanes_per_superlane
        out_dir = int(isa.Dir.E if self._side == WEST else isa.Dir.W)
        taken_layout = data.StructLayout({"valid": 1, "hit": 1, "dst": STREAM,
                                          "link": unsigned(isa.C2C_LINK_BITS)})
        taken = Signal(taken_layout, name="taken")
        m.d.sync += [taken.valid.eq(Cat(*issue.recv, issue.recv_none).any()),
                     taken.hit.eq(Cat(*issue.hit).any()),
                     taken.dst.eq(issue.word.dst), taken.link.eq(issue.word.l)]
        self._cleared.append(taken.valid)
        read = Array(arrival.read for arrival in arrivals)[taken.link[:max(
            1, (cfg.c2c_links - 1).bit_length())]]
        payload = Signal(8 * cfg.lanes, name="recv_payload")
        m.d.comb += payload.eq(Mux(taken.hit & read[-1], read[:8 * cfg.lanes], 0))
        out_layout = data.StructLayout({"valid": 1, "id": unsigned(isa.STREAM_BITS),
                                        "data": superlane_layout(cfg)})
        out_we, out_wdata = ((self.e_we, self.e_wdata) if out_dir == int(isa.Dir.E)
                             else (self.w_we, self.w_wdata))
        for k in range(cfg.superlanes):
            stage = Signal(out_layout, name=f"recv_{k}")
            m.d.comb += [stage.valid.eq(taken.valid & (taken.dst.dir == out_dir)),
                         stage.id.eq(taken.dst.id),
                         stage.data.eq(payload[8 * lps * k:8 * lps * (k + 1)])]
            for depth in range(k):
                reg = Signal(out_layout, name=f"recv_{k}_{depth}")
                m.d.sync += reg.eq(stage)
                self._cleared.append(reg.valid)
                stage = reg
            for s in range(cfg.streams):
                m.d.comb += [out_we[s][k].eq(stage.valid & (stage.id == s)),
                             out_wdata[s][k].eq(stage.data)]

    def _deskew(self, m, issue, arrivals):
        """A good mark arriving in cycle ``a`` while the queue waits on a ``deskew`` of its
        link: ``notify`` and ``time_load`` in ``a``, ``deskew_release`` ``NOTIFY_LATENCY - 1``
        cycles later (until then the deskew waits no more)."""
        cfg = self._config
        pending = []
        bus = self.notify
        for stage in range(isa.NOTIFY_LATENCY - 1):
            reg = self._reg(1, f"deskew_notify_{stage}")
            m.d.sync += reg.eq(bus)
            pending.append(reg)
            bus = reg
        m.d.comb += self.deskew_release.eq(bus)
        waiting = ~Cat(*pending).any()
        offset = cfg.superlanes + self._frame_cycles(isa.FrameKind.MARK) + cfg.c2c_latency
        for arrival in arrivals:
            good = arrival.mark & arrival.mark_good
            take = good & issue.deskew[arrival.link] & waiting
            m.d.comb += [arrival.crc.eq(arrival.data_bad | (arrival.mark & ~arrival.mark_good)),
                         arrival.stray.eq(good & ~take)]
            with m.If(take):
                m.d.comb += [self.notify.eq(1), self.time_load.valid.eq(1),
                             self.time_load.value.eq(arrival.stamp + offset)]

    def _events(self, m, issue, arrivals):
        """This cycle's errors: the counts, and the first (lowest link, then lowest kind)."""
        errors = [issue.recv_none]
        for arrival in arrivals:
            link = arrival.link
            errors += [issue.busy[link], issue.empty[link], arrival.overflow, arrival.stray]
        m.d.comb += [self.events.crc.eq(sum(arrival.crc for arrival in arrivals)),
                     self.events.errors.eq(sum(errors)),
                     self.events.error.eq(Cat(*errors, *(a.crc for a in arrivals)).any())]
        with m.If(issue.recv_none):              # past every link: the first assignment
            m.d.comb += [self.events.kind.eq(hostmap.C2C_EMPTY),
                         self.events.link.eq(issue.word.l)]
        for arrival in reversed(arrivals):       # the lowest link's assignment comes last
            link = arrival.link
            kinds = ((hostmap.C2C_CRC, arrival.crc), (hostmap.C2C_BUSY, issue.busy[link]),
                     (hostmap.C2C_OVERFLOW, arrival.overflow),
                     (hostmap.C2C_EMPTY, issue.empty[link]), (hostmap.C2C_STRAY, arrival.stray))
            for kind, flag in reversed(kinds):   # the lowest kind comes last
                with m.If(flag):
                    m.d.comb += [self.events.kind.eq(kind), self.events.link.eq(link)]


class _Issue:
    """The decoded instruction of cycle ``t``, one signal per link in each list: ``send``,
    ``mark``, ``recv``, ``deskew`` on that link; the results of its checks (``busy``,
    ``empty``: errors; ``hit``: a ``recv`` that pops a frame); ``recv_none``: a ``recv`` of a
    link number at or past ``c2c_links`` (zeros, error ``empty``)."""

    def __init__(self, word, links):
        self.word = word
        for name in ("send", "mark", "recv", "deskew", "busy", "empty", "hit"):
            setattr(self, name, [Signal(name=f"{name}_{link}") for link in range(links)])
        self.recv_none = Signal(name="recv_none")


class _Arrival:
    """Link ``link``'s frame that completed in the cycle before (registers, read in cycle
    ``a``): a mark (``mark``, ``mark_good``, ``stamp``), a bad data frame (``data_bad``), a
    dropped one (``overflow``); and combinational ``crc``, ``stray``, the buffer's ``read``."""

    def __init__(self, link):
        self.link = link
        self.mark = Signal(name=f"arrived_mark_{link}")
        self.mark_good = Signal(name=f"arrived_mark_good_{link}")
        self.stamp = Signal(_TIME_BITS, name=f"arrived_stamp_{link}")
        self.data_bad = Signal(name=f"arrived_bad_{link}")
        self.overflow = Signal(name=f"arrived_overflow_{link}")
        self.crc = Signal(name=f"crc_{link}")
        self.stray = Signal(name=f"stray_{link}")
        self.read = None
