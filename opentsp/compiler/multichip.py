"""Work split across chips: each chip runs a compiled graph (a *stage*), and tensors move
between chips over the links (docs/multichip.md, "The compiler across chips").

:func:`pipeline` splits a stack of layers by depth over a ring (chip ``k`` runs stage ``k``
and sends its output to chip ``k + 1``); :func:`column_parallel` splits a layer by columns over
fully connected chips (chip 0 sends the input to every chip, each computes its columns). Both
build on :func:`compose`, which takes any stages and transfers:

* every stage is compiled on its own (:func:`opentsp.compiler.compile_graph`) and runs as one
  block of cycles ``T .. T + D`` on its chip (``D`` its predicted cycles), its queues shifted;
* a transferred tensor is read from the sender's memory after the sender's stage if it is an
  output of the stage, and before the stage if it is an input the host placed or a state (as
  the previous run left it), sent one byte plane a frame, and written by the receiver at its
  own stage's input words before its stage starts (the *landing*);
* chip 0 leads; every other chip deskews on the cable of its first incoming transfer from a
  chip reached before it, and the chip at the other end marks it: frames on that cable land
  exactly, the others at the end of their window (:func:`opentsp.isa.c2c_arrival` plus the
  window the deskews leave). Chip 0 may take transfers too (a state another chip sends before
  its stage: the decoder split over two chips of :mod:`opentsp.app.lm_split`).

The result is a :class:`MultiChipProgram`: an image per chip, the predicted cycle count of every
chip (the multi-chip golden model's, exactly), and the outputs read back per chip.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from opentsp import isa, queue_timing
from opentsp.compiler.graph import CompileError
from opentsp.compiler.program import compile_graph
from opentsp.firmware.asm import Program
from opentsp.firmware.image import Image
from opentsp.firmware.system import SystemProgram, check_system
from opentsp.sim.system import run_system
from opentsp.topology import full, ring

__all__ = ["Transfer", "MultiChipProgram", "compose", "pipeline", "column_parallel"]

_MAX_NOP = (1 << isa.COUNT_BITS) - 1


@dataclass(frozen=True)
class Transfer:
    """Tensor ``tensor`` of chip ``src`` (an output of its stage, or one of its inputs, which
    the host places) becomes input ``input`` of chip ``dst``'s stage."""
    src: int
    tensor: str
    dst: int
    input: str


