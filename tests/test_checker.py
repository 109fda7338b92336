"""The static timing checker (docs/architecture.md section 6, rules 1 to 3)."""

import random
import time
from pathlib import Path

import pytest

from opentsp import isa
from opentsp.config import CONFIGS, Config
from opentsp.firmware.asm import AsmError, Loc, assemble, assemble_file
from opentsp.firmware.checker import (
    CheckError,
    Timing,
    _ap_intersection,
    _Issue,
    _overlapping_pairs,
    check,
    check_or_raise,
)

CFG = CONFIGS["default"]
EXAMPLES = sorted((Path(__file__).parent.parent / "firmware" / "examples").glob("*.s"))
QUEUE = {s.name: i for i, s in enumerate(isa.queues(CFG))}

# MEM_W0 (position 5) reads in cycle 10; the VXM (6) can take it in 12; the VXM's result of
# cycle 12 reaches MEM_E0 (7) in 14 and MEM_E1 (8) in 15.
GOOD = """
.data MEM_W0, 5, i8: 1, 2, 3
.queue MEM_W0
.at 10
    read e0, 5
.queue VXM
.at 12
    add.i8 e1, e0, e0
.queue MEM_E0
.at 14
    write 7, e1
.queue MEM_E1
.at {e1}
    write 7, e1
"""


def asm(text, config=CFG):
    return assemble(text, config, filename="t.s")


def errors(text, config=CFG):
    found = check(asm(text, config))
    for error in found:
        assert "\n" not in str(error)
    return [str(e) for e in found]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_pass(path):
    assert check(assemble_file(path, CFG)) == []


@pytest.mark.parametrize("name", ["stream_pass.s", "dot_relu.s"])
def test_portable_examples_pass_on_medium(name):
    program = assemble_file(EXAMPLES[0].parent / name, CONFIGS["medium"])
    assert check(program) == []


def test_correct_program_passes():
    program = asm(GOOD.format(e1=15))
    assert check(program) == []
    assert check_or_raise(program) is program


def test_read_too_early():
    assert errors(GOOD.format(e1=14)) == [
        "t.s:14:5: error: read of e1 at MEM_E1 in cycle 14 finds no value: read before its "
        "data arrives or after it has passed; the nearest value, from add.i8 e1, e0, e0 of VXM "
        "(line 8), is readable here in cycle 15"]


def test_read_too_late_after_the_value_has_passed():
    (message,) = errors(GOOD.format(e1=16))
    assert message.startswith("t.s:14:5: error: read of e1 at MEM_E1 in cycle 16 finds no "
                              "value")
    assert message.endswith("is readable here in cycle 15")


def test_read_of_a_stream_nobody_writes_and_of_a_partial_group():
    (message,) = errors(".queue VXM\n.at 3\n relu.i8 e0, w5\n")
    assert message == ("t.s:3:2: error: read of w5 at VXM in cycle 3 finds no value: read before "
                       "its data arrives or after it has passed; nothing upstream writes w5")
    # Only byte 0 of an int32 group arrives: the error names the first missing byte stream.
    (message,) = errors(".queue MEM_W0\n read e0, 0\n.queue VXM\n.at 2\n relu.i32 e4, e0\n")
    assert message.startswith("t.s:5:2: error: read of e1 at VXM in cycle 2 finds no value")


def test_downstream_reader_does_not_see_upstream_writer_or_own_output():
    # A westward value written by MEM_W0 moves west: the VXM (east of it) never sees it, and
    # MEM_W0 never reads its own output.
    text = ".queue MEM_W0\n read w0, 0\n.queue VXM\n.at 2\n relu.i8 e0, w0\n"
    assert len(errors(text)) == 1
    text = ".queue MEM_W0\n read e0, 0\n.at 2\n write 1, e0\n"
    assert len(errors(text)) == 1


def test_value_overwritten_by_a_slice_in_between():
    program = assemble_file(EXAMPLES[0].parent / "overwrite.s", CFG)
    assert check(program) == []
    timing = Timing(program)
    w3, w1, w0, e0, e3 = (QUEUE[n] for n in ("MEM_W3", "MEM_W1", "MEM_W0", "MEM_E0", "MEM_E3"))
    # MEM_W1 and MEM_W0 take A from MEM_W3; MEM_E0 and MEM_E3 get B, which replaced it.
    assert timing.source(w1, 1, "s") == (w3, 0, 0)
    assert timing.source(w0, 2, "s") == (w3, 0, 0)
    assert timing.source(e0, 1, "s") == (w0, 1, 0)
    assert timing.source(e3, 1, "s") == (w0, 1, 0)
    # Without the overwrite MEM_E3 gets A.
    program = asm(".queue MEM_W3\n read e0, 0\n.queue MEM_E3\n.at 9\n write 1, e0\n")
    assert Timing(program).source(e3, 1, "s") == (w3, 0, 0)


