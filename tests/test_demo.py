"""The compiled digits network on the golden model, bit for bit against the int8 numpy
reference, and the demo's checks (with the golden model standing in for the RTL; `make demo-digits`
itself is the Verilator run)."""

import numpy as np
import pytest

from opentsp.app import demo, digits
from opentsp.compiler import derive_config
from opentsp.config import get_config
from opentsp.firmware.image import Image
from opentsp.sim.model import run as run_golden

CONFIG = get_config("default")
BATCH = demo.DEFAULT_BATCH
#: Queues and memory for the whole network as one program (the default's are too small).
ROOMY = derive_config("default", "roomy", queue_depth=512, mem_words=256)
#: make demo-digits's configuration: 8 x 8 MXMs, where the network is one program.
WIDE = get_config(demo.DEMO_CONFIG)


@pytest.fixture(scope="module")
def params():
    return digits.load()


@pytest.fixture(scope="module")
def network(params):
    return demo.plan(params, BATCH, CONFIG)


@pytest.fixture(scope="module")
def test_images():
    return digits.load_split()[2]


def test_default_config_splits_the_hidden_layer(network, params):
    # 256 weight loads of the 64 x 16 layer exceed the default's 128-word MXM queues: the plan
    # takes the hidden layer in column blocks, then the output layer.
    assert network.why and "does not fit" in network.why
    first, second = network.stages
    columns = [part.columns for part in first]
    assert columns[0].start == 0 and columns[-1].stop == params.hidden
    assert all(a.stop == b.start for a, b in zip(columns[:-1], columns[1:], strict=True))
    assert [part.name for part in second] == ["fc2"] and second[0].columns is None
    assert network.cycles == sum(p.program.predicted_cycles for p in network.parts)


def test_each_program_is_bit_exact_on_the_golden_model(params, network, test_images):
    for block in (test_images[:BATCH], test_images[-BATCH:]):
        hidden, logits = digits.reference(params, block)
        pieces = []
        for part in network.stages[0]:
            outputs, cycles = part.program.run_golden({"x": block})
            np.testing.assert_array_equal(outputs["h"], hidden[:, part.columns])
            assert cycles == part.program.predicted_cycles
            pieces.append(outputs["h"])
        fc2 = network.stages[1][0].program
        outputs, cycles = fc2.run_golden({"h": np.concatenate(pieces, axis=1)})
        assert outputs["logits"].dtype == np.int32 and cycles == fc2.predicted_cycles
        np.testing.assert_array_equal(outputs["logits"], logits)


@pytest.mark.parametrize("config", [WIDE, ROOMY], ids=lambda c: c.name)
def test_whole_network_as_one_program_is_bit_exact(params, test_images, config):
    """make demo-digits's wide (8 x 8 MXMs: the network in its memory and queues) and a default chip
    with more of both."""
    network = demo.plan(params, BATCH, config)
    assert network.why is None and [p.name for p in network.parts] == ["digits"]
    program = network.parts[0].program
    # all-16 and all-0 images drive the hidden layer to saturation and to the bias alone
    extreme = np.zeros((BATCH, 64), dtype=np.int8)
    extreme[::2] = 16
    for block in (test_images[:BATCH], extreme):
        outputs, cycles = program.run_golden({"x": block})
        np.testing.assert_array_equal(outputs["logits"], digits.reference(params, block)[1])
        np.testing.assert_array_equal(program.reference({"x": block})["logits"],
                                      outputs["logits"])
        assert cycles == program.predicted_cycles


def test_split_must_divide_the_hidden_units(params):
    with pytest.raises(ValueError, match=r"split must divide the 16 hidden units, not 3"):
        demo.plan(params, BATCH, CONFIG, split=3)


def golden_runner(corrupt=None, cycle_offset=0):
    """A stand-in for ``verif.runner.run_images`` that runs the golden model, optionally
    corrupting the memories (the RTL going wrong) or the measured cycles."""
    calls = []

    def runner(config, programs, *, memories_dir, log_level=None, on_progress=None):
        records = []
        if on_progress is not None:
            on_progress(0)
        for name, path in programs:
            result = run_golden(Image.load(path, config))
            memories = result.memories.copy()
            if corrupt is not None:
                corrupt(memories)
            np.save(memories_dir / f"{name}.npy", memories)
            records.append({"name": name, "cycles_rtl": result.cycles + cycle_offset,
                            "cycles_golden": result.cycles, "match": True, "mismatches": [],
                            "seconds": 0.0, "error": None,
                            "memories": str(memories_dir / f"{name}.npy")})
            if on_progress is not None:
                on_progress(len(records))
        calls.append(len(programs))
        return records
    runner.calls = calls
    return runner


