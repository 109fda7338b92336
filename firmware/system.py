"""Multi-chip programs: one source with a section per chip, assembled, checked across chips
and saved as one system image (docs/multichip.md).

A system source starts with a prelude (``.config``, ``.equ``, ...) that every chip shares and a
``.topology NAME`` line (``loopback``, ``ringN``, ``fullN``), then one ``.chip N`` section per
chip, each an ordinary program (docs/assembly.md). ``.chip`` and ``.topology`` stand on lines
of their own. A chip that takes another's time starts with a ``deskew``; it is assembled once
the chip whose mark releases it is, so that its ``.at`` count from the release
(:func:`opentsp.isa.c2c_release`).

:func:`check_system` runs every chip's own checker (rules 1 to 15) and rule 16, the links
between chips: every ``recv`` takes a frame that some ``send`` of the peer chip puts on the
cable, in order, and issues no earlier than the last cycle that frame can arrive in, given the
links' latency window and the deskews that put the chips on one time; no frame can arrive at a
full buffer; every mark meets a deskew; every frame is received.
"""

import re
import struct
from collections import Counter
from dataclasses import dataclass

from opentsp import isa, queue_timing
from opentsp.config import Config, get_config
from opentsp.firmware.asm import AsmError, Loc, assemble
from opentsp.firmware.checker import check
from opentsp.firmware.image import Image, ImageError
from opentsp.topology import Port, TopologyError, get_topology

__all__ = ["SystemProgram", "SystemCheckError", "assemble_system", "check_system",
           "RULE_LINKS", "system_bytes", "load_system"]

#: Rule 16: the links between chips (see the module's docstring).
RULE_LINKS = 16
SYSTEM_MAGIC = b"TSPS"
SYSTEM_FORMAT = 1

_CHIP = re.compile(r"^\s*\.chip\s+(\S+)\s*(?:[;#].*)?$")
_TOPOLOGY = re.compile(r"^\s*\.topology\s+(\S+)\s*(?:[;#].*)?$")
_QUEUE = re.compile(r"^\s*\.queue\s+(\S+)")
_DESKEW = re.compile(r"^\s*deskew\s+(\S+?)\s*(?:[;#].*)?$")


class SystemCheckError(AsmError):
    """A broken rule of a multi-chip program, located at the offending instruction."""

    def __init__(self, loc, cause, chip, cycle, rule=RULE_LINKS):
        super().__init__(loc, cause)
        self.chip, self.cycle, self.rule = chip, cycle, rule


@dataclass
class SystemProgram:
    """Every chip's :class:`opentsp.firmware.asm.Program` and the topology joining them."""
    topology: object
    programs: list

    @property
    def images(self):
        return [program.image for program in self.programs]

    @property
    def config(self):
        return self.topology.config


def _sections(text, filename):
    """``(topology name and its Loc, {chip: [line numbers]}, prelude lines)`` of a source."""
    topology, chips, current, prelude = None, {}, None, []
    for number, line in enumerate(text.splitlines(), start=1):
        loc = Loc(filename, number, 1)
        if (match := _TOPOLOGY.match(line)) is not None:
            if topology is not None or current is not None:
                raise AsmError(loc, ".topology must come once, before the first .chip")
            topology = (match.group(1), loc)
        elif (match := _CHIP.match(line)) is not None:
            if not match.group(1).isdigit():
                raise AsmError(loc, f".chip takes a chip number, not {match.group(1)!r}")
            current = int(match.group(1))
            if current in chips:
                raise AsmError(loc, f".chip {current} comes twice")
            chips[current] = []
        elif current is None:
            prelude.append(number)
        else:
            chips[current].append(number)
    if topology is None:
        raise AsmError(Loc(filename, 1, 1), "a system source needs a .topology line "
                                            "(loopback, ringN or fullN)")
    return topology, chips, prelude


def _chip_text(lines, keep):
    """The source with only the lines in ``keep``: the others blank, so lines keep numbers."""
    return "\n".join(line if number in keep else "" for number, line in
                     enumerate(lines, start=1))


