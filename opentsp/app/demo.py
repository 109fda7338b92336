"""`make demo-digits`: the int8 digits network, compiled for OpenTSP, run on the RTL in Verilator.

    python -m opentsp.app.demo [--config NAME] [--images N] [--batch M] [--split S]

Loads the committed network (:mod:`opentsp.app.digits`, 64 -> 16 -> 10, int8) and compiles it
(:func:`opentsp.compiler.compile_graph`) for batches of ``M`` images: as one program if it fits
the configuration, else the hidden layer as ``S`` programs of 16/S columns each and the output
layer as one more, fed with the hidden activations that the RTL computed. The demo's
configuration is ``wide`` (:data:`DEMO_CONFIG`: the ``default`` chip with an 8 x 8 MXM across
both superlanes, so every ``abc``'s partial sums ride the stagger), where the whole network is
one program; on ``default`` (4 x 4 MXMs) its tensors and its MXM queue do not fit at once and
it runs as three. It runs the first ``N`` test images on the RTL (``verif/runner.run_images``:
one Verilator build, then every program under cocotb, each also run on the golden model), reads
every program's outputs back from the RTL's memories and checks them bit for bit against the
int8 numpy reference (:func:`opentsp.app.digits.reference`, Python-integer arithmetic), and its
cycle count against the compiler's prediction. Then it prints the accuracy on the RTL, of the
int8 reference and of the float network, predicted vs measured cycles, the MXM utilisation and
the time per image at the configuration's clock.

Any disagreement (outputs, cycles, a failed run) ends the demo with status 1 and a message.
"""

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opentsp.app import digits
from opentsp.compiler import CompileError, Graph, compile_graph
from opentsp.config import CONFIGS, get_config
from opentsp.verif.runner import progress, quiet_banners, run_images

__all__ = ["DEFAULT_BATCH", "DEFAULT_IMAGES", "DEMO_CONFIG", "DemoError", "Part", "Plan",
           "ProgramsDone", "build_graph", "fc1_graph", "fc2_graph", "plan", "batches", "run",
           "main"]

DEFAULT_BATCH = 4           # images per program (rows of the first matmul)
DEFAULT_IMAGES = 64         # test images run on the RTL by default
DEMO_CONFIG = "wide"        # the whole network as one program (see the module docstring)


class DemoError(RuntimeError):
    """The RTL disagreed with a reference, or a run failed: the demo's result is wrong."""


def build_graph(params, batch):
    """The whole network as one graph for ``batch`` images: input ``x`` (batch, 64) int8,
    output ``logits`` (batch, 10) int32."""

    g = Graph("digits")
    x = g.input("x", (batch, params.w1_q.shape[0]))
    h = g.matmul(x, g.const("w1", params.w1_q), name="fc1")
    h = g.bias_add(h, g.const("b1", params.b1_q), name="fc1.bias")
    q = g.requant(g.relu(h, name="fc1.relu"), params.m1, params.s1, name="fc1.q")
    y = g.matmul(q, g.const("w2", params.w2_q), name="fc2")
    g.output("logits", g.bias_add(y, g.const("b2", params.b2_q), name="fc2.bias"))
    return g


def fc1_graph(params, batch, columns):
    """The hidden layer's ``columns`` (a slice) for ``batch`` images: input ``x``, output
    ``h`` (batch, columns) int8."""

    g = Graph(f"digits_fc1_{columns.start}_{columns.stop}")
    x = g.input("x", (batch, params.w1_q.shape[0]))
    h = g.matmul(x, g.const("w1", params.w1_q[:, columns].copy()), name="fc1")
    h = g.bias_add(h, g.const("b1", params.b1_q[columns].copy()), name="fc1.bias")
    h = g.relu(h, name="fc1.relu")
    g.output("h", g.requant(h, params.m1[columns], params.s1[columns], name="fc1.q"))
    return g


def fc2_graph(params, batch):
    """The output layer for ``batch`` images: input ``h`` (batch, hidden) int8, output
    ``logits`` (batch, 10) int32."""

    g = Graph("digits_fc2")
    h = g.input("h", (batch, params.hidden))
    y = g.matmul(h, g.const("w2", params.w2_q), name="fc2")
    g.output("logits", g.bias_add(y, g.const("b2", params.b2_q), name="fc2.bias"))
    return g


