"""The RTL instruction queue against the golden model ``opentsp.sim.icu.Queue``, slot by slot."""

import random

import pytest
from amaranth.hdl import Mux, Signal, unsigned
from amaranth.lib import memory
from amaranth.sim import Simulator

from opentsp import isa
from opentsp.hdl.icu import InstructionQueue, _SlotState
from opentsp.queue_timing import end_slot, issue_schedule
from opentsp.sim.icu import Queue

DEPTH = 32


def random_program(rng, length):
    """A queue program of ``length - 1`` random instructions and ``end``; repeats may come
    first (nothing to repeat) and may follow nops or other repeats."""
    program = []
    for _ in range(length - 1):
        kind = rng.choice(["nop", "nop", "read", "write", "add", "repeat", "repeat"])
        if kind == "nop":
            count = rng.choice([1, 1, 2, 3, rng.randint(1, 20)])
            program.append(isa.encode("nop", count=count))
        elif kind == "repeat":
            program.append(isa.encode("repeat", n=rng.randint(1, 4), d=rng.randint(1, 4)))
        elif kind in ("read", "write"):
            program.append(isa.encode(kind, s=rng.randrange(64), addr=rng.randrange(8192)))
        else:
            program.append(isa.encode("add", dtype=0, dst=rng.randrange(64),
                                      a=rng.randrange(64), b=rng.randrange(64)))
    program.append(isa.encode("end"))
    return program


