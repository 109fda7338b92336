"""Verification of the RTL against the golden model (docs/verification.md).

Library (imported by the tests, the command line and the benchmarks):

* :mod:`.runner` -- builds the chip's simulation model (Verilator or Icarus) once per
  configuration and runs firmware images on it under cocotb (``run_images``, ``run_bridge``);
* :mod:`.randprog` -- seeded random firmware images for differential testing;
* :mod:`.coverage` -- functional coverage of programs, measured on the golden model;
* :mod:`.shrink` -- delta-debugging of a failing image to a small one.

Tools (``python -m opentsp.verif.NAME``): :mod:`.regress` (random differential regression),
:mod:`.lint` (Verilator lint of the generated Verilog); :mod:`.randprog` and :mod:`.coverage`
are also tools.

cocotb testbenches, loaded by the simulator through :mod:`.runner`: :mod:`.tb.chip` (the chip's
host port: driver, monitor, golden model, scoreboard) and :mod:`.tb.bridge` (the chip behind its
UART bridge). The pytest tests that use them are in ``tests/cosim/``.
"""
