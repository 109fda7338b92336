# amaranth: UnusedElaboratable=no
"""Several chips cabled by links in one Verilator simulation under cocotb (docs/multichip.md,
docs/verification.md "Many chips on Verilator").

The simulation top ``tsp_system`` (:func:`system_verilog`, Verilog written here) holds
``chips`` copies of ``tsp_top`` (generated with its link ports, :func:`opentsp.hdl.verilog.ports`)
and its own clock (as ``tsp_sim``). Every link port ``p`` of every chip (numbered by
:func:`link_port_index`) has

* a delay line on what it sends: the beat (``tx_valid``, ``tx_data``) that the chip drives in
  cycle ``c`` comes out of the line in cycle ``c + latency``, ``latency`` the input
  ``c{chip}_{prefix}latency`` (anywhere in ``c2c_latency .. c2c_latency + c2c_window``; another
  value sends nothing). The golden model's rule (:mod:`opentsp.sim.system`): a frame whose first
  beat leaves in cycle ``c`` is in the peer's buffer in ``c + frames cycles + latency``;
* an XOR mask on what it sends, ``c{chip}_{prefix}flip`` (``8 * c2c_bytes`` bits), applied to the
  data of the beat entering the line in every cycle it is not zero: the testbench sets it for
  one cycle to flip bits of a beat in flight;
* a source select on what it receives, ``c{chip}_{prefix}source``: 0 for nothing (rx idle), else
  ``1 +`` the index of the sending port whose line feeds its rx. The cabling is set at run time,
  so one build per ``(config, chips)`` serves every topology of that many chips (``ring4`` and
  ``full4``).

Every chip's host port is a port of its own (``c{chip}_host_addr``, ... ``c{chip}_done``,
``c{chip}_running``). The cocotb side lives in :mod:`opentsp.verif.tb.system`.
"""

import argparse
import math
import random
import tempfile
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib.wiring import In

from opentsp import isa
from opentsp.config import get_config
from opentsp.firmware import gen_multichip
from opentsp.firmware.system import assemble_system
from opentsp.hdl.top import Chip, link_port_prefix
from opentsp.hdl.verilog import PORTS, TOP_NAME, ports
from opentsp.sim.system import LinkFault, random_latencies
from opentsp.topology import SIDES, Port, Topology
from opentsp.verif import runner

__all__ = ["SYSTEM_TOPLEVEL", "link_port_index", "system_verilog", "system_vlt",
           "build_system", "run_system_rtl"]

SYSTEM_TOPLEVEL = "tsp_system"


def _link_ports(config, chips):
    """Every link port of ``chips`` chips, in index order: ``(chip, side name, link)``."""
    return [(chip, side, link) for chip in range(chips) for side in SIDES
            for link in range(config.c2c_links)]


def link_port_index(config, port):
    """The index of :class:`~opentsp.topology.Port` ``port`` among the system's link ports:
    chip by chip, ``C2C_W`` then ``C2C_E``, link by link (the order of
    :func:`opentsp.hdl.top.link_ports`)."""
    return (port.chip * len(SIDES) + SIDES.index(port.side)) * config.c2c_links + port.link


def _name(chip, side, link, what):
    return f"c{chip}_{link_port_prefix(side, link)}{what}"


def _host_ports(config):
    """``(name, is input, width)`` of the chip's host-port ports (:data:`PORTS`)."""
    result, members = [], Chip(config).signature.members
    for name in PORTS:
        member = members[name]
        result.append((name, member.flow == In, Shape.cast(member.shape).width))
    return result


def _system_inputs(config, chips):
    """``(name, width)`` of ``tsp_system``'s inputs but ``rst``, and its outputs but ``clk``."""
    high = config.c2c_latency + config.c2c_window
    nports = len(_link_ports(config, chips))
    inputs, outputs = [], []
    for chip in range(chips):
        for name, is_input, width in _host_ports(config):
            (inputs if is_input else outputs).append((f"c{chip}_{name}", width))
    for chip, side, link in _link_ports(config, chips):
        inputs += [(_name(chip, side, link, "latency"), max(1, high.bit_length())),
                   (_name(chip, side, link, "flip"), 8 * config.c2c_bytes),
                   (_name(chip, side, link, "source"), max(1, math.ceil(math.log2(nports + 1))))]
    return inputs, outputs


def _decl(direction, name, width):
    return f"  {direction} {f'[{width - 1}:0] ' if width > 1 else ''}{name};"


