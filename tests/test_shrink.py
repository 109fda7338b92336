"""The delta-debugging shrinker (verif/shrink.py), with synthetic predicates (no Verilator)."""

from pathlib import Path

import pytest

from opentsp import isa
from opentsp.config import CONFIGS
from opentsp.firmware.asm import assemble_file
from opentsp.firmware.checker import check
from opentsp.firmware.image import Image
from opentsp.verif.randprog import random_image
from opentsp.verif.shrink import _items, acceptable, one_by_one, shrink

CFG = CONFIGS["default"]
EXAMPLES = Path(__file__).parent.parent / "firmware" / "examples"


def _words(image):
    return [instr for queue in image.queues for instr in queue]


def _has_add_i16(image):
    return any(i.op.mnemonic == "add" and i.dtype.suffix == "i16" for i in _words(image))


def _seed_with(predicate):
    return next(seed for seed in range(100) if predicate(random_image(CFG, seed)))


def test_shrinks_a_random_program_to_the_one_instruction_the_predicate_needs():
    seed = _seed_with(_has_add_i16)
    image = random_image(CFG, seed)
    calls = []

    def test(images):
        calls.append(len(images))
        return [_has_add_i16(im) for im in images]

    small = shrink(image, test)
    assert _has_add_i16(small)
    rest = [i for i in _words(small) if i.op.mnemonic != "end"]
    assert len(rest) == 1 and str(rest[0]).startswith("add.i16")
    assert all(queue[-1].op.mnemonic == "end" for queue in small.queues)
    assert small.data.keys() == image.data.keys()        # instructions go, data stay
    assert len(_words(image)) > 20 and sum(calls) < 20 * len(_words(image))


def test_result_is_one_minimal():
    """No single remaining instruction can go: with a predicate that needs two instructions of
    different queues, both stay and nothing else does."""
    def needs_two(image):
        names = [i.op.mnemonic for i in _words(image)]
        return "notify" in names and "abc" in names

    image = random_image(CFG, _seed_with(needs_two))
    small = shrink(image, one_by_one(needs_two))
    assert sorted(i.op.mnemonic for i in _words(small) if i.op.mnemonic != "end") \
        == ["abc", "notify"]


def test_a_legal_program_shrinks_to_a_legal_one():
    """dot_relu.s passes the checker; shrinking it while it still writes to MEM_E1 keeps it
    checker-clean at every step, so the write keeps its producers (a write of a stream that
    nobody fills would break rule 1)."""
    image = assemble_file(EXAMPLES / "dot_relu.s", CFG).image
    assert check(image) == []

    def writes(im):
        return any(i.op.mnemonic == "write" for i in _words(im))

    small = shrink(image, one_by_one(writes))
    assert check(small) == [] and writes(small)
    assert len(_words(small)) < len(_words(image))
    unchecked = shrink(image, one_by_one(writes), legal=False)
    assert len(_words(unchecked)) < len(_words(small))     # the legality costs instructions
    assert check(unchecked) != []


def test_never_keeps_an_unreleased_sync():
    image = random_image(CFG, _seed_with(lambda im: any(i.op.mnemonic == "sync"
                                                        for i in _words(im))))

    def has_sync(im):
        return any(i.op.mnemonic == "sync" for i in _words(im))

    small = shrink(image, one_by_one(has_sync))
    names = sorted(i.op.mnemonic for i in _words(small) if i.op.mnemonic != "end")
    assert names == ["notify", "sync"]          # the sync needs its notify to be acceptable
    assert acceptable(small)


def test_acceptable_refuses_broken_candidates():
    image = random_image(CFG, 1)
    ends = [[isa.encode("end")] for _ in image.queues]
    assert acceptable(image) and acceptable(Image(CFG, ends, {}))
    no_end = [[isa.encode("nop", count=1)]] + ends[1:]          # not a valid image
    assert not acceptable(Image(CFG, no_end, {}))
    parked = [[isa.encode("sync"), isa.encode("end")]] + ends[1:]   # nobody notifies
    assert not acceptable(Image(CFG, parked, {}))
    released = [[isa.encode("sync"), isa.encode("end")], [isa.encode("notify"),
                                                          isa.encode("end")]] + ends[2:]
    assert acceptable(Image(CFG, released, {}))
    assert len(_items(image)) == sum(len(q) - 1 for q in image.queues
                                     if q[-1].op.mnemonic == "end") \
        + sum(len(q) for q in image.queues if q[-1].op.mnemonic != "end")


def test_refuses_an_image_that_does_not_fail():
    with pytest.raises(ValueError, match="shrink needs an image for which the test holds"):
        shrink(random_image(CFG, 1), one_by_one(lambda im: False))


def test_regress_writes_the_failing_program_and_shrinks_it(tmp_path, monkeypatch, capsys):
    """The regression flow without Verilator: a stand-in for the RTL run "fails" every
    program holding an add.i16; regress stops after that batch, leaves the failing seed's .bin
    and its disassembly (.s, which assembles back to the image), prints both replay commands,
    and --shrink reduces it, judged by the same stand-in, to that one add.i16."""
    from opentsp.firmware.asm import assemble
    from opentsp.firmware.image import load
    from opentsp.verif import regress, runner

    def fake_run(config, programs, **kwargs):
        records = []
        for name, path in programs:
            bad = _has_add_i16(load(path, config))
            records.append({"name": name, "error": None, "match": not bad,
                            "mismatches": ["MEM_E1 word 3 differs"] if bad else [],
                            "cycles_rtl": 10, "cycles_golden": 10})
        return records

    def fake_mismatch_test(config, directory, **kwargs):
        return one_by_one(_has_add_i16)

    monkeypatch.setattr(regress, "run_images", fake_run)
    monkeypatch.setattr(regress, "BUILD_ROOT", tmp_path)
    monkeypatch.setattr(runner, "BUILD_ROOT", tmp_path)
    monkeypatch.setattr(regress, "mismatch_test", fake_mismatch_test)
    seed = _seed_with(_has_add_i16)
    status = regress.main(["--first", str(seed), "--seeds", "3", "--batch", "2", "--shrink",
                           "--workers", "0"])     # in this process, where the stand-ins are
    out = capsys.readouterr().out
    assert status == 1
    path = tmp_path / "regress" / f"random{seed}.bin"
    assert f"FAILED seed {seed}: MEM_E1 word 3 differs" in out
    assert f"replay: opentsp run {path} --config default" in out
    assert (f"or: python -m opentsp.verif.regress --first {seed} --seeds 1 --config default"
            in out)
    image = load(path, CFG)
    assert image == random_image(CFG, seed)
    assert assemble(path.with_suffix(".s").read_text(), CFG).image == image
    small = load(tmp_path / "regress" / f"random{seed}-min.bin", CFG)
    assert [str(i) for i in _words(small) if i.op.mnemonic != "end"][0].startswith("add.i16")
    assert len([i for i in _words(small) if i.op.mnemonic != "end"]) == 1
    assert f"shrunk to {len(_words(small))} words" in out


def test_replay_command_names_every_option_that_changes_the_program():
    from opentsp.verif.randprog import parse_mix
    from opentsp.verif.regress import replay_command

    assert replay_command(5, CFG) == ("python -m opentsp.verif.regress --first 5 --seeds 1 "
                                      "--config default")
    assert replay_command(5, CFG, length=30, mix=parse_mix("sync=0,add=2")) == (
        "python -m opentsp.verif.regress --first 5 --seeds 1 --config default --length 30 "
        "--mix sync=0,add=2")