@dataclass(frozen=True)
class Part:
    """One compiled program of the plan: ``columns`` is the slice of hidden units it computes
    (output ``h``), None for a program that ends in the logits."""
    name: str
    program: object
    columns: slice | None


@dataclass(frozen=True)
class Plan:
    """How the network runs: ``stages[0]`` takes the images, ``stages[1]`` (if any) the hidden
    activations that stage 0's parts computed; ``why`` says why the network was split."""
    batch: int
    stages: tuple
    why: str | None = None

    @property
    def parts(self):
        return [part for stage in self.stages for part in stage]

    @property
    def cycles(self):
        """Cycles of every program that one batch runs through."""
        return sum(part.program.predicted_cycles for part in self.parts)

    @property
    def mac_ops(self):
        return sum(part.program.mac_ops for part in self.parts)


def plan(params, batch, config, split=None):
    """Compile the network for ``config``: as one program if it fits (``split`` None or 1), else
    the hidden layer in ``split`` programs of hidden/split columns each (None: the fewest that
    compile) followed by the output layer as a program of its own."""

    hidden = params.hidden
    why = None
    if split in (None, 1):
        try:
            whole = compile_graph(build_graph(params, batch), config)
            return Plan(batch, ((Part("digits", whole, None),),))
        except CompileError as error:
            if split == 1:
                raise
            why = str(error)
    counts = [split] if split is not None else \
        [n for n in range(2, hidden + 1) if hidden % n == 0]
    if split is not None and (not isinstance(split, int) or split < 1 or hidden % split):
        raise ValueError(f"split must divide the {hidden} hidden units, not {split!r}")
    for count in counts:
        width = hidden // count
        try:
            parts = []
            for lo in range(0, hidden, width):
                columns = slice(lo, lo + width)
                parts.append(Part(f"fc1[{lo}:{lo + width}]",
                                  compile_graph(fc1_graph(params, batch, columns), config),
                                  columns))
            output = Part("fc2", compile_graph(fc2_graph(params, batch), config), None)
            return Plan(batch, (tuple(parts), (output,)), why)
        except CompileError as error:
            if count == counts[-1]:
                raise CompileError(f"the network does not compile for config {config.name!r} "
                                   f"at {batch} images per program, even split {count} ways: "
                                   f"{error}") from None
    raise AssertionError("unreachable")


def batches(images, batch):
    """``images`` (N, 64) int8 cut into ``batch``-row blocks; the last is padded with blank
    images (zeros), whose results are dropped. Returns a list of (block, real rows)."""
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, not {batch!r}")
    blocks = []
    for start in range(0, len(images), batch):
        block = images[start:start + batch]
        rows = len(block)
        if rows < batch:
            block = np.concatenate([block, np.zeros((batch - rows, images.shape[1]),
                                                    dtype=images.dtype)])
        blocks.append((block, rows))
    return blocks


class ProgramsDone:
    """The programs run so far, across the runner's calls, on a progress bar (drawn on a
    terminal only, see :func:`opentsp.verif.runner.progress`); created at the first report, so
    that it does not stand beside the model build's own progress."""

    def __init__(self, total):
        self.total = total
        self.before = 0     # programs of the earlier runner calls
        self.bar = None

    def __call__(self, done):
        """The runner's ``on_progress``: ``done`` programs of the current call are finished."""
        if self.bar is None:
            self.bar = progress(total=self.total, desc="programs on the RTL", unit="program")
        self.bar.update(self.before + done - self.bar.n)

    def call_done(self, count):
        """The current runner call ran ``count`` programs."""
        self.before += count

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _run_stage(stage, inputs, expected, runner, config, tmp, done):
    """Run every part of ``stage`` on every block of ``inputs`` (``{name: [block, ...]}``) on
    the RTL, counting them on ``done`` (:class:`ProgramsDone`); check cycles and outputs;
    return ``{part name: [output per block]}`` and the measured cycles ``{part name: set}``."""
    jobs = []
    for part in stage:
        for index in range(len(next(iter(inputs.values())))):
            name = f"{part.name.replace('[', '_').replace(':', '_').rstrip(']')}_{index:03d}"
            path = tmp / f"{name}.bin"
            part.program.image_for({key: blocks[index] for key, blocks in inputs.items()
                                    if key in part.program.graph.inputs}).save(path)
            jobs.append((part, index, name, path))
    records = runner(config, [(name, path) for _, _, name, path in jobs], memories_dir=tmp,
                     log_level="WARNING", on_progress=done)
    done.call_done(len(jobs))
    results, measured = {}, {}
    for (part, index, name, _), record in zip(jobs, records, strict=True):
        if record["error"]:
            raise DemoError(f"{name}: RTL run failed: {record['error']}")
        if not record["match"]:
            raise DemoError(f"{name}: RTL memories differ from the golden model's: "
                            f"{'; '.join(record['mismatches'][:3])}")
        predicted = part.program.predicted_cycles
        if not record["cycles_rtl"] == record["cycles_golden"] == predicted:
            raise DemoError(f"{name}: cycles differ: predicted {predicted}, golden model "
                            f"{record['cycles_golden']}, RTL {record['cycles_rtl']}")
        (key, value), = part.program.outputs(np.load(record["memories"])).items()
        reference = expected[key][index]
        if part.columns is not None:
            reference = reference[:, part.columns]
        if not np.array_equal(value, reference):
            rows = np.flatnonzero((value != reference).any(axis=1)).tolist()
            raise DemoError(f"{name}: RTL output {key!r} differs from the int8 reference in "
                            f"rows {rows}")
        results.setdefault(part.name, []).append(value)
        measured.setdefault(part.name, set()).add(record["cycles_rtl"])
    return results, measured