class MultiChipProgram:
    """Per chip: its stage (:class:`opentsp.compiler.program.CompiledProgram`), its image and
    its predicted cycle count, in the common time of the deskews.

    Attributes
    ----------
    topology : opentsp.topology.Topology
    stages : list
    images : list of opentsp.firmware.image.Image
        The programs with constants placed, inputs not.
    releases : list
        Each chip's deskew release (None for chip 0).
    predicted_cycles : list of int
    host_inputs : dict
        ``{chip: [input names]}`` the host places.
    transfers : list of Transfer
    stage_order : list of int
        The chips in the order their stages can run one after the other (every transfer after
        a stage goes to a chip later in the list).
    """

    def __init__(self, topology, stages, images, releases, host_inputs, transfers,
                 stage_order):
        self.topology, self.stages, self.images = topology, stages, images
        self.releases, self.host_inputs = releases, host_inputs
        self.transfers, self.stage_order = list(transfers), list(stage_order)
        self.predicted_cycles = [_predict(image, release)
                                 for image, release in zip(images, releases, strict=True)]

    @property
    def system(self):
        """The :class:`opentsp.firmware.system.SystemProgram` (for :func:`check_system`)."""
        return SystemProgram(self.topology, [Program(image, deskew=release) for image, release
                                             in zip(self.images, self.releases, strict=True)])

    def images_for(self, inputs, states=None):
        """Every chip's image with ``inputs`` (``{chip: {name: ndarray}}``) placed, and
        ``states`` (``{chip: {name: ndarray}}``, any of each stage's states; the others hold
        their ``init``)."""
        states = states or {}
        images = []
        for chip, (stage, image) in enumerate(zip(self.stages, self.images, strict=True)):
            given = self._host_inputs(chip, inputs)
            placed = stage.image_for({**_zeros(stage), **given},    # landed ones: zeros
                                     states.get(chip))
            images.append(Image(image.config, image.queues, dict(placed.data)))
        return images

    def _host_inputs(self, chip, inputs):
        given = inputs.get(chip, {})
        names = self.host_inputs.get(chip, [])
        if sorted(given) != sorted(names):
            raise CompileError(f"chip {chip}: the host places inputs {sorted(names)}, not "
                               f"{sorted(given)}")
        return given

    def run_golden(self, inputs, states=None, **kwargs):
        """``(outputs per chip, cycles per chip)`` from the multi-chip golden model
        (``kwargs``: :func:`opentsp.sim.system.run_system`'s latencies, starts, ...); with
        ``states``, as :meth:`images_for`."""
        outputs, _, cycles = self.run_golden_states(inputs, states, **kwargs)
        return outputs, cycles

    def run_golden_states(self, inputs, states=None, **kwargs):
        """``(outputs per chip, states per chip after the run, cycles per chip)``, as
        :meth:`run_golden`: one run of a session whose states carry over."""
        result = run_system(self.images_for(inputs, states), self.topology, **kwargs)
        memories = [chip.memories for chip in result.chips]
        return self.outputs(memories), self.states(memories), result.cycles

    def outputs(self, memories):
        """``[{output name: ndarray}]`` per chip from its memories (one array per chip, as
        :meth:`opentsp.compiler.program.CompiledProgram.outputs` reads)."""
        return [stage.outputs(m) for stage, m in zip(self.stages, memories, strict=True)]

    def states(self, memories):
        """``[{state name: ndarray}]`` per chip from its memories."""
        return [stage.states(m) for stage, m in zip(self.stages, memories, strict=True)]

    def step_reference(self, inputs, states=None):
        """``(outputs per chip, states per chip after the run)``: every stage's
        :meth:`~opentsp.compiler.program.CompiledProgram.step_reference` in
        :attr:`stage_order`, each landed input the value its transfer carries (a tensor sent
        before the stages as it was before the run, an output as its stage made it), without
        the golden model; ``inputs`` and ``states`` as in :meth:`images_for`."""
        states = states or {}
        outputs, after = [None] * len(self.stages), [None] * len(self.stages)
        for chip in self.stage_order:
            given = dict(self._host_inputs(chip, inputs))
            for t in self.transfers:
                if t.dst != chip:
                    continue
                source = self.stages[t.src].graph
                if t.tensor in source.outputs:
                    given[t.input] = outputs[t.src][t.tensor]
                elif t.tensor in source.inputs:
                    given[t.input] = inputs[t.src][t.tensor]
                else:
                    init = source.states[t.tensor].node.params["init"]
                    given[t.input] = states.get(t.src, {}).get(t.tensor, init)
            outputs[chip], after[chip] = self.stages[chip].step_reference(given,
                                                                          states.get(chip))
        return outputs, after


def _zeros(stage):
    """Zero values of every input of ``stage`` (the landed ones are written on the chip)."""
    return {name: np.zeros(t.shape, dtype=_numpy_dtype(t.dtype))
            for name, t in stage.graph.inputs.items()}


def _numpy_dtype(dtype):
    return {"int8": np.int8, "int32": np.int32, "float32": np.float32,
            "float16": np.float16}.get(dtype, np.uint16)


def _predict(image, release):
    schedules = queue_timing.schedule(image.queues, deskew=release, issues=False)
    ends = [sched.end for sched in schedules]
    if any(end is None for end in ends):
        raise CompileError("a queue of the composed program never ends")
    return max(ends) + image.config.superlanes - 1 + isa.DRAIN


def _planes(stage, name):
    """``[[(mem, addr) of every copy] per byte plane]`` of tensor ``name`` of ``stage``: an
    output (where its stage leaves it), else an input or a state (where it is before the
    stage)."""
    graph = stage.graph
    if name in graph.outputs:
        store = stage._stores[graph.outputs[name].name]
    elif name in graph.inputs:
        store = stage._inputs[name]
    else:
        store = stage._stores[graph.states[name].name]
    planes = []
    for key in sorted(store.vectors):
        copies = store.vectors[key]
        for p in range(len(copies[0].planes)):
            planes.append([copy.planes[p] for copy in copies])
    return planes