def system_verilog(config, chips):
    """The Verilog of ``tsp_system`` (see the module's docstring): ``chips`` copies of
    ``tsp_top`` of ``config``, a delay line, an XOR mask and a source select per link port,
    the clock generated here (period :data:`opentsp.verif.runner.CLOCK_NS`)."""
    config = get_config(config)
    if not config.c2c_links:
        raise ValueError(f"configuration {config.name!r} has no links (c2c_links = 0)")
    if not isinstance(chips, int) or chips < 1:
        raise ValueError(f"chips must be an integer >= 1, not {chips!r}")
    low, high = config.c2c_latency, config.c2c_latency + config.c2c_window
    width = 8 * config.c2c_bytes
    inputs, outputs = _system_inputs(config, chips)
    names = ["clk", "rst"] + [name for name, _ in inputs + outputs]
    lines = ["// Written by opentsp.verif.system_runner: chips cabled by delay lines.",
             "`timescale 1ns/1ps",
             f"module {SYSTEM_TOPLEVEL}({', '.join(names)});",
             "  output reg clk;", "  input rst;"]
    lines += [_decl("input", name, bits) for name, bits in inputs]
    lines += [_decl("output", name, bits) for name, bits in outputs]
    lines += ["  initial clk = 1'b0;", f"  always #{runner.CLOCK_NS // 2} clk = ~clk;"]
    link_ports = _link_ports(config, chips)
    for p, (chip, side, link) in enumerate(link_ports):
        lines += _port_verilog(p, [_name(chip, side, link, what)
                                   for what in ("latency", "flip", "source")],
                               len(link_ports), width, low, high)
    for chip in range(chips):
        connections = [".clk(clk)", ".rst(rst)"]
        connections += [f".{name}(c{chip}_{name})" for name in PORTS]
        for p, (owner, side, link) in enumerate(link_ports):
            if owner == chip:
                prefix = link_port_prefix(side, link)
                connections += [f".{prefix}tx_valid(tx_{p}[{width}])",
                                f".{prefix}tx_data(tx_{p}[{width - 1}:0])",
                                f".{prefix}rx_valid(rx_{p}[{width}])",
                                f".{prefix}rx_data(rx_{p}[{width - 1}:0])"]
        lines.append(f"  {TOP_NAME} chip{chip}(" + ", ".join(connections) + ");")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _port_verilog(p, controls, nports, width, low, high):
    """Link port ``p``: ``tx_p``/``rx_p`` (valid on top of data), the delay line of what it
    sends (``line_p_k`` holds the beat sent ``k`` cycles ago), ``out_p`` (the line at the
    latency), ``rx_p`` (the source's ``out``)."""
    latency, flip, source = controls
    lines = [f"  wire [{width}:0] tx_{p};", f"  reg [{width}:0] rx_{p};",
             f"  reg [{width}:0] out_{p};"]
    lines += [f"  reg [{width}:0] line_{p}_{k};" for k in range(1, high + 1)]
    lines.append("  always @(posedge clk) begin")
    lines.append(f"    line_{p}_1 <= rst ? {width + 1}'d0 : "
                 f"{{tx_{p}[{width}], tx_{p}[{width - 1}:0] ^ {flip}}};")
    lines += [f"    line_{p}_{k} <= rst ? {width + 1}'d0 : line_{p}_{k - 1};"
              for k in range(2, high + 1)]
    lines += ["  end", "  always @(*) begin", f"    case ({latency})"]
    lines += [f"      {k}: out_{p} = line_{p}_{k};" for k in range(low, high + 1)]
    lines += [f"      default: out_{p} = {width + 1}'d0;", "    endcase", "  end",
              "  always @(*) begin", f"    case ({source})"]
    lines += [f"      {q + 1}: rx_{p} = out_{q};" for q in range(nports)]
    lines += [f"      default: rx_{p} = {width + 1}'d0;", "    endcase", "  end"]
    return lines


def system_vlt(config, chips):
    """The Verilator control file that makes ``tsp_system``'s ports public (inputs writable,
    outputs read-only), as :func:`opentsp.verif.runner.public_ports_vlt` does for a chip."""
    inputs, outputs = _system_inputs(get_config(config), chips)
    lines = ["`verilator_config",
             "// Written by opentsp.verif.system_runner: the ports cocotb touches, public."]
    lines += [f'public_flat_rw -module "{SYSTEM_TOPLEVEL}" -var "{name}"'
              for name in ["rst"] + [name for name, _ in inputs]]
    lines += [f'public_flat_rd -module "{SYSTEM_TOPLEVEL}" -var "{name}"'
              for name in ["clk"] + [name for name, _ in outputs]]
    return "\n".join(lines) + "\n"