def run_programs(programs, extra=4):
    """Load and run each program in turn on one queue; compare every cycle with the model."""
    dut = InstructionQueue(DEPTH)
    checked = []
    cycles = [0]

    async def tb(ctx):
        for program in programs:
            ctx.set(dut.run, 0)
            ctx.set(dut.run_next, 0)
            for index, instr in enumerate(program):
                ctx.set(dut.w_en, 1)
                ctx.set(dut.w_addr, index)
                ctx.set(dut.w_data, instr.encode())
                await ctx.tick()
            ctx.set(dut.w_en, 0)
            ctx.set(dut.clear, 1)           # the host's start cycle
            ctx.set(dut.run_next, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            ctx.set(dut.run, 1)
            ref = Queue(program)
            last_slot = end_slot(program)
            for cycle in range(last_slot + extra):
                ctx.set(dut.run_next, cycle < last_slot + extra - 1)    # then the next load
                ref_issue = ref.step()
                rtl_valid = ctx.get(dut.issue.valid)
                rtl_word = ctx.get(dut.issue.word)
                ref_valid = ref_issue is not None
                assert rtl_valid == ref_valid, (program, cycle)
                if ref_valid:
                    assert rtl_word == ref_issue.encode(), (program, cycle)
                assert ctx.get(dut.ending) == (cycle == last_slot), (program, cycle)
                assert ctx.get(dut.ended) == (cycle > last_slot), (program, cycle)
                assert ref.ended == (cycle >= last_slot)
                await ctx.tick()
                cycles[0] += 1
            checked.append(program)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert len(checked) == len(programs)
    return cycles[0]


def test_fixed_program():
    read = isa.encode("read", s=3, addr=5)
    program = [isa.encode("nop", count=3), read, isa.encode("repeat", n=3, d=2),
               isa.encode("nop", count=1), isa.encode("repeat", n=2, d=1), isa.encode("end")]
    issues, last = issue_schedule(program)
    assert [cycle for cycle, _ in issues] == [3, 5, 7, 9, 11, 12] and last == 13
    run_programs([program])


def test_end_first():
    run_programs([[isa.encode("end")]])


def test_repeat_without_previous_issues_nothing():
    run_programs([[isa.encode("repeat", n=3, d=2), isa.encode("nop", count=2),
                   isa.encode("end")]])


@pytest.mark.parametrize("seed", range(4))
def test_random_programs(seed):
    rng = random.Random(seed)
    programs = [random_program(rng, rng.randint(1, DEPTH)) for _ in range(30)]
    assert run_programs(programs) > 30 * 10


def test_clear_restarts():
    """A program that runs twice (host reload not needed): clear resets pc and last issue."""
    program = [isa.encode("write", addr=1, s=2), isa.encode("repeat", n=2, d=3),
               isa.encode("end")]
    run_programs([program, program])


# Sync and notify (section 5a): several queues on one notify bus -----------------------------

from amaranth.hdl import Cat, Module  # noqa: E402

from opentsp.hdl.icu import NotifyBus  # noqa: E402
from opentsp.queue_timing import At, AtError, schedule  # noqa: E402

SYNC, NOTIFY, END = isa.encode("sync"), isa.encode("notify"), isa.encode("end")
L = isa.NOTIFY_LATENCY


def nop(count):
    return isa.encode("nop", count=count)


def rd(addr):
    return isa.encode("read", s=1, addr=addr)


def golden_group(programs, cycles):
    """The golden queues on the notify bus of ``opentsp.sim.model``: per cycle, the issued
    words (None for nothing) and the notify/parked/ended flags of every queue."""
    queues = [Queue(p) for p in programs]
    notified = set()
    trace = []
    for t in range(cycles):
        release = t - (L - 1) in notified
        row = []
        for queue in queues:
            issued = queue.step(release)
            row.append((None if issued is None else issued.encode(), queue.notified,
                        queue.parked, queue.ended and queue.end_cycle < t))
            if queue.notified:
                notified.add(t)
        trace.append(row)
    return trace


def run_group(programs, cycles):
    """Queues of ``programs`` and a :class:`NotifyBus` in the Amaranth simulator, compared
    with :func:`golden_group` cycle by cycle (after a clear, as the chip starts)."""
    m = Module()
    queues = [InstructionQueue(DEPTH) for _ in programs]
    for i, queue in enumerate(queues):
        m.submodules[f"q{i}"] = queue
    m.submodules.bus = bus = NotifyBus(len(queues))
    m.d.comb += bus.notify.eq(Cat(*(q.notify for q in queues)))
    for queue in queues:
        m.d.comb += [queue.release.eq(bus.release), queue.clear.eq(bus.clear)]
    expected = golden_group(programs, cycles)
    seen = []

    async def tb(ctx):
        for queue, program in zip(queues, programs, strict=True):
            for index, instr in enumerate(program):
                ctx.set(queue.w_en, 1)
                ctx.set(queue.w_addr, index)
                ctx.set(queue.w_data, instr.encode())
                await ctx.tick()
            ctx.set(queue.w_en, 0)
        ctx.set(bus.clear, 1)
        for queue in queues:
            ctx.set(queue.run_next, 1)
        await ctx.tick()
        ctx.set(bus.clear, 0)
        for queue in queues:
            ctx.set(queue.run, 1)
        for t in range(cycles):
            row = []
            for queue in queues:
                word = ctx.get(queue.issue.word) if ctx.get(queue.issue.valid) else None
                row.append((word, bool(ctx.get(queue.notify)), bool(ctx.get(queue.parked)),
                            bool(ctx.get(queue.ended))))
            assert row == expected[t], (t, row, expected[t])
            seen.append(row)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert len(seen) == cycles
    return expected


def test_sync_released_by_notify_of_another_queue():
    """Queue 1 parks in cycle 1; queue 0 notifies in cycle 5: queue 1's read issues in 5 + L,
    and the repeat after the sync re-issues the read of before the sync."""
    programs = [[nop(5), NOTIFY, END],
                [rd(1), SYNC, rd(2), isa.encode("repeat", n=2, d=1), END]]
    (s0, s1) = schedule(programs)
    assert s0.notifies == [(1, 5)] and s0.end == 6
    assert s1.syncs == [(1, 1, 5 + L)]
    assert [c for c, _ in s1.issues] == [0, 5 + L, 6 + L, 7 + L]
    assert s1.end == 8 + L
    trace = run_group(programs, s1.end + 3)
    # parked (waiting, release low) in cycles 1 .. 5 + L - 2; it leaves the sync in 5 + L - 1
    assert [t for t, row in enumerate(trace) if row[1][2]] == list(range(1, 5 + L - 1))


def test_one_notify_releases_every_parked_queue_in_the_same_cycle():
    """Notifies in cycles 2 and 7. Queues that reach their sync in cycles 4, 5, 7 and
    7 + L - 1 (the notify still in flight) all resume in 7 + L; the notify of cycle 2 finds
    nobody parked and releases only the queue that reaches its sync in 2 + L - 1."""
    programs = [[nop(2), NOTIFY, nop(4), NOTIFY, END],
                [nop(4), SYNC, rd(0), END],
                [nop(5), SYNC, rd(1), END],
                [nop(7), SYNC, rd(2), END],
                [nop(7 + L - 1), SYNC, rd(3), END],
                [nop(2 + L - 1), SYNC, rd(4), END]]
    sched = schedule(programs)
    assert [s.issues[0][0] for s in sched[1:]] == [7 + L] * 4 + [2 + L]
    assert [s.syncs[0][1:] for s in sched[1:]] == [(4, 7 + L), (5, 7 + L), (7, 7 + L),
                                                   (7 + L - 1, 7 + L), (2 + L - 1, 2 + L)]
    run_group(programs, 7 + L + 4)


def test_notify_then_sync_in_the_same_queue_and_chains():
    """A queue may release itself (notify; sync: resumes in t + L), and a released queue may
    notify the next one: a chain of barriers."""
    programs = [[NOTIFY, SYNC, rd(0), NOTIFY, END],
                [SYNC, rd(1), NOTIFY, SYNC, rd(2), END],
                [nop(1), SYNC, SYNC, rd(3), END]]
    s0, s1, s2 = schedule(programs)
    assert s0.issues[0][0] == L and s0.notifies == [(0, 0), (3, L + 1)]
    assert s1.syncs[0][2] == L and s1.notifies == [(2, L + 1)]
    assert s1.syncs[1] == (3, L + 2, 2 * L + 1)
    assert s2.syncs == [(1, 1, L), (2, L, 2 * L + 1)]
    assert s2.issues[0][0] == 2 * L + 1
    run_group(programs, max(s.end for s in (s0, s1, s2)) + 3)


def test_sync_never_released_waits_forever():
    """No later notify: the queue stays parked (hardware and model) and never ends; the
    schedule says so (resume None, end None) and leaves the rest unreached."""
    programs = [[NOTIFY, nop(3), END], [nop(4), SYNC, rd(0), END]]
    s0, s1 = schedule(programs)
    assert s1.syncs == [(1, 4, None)] and s1.end is None and s1.starts == [0, 4, None, None]
    trace = run_group(programs, 40)
    assert all(row[1][2] for row in trace[4:])
    assert not any(row[1][3] for row in trace)


def test_at_placeholder_after_a_sync():
    programs = [[nop(3), NOTIFY, END], [SYNC, At(10), rd(0), END]]
    _, s1 = schedule(programs)
    assert s1.starts == [0, 3 + L, 10, 11] and s1.issues[0][0] == 10
    with pytest.raises(AtError, match=r"\.at 4 but the queue is already at cycle 5"):
        schedule([[nop(3), NOTIFY, END], [SYNC, At(4), rd(0), END]])


def random_sync_program(rng, length):
    program = []
    for _ in range(length - 1):
        kind = rng.choice(["nop", "read", "repeat", "sync", "sync", "notify", "notify"])
        if kind == "nop":
            program.append(nop(rng.randint(1, 6)))
        elif kind == "repeat":
            program.append(isa.encode("repeat", n=rng.randint(1, 3), d=rng.randint(1, 3)))
        elif kind == "read":
            program.append(rd(rng.randrange(64)))
        else:
            program.append(isa.encode(kind))
    return program + [END]


@pytest.mark.parametrize("seed", range(3))
def test_random_sync_programs(seed):
    """Random programs on 4 queues with syncs and notifies: the RTL, the cycle model and the
    static schedule agree on every issue, every park and every end (also when some queue is
    parked forever)."""
    rng = random.Random(seed)
    forever = 0
    for _ in range(6):
        programs = [random_sync_program(rng, rng.randint(1, 12)) for _ in range(4)]
        sched = schedule(programs)
        ends = [s.end for s in sched]
        cycles = max((e for e in ends if e is not None), default=0) + 6
        trace = run_group(programs, cycles)
        for q, s in enumerate(sched):
            issued = [(t, row[q][0]) for t, row in enumerate(trace) if row[q][0] is not None]
            assert issued == [(t, i.encode()) for t, i in s.issues if t < cycles]
            parked = [t for t, row in enumerate(trace) if row[q][2]]
            expect = [t for _, a, r in s.syncs for t in range(a, cycles if r is None else r - 1)
                      if t < cycles]
            assert parked == expect
            notified = [t for t, row in enumerate(trace) if row[q][1]]
            assert notified == [t for _, t in s.notifies if t < cycles]
            forever += s.end is None
    assert forever > 0      # the seeds include queues parked forever


def test_sync_notify_example_gives_the_documented_result():
    from pathlib import Path

    import numpy as np

    from opentsp.firmware.asm import assemble_file
    from opentsp.sim.model import CycleLimitError, Model, run

    path = Path(__file__).parent.parent / "firmware" / "examples" / "sync_notify.s"
    program = assemble_file(path, "default")
    result = run(program.image)
    assert result.cycles == 23
    np.testing.assert_array_equal(result.memory("MEM_E1")[0].view(np.int8),
                                  [1, 0, 3, 0, 5, 0, 7, 0])
    np.testing.assert_array_equal(result.memory("MEM_W3")[1].view(np.int8),
                                  [11, 10, 13, 10, 15, 10, 17, 10])
    # without MEM_E1's notify every sync waits forever: the model hits its cycle limit
    stuck = assemble_file(path, "default")
    q = [s.name for s in isa.queues(stuck.config)].index("MEM_E1")
    stuck.image.queues[q] = [i for i in stuck.image.queues[q] if i.op.mnemonic != "notify"]
    with pytest.raises(CycleLimitError):
        Model(stuck.image, max_cycles=500).run()


# Instruction fetch (section 5b): the ring buffer and the fill port ----------------------------

def fetch_pool(rng):
    """A random word for the fill port: instructions (ifetch too) and 0, the word of an index
    never written (one empty slot)."""
    kind = rng.choice(["nop", "read", "add", "repeat", "ifetch", "ifetch", "zero", "end"])
    if kind == "nop":
        return isa.encode("nop", count=rng.randint(1, 3)).encode()
    if kind == "read":
        return isa.encode("read", s=rng.randrange(64), addr=rng.randrange(8192)).encode()
    if kind == "add":
        return isa.encode("add", dtype=0, dst=1, a=2, b=3).encode()
    if kind == "repeat":
        return isa.encode("repeat", n=rng.randint(1, 3), d=rng.randint(1, 2)).encode()
    if kind == "ifetch":
        return ifetch(rng.choice([E4, W0, E0]), rng.randint(1, 12)).encode()
    if kind == "end":
        return isa.encode("end").encode() if rng.random() < 0.2 else 0
    return 0


E0 = isa.StreamRef(isa.Dir.E, 0)
E4 = isa.StreamRef(isa.Dir.E, 4)
W0 = isa.StreamRef(isa.Dir.W, 0)


def ifetch(group, n):
    return isa.encode("ifetch", s=group, n=n)


def run_fetch(program, feed_e4, feed_w0, cycles):
    """``program`` preloaded in a fresh queue of DEPTH words; in cycle t the int32 group e4 at
    the input carries ``feed_e4[t]`` in lane 0 and w0 ``feed_w0[t]`` (e0 carries 0). Compares
    issue, ending, ended and fetch with :class:`opentsp.sim.icu.Queue` every cycle; returns the
    golden queue, with ``issues``: the ``(cycle, instr)`` issued."""
    dut = InstructionQueue(DEPTH, streams=8)
    ref = None

    def fetch(instr):
        direction, ids = instr.group("s")
        if (direction, ids[0]) == (isa.Dir.E, 4):
            return feed_e4[ref.cycle]
        if (direction, ids[0]) == (isa.Dir.W, 0):
            return feed_w0[ref.cycle]
        return 0

    ref = Queue(program, DEPTH, fetch)
    ref.issues = []

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
        for t in range(cycles):
            ctx.set(dut.fetch_e, feed_e4[t] << 32)
            ctx.set(dut.fetch_w, feed_w0[t])
            fetched_before = len(ref.fetched)
            issued = ref.step()
            assert ctx.get(dut.issue.valid) == (issued is not None), t
            if issued is not None:
                assert ctx.get(dut.issue.word) == issued.encode(), t
                ref.issues.append((t, issued))
            assert ctx.get(dut.fetch) == (len(ref.fetched) > fetched_before), t
            assert ctx.get(dut.ending) == (ref.end_cycle == t), t
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return ref


def test_fetched_program_runs_through_the_ring():
    """Preloaded `nop 2; ifetch e4, 31` on a 32-word ring: words 2..32 arrive in cycles 2..32,
    the last onto index 0 (its `nop 2` is done; the ifetch at index 1 may be overwritten only in
    its own last slot); the 30 fetched `read`s issue in cycles 33..62, then the fetched `end`
    at index 0 in cycle 63."""
    reads = [isa.encode("read", s=1, addr=k) for k in range(30)]
    words = [r.encode() for r in reads] + [isa.encode("end").encode()]
    feed = [0, 0] + words + [0] * 60
    ref = run_fetch([isa.encode("nop", count=2), ifetch(E4, 31)], feed, [0] * 93, 80)
    assert [c for c, _ in ref.fetched] == list(range(2, 33))
    assert ref.end_cycle == 63


def test_fetched_word_is_usable_fetch_latency_cycles_later():
    """`ifetch e4, 1` in cycle 0, then the word: slot 1 reads index 1 in cycle 0, before the
    write, so it executes the old word (0: one empty slot); the pc wraps over the zeros, runs
    the preloaded `ifetch` again (fetching 0 into index 2) and finds the `read` in index 1 in
    cycle DEPTH + 1. With a `nop 1` between, the word is on time (slot 2 = 0 + FETCH_LATENCY)."""
    read = isa.encode("read", s=1, addr=3)
    feed = [read.encode()] + [0] * 200
    late = run_fetch([ifetch(E4, 1)], feed, [0] * 201, 2 * DEPTH)
    assert late.issues[0] == (DEPTH + 1, read)
    assert [c for c, _ in late.fetched[:2]] == [0, DEPTH]
    on_time = run_fetch([ifetch(E4, 1), isa.encode("nop", count=1)], feed, [0] * 201, 8)
    assert isa.FETCH_LATENCY == 2 and on_time.issues[0] == (0 + isa.FETCH_LATENCY, read)


def test_random_fetch_programs():
    """Random words on the fill port (instructions, ifetches of e4, w0 and e0, and zeros):
    every broken rule included (words run before they land, fetches overwrite words still to
    run, even the running instruction, indices never written), the RTL queue does what the
    golden ring buffer does."""
    fetched = []
    for seed in range(8):
        rng = random.Random(seed)
        program = [ifetch(rng.choice([E4, W0]), rng.randint(1, 20))
                   for _ in range(rng.randint(1, 4))]
        program += [isa.encode("nop", count=rng.randint(1, 3)) for _ in range(rng.randint(0, 3))]
        feed_e4 = [fetch_pool(rng) for _ in range(400)]
        feed_w0 = [fetch_pool(rng) for _ in range(400)]
        fetched.append(len(run_fetch(program, feed_e4, feed_w0, 300).fetched))
    assert max(fetched) > 2 * DEPTH             # the ring wraps more than once


# The prefetch (the slot decode reads a register, the block RAM is read one slot ahead) ---------

class _PreviousQueue(InstructionQueue):
    """The queue as it was before the prefetch register: the slot decode on the block RAM's
    read data, the read port addressed with the next pc (0 while ``run`` is low)."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=unsigned(isa.INSTR_BITS),
                                                depth=self.depth, init=[])
        wp, rp = mem.write_port(), mem.read_port()
        length, fill = self._add_write_port(m, wp, rp.data)
        state = _SlotState(self._index_bits)
        self._add_slot_decode(m, rp.data, _DecodedClass(m, rp.data), state)
        next_pc = Mux(state.advance, state.pc + 1, state.pc)
        m.d.comb += [rp.addr.eq(Mux(self.run, next_pc, 0)), self.ended.eq(state.ended)]
        self._add_state_update(m, state, next_pc, length, fill)
        return m


class _DecodedClass:
    """The word's kind decoded in its own cycle (the queue registers it as the word loads):
    ``issues`` unless one of the queue's own instructions, ``repeat``."""

    def __init__(self, m, word):
        opcode = word[isa.OPCODE_LSB:isa.OPCODE_LSB + isa.OPCODE_BITS]
        own = [isa.OPS_BY_NAME[name].opcode
               for name in ("nop", "repeat", "end", "sync", "notify", "ifetch")]
        self.issues, self.repeat = Signal(), Signal()
        m.d.comb += [self.issues.eq(~Cat(*(opcode == code for code in own)).any()),
                     self.repeat.eq(opcode == isa.OPS_BY_NAME["repeat"].opcode)]


PORTS = ("issue.valid", "issue.word", "ending", "ended", "notify", "parked", "fetch")
GROUPS = [isa.StreamRef(d, s) for d in (isa.Dir.E, isa.Dir.W) for s in (0, 4)]


def port_values(ctx, dut):
    """The ports, ``issue.word`` only with ``issue.valid`` (it is meaningful only then)."""
    valid = ctx.get(dut.issue.valid)
    return (valid, ctx.get(dut.issue.word) if valid else None, ctx.get(dut.ending),
            ctx.get(dut.ended), ctx.get(dut.notify), ctx.get(dut.parked), ctx.get(dut.fetch))


def hammer_word(rng, deskew=False):
    """A random queue word: every kind the slot decode tells apart, short multi-slot ones."""
    kind = rng.choice(["nop", "repeat", "sync", "notify", "ifetch", "ifetch", "end", "read",
                       "add", "zero"] + ["deskew"] * deskew)
    if kind == "nop":
        return isa.encode("nop", count=rng.randint(1, 4)).encode()
    if kind == "repeat":
        return isa.encode("repeat", n=rng.randint(1, 3), d=rng.randint(1, 3)).encode()
    if kind == "ifetch":
        return ifetch(rng.choice(GROUPS), rng.randint(1, 6)).encode()
    if kind == "read":
        return rd(rng.randrange(64)).encode()
    if kind == "add":
        return isa.encode("add", dtype=0, dst=rng.randrange(64), a=1, b=2).encode()
    if kind == "deskew":
        return isa.encode("deskew", l=rng.randrange(2)).encode()
    if kind == "zero":
        return 0
    return isa.encode(kind).encode()


def feed_value(rng, streams=8):
    """The lane-0 bytes of every stream at the slice input: a random word in each group."""
    value = 0
    for base in range(0, streams, isa.INT32_GROUP):
        value |= hammer_word(rng) << (8 * base)
    return value


@pytest.mark.parametrize("seed, depth, deskew", [(0, 8, False), (1, 4, False), (2, 8, True),
                                                 (3, 16, False), (4, 2, False)])
def test_prefetch_matches_the_previous_read_port(seed, depth, deskew):
    """Random inputs to the queue and to a copy of it as it was before the prefetch register
    (decode on the block RAM output): every port equal in every cycle. Host writes while
    running and stopped (in the start cycle too), fetches onto pc, pc + 1, pc + 2 (small
    rings), ``clear`` with ``run`` high; ``run`` rises only after a cycle with ``clear`` (as
    in the chip, whose ``clear`` is ``~run``: a pause without ``clear`` is not a start)."""
    rng = random.Random(seed)
    m = Module()
    m.submodules.new = new = InstructionQueue(depth, streams=8, deskew=deskew)
    m.submodules.old = old = _PreviousQueue(depth, streams=8, deskew=deskew)
    inputs = ["w_en", "w_addr", "w_data", "run", "clear", "release", "fetch_e", "fetch_w"]
    inputs += ["deskew_release"] * deskew
    # both gate issue.valid with the slot decode's active register (run & ~ended, loaded
    # from run_next): the golden-queue tests above check it
    for name in [*inputs, "run_next"]:
        m.d.comb += getattr(old, name).eq(getattr(new, name))
    checked = [0]

    async def tb(ctx):
        run = False
        for cycle in range(4000):
            stop = rng.random() < (0.02 if run else 0.2)
            if not run:
                clear = rng.random() < 0.5
                run_next = clear and stop
            else:
                clear = rng.random() < 0.01
                run_next = not stop
            values = {"run": run, "clear": clear, "w_en": rng.random() < (0.1 if run else 0.7),
                      "w_addr": rng.randrange(depth), "w_data": hammer_word(rng, deskew),
                      "release": rng.random() < 0.3, "fetch_e": feed_value(rng),
                      "fetch_w": feed_value(rng), "deskew_release": rng.random() < 0.3}
            for name in inputs:
                ctx.set(getattr(new, name), values[name])
            ctx.set(new.run_next, run_next)
            got, want = port_values(ctx, new), port_values(ctx, old)
            assert got == want, f"seed {seed} cycle {cycle}: {got} != {want} ({PORTS})"
            checked[0] += run
            await ctx.tick()
            run = run_next

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert checked[0] > 1000


def hammer_start(ctx, dut, writes, chip):
    """The host writes ``(index, word)`` in order, the last right before the start cycle (the
    cycle with ``clear`` high and ``run`` low); ``chip``: ``clear`` high in every cycle with
    ``run`` low, as the chip drives it, else only in the start cycle."""
    ctx.set(dut.run, 0)
    ctx.set(dut.run_next, 0)
    ctx.set(dut.clear, chip)
    for index, word in writes:
        ctx.set(dut.w_en, 1)
        ctx.set(dut.w_addr, index)
        ctx.set(dut.w_data, word)
        yield
    ctx.set(dut.w_en, 0)
    ctx.set(dut.clear, 1)
    ctx.set(dut.run_next, 1)
    yield
    ctx.set(dut.clear, 0)
    ctx.set(dut.run, 1)


@pytest.mark.parametrize("seed", range(3))
def test_prefetch_hammer_against_the_golden_queue(seed):
    """Random programs of every kind of word on an 8-word ring, random ``release``, random
    words at the fill port: fetches land on pc, pc + 1 and pc + 2 (also across the wrap, and
    under multi-slot instructions), the host's last write is right before the start cycle,
    and the queue starts again and again (a new program, the same one reloaded, or no
    reload): every port equals :class:`opentsp.sim.icu.Queue` in every cycle."""
    rng = random.Random(seed)
    depth = 8
    dut = InstructionQueue(depth, streams=8)
    feeds = {}
    offsets = {0: 0, 1: 0, 2: 0}

    def fetch(instr):
        direction, ids = instr.group("s")
        value = feeds["w" if direction == isa.Dir.W else "e"]
        return (value >> (8 * ids[0])) & 0xFFFF_FFFF

    async def tb(ctx):
        ref = None
        for start in range(40):
            how = rng.choice(["new", "new", "reload", "keep"]) if ref is not None else "new"
            if how == "new":
                length = rng.randint(1, depth)
                program = [isa.decode(w) for w in
                           (hammer_word(rng) or rd(0).encode() for _ in range(length))]
                writes = [(i, 0) for i in range(length, depth)]
                writes += [(i, instr.encode()) for i, instr in enumerate(program)]
                ref = Queue(program, depth, fetch)
            elif how == "reload":
                writes = [(i, instr.encode()) for i, instr in enumerate(program)]
                ref.restart(reload=True)
            else:
                writes = []
                ref.restart()
            for _ in hammer_start(ctx, dut, writes, chip=rng.random() < 0.5):
                await ctx.tick()
            cycles = rng.randint(10, 120)
            for t in range(cycles):
                ctx.set(dut.run_next, t < cycles - 1)       # then the next start's writes
                feeds["e"], feeds["w"] = feed_value(rng), feed_value(rng)
                release = rng.random() < 0.3
                ctx.set(dut.fetch_e, feeds["e"])
                ctx.set(dut.fetch_w, feeds["w"])
                ctx.set(dut.release, release)
                before, distance = len(ref.fetched), (ref._fill - ref._pc) % depth
                issued = ref.step(release)
                fetched = len(ref.fetched) > before
                if fetched and distance in offsets:
                    offsets[distance] += 1
                want = (issued is not None, 0 if issued is None else issued.encode(),
                        ref.end_cycle == t, ref.end_cycle is not None and ref.end_cycle < t,
                        ref.notified, ref.parked, fetched)
                got = port_values(ctx, dut)
                if not got[0]:
                    got = (0, 0) + got[2:]
                assert got == want, f"seed {seed} start {start} cycle {t}: {got} != {want}"
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert min(offsets.values()) > 5, offsets