class _Chip:
    """The timed instructions of one chip around its stage."""

    def __init__(self, config):
        self.config = config
        self.positions = {s.name: s.position for s in isa.floorplan(config)}
        self.items = {}             # queue name -> [(cycle, instr)]
        self.start = 0              # the stage's first cycle
        self.stage_end = None
        self.busy = Counter()       # queue name -> first free cycle
        self.sent = {}              # Transfer -> [send cycle of each plane]

    def put(self, queue, cycle, instr):
        cycle = max(cycle, self.busy[queue])
        self.items.setdefault(queue, []).append((cycle, instr))
        self.busy[queue] = cycle + 1
        return cycle

    def hops(self, a, b):
        return abs(self.positions[a] - self.positions[b])


def _toward(side):
    """The stream direction that goes to C2C slice ``side`` (and comes from it: the other)."""
    return isa.Dir.E if side == "C2C_E" else isa.Dir.W


def compose(topology, graphs, transfers, host_inputs):
    """Compile ``graphs`` (one per chip) and join them by ``transfers``.

    Parameters
    ----------
    topology : opentsp.topology.Topology
    graphs : list of opentsp.compiler.Graph
        Chip ``k`` runs ``graphs[k]``.
    transfers : list of Transfer
        Each between chips joined by a cable. A transfer of an output goes after its stage,
        of an input or a state before it. A chip deskews on its first incoming transfer (in
        list order) from a chip reached from chip 0 before it.
    host_inputs : dict
        ``{chip: [input names]}`` placed by the host; every other input is transferred.

    Raises
    ------
    CompileError
        Chips without a cable between them, an input neither placed nor transferred, a chip
        that is not reached from chip 0, a transfer of a tensor the sender does not have or of
        another shape or dtype than the input it lands in, a landed input sent on before its
        stage, stages that wait for one another's outputs.
    """
    config = topology.config
    if len(graphs) != topology.chips:
        raise CompileError(f"{topology.name}: {topology.chips} chips, {len(graphs)} graphs")
    stages = [compile_graph(graph, config) for graph in graphs]
    links = _links(topology, transfers)
    _check_inputs(stages, transfers, host_inputs)
    chips = [_Chip(config) for _ in stages]
    order = _order(topology.chips, transfers)
    parents = _parents(order, transfers, links)
    excess, releases = {0: Counter()}, [None] * topology.chips
    for chip in order[1:]:          # marks first: a link carries its mark before any data
        sender, _ = parents[chip]
        excess[chip] = excess[sender.chip] + Counter({sender: 1})
        mark = _mark(chips[sender.chip], sender, releases[sender.chip])
        releases[chip] = isa.c2c_release(config, mark)
        chips[chip].start = releases[chip]
    for chip in order:              # what is in memory before the stages goes out first
        _send_before(chips[chip], stages[chip], chip, transfers, links)
    stage_order = _stage_order(stages, transfers)
    for chip in stage_order:
        _land(chips[chip], stages[chip], chip, transfers, links, excess, chips)
        _begin(chips[chip], stages[chip])
        _send_outputs(chips[chip], stages[chip], chip, transfers, links)
    images = [_image(chips[k], stages[k], parents.get(k), releases[k])
              for k in range(len(stages))]
    program = MultiChipProgram(topology, stages, images, releases, host_inputs, transfers,
                               stage_order)
    errors = check_system(program.system)
    if errors:
        raise CompileError(f"composed program breaks a rule: {errors[0]}")
    return program


def _links(topology, transfers):
    links = {}
    for transfer in transfers:
        for port in topology.ports:
            peer = topology.peer(port)
            if port.chip == transfer.src and peer.chip == transfer.dst:
                links[transfer] = (port, peer)
                break
        else:
            raise CompileError(f"no cable from chip {transfer.src} to chip {transfer.dst} in "
                               f"{topology.name} for {transfer.tensor!r}")
    return links


def _check_inputs(stages, transfers, host_inputs):
    for t in transfers:
        source, target = stages[t.src].graph, stages[t.dst].graph
        sent = {**source.states, **source.inputs, **source.outputs}.get(t.tensor)
        if sent is None:
            raise CompileError(f"chip {t.src}: {t.tensor!r} is no output, input or state of "
                               f"its stage")
        if t.tensor not in source.outputs and any(
                u.dst == t.src and u.input == t.tensor for u in transfers):
            raise CompileError(f"chip {t.src}: input {t.tensor!r} lands from another chip, so "
                               f"it cannot go on before its stage")
        landed = target.inputs.get(t.input)
        if landed is None:
            raise CompileError(f"chip {t.dst}: {t.input!r} is no input of its stage")
        if (landed.shape, landed.dtype) != (sent.shape, sent.dtype):
            raise CompileError(f"chip {t.dst}: input {t.input!r} is {landed.dtype} "
                               f"{landed.shape}, chip {t.src} sends {t.tensor!r} as "
                               f"{sent.dtype} {sent.shape}")
    for chip, stage in enumerate(stages):
        landed = Counter(t.input for t in transfers if t.dst == chip)
        placed = set(host_inputs.get(chip, []))
        twice = sorted(name for name, count in landed.items() if count > 1 or name in placed)
        if twice:
            raise CompileError(f"chip {chip}: inputs {twice} are given twice (by two "
                               f"transfers, or by the host and a transfer)")
        missing = set(stage.graph.inputs) - set(landed) - placed
        if missing:
            raise CompileError(f"chip {chip}: inputs {sorted(missing)} are neither placed by "
                               f"the host nor transferred")


