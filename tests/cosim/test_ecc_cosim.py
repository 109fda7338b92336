"""SECDED ECC fault injection on the RTL in Verilator under cocotb (docs/architecture.md section
6b): the host programs the injection registers, and the scoreboard compares memories, cycles,
ECC counters, STATUS_ECC_ERROR and the first error's place with the golden model running with
the same faults. The single-flip GEMM is also checked against numpy from the RTL's own
memories."""


import numpy as np
from programs import EXAMPLES_DIR

from opentsp import isa
from opentsp.config import CONFIGS
from opentsp.firmware import gen_gemm
from opentsp.firmware.asm import assemble_file
from opentsp.sim.mem import Fault
from opentsp.sim.model import Model
from opentsp.verif.runner import run_images

CONFIG = CONFIGS["default"]
EXAMPLES = EXAMPLES_DIR
MEMS = [s.name for s in isa.mem_slices(CONFIG)]


def _first_read_place(image, mask=1):
    """A (mem, word, lane) of the image's data that the program reads after cycle 0 (found
    with the golden model: a flip there at cycle 0 is counted)."""
    for mem, word in sorted(image.data):
        for lane in range(CONFIG.lanes):
            if Model(image, faults=[Fault(0, mem, word, lane, mask)]).run().ecc_corrected:
                return mem, word, lane
    raise AssertionError("the program reads none of its data")


def test_fault_injection_on_verilator(tmp_path, capsys):
    gemm = assemble_file(gen_gemm.EXAMPLE).image
    gather = assemble_file(EXAMPLES / "mem_gather.s").image
    stride = assemble_file(EXAMPLES / "mem_stride.s").image
    paths = {}
    for name, image in (("gemm", gemm), ("gather", gather), ("stride", stride)):
        paths[name] = tmp_path / f"{name}.bin"
        image.save(paths[name])
    w0, e2 = MEMS.index("MEM_W0"), MEMS.index("MEM_E2")
    c_row = gen_gemm.C_BASE + 1                     # written by the GEMM, never read
    scenarios = {
        "gemm_clean": ("gemm", []),
        "gemm_single": ("gemm", [Fault(0, w0, 1, 1, 1 << 5)]),
        "gemm_double": ("gemm", [Fault(0, e2, 1, 3, 0b11 << 6)]),
        "gemm_unread": ("gemm", [Fault(2, w0, 50, 2, 0b11), Fault(5, w0, 51, 6, 1 << 12)]),
        "gemm_four": ("gemm", [Fault(0, w0, 1, 1, 1 << 9), Fault(1, w0, 2, 0, 0b11),
                               Fault(3, w0, c_row, 1, 1), Fault(4, e2, 1, 3, 1 << 7)]),
        "gemm_five": ("gemm", [Fault(0, w0, 1, 1, 1)] * 5),     # more than the entries
        "gather_single": ("gather", [Fault(0, *_first_read_place(gather), 1 << 3)]),
        "gather_double": ("gather", [Fault(0, *_first_read_place(gather), 0b1001)]),
        "stride_single": ("stride", [Fault(0, *_first_read_place(stride), 1 << 10)]),
        "gemm_after": ("gemm", []),     # flips of the runs before are gone
    }
    programs = [(name, paths[image], faults) for name, (image, faults) in scenarios.items()]
    records = {r["name"]: r for r in run_images(CONFIG, programs, memories_dir=tmp_path)}
    assert list(records) == list(scenarios)
    bad = records.pop("gemm_five")
    assert bad["error"] == "ValueError: faults must be at most 4 (the injection entries of " \
                           "the host port), not 5"
    for name, record in records.items():
        assert record["error"] is None, f"{name}: {record['error']}"
        assert record["match"], f"{name}: {record['mismatches']}"
        assert record["ecc_rtl"] == record["ecc_golden"], name
    ecc = {name: record["ecc_rtl"] for name, record in records.items()}
    # what each scenario is there to show (the golden model agrees: see above)
    for name in ("gemm_clean", "gemm_unread", "gemm_after"):
        assert ecc[name] == {"corrected": 0, "detected": 0, "first": None}, name
    for name in ("gemm_single", "gather_single", "stride_single"):
        assert ecc[name]["corrected"] >= 1 and ecc[name]["detected"] == 0, name
    for name in ("gemm_double", "gather_double"):
        assert ecc[name]["detected"] >= 1 and ecc[name]["corrected"] == 0, name
        assert ecc[name]["first"][:3] == list(scenarios[name][1][0].as_dict().values())[1:4]
    assert ecc["gemm_four"]["corrected"] >= 2 and ecc["gemm_four"]["detected"] >= 1
    # the RTL's own memories: one flipped bit leaves the GEMM right, two do not
    a, b = gen_gemm.operands()
    expect = np.matmul(a.astype(np.int32), b.astype(np.int32))
    for name in ("gemm_clean", "gemm_single", "gemm_unread", "gemm_after"):
        got = gen_gemm.result_from_memories(np.load(records[name]["memories"]), CONFIG)
        np.testing.assert_array_equal(got, expect, name)
    got = gen_gemm.result_from_memories(np.load(records["gemm_double"]["memories"]), CONFIG)
    assert not np.array_equal(got, expect)
    with capsys.disabled():
        print(f"\nECC fault injection on verilator: {len(records)} runs matched the golden "
              f"model; corrected {[ecc[n]['corrected'] for n in ecc]}, detected "
              f"{[ecc[n]['detected'] for n in ecc]}")
