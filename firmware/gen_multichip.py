"""Multi-chip example programs (docs/multichip.md), as system sources for
:func:`opentsp.firmware.system.assemble_system`.

* :func:`ring_relay` (``ringN``): chip 0 puts the vector ``X`` on the ring; every other chip
  deskews from the chip before it, takes the vector at its exact arrival, doubles it on its
  VXM and passes it on; chip 0 takes it back (``2**(N-1) X``, wrapping int8) at the end of its
  window (``N`` link windows: it is not on the deskew chain's last link) and stores it.
* :func:`full_gather` (``fullN``): chip 0 marks on its link to every other chip and sends each
  ``X``; chip ``k`` deskews on that link, doubles the vector and sends it back on the same
  cable (arriving within two windows), and chip 0 stores every answer.

Every time is written out with :mod:`opentsp.isa`'s link timing, so the sources hold for any
configuration with links whose chips have at least four MEM slices a side. ``python -m
opentsp.firmware.gen_multichip`` writes ``firmware/examples/multichip/``.
"""

import argparse
from pathlib import Path

import numpy as np

from opentsp import isa
from opentsp.config import get_config
from opentsp.topology import full, ring

__all__ = ["X", "ring_relay", "full_gather", "expected", "EXAMPLES", "main"]

#: The vector chip 0 sends (int8, one per lane of the ``c2c`` chip; tiled for wider chips).
X = np.array([1, 2, 3, 4, 5, -6, 7, -128], dtype=np.int8)
#: Where the examples go.
EXAMPLES = Path(__file__).parent / "examples" / "multichip"
_SEND = 10          # chip 0's first data frame (after its marks)


def _vector(config):
    return np.resize(X, config.lanes)


def expected(config, name, chips):
    """``{(chip, MEM slice, word): int8 vector}`` that a correct run leaves, from numpy."""
    x = _vector(config).astype(np.int64)
    if name == "ring":
        return {(0, "MEM_W3", 7): (x << (chips - 1)).astype(np.int8)}   # numpy wraps to int8
    sides = {cable.b.chip: cable.a.side for cable in full(chips, config).cables
             if cable.a.chip == 0}
    return {(0, _HOME[sides[k] == "C2C_E"][0], 8 + k): (2 * x).astype(np.int8)
            for k in range(1, chips)}


class _Chip:
    """Lines of one chip's section, queue by queue, in any order."""

    def __init__(self, config):
        self.config, self.queues = config, {}

    def at(self, queue, cycle, line):
        self.queues.setdefault(queue, []).append((cycle, line))

    def text(self, chip, deskew=None, data=()):
        lines = [f".chip {chip}", *data]
        names = [s.name for s in isa.queues(self.config)]
        for name in names:
            items = sorted(self.queues.get(name, []), key=lambda item: item[0])
            if deskew is not None:
                first = "    deskew " + str(deskew[1]) if name == deskew[0] else "    sync"
                lines += [f".queue {name}", first]
            elif items:
                lines.append(f".queue {name}")
            for cycle, line in items:
                lines += [f".at {cycle}", f"    {line}"]
        return "\n".join(lines)


def _header(config, topology):
    values = ", ".join(str(int(v)) for v in _vector(config))
    return (f".config {config.name}\n.topology {topology.name}\n"
            f".equ X_WORD, 0\n"), values


def _double_and_send(config, chip, arrival, recv_side, send_side, link):
    """``chip`` takes a frame on ``recv_side`` in cycle ``arrival``, doubles it on the VXM and
    sends it on ``send_side``'s ``link``; returns the send's cycle."""
    positions = {s.name: s.position for s in isa.floorplan(config)}
    vxm = positions["VXM"]
    inward = "e1" if recv_side == "C2C_W" else "w1"
    outward = "e2" if send_side == "C2C_E" else "w2"
    add = arrival + 1 + abs(vxm - positions[recv_side])
    send = add + 1 + abs(positions[send_side] - vxm)
    chip.at(recv_side, arrival, f"recv {inward}, {link if recv_side == send_side else 0}")
    chip.at("VXM", add, f"add.i8 {outward}, {inward}, {inward}")
    chip.at(send_side, send, f"send {link}, {outward}")
    return send


