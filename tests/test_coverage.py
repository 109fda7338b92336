"""Functional coverage of the random differential programs (verif/coverage.py) and what the
random generator (verif/randprog.py) promises: released syncs, intact fetch blocks, extreme
data, the instruction mix."""

import numpy as np
import pytest

from opentsp import isa, queue_timing
from opentsp.config import CONFIGS
from opentsp.firmware.asm import assemble
from opentsp.firmware.image import Image
from opentsp.sim.model import Model
from opentsp.verif.coverage import THRESHOLDS, TOTAL_THRESHOLD, Coverage, measure
from opentsp.verif.randprog import BATCH, DEFAULT_MIX, parse_mix, random_image

CFG = CONFIGS["default"]


def test_batch_coverage_meets_the_thresholds(capsys):
    """The make-test batch (the seeds verif/test_chip.py runs on Verilator) reaches every
    documented threshold; the summary is printed."""
    coverage = measure(CFG, (random_image(CFG, seed) for seed in BATCH))
    with capsys.disabled():
        print("\n" + coverage.summary())
    assert coverage.programs == len(BATCH) >= 200
    assert coverage.failures() == []
    hit, total = coverage.fractions()["total"]
    assert hit >= TOTAL_THRESHOLD * total
    for group, need in THRESHOLDS.items():
        hit, total = coverage.fractions()[group]
        assert hit >= need * total, (group, coverage.holes(group))


def test_an_empty_program_fails_the_thresholds():
    coverage = measure(CFG, [Image.empty(CFG)])
    failures = coverage.failures()
    assert any(line.startswith("coverage of 'instruction' is 1/") for line in failures)
    assert any("'total'" in line for line in failures)
    assert "<- below" in coverage.summary()


def test_bins_count_what_the_golden_model_executes():
    """A hand-written program hits exactly the bins it should: an add.i16 with int16 min and
    max operands, a chained cvt, a read and a write, a repeat, a sync released by a notify."""
    program = assemble("""
.data MEM_W0, 0, u8: 0, 255, 0
.data MEM_W1, 1, u8: 128, 127, 0
.queue MEM_W1                   ; 2 hops west of the VXM: e1 there in cycle 4
    notify
    read e1, 1
.queue MEM_W0                   ; 1 hop: e0 there in cycle 4
    nop 2
    read e0, 0
.queue VXM
    sync                        ; released by the notify of cycle 0 in cycle 2
    nop 2
    add.i16 e2, e0, e0          ; cycle 4: int16 min in lane 0, max in lane 1
    cvt.i16.i8 e4, r
    repeat 2, 1
.queue MEM_E0
    write 63, e4
""", CFG)
    coverage = Coverage(CFG)
    cycles = coverage.add(program.image)
    assert cycles == Model(program.image).run().cycles
    bins = coverage.bins
    assert bins["vxm func x type"][("add", "i16")] == 1
    assert bins["vxm func x type"][("cvt", "i16->i8")] == 3          # once and two copies
    assert bins["vxm func x type"][("add", "i8")] == 0
    assert bins["vxm operand a"][("cvt", "r")] == 3
    # the cvt and its copies each follow a VXM instruction of the cycle before
    assert bins["vxm chain"] == {"result of c-2": 0, "older result": 0, "no result yet": 0,
                                 "passes over c-1": 3}
    assert bins["producer dir"][("read", "E")] == 2
    assert bins["producer dir"][("read", "W")] == 0
    assert bins["slice x op"][("MEM_W0", "read")] == 1
    assert bins["slice x op"][("MEM_E0", "write")] == 1
    assert bins["immediate"][("write", "addr", "limit")] == 1
    assert bins["instruction"]["sync"] == bins["instruction"]["notify"] == 1
    assert bins["icu"]["sync waits"] == 1 and bins["icu"]["repeat d=1"] == 1
    assert bins["stagger"]["VXM"] == 3 and bins["stagger"]["MEM_W0"] == 0
    assert bins["vxm values"][("i16", "min")] >= 1
    assert bins["vxm values"][("i16", "max")] >= 1
    assert bins["vxm values"][("i32", "min")] == 0