def _chip_verilog(config):
    chip = Chip(config)
    return runner.simulation_verilog(chip, TOP_NAME, [getattr(chip, name)
                                                      for name in ports(config)])


def build_system(config, chips, *, waves=False):
    """Build the Verilated ``tsp_system`` of ``chips`` chips of ``config`` unless an identical
    build exists (its stamp holds the freshness key of :func:`opentsp.verif.runner.model_key`,
    the wrapper and control file among its options); processes that want it at once take
    turns (the runner's build lock). Returns the build directory,
    ``BUILD_ROOT/verilator-system<chips>-<config>[-waves]``."""
    config = get_config(config)
    wrapper, vlt = system_verilog(config, chips), system_vlt(config, chips)
    runner.tool_env("verilator")
    build_dir = runner.BUILD_ROOT / (f"verilator-system{chips}-{config.name}"
                                     f"{'-waves' if waves else ''}")
    key = runner.model_key(config, runner.TOPLEVEL, "verilator", waves,
                           options=["system", wrapper, vlt])

    def compile_model(source, log):
        top = build_dir / f"{SYSTEM_TOPLEVEL}.v"
        top.write_text(wrapper)
        control = build_dir / "opentsp_system.vlt"
        control.write_text(vlt)
        finish = runner.verilator_support_files(build_dir, runner.TOPLEVEL)[1]
        from cocotb_tools.runner import get_runner

        get_runner("verilator").build(
            sources=[source, top], hdl_toplevel=SYSTEM_TOPLEVEL, build_dir=build_dir,
            build_args=[*runner.VERILATOR_ARGS, *runner.TIMING_ARGS, str(control), finish],
            timescale=runner.TIMESCALE, waves=waves, always=True, log_file=log)

    return runner.build_model(lambda: _chip_verilog(config), key, TOP_NAME, build_dir,
                              "verilator", waves, what=f"{SYSTEM_TOPLEVEL} of {chips} chips "
                              f"of config {config.name}", compile_model=compile_model)


def _port_json(port):
    return [port.chip, port.side, port.link]


def _draw_json(topology, draw):
    """A draw ``(latencies, starts, faults)`` as JSON: latencies ``{Port: cycles}`` (a port
    not named takes ``c2c_latency``), starts ``[global cycle]`` (None: all 0), faults
    :class:`~opentsp.sim.system.LinkFault`\\ s."""
    latencies, starts, faults = draw
    config = topology.config
    latencies = {port: (latencies or {}).get(port, config.c2c_latency)
                 for port in topology.ports}
    for fault in faults:
        if not isinstance(fault, LinkFault):
            raise TypeError(f"faults must hold LinkFault objects, not {fault!r}")
    return {"latencies": [[*_port_json(port), value] for port, value in latencies.items()],
            "starts": list(starts) if starts is not None else [0] * topology.chips,
            "faults": [[*_port_json(f.port), f.frame, f.bit] for f in faults]}


def run_system_rtl(images, topology, draws, *, max_cycles=100_000, memories_dir=None,
                   log_level="WARNING", waves=False):
    """Run ``images`` (one per chip) cabled as ``topology`` on the Verilated ``tsp_system``,
    once per draw, and compare every chip with the multi-chip golden model
    (:func:`opentsp.sim.system.run_system`) on the same latencies, starts and faults.

    Per draw the testbench (:mod:`opentsp.verif.tb.system`) loads every chip's image through
    its host port (memory words that hold their value already are skipped), sets the cables'
    latencies, starts chip ``i`` in global cycle ``starts[i]`` (global cycle 0 is the cycle
    after the first start write), flips the faults' bits in flight, waits until every chip is
    done, reads every chip's registers and memories back and compares: ``REG_CYCLES`` and the
    global cycle in which each chip finished, every memory word, the ECC registers and
    ``REG_STATUS``, ``REG_C2C_CRC``, ``REG_C2C_ERRORS``, ``REG_C2C_FIRST``,
    ``REG_C2C_FIRST_CYCLE``.

    Parameters
    ----------
    images : sequence of opentsp.firmware.image.Image
    topology : opentsp.topology.Topology
        The cabling (set at run time: one build per configuration and number of chips).
    draws : sequence of (latencies, starts, faults)
        ``{sending Port: cycles}``, ``[global cycle per chip]`` (or None), LinkFaults.
    max_cycles : int
        Cycles after the last start within which every chip must be done.
    memories_dir : path or None
        If given, chip ``c``'s memories after draw ``d`` are saved as ``d{d}_chip{c}.npy``.

    Returns
    -------
    list of dict
        One record per draw: ``draw``, ``match`` (all chips), ``error``, and ``chips``, per chip
        ``cycles_rtl``, ``cycles_golden``, ``finished_rtl``, ``finished_golden``,
        ``registers_rtl``, ``registers_golden`` (the six registers above), ``match``,
        ``mismatches``, ``memories`` (the ``.npy`` file or None).
    """
    if not isinstance(topology, Topology):
        raise TypeError(f"topology must be a Topology, not {topology!r}")
    config = topology.config
    images = list(images)
    if len(images) != topology.chips:
        raise ValueError(f"{topology.name}: {topology.chips} chips, {len(images)} images")
    job_draws = [_draw_json(topology, draw) for draw in draws]
    build_dir = build_system(config, topology.chips, waves=waves)
    with tempfile.TemporaryDirectory(prefix="opentsp-system-") as tmp:
        paths = []
        for chip, image in enumerate(images):
            paths.append(str(Path(tmp) / f"chip{chip}.bin"))
            image.save(paths[-1])
        job = {"config": config.to_json(), "clock_ns": runner.CLOCK_NS, "programs": [],
               "max_cycles": max_cycles, "chips": topology.chips, "name": topology.name,
               "cables": [[_port_json(c.a), _port_json(c.b)] for c in topology.cables],
               "images": paths, "draws": job_draws,
               "memories_dir": str(Path(memories_dir).resolve()) if memories_dir else None}
        env = {} if log_level is None else {"log_level": log_level}
        return runner._run_job("opentsp.verif.tb.system", SYSTEM_TOPLEVEL, build_dir, job,
                               waves=waves, **env)


