"""The simulator runner without a simulator: a model's freshness decided from what its Verilog
is made of (no Verilog generated for a model that is up to date), the progress helper (silent
off a terminal and under CI), and ``opentsp run``'s report of the simulator used and of a run
that failed, with stand-ins for the simulation."""

import io
import shutil
import threading
from pathlib import Path

import pytest

from opentsp.app import cli
from opentsp.compiler import derive_config
from opentsp.config import get_config
from opentsp.verif import runner

EXAMPLE = Path(__file__).parent.parent / "firmware" / "examples" / "dot_relu.s"


def _no_generation(*args, **kwargs):
    raise AssertionError("the Verilog must not be generated for an up-to-date model")


@pytest.fixture
def build_root(tmp_path, monkeypatch):
    """Builds land in ``tmp_path``; no simulator is touched (tool_env, the cocotb runner)."""
    monkeypatch.setattr(runner, "BUILD_ROOT", tmp_path)
    monkeypatch.setattr(runner, "tool_env", lambda simulator="verilator": None)
    monkeypatch.setattr(runner, "_runner", _no_generation)
    return tmp_path


def _stamp(build_dir, key):
    build_dir.mkdir(parents=True)
    (build_dir / "opentsp.stamp").write_text(key)


@pytest.mark.parametrize("simulator", runner.SIMULATORS)
def test_an_up_to_date_model_is_not_generated_again(build_root, monkeypatch, simulator):
    monkeypatch.setattr(runner, "chip_verilog", _no_generation)
    key = runner.chip_model_key("default", simulator, False)
    _stamp(build_root / f"{simulator}-default", key)
    assert runner.build("default", simulator=simulator, waves=False) == \
        build_root / f"{simulator}-default"


def test_an_up_to_date_bridged_model_is_not_generated_again(build_root, monkeypatch):
    monkeypatch.setattr(runner, "generate_bridged", _no_generation)
    key = runner.model_key("fpga", runner.BRIDGED_TOPLEVEL, "verilator", False,
                           options=[runner.BRIDGE_DIVISOR])
    _stamp(build_root / "verilator-bridged-fpga", key)
    assert runner.build_bridged("fpga") == build_root / "verilator-bridged-fpga"


class Generated(Exception):
    """Raised by the stand-in generator: the build went on to generate the Verilog."""


def test_a_stale_model_is_generated_again(build_root, monkeypatch):
    def generate(config):
        raise Generated(config.name)

    monkeypatch.setattr(runner, "chip_verilog", generate)
    _stamp(build_root / "verilator-default", "a key of other sources")
    with pytest.raises(Generated, match="default"):
        runner.build("default", simulator="verilator", waves=False)
    assert not (build_root / "verilator-default" / "opentsp.stamp").exists()


def test_a_failed_build_is_one_line_and_leaves_no_stamp(build_root, monkeypatch, capsys):
    class Failing:
        def build(self, **kwargs):
            (kwargs["build_dir"] / "build.log").write_text("g++: error: out of memory\n")
            raise RuntimeError("Command failed with return code: 2")

    monkeypatch.setattr(runner, "chip_verilog", lambda config: "module tsp_top; endmodule\n")
    monkeypatch.setattr(runner, "_runner", lambda simulator: Failing())
    with pytest.raises(runner.BuildError, match=r"verilator-default: the verilator build of "
                                                r"tsp_top for config default failed \(Command "
                                                r"failed with return code: 2\); its log is "):
        runner.build("default", simulator="verilator", waves=False)
    assert "g++: error: out of memory" in capsys.readouterr().err     # the log's tail
    assert not (build_root / "verilator-default" / "opentsp.stamp").exists()


def test_the_key_follows_the_sources(tmp_path, monkeypatch):
    copies = []
    for path in runner.rtl_sources():
        copy = tmp_path / path.parent.name / path.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(path, copy)
        copies.append(copy)
    monkeypatch.setattr(runner, "rtl_sources", lambda: copies)
    key = runner.model_key("default", runner.TOPLEVEL, "verilator", False)
    assert runner.model_key("default", runner.TOPLEVEL, "verilator", False) == key
    top = next(copy for copy in copies if copy.name == "top.py")
    top.write_text(top.read_text() + "\n# a comment changes the sources\n")
    assert runner.model_key("default", runner.TOPLEVEL, "verilator", False) != key


def test_the_sources_are_the_rtl_and_the_floor():
    names = {f"{path.parent.name}/{path.name}" for path in runner.rtl_sources()}
    assert {"hdl/top.py", "hdl/verilog.py", "board/shell.py", "opentsp/isa.py",
            "opentsp/config.py"} <= names
    assert not any(name.startswith(("sim/", "verif/", "app/")) for name in names)


def test_the_key_follows_config_simulator_waves_and_options():
    key = runner.model_key("default", runner.TOPLEVEL, "verilator", False)
    others = [runner.model_key("medium", runner.TOPLEVEL, "verilator", False),
              runner.model_key(derive_config("default", "default", mem_words=32),
                               runner.TOPLEVEL, "verilator", False),
              runner.model_key("default", runner.TOPLEVEL, "icarus", False),
              runner.model_key("default", runner.TOPLEVEL, "verilator", True),
              runner.model_key("default", runner.BRIDGED_TOPLEVEL, "verilator", False),
              runner.model_key("default", runner.TOPLEVEL, "verilator", False, options=[8])]
    assert len({key, *others}) == 1 + len(others)
    assert runner.model_key(get_config("default"), runner.TOPLEVEL, "verilator", False) == key


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _draw(stream, **kwargs):
    with runner.progress(total=3, desc="building", stream=stream, **kwargs) as bar:
        bar.update(3)
    return stream.getvalue()


