"""``compile_graph`` and the :class:`CompiledProgram` it returns: image, assembly, figures."""

from dataclasses import replace

import numpy as np

from opentsp import isa, packing
from opentsp.compiler import plan
from opentsp.compiler.fetch import needs_fetch, plan_fetch
from opentsp.compiler.graph import (
    DTYPES,
    FLOATS,
    CompileError,
    Graph,
    evaluate,
    from_storage,
    to_storage,
)
from opentsp.compiler.indexed import schedule_indexed
from opentsp.compiler.lower import lower, view_bases
from opentsp.compiler.plan import DTYPE_CODES, build_kernels, matmul_units, place_static
from opentsp.compiler.resources import ChipResources, striped_rows
from opentsp.compiler.schedule import Scheduler
from opentsp.compiler.sequences import merge_queue, queue_words
from opentsp.config import CONFIGS, Config, get_config
from opentsp.firmware.checker import check as run_checker
from opentsp.firmware.image import Image
from opentsp.sim.model import run

__all__ = ["compile_graph", "CompiledProgram", "predict", "derive_config"]

_MAX_NOP = (1 << isa.COUNT_BITS) - 1


class CompiledProgram:
    """A compiled graph: the firmware image, its assembly and its predicted figures.

    Attributes
    ----------
    graph : Graph
    config : Config
    asm : str
        Readable assembly; ``opentsp.firmware.asm.assemble(asm, config)`` gives :attr:`image`.
        Every instruction's comment names the graph node (and the tensor element range) it
        serves.
    image : opentsp.firmware.image.Image
        Queues and constants (weights, biases, requant constants) placed; inputs zero.
    predicted_cycles : int
        ``last end slot + superlanes - 1 + DRAIN`` of the schedule (docs/architecture.md
        section 5): the golden model's and the RTL's cycle count.
    mac_ops : int
        Useful multiply-accumulates: the sum of ``M * K * N`` over the matmuls.
    """

    def __init__(self, graph, config, image, asm, predicted_cycles, mac_ops, stores, inputs):
        self.graph = graph
        self.config = config
        self.image = image
        self.asm = asm
        self.predicted_cycles = predicted_cycles
        self.mac_ops = mac_ops
        self._stores = stores
        self._inputs = inputs

    @property
    def mxm_utilisation(self):
        """``mac_ops / (predicted_cycles * 2 * mxm_planes * mxm_size^2)``: the peak of every
        plane of both MXMs, over the whole program (loading and draining included)."""
        peak = 2 * self.config.mxm_planes * self.config.mxm_size ** 2
        return self.mac_ops / (self.predicted_cycles * peak)

    @property
    def queue_words(self):
        """Preloaded words per queue name (at most ``queue_depth`` each)."""
        return {s.name: len(q) for s, q in zip(isa.queues(self.config), self.image.queues,
                                               strict=True)}

    def image_for(self, inputs, states=None):
        """The image with ``inputs`` (``{name: ndarray}``, each the input's dtype and shape)
        placed in memory, and ``states`` (``{name: ndarray}``, any of the states; the others
        hold their ``init``)."""
        inputs = self.graph.check_inputs(inputs)
        states = self.graph.check_states(states or {})
        image = Image(self.config, self.image.queues, dict(self.image.data))
        size, lanes = self.config.mxm_size, self.config.lanes
        mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(self.config))}
        placed = [(inputs[name], store) for name, store in self._inputs.items()]
        placed += [(value, self._stores[name]) for name, value in states.items()]
        for value, store in placed:
            value = to_storage(value, store.dtype)
            code = DTYPE_CODES[store.dtype]
            for (r, cb), copies in store.vectors.items():
                if r >= len(value):
                    continue            # a striped state's zero rows (resources.striped_rows)
                padded = np.zeros(lanes, dtype=np.int64)
                chunk = plan.block_values(value[r], cb, size)
                padded[:len(chunk)] = chunk
                planes = packing.pack(padded.astype(packing.NP_DTYPE[code]), code)
                for copy in copies:
                    for (mem, addr), plane in zip(copy.planes, planes, strict=True):
                        image.data[(mem_index[mem], addr)] = plane
        return image

    def outputs(self, memories):
        """``{output name: ndarray}`` read from memories ``(n_mem, mem_words, lanes)`` uint8 in
        :func:`opentsp.isa.mem_slices` order (as ``verif.runner.run_images`` saves them)."""
        return self._read(memories, self.graph.outputs)

    def _read(self, memories, tensors):
        """``{name: ndarray}`` of ``tensors`` (``{name: Tensor}``) from ``memories``."""
        memories = np.asarray(memories)
        config = self.config
        expected = (2 * config.mem_slices, config.mem_words, config.lanes)
        if memories.shape != expected or memories.dtype != np.uint8:
            raise ValueError(f"memories must be uint8 {expected}, not {memories.dtype} "
                             f"{memories.shape}")
        mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(config))}
        size = config.mxm_size
        result = {}
        for name, tensor in tensors.items():
            store = self._stores[tensor.name]
            out = np.zeros(tensor.shape, dtype=np.int64)        # storage integers
            for r in range(tensor.rows):
                for cb in range(-(-tensor.cols // size)):
                    copy = store.vectors[(r, cb)][0]
                    planes = np.stack([memories[mem_index[mem], addr]
                                       for mem, addr in copy.planes])
                    values = packing.unpack(planes, DTYPE_CODES[tensor.dtype])
                    width = min(size, tensor.cols - cb * size)
                    out[r, cb * size:cb * size + width] = values[:width]
            result[name] = from_storage(out, tensor.dtype)
        return result

    def run_golden(self, inputs, **kwargs):
        """``({name: ndarray}, cycles)`` from the golden model (``opentsp.sim``)."""

        result = run(self.image_for(inputs), **kwargs)
        return self.outputs(result.memories), result.cycles

    def reference(self, inputs, states=None):
        """``{name: ndarray}``: the graph's meaning in numpy int64 / Python integers and
        :mod:`opentsp.fp` on float bit patterns, independent of the golden model; ``states``
        the states' values before the run (default: their ``init``)."""
        return self.step_reference(inputs, states)[0]

    def step_reference(self, inputs, states=None):
        """``(outputs, states after the run)`` of one run from ``states``, as
        :meth:`reference` (for a program run again and again, its states carried over)."""
        values = evaluate(self.graph, inputs, states)
        outputs = {name: values[t.name] for name, t in self.graph.outputs.items()}
        after = {name: values[self.graph.last_version(t).name]
                 for name, t in self.graph.states.items()}
        return outputs, after

    def states(self, memories):
        """``{state name: ndarray}`` read from memories, as :meth:`outputs` reads outputs."""
        return self._read(memories, {name: self.graph.last_version(t)
                                     for name, t in self.graph.states.items()})


def _sides_for(graph, kernels, config):
    """Where the copies of each row-layout tensor go: one per MXM that streams it (for a view:
    where its bases go)."""
    bases = view_bases(graph)
    sides = {}
    for kernel in kernels:
        if kernel.matmul is not None:
            x = kernel.matmul.inputs[0]
            mxms = {m for _, _, m, _ in matmul_units(kernel.matmul, config).units}
            want = [m[-1] for m in ("MXM_W", "MXM_E") if m in mxms]
            sides[x.name] = list(dict.fromkeys(sides.get(x.name, []) + want))
            if kernel.matmul.inputs[1].node.op == "transpose":     # weights: k's rows
                sides.setdefault(kernel.matmul.inputs[1].name, ["W"])
        if kernel.head is not None:
            sides.setdefault(kernel.head.name, ["W"])
        if kernel.indexed is not None:
            # The index; the value of a write_row on both sides, so that one copy lies off
            # the state's slices (all on one side): a slice cannot send a word to itself.
            node = kernel.indexed
            for index in (node.inputs[1], *node.inputs[3:]):   # a striped state's too
                sides.setdefault(index.name, ["W"])
            if node.op == "write_row":
                sides[node.inputs[2].name] = ["W", "E"]
        for step in kernel.steps:
            if step.b is not None and step.broadcast:
                sides[step.b] = ["W", "E"]
            elif step.b is not None:
                sides.setdefault(step.b, ["W"])
    for tensor in graph.outputs.values():
        sides.setdefault(tensor.name, ["W"])
    for view in bases:
        want = sides.pop(view, None)
        for base in bases[view] if want else ():
            sides[base] = list(dict.fromkeys(sides.get(base, []) + want))
    return sides


def _words_needed(graph, kernels, sides, config):
    """(tensor, words) in graph order: what the layout needs of every stored tensor."""
    size = config.mxm_size
    needs = []
    indexed = plan.indexed_tensors(graph)
    for node in graph.nodes:
        t = node.output
        blocks = -(-t.cols // size)
        width = DTYPES[t.dtype]
        words = 0
        if node.op == "write_row":
            continue                                    # the state's own words
        if t.name in indexed:
            stripes = node.params.get("stripes", 1)     # and a dummy row if striped
            depth = (striped_rows(t.rows, config) // stripes + 1 if stripes > 1
                     else t.rows)
            words += depth * stripes * blocks * width + 2 * 4 * blocks   # and its base
        elif t.name in sides:
            words += t.rows * blocks * width * len(sides[t.name])
        for k in kernels:
            if k.matmul is not None and k.matmul.inputs[1] is t and node.op == "const":
                units = matmul_units(k.matmul, config).units
                copies = 1 if sides.get(t.name + "@w") == "one" else max(
                    len({m for _, nb, m, _ in units if nb == block}) for _, block, _, _ in units)
                columns = sum(plan.load_columns(config, plan.block_columns(size, t.shape[1], nb))
                              for nb in range(-(-t.shape[1] // size)))
                words += -(-t.shape[0] // size) * columns * copies * width
                break
        if node.op == "requant":
            words += 2 * 2 * blocks * 4
        if words:
            needs.append((t, words))
    return needs


def _check_memory(graph, kernels, sides, config):
    capacity = 2 * config.mem_slices * config.mem_words
    needs = _words_needed(graph, kernels, sides, config)
    if sum(w for _, w in needs) > capacity:
        # One copy of every activation before giving up.
        for name in list(sides):
            sides[name] = sides[name][:1]
        for k in kernels:
            if k.matmul is not None:
                sides[k.matmul.inputs[1].name + "@w"] = "one"
        needs = _words_needed(graph, kernels, sides, config)
    used = 0
    for tensor, words in needs:
        if used + words > capacity:
            raise CompileError(
                f"tensor {tensor.name!r} ({tensor.nbytes} bytes) does not fit: its layout needs "
                f"{words} words of {config.lanes} bytes, {capacity - used} of the "
                f"configuration's {capacity} words ({2 * config.mem_slices} MEM slices x "
                f"{config.mem_words}) are left")
        used += words


def compile_graph(graph, config, *, check=True):
    """Compile ``graph`` for ``config``: tiling, memory allocation, streams and the static
    schedule of every queue.

    Parameters
    ----------
    graph : Graph
    config : str or Config
    check : bool
        Run the static checker (``firmware.checker``) on the result and raise if it rejects it
        (a compiler bug); slow for programs of hundreds of thousands of instructions.

    Returns
    -------
    CompiledProgram

    Raises
    ------
    CompileError
        Before any code is emitted, naming the node or tensor: shapes, types, unsupported
        operations (raised while the graph is built), a tensor that does not fit in memory, a
        queue longer than ``queue_depth`` that ``ifetch`` cannot feed in time
        (:mod:`~opentsp.compiler.fetch`).
    """
    chip, scheduler, stores, inputs, data_of = _schedule(graph, config)
    config = chip.config
    image, asm, end = _emit(graph, chip, scheduler, data_of)
    cycles = end + config.superlanes - 1 + isa.DRAIN
    program = CompiledProgram(graph, config, image, asm, cycles, scheduler.mac_ops, stores,
                              inputs)
    if check:
        errors = run_checker(image)
        if errors:
            raise RuntimeError(f"compiler bug: the checker rejects the program of graph "
                               f"{graph.name!r}: {errors[0]}")
    return program


def _schedule(graph, config):
    """Check, plan, place and schedule: ``(chip, scheduler, stores, inputs, data_of)``."""
    if not isinstance(graph, Graph):
        raise CompileError(f"graph must be a Graph, not {graph!r}")
    try:
        config = get_config(config)
    except ValueError as error:
        raise CompileError(str(error)) from None
    if not isinstance(config, Config):
        raise CompileError(f"config must be a configuration name or Config, not {config!r}")
    if not graph.outputs:
        raise CompileError(f"graph {graph.name!r} has no outputs (g.output)")
    _check_floating_point(graph, config)
    graph = lower(graph, config)
    _check_float_matmuls(graph, config)
    kernels = build_kernels(graph)
    sides = _sides_for(graph, kernels, config)
    _check_memory(graph, kernels, sides, config)
    chip = ChipResources(config)
    stores, inputs, data_of = place_static(graph, kernels, chip, sides)
    scheduler = Scheduler(chip, stores, _loaded_rows(graph))
    for kernel in kernels:
        tail_sides = sides.get(kernel.tail.name, ["W"])
        if kernel.matmul is not None:
            stores[kernel.tail.name] = scheduler.matmul(kernel, tail_sides)
        elif kernel.indexed is not None:
            stores[kernel.tail.name] = schedule_indexed(scheduler, kernel)
        else:
            stores[kernel.tail.name] = scheduler.vxm(kernel, tail_sides)
    return chip, scheduler, stores, inputs, data_of


def _loaded_rows(graph):
    """Names of the computed tensors whose rows a matmul loads as its weights (through a
    ``transpose`` view): ``Scheduler`` stores them where ``lw`` can take them side by side."""
    bases = view_bases(graph)
    ops = {n.name: n.op for n in graph.nodes}
    return {b for node in graph.nodes
            if node.op == "matmul" and node.inputs[1].node.op == "transpose"
            for b in bases[node.inputs[1].name]
            if ops[b] not in ("input", "const", "state", "write_row")}


def _check_floating_point(graph, config):
    """Refuse an operation on floats for a chip built without floating point (its VXM would
    refuse every float instruction)."""
    if config.floating_point:
        return
    for node in graph.nodes:
        if node.op not in ("input", "const") and any(
                t.dtype in FLOATS for t in (node.output, *node.inputs)):
            raise CompileError(f"{node.describe()}: configuration {config.name!r} is built "
                               f"without floating point (Config.floating_point)")


def _check_float_matmuls(graph, config):
    """Refuse a float16 / bfloat16 matmul whose x the chip computes when K is not a multiple of
    ``mxm_size``: the MXM multiplies the lanes of x past column K by zero weights, and a stored
    result's lanes there hold whatever the VXM made of the padding (``1/0``, an ``exp`` that
    overflows, a stale plane row: infinities and NaN), where 0 x inf is NaN. An input's or a
    constant's lanes there are zero."""
    size = config.mxm_size
    for node in graph.nodes:
        if node.op != "matmul" or node.output.dtype != "float32":
            continue
        x = node.inputs[0]
        k = x.shape[1]
        if x.node.op not in ("input", "const") and k % size:
            raise CompileError(
                f"{node.describe()}: x {x.name!r} is computed on the chip and K = {k} is not a "
                f"multiple of mxm_size {size}: the MXM would multiply the lanes past its last "
                f"column (whatever the VXM left there, infinities and NaN included) by zero "
                f"weights; make K a multiple of {size} or x an input or constant")


def _emit(graph, chip, scheduler, data_of):
    """The image, the assembly text and the last ``end`` slot."""
    config = chip.config
    lines = _header(graph, chip, data_of)
    names = [s.name for s in isa.queues(config)]
    merged = {name: merge_queue(name, chip.slots.get(name, {}), config) for name in names}
    long = [name for name in names if needs_fetch(merged[name], config)]
    words = {name: queue_words(table) for name, table in merged.items()}
    fetched = {name: plan_fetch(chip, scheduler, name, merged[name], long, words)
               for name in long}
    queues, data, last_end = [], {}, 0
    for name in names:
        if name in fetched:
            program, body, slot = _fetched_queue(chip, fetched[name], data)
        else:
            table = merge_queue(name, chip.slots.get(name, {}), config)   # perhaps fetch reads
            program, body, slot = _preloaded_queue(table)
            if len(program) > config.queue_depth:
                raise CompileError(
                    f"graph {graph.name!r} does not fit: the queue of {name} needs "
                    f"{len(program)} words, configuration {config.name!r} holds "
                    f"{config.queue_depth} (queue_depth), and it cannot be fetched: "
                    + ("it feeds the fetches of " + ", ".join(long) if long
                       else "no queue needs more"))
        last_end = max(last_end, slot)
        queues.append(program)
        if body:
            lines += ["", f".queue {name}"] + body
    data.update(chip.data)
    image = Image(config, queues, {k: np.asarray(v, dtype=np.uint8) for k, v in data.items()})
    return image, "\n".join(lines) + "\n", last_end


def _header(graph, chip, data_of):
    """The assembly's comment header, ``.config`` and the ``.data`` of every constant."""
    config = chip.config
    lines = [f"; graph {graph.name!r} compiled by opentsp.compiler for configuration "
             f"{config.name!r}"]
    for node in graph.nodes:
        args = ", ".join(t.name for t in node.inputs)
        lines.append(f";   {node.name} = {node.op}({args}) -> {node.output.dtype} "
                     f"{node.output.shape}")
    for name, tensor in graph.outputs.items():
        lines.append(f";   output {name} = {tensor.name}")
    if CONFIGS.get(config.name) == config:
        lines.append(f".config {config.name}")
    mems = isa.mem_slices(config)
    if chip.data:
        lines.append("")
    for (mem, addr) in sorted(chip.data):
        values = ", ".join(str(int(v)) for v in chip.data[(mem, addr)])
        lines.append(f".data {mems[mem].name}, {addr}, u8: {values}    ; "
                     f"{data_of[(mem, addr)]}")
    return lines


def _preloaded_queue(table):
    """A queue that fits: its words, its assembly (``.at`` per instruction) and the cycle of
    its ``end``."""
    program, body, slot, busy = [], [], 0, 0
    for cycle in sorted(table):
        instr, comment, length = table[cycle]
        _pad(program, cycle - slot)
        program.append(instr)
        body.append(f".at {cycle}")
        body.append(f"    {str(instr):<28} ; {comment}" if comment else f"    {instr}")
        slot, busy = cycle + 1, max(busy, cycle + length)
    if busy > slot:     # the last sequence's elements run before the queue's end
        _pad(program, busy - slot)
        body += [f".at {busy}", "    end"]
        slot = busy
    program.append(isa.encode("end"))
    return program, body, slot


def _fetched_queue(chip, fetched, data):
    """A queue longer than ``queue_depth`` (:mod:`~opentsp.compiler.fetch`): its preloaded
    words, its assembly (every word, ``.fetched`` where each block starts) and the cycle of its
    ``end``; the fetched words go into ``data``."""
    config = chip.config
    blocks = {block.first: block for block in fetched.blocks}
    body, where = [], None
    for index, (instr, comment, slot) in enumerate(fetched.words):
        block = blocks.get(index)
        if block is not None:
            where = (block, block.first)
            body.append(f".fetched [{', '.join(block.mems)}], {block.addr}")
        if where is not None:
            block, first = where
            word = instr.encode()
            for i, mem in enumerate(block.mems):
                lanes = np.zeros(config.lanes, dtype=np.uint8)
                lanes[0] = (word >> (8 * i)) & 0xFF
                data[(chip.mem_index[mem], block.addr + index - first)] = lanes
        note = f"cycle {slot}" + (f": {comment}" if comment else "")
        body.append(f"    {str(instr):<28} ; {note}")
    words = [instr for instr, _, _ in fetched.words]
    return words[:fetched.preload], body, fetched.words[-1][2]


def _pad(program, gap):
    """``nop`` runs for ``gap`` idle slots."""
    while gap > 0:
        count = min(gap, _MAX_NOP)
        program.append(isa.encode("nop", count=count))
        gap -= count


def predict(graph, config):
    """Schedule ``graph`` without emitting a program: the exact cycle count the schedule has,
    for programs too long for a queue (no ``queue_depth`` check, no image, no checker).

    Returns
    -------
    dict
        ``predicted_cycles``, ``mac_ops``, ``mxm_utilisation`` and ``queue_words`` (the longest
        queue's preloaded words: instructions, ``nop`` runs and ``end``).
    """
    chip, scheduler, _, _, _ = _schedule(graph, config)
    config = chip.config
    last_end, longest = 0, 1
    for name, table in chip.slots.items():
        if table:
            merged = merge_queue(name, table, config)
            last_end = max(last_end, max(cycle + merged[cycle][2] for cycle in merged))
            longest = max(longest, queue_words(merged))
    cycles = last_end + config.superlanes - 1 + isa.DRAIN
    return {"predicted_cycles": cycles, "mac_ops": scheduler.mac_ops,
            "mxm_utilisation": scheduler.mac_ops / (cycles * 2 * config.mxm_planes
                                                    * config.mxm_size ** 2),
            "queue_words": longest}


def derive_config(base, name, **changes):
    """A configuration derived from ``base`` (for benchmarks), e.g. more words per slice."""
    return replace(get_config(base), name=name, **changes)