def port_from_json(values):
    """A :class:`~opentsp.topology.Port` from its JSON ``[chip, side, link]``."""
    chip, side, link = values
    return Port(int(chip), str(side), int(link))



def _example_expected(path, config, chips):
    """The numpy results of example ``path`` (``ring2_relay.s``: ring, ``full4_gather.s``:
    full), or None for another program."""
    kind = Path(path).name[:4]
    return gen_multichip.expected(config, kind, chips) if kind in ("ring", "full") else None


def _numpy_ok(record, want, config):
    mems = [s.name for s in isa.mem_slices(config)]
    return all(np.array_equal(np.load(record["chips"][chip]["memories"])[
        mems.index(mem), word].view(np.int8), value) for (chip, mem, word), value in want.items())


def run_example(path, runs, seed=0, *, out=print):
    """Run the multi-chip program ``path`` (assembled by
    :func:`opentsp.firmware.system.assemble_system`) ``runs`` times on the Verilated system,
    latencies and starts drawn at random (``seed``); print a line per example: whether every
    draw matched the golden model (and the example's numpy results) and the chips' cycle
    counts, which must be the same in every draw. Returns True when all held."""
    program = assemble_system(Path(path).read_text(), filename=str(path))
    topology = program.topology
    rng = random.Random(seed)
    draws = [(random_latencies(topology, rng.randrange(1 << 30)),
              [0] + [rng.randrange(9) for _ in range(topology.chips - 1)], [])
             for _ in range(runs)]
    want = _example_expected(path, topology.config, topology.chips)
    with tempfile.TemporaryDirectory(prefix="opentsp-system-mem-") as memories:
        records = run_system_rtl(program.images, topology, draws, memories_dir=memories)
        bad = [r for r in records if r["error"] or not r["match"]
               or (want is not None and not _numpy_ok(r, want, topology.config))]
    cycles = {tuple(chip["cycles_rtl"] for chip in r["chips"]) for r in records}
    ok = not bad and len(cycles) == 1 and len(records) == runs
    out(f"{Path(path).name}: {topology.name}, {len(records)} draws on Verilator: "
        f"{'all match the golden model' if not bad else f'{len(bad)} MISMATCH'}"
        f"{' and numpy' if want is not None and not bad else ''}; cycles per chip "
        f"{' / '.join(str(list(c)) for c in sorted(cycles))}"
        f"{'' if len(cycles) == 1 else ' (DIFFER across draws)'}")
    for record in bad[:3]:
        reasons = [text for chip in record["chips"] for text in chip["mismatches"]]
        out(f"  draw {record['draw']}: {record['error'] or '; '.join(reasons)}")
    return ok


def main(argv=None):
    """``python -m opentsp.verif.system_runner SOURCE.s ... [--runs N] [--seed S]``
    (``make multichip-rtl``)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ok = True
    with runner.quiet_banners():
        for source in args.sources:
            ok = run_example(source, args.runs, args.seed) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