def test_bank_conflict():
    text = """
        .queue MEM_W3
            read e0, 0          ; reaches MEM_W0 (3 hops) in cycle 4
        .queue MEM_W0
        .at 4
            write 2, e0         ; commits at the end of cycle 5 to bank 0
            read e1, {addr}     ; cycle 5
    """
    assert errors(text.format(addr=3)) == []          # bank 1: a read and a commit are fine
    assert errors(text.format(addr=4)) == [
        "t.s:7:13: error: bank conflict in MEM_W0: the read of word 4 in cycle 5 and the commit "
        "of write 2, e0 of MEM_W0 (line 6) (issued in cycle 4) both use bank 0"]
    # A write and a read issued in the same cycle cannot exist; a read one cycle before the
    # commit is fine.
    text = ".queue MEM_W3\n read e0, 0\n.queue MEM_W0\n.at 3\n read e1, 4\n write 2, e0\n"
    assert errors(text) == []


def test_bank_conflict_of_repeated_instructions():
    text = """
        .queue MEM_W3
            read e0, 0
            repeat 20, 1        ; cycles 1..20, reach MEM_W0 in 4..24
        .queue MEM_W0
        .at 4
            write 2, e0
            repeat 9, 2         ; slots 5..22: copies in 6, 8, .., 22; commits 7, 9, .., 23
            read e1, 6          ; cycle 23: bank 0, while the last copy commits
    """
    (message,) = errors(text)
    assert message.startswith("t.s:9:13: error: bank conflict in MEM_W0: the read of word 6 in "
                              "cycle 23 and the commit of write 2, e0 of MEM_W0 (line 8)")


REPEAT = """
.queue MEM_W0
    read e0, 0          ; cycle 0
    repeat 3, 2         ; copies in 2, 4, 6
.queue VXM
.at 2
    relu.i8 e1, e0      ; cycle 2
    repeat {n}, 2       ; slot 3: copies in 4, 6, 8, ..
"""


def test_repeat_copies_are_timed_and_reported_at_the_repeat():
    assert errors(REPEAT.format(n=3)) == []
    assert errors(REPEAT.format(n=5)) == [
        "t.s:8:5: error: read of e0 at VXM in cycle 10 finds no value: read before its data "
        "arrives or after it has passed; the nearest value, from read e0, 0 of MEM_W0 (line 4), "
        "is readable here in cycle 8 (copy 4 of 5 of the repeated relu.i8 e1, e0)"]


def test_long_repeats_against_long_repeats():
    text = """
        .queue MEM_W0
            read e0, 0
            repeat 40000, 1             ; cycles 1..40000
            repeat 30000, 1             ; cycles 40001..70000
        .queue VXM
        .at 2
            relu.i8 e1, e0
            repeat {n}, 1               ; cycles 3..
        .queue MEM_E0
        .at 4
            write 0, e1
            repeat 60000, 1
    """
    assert errors(text.format(n=65535)) == []
    # With only 60001 reads (cycles 0..60000) the VXM finds nothing from cycle 60003 on.
    found = errors(text.format(n=65535).replace("repeat 30000, 1", "repeat 20000, 1"))
    assert found == [
        "t.s:9:13: error: read of e0 at VXM in cycle 60003 finds no value: read before its data "
        "arrives or after it has passed; the nearest value, from read e0, 0 of MEM_W0 (line 5), "
        "is readable here in cycle 60002 (copy 60001 of 65535 of the repeated relu.i8 e1, e0)"]


def test_spaced_repeat_against_dense_repeat():
    text = """
        .queue MEM_W0
            read e0, 0
            repeat 1000, 1              ; reads in 0..1000
        .queue VXM
        .at 2
            relu.i8 e1, e0
            repeat {n}, 7               ; copies in 9, 16, ..
    """
    assert errors(text.format(n=142)) == []         # last copy in 2 + 142*7 = 996
    (message,) = errors(text.format(n=143))         # 1003 needs a read in 1001
    assert "in cycle 1003 finds no value" in message and "(copy 143 of 143" in message


def test_check_of_a_bare_image_names_the_queue():
    image = asm(GOOD.format(e1=14)).image
    (error,) = check(image)
    assert error.loc is None
    queue = [s.name for s in isa.queues(image.config)].index("MEM_E1")
    assert str(error).startswith(f"error: queue {queue} (MEM_E1) instruction 1: read of e1 at "
                                 "MEM_E1 in cycle 14 finds no value")


def test_check_or_raise_raises_the_earliest_error():
    text = GOOD.format(e1=16).replace(".at 14\n    write 7, e1", ".at 13\n    write 7, e1")
    with pytest.raises(CheckError) as info:
        check_or_raise(asm(text))
    error = info.value
    assert isinstance(error, AsmError) and isinstance(error, ValueError)
    assert (error.rule, error.cycle, error.loc) == (1, 13, Loc("t.s", 11, 5))
    assert str(error).startswith("t.s:11:5: error: read of e1 at MEM_E0 in cycle 13")