def _deskew_port(chip, lines, keep, filename):
    """The port of chip ``chip``'s ``deskew`` (None if it has none) and its Loc."""
    queue = None
    for number, line in enumerate(lines, start=1):
        if number not in keep:
            continue
        if (match := _QUEUE.match(line)) is not None:
            queue = match.group(1)
        elif (match := _DESKEW.match(line)) is not None:
            loc = Loc(filename, number, 1)
            try:
                link = int(match.group(1), 0)
            except ValueError:
                raise AsmError(loc, f"a system source names a deskew's link by number, not "
                                    f"{match.group(1)!r}") from None
            return Port(chip, queue, link), loc
    return None, None


def assemble_system(text, config=None, filename="<input>"):
    """Assemble a multi-chip source (see the module's docstring).

    Raises
    ------
    AsmError
        The first error, ``FILE:LINE:COL: error: cause`` (a chip's line numbers are the
        source's).
    """
    lines = text.splitlines()
    (name, topology_loc), chips, prelude = _sections(text, filename)
    if config is None:
        config = assemble(_chip_text(lines, set(prelude)), None, filename).config
    config = config if isinstance(config, Config) else get_config(config)
    try:
        topology = get_topology(name, config)
    except TopologyError as error:
        raise AsmError(topology_loc, str(error)) from None
    if sorted(chips) != list(range(topology.chips)):
        raise AsmError(topology_loc, f"{name} has chips 0..{topology.chips - 1}, the source "
                                     f"has sections for {sorted(chips)}")
    keeps = {chip: set(prelude) | set(numbers) for chip, numbers in chips.items()}
    deskews = {chip: _deskew_port(chip, lines, keeps[chip], filename) for chip in chips}
    programs = {}
    while len(programs) < len(chips):
        progress = False
        for chip in sorted(set(chips) - set(programs)):
            port, loc = deskews[chip]
            release = None
            if port is not None:
                peer = topology.peer(port)
                if peer is None:
                    raise AsmError(loc, f"deskew on {port}: the port has no cable in {name}")
                if peer.chip not in programs:
                    continue
                mark = _first_mark(programs[peer.chip], peer)
                if mark is None:
                    raise AsmError(loc, f"deskew on {port}: {peer} never sends a mark")
                release = isa.c2c_release(config, mark)
            programs[chip] = assemble(_chip_text(lines, keeps[chip]), config, filename,
                                      deskew=release)
            progress = True
        if not progress:
            chip = min(set(chips) - set(programs))
            raise AsmError(deskews[chip][1], f"chip {chip}'s deskew waits on chips that "
                                             f"deskew in turn: no chip leads them")
    return SystemProgram(topology, [programs[chip] for chip in sorted(programs)])


def _c2c_issues(program):
    """``{(side, mnemonic, link): [(cycle, queue, index)]}`` of a chip's C2C queues."""
    image = program.image
    slices = isa.queues(image.config)
    schedules = queue_timing.schedule(image.queues, deskew=program.deskew)
    found = {}
    for q, (slice_, sched) in enumerate(zip(slices, schedules, strict=True)):
        if slice_.kind != isa.SliceKind.C2C:
            continue
        indices = {id(instr): i for i, instr in enumerate(image.queues[q])}
        first = image.queues[q][0] if image.queues[q] else None
        if first is not None and first.op.mnemonic == "deskew":     # parks: never issued
            found[(slice_.name, "deskew", first["l"])] = [(0, q, 0)]
        for cycle, instr in sched.issues:
            key = (slice_.name, instr.op.mnemonic, instr["l"])
            found.setdefault(key, []).append((cycle, q, indices.get(id(instr))))
    return found


def _first_mark(program, port):
    marks = _c2c_issues(program).get((port.side, "mark", port.link), [])
    return marks[0][0] if marks else None


