"""make regress spread over workers (verif/regress.py on verif/farm.py, Dask distributed): the
seed range cut into the same batches whatever the workers, coverage merged, a JUnit file and a
summary that accounts for every seed; a small regression on Verilator through a local cluster
of two workers (and through its address, as on other hosts), one of whose workers is killed
mid-batch: its seeds run again elsewhere and the summary says so; an unreachable cluster fails
at once in one line."""

import os
import signal
import socket
import time
import xml.etree.ElementTree as ET

import pytest

from opentsp.config import CONFIGS
from opentsp.firmware.image import load
from opentsp.verif import regress
from opentsp.verif.coverage import Coverage, measure
from opentsp.verif.farm import Farm, FarmError, local_cluster
from opentsp.verif.randprog import random_image
from opentsp.verif.regress import Suite, partition, suites_for

CFG = CONFIGS["default"]


def test_the_seed_range_is_cut_the_same_way_every_time():
    suites = suites_for(["default", "fpga"], [16, 40], [False, True], 10, first=500)
    assert [(s.config.name, s.length, s.legal, s.first, s.seeds) for s in suites] == [
        ("default", 16, False, 500, 2), ("default", 16, True, 500, 2),
        ("default", 40, False, 500, 1), ("default", 40, True, 500, 1),
        ("fpga", 16, False, 500, 1), ("fpga", 16, True, 500, 1),
        ("fpga", 40, False, 500, 1), ("fpga", 40, True, 500, 1)]
    batches = partition([Suite(CFG, first=1000, seeds=7)], 3)
    assert [list(b.seeds) for b in batches] == [[1000, 1001, 1002], [1003, 1004, 1005], [1006]]
    assert partition([Suite(CFG, first=1000, seeds=7)], 3) == batches
    assert len({b.key for b in partition(suites, 1)}) == 10
    assert str(batches[2]) == "default-L16-wild seeds 1006"
    with pytest.raises(ValueError, match="--seeds 3: 8 suites need at least one seed each"):
        suites_for(["default", "fpga"], [16, 40], [False, True], 3)