def run(config=DEMO_CONFIG, images=DEFAULT_IMAGES, batch=DEFAULT_BATCH, split=None, *,
        runner=None, out=print):
    """Run the demo; returns a dict of the figures printed. ``runner`` is
    ``verif.runner.run_images`` (tests pass a stand-in)."""
    config = get_config(config)
    if not isinstance(images, int) or images < 1:
        raise ValueError(f"images must be a positive int, not {images!r}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, not {batch!r}")
    if runner is None:
        runner = run_images
    params = digits.load()
    _, _, x_test, y_test = digits.load_split()
    if images > len(x_test):
        raise ValueError(f"images must be at most {len(x_test)} (the test split), "
                         f"not {images!r}")
    x, labels = x_test[:images], y_test[:images]
    float_logits = digits.float_logits(x, params.w1, params.b1, params.w2, params.b2)

    out(f"== OpenTSP demo: int8 MLP 64 -> {params.hidden} -> 10 on scikit-learn digits ==")
    out(f"config {config.name}: {config.superlanes} superlanes x {config.lanes_per_superlane} "
        f"lanes, {2 * config.mem_slices} MEM slices x {config.mem_words} words, queues of "
        f"{config.queue_depth}, two {config.mxm_size}x{config.mxm_size} MXMs, "
        f"{config.clock_mhz:g} MHz")
    start = time.perf_counter()
    network = plan(params, batch, config, split)
    _print_plan(network, config, batch, time.perf_counter() - start, out)
    blocks = batches(x, batch)
    per_block = [digits.reference(params, block) for block, _ in blocks]
    expected = {"h": [h for h, _ in per_block], "logits": [y for _, y in per_block]}
    programs = len(blocks) * len(network.parts)
    out(f"running {images} test images ({len(blocks)} batches, {programs} programs) on the "
        f"RTL in Verilator; the first run builds the model once (two to three minutes on "
        f"2 cores)...")
    start = time.perf_counter()
    rtl_logits, measured = _run_network(network, blocks, expected, runner, config)
    wall = time.perf_counter() - start
    reference = digits.reference(params, x)[1]
    if not np.array_equal(rtl_logits, reference):   # the blocks must cover the images in order
        raise DemoError("RTL logits, reassembled, differ from the int8 reference")

    accuracy = {name: float(np.mean(values.argmax(axis=1) == labels)) for name, values in
                (("rtl", rtl_logits), ("int8", reference), ("float", float_logits))}
    agree = int(np.sum(rtl_logits.argmax(axis=1) == float_logits.argmax(axis=1)))
    cycles = network.cycles
    figures = {"accuracy": accuracy, "images": images, "batches": len(blocks),
               "programs": programs, "predicted_cycles": cycles,
               "measured_cycles": {name: sorted(c) for name, c in measured.items()},
               "mxm_utilisation": network.mac_ops / (cycles * 2 * config.mxm_size ** 2),
               "us_per_image": cycles / batch / config.clock_mhz,
               "wall_seconds": wall, "batch": batch, "parts": len(network.parts)}
    _print_figures(figures, agree, network, config, out)
    return figures