def test_two_writes_to_one_register_in_one_cycle():
    # Impossible with ISA v1 programs (one issue per slot, one latency); inject a second issue.
    program = asm(GOOD.format(e1=15))
    timing = Timing(program)
    vxm = QUEUE["VXM"]
    add = program.image.queues[vxm][1]
    timing.issues.append(_Issue(vxm, 1, add, 12, 1, 1, False))
    found = [e for e in timing.errors() if e.rule == 2]
    assert [str(e) for e in found] == [
        "t.s:8:5: error: stream register e1 of VXM is written twice at the end of cycle 13 "
        "(also by add.i8 e1, e0, e0 of VXM (line 8))"]


def test_arithmetic_progression_intersection_against_brute_force():
    rng = random.Random(7)
    for _ in range(3000):
        a, b = rng.randrange(-50, 50), rng.randrange(-50, 50)
        d, e = rng.randrange(1, 9), rng.randrange(1, 9)
        n, m = rng.randrange(1, 30), rng.randrange(1, 30)
        second = {b + j * e for j in range(m)}
        ks = [k for k in range(n) if a + k * d in second]
        hit = _ap_intersection(a, d, n, b, e, m)
        if not ks:
            assert hit is None
        else:
            first, step, last = hit
            assert list(range(first, last + 1, step)) == ks, (a, d, n, b, e, m, hit)


def test_overlapping_pairs():
    items = [(0, 1, 5, "a"), (10, 2, 3, "b"), (3, 1, 2, "c"), (20, 1, 1, "d")]
    pairs = {(x[3], y[3]) for x, y in _overlapping_pairs(items)}
    assert pairs == {("a", "c")}
    across = {(x[3], y[3]) for x, y in _overlapping_pairs(items[:2], items[2:])}
    assert across == {("a", "c")}


def test_groq_sized_program_of_100k_cycles_checks_quickly():
    config = CONFIGS["groq"]
    slices = isa.queues(config)
    lines = []
    vxm = next(s for s in slices if s.kind == isa.SliceKind.VXM)
    for s in slices:
        if s.kind != isa.SliceKind.MEM:
            continue
        hops = abs(s.position - vxm.position)
        west = s.position < vxm.position
        stream = f"{'e' if west else 'w'}{hops % config.streams}"
        lines += [f".queue {s.name}", f".at {100 - hops}", f"    read {stream}, {hops}"]
        for _ in range(100):
            lines += ["    repeat 1000, 1", "    nop 3"]
    lines += [".queue VXM", ".at 101", "    add.i8 e0, e1, w1"]
    for _ in range(100):
        lines += ["    repeat 1000, 1", "    nop 3"]
    program = assemble("\n".join(lines), config)
    start = time.perf_counter()
    assert check(program) == []
    assert time.perf_counter() - start < 5.0


# MXM rules (section 7a) ---------------------------------------------------------------------

#: span 2: mxm_size 4 on 2 lanes per superlane.
SPAN2 = Config(name="span2", superlanes=2, lanes_per_superlane=2, streams=8, mem_slices=2,
               mem_words=16, mxm_size=4, queue_depth=32)


def mxm_errors(program):
    """The errors of the MXM rules (6, 7, 12, 13); these programs feed the MXM from nowhere
    (rule 1)."""
    return [e for e in check(program) if e.rule in (6, 7, 12, 13)]


def test_mxm_used_before_weights_are_installed():
    text = """.queue MXM_W
    lw 0, 0, w0, 1
    abc 0, 3, w0, 0, 1
    iw 0
    abc 0, 3, w0, 1, 1
.queue MXM_E
    acc 0, w4, 1, 1
"""
    found = mxm_errors(asm(text))
    assert [str(e) for e in found] == [
        "t.s:3:5: error: MXM used before weights are installed: abc 0, 3, w0, 0, 1 issues in "
        "cycle 1 before the first iw 0 of MXM_W (cycle 2)",
        "t.s:7:5: error: MXM used before weights are installed: acc 0, w4, 1, 1 issues in cycle 0 "
        "and MXM_E has no iw 0",
    ][::-1]
    assert {(e.rule, e.cycle) for e in found} == {(6, 1), (6, 0)}


def test_mxm_acc_less_than_span_cycles_after_abc():
    assert isa.mxm_span(SPAN2) == 2
    text = """.queue MXM_W
    iw 0
    abc 0, 3, w0, 0, 1    ; cycle 1
    abc 0, 5, w0, 0, 1    ; cycle 2
    acc 0, e4, 3, 1       ; cycle 3: 2 cycles after abc 3, fine
    abc 0, 6, w0, 0, 1    ; cycle 4
    repeat 3, 4        ; copies in cycles 8, 12, 16
    nop 1
    acc 0, e0, 6, 1       ; cycle 18: 2 after the last copy, fine
    acc 0, e4, 5, 1
"""
    assert mxm_errors(asm(text, SPAN2)) == []
    bad = text.replace("    nop 1\n    acc 0, e0, 6, 1", "    acc 0, e0, 6, 1")
    (error,) = mxm_errors(asm(bad, SPAN2))
    assert (error.rule, error.cycle, error.loc) == (7, 17, Loc("t.s", 8, 5))
    assert str(error) == (
        "t.s:8:5: error: acc 0, e0, 6, 1 reads accumulator 6 of plane 0 in cycle 17, 1 cycle(s) "
        "after the element of abc 0, 6, w0, 0, 1 that writes it (cycle 16, abc 0, 6, w0, 0, 1 "
        "of MXM_W (line 7)), before it lands; read it at least 2 cycles after")
    early = text.replace("    abc 0, 5, w0, 0, 1    ; cycle 2\n", "")
    (error,) = mxm_errors(asm(early, SPAN2))
    assert (error.rule, error.cycle, error.loc.line) == (7, 2, 4)
    # on the default configuration (span 1) the next cycle is already fine
    assert isa.mxm_span(CFG) == 1
    assert mxm_errors(asm(bad, CFG)) == mxm_errors(asm(early, CFG)) == []
    # the other rules do not report the MXM rules' business
    assert {e.rule for e in check(asm(bad, SPAN2))} == {1, 7}


