"""The C2C slices (docs/architecture.md section 7d): the RTL slice alone against a reference
written from the spec (``ref_slice``, frames from :mod:`opentsp.c2c_frame`) cycle by cycle --
frames on the links byte for byte, ``recv`` timing, the errors, mark and deskew -- and the
whole chip through its host port with a loopback cable."""

import random
from collections import defaultdict, deque

import numpy as np
import pytest
from amaranth.sim import Simulator
from test_top import Host

from opentsp import hostmap, isa
from opentsp.c2c_frame import beats, crc16, frame_bytes, kind_of, parse
from opentsp.config import Config, get_config
from opentsp.firmware.asm import assemble
from opentsp.hdl.c2c import EAST, WEST, C2cSlice, crc_terms
from opentsp.hdl.top import Chip, link_port_prefix, link_ports
from opentsp.topology import Port, loopback

C2C = get_config("c2c")
#: Three superlanes of three lanes, one link of 5 bytes a cycle, a buffer of 2: a data frame
#: (12 bytes) takes 3 beats, a mark (7) 2.
ODD = Config(name="odd-c2c", superlanes=3, lanes_per_superlane=3, streams=4, mem_slices=1,
             mem_words=16, mxm_size=3, queue_depth=16, c2c_links=1, c2c_bytes=5,
             c2c_latency=3, c2c_window=1, c2c_buffer=2)
#: One superlane, wide links: every frame is one beat; a buffer of one frame.
ONE = Config(name="one-c2c", superlanes=1, lanes_per_superlane=4, streams=4, mem_slices=1,
             mem_words=16, queue_depth=16, c2c_links=3, c2c_bytes=16, c2c_latency=2,
             c2c_buffer=1)
DATA, MARK = isa.FrameKind.DATA, isa.FrameKind.MARK
TIME_BASE = 1000      # the chip's time in cycle 0 of a slice test (time = cycle + TIME_BASE)


def in_dir(side):
    return isa.Dir.W if side == WEST else isa.Dir.E


def out_dir(side):
    return isa.Dir.E if side == WEST else isa.Dir.W


def test_crc_terms_are_the_crc_of_the_spec():
    rng = random.Random(1)
    assert crc16(b"123456789") == 0x29B1
    for nbytes in (1, 5, 9, 321):
        terms = crc_terms(nbytes)
        for _ in range(8):
            data = bytes(rng.randrange(256) for _ in range(nbytes))
            value = int.from_bytes(data, "little")
            got = sum(((bin(value & mask).count("1") & 1) ^ const) << r
                      for r, (mask, const) in enumerate(terms))
            assert got == crc16(data)


def test_slice_parameters_are_validated():
    with pytest.raises(ValueError, match="c2c_links"):
        C2cSlice(get_config("default"), WEST)
    with pytest.raises(ValueError, match="side"):
        C2cSlice(C2C, 2)
    with pytest.raises(TypeError):
        C2cSlice("c2c", WEST)


# The slice alone: a reference from the spec --------------------------------------------------