def _order(chips, transfers):
    """Chips in an order where every sender comes before its receivers."""
    order, seen = [0], {0}
    while len(order) < chips:
        ready = sorted({t.dst for t in transfers if t.src in seen and t.dst not in seen})
        if not ready:
            raise CompileError(f"chips {sorted(set(range(chips)) - seen)} get no transfer "
                               f"from a chip before them: chip 0 must reach every chip")
        for chip in ready:
            order.append(chip)
            seen.add(chip)
    return order


def _parents(order, transfers, links):
    """``{chip: (sending Port, receiving Port)}``: the cable each chip but chip 0 deskews on,
    that of its first transfer from a chip before it in ``order``."""
    parents = {}
    for k, chip in enumerate(order[1:], start=1):
        first = next(t for t in transfers if t.dst == chip and t.src in order[:k])
        parents[chip] = links[first]
    return parents


def _stage_order(stages, transfers):
    """The chips in an order where each stage comes after the stages whose outputs it
    takes."""
    after = {chip: {t.src for t in transfers if t.dst == chip
                    and t.tensor in stages[t.src].graph.outputs} for chip in range(len(stages))}
    order = []
    while len(order) < len(stages):
        ready = [chip for chip in range(len(stages))
                 if chip not in order and after[chip] <= set(order)]
        if not ready:
            waiting = sorted(set(range(len(stages))) - set(order))
            raise CompileError(f"chips {waiting} wait for one another's outputs: the "
                               f"transfers after their stages form a cycle")
        order.append(ready[0])
    return order


def _mark(chip, port, release):
    """Put a mark on ``port`` of ``chip`` as early as it can go; its cycle."""
    first = 0 if release is None else release
    return chip.put(port.side, max(first, chip.busy[port.side]), isa.encode("mark", l=port.link))


def _window_end(config, excess, sender, receiver, issue):
    form = excess[sender.chip] + Counter({sender: 1})
    form.subtract(excess[receiver.chip])
    high = sum(max(0, c) for c in form.values()) * config.c2c_window
    return isa.c2c_arrival(config, isa.FrameKind.DATA, issue) + high


def _land(chip, stage, number, transfers, links, excess, chips):
    """Receive every tensor transferred to chip ``number`` and write it at its input's
    words."""
    config = chip.config
    for transfer in transfers:
        if transfer.dst != number:
            continue
        sender, receiver = links[transfer]
        frames = chips[transfer.src].sent[transfer]
        targets = _planes(stage, transfer.input)
        stream = isa.StreamRef(isa.Dir(1 - _toward(receiver.side)), 0)
        for issue, copies in zip(frames, targets, strict=True):
            arrival = _window_end(config, excess, sender, receiver, issue)
            recv = chip.put(receiver.side, max(arrival, chip.start),
                            isa.encode("recv", l=receiver.link, dst=stream))
            for mem, addr in copies:
                when = recv + 1 + chip.hops(receiver.side, mem)
                if chip.put(mem, when, isa.encode("write", addr=addr, s=stream)) != when:
                    raise CompileError(f"chip {number}: {mem} cannot write the plane of "
                                       f"{transfer.input!r} in cycle {when}")


def _begin(chip, stage):
    """The stage starts once everything before it is done: writes committed (2 cycles after
    the last write), every other timed instruction issued."""
    writes = [cycle for items in chip.items.values() for cycle, instr in items
              if instr.op.mnemonic == "write"]
    others = [cycle for items in chip.items.values() for cycle, _ in items]
    chip.start = max([chip.start] + [w + 2 for w in writes] + [c + 1 for c in others])
    chip.stage_end = chip.start + stage.predicted_cycles