@pytest.mark.parametrize("abc, nops, acc, cycle", [
    ("abc 0, 0, w0, 0, 4", 0, "acc 0, e0, 0, 4", 2),     # each accumulator read a cycle after
    ("abc 0, 2, w0, 0, 4", 0, "acc 0, e0, 0, 8", None),  # 2..5 written in 1..4, read in 4..7
    ("abc 0, 0, w0, 0, 4", 0, "acc 0, e0, 1, 3", None),  # read in the cycle of the write: old value
    ("abc 0, 0, w0, 0, 4", 2, "acc 0, e0, 2, 2", 4),     # accumulator 2 written in 3, read in 4
])
def test_mxm_acc_elements_against_abc_elements(abc, nops, acc, cycle):
    """Rule 7 element by element: element e of the abc (issued in cycle 1) writes accumulator
    a + e in cycle 1 + e, element f of the acc (issued in 2 + nops) reads b + f in
    2 + nops + f; with span 2 a read one cycle after the write is too early."""
    wait = f"    nop {nops}\n" if nops else ""
    text = f".queue MXM_W\n    iw 0\n    {abc}\n{wait}    {acc}\n    nop 10\n"
    found = mxm_errors(asm(text, SPAN2))
    assert [e.cycle for e in found] == ([] if cycle is None else [cycle]), found


def test_mxm_sequence_cut_short_and_install_during_a_load():
    text = """.queue MXM_W
    lw 0, 0, w0, 4     ; rows 0..3 in cycles 0..3
    nop 3
    iw 0               ; cycle 4
    abc 0, 0, w0, 0, 2    ; cycles 5..6
    acc 0, e0, 0, 2       ; cycles 6..7 (span 1)
    nop 1
"""
    assert mxm_errors(asm(text)) == []
    cut = text.replace("    nop 3\n", "    nop 1\n    lw 0, 2, w0, 1\n    nop 1\n")
    (error,) = mxm_errors(asm(cut))
    assert (error.rule, error.cycle) == (12, 2)
    assert str(error) == ("t.s:2:5: error: lw 0, 0, w0, 4 (issued in cycle 0) loses 2 of its 4 "
                          "elements to lw 0, 2, w0, 1 (cycle 2)")
    ended = text.replace("    nop 1\n", "")
    (error,) = mxm_errors(asm(ended))
    assert (error.rule, error.cycle) == (12, 7)
    assert "acc 0, e0, 0, 2 (issued in cycle 6) loses 1 of its 2 elements to the queue's end" \
        in str(error)
    early = text.replace("    nop 3\n", "    nop 2\n")
    (error,) = mxm_errors(asm(early))
    assert (error.rule, error.cycle, error.loc.line) == (13, 3, 4)
    assert "iw 0 in cycle 3 installs plane 0 while element 3 of lw 0, 0, w0, 4" in str(error)
    # another plane's install is fine while plane 0 loads
    two = Config(name="two", superlanes=2, lanes_per_superlane=4, streams=8, mem_slices=4,
                 mem_words=16, mxm_size=4, mxm_planes=2)
    assert mxm_errors(asm(early.replace("    iw 0", "    iw 1\n    iw 0"), two)) == []



TWO_PLANES = Config(name="two", superlanes=2, lanes_per_superlane=4, streams=8, mem_slices=4,
                    mem_words=16, mxm_size=4, mxm_planes=2)


def test_every_plane_has_its_own_compute_and_drain_sequencers():
    """ISA v4: rule 6 per plane (an iw 0 does not install plane 1), rule 12 per sequencer (an
    abc 1 does not cut plane 0's abc sequence short, a second abc 0 does), rule 7 per plane."""
    text = """.queue MXM_W
    iw 0
    abc 0, 0, w0, 0, 4
    abc 1, 0, w1, 0, 4
    acc 1, e0, 0, 1
    nop 5
"""
    found = mxm_errors(asm(text, TWO_PLANES))
    assert [(e.rule, e.loc.line) for e in found] == [(6, 4), (6, 5)]
    assert "abc 1, 0, w1, 0, 4 issues in cycle 2 and MXM_W has no iw 1" in str(found[0])
    installed = text.replace("    iw 0\n", "    iw 0\n    iw 1\n")
    assert mxm_errors(asm(installed, TWO_PLANES)) == []
    cut = installed.replace("abc 1, 0, w1, 0, 4", "abc 0, 4, w1, 0, 1")
    (error,) = mxm_errors(asm(cut, TWO_PLANES))
    assert error.rule == 12
    assert "abc 0, 0, w0, 0, 4 (issued in cycle 2) loses 3 of its 4 elements" in str(error)