class Stim:
    """What a slice test drives: ``issue[t]`` (a word issued on superlane 0 in cycle ``t``),
    ``streams[t]`` (streams x lanes bytes at the slice's input direction in cycle ``t``;
    the other direction gets ``noise[t]``) and ``rx[link][t]`` (a beat, bytes)."""

    def __init__(self, config, cycles, rng):
        self.config, self.cycles = config, cycles
        self.issue = {}
        shape = (cycles, config.streams, config.lanes)
        self.streams = np.array(rng.integers(0, 256, size=shape), dtype=np.uint8)
        self.noise = np.array(rng.integers(0, 256, size=shape), dtype=np.uint8)
        self.rx = [dict() for _ in range(config.c2c_links)]

    def put_frame(self, link, start, data, flips=()):
        """Put the frame ``data`` (bytes) on ``rx[link]`` from cycle ``start``, bit ``i`` of
        the frame flipped for every ``i`` in ``flips``; returns the cycle after the last
        beat."""
        data = bytearray(data)
        for bit in flips:
            data[bit // 8] ^= 1 << bit % 8
        for j, beat in enumerate(beats(self.config, bytes(data))):
            self.rx[link][start + j] = beat
        return start + len(beats(self.config, bytes(data)))


def rx_frames(config, rx):
    """The frames on one link's receive side: ``(c, kind, Frame)``, ``c`` the cycle of the
    last beat, framed as the receiver does (the header's kind sets the length)."""
    frames, pending = [], []
    for cycle in sorted(rx):
        pending.append(rx[cycle])
        kind = kind_of(pending[0][0])
        if len(pending) == isa.c2c_frame_cycles(config, kind):
            data = b"".join(pending)[:isa.c2c_frame_bytes(config, kind)]
            frames.append((cycle, kind, parse(config, data)))
            pending = []
    return frames


class _Record:
    """The slice's outputs in every cycle, as the reference and the RTL runner build them."""

    def __init__(self, config, cycles):
        links = config.c2c_links
        self.tx = [[(0, 0)] * links for _ in range(cycles)]
        self.writes = [dict() for _ in range(cycles)]       # (dir, s, k) -> bytes
        self.notify = [0] * cycles
        self.load = [None] * cycles
        self.release = [0] * cycles
        self.events = [[] for _ in range(cycles)]           # (kind, link)

    def summary(self, cycle):
        events = self.events[cycle]
        crc = sum(kind == hostmap.C2C_CRC for kind, _ in events)
        first = min(events, key=lambda e: (e[1], e[0])) if events else None
        return {"tx": tuple(self.tx[cycle]), "writes": dict(sorted(self.writes[cycle].items())),
                "notify": self.notify[cycle], "load": self.load[cycle],
                "release": self.release[cycle], "crc": crc, "errors": len(events) - crc,
                "first": first}


def ref_slice(config, side, stim):
    """The slice's outputs in every cycle of ``stim``, from section 7d."""
    cycles, links, nsl = stim.cycles, config.c2c_links, config.superlanes
    rec = _Record(config, cycles)
    arrivals = defaultdict(list)
    for link in range(links):
        for c, kind, frame in rx_frames(config, stim.rx[link]):
            arrivals[c + 1].append((link, kind, frame))
    buffers = [deque() for _ in range(links)]
    busy_until = [0] * links
    last_notify = -cycles
    for x in range(cycles):
        for link, kind, frame in arrivals.get(x, []):
            if not frame.good:
                rec.events[x].append((hostmap.C2C_CRC, link))
            if kind == DATA:
                if len(buffers[link]) >= config.c2c_buffer:
                    rec.events[x].append((hostmap.C2C_OVERFLOW, link))
                else:
                    buffers[link].append(frame)
            elif frame.good:
                word = stim.issue.get(x)
                waiting = (word is not None and isa.decode(word).op.mnemonic == "deskew"
                           and isa.decode(word)["l"] == link
                           and x - last_notify >= isa.NOTIFY_LATENCY)
                if waiting:
                    last_notify = x
                    rec.notify[x] = 1
                    rec.load[x] = (frame.payload + nsl + isa.c2c_frame_cycles(config, MARK)
                                   + config.c2c_latency) % (1 << 32)
                    if x + isa.NOTIFY_LATENCY - 1 < cycles:
                        rec.release[x + isa.NOTIFY_LATENCY - 1] = 1
                else:
                    rec.events[x].append((hostmap.C2C_STRAY, link))
        if x in stim.issue:
            _ref_issue(config, side, stim, rec, x, buffers, busy_until)
    return rec


def _ref_issue(config, side, stim, rec, t, buffers, busy_until):
    """The instruction issued in cycle ``t``: ``send``/``mark`` frames on tx, ``recv`` writes."""
    nsl, lps = config.superlanes, config.lanes_per_superlane
    instr = isa.decode(stim.issue[t])
    op, link = instr.op.mnemonic, instr.get("l")
    if op in ("send", "mark") and link < config.c2c_links:
        kind = DATA if op == "send" else MARK
        if t < busy_until[link]:
            rec.events[t].append((hostmap.C2C_BUSY, link))
            return
        busy_until[link] = t + isa.c2c_frame_cycles(config, kind)
        if kind == DATA:
            ref = isa.StreamRef.decode(instr["s"])
            vector = np.zeros(config.lanes, np.uint8)
            for k in range(nsl):
                if ref.dir == in_dir(side) and ref.id < config.streams and t + k < stim.cycles:
                    vector[k * lps:(k + 1) * lps] = stim.streams[t + k, ref.id,
                                                                 k * lps:(k + 1) * lps]
            data = frame_bytes(config, DATA, vector)
        else:
            data = frame_bytes(config, MARK, t + TIME_BASE)
        for j, beat in enumerate(beats(config, data)):
            if t + nsl + j < stim.cycles:
                rec.tx[t + nsl + j][link] = (1, int.from_bytes(beat, "little"))
    elif op == "recv":      # a link past c2c_links finds nothing (section 7d)
        if link < config.c2c_links and buffers[link]:
            frame = buffers[link].popleft()
            payload = frame.payload if frame.good else np.zeros(config.lanes, np.uint8)
        else:
            rec.events[t].append((hostmap.C2C_EMPTY, link))
            payload = np.zeros(config.lanes, np.uint8)
        dst = isa.StreamRef.decode(instr["dst"])
        if dst.dir != out_dir(side) or dst.id >= config.streams:
            return
        for k in range(nsl):
            if t + 1 + k < stim.cycles:
                rec.writes[t + 1 + k][(int(dst.dir), dst.id, k)] = bytes(
                    payload[k * lps:(k + 1) * lps])


def rtl_slice(config, side, stim, full=True):
    """The RTL slice's outputs in every cycle of ``stim`` (without ``full``, only the events,
    notify, time load and release: faster)."""
    dut = C2cSlice(config, side)
    rec = _Record(config, stim.cycles)
    lps, cb = config.lanes_per_superlane, config.c2c_bytes
    own = dut.w_in if side == WEST else dut.e_in
    other = dut.e_in if side == WEST else dut.w_in

    def bundle(vectors):
        return [[[int(b) for b in vectors[s][k * lps:(k + 1) * lps]]
                 for k in range(config.superlanes)] for s in range(config.streams)]

    async def tb(ctx):
        ctx.set(dut.clear, 1)
        ctx.set(dut.tx_clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        ctx.set(dut.tx_clear, 0)
        for x in range(stim.cycles):
            word = stim.issue.get(x)
            ctx.set(dut.issue.valid, word is not None)
            ctx.set(dut.issue.word, word or 0)
            ctx.set(dut.time, x + TIME_BASE)
            if full:        # else the inputs stay zero
                ctx.set(own, bundle(stim.streams[x]))
                ctx.set(other, bundle(stim.noise[x]))
            for link in range(config.c2c_links):
                beat = stim.rx[link].get(x)
                ctx.set(dut.link[link].rx_valid, beat is not None)
                ctx.set(dut.link[link].rx_data, int.from_bytes(beat or bytes(cb), "little"))
            _sample(ctx, dut, config, rec, x, full)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return rec


def _sample(ctx, dut, config, rec, x, full):
    lps = config.lanes_per_superlane
    for link in range(config.c2c_links if full else 0):
        rec.tx[x][link] = (ctx.get(dut.link[link].tx_valid), ctx.get(dut.link[link].tx_data))
    for direction, we, wdata in ((isa.Dir.E, dut.e_we, dut.e_wdata),
                                 (isa.Dir.W, dut.w_we, dut.w_wdata))[:2 if full else 0]:
        mask, values = ctx.get(we), ctx.get(wdata)
        for s in range(config.streams):
            for k in range(config.superlanes):
                if mask[s] >> k & 1:
                    rec.writes[x][(int(direction), s, k)] = bytes(
                        values[s][k][j] for j in range(lps))
    rec.notify[x] = ctx.get(dut.notify)
    if ctx.get(dut.time_load.valid):
        rec.load[x] = ctx.get(dut.time_load.value)
    rec.release[x] = ctx.get(dut.deskew_release)
    crc, errors = ctx.get(dut.events.crc), ctx.get(dut.events.errors)
    rec.events[x] = [(hostmap.C2C_CRC, None)] * crc + [(0, None)] * errors
    if ctx.get(dut.events.error):
        rec.first = getattr(rec, "first", {})
        rec.first[x] = (ctx.get(dut.events.kind), ctx.get(dut.events.link))
    assert ctx.get(dut.events.error) == (crc + errors > 0)


def compare(config, side, stim):
    """The RTL against the reference, cycle by cycle; returns the reference's record."""
    ref = ref_slice(config, side, stim)
    rtl = rtl_slice(config, side, stim)
    firsts = getattr(rtl, "first", {})
    for x in range(stim.cycles):
        want, got = ref.summary(x), rtl.summary(x)
        got["first"] = firsts.get(x)
        assert got == want, (x, got, want)
    return ref


def send(link, side, stream=0):
    return isa.encode("send", l=link, s=isa.StreamRef(in_dir(side), stream)).encode()


def recv(link, side, stream=0):
    return isa.encode("recv", l=link, dst=isa.StreamRef(out_dir(side), stream)).encode()


def mark(link):
    return isa.encode("mark", l=link).encode()


def deskew(link):
    return isa.encode("deskew", l=link).encode()


def random_frame(config, rng):
    if rng.random() < 0.7:
        return frame_bytes(config, DATA, [rng.randrange(256) for _ in range(config.lanes)])
    return frame_bytes(config, MARK, rng.randrange(1 << 32))


def random_stim(config, side, seed, cycles=120):
    """Random instructions (some on links or streams that do not exist, or of the wrong
    direction, some into a busy link) and random frames on every link's rx (some with 1 to 3
    bits flipped, back to back or with gaps)."""
    rng = random.Random(seed)
    stim = Stim(config, cycles, np.random.default_rng(seed))
    t = 0
    while t < cycles - 4:
        op = rng.choice(["send", "send", "mark", "recv", "recv", "recv", "deskew", "none"])
        link = rng.randrange(config.c2c_links + (rng.random() < 0.1))
        stream = rng.randrange(config.streams + (rng.random() < 0.1))
        direction = in_dir(side) if rng.random() < 0.9 else out_dir(side)
        if op == "send":
            stim.issue[t] = isa.encode("send", l=link,
                                       s=isa.StreamRef(direction, stream)).encode()
        elif op == "recv":
            stim.issue[t] = isa.encode("recv", l=link,
                                       dst=isa.StreamRef(isa.Dir(1 - direction), stream)).encode()
        elif op == "mark":
            stim.issue[t] = mark(link)
        elif op == "deskew":
            for _ in range(rng.randint(1, 8)):
                stim.issue[t] = deskew(link)
                t += 1
        t += rng.choice([1, 1, 1, 2, 3, 5])
    for link in range(config.c2c_links):
        t = rng.randrange(6)
        while t < cycles:
            data = random_frame(config, rng)
            flips = (rng.sample(range(8 * len(data)), rng.randint(1, 3))
                     if rng.random() < 0.2 else ())
            t = stim.put_frame(link, t, data, flips) + rng.choice([0, 0, 1, 2, 4, 9])
    return stim


CONFIGS = [C2C, ODD, ONE]
CONFIG_IDS = ["c2c", "odd", "one"]


@pytest.mark.parametrize("side", [WEST, EAST], ids=["west", "east"])
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_frames_on_tx_byte_for_byte(config, side):
    """send and mark on every link, each as soon as its link is free: beat j of the frame of
    section 7d (opentsp.c2c_frame) on tx in cycle t + superlanes + j, and nothing else."""
    stim = Stim(config, 60, np.random.default_rng(7))
    f_data = isa.c2c_frame_cycles(config, DATA)
    f_mark = isa.c2c_frame_cycles(config, MARK)
    t, free = 0, [0] * config.c2c_links
    issued = []
    while t < 40:
        link = len(issued) % config.c2c_links
        kind = DATA if len(issued) % 3 != 2 else MARK
        t = max(t, free[link])
        stim.issue[t] = send(link, side, len(issued) % config.streams) if kind == DATA \
            else mark(link)
        issued.append((t, link, kind))
        free[link] = t + (f_data if kind == DATA else f_mark)
        t += 1
    ref = compare(config, side, stim)
    lps = config.lanes_per_superlane
    for t, link, kind in issued:
        if kind == DATA:
            s = isa.decode(stim.issue[t])["s"] & ((1 << isa.STREAM_BITS) - 1)
            vector = np.concatenate([stim.streams[t + k, s, k * lps:(k + 1) * lps]
                                     for k in range(config.superlanes)])
            data = frame_bytes(config, DATA, vector)
        else:
            data = frame_bytes(config, MARK, t + TIME_BASE)
        for j, beat in enumerate(beats(config, data)):
            assert ref.tx[t + config.superlanes + j][link] == (1, int.from_bytes(beat,
                                                                                 "little"))


@pytest.mark.parametrize("side", [WEST, EAST], ids=["west", "east"])
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("seed", range(3))
def test_random_traffic_matches_the_reference(config, side, seed):
    ref = compare(config, side, random_stim(config, side, seed + 10 * config.superlanes))
    kinds = {kind for events in ref.events for kind, _ in events}
    assert len(kinds) >= 3 and hostmap.C2C_CRC in kinds
    if isa.c2c_frame_cycles(config, MARK) > 1:      # else a link is never busy
        assert hostmap.C2C_BUSY in kinds


def test_recv_takes_a_frame_from_its_arrival_cycle():
    """A frame whose last beat is received in cycle c is taken by a recv in c + 1, not c;
    superlane k of its payload is written at the end of cycle t + 1 + k; a recv of a link
    past c2c_links writes zeros and counts an empty buffer."""
    config, side = C2C, WEST
    stim = Stim(config, 30, np.random.default_rng(3))
    vector = list(range(1, config.lanes + 1))
    end = stim.put_frame(1, 4, frame_bytes(config, DATA, vector))     # last beat in end - 1
    stim.issue[end - 1] = recv(1, side, 3)
    stim.issue[end] = recv(1, side, 5)
    stim.issue[1] = recv(config.c2c_links, side, 6)     # no such link: zeros, empty
    ref = compare(config, side, stim)
    assert ref.events[end - 1] == [(hostmap.C2C_EMPTY, 1)]
    assert ref.events[1] == [(hostmap.C2C_EMPTY, config.c2c_links)]
    assert ref.writes[2][(int(isa.Dir.E), 6, 0)] == bytes(config.lanes_per_superlane)
    lps = config.lanes_per_superlane
    for k in range(config.superlanes):
        assert ref.writes[end + 1 + k][(int(isa.Dir.E), 5, k)] == bytes(
            vector[k * lps:(k + 1) * lps])
        assert ref.writes[end + k][(int(isa.Dir.E), 3, k)] == bytes(lps)


def test_buffer_overflow_and_bad_frames_kept_in_order():
    """c2c_buffer frames fill the buffer; the next is dropped (overflow) unless a recv issued
    before its arrival made room; a bad frame is kept and read as zeros."""
    config, side = C2C, EAST
    stim = Stim(config, 60, np.random.default_rng(4))
    t = 0
    for i in range(config.c2c_buffer + 1):
        t = stim.put_frame(0, t, frame_bytes(config, DATA, [i] * config.lanes),
                           flips=(9,) if i == 1 else ())
    stim.issue[t - 1] = recv(0, side)     # the last frame's last beat: room before it arrives
    t = stim.put_frame(0, t, frame_bytes(config, DATA, [99] * config.lanes))
    for i in range(config.c2c_buffer + 1):
        stim.issue[t + 1 + i] = recv(0, side, i)
    ref = compare(config, side, stim)
    kinds = [kind for events in ref.events for kind, _ in events]
    assert kinds.count(hostmap.C2C_OVERFLOW) == 1 and kinds.count(hostmap.C2C_CRC) == 1
    assert kinds.count(hostmap.C2C_EMPTY) == 1


def test_deskew_notify_time_load_and_stray_marks():
    """A good mark that arrives while the queue is on a deskew of its link: notify and the
    time load in its arrival cycle, deskew_release NOTIFY_LATENCY - 1 cycles later; a mark on
    another link, before the deskew, or after the release is stray; a bad one is not
    taken."""
    config, side = C2C, WEST
    stim = Stim(config, 60, np.random.default_rng(5))
    stim.put_frame(0, 0, frame_bytes(config, MARK, 5))                  # before: stray
    stim.put_frame(1, 10, frame_bytes(config, MARK, 6))                 # other link: stray
    end = stim.put_frame(0, 12, frame_bytes(config, MARK, 7), flips=(20,))   # bad
    end = stim.put_frame(0, end, frame_bytes(config, MARK, 0xFFFFFFFF))  # taken
    stim.put_frame(0, end, frame_bytes(config, MARK, 9))                # after release
    for x in range(8, end + isa.NOTIFY_LATENCY):        # the queue leaves in the release
        stim.issue[x] = deskew(0)
    ref = compare(config, side, stim)
    assert ref.notify.count(1) == 1
    a = ref.notify.index(1)
    assert a == end
    assert ref.load[a] == (0xFFFFFFFF + isa.c2c_arrival(config, MARK, 0)) % (1 << 32)
    assert ref.release[a + isa.NOTIFY_LATENCY - 1] == 1
    kinds = [kind for events in ref.events for kind, _ in events]
    assert kinds.count(hostmap.C2C_STRAY) == 3 and kinds.count(hostmap.C2C_CRC) == 1


def _test_frame(config, kind):
    return (frame_bytes(config, DATA, list(range(10, 10 + config.lanes))) if kind == DATA
            else frame_bytes(config, MARK, 0x12345678))


def _bit_flips(bits, every=1):
    """Every single bit flip of a ``bits``-bit frame and every ``every``-th double flip."""
    return [(i,) for i in range(bits)] + [(i, j) for i in range(bits) for j in range(i)][::every]


def _flipped(data, flip):
    data = bytearray(data)
    for bit in flip:
        data[bit // 8] ^= 1 << bit % 8
    return bytes(data)


@pytest.mark.parametrize("kind", [DATA, MARK], ids=["data", "mark"])
def test_the_crc_catches_every_single_and_double_bit_flip(kind):
    """The frame check of the reference (:func:`opentsp.c2c_frame.parse`, as the receiver):
    every frame with one or two bits flipped is refused, the frame itself accepted."""
    data = _test_frame(C2C, kind)
    assert parse(C2C, data).good
    missed = [flip for flip in _bit_flips(8 * len(data)) if parse(C2C, _flipped(data, flip)).good]
    assert not missed, missed[:5]


#: The RTL sweep of ``make test`` takes every single flip and every 7th double flip (a third of
#: the cost); ``make test-slow`` takes every double flip.
@pytest.mark.parametrize("kind, every", [
    (DATA, 7), (MARK, 7), pytest.param(DATA, 1, marks=pytest.mark.slow),
    pytest.param(MARK, 1, marks=pytest.mark.slow)],
    ids=["data-sampled", "mark-sampled", "data-all", "mark-all"])
def test_single_and_double_bit_flips_are_detected_on_the_rtl(kind, every):
    """Frames with one or two of their bits flipped, back to back on every link: each is
    counted as a CRC error in the cycle after its last beat, none reaches the buffer good and
    no mark releases a deskew (the RTL matches the reference on every cycle)."""
    config, side = C2C, WEST
    data = _test_frame(config, kind)
    flips = _bit_flips(8 * len(data), every)
    per = isa.c2c_frame_cycles(config, kind)
    links = config.c2c_links
    stim = Stim(config, len(flips) // links * per + per + 2, np.random.default_rng(6))
    for n, flip in enumerate(flips):        # on every link at once
        stim.put_frame(n % links, n // links * per, data, flip)
        stim.issue[n // links * per] = recv(0, side) if kind == DATA else deskew(0)
    ref = ref_slice(config, side, stim)
    rtl = rtl_slice(config, side, stim, full=False)
    for x in range(stim.cycles):
        assert rtl.summary(x)["crc"] == ref.summary(x)["crc"], x
        assert rtl.summary(x)["errors"] == ref.summary(x)["errors"], x
    assert not any(rtl.notify) and not any(ref.notify)
    for n in range(len(flips)):
        assert (hostmap.C2C_CRC, n % links) in ref.events[(n // links + 1) * per], flips[n]


# The whole chip through its host port, with a loopback cable --------------------------------

#: Two vectors each way over the loopback cable (C2C_E.0 <-> C2C_W.0): read from MEM, sent,
#: received at the end of the latency window and written to words 8 and 9 of the other
#: hemisphere's MEM slice; and a recv on C2C_W before anything arrived (an empty buffer).
LOOPBACK = """
.config c2c
.data MEM_E3, 0, u8: 1, 2, 3, 4, 5, 6, 7, 8
.data MEM_E3, 1, u8: 11, 12, 13, 14, 15, 16, 17, 18
.data MEM_W3, 0, u8: 21, 22, 23, 24, 25, 26, 27, 28
.data MEM_W3, 1, u8: 31, 32, 33, 34, 35, 36, 37, 38
.queue MEM_E3
.at 6
    read e0, 0
.at 9
    read e0, 1
.at 32
    write 8, w1
.at 33
    write 9, w1
.queue C2C_E
.at 10
    send 0, e0
.at 13
    send 0, e0
.at 28
    recv w1, 0
.at 29
    recv w1, 0
.queue MEM_W3
.at 6
    read w0, 0
.at 9
    read w0, 1
.at 32
    write 8, e1
.at 33
    write 9, e1
.queue C2C_W
.at 10
    send 0, w0
.at 13
    send 0, w0
{early}
.at 28
    recv e1, 0
.at 29
    recv e1, 0
"""


class Cable:
    """The testbench's cable between two link ports of one chip (or two): every beat ``tx``
    sends is on the peer's ``rx`` ``latency`` cycles later, with the bits of ``faults``
    (``{frame number: [bit, ..]}``, per sending port) flipped in flight."""

    def __init__(self, chips, pairs, config):
        self.chips, self.pairs, self.config = chips, pairs, config
        self.latency = {}       # (chip, prefix) sending -> cycles
        self.faults = {}        # (chip, prefix) sending -> {frame: [bits]}
        self.sent = defaultdict(list)      # (chip, prefix) -> frames sent (bytes)

    async def run(self, ctx):
        due = defaultdict(list)
        beats = defaultdict(list)       # the frame being sent on a port
        cycle = 0
        ends = [(a, b) for a, b in self.pairs] + [(b, a) for a, b in self.pairs]
        while True:
            for (chip, prefix), (peer, peer_prefix) in ends:
                port = self.chips[chip]
                if ctx.get(getattr(port, prefix + "tx_valid")):
                    beat = ctx.get(getattr(port, prefix + "tx_data"))
                    current = beats[chip, prefix]
                    current.append(beat)
                    kind = kind_of(current[0] & 0xFF)
                    if len(current) == isa.c2c_frame_cycles(self.config, kind):
                        self._send(due, cycle, (chip, prefix), (peer, peer_prefix), current)
                        current.clear()
            for (peer, peer_prefix), _ in ends:
                beat = due.pop((cycle, peer, peer_prefix), None)
                port = self.chips[peer]
                ctx.set(getattr(port, peer_prefix + "rx_valid"), beat is not None)
                ctx.set(getattr(port, peer_prefix + "rx_data"), beat or 0)
            await ctx.tick()
            cycle += 1

    def _send(self, due, cycle, sender, receiver, frame_beats):
        """A whole frame has been sent, its last beat in ``cycle``: put it on the peer's rx."""
        width = 8 * self.config.c2c_bytes
        number = len(self.sent[sender])
        value = sum(beat << (width * j) for j, beat in enumerate(frame_beats))
        for bit in self.faults.get(sender, {}).get(number, ()):
            value ^= 1 << bit
        self.sent[sender].append(value)
        first = cycle - (len(frame_beats) - 1)
        for j in range(len(frame_beats)):
            assert self.latency[sender] >= len(frame_beats)
            due[(first + j + self.latency[sender],) + receiver] = (value >> (width * j)
                                                                  & ((1 << width) - 1))


async def run_chip(ctx, host, limit=5000):
    """Start the chip; wait until it is done. Returns REG_CYCLES, REG_STATUS and the four
    REG_C2C_* registers."""
    await host.write(hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_START)
    seen = 0
    while ctx.get(host.chip.running):
        seen += 1
        assert seen < limit
        await ctx.tick()
    regs = [hostmap.REG_CYCLES, hostmap.REG_STATUS, hostmap.REG_C2C_CRC, hostmap.REG_C2C_ERRORS,
            hostmap.REG_C2C_FIRST, hostmap.REG_C2C_FIRST_CYCLE]
    return [await host.read(hostmap.control_addr(reg)) for reg in regs]


def expected_registers(result):
    """What the host reads for a golden model result: the same six registers."""
    status = hostmap.STATUS_DONE | (hostmap.STATUS_C2C_ERROR if result.c2c_first else 0)
    kind, side, link, cycle = result.c2c_first or (0, 0, 0, 0)
    first = hostmap.c2c_first(kind, side, link) if result.c2c_first else 0
    return [result.cycles, status, result.c2c_crc, result.c2c_errors, first, cycle]


def _port(prefix):
    side = "C2C_W" if prefix.startswith("c2c_w") else "C2C_E"
    return side, int(prefix[5:-1])


def test_link_ports_are_named_by_slice_and_link():
    assert link_ports(get_config("default")) == []
    names = link_ports(C2C)
    assert names[:4] == ["c2c_w0_tx_valid", "c2c_w0_tx_data", "c2c_w0_rx_valid",
                         "c2c_w0_rx_data"]
    assert len(names) == 4 * 2 * C2C.c2c_links and "c2c_e1_rx_data" in names
    assert link_port_prefix("C2C_E", 1) == link_port_prefix(EAST, 1) == "c2c_e1_"


def test_loopback_chip_matches_the_golden_model():
    """The c2c chip with C2C_E.0 cabled to C2C_W.0 by the testbench, for every latency of the
    window, a frame hit by one or two bit flips, and a recv of an empty buffer: every MEM word
    the program writes, REG_CYCLES, REG_STATUS and the REG_C2C_* registers are the multi-chip
    golden model's (one load, then a run per case: a start clears the links, the counters and
    the first error, as the last, clean, run after runs with errors shows)."""
    system = pytest.importorskip("opentsp.sim.system")
    topology = loopback(C2C)
    images = [assemble(LOOPBACK.format(early=early), C2C).image
              for early in ("", ".at 14\n    recv e2, 0")]
    low, high = C2C.c2c_latency, C2C.c2c_latency + C2C.c2c_window
    cases = [(0, latency, {}) for latency in range(low, high + 1)]
    cases += [(1, low, {}), (0, high, {"c2c_e0_": {1: [30]}}),
              (1, low + 1, {"c2c_w0_": {0: [3, 70]}, "c2c_e0_": {0: [0]}}), (0, low, {})]
    chip = Chip(C2C)
    cable = Cable([chip], [((0, "c2c_e0_"), (0, "c2c_w0_"))], C2C)
    mems = [s.name for s in isa.mem_slices(C2C)]
    checked = []

    async def body(ctx):
        host = Host(ctx, chip)
        for image in images:
            for (mem, addr), lanes in image.data.items():
                await host.store(mem, addr, [int(x) for x in lanes])
        for which, latency, faults in cases:
            image = images[which]
            for q, program in enumerate(image.queues):
                await host.load_queue(q, program)
            ref = system.run_system(
                [image], topology, latencies={port: latency for port in topology.ports},
                faults=[system.LinkFault(Port(0, *_port(prefix)), frame, bit)
                        for prefix, frames in faults.items()
                        for frame, bits in frames.items() for bit in bits]).chips[0]
            cable.latency = {(0, "c2c_e0_"): latency, (0, "c2c_w0_"): latency}
            cable.faults = {(0, prefix): frames for prefix, frames in faults.items()}
            cable.sent.clear()
            case = (which, latency, faults)
            assert await run_chip(ctx, host) == expected_registers(ref), case
            for name in ("MEM_E3", "MEM_W3"):
                mem = mems.index(name)
                for addr in (0, 1, 8, 9):
                    assert await host.load(mem, addr) == list(ref.memories[mem, addr]), \
                        (case, name, addr)
            checked.append(case)

    sim = Simulator(chip)
    sim.add_clock(1e-6)
    sim.add_testbench(body)
    sim.add_testbench(cable.run, background=True)
    sim.run()
    assert len(checked) == len(cases)


def _written_words(image):
    """``(mem, word)`` of every MEM word ``image`` loads or its program writes."""
    mems = [s.name for s in isa.mem_slices(image.config)]
    words = set(image.data)
    for queue, program in zip(isa.queues(image.config), image.queues, strict=True):
        if queue.kind == isa.SliceKind.MEM:
            words |= {(mems.index(queue.name), instr["addr"]) for instr in program
                      if instr.op.mnemonic == "write"}
    return sorted(words)


def run_system_rtl(system_program, draws):
    """The chips of ``system_program`` on one simulator, cabled by the testbench as its
    topology says; per draw ``(latencies, starts, faults)`` (``{Port: cycles}``,
    ``[global cycle]``, ``{Port: {frame: [bits]}}``) one run, every chip's host starting it in
    its cycle. Returns per draw and chip the six registers of :func:`run_chip` and the words
    of :func:`_written_words`."""
    from amaranth.hdl import Module

    topology, images = system_program.topology, system_program.images
    config = topology.config
    chips = [Chip(config) for _ in images]
    top = Module()
    for i, chip in enumerate(chips):
        top.submodules[f"chip{i}"] = chip
    pairs = [((cable.a.chip, link_port_prefix(cable.a.side, cable.a.link)),
              (cable.b.chip, link_port_prefix(cable.b.side, cable.b.link)))
             for cable in topology.cables]
    cable = Cable(chips, pairs, config)
    outcomes = []

    def key(port):
        return port.chip, link_port_prefix(port.side, port.link)

    async def body(ctx):
        hosts = [Host(ctx, chip) for chip in chips]
        for host, image in zip(hosts, images, strict=True):
            for q, program in enumerate(image.queues):
                await host.load_queue(q, program)
            for (mem, addr), lanes in image.data.items():
                await host.store(mem, addr, [int(x) for x in lanes])
        for latencies, starts, faults in draws:
            cable.latency = {key(port): latency for port, latency in latencies.items()}
            cable.faults = {key(port): frames for port, frames in faults.items()}
            cable.sent.clear()
            await _start_skewed(ctx, chips, starts)
            waited = 0
            while any(ctx.get(chip.running) for chip in chips):
                waited += 1
                assert waited < 5000
                await ctx.tick()
            outcome = []
            for host, image in zip(hosts, images, strict=True):
                registers = [await host.read(hostmap.control_addr(reg)) for reg in (
                    hostmap.REG_CYCLES, hostmap.REG_STATUS, hostmap.REG_C2C_CRC,
                    hostmap.REG_C2C_ERRORS, hostmap.REG_C2C_FIRST,
                    hostmap.REG_C2C_FIRST_CYCLE)]
                words = {word: await host.load(*word) for word in _written_words(image)}
                outcome.append((registers, words))
            outcomes.append(outcome)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(body)
    sim.add_testbench(cable.run, background=True)
    sim.run()
    return outcomes


async def _start_skewed(ctx, chips, starts):
    """Write CTRL_START to chip ``i`` in the ``starts[i]``-th cycle from now (it runs its cycle
    0 in the next)."""
    for cycle in range(max(starts) + 1):
        for chip, start in zip(chips, starts, strict=True):
            ctx.set(chip.host_addr, hostmap.control_addr(hostmap.REG_CTRL))
            ctx.set(chip.host_wdata, hostmap.CTRL_START)
            ctx.set(chip.host_wen, start == cycle)
        await ctx.tick()
    for chip in chips:
        ctx.set(chip.host_wen, 0)


# 18 s in Amaranth's simulator: make test runs ring2 with a bit flip in flight on Verilator
# (tests/cosim/test_system_cosim.py::test_ring2_relay_on_verilator)
@pytest.mark.slow
def test_ring_of_two_chips_with_deskew_matches_the_golden_model():
    """The ring2 relay example (chip 1 deskews on chip 0's mark, doubles X and sends it back)
    on two RTL chips cabled by the testbench, under random latencies and start skews and with
    a bit flip in flight: every chip's registers (REG_CYCLES on the common time) and written
    words are the multi-chip golden model's."""
    system = pytest.importorskip("opentsp.sim.system")
    from opentsp.firmware.gen_multichip import ring_relay
    from opentsp.firmware.system import assemble_system

    program = assemble_system(ring_relay(2))
    topology = program.topology
    draws = []
    for seed in range(4):
        starts = [seed % 2, (seed * 3) % 9]
        draws.append((system.random_latencies(topology, seed), starts, {}))
    east0 = Port(0, "C2C_E", 0)
    draws.append((system.random_latencies(topology, 9), [0, 2], {east0: {1: [17]}}))
    refs = []
    for latencies, starts, faults in draws:
        result = system.run_system(
            program.images, topology, latencies=latencies, starts=starts,
            faults=[system.LinkFault(port, frame, bit) for port, frames in faults.items()
                    for frame, bits in frames.items() for bit in bits])
        refs.append(result.chips)
    outcomes = run_system_rtl(program, draws)
    for draw, ref, outcome in zip(draws, refs, outcomes, strict=True):
        for chip, (result, (registers, words)) in enumerate(zip(ref, outcome, strict=True)):
            assert registers == expected_registers(result), (draw, chip)
            for (mem, addr), lanes in words.items():
                assert lanes == list(result.memories[mem, addr]), (draw, chip, mem, addr)
    assert len({tuple(ref.cycles for ref in chips) for chips in refs[:4]}) == 1


def test_queue_parks_on_deskew_until_its_own_release():
    """A C2C slice's queue shows ``deskew`` on ``issue`` in every cycle it waits, leaves it at
    the end of a cycle with ``deskew_release`` (not with ``release``, the notify bus), and a
    ``repeat`` right after it has nothing to re-issue."""
    from opentsp.hdl.icu import InstructionQueue

    program = [isa.encode("deskew", l=1), isa.encode("repeat", n=2, d=1),
               isa.encode("mark", l=0), isa.encode("end")]
    dut = InstructionQueue(16, deskew=True)
    seen = []

    async def tb(ctx):
        for index, instr in enumerate(program):
            ctx.set(dut.w_en, 1)
            ctx.set(dut.w_addr, index)
            ctx.set(dut.w_data, instr.encode())
            await ctx.tick()
        ctx.set(dut.w_en, 0)
        ctx.set(dut.clear, 1)
        ctx.set(dut.run_next, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        ctx.set(dut.run, 1)
        for cycle in range(12):
            ctx.set(dut.release, cycle in (1, 2))
            ctx.set(dut.deskew_release, cycle == 4)
            valid, word = ctx.get(dut.issue.valid), ctx.get(dut.issue.word)
            seen.append((isa.decode(word).op.mnemonic if valid else None,
                         ctx.get(dut.parked), ctx.get(dut.ending)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert seen[:5] == [("deskew", 1, 0)] * 4 + [("deskew", 0, 0)]
    assert seen[5:9] == [(None, 0, 0), (None, 0, 0), ("mark", 0, 0), (None, 0, 1)]


@pytest.mark.slow       # 40 s each in Amaranth's simulator; make test runs them on Verilator
@pytest.mark.parametrize("name, chips", [("full", 4), ("ring", 4)])   # (test_system_cosim.py)
def test_four_chip_examples_match_the_golden_model(name, chips):
    """The full4 gather (chip 0 marks and sends on a link to each other chip, each deskews on
    it, doubles the vector and sends it back: both links of both sides in use) and the ring4
    relay (a deskew chain) on four RTL chips, two draws of latencies and starts: registers and
    written words are the multi-chip golden model's, and the expected numpy results."""
    system = pytest.importorskip("opentsp.sim.system")
    from opentsp.firmware import gen_multichip
    from opentsp.firmware.system import assemble_system

    generate = gen_multichip.full_gather if name == "full" else gen_multichip.ring_relay
    program = assemble_system(generate(chips))
    topology = program.topology
    draws = [(system.random_latencies(topology, seed), [0] + [(seed * 3 + k) % 9
                                                            for k in range(chips - 1)], {})
             for seed in (0, 5)]
    refs = [system.run_system(program.images, topology, latencies=latencies,
                              starts=starts).chips for latencies, starts, _ in draws]
    outcomes = run_system_rtl(program, draws)
    mems = [s.name for s in isa.mem_slices(C2C)]
    for draw, ref, outcome in zip(draws, refs, outcomes, strict=True):
        for chip, (result, (registers, words)) in enumerate(zip(ref, outcome, strict=True)):
            assert registers == expected_registers(result), (draw, chip)
            for (mem, addr), lanes in words.items():
                assert lanes == list(result.memories[mem, addr]), (draw, chip, mem, addr)
        for (chip, mem, word), want in gen_multichip.expected(C2C, name, chips).items():
            got = outcome[chip][1][mems.index(mem), word]
            assert np.array_equal(np.array(got, np.uint8).view(np.int8), want), (chip, mem)


def random_loopback_source(rng):
    """A random loopback program: each side sends up to ``c2c_buffer`` vectors read from its
    MEM_x3 (C2C_E on even cycles, C2C_W on odd ones, a link's frames apart or more), recvs some
    before anything can have arrived and then more than it was sent, storing what it takes in
    words 8.. of MEM_x3. Its only errors are empty buffers (and CRC failures from the faults),
    never two in one cycle."""
    lines = [".config c2c"]
    f_data = isa.c2c_frame_cycles(C2C, DATA)
    for side, parity, mem, in_s, out_s in (("C2C_E", 0, "MEM_E3", "e", "w"),
                                           ("C2C_W", 1, "MEM_W3", "w", "e")):
        sends, t = [], 10 + parity
        for _ in range(rng.randint(1, C2C.c2c_buffer)):
            sends.append(t)
            t += rng.choice([f_data + 1, f_data + 3, 2 * f_data + 2]) // 2 * 2
        early = sorted(rng.sample(range(parity, 20, 2), rng.randint(0, 2)))
        early = [r for r in early if r not in sends]
        late, t = [], 60 + parity
        for _ in range(len(sends) + rng.randint(0, 2)):
            late.append(t)
            t += rng.choice([2, 2, 4])
        for word in range(len(sends)):
            values = ", ".join(str(rng.randrange(256)) for _ in range(C2C.lanes))
            lines.append(f".data {mem}, {word}, u8: {values}")
        events = ([(s - 4, f"    read {in_s}0, {i}") for i, s in enumerate(sends)]
                  + [(r + 4, f"    write {8 + i}, {out_s}1") for i, r in enumerate(late)])
        lines += _queue_lines(mem, events)
        events = ([(s, f"    send 0, {in_s}0") for s in sends]
                  + [(r, f"    recv {out_s}2, 0") for r in early]
                  + [(r, f"    recv {out_s}1, 0") for r in late])
        lines += _queue_lines(side, events)
    return "\n".join(lines) + "\n"


def _queue_lines(name, events):
    lines = [f".queue {name}"]
    for cycle, text in sorted(events):
        lines += [f".at {cycle}", text]
    return lines


def test_random_loopback_programs_match_the_golden_model():
    """Random loopback programs (random send and recv times, empty recvs, latencies anywhere
    in the window, a bit flip now and then) on one chip, run after run: registers and the
    words written are the multi-chip golden model's."""
    system = pytest.importorskip("opentsp.sim.system")
    rng = random.Random(20)
    topology = loopback(C2C)
    low, high = C2C.c2c_latency, C2C.c2c_latency + C2C.c2c_window
    cases = []
    for _ in range(6):
        image = assemble(random_loopback_source(rng), C2C).image
        latencies = {port: rng.randint(low, high) for port in topology.ports}
        faults = {}
        if rng.random() < 0.5:
            port = rng.choice(topology.ports)
            faults = {port: {0: [rng.randrange(8 * isa.c2c_frame_bytes(C2C, DATA))]}}
        ref = system.run_system(
            [image], topology, latencies=latencies,
            faults=[system.LinkFault(port, frame, bit) for port, frames in faults.items()
                    for frame, bits in frames.items() for bit in bits]).chips[0]
        cases.append((image, latencies, faults, ref))
    chip = Chip(C2C)
    cable = Cable([chip], [((0, "c2c_e0_"), (0, "c2c_w0_"))], C2C)
    checked = []

    def key(port):
        return 0, link_port_prefix(port.side, port.link)

    async def body(ctx):
        host = Host(ctx, chip)
        for image, latencies, faults, ref in cases:
            for q, program in enumerate(image.queues):
                await host.load_queue(q, program)
            for (mem, addr), lanes in image.data.items():
                await host.store(mem, addr, [int(x) for x in lanes])
            cable.latency = {key(port): latency for port, latency in latencies.items()}
            cable.faults = {key(port): frames for port, frames in faults.items()}
            cable.sent.clear()
            assert await run_chip(ctx, host) == expected_registers(ref), (latencies, faults)
            for mem, addr in _written_words(image):
                assert await host.load(mem, addr) == list(ref.memories[mem, addr]), (mem, addr)
            checked.append(ref.c2c_errors)

    sim = Simulator(chip)
    sim.add_clock(1e-6)
    sim.add_testbench(body)
    sim.add_testbench(cable.run, background=True)
    sim.run()
    assert len(checked) == len(cases) and any(checked)


def test_two_marks_in_one_cycle_the_deskews_link_is_taken():
    """Marks arriving in the same cycle on both links of a slice whose queue waits on a deskew
    of link 1: link 1's releases it (section 7d: a mark is stray only when the queue is not on
    a deskew of its link), link 0's is stray, whichever link comes first."""
    config, side = C2C, EAST
    stim = Stim(config, 30, np.random.default_rng(8))
    end = stim.put_frame(0, 3, frame_bytes(config, MARK, 40))
    assert stim.put_frame(1, 3, frame_bytes(config, MARK, 50)) == end
    for x in range(0, end + isa.NOTIFY_LATENCY):
        stim.issue[x] = deskew(1)
    ref = compare(config, side, stim)
    assert ref.notify[end] == 1 and ref.load[end] == 50 + isa.c2c_arrival(config, MARK, 0)
    assert ref.events[end] == [(hostmap.C2C_STRAY, 0)]
