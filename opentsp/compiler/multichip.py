"""Work split across chips: each chip runs a compiled graph (a *stage*), and tensors move
between chips over the links (docs/multichip.md, "The compiler across chips").

:func:`pipeline` splits a stack of layers by depth over a ring (chip ``k`` runs stage ``k``
and sends its output to chip ``k + 1``); :func:`column_parallel` splits a layer by columns over
fully connected chips (chip 0 sends the input to every chip, each computes its columns). Both
build on :func:`compose`, which takes any stages and transfers:

* every stage is compiled on its own (:func:`opentsp.compiler.compile_graph`) and runs as one
  block of cycles ``T .. T + D`` on its chip (``D`` its predicted cycles), its queues shifted;
* a transferred tensor is read from the sender's memory after the sender's stage (or, for a
  host input, before it), sent one byte plane a frame, and written by the receiver at its own
  stage's input words before its stage starts (the *landing*);
* chip 0 leads; every other chip deskews on the cable of its first incoming transfer, and the
  chip at the other end marks it: frames on that cable land exactly, the others at the end of
  their window (:func:`opentsp.isa.c2c_arrival` plus the window the deskews leave).

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
    """

    def __init__(self, topology, stages, images, releases, host_inputs):
        self.topology, self.stages, self.images = topology, stages, images
        self.releases, self.host_inputs = releases, host_inputs
        self.predicted_cycles = [_predict(image, release)
                                 for image, release in zip(images, releases, strict=True)]

    @property
    def system(self):
        """The :class:`opentsp.firmware.system.SystemProgram` (for :func:`check_system`)."""
        return SystemProgram(self.topology, [Program(image, deskew=release) for image, release
                                             in zip(self.images, self.releases, strict=True)])

    def images_for(self, inputs):
        """Every chip's image with ``inputs`` (``{chip: {name: ndarray}}``) placed."""
        images = []
        for chip, (stage, image) in enumerate(zip(self.stages, self.images, strict=True)):
            given = inputs.get(chip, {})
            names = self.host_inputs.get(chip, [])
            if sorted(given) != sorted(names):
                raise CompileError(f"chip {chip}: the host places inputs {sorted(names)}, not "
                                   f"{sorted(given)}")
            placed = stage.image_for({**_zeros(stage), **given})    # landed ones: zeros
            images.append(Image(image.config, image.queues, dict(placed.data)))
        return images

    def run_golden(self, inputs, **kwargs):
        """``(outputs per chip, cycles per chip)`` from the multi-chip golden model
        (``kwargs``: :func:`opentsp.sim.system.run_system`'s latencies, starts, ...)."""
        result = run_system(self.images_for(inputs), self.topology, **kwargs)
        outputs = [stage.outputs(chip.memories) for stage, chip in
                   zip(self.stages, result.chips, strict=True)]
        return outputs, result.cycles


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
    """``[(plane number, [(mem, addr) of every copy])]`` of tensor ``name`` of ``stage``."""
    tensors = {**stage.graph.inputs, **stage.graph.outputs}
    store = (stage._inputs.get(name) if name in stage.graph.inputs
             else stage._stores[tensors[name].name])
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
        Each between chips joined by a cable; a chip's first incoming transfer (in list order)
        is the one it deskews on; chip 0 has none.
    host_inputs : dict
        ``{chip: [input names]}`` placed by the host; every other input is transferred.

    Raises
    ------
    CompileError
        Chips without a cable between them, an input neither placed nor transferred, a chip
        that is not reached from chip 0.
    """
    config = topology.config
    if len(graphs) != topology.chips:
        raise CompileError(f"{topology.name}: {topology.chips} chips, {len(graphs)} graphs")
    stages = [compile_graph(graph, config) for graph in graphs]
    links = _links(topology, transfers)
    _check_inputs(stages, transfers, host_inputs)
    chips = [_Chip(config) for _ in stages]
    parents = {}
    for transfer in transfers:
        parents.setdefault(transfer.dst, links[transfer])
    if 0 in parents:
        raise CompileError("chip 0 leads: it takes no transfer before its stage")
    order = _order(topology.chips, transfers)
    excess, releases = {0: Counter()}, [None] * topology.chips
    for chip in order[1:]:          # marks first: a link carries its mark before any data
        sender, _ = parents[chip]
        excess[chip] = excess[sender.chip] + Counter({sender: 1})
        mark = _mark(chips[sender.chip], sender, releases[sender.chip])
        releases[chip] = isa.c2c_release(config, mark)
        chips[chip].start = releases[chip]
    for chip in order:
        _land(chips[chip], stages[chip], chip, transfers, links, excess, chips)
        _send_host_inputs(chips[chip], stages[chip], chip, transfers, links)
        _begin(chips[chip], stages[chip])
        _send_outputs(chips[chip], stages[chip], chip, transfers, links)
    images = [_image(chips[k], stages[k], parents.get(k), releases[k])
              for k in range(len(stages))]
    program = MultiChipProgram(topology, stages, images, releases, host_inputs)
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
    for chip, stage in enumerate(stages):
        landed = {t.input for t in transfers if t.dst == chip}
        placed = set(host_inputs.get(chip, []))
        missing = set(stage.graph.inputs) - landed - placed
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


def _send_host_inputs(chip, stage, number, transfers, links):
    """Host inputs go out before the stage (which starts after their last read)."""
    for transfer in transfers:
        if transfer.src == number and transfer.tensor in stage.graph.inputs:
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