def test_both_planes_draining_one_stream_is_rule_2():
    text = """.queue MXM_W
    iw 0
    iw 1
    acc 0, e0, 0, 1
    nop 1
    acc 1, e4, 0, 1
"""
    found = check(asm(text, TWO_PLANES))
    assert [e.rule for e in found] == []
    clash = text.replace("acc 1, e4, 0, 1", "acc 1, e0, 0, 1").replace("    nop 1\n", "")
    clash = clash.replace("    acc 0, e0, 0, 1\n", "    acc 0, e0, 0, 2\n")
    found = check(asm(clash, TWO_PLANES))
    assert [e.rule for e in found] == [2] * 4       # one per stream of the group
    assert str(found[0]) == ("t.s:4:5: error: stream register e0 of MXM_W is written twice at the "
                             "end of cycle 4 (also by acc 1, e0, 0, 1 of MXM_W (line 5))")


# Sync and notify (section 5a, rule 8) -------------------------------------------------------

# The VXM (position 6) parks on a sync until MEM_E3 notifies in cycle {n}; it resumes in
# n + NOTIFY_LATENCY and needs x there: MEM_W0 (5) reads it in n + L - 2.
SYNCED = """
.data MEM_W0, 0, i8: 1, 2, 3
.queue MEM_E3
.at {n}
    notify
.queue MEM_W0
.at {read}
    read e0, 0
.queue VXM
    sync
    relu.i8 e1, e0
"""
L = isa.NOTIFY_LATENCY


def sync_text(n, read=None):
    return SYNCED.format(n=n, read=n + L - 2 if read is None else read)


def test_sync_timing_comes_from_the_notify_of_another_queue():
    for n in (3, 40, 1000):
        assert errors(sync_text(n)) == []
        (message,) = errors(sync_text(n, read=n + L - 1))   # a cycle late for the relu
        assert f"t.s:11:5: error: read of e0 at VXM in cycle {n + L} finds no value" in message
    timing = Timing(asm(sync_text(40)))
    vxm = QUEUE["VXM"]
    assert timing.schedule[vxm].syncs == [(0, 0, 40 + L)]
    assert [(i.index, i.t0) for i in timing.issues if i.queue == vxm] == [(1, 40 + L)]


def test_sync_never_released_is_rule_8():
    # the notify of cycle 3 comes before the VXM reaches its sync in 3 + L: nobody releases it
    text = """
.queue MEM_E3
.at 3
    notify
.queue VXM
.at {a}
    sync
    nop 1
"""
    assert errors(text.format(a=3 + L - 1)) == []      # still in flight: released
    (error,) = check(asm(text.format(a=3 + L)))
    assert error.rule == 8 and error.cycle == 3 + L
    assert str(error) == (f"t.s:7:5: error: sync of VXM reached in cycle {3 + L} is never "
                          f"released: no notify issues in cycle 4 or later (a notify releases "
                          f"the syncs reached up to 1 cycle after it; the queue would wait "
                          f"forever)")
    bare = check(asm(text.format(a=3 + L)).image)
    assert [e.rule for e in bare] == [8] and bare[0].loc is None
    assert f"queue {QUEUE['VXM']} (VXM) instruction 1: sync" in str(bare[0])


def test_sync_never_released_from_the_start_names_no_cycle_before_0():
    """A sync reached in cycle 0 or 1 waits for any notify of the run (one issued in cycle t
    releases the syncs reached by t + 1): the message says so instead of naming cycle -1."""
    for pad, cycle in (("", 0), (".at 1\n", 1)):
        (error,) = check(asm(f".queue VXM\n{pad}    sync\n"))
        assert error.rule == 8 and error.cycle == cycle
        assert str(error) == (f"t.s:{2 + bool(pad)}:5: error: sync of VXM reached in cycle "
                              f"{cycle} is never released: no notify issues in the whole run "
                              f"(any notify would release it; the queue would wait forever)")
    (error,) = check(asm(".queue VXM\n.at 2\n    sync\n"))         # cycle 1 on, i.e. t >= 1
    assert "reached in cycle 2 is never released: no notify issues in cycle 1 or later" \
        in str(error)


def test_deadlock_and_later_rules_after_an_unreleased_sync():
    """Two queues each waiting for the other's notify: both rule 8. Instructions after an
    unreleased sync never issue, so they break no other rule."""
    text = """
.queue VXM
    sync
    notify
    relu.i8 e1, e7
.queue MEM_E0
    sync
    notify
"""
    found = check(asm(text))
    assert [(e.rule, e.loc.line) for e in found] == [(8, 3), (8, 7)]


