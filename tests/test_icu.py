"""The RTL instruction queue against the golden model ``opentsp.sim.icu.Queue``, slot by slot."""

import random

import pytest
from amaranth.sim import Simulator

from opentsp import isa
from opentsp.hdl.icu import InstructionQueue
from opentsp.sim.icu import Queue, end_slot, issue_schedule

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
            for index, instr in enumerate(program):
                ctx.set(dut.w_en, 1)
                ctx.set(dut.w_addr, index)
                ctx.set(dut.w_data, instr.encode())
                await ctx.tick()
            ctx.set(dut.w_en, 0)
            ctx.set(dut.clear, 1)           # the host's start cycle
            await ctx.tick()
            ctx.set(dut.clear, 0)
            ctx.set(dut.run, 1)
            ref = Queue(program)
            last_slot = end_slot(program)
            for cycle in range(last_slot + extra):
                ref_issue = ref.step()
                rtl_valid = ctx.get(dut.issue_valid)
                rtl_word = ctx.get(dut.issue_word)
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