def check_system(system):
    """Every chip's rules 1 to 15 and rule 16 across chips; a list of errors (each a one-line
    :class:`opentsp.firmware.asm.AsmError`, ``chip N:`` before a chip's own), earliest first.
    """
    errors = []
    for chip, program in enumerate(system.programs):
        errors += [SystemCheckError(error.loc, f"chip {chip}: {error.cause}", chip,
                                    error.cycle, error.rule) for error in check(program)]
    errors.extend(_Links(system).errors())
    return errors


class _Links:
    """Rule 16 over a :class:`SystemProgram`."""

    def __init__(self, system):
        self.system, self.config = system, system.config
        self.issues = [_c2c_issues(program) for program in system.programs]
        self.found = []
        self._times()

    def _error(self, chip, where, cycle, cause):
        program = self.system.programs[chip]
        _, q, index = where
        loc = program.locations.get((q, index))
        error = SystemCheckError(loc, f"chip {chip}: {cause}", chip, cycle)
        self.found.append(error)

    def _times(self):
        """Each chip's time as its leader's minus a sum of link excesses: ``root[c]`` and
        ``excess[c]`` (a Counter of sending ports)."""
        topology = self.system.topology
        self.root, self.excess, self.deskew = {}, {}, {}
        for chip, issues in enumerate(self.issues):
            for (side, mnemonic, link), found in issues.items():
                if mnemonic == "deskew":
                    self.deskew[chip] = (Port(chip, side, link), found[0])
        for chip in range(topology.chips):
            self._resolve(chip, set())

    def _resolve(self, chip, seen):
        if chip in self.root:
            return
        if chip not in self.deskew or chip in seen:
            self.root[chip], self.excess[chip] = chip, Counter()
            return
        port, _ = self.deskew[chip]
        peer = self.system.topology.peer(port)
        if peer is None:
            self.root[chip], self.excess[chip] = chip, Counter()
            return
        self._resolve(peer.chip, seen | {chip})
        self.root[chip] = self.root[peer.chip]
        self.excess[chip] = self.excess[peer.chip] + Counter({peer: 1})

    def errors(self):
        for port in self.system.topology.ports:
            self._check_link(port, self.system.topology.peer(port))
        self.found.sort(key=lambda e: (e.cycle, e.chip))
        return self.found

    def _window(self, sender, receiver, issue):
        """The cycles (receiver's time) a data frame sent in ``issue`` can arrive in."""
        form = self.excess[sender.chip] + Counter({sender: 1})
        form.subtract(self.excess[receiver.chip])
        low = sum(min(0, c) for c in form.values()) * self.config.c2c_window
        high = sum(max(0, c) for c in form.values()) * self.config.c2c_window
        nominal = isa.c2c_arrival(self.config, isa.FrameKind.DATA, issue)
        return nominal + low, nominal + high

    def _check_link(self, sender, receiver):
        """Frames ``sender`` puts on its cable against ``receiver``'s recvs and deskew."""
        out = self.issues[sender.chip]
        sends = out.get((sender.side, "send", sender.link), [])
        marks = out.get((sender.side, "mark", sender.link), [])
        recvs = self.issues[receiver.chip].get((receiver.side, "recv", receiver.link), [])
        self._check_marks(sender, receiver, marks)
        if sends and self.root[sender.chip] != self.root[receiver.chip]:
            self._error(sender.chip, sends[0], sends[0][0],
                        f"send on {sender.name} in cycle {sends[0][0]} to chip "
                        f"{receiver.chip}: the two chips are not on one time (no chain of "
                        f"deskews joins them), so no recv can be timed")
            return
        windows = [self._window(sender, receiver, send[0]) for send in sends]
        for k, (send, recv) in enumerate(zip(sends, recvs, strict=False)):
            low, high = windows[k]
            if recv[0] < high:
                self._error(receiver.chip, recv, recv[0],
                            f"recv on {receiver.name} in cycle {recv[0]} takes the frame chip "
                            f"{sender.chip} sends on {sender.name} in cycle {send[0]}, which "
                            f"arrives in cycles {low}..{high}: recv in cycle {high} or later")
            depth = self.config.c2c_buffer
            if k >= depth and recvs[k - depth][0] >= low:
                self._error(receiver.chip, recvs[k - depth], low,
                            f"{receiver.name}'s buffer of {depth} frames may be full when the "
                            f"frame chip {sender.chip} sends in cycle {send[0]} arrives (cycle "
                            f"{low}): the recv in cycle {recvs[k - depth][0]} comes too late")
        for recv in recvs[len(sends):]:
            self._error(receiver.chip, recv, recv[0],
                        f"recv on {receiver.name} in cycle {recv[0]}: no frame for it (chip "
                        f"{sender.chip} sends {len(sends)} on {sender.name})")
        for send in sends[len(recvs):]:
            self._error(sender.chip, send, send[0],
                        f"send on {sender.name} in cycle {send[0]}: chip {receiver.chip} never "
                        f"receives it (it has {len(recvs)} recv on {receiver.name})")

    def _check_marks(self, sender, receiver, marks):
        deskew = self.deskew.get(receiver.chip)
        takes = deskew is not None and deskew[0] == receiver
        for k, mark in enumerate(marks):
            if k == 0 and takes:
                continue
            self._error(sender.chip, mark, mark[0],
                        f"mark on {sender.name} in cycle {mark[0]}: no deskew of chip "
                        f"{receiver.chip} on {receiver.name} waits for it (a stray mark)")