def ring_relay(chips, config=None):
    """The ``ringN`` relay's system source (see the module's docstring)."""
    config = get_config(config or "c2c")
    topology = ring(chips, config)
    header, values = _header(config, topology)
    positions = {s.name: s.position for s in isa.floorplan(config)}
    data = _Chip(config)
    data.at("C2C_E", 0, "mark 0")
    hops = positions["C2C_E"] - positions["MEM_E3"]
    data.at("MEM_E3", _SEND - 1 - hops, "read e0, X_WORD")
    data.at("C2C_E", _SEND, "send 0, e0")
    sections, send, release = [], _SEND, isa.c2c_release(config, 0)
    for chip in range(1, chips):
        relay = _Chip(config)
        if chip < chips - 1:
            relay.at("C2C_E", release, "mark 0")        # the next chip's deskew
            release = isa.c2c_release(config, release)
        send = _double_and_send(config, relay, isa.c2c_arrival(config, isa.FrameKind.DATA,
                                                               send), "C2C_W", "C2C_E", 0)
        sections.append(relay.text(chip, deskew=("C2C_W", 0)))
    home = isa.c2c_arrival(config, isa.FrameKind.DATA, send, excess=chips * config.c2c_window)
    data.at("C2C_W", home, "recv e1, 0")
    data.at("MEM_W3", home + 1 + positions["MEM_W3"] - positions["C2C_W"], "write 7, e1")
    first = data.text(0, data=[f".data MEM_E3, X_WORD, i8: {values}"])
    return header + first + "\n" + "\n".join(sections) + "\n"


# chip 0's answers from chip k come in on a C2C_E link (k odd) or C2C_W.0 (k = 2): the MEM
# slice that stores them and the stream they travel on
_HOME = {True: ("MEM_E3", "w1"), False: ("MEM_W3", "e1")}


def full_gather(chips, config=None):
    """The ``fullN`` gather's system source (see the module's docstring)."""
    config = get_config(config or "c2c")
    topology = full(chips, config)
    header, values = _header(config, topology)
    positions = {s.name: s.position for s in isa.floorplan(config)}
    ports = {cable.b.chip: (cable.a, cable.b) for cable in topology.cables if cable.a.chip == 0}
    lead = _Chip(config)
    mark_at, sends = {"C2C_E": 0, "C2C_W": 0}, {}
    for k in range(1, chips):
        port = ports[k][0]
        lead.at(port.side, mark_at[port.side], f"mark {port.link}")
        mark_at[port.side] += 1
    source = {"C2C_E": ("MEM_E3", "e0"), "C2C_W": ("MEM_W3", "w0")}
    cycle = {"C2C_E": _SEND, "C2C_W": _SEND}
    frame = isa.c2c_frame_cycles(config, isa.FrameKind.DATA)
    for k in range(1, chips):
        port = ports[k][0]
        mem, stream = source[port.side]
        sends[k] = cycle[port.side]
        hops = abs(positions[port.side] - positions[mem])
        lead.at(mem, sends[k] - 1 - hops, f"read {stream}, X_WORD")
        lead.at(port.side, sends[k], f"send {port.link}, {stream}")
        cycle[port.side] += frame
    sections = []
    for k in range(1, chips):
        mine, theirs = ports[k][1], ports[k][0]
        chip = _Chip(config)
        arrival = isa.c2c_arrival(config, isa.FrameKind.DATA, sends[k])
        back = _double_and_send(config, chip, arrival, mine.side, mine.side, mine.link)
        sections.append(chip.text(k, deskew=(mine.side, mine.link)))
        home = isa.c2c_arrival(config, isa.FrameKind.DATA, back, excess=2 * config.c2c_window)
        mem, stream = _HOME[theirs.side == "C2C_E"]
        home += k           # one recv a cycle on a slice
        lead.at(theirs.side, home, f"recv {stream}, {theirs.link}")
        lead.at(mem, home + 1 + abs(positions[mem] - positions[theirs.side]),
                f"write {8 + k}, {stream}")
    first = lead.text(0, data=[f".data {mem}, X_WORD, i8: {values}"
                               for mem in ("MEM_E3", "MEM_W3")])
    return header + first + "\n" + "\n".join(sections) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="write firmware/examples/multichip/")
    parser.add_argument("--out", type=Path, default=EXAMPLES)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (("ring2_relay.s", ring_relay(2)), ("ring4_relay.s", ring_relay(4)),
                       ("full4_gather.s", full_gather(4))):
        (args.out / name).write_text(text)
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