def test_progress_is_silent_off_a_terminal_and_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert _draw(io.StringIO()) == ""
    assert "building" in _draw(Terminal())
    monkeypatch.setenv("CI", "true")
    assert not runner.progress_enabled(Terminal())
    assert _draw(Terminal()) == ""
    monkeypatch.setenv("CI", "")
    assert runner.progress_enabled(Terminal())


def test_progress_prints_when_forced(monkeypatch):
    monkeypatch.setenv("CI", "1")
    assert "building:" in _draw(io.StringIO(), force=True)
    monkeypatch.delenv("CI")
    assert _draw(Terminal(), force=False) == ""


def _record(**fields):
    return {"name": "dot_relu", "cycles_rtl": 50, "cycles_golden": 50, "match": True,
            "mismatches": [], "seconds": 0.01, "error": None, "memories": None, **fields}


@pytest.mark.parametrize("sim, argv, expect", [
    (None, [], "verilator"), ("icarus", [], "icarus"),
    ("icarus", ["--simulator", "verilator"], "verilator")])
def test_run_names_the_simulator_used(monkeypatch, capsys, sim, argv, expect):
    """The records of run_images name the simulator ($SIM, --simulator, default), and
    ``opentsp run`` prints it (it printed "None" when neither was given)."""
    monkeypatch.setattr(runner, "build", lambda config, simulator, waves: "build")
    monkeypatch.setattr(runner, "_run_job", lambda *args, **kwargs: [_record()])
    monkeypatch.setattr(cli, "run_images", runner.run_images)
    if sim is None:
        monkeypatch.delenv("SIM", raising=False)
    else:
        monkeypatch.setenv("SIM", sim)
    assert cli.main(["run", str(EXAMPLE), *argv]) == 0
    out = capsys.readouterr().out
    assert "None" not in out
    assert f"simulator       {expect}\n" in out and f"({expect}, free-running to done)" in out


def test_run_that_never_finishes_is_one_line(monkeypatch, capsys):
    error = "TimeoutError: program did not finish within 5000 cycles"
    monkeypatch.setattr(cli, "run_images", lambda *args, **kwargs: [
        _record(cycles_rtl=None, cycles_golden=None, match=False, seconds=None, error=error,
                simulator="verilator")])
    assert cli.main(["run", str(EXAMPLE), "--max-cycles", "5000"]) == 1
    err = capsys.readouterr().err
    assert err == f"opentsp: error: {EXAMPLE}: RTL run failed: {error}\n"


def test_run_with_a_failed_build_is_one_line(monkeypatch, capsys):
    def failed(*args, **kwargs):
        raise runner.BuildError("build/verilator-default: the verilator build of tsp_top for "
                                "config default failed (Command failed with return code: 2); "
                                "its log is build/verilator-default/build.log")

    monkeypatch.setattr(cli, "run_images", failed)
    assert cli.main(["run", str(EXAMPLE)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"opentsp: error: {EXAMPLE}: RTL run failed: ")


def test_the_simulation_top_wraps_every_port_and_generates_the_clock():
    text = runner.clock_wrapper_verilog("default")
    header = text[text.index(f"module {runner.SIM_TOPLEVEL}("):].split(";", 1)[0]
    ports = header[header.index("(") + 1:header.index(")")].replace(" ", "").split(",")
    assert sorted(ports) == sorted(("clk", "rst", *runner.PORTS))
    assert "  output reg clk;" in text and "  input [31:0] host_addr;" in text
    assert "  output [31:0] host_rdata;" in text and "  output done;" in text
    assert f"always #{runner.CLOCK_NS // 2} clk = ~clk;" in text
    with pytest.raises(ValueError, match="nosuch"):
        runner.clock_wrapper_verilog("nosuch")


def test_only_the_testbench_ports_are_public_inputs_writable_outputs_read_only():
    lines = runner.public_ports_vlt(runner.SIM_TOPLEVEL).splitlines()
    assert lines[0] == "`verilator_config"
    public = {line.split('"')[3]: line.split()[0] for line in lines[2:]}
    assert public == {"rst": "public_flat_rw", "host_addr": "public_flat_rw",
                      "host_wdata": "public_flat_rw", "host_wen": "public_flat_rw",
                      "host_ren": "public_flat_rw", "clk": "public_flat_rd",
                      "host_rdata": "public_flat_rd", "host_rvalid": "public_flat_rd",
                      "done": "public_flat_rd", "running": "public_flat_rd"}
    assert "--no-public-flat-rw" in runner.VERILATOR_ARGS


def test_two_processes_building_one_model_take_turns(tmp_path):
    """Parallel test workers: while one builds a model, another that wants the same model waits
    for the lock and then finds its stamp, so the model is generated and compiled once."""
    build_dir = tmp_path / "verilator-x"
    started, release = threading.Event(), threading.Event()
    generated = []

    def first_verilog():
        generated.append("first")
        started.set()
        assert release.wait(10)
        return "module x; endmodule\n"

    def second_verilog():
        generated.append("second")
        return "module x; endmodule\n"

    def build(make_verilog):
        runner.build_model(make_verilog, "key", "x", build_dir, "verilator", False, what="x",
                           compile_model=lambda source, log: None)

    first = threading.Thread(target=build, args=(first_verilog,))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=build, args=(second_verilog,))
    second.start()
    second.join(0.5)
    assert second.is_alive()            # waits for the first build's lock
    release.set()
    first.join(10)
    second.join(10)
    assert generated == ["first"]
    assert (build_dir / "opentsp.stamp").read_text() == "key"