def test_at_after_a_sync_is_an_absolute_cycle_computed_through_the_release():
    """MEM_W0 syncs too and reads in n + L + 1; the VXM's relu after its sync in n + L + 3."""
    text = f"""
.data MEM_W0, 0, i8: 1, 2, 3
.queue MEM_E3
.at 30
    notify
.queue MEM_W0
    sync
.at {30 + L + 1}
    read e0, 0
.queue VXM
    sync
.at {30 + L + 3}
    relu.i8 e1, e0
"""
    program = asm(text)
    assert check(program) == []
    w0, vxm = (program.image.queues[QUEUE[n]] for n in ("MEM_W0", "VXM"))
    assert [str(i) for i in w0] == ["sync", "nop 1", "read e0, 0", "end"]
    assert [str(i) for i in vxm] == ["sync", "nop 3", "relu.i8 e1, e0", "end"]
    assert program.locations[(QUEUE["VXM"], 1)].line == 12     # the padding points at .at
    late = text.replace(f".at {30 + L + 3}", f".at {30 + L + 4}")
    (message,) = errors(late)
    assert f"read of e0 at VXM in cycle {30 + L + 4} finds no value" in message


def test_at_after_a_sync_errors():
    text = sync_text(30).replace(".queue MEM_W0\n", ".queue MEM_W0\n    sync\n")
    with pytest.raises(AsmError) as info:
        asm(text)
    assert str(info.value) == (f"t.s:8:5: error: .at {30 + L - 2}: the queue of MEM_W0 is "
                               f"already at cycle {30 + L} (after its sync)")
    never = ".queue VXM\n    sync\n.at 50\n    relu.i8 e1, e0\n"
    with pytest.raises(AsmError, match=r"^t\.s:3:5: error: \.at 50: the queue of VXM never "
                                       r"gets here: its sync at t\.s:2:5 or a later one is "
                                       r"never released$"):
        asm(never)
    small = Config(name="small", superlanes=1, lanes_per_superlane=4, streams=4, mem_slices=1,
                   mem_words=8, queue_depth=4)
    deep = ".queue MEM_E0\n    notify\n    sync\n.at 70000\n    read w0, 1\n"
    with pytest.raises(AsmError, match=r"^t\.s:5:5: error: queue of MEM_E0 is full"):
        asm(deep, small)          # 70000 - 2 slots of padding: two nops; the read is the 5th


def test_sync_schedule_matches_the_golden_model_on_the_example():
    from opentsp.sim.model import Model

    program = assemble_file(Path(EXAMPLES[0]).parent / "sync_notify.s", CFG)
    timing = Timing(program)
    static = sorted((i.cycle(k), i.queue, str(i.instr)) for i in timing.issues
                    for k in range(i.n))
    model = Model(program.image, trace=True)
    result = model.run()
    names = [s.name for s in isa.queues(CFG)]
    traced = sorted((r.cycle, names.index(name), str(instr)) for r in model.trace
                    for name, instr in r.issued)
    assert static == traced and len(static) == 8
    ends = [s.end for s in timing.schedule]
    assert result.cycles == max(ends) + CFG.superlanes - 1 + isa.DRAIN == 23


# Instruction fetch (section 5b, rule 11) -------------------------------------------------------

END_WORD = isa.encode("end").encode()


def fetch_feed(first, words=1, start=0):
    """MEM_Wi (i + 1 hops west of the VXM) reads ``words`` consecutive words from ``start`` onto
    e(i), one per cycle, so that the int32 group e0 reaches the VXM in cycles ``first`` on."""
    text = ""
    for i in range(4):
        text += f".queue MEM_W{i}\n"
        if words > 1:
            text += f"    agi 0, 1, {words}\n"
        text += f".at {first} - 2 - {i}\n"
        text += f"    sread e{i}, {start}\n" if words > 1 else f"    read e{i}, {start}\n"
        text += f".at {first} - 2 - {i} + {words}\n"
    return text


FETCHED = """
.queue VXM
.at 8
    ifetch e0, 3
.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 10
    nop 4
    relu.i8 e4, r
    end
""" + fetch_feed(8, 3, 10)


def test_fetched_program_passes_and_extends_the_queue():
    program = asm(FETCHED)
    assert check(program) == []
    timing = Timing(program)
    vxm = QUEUE["VXM"]
    assert [str(i) for i, _ in timing.fetched[vxm]] == ["nop 4", "relu.i8 e4, r", "end"]
    assert [str(i) for i in program.image.queues[vxm]] == ["nop 8", "ifetch e0, 3"]
    assert timing.schedule[vxm].end == 8 + 3 + 4 + 1
    assert timing.locations[(vxm, 3)].line == 7     # the fetched relu, at its source line


def test_fetched_instruction_is_checked_at_its_source_line():
    """The fetched relu reads w4, which nothing writes: rule 1, located at its own line."""
    text = FETCHED.replace("relu.i8 e4, r", "relu.i8 e4, e4")
    (error,) = check(asm(text))
    assert error.rule == 1 and error.cycle == 8 + 3 + 4
    assert error.loc.line == 7 and "read of e4 at VXM in cycle 15" in str(error)