def system_bytes(system):
    """One file for a system: ``TSPS``, format, the topology's name, then each chip's image
    (:meth:`opentsp.firmware.image.Image.to_bytes`), length first."""
    name = system.topology.name.encode()
    parts = [SYSTEM_MAGIC, struct.pack("<HH", SYSTEM_FORMAT, len(name)), name,
             struct.pack("<H", len(system.programs))]
    for image in system.images:
        blob = image.to_bytes()
        parts += [struct.pack("<I", len(blob)), blob]
    return b"".join(parts)


def load_system(blob, config, topology=None):
    """The images of a system file, checked against ``config`` and ``topology`` (a
    :class:`opentsp.topology.Topology`; default: the one the file names).

    Returns
    -------
    (Topology, list of Image)

    Raises
    ------
    ImageError
        One line naming the place and the cause: not a system file, another topology, a
        chip count that is not the topology's, a chip's image refused (``chip N: ...``).
    """
    if blob[:4] != SYSTEM_MAGIC:
        raise ImageError(f"offset 0: not a system image (magic {blob[:4]!r})")
    try:
        fmt, length = struct.unpack_from("<HH", blob, 4)
        name = blob[8:8 + length].decode()
        (count,) = struct.unpack_from("<H", blob, 8 + length)
    except (struct.error, UnicodeDecodeError):
        raise ImageError("offset 4: truncated system header") from None
    if fmt != SYSTEM_FORMAT:
        raise ImageError(f"offset 4: system format {fmt}, this loader reads {SYSTEM_FORMAT}")
    try:
        named = get_topology(name, config)
    except TopologyError as error:
        raise ImageError(f"offset 8: {error}") from None
    if topology is not None and topology.name != named.name:
        raise ImageError(f"offset 8: images for topology {name!r}, the system is "
                         f"{topology.name!r}")
    topology = topology or named
    if count != topology.chips:
        raise ImageError(f"offset {8 + length}: {count} chip images for {topology.name!r}, "
                         f"which has {topology.chips} chips")
    images, offset = [], 10 + length
    for chip in range(count):
        try:
            (size,) = struct.unpack_from("<I", blob, offset)
        except struct.error:
            raise ImageError(f"offset {offset}: chip {chip}: truncated") from None
        try:
            images.append(Image.from_bytes(blob[offset + 4:offset + 4 + size], config))
        except ImageError as error:
            raise ImageError(f"chip {chip}: {error}") from None
        offset += 4 + size
    return topology, images
