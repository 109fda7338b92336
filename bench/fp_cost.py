"""What floating point costs on an ECP5: Yosys ``synth_ecp5`` of the floating-point blocks of one
VXM lane, each alone and together (``FpAlu``), and the cells of a chip's lanes; and the MXM slice
of the ``fpga`` configuration (4 x 4, one superlane) with and without its floating-point mode
(``MxmSlice-fp``, ``MxmSlice-int``).

    .venv/bin/python bench/fp_cost.py [--block FpAlu --block FpExp ...] [--config default]
                                      [--timeout 600]

Prints per block LUT4, carry cells (CCU2C), DSP multipliers (MULT18X18D) and the seconds Yosys
took (or that it did not finish within ``--timeout`` seconds: the WebAssembly Yosys's ABC takes
very long on the exp and rsqrt blocks' wide multiplies and divisions); then, for the
configuration, the lanes times the ``FpAlu``: what ``floating_point = False`` saves. A
benchmark: nothing is asserted.
"""

import argparse
import dataclasses
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import verilog

from opentsp import fp
from opentsp.app.synth import yosys_path
from opentsp.config import CONFIGS, get_config
from opentsp.hdl.fp_add import FpAdd
from opentsp.hdl.fp_alu import FpAlu
from opentsp.hdl.fp_exp import FpExp
from opentsp.hdl.fp_from_int import FpFromInt
from opentsp.hdl.fp_mul import FpMul
from opentsp.hdl.fp_narrow import FpNarrow
from opentsp.hdl.fp_reciprocal import FpReciprocal
from opentsp.hdl.fp_rsqrt import FpRsqrt
from opentsp.hdl.fp_to_int import FpToInt
from opentsp.hdl.fp_widen import FpWiden
from opentsp.hdl.mxm import MxmSlice

BLOCKS = {"FpAdd": FpAdd, "FpMul": FpMul, "FpToInt": FpToInt, "FpFromInt": FpFromInt,
          "FpWiden": lambda: FpWiden(fp.BF16), "FpNarrow": lambda: FpNarrow(fp.BF16),
          "FpReciprocal": FpReciprocal, "FpRsqrt": FpRsqrt, "FpExp": FpExp, "FpAlu": FpAlu,
          "MxmSlice-fp": lambda: MxmSlice(dataclasses.replace(CONFIGS["fpga"],
                                                              floating_point=True)),
          "MxmSlice-int": lambda: MxmSlice(CONFIGS["fpga"])}
CELLS = ("LUT4", "CCU2C", "MULT18X18D", "TRELLIS_FF")


def synthesize(name, timeout):
    """``{cell: count}`` and seconds of ``synth_ecp5`` on block ``name``; None for the counts
    if Yosys did not finish within ``timeout`` seconds."""
    work = Path.cwd() / "build"
    work.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fpcost-", dir=work) as tmp:
        block = BLOCKS[name]()
        (Path(tmp) / "block.v").write_text(verilog.convert(block, name="block"))
        start = time.perf_counter()
        try:
            done = subprocess.run([yosys_path(), "-q", "-p", "read_verilog block.v; synth_ecp5 "
                                   "-top block; tee -o stat.txt stat"], capture_output=True,
                                  text=True, cwd=tmp, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, timeout
        seconds = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"bench/fp_cost.py: yosys failed on {name}: "
                     f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        stat = (Path(tmp) / "stat.txt").read_text()
    counts = {cell: int(m.group(1)) if (m := re.search(rf"(\d+)\s+{cell}\b", stat)) else 0
              for cell in CELLS}
    return counts, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", action="append", choices=sorted(BLOCKS),
                        help="blocks to synthesise (default: all)")
    parser.add_argument("--config", default="default")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds Yosys may take per block")
    args = parser.parse_args(argv)
    config = get_config(args.config)
    results = {}
    print(f"{'block':<14}" + "".join(f"{cell:>12}" for cell in CELLS) + f"{'seconds':>10}")
    for name in args.block or list(BLOCKS):
        counts, seconds = synthesize(name, args.timeout)
        if counts is None:
            print(f"{name:<14}  synth_ecp5 did not finish within {seconds:.0f} s", flush=True)
            continue
        results[name] = counts
        print(f"{name:<14}" + "".join(f"{counts[cell]:>12,}" for cell in CELLS)
              + f"{seconds:>10.0f}", flush=True)
    if "FpAlu" in results:
        lanes = config.lanes
        alu = results["FpAlu"]
        print(f"\n{config.name}: {lanes} lanes x FpAlu = "
              + ", ".join(f"{lanes * alu[cell]:,} {cell}" for cell in CELLS)
              + " (what floating_point = False leaves out)")


if __name__ == "__main__":
    main()