def test_fetch_too_late():
    """`ifetch e0, 1` in cycle 8, the fetched word in slot 9 < 8 + FETCH_LATENCY."""
    text = """
.queue VXM
.at 8
    ifetch e0, 1
.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0
    end
""" + fetch_feed(8)
    (error,) = check(asm(text))
    assert error.rule == 11 and error.cycle == 9 and error.loc.line == 6
    assert "end (word 2 of the queue of VXM) is reached in cycle 9 but fetched in cycle 8" \
        in error.cause
    fixed = text.replace("    ifetch e0, 1\n", "    ifetch e0, 1\n    nop 1\n")
    assert check(asm(fixed)) == []


def test_fetch_ring_overrun():
    """`ifetch e0, 130` on a 128-word queue: word 129 (cycle 8 + 127) overwrites index 1, the
    ifetch itself, which runs until cycle 137."""
    data = "".join(f".data [MEM_W0, MEM_W1, MEM_W2, MEM_W3], {k}, i32: {END_WORD}\n"
                   for k in range(CFG.mem_words))
    text = data + """
.queue VXM
.at 8
    ifetch e0, 130
""" + fetch_feed(8, 130, 0)
    errs = check(asm(text))
    assert [e.rule for e in errs] == [11]
    assert errs[0].cycle == 8 + 127 and errs[0].loc.line == CFG.mem_words + 4
    assert ("word 129) overwrites queue index 1, whose word 1 (ifetch e0, 130) runs until "
            "cycle 137") in errs[0].cause
    assert check(asm(text.replace("ifetch e0, 130", "ifetch e0, 127"))) == []


def test_fetched_word_not_an_instruction():
    text = """
.data [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 5, i32: -1
.queue VXM
.at 8
    ifetch e0, 1
    nop 1
    end
""" + fetch_feed(8, 1, 5)
    (error,) = check(asm(text))
    assert error.rule == 11 and error.loc.line == 5
    assert ("word 1 of 1 of ifetch e0, 1 (cycle 8), from MEM_W0 word 5, MEM_W1 word 5, "
            "MEM_W2 word 5, MEM_W3 word 5 lane 0, is 0xffffffff, not an instruction") \
        in error.cause


def test_fetched_word_not_known_statically():
    """MEM_E0's ifetch takes e0..e3 from the VXM's add: data computed on the chip."""
    text = """
.data [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0, i32: 1
.queue VXM
.at 8
    add.i32 e0, e0, e0
.queue MEM_E0
.at 10
    ifetch e0, 1
""" + fetch_feed(8)
    (error,) = check(asm(text))
    assert error.rule == 11 and error.loc.line == 8
    assert "byte 0 (e0) comes from add.i32 e0, e0, e0 of VXM (line 5), not from a MEM read" \
        in error.cause


def test_fetched_word_for_another_unit_and_queue_running_out():
    text = """
.queue MEM_E0
.at 9
    ifetch e0, 1
    nop 1
.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0
    end
""" + fetch_feed(8)
    assert check(asm(text)) == []      # MEM_E0 is a hop beyond the VXM: the group is there in 9
    wrong = text.replace("    end\n", "    relu.i8 e4, e4\n    end\n")
    with pytest.raises(AsmError, match=r"t.s:7:5: error: relu is a VXM instruction"):
        asm(wrong)
    out = """
.queue VXM
.at 8
    ifetch e0, 1
    nop 1
.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0
    nop 1
    end
""" + fetch_feed(8)
    (error,) = check(asm(out))      # the end at word 1 of the block is never fetched
    assert error.rule == 11 and error.cycle == 11
    assert "the queue of VXM runs out of words: word 4 (cycle 11) is neither preloaded nor " \
           "fetched" in error.cause


@pytest.mark.parametrize("text, message", [
    (".queue VXM\n.fetched [MEM_W0, MEM_W1, MEM_W2], 0\n    end\n",
     "t.s:2:10: error: .fetched takes 4 MEM slices (one per byte of an instruction word), "
     "not 3"),
    (".queue VXM\n.fetched [MEM_W0, MEM_W1, MEM_W2, VXM], 0\n    end\n",
     "t.s:2:35: error: VXM is not a MEM slice"),
    (".queue VXM\n.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 64\n    end\n",
     "t.s:2:44: error: word 64 out of range (0..63)"),
    (".queue VXM\n.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 63\n    nop 1\n    end\n",
     "t.s:4:5: error: no room for this fetched instruction: word 64 is beyond mem_words 64 "
     "(the .fetched block starts at t.s:2:44)"),
    (".queue VXM\n.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0\n.at 5\n    end\n",
     "t.s:3:1: error: .at in fetched code of VXM (after .fetched at t.s:2:1): every "
     "statement there is one word; use nop"),
    (".queue VXM\n.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0\n    nop 1\n",
     "t.s:2:1: error: the queue of VXM has fetched code but no 'end': end it with an "
     "explicit 'end'"),
    (".data MEM_W2, 3, i8: 1\n.queue VXM\n.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 3\n"
     "    end\n",
     "t.s:4:5: error: fetched instruction: word 3 of MEM_W2 is already initialised at "
     "t.s:1:7"),
    (".fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0\n",
     "t.s:1:1: error: .fetched outside a .queue section"),
    (".queue VXM\n    ifetch e1, 2\n",
     "t.s:2:12: error: i32 operand s must start an aligned group of 4 streams (id a "
     "multiple of 4), not 1"),
])
def test_fetched_assembler_errors(text, message):
    with pytest.raises(AsmError) as info:
        asm(text)
    assert str(info.value) == message


