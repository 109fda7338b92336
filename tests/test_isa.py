"""The ISA's timing helpers (``opentsp.isa``), against the rules as docs/architecture.md
states them."""

import random

from opentsp import isa


def ref_chain_source(cycles, now):
    """Section 8 read literally: the last result executed ``VXM_CHAIN_DISTANCE`` or more
    cycles before ``now``."""
    readable = [i for i, cycle in enumerate(cycles) if now - cycle >= isa.VXM_CHAIN_DISTANCE]
    return readable[-1] if readable else None


def test_a_chained_operand_reads_the_last_result_two_cycles_old_or_older():
    assert isa.VXM_CHAIN_DISTANCE == 2
    assert isa.chain_source([], 5) is None
    assert isa.chain_source([4], 5) is None            # the result of c-1 is not readable yet
    assert isa.chain_source([3, 4], 5) == 0            # c-2's result, passing over c-1's
    assert isa.chain_source([0, 1, 2], 9) == 2         # after a gap: the last result
    assert isa.chain_source([5], 5) is None


def test_chain_source_matches_the_rule_on_random_histories():
    rng = random.Random(8)
    for _ in range(2000):
        cycles = sorted(rng.sample(range(40), rng.randrange(0, 12)))
        now = rng.randrange(0, 45)
        assert isa.chain_source(cycles, now) == ref_chain_source(cycles, now), (cycles, now)
