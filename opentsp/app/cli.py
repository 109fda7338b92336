"""The `opentsp` command line: assemble, disassemble, simulate, generate Verilog, run on RTL.

Every subcommand takes ``--config NAME``. Errors print one line, ``opentsp: error: ...``, and
exit with status 1; no output file is left behind.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from opentsp import host_protocol, isa
from opentsp.app.board import Board, BoardError, SerialTransport
from opentsp.app.fpga import FpgaError, build, format_report
from opentsp.app.multichip import latency_regression
from opentsp.app.schedule_plot import PLOT_SUFFIXES, ScheduleError, collect, plot, text
from opentsp.app.synth import synthesize
from opentsp.config import CONFIGS, get_config
from opentsp.firmware.asm import AsmError, assemble_file
from opentsp.firmware.checker import check_or_raise
from opentsp.firmware.disasm import disassemble
from opentsp.firmware.image import Image, ImageError, write_atomically
from opentsp.firmware.system import assemble_system, check_system, system_bytes
from opentsp.hdl.verilog import generate
from opentsp.sim.model import CycleLimitError, run
from opentsp.sim.system import SystemError
from opentsp.topology import TopologyError
from opentsp.verif.runner import run_images, simulator_name

__all__ = ["main"]


class CliError(Exception):
    """A user-facing error: printed as one line."""


def _config(args):
    try:
        return get_config(args.config)
    except ValueError as error:
        raise CliError(str(error)) from None


def load_program(path, config, *, check=True):
    """An :class:`~opentsp.firmware.image.Image` from a ``.s`` (assembled and checked) or a
    ``.bin`` file."""

    path = Path(path)
    if not path.exists():
        raise CliError(f"{path}: no such file")
    if path.suffix == ".s":
        program = assemble_file(path, config)
        if check:
            check_or_raise(program)
        return program.image
    return Image.load(path, config)


def isa_table(config):
    """The instruction set as rows of ``(mnemonic, opcode, unit, latency, commit, fields)``
    strings, the header first (latencies of ``config``)."""
    rows = [("mnemonic", "opcode", "unit", "latency", "commit", "fields")]
    for op in isa.OPS:
        latency = isa.latency(op, config)
        rows.append((op.name, f"{op.opcode:#04x}", op.unit.name,
                     "-" if latency is None else str(latency),
                     "-" if op.commit is None else str(op.commit),
                     " ".join(f"{f.name}[{f.lsb + f.width - 1}:{f.lsb}]" for f in op.fields)))
    return rows


def cmd_isa(args):
    print(f"OpenTSP ISA version {isa.ISA_VERSION}: {isa.INSTR_BITS}-bit words, opcode in bits "
          f"{isa.INSTR_BITS - 1}..{isa.OPCODE_LSB}")
    config = _config(args)
    rows = isa_table(config)
    # every column two spaces wider than its widest entry, so no two run together
    widths = [max(len(row[i]) for row in rows) + 2 for i in range(len(rows[0]) - 1)]
    for row, op in zip(rows, (None, *isa.OPS), strict=True):
        line = "".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        print(line + row[-1] + (f"    (latencies of {config.name!r})" if op is None else ""))
        if op is not None:
            print(" " * widths[0] + op.doc)
    print(f"\nchaining: a VXM operand r is the result of the last VXM instruction executed "
          f"VXM_CHAIN_DISTANCE = {isa.VXM_CHAIN_DISTANCE} or more cycles before")
    print(f"\nfloorplan of {config.name!r}, west to east:")
    print("  " + " ".join(f"{s.position}:{s.name}" for s in isa.floorplan(config)))


def cmd_asm(args):
    config = _config(args)
    program = assemble_file(args.source, config)
    if not args.no_check:
        check_or_raise(program)
    output = Path(args.output or Path(args.source).with_suffix(".bin"))
    program.image.save(output)
    sizes = [len(q) for q in program.image.queues]
    print(f"{output}: {sum(sizes)} instructions in {len(sizes)} queues, "
          f"{len(program.image.data)} data words, config {config.name}")


def cmd_disasm(args):
    config = _config(args)
    text = disassemble(Image.load(args.image, config))
    if args.output:
        write_atomically(args.output, text.encode())
    else:
        sys.stdout.write(text)


def _nonzero_words(result, limit):
    lines = []
    for slice_, memory in zip(isa.mem_slices(result.config), result.memories, strict=True):
        for word in np.flatnonzero(memory.any(axis=1)):
            lines.append(f"  {slice_.name}[{word}]: {memory[word].view(np.int8).tolist()}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"  ... {len(lines) - limit} more"]
    return lines


def cmd_sim(args):
    config = _config(args)
    image = load_program(args.program, config)
    wall = time.perf_counter()
    result = run(image, trace=bool(args.trace), max_cycles=args.max_cycles)
    wall = time.perf_counter() - wall
    if args.trace:
        for record in result.trace:
            if record.issued:
                print(record)
    print(f"config {config.name}: {result.cycles} cycles "
          f"({result.cycles / config.clock_mhz:.3f} us at {config.clock_mhz:g} MHz), "
          f"golden model {result.cycles / max(wall, 1e-9):,.0f} cycles/s")
    print("non-zero memory words (as int8):")
    print("\n".join(_nonzero_words(result, args.limit)) or "  none")
    if args.dump:
        np.save(args.dump, result.memories)
        print(f"memories saved to {args.dump}")


def cmd_verilog(args):
    config = _config(args)
    text = generate(config)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(output, text.encode())
    print(f"{output}: Verilog of tsp_top for config {config.name} ({len(text.splitlines())} "
          f"lines)")


def cmd_run(args):
    config = _config(args)
    image = load_program(args.program, config)   # refuses foreign images before simulating
    name = Path(args.program).stem
    with tempfile.TemporaryDirectory(prefix="opentsp-") as tmp:
        path = Path(tmp) / f"{name}.bin"
        image.save(path)
        try:
            chosen = simulator_name(args.simulator)     # --simulator, else $SIM, else verilator
        except ValueError as error:
            raise CliError(str(error)) from None
        print(f"building (if needed) and running {name} on the RTL ({chosen}, config "
              f"{config.name})...", flush=True)
        try:
            records = run_images(config, [(name, path)], simulator=args.simulator,
                                 max_cycles=args.max_cycles, log_level="WARNING")
        except (RuntimeError, ValueError) as error:     # no simulator, a failed build, ...
            raise CliError(f"{args.program}: RTL run failed: {error}") from None
    record = records[0]
    simulator = record["simulator"]     # the one run_images used: --simulator, $SIM, default
    print(f"\n== OpenTSP run: {args.program} ==")
    print(f"config          {config.name}: {config.superlanes} superlanes x "
          f"{config.lanes_per_superlane} lanes, {config.streams}+{config.streams} streams, "
          f"{2 * config.mem_slices} MEM slices x {config.mem_words} words")
    print(f"simulator       {simulator}")
    if record["error"]:
        raise CliError(f"{args.program}: RTL run failed: {record['error']}")
    same = record["cycles_rtl"] == record["cycles_golden"]
    print(f"cycles          golden {record['cycles_golden']}, RTL {record['cycles_rtl']} "
          f"({'exact match' if same else 'MISMATCH'})")
    print(f"memories        {'match bit for bit' if record['match'] else 'MISMATCH'}")
    for line in record["mismatches"]:
        print(f"                {line}")
    seconds = record["seconds"]
    rate = record["cycles_rtl"] / seconds if seconds else float("nan")
    print(f"RTL sim speed   {rate:,.0f} cycles/s ({simulator}, free-running to done)")
    if not record["match"]:
        raise CliError(f"{args.program}: RTL and golden model disagree")


def cmd_synth(args):
    config = _config(args)
    print(synthesize(config))


def cmd_schedule(args):
    config = _config(args)
    path = Path(args.program)
    if path.suffix not in (".s", ".bin"):
        raise CliError(f"{path}: program must be a .s or .bin file, not {path.suffix!r}")
    if args.plot is None and not args.text:
        raise CliError("schedule needs --plot FILE.png|svg or --text")
    if args.plot is not None and Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        raise CliError(f"{args.plot}: plot file must end in .png or .svg, "
                       f"not {Path(args.plot).suffix or '(no suffix)'!r}")
    schedule = collect(load_program(path, config), name=path.stem, max_cycles=args.max_cycles)
    if args.text:
        sys.stdout.write(text(schedule))
    if args.plot is not None:
        try:
            plot(schedule, args.plot)
        except ScheduleError as error:
            raise CliError(str(error)) from None
        print(f"{args.plot}: schedule of {path.name} ({schedule.cycles} cycles, "
              f"{len(schedule.issues)} instructions)")


def cmd_fpga(args):
    try:
        summary = build(args.board, _config(args), out_dir=args.output, baud=args.baud,
                        seed=args.seed, clock_mhz=args.clock_mhz, router=args.router,
                        placer=args.placer, pnr_only=args.pnr_only,
                        echo=lambda line: print(line, flush=True))
    except FpgaError as error:
        raise CliError(str(error)) from None

    print(format_report(summary))
    print(f"bitstream {summary['bitstream']}")


def _board_words(config, spec):
    """``MEM:START:COUNT`` (memory number, first word, words) -> list of (mem, word)."""

    if spec is None:
        return host_protocol.memory_words(config)
    try:
        mem, start, count = (int(part, 0) for part in spec.split(":"))
    except ValueError:
        raise CliError(f"--words must be MEM:START:COUNT, not {spec!r}") from None
    mems = len(isa.mem_slices(config))
    if not (0 <= mem < mems and 0 <= start and count > 0 and start + count <= config.mem_words):
        raise CliError(f"--words {spec!r} is outside {mems} memories of {config.mem_words} "
                       f"words")
    return [(mem, word) for word in range(start, start + count)]


def cmd_board(args):
    config = _config(args)
    image = load_program(args.program, config) if getattr(args, "program", None) else None
    words = _board_words(config, getattr(args, "words", None))
    try:
        transport = SerialTransport(args.port, args.baud)
        try:
            board = Board(transport, config, timeout=args.timeout)
            board.check_config()
            if args.action in ("load", "exec"):
                holding = None
                if args.skip_zero_words:
                    holding = np.zeros((len(isa.mem_slices(config)), config.mem_words,
                                        config.lanes), np.uint8)
                board.load(image, holding=holding)
                print(f"loaded {args.program} into the board on {transport.name}")
            if args.action in ("run", "exec"):
                cycles = board.run(args.max_seconds)
                print(f"done after {cycles} cycles")
            if args.action in ("read", "exec"):
                memories = board.read_memories(words)
        finally:
            transport.close()
    except BoardError as error:
        raise CliError(str(error)) from None
    if args.action == "read":
        if args.output:
            np.save(args.output, memories)
            print(f"memories saved to {args.output}")
        else:
            for mem, word in words:
                if memories[mem, word].any():
                    print(f"  {isa.mem_slices(config)[mem].name}[{word}]: "
                          f"{memories[mem, word].view(np.int8).tolist()}")
    if args.action == "exec":
        expected = run(image)
        same_cycles = expected.cycles == cycles
        same_memories = bool((expected.memories == memories).all())
        print(f"golden model: {expected.cycles} cycles ({'same' if same_cycles else 'DIFFERENT'})"
              f", memories {'match bit for bit' if same_memories else 'DIFFER'}")
        if not (same_cycles and same_memories):
            raise CliError("the board and the golden model disagree")


def cmd_system(args):
    with open(args.source, encoding="utf-8") as handle:
        text = handle.read()
    system = assemble_system(text, args.config, filename=args.source)
    errors = check_system(system)
    if errors:
        raise CliError(f"{errors[0]} ({len(errors)} error{'s' if len(errors) > 1 else ''})")
    if args.output:
        with open(args.output, "wb") as handle:
            handle.write(system_bytes(system))
    print(f"{args.source}: {system.topology.name}, {system.topology.chips} chips of "
          f"{system.config.name!r}, checked")
    try:
        outcome = latency_regression(system, args.runs, args.seed, args.max_start)
    except SystemError as error:
        raise CliError(str(error)) from None
    cycles = ", ".join(f"chip {chip}: {count}" for chip, count in enumerate(outcome.cycles))
    if outcome.mismatch:
        raise CliError(outcome.mismatch)
    print(f"{outcome.runs} runs with random link latencies (window {system.config.c2c_latency}.."
          f"{system.config.c2c_latency + system.config.c2c_window}) and start times: identical "
          f"memories and cycles ({cycles}) in {outcome.seconds:.1f} s")


#: One example line per subcommand, shown at the end of its ``--help``.
EXAMPLES = {
    "isa": "opentsp isa --config groq",
    "asm": "opentsp asm firmware/examples/dot_relu.s -o dot_relu.bin",
    "disasm": "opentsp disasm dot_relu.bin -o dot_relu_again.s",
    "sim": "opentsp sim firmware/examples/dot_relu.s --trace --limit 10",
    "verilog": "opentsp verilog --config default -o build/default.v",
    "run": "opentsp run firmware/examples/dot_relu.s --max-cycles 10000",
    "synth": "opentsp synth --config fpga",
    "schedule": "opentsp schedule firmware/examples/gemm.s --plot gemm.png",
    "fpga": "opentsp fpga --board ulx3s-85f --config fpga",
    "board": "opentsp board --port /dev/ttyUSB0 exec firmware/examples/stream_pass.s",
    "system": "opentsp system firmware/examples/multichip/ring4_relay.s --runs 100",
}


def whole_number(minimum):
    """An argparse type: an integer of at least ``minimum``."""
    def parse(text):
        try:
            value = int(text, 0)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, not {text!r}")
        return value
    return parse


def positive_number(text):
    """An argparse type: a number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text!r}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="opentsp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        p = sub.add_parser(name, help=help_, description=help_, epilog=f"example: {EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--config", default="default",
                       help=f"chip configuration ({', '.join(CONFIGS)})")
        p.set_defaults(func=func)
        return p

    add("isa", cmd_isa, "print the instruction set and floorplan")
    p = add("asm", cmd_asm, "assemble and check a program into a firmware image")
    p.add_argument("source")
    p.add_argument("-o", "--output")
    p.add_argument("--no-check", action="store_true", help="skip the static timing checker")
    p = add("disasm", cmd_disasm, "disassemble a firmware image")
    p.add_argument("image")
    p.add_argument("-o", "--output")
    p = add("sim", cmd_sim, "run a program on the golden model")
    p.add_argument("program", help=".s or .bin")
    p.add_argument("--trace", action="store_true", help="print every issued instruction")
    p.add_argument("--dump", help="save the final memories as a .npy file")
    p.add_argument("--limit", type=whole_number(0), default=40, help="memory words to print")
    p.add_argument("--max-cycles", type=whole_number(1), default=10_000_000)
    p = add("verilog", cmd_verilog, "generate the chip's Verilog")
    p.add_argument("-o", "--output", required=True)
    p = add("run", cmd_run, "run a program on the RTL and the golden model and compare")
    p.add_argument("program", help=".s or .bin")
    p.add_argument("--simulator", default=None, choices=["verilator", "icarus"],
                   help="RTL simulator (default: $SIM, else verilator)")
    p.add_argument("--max-cycles", type=whole_number(1), default=1_000_000)
    add("synth", cmd_synth, "synthesise for ECP5 with Yosys and print the cell counts")
    p = add("schedule", cmd_schedule, "draw or list a program's schedule (golden model run)")
    p.add_argument("program", help=".s or .bin")
    p.add_argument("--plot", metavar="FILE", help="write a .png or .svg picture")
    p.add_argument("--text", action="store_true", help="print the schedule as text")
    p.add_argument("--max-cycles", type=whole_number(1), default=1_000_000)
    p = add("fpga", cmd_fpga, "synthesise, place and route for an FPGA board; report the figures")
    p.set_defaults(config="fpga")
    p.add_argument("--board", default="ulx3s-85f", help="board name (ulx3s-85f, ...)")
    p.add_argument("-o", "--output", help="build directory (build/fpga-BOARD-CONFIG)")
    p.add_argument("--baud", type=whole_number(1), default=115200,
                   help="host bridge UART bit rate")
    p.add_argument("--seed", type=whole_number(0), default=1, help="nextpnr placement seed")
    p.add_argument("--clock-mhz", type=positive_number,
                   help="chip clock, made by the PLL if not the board's (default: the config's)")
    p.add_argument("--router", default="router2", help="nextpnr router (router2, router1)")
    p.add_argument("--placer", default="static", help="nextpnr placer (static, heap, sa)")
    p.add_argument("--pnr-only", action="store_true",
                   help="place and route the netlist of an earlier run again (other --seed)")
    p = add("system", cmd_system, "assemble, check and run a multi-chip program on the golden "
                                  "model, with random link latencies and start times")
    p.set_defaults(config=None)
    p.add_argument("source", help="a multi-chip source (.chip sections, docs/multichip.md)")
    p.add_argument("-o", "--output", help="write the system image")
    p.add_argument("--runs", type=whole_number(1), default=10,
                   help="runs with random latencies and starts, all of which must agree")
    p.add_argument("--seed", type=whole_number(0), default=0, help="first run's seed")
    p.add_argument("--max-start", type=whole_number(0),
                   help="most cycles a chip starts after chip 0 (default: before its first "
                        "mark can arrive)")
    p = add("board", cmd_board, "load, run and read a chip on an FPGA board over its UART")
    p.set_defaults(config="fpga")
    p.add_argument("--port", default="/dev/ttyUSB0", help="serial port of the board")
    p.add_argument("--baud", type=whole_number(1), default=115200)
    p.add_argument("--timeout", type=positive_number, default=1.0,
                   help="seconds to wait for an answer")
    actions = p.add_subparsers(dest="action", required=True)
    for action, help_ in (("load", "load a program (.s or .bin) and its memory image"),
                          ("exec", "load, run, read back and compare with the golden model")):
        q = actions.add_parser(action, help=help_)
        q.add_argument("program", help=".s or .bin")
        q.add_argument("--skip-zero-words", action="store_true",
                       help="write only the image's data words (memories hold zeros)")
        q.add_argument("--max-seconds", type=positive_number, default=10.0)
    q = actions.add_parser("run", help="start the loaded program and wait for done")
    q.add_argument("--max-seconds", type=positive_number, default=10.0)
    q = actions.add_parser("read", help="read memory words back")
    q.add_argument("--words", metavar="MEM:START:COUNT", help="default: every word")
    q.add_argument("-o", "--output", help="save as .npy (memories, words, lanes)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    try:
        args.func(args)
    except (CliError, AsmError, ImageError, CycleLimitError, isa.EncodingError,
            TopologyError) as error:
        print(f"opentsp: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _reader_gone()
    except OSError as error:        # a file that cannot be read or written
        where = f"{error.filename}: " if error.filename else ""
        print(f"opentsp: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    return 0


def _reader_gone():
    """The reader of our output went away (``opentsp sim x.bin | head -1``): stop quietly, as
    Unix tools do. Python's own recipe: point stdout at devnull so that the flush at exit
    cannot fail again, and exit with status 1."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def entry():
    status = main()
    try:
        sys.stdout.flush()      # what is still buffered may meet a closed pipe only here
    except BrokenPipeError:
        status = _reader_gone()
    sys.exit(status)


if __name__ == "__main__":
    entry()