# Rule 14: types agree ------------------------------------------------------------------------

_ACC_INTO_VXM = """
.queue MXM_W
    iw 0
    acc 0, e0, 0, 1         ; cycle 1: int32 on e0..e3, at the VXM (6 hops east) in cycle 8
.queue VXM
.at 8
    {consumer}
"""


@pytest.mark.parametrize("consumer, ok", [
    ("add.f32 e4, e0, e0", False), ("exp.f32 e4, e0", False), ("cvt.f16.f32 e4, e0", False),
    ("add.i32 e4, e0, e0", True), ("cvt.i32.f32 e4, e0", True), ("relu.i8 e4, e1", True),
])
def test_a_float_read_of_an_integer_producer_is_refused(consumer, ok):
    found = errors(_ACC_INTO_VXM.format(consumer=consumer))
    if ok:
        assert found == []
        return
    assert len(found) == 1, found
    wanted = consumer.split()[0].split(".")[1]
    assert found[0] == (f"t.s:7:5: error: type mismatch: {consumer} reads e0 as {wanted}, but "
                        f"acc 0, e0, 0, 1 of MXM_W (line 4) wrote i32 there")


@pytest.mark.parametrize("second, ok", [
    ("add.i32 e4, r, w0", False), ("cvt.i32.f32 e4, r", False), ("exp.f32 e4, r", True),
    ("cvt.f32.bf16 e4, r", True), ("and.f32 e4, r, w0", True),
])
def test_a_chained_operand_has_its_producer_type(second, ok):
    program = """
    .data MEM_E0, 0, i8: 1, 2
    .queue MEM_E0
        read w0, 0
        repeat 1, 1
    .queue VXM
    .at 2
        cvt.i8.f32 e0, w0   ; an f32 result
        nop 1
        {second}
    """
    found = errors(program.format(second=second))
    found = [error for error in found if "type mismatch" in error]
    assert (found == []) if ok else (len(found) == 1 and "wrote f32 there" in found[0]), found


@pytest.mark.parametrize("consumer, ok", [("add.i32 e4, r, w0", False), ("exp.f32 e4, r", True)])
def test_a_chained_operand_is_the_result_of_two_cycles_before(consumer, ok):
    """`r` in cycle 4 is the f32 result of cycle 2, not the i32 add's of cycle 3 (ISA v8)."""
    program = f"""
    .data MEM_E0, 0, i8: 1, 2
    .queue MEM_E0
        read w0, 0
        repeat 2, 1
    .queue VXM
    .at 2
        cvt.i8.f32 e0, w0   ; an f32 result
        add.i32 w4, w0, w0  ; an i32 result
        {consumer}
    """
    found = [error for error in errors(program) if "type mismatch" in error]
    if ok:
        assert found == []
        return
    assert len(found) == 1 and "cvt.i8.f32 e0, w0" in found[0], found
    assert "reads r as i32" in found[0] and "wrote f32 there" in found[0], found


_BF16_INTO_MXM = """
.queue VXM
.at 2
    cvt.f32.bf16 e0, r      ; a bf16 pair on e0, e1, at MXM_E (6 hops east) in cycle 9
.queue MXM_E
    iw 0
.at 9
    {consumer}
"""


@pytest.mark.parametrize("consumer, ok", [
    ("abc.bf16 0, 0, e0, 0, 1", True), ("lw.bf16 0, 0, e0, 1", True),
    ("abc.f16 0, 0, e0, 0, 1", False), ("abc 0, 0, e0, 0, 1", False),
    ("lw 0, 0, e0, 1", False),
])
def test_the_mxm_reads_the_float_type_its_producer_wrote(consumer, ok):
    found = errors(_BF16_INTO_MXM.format(consumer=consumer))
    if ok:
        assert found == []
        return
    wanted = "f16" if ".f16" in consumer else "i8"
    assert found == [f"t.s:8:5: error: type mismatch: {consumer} reads e0 as {wanted}, but "
                     f"cvt.f32.bf16 e0, r of VXM (line 4) wrote bf16 there"]


@pytest.mark.parametrize("consumer, ok", [("add.f32 e4, e0, e0", True),
                                          ("add.i32 e4, e0, e0", False)])
def test_an_acc_f32_result_is_an_f32(consumer, ok):
    found = errors(_ACC_INTO_VXM.format(consumer=consumer).replace("acc 0,", "acc.f32 0,"))
    assert (found == []) if ok else (len(found) == 1 and "wrote f32 there" in found[0]), found