def test_demo_reports_rtl_accuracy_equal_to_the_reference(params, network, test_images):
    lines = []
    images = BATCH + 3      # two batches, the second padded with blank images
    runner = golden_runner()
    figures = demo.run(CONFIG, images, BATCH, runner=runner, out=lines.append)
    parts = len(network.stages[0])
    assert runner.calls == [2 * parts, 2]       # the hidden layer's programs, then fc2's
    labels = digits.load_split()[3][:images]
    int8 = digits.reference(params, test_images[:images])[1].argmax(axis=1)
    assert figures["accuracy"]["rtl"] == figures["accuracy"]["int8"] == np.mean(int8 == labels)
    assert figures["measured_cycles"] == {p.name: [p.program.predicted_cycles]
                                          for p in network.parts}
    assert figures["predicted_cycles"] == network.cycles
    text = "\n".join(lines)
    assert "equal to the int8 numpy reference bit for bit" in text
    assert f"fc2          predicted {network.parts[-1].program.predicted_cycles}, " in text


def test_demo_runs_the_network_as_one_program_on_its_config(params, test_images):
    """make demo-digits's configuration: one program per batch, one runner call, the RTL (here the
    golden model) equal to the reference, predicted = measured."""
    network = demo.plan(params, BATCH, WIDE)
    runner = golden_runner()
    images = 2 * BATCH
    figures = demo.run(demo.DEMO_CONFIG, images, BATCH, runner=runner, out=lambda line: None)
    assert runner.calls == [2] and figures["programs"] == 2
    assert figures["measured_cycles"] == {"digits": [network.cycles]}
    labels = digits.load_split()[3][:images]
    int8 = digits.reference(params, test_images[:images])[1].argmax(axis=1)
    assert figures["accuracy"]["rtl"] == np.mean(int8 == labels)


class Bar:
    """A stand-in progress bar: what the demo counted."""
    made = []

    def __init__(self, total, desc, unit):
        self.total, self.n, self.closed = total, 0, False
        Bar.made.append(self)

    def update(self, count):
        self.n += count

    def close(self):
        self.closed = True


def test_demo_counts_the_programs_done(monkeypatch):
    """The programs run so far, over both stages, on one progress bar (drawn on a terminal
    only: opentsp.verif.runner.progress, tested in tests/test_runner.py)."""
    Bar.made = []
    monkeypatch.setattr(demo, "progress", Bar)
    figures = demo.run(CONFIG, BATCH + 3, BATCH, runner=golden_runner(), out=lambda line: None)
    bar, = Bar.made
    assert bar.total == bar.n == figures["programs"] and bar.closed


def test_demo_fails_loudly_on_wrong_logits():
    def flip(memories):
        memories ^= 1       # every byte wrong: the logits cannot survive

    with pytest.raises(demo.DemoError, match=r"^fc1_0_\d+_000: RTL output 'h' differs from "
                                             r"the int8 reference in rows \["):
        demo.run(CONFIG, 2, BATCH, runner=golden_runner(flip), out=lambda line: None)


def test_demo_fails_loudly_on_a_cycle_mismatch():
    with pytest.raises(demo.DemoError, match=r"^fc1_0_\d+_000: cycles differ: predicted \d+, "
                                             r"golden model \d+, RTL \d+"):
        demo.run(CONFIG, 2, BATCH, runner=golden_runner(cycle_offset=1), out=lambda line: None)


@pytest.mark.parametrize("argv, cause", [
    (["--images", "0"], "images must be a positive int, not 0"),
    (["--images", "451"], "images must be at most 450 (the test split), not 451"),
    (["--batch", "0"], "batch must be a positive int, not 0"),
    (["--config", "tpu"], "unknown configuration 'tpu'"),
])
def test_demo_bad_arguments(capsys, argv, cause):
    assert demo.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("opentsp demo: error: ") and cause in err


def test_batches_pad_the_last_block():
    images = np.arange(5 * 64, dtype=np.int64).reshape(5, 64).astype(np.int8)
    blocks = demo.batches(images, 2)
    assert [rows for _, rows in blocks] == [2, 2, 1]
    np.testing.assert_array_equal(blocks[2][0][0], images[4])
    assert not blocks[2][0][1].any()