def test_every_sync_of_the_batch_is_released_and_every_fetch_block_arrives():
    syncs = fetches = 0
    for seed in list(BATCH)[:60]:
        image = random_image(CFG, seed)
        model = Model(image, max_cycles=10_000)
        model.run()                 # ends: no sync parked for ever, no undecodable word
        for queue, words in zip(model.queues, image.queues, strict=True):
            if any(i.op.mnemonic == "ifetch" for i in words):
                fetches += 1
                assert queue.fetched and all(word for _, word in queue.fetched)
        programs = [list(q) + [queue_timing.Stop()] for q in image.queues]
        for sched in queue_timing.schedule(programs, issues=False):
            syncs += len(sched.syncs)
            assert all(resume is not None for _, _, resume in sched.syncs)
    assert syncs >= 20 and fetches >= 10


def test_data_holds_the_extreme_values_of_every_type():
    image = random_image(CFG, 7)
    planes = np.stack(list(image.data.values()))
    for byte in (0x00, 0xFF, 0x7F, 0x80):
        assert (planes == byte).any()
    assert 0x7F in planes and 0x80 in planes


def test_the_mix_weighs_the_slots():
    only_vxm = parse_mix("mem=0,mxm=0,sxm=0,nop=0,repeat=0,notify=0,sync=0,ifetch=0,feed=0")
    image = random_image(CFG, 3, mix=only_vxm, length=30)
    names = {i.op.mnemonic for q in image.queues for i in q}
    assert names - {"end"} and names - {"end"} <= set(isa.VXM_FUNCS)
    only_add = parse_mix("nop=0,repeat=0,notify=0,sync=0,ifetch=0,feed=0,mem=0,mxm=0,sxm=0,"
                         + ",".join(f"{f}=0" for f in isa.VXM_FUNCS if f != "add"))
    adds = [i for seed in range(4) for q in random_image(CFG, seed, mix=only_add).queues
            for i in q if i.op.mnemonic != "end"]
    assert adds and {i.op.mnemonic for i in adds} == {"add"}
    assert parse_mix("") == DEFAULT_MIX


@pytest.mark.parametrize("text, message", [
    ("vxm", "mix entry must be name=weight, not 'vxm'"),
    ("foo=1", "mix name must be a family, a unit or a mnemonic, not 'foo'"),
    ("end=1", "mix name must be a family, a unit or a mnemonic, not 'end'"),
    ("add=x", "mix weight of add must be a number, not 'x'"),
    ("add=-1", "mix weight of add must be a finite number >= 0, not '-1'"),
    ("sync=nan", "mix weight of sync must be a finite number >= 0, not 'nan'"),
    ("ifetch=2", "mix weight of ifetch must be a probability (0..1), not 2.0"),
])
def test_bad_mix_is_refused(text, message):
    with pytest.raises(ValueError) as error:
        parse_mix(text)
    assert str(error.value) == message


def test_same_seed_same_program():
    assert random_image(CFG, 11) == random_image(CFG, 11)
    assert random_image(CFG, 11) != random_image(CFG, 12)


def test_legal_programs_pass_the_checker_and_keep_their_producers():
    """random_image(legal=True): the checker finds nothing, and what the legalising removed
    became nop of the same slots (the queues keep their lengths unless a fetch went)."""
    from opentsp.firmware.checker import check

    kept = 0
    for seed in range(8):
        raw, legal = random_image(CFG, seed), random_image(CFG, seed, legal=True)
        assert check(legal) == [] and check(raw) != []
        Model(legal, max_cycles=10_000).run()
        for before, after in zip(raw.queues, legal.queues, strict=True):
            if not any(i.op.mnemonic == "ifetch" for i in before):
                assert [i.slots for i in before] == [i.slots for i in after]
                kept += sum(a == b and a.op.unit != isa.Unit.ICU
                            for a, b in zip(before, after, strict=True))
    assert kept > 50