def _send(chip, port, planes, after):
    """Read each plane (its first copy) and send it on ``port`` from cycle ``after`` on;
    ``[send cycle]``."""
    frame = isa.c2c_frame_cycles(chip.config, isa.FrameKind.DATA)
    stream = isa.StreamRef(_toward(port.side), 0)
    sent = []
    send = max(after, chip.busy[port.side])
    for copies in planes:
        mem, addr = copies[0]
        hops = chip.hops(port.side, mem)
        send = max(send, chip.busy[mem] + 1 + hops, after + 1 + hops)
        chip.put(mem, send - 1 - hops, isa.encode("read", addr=addr, s=stream))
        chip.put(port.side, send, isa.encode("send", l=port.link, s=stream))
        sent.append(send)
        send += frame
    return sent


def _send_outputs(chip, stage, number, transfers, links):
    for transfer in transfers:
        if transfer.src == number and transfer.tensor in stage.graph.outputs:
            port = links[transfer][0]
            chip.sent[transfer] = _send(chip, port, _planes(stage, transfer.tensor),
                                        chip.stage_end)


def _send_before(chip, stage, number, transfers, links):
    """Inputs the host placed and states go out before the stage (which starts after their
    last read)."""
    for transfer in transfers:
        if transfer.src == number and transfer.tensor not in stage.graph.outputs:
            port = links[transfer][0]
            chip.sent[transfer] = _send(chip, port, _planes(stage, transfer.tensor),
                                        max(chip.start, chip.busy[port.side]))


def _padding(slots):
    nops = []
    while slots > 0:
        nops.append(isa.encode("nop", count=min(slots, _MAX_NOP)))
        slots -= min(slots, _MAX_NOP)
    return nops


def _image(chip, stage, parent, release):
    """Every queue: [deskew or sync], the timed items before the stage, the stage's block,
    the timed items after it, end."""
    config = chip.config
    slices = isa.queues(config)
    schedules = queue_timing.schedule(stage.image.queues, issues=False)
    queues = []
    for q, slice_ in enumerate(slices):
        body = list(stage.image.queues[q])[:-1]         # its `end` comes last
        length = schedules[q].end
        program, cycle = [], 0
        if parent is not None:
            receiver = parent[1]
            program.append(isa.encode("deskew", l=receiver.link) if slice_.name ==
                           receiver.side else isa.encode("sync"))
            cycle = release
        items = sorted(chip.items.get(slice_.name, []), key=lambda item: item[0])
        before = [item for item in items if item[0] < chip.start]
        after = [item for item in items if item[0] >= chip.start]
        for when, instr in before:
            program += _padding(when - cycle) + [instr]
            cycle = when + instr.slots
        program += _padding(chip.start - cycle) + body
        cycle = chip.start + length
        for when, instr in after:
            if when < cycle:
                raise CompileError(f"{slice_.name}: an instruction in cycle {when} inside the "
                                   f"stage (to cycle {cycle})")
            program += _padding(when - cycle) + [instr]
            cycle = when + instr.slots
        program.append(isa.encode("end"))
        if len(program) > config.queue_depth:
            raise CompileError(f"{slice_.name}: {len(program)} instructions, more than "
                               f"queue_depth {config.queue_depth}")
        queues.append(program)
    return Image(config, queues, dict(stage.image.data))


def pipeline(graphs, config, source="x", sink="y"):
    """Stage ``k`` of ``graphs`` on chip ``k`` of a ring: chip 0 takes input ``source`` from
    the host, each stage's output ``sink`` becomes the next stage's input ``source``; the last
    chip keeps its output. A :class:`MultiChipProgram`."""
    topology = ring(len(graphs), config)
    transfers = [Transfer(k, sink, k + 1, source) for k in range(len(graphs) - 1)]
    return compose(topology, graphs, transfers, {0: [source]})


def column_parallel(graphs, config, source="x"):
    """``graphs[k]`` on chip ``k`` of fully connected chips, every one reading input ``source``,
    which the host gives chip 0 and chip 0 sends to every other chip: each chip computes its
    columns of a layer (the graphs' outputs stay on their chips)."""
    topology = full(len(graphs), config)
    transfers = [Transfer(0, source, k, source) for k in range(1, len(graphs))]
    return compose(topology, graphs, transfers, {0: [source]})