@pytest.mark.parametrize(("argv", "message"), [
    (["--length", "16,x"], "--length '16,x': expected integers separated by commas"),
    (["--length", "-1"], "--length -1: must be >= 0"),
    (["--seeds", "0"], "--seeds and --batch must be >= 1, not 0 and 100"),
    (["--config", "default,nope"], "unknown configuration 'nope'"),
    (["--workers", "-1"], "--workers -1: must be >= 0"),
    (["--workers", "0", "--cluster", "tcp://127.0.0.1:8786"], "--workers 0 runs in this process"),
    (["--workers", "2", "--cluster", "tcp://127.0.0.1:8786"],
     "--workers 2: a cluster at tcp://127.0.0.1:8786 has its own workers"),
    (["--connect-timeout", "0"], "--connect-timeout 0: must be > 0"),
    (["--mix", "vxm=x"], "vxm"),
])
def test_bad_input_is_one_line_naming_the_option(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(regress, "prepare_models", lambda configs: None)
    with pytest.raises(SystemExit) as stop:
        regress.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith("python -m opentsp.verif.regress: error: ") and message in err
    assert err.count("\n") == 1


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_cluster_fails_at_once_in_one_line(capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    with pytest.raises(SystemExit) as stop:
        regress.main(["--cluster", address, "--seeds", "2", "--connect-timeout", "1"])
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err == (f"python -m opentsp.verif.regress: error: --cluster {address}: no Dask "
                   f"scheduler answered within 1 s (OSError: Timed out trying to connect to "
                   f"{address} after 1 s)\n")
    with pytest.raises(FarmError, match="unknown address scheme 'nope'"):
        Farm("nope://x", timeout=1).__enter__()


def test_a_cluster_without_workers_fails_in_one_line(capsys):
    with local_cluster(0) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(SystemExit) as stop:
            regress.main(["--cluster", address, "--seeds", "2", "--connect-timeout", "1"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        f"python -m opentsp.verif.regress: error: --cluster {address}: the scheduler has no "
        f"worker (start some: dask worker {address} --nthreads 1)\n")


def test_workers_with_other_sources_are_refused():
    mine = regress.sources_fingerprint()
    assert mine == regress.sources_fingerprint() and len(mine) == 16
    prepared = {"tcp://127.0.0.1:4002": ("b", mine), "tcp://127.0.0.1:4001": ("a", mine)}
    assert regress.check_fingerprints(prepared, mine) == ["a", "b"]
    prepared["tcp://127.0.0.1:4003"] = ("c", "0123456789abcdef")
    with pytest.raises(FarmError, match=r"^worker tcp://127.0.0.1:4003 on c runs other OpenTSP "
                                        r"sources than this machine \(fingerprint "
                                        r"0123456789abcdef, here [0-9a-f]{16}\): install the "
                                        r"same commit there$"):
        regress.check_fingerprints(prepared, mine)


def test_coverage_measured_in_parts_merges_into_the_whole():
    images = [random_image(CFG, seed) for seed in range(6)]
    whole = measure(CFG, images)
    merged = measure(CFG, images[:2]).merge(measure(CFG, images[2:]))
    assert merged.bins == whole.bins
    assert (merged.programs, merged.cycles) == (whole.programs, whole.cycles) == (6, whole.cycles)
    with pytest.raises(ValueError, match="cannot merge configuration 'fpga' into 'default'"):
        Coverage(CFG).merge(Coverage("fpga"))


def _stand_in(bad_seeds):
    """A stand-in for the RTL run: the programs named random<seed> of ``bad_seeds`` differ."""
    def run(config, programs, **kwargs):
        return [{"name": name, "error": None, "match": name not in bad_seeds,
                 "mismatches": ["MEM_W0 word 1 differs"] if name in bad_seeds else [],
                 "cycles_rtl": 7, "cycles_golden": 7, "seconds": 0.01}
                for name, path in programs]
    return run


def test_summary_and_junit_account_for_every_seed(tmp_path, monkeypatch, capsys):
    """Without Verilator (a stand-in run, in this process): seed 5 fails in both suites (of
    lengths 4 and 5); --keep-going runs all, each failing program lands in its suite's folder,
    the JUnit file has a case per seed and each failure's replay command, the summary sums it
    all."""
    monkeypatch.setattr(regress, "run_images", _stand_in({"random5"}))
    monkeypatch.setattr(regress, "BUILD_ROOT", tmp_path)
    junit = tmp_path / "ci" / "regress.xml"
    status = regress.main(["--workers", "0", "--first", "4", "--seeds", "6", "--batch", "2",
                           "--length", "4,5", "--keep-going", "--junit", str(junit)])
    out = capsys.readouterr().out
    assert status == 1
    for length in (4, 5):
        path = tmp_path / "regress" / f"default-L{length}-wild" / "random5.bin"
        assert load(path, CFG) == random_image(CFG, 5, length=length)
    assert ("6 random programs, 42 cycles compared with the golden model in 0 s on this "
            "process") in out
    assert "  default-L4-wild: seeds 4..6, 3 programs, 21 cycles, 1 failed" in out
    assert "seeds: 4 passed + 2 failed + 0 not checked + 0 not run = 6; 0 rerun" in out
    assert ("  or: python -m opentsp.verif.regress --first 5 --seeds 1 --config default "
            "--length 5") in out
    root = ET.parse(junit).getroot()
    assert {name: root.get(name) for name in ("tests", "failures", "errors", "skipped")} == {
        "tests": "6", "failures": "2", "errors": "0", "skipped": "0"}
    failed = root.find("testsuite[@name='regress.default-L5-wild']/testcase[@name='seed 5']")
    assert failed.find("failure").get("message") == "MEM_W0 word 1 differs"
    assert "--length 5" in failed.find("failure").text


def test_a_failing_batch_stops_the_run_and_the_rest_is_listed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(regress, "run_images", _stand_in({"random1"}))
    monkeypatch.setattr(regress, "BUILD_ROOT", tmp_path)
    status = regress.main(["--workers", "0", "--first", "0", "--seeds", "6", "--batch", "2"])
    out = capsys.readouterr().out
    assert status == 1
    assert "not run: default-L16-wild seeds 2..3: stopped after the first failing batch" in out
    assert "seeds: 1 passed + 1 failed + 0 not checked + 4 not run = 6" in out
    root = ET.parse(tmp_path / "regress" / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("6", "1", "4")


def test_a_batch_that_raises_is_not_checked_not_dropped(tmp_path, monkeypatch, capsys):
    def crash(config, programs, **kwargs):
        raise RuntimeError("the cocotb testbench opentsp.verif.tb.chip wrote no results")

    monkeypatch.setattr(regress, "run_images", crash)
    monkeypatch.setattr(regress, "BUILD_ROOT", tmp_path)
    assert regress.main(["--workers", "0", "--seeds", "2", "--keep-going"]) == 1
    out = capsys.readouterr().out
    assert ("not checked: default-L16-wild seeds 1000..1001: RuntimeError: the cocotb testbench "
            "opentsp.verif.tb.chip wrote no results") in out
    assert "seeds: 0 passed + 0 failed + 2 not checked + 0 not run = 2" in out


def test_a_seed_without_a_record_fails_with_its_files(tmp_path, monkeypatch, capsys):
    def short(config, programs, **kwargs):      # the simulation stopped after the first program
        return _stand_in(set())(config, programs[:1])

    monkeypatch.setattr(regress, "run_images", short)
    monkeypatch.setattr(regress, "BUILD_ROOT", tmp_path)
    assert regress.main(["--workers", "0", "--first", "0", "--seeds", "2"]) == 1
    out = capsys.readouterr().out
    assert "FAILED seed 1: no result from the testbench (its simulation stopped early)" in out
    assert load(tmp_path / "regress" / "random1.bin", CFG) == random_image(CFG, 1)
    assert "seeds: 1 passed + 1 failed + 0 not checked + 0 not run = 2" in out


def test_a_small_regression_through_a_cluster_address(tmp_path, capsys):
    """On Verilator: a local cluster of two worker processes reached at its scheduler's address,
    as workers on other hosts are; 8 programs in 4 batches, all equal to the golden model."""
    junit = tmp_path / "junit.xml"
    with local_cluster(2) as cluster:
        status = regress.main(["--cluster", cluster.scheduler_address, "--first", "0",
                               "--seeds", "8", "--batch", "2", "--junit", str(junit)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "8 random programs" in out and ": 0 failed" in out
    assert f"on cluster {cluster.scheduler_address}, 2 workers" in out
    assert "seeds: 8 passed + 0 failed + 0 not checked + 0 not run = 8; 0 rerun" in out
    assert ET.parse(junit).getroot().get("tests") == "8"


def test_a_killed_worker_has_its_seeds_rerun_elsewhere(capsys):
    """On Verilator, a local cluster of two workers: the worker that starts a batch first is
    killed (SIGKILL) right then; the batch runs again on another worker, every seed is checked,
    the summary names the rerun batch; coverage of all the programs is merged into one."""
    killed = []

    def kill_first(key, attempt):
        if not killed:
            killed.append((key, attempt))
            os.kill(attempt["pid"], signal.SIGKILL)

    suites = [Suite(CFG, first=0, seeds=8)]
    regress.prepare_models([CFG])
    with Farm(workers=2) as farm:
        # batches of 4: seconds of work, so that the kill lands while the batch runs
        report = regress.regress(suites, batch=4, farm=farm, coverage=True, keep_going=True,
                                 on_start=kill_first)
    summary = report.summary()
    assert killed
    assert report.programs == 8 and not report.failures and not report.unchecked, summary
    key, attempt = killed[0]
    rerun = [o for o in report.outcomes if o.rerun]
    assert [o.key for o in rerun] == [key], summary
    assert rerun[0].ran_on["pid"] != attempt["pid"]
    assert (f"rerun: {rerun[0].item}: its worker {attempt['worker']} (pid {attempt['pid']}"
            in summary)
    assert "seeds: 8 passed + 0 failed + 0 not checked + 0 not run = 8; 4 rerun" in summary
    # a batch that waited on the dead worker went to another: said so, not called a rerun
    for outcome in report.outcomes:
        if outcome.reassigned:
            assert f"reassigned: {outcome.item}: waited on a worker that died" in summary
    assert report.coverage["default"].programs == 8
    assert report.coverage["default"].bins == measure(
        CFG, (random_image(CFG, seed) for seed in range(8))).bins