def _print_plan(network, config, batch, seconds, out):
    """The compiled programs: how the network was cut, and each program's figures."""
    out(f"compiled in {seconds:.1f} s, {batch} images per program:")
    if network.why:
        out(f"  not as one program ({network.why}),")
        out(f"  so the hidden layer runs as {len(network.stages[0])} programs and the output "
            f"layer as one more; the RTL's hidden activations feed the output layer")
    for part in network.parts:
        words = part.program.queue_words
        busiest = max(words, key=words.get)
        out(f"  {part.name:<12} {part.program.predicted_cycles:>5} cycles predicted, "
            f"{part.program.mac_ops:>5} MACs, MXM utilisation "
            f"{part.program.mxm_utilisation:6.1%}, longest queue {busiest} "
            f"{words[busiest]}/{config.queue_depth} words")


def _run_network(network, blocks, expected, runner, config):
    """Run every stage on the RTL, each on the previous one's outputs; the logits of the
    images (padding rows dropped) and the measured cycles ``{part name: set}``."""
    measured = {}
    done = ProgramsDone(len(blocks) * len(network.parts))
    with tempfile.TemporaryDirectory(prefix="opentsp-demo-") as tmp:
        inputs = {"x": [block for block, _ in blocks]}
        try:
            for stage in network.stages:
                results, cycles = _run_stage(stage, inputs, expected, runner, config, Path(tmp),
                                             done)
                measured.update(cycles)
                if stage is not network.stages[-1]:     # the hidden activations, from the RTL
                    inputs = {"h": [np.concatenate([results[p.name][i] for p in stage], axis=1)
                                    for i in range(len(blocks))]}
        finally:
            done.close()
        rtl_logits = np.concatenate([logits[:rows] for logits, (_, rows)
                                     in zip(results[network.stages[-1][0].name], blocks,
                                            strict=True)])
    return rtl_logits, measured


def _print_figures(figures, agree, network, config, out):
    """The demo's results: ``figures`` of :func:`run`, ``agree`` images on which the RTL's
    and the float network's predictions agree."""
    accuracy, images, programs = figures["accuracy"], figures["images"], figures["programs"]
    cycles, batch = figures["predicted_cycles"], figures["batch"]
    out("")
    out(f"RTL outputs     equal to the int8 numpy reference bit for bit ({images} images, "
        f"{programs} programs; every RTL memory also equal to the golden model's)")
    out(f"accuracy        RTL {accuracy['rtl']:.2%}, int8 reference {accuracy['int8']:.2%}, "
        f"float {accuracy['float']:.2%} on {images} test images (RTL and float predictions "
        f"agree on {agree})")
    for part in network.parts:
        got = figures["measured_cycles"][part.name]
        same = got == [part.program.predicted_cycles]
        out(f"cycles          {part.name:<12} predicted {part.program.predicted_cycles}, "
            f"measured on the RTL {'=' if same else ''} {', '.join(map(str, got))}"
            f"{' in every batch' if same else ''}")
    out(f"MXM utilisation {figures['mxm_utilisation']:.1%} ({network.mac_ops} MACs per batch "
        f"/ (2 MXMs x {config.mxm_size}x{config.mxm_size} x {cycles} cycles), loading and "
        f"draining included)")
    out(f"latency         {figures['us_per_image']:.3f} us per image at "
        f"{config.clock_mhz:g} MHz: {cycles} cycles, {cycles / config.clock_mhz:.2f} us, for a "
        f"batch of {batch} images through its {len(network.parts)} program(s) back to back "
        f"(host loading not counted)")
    out(f"simulation      {figures['wall_seconds']:.1f} s wall for {programs} programs under "
        f"cocotb + Verilator (a model build included if one ran)")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.app.demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEMO_CONFIG,
                        help=f"one of {', '.join(CONFIGS)} (default {DEMO_CONFIG})")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES,
                        help=f"test images to run (default {DEFAULT_IMAGES})")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                        help=f"images per program (default {DEFAULT_BATCH})")
    parser.add_argument("--split", type=int, default=None,
                        help="programs for the hidden layer (default: 1 if the network fits "
                             "one program, else the fewest that compile)")
    args = parser.parse_args(argv)

    try:
        with quiet_banners():
            run(args.config, args.images, args.batch, args.split)
    except (DemoError, CompileError, ValueError) as error:
        print(f"opentsp demo: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
