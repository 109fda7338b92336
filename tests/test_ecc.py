"""SECDED ECC on every SRAM word (docs/architecture.md section 6b): the golden code, the RTL
codec against it, fault injection in the golden model on real programs, and the chip (Amaranth
simulator, through the host port) against the golden model with the same injected faults."""

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from opentsp import hostmap, isa, secded
from opentsp.config import CONFIGS
from opentsp.firmware import gen_gemm
from opentsp.firmware.asm import assemble_file
from opentsp.hdl.ecc import Secded
from opentsp.sim.mem import EccLog, Fault
from opentsp.sim.model import Model

CONFIG = CONFIGS["default"]
MEMS = [s.name for s in isa.mem_slices(CONFIG)]
EXAMPLES = Path(__file__).parent.parent / "firmware" / "examples"
BYTES = np.arange(256, dtype=np.uint8)
SINGLES = [1 << b for b in range(secded.CODE_BITS)]
DOUBLES = [1 << a | 1 << b for a, b in itertools.combinations(range(secded.CODE_BITS), 2)]


def reference_encode(byte):
    """Extended Hamming (13,8) from its textbook definition, with Python ints: data bits at
    the positions 1..12 that are not powers of two, check bit i at position 2**i making the XOR
    of the positions with bit i set even, overall parity over everything; then stored as
    data (bits 7..0), check bits (11..8), parity (12)."""
    positions = {}
    data_positions = [p for p in range(1, 13) if p & (p - 1)]
    for j, pos in enumerate(data_positions):
        positions[pos] = byte >> j & 1
    check = 0
    for i in range(4):
        bit = 0
        for pos, value in positions.items():
            if pos >> i & 1:
                bit ^= value
        check |= bit << i
    word = byte | check << 8
    return word | (bin(word).count("1") & 1) << 12


# Golden code --------------------------------------------------------------------------------

def test_encode_is_the_textbook_extended_hamming_code():
    assert [int(c) for c in secded.encode(BYTES)] == [reference_encode(b) for b in range(256)]
    assert secded.encode(BYTES).dtype == np.uint16 and int(secded.encode(np.uint8(0))) == 0


def test_code_has_minimum_distance_four():
    codes = secded.encode(BYTES).astype(np.int64)
    pairs = codes[:, None] ^ codes[None, :]
    weights = np.zeros(pairs.shape, dtype=np.int64)
    for bit in range(secded.CODE_BITS):
        weights += pairs >> bit & 1
    np.fill_diagonal(weights, 99)
    assert weights.min() == 4


def test_golden_decode_corrects_every_single_and_detects_every_double_flip():
    codes = secded.encode(BYTES)
    data, corrected, detected = secded.decode(codes)
    assert (data == BYTES).all() and not corrected.any() and not detected.any()
    for mask in SINGLES:
        data, corrected, detected = secded.decode(codes ^ np.uint16(mask))
        assert (data == BYTES).all(), hex(mask)
        assert corrected.all() and not detected.any(), hex(mask)
    for mask in DOUBLES:
        flipped = codes ^ np.uint16(mask)
        data, corrected, detected = secded.decode(flipped)
        assert detected.all() and not corrected.any(), hex(mask)
        assert (data == (flipped & 0xFF)).all(), hex(mask)    # the raw data bits


def test_three_flips_are_never_taken_for_a_clean_word():
    codes = secded.encode(BYTES)
    for bits in itertools.combinations(range(secded.CODE_BITS), 3):
        _, corrected, detected = secded.decode(codes ^ np.uint16(sum(1 << b for b in bits)))
        assert (corrected | detected).all(), bits


def test_syndrome_names_the_flipped_position():
    codes = secded.encode(BYTES)
    for j, pos in enumerate(secded.DATA_POSITIONS):
        assert (secded.syndrome(codes ^ np.uint16(1 << j)) == pos).all()
        assert (secded.parity(codes ^ np.uint16(1 << j)) == 1).all()
    for i in range(secded.CHECK_BITS):
        assert (secded.syndrome(codes ^ np.uint16(1 << (8 + i))) == 1 << i).all()


# RTL codec ----------------------------------------------------------------------------------

def test_rtl_codec_matches_golden_on_every_byte_and_every_stored_word():
    """The encoder on all 256 bytes and the decoder on all 8192 13-bit words (every clean,
    single- and double-flipped code word among them) give the golden functions' results."""
    dut = Secded()
    words = np.arange(1 << secded.CODE_BITS, dtype=np.uint16)
    want_data, want_corrected, want_detected = secded.decode(words)
    want_codes = secded.encode(BYTES)
    seen = {"codes": 0, "words": 0}

    async def tb(ctx):
        for byte in range(256):
            ctx.set(dut.data, byte)
            assert ctx.get(dut.code) == want_codes[byte], byte
            seen["codes"] += 1
        for word in range(1 << secded.CODE_BITS):
            ctx.set(dut.stored, word)
            got = (ctx.get(dut.corrected_data), ctx.get(dut.corrected), ctx.get(dut.detected))
            assert got == (want_data[word], want_corrected[word], want_detected[word]), word
            seen["words"] += 1

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    assert seen == {"codes": 256, "words": 8192}


# Golden model with injected faults ----------------------------------------------------------

def gemm_image():
    return assemble_file(gen_gemm.EXAMPLE).image


def reads_of(result, mem, word, lane, after, config=CONFIG):
    """SRAM cycles (on the lane's superlane) of the plain reads of ``word`` by memory ``mem``
    after cycle ``after``, from the trace of issued instructions (not from the ECC logic)."""
    superlane = lane // config.lanes_per_superlane
    cycles = []
    for record in result.trace:
        for name, instr in record.issued:
            if name == MEMS[mem] and instr.op.mnemonic == "read" and instr["addr"] == word:
                if record.cycle + superlane > after:
                    cycles.append(record.cycle + superlane)
    return cycles


def assert_gemm_correct(memories):
    a, b = gen_gemm.operands()
    np.testing.assert_array_equal(gen_gemm.result_from_memories(memories, CONFIG),
                                  np.matmul(a.astype(np.int32), b.astype(np.int32)))


@pytest.mark.parametrize("mask", [1 << 2, 1 << 9, 1 << 12], ids=["data", "check", "parity"])
def test_one_flipped_bit_is_corrected_and_counted_on_gemm(mask):
    """A[0, 1] (MEM_W0 word 1 lane 1), one bit flipped before its reads: the GEMM is still
    right (and equal to the fault-free run), one correction per read of that word."""
    clean = Model(gemm_image(), trace=True).run()
    mem, word, lane = MEMS.index("MEM_W0"), 1, 1
    reads = reads_of(clean, mem, word, lane, after=0)
    assert len(reads) >= 1
    result = Model(gemm_image(), faults=[Fault(0, mem, word, lane, mask)]).run()
    np.testing.assert_array_equal(result.memories, clean.memories)
    assert_gemm_correct(result.memories)
    assert (result.ecc_corrected, result.ecc_detected, result.ecc_first) == (len(reads), 0, None)
    assert result.cycles == clean.cycles and not result.status_ecc_error


def test_two_flipped_bits_are_detected_with_their_place_on_gemm():
    clean = Model(gemm_image(), trace=True).run()
    mem, word, lane = MEMS.index("MEM_E2"), 1, 3      # A[5, 3]
    reads = reads_of(clean, mem, word, lane, after=0)
    result = Model(gemm_image(), faults=[Fault(0, mem, word, lane, 0b11 << 6)]).run()
    assert result.ecc_detected == len(reads) >= 1 and result.ecc_corrected == 0
    assert result.ecc_first == (mem, word, lane, reads[0]) and result.status_ecc_error
    # the raw data bits went into the product: wrong, but flagged
    a, b = gen_gemm.operands()
    got = gen_gemm.result_from_memories(result.memories, CONFIG)
    assert not np.array_equal(got, np.matmul(a.astype(np.int32), b.astype(np.int32)))


def test_fault_after_the_last_read_or_in_an_unread_word_counts_nothing():
    clean = Model(gemm_image(), trace=True).run()
    mem, word, lane = MEMS.index("MEM_W0"), 1, 1
    last = reads_of(clean, mem, word, lane, after=-1)[-1]
    unread = (mem, 50, 2)
    assert not reads_of(clean, *unread, after=-1)
    faults = [Fault(last, mem, word, lane, 0b101), Fault(3, *unread, 1 << 4)]
    result = Model(gemm_image(), faults=faults).run()
    assert (result.ecc_corrected, result.ecc_detected, result.ecc_first) == (0, 0, None)
    expected = clean.memories.copy()
    expected[mem, word, lane] ^= 0b101      # the host reads back the raw bits of a double
    np.testing.assert_array_equal(result.memories, expected)   # the single is corrected


def test_a_fault_in_the_read_cycle_is_not_seen_and_a_write_replaces_a_fault():
    """Section 6b ordering: a read in cycle c sees the word as at the start of c, so a fault
    injected at the end of c is seen from c + 1 on; a fault at the end of a write's commit
    cycle hits the new code word; a fault before the commit is overwritten."""
    from test_model import make_image, s, vec

    e0 = s(isa.Dir.E, 0)
    programs = {"MEM_W0": [("read", {"s": e0, "addr": 3})],           # cycle 0
                "MEM_E0": [("nop", {"count": 2}), ("write", {"addr": 9, "s": e0}),  # commit 3
                           ("nop", {"count": 2}), ("read", {"s": e0, "addr": 9})]}  # cycle 5
    data = {("MEM_W0", 3): vec([7] * 8), ("MEM_E0", 9): vec([1] * 8)}
    w0, e0_mem = MEMS.index("MEM_W0"), MEMS.index("MEM_E0")

    def run(*faults):
        return Model(make_image(programs, data), faults=list(faults)).run()

    assert run(Fault(0, w0, 3, 0, 3)).ecc_detected == 0         # read in 0, fault end of 0
    assert run(Fault(0, w0, 3, 4, 3)).ecc_detected == 1         # superlane 1 reads in cycle 1
    hit = run(Fault(3, e0_mem, 9, 0, 3))                        # with the commit: stays
    assert hit.ecc_detected == 1 and hit.ecc_first == (e0_mem, 9, 0, 5)
    assert run(Fault(2, e0_mem, 9, 0, 3)).ecc_detected == 0     # before the commit: replaced
    both = run(Fault(3, e0_mem, 9, 0, 1), Fault(4, e0_mem, 9, 0, 1))   # flipped back
    assert (both.ecc_corrected, both.ecc_detected) == (0, 0)
    assert run(Fault(3, e0_mem, 9, 0, 1), Fault(4, e0_mem, 9, 5, 2)).ecc_corrected == 2


def test_first_error_is_the_earliest_cycle_then_lowest_memory_then_lane():
    log = EccLog()
    no = np.zeros(4, dtype=bool)
    log.record(5, [1, 2, 3, 4], 1, 10, no, np.array([0, 0, 1, 1], dtype=bool), 4)
    log.record(3, [5, 6, 7, 8], 0, 10, no, np.array([0, 1, 0, 0], dtype=bool), 4)
    log.record(0, [9, 9, 9, 9], 0, 11, no, np.array([1, 0, 0, 0], dtype=bool), 4)
    assert log.first == (3, 6, 1, 10) and log.detected == 4
    log.corrected = hostmap.ECC_COUNT_MAX - 1
    log.record(0, [0] * 4, 0, 12, np.ones(4, dtype=bool), no, 4)
    assert log.corrected == hostmap.ECC_COUNT_MAX        # saturates


@pytest.mark.parametrize("example", ["gemm.s", "mem_gather.s", "mem_stride.s", "dot_relu.s",
                                     "bank_pingpong.s"])
def test_random_faults_are_never_silently_wrong(example):
    """Seeded random faults on every word an example touches: single flips change nothing
    the host reads back; with double flips, every word that differs from the fault-free run is
    a faulted place or the run reports a detected error."""
    image = assemble_file(EXAMPLES / example).image
    clean = Model(image).run()
    rng = random.Random(example)
    touched = sorted({(m, w) for m, w in zip(*np.nonzero(clean.memories.any(axis=2)),
                                             strict=True)} | set(image.data))
    limit = clean.cycles
    for trial in range(12):
        single = trial % 2 == 0
        faults = []
        for _ in range(3):
            mem, word = touched[rng.randrange(len(touched))]
            mask = rng.choice(SINGLES if single else DOUBLES)
            faults.append(Fault(rng.randrange(limit), int(mem), int(word),
                                rng.randrange(CONFIG.lanes), mask))
        if single and len({(f.mem, f.word, f.lane) for f in faults}) < len(faults):
            continue        # two singles on one place may make a double
        result = Model(image, faults=faults).run()
        assert result.cycles == clean.cycles
        if single:
            np.testing.assert_array_equal(result.memories, clean.memories, str(faults))
            assert result.ecc_detected == 0
        else:
            places = {(f.mem, f.word, f.lane) for f in faults}
            for mem, word, lane in zip(*np.nonzero(result.memories != clean.memories),
                                       strict=True):
                assert (mem, word, lane) in places or result.ecc_detected > 0, faults


def test_bad_faults_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match=r"Fault.mask must be a non-zero 13-bit mask .*not 0"):
        Fault(0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match=r"Fault.mask must be .*not 8192"):
        Fault(0, 0, 0, 0, 1 << 13)
    with pytest.raises(ValueError, match=r"Fault.cycle must be a non-negative int, not -1"):
        Fault(-1, 0, 0, 0, 1)
    with pytest.raises(ValueError, match=r"Fault.lane must be a non-negative int, not True"):
        Fault(0, 0, 0, True, 1)
    with pytest.raises(ValueError, match=r"Fault.cycle must be below 2\*\*32"):
        Fault(1 << 32, 0, 0, 0, 1)
    image = gemm_image()
    for fault, name, limit in ((Fault(0, 8, 0, 0, 1), "mem", 8), (Fault(0, 0, 64, 0, 1), "word",
                               64), (Fault(0, 0, 0, 8, 1), "lane", 8)):
        with pytest.raises(ValueError, match=rf"Fault.{name} must be below {limit} in "
                                             rf"configuration 'default', not {limit}"):
            Model(image, faults=[fault])
    with pytest.raises(TypeError, match=r"faults must hold .*Fault objects, not \(0, 0"):
        Model(image, faults=[(0, 0, 0, 0, 1)])
    with pytest.raises(ValueError, match=r"injection entry must be in 0..3, not 4"):
        hostmap.inject_addr(4, hostmap.INJECT_MASK)


def test_place_packing_round_trips():
    """Every place of the largest configuration opentsp.config allows fits."""
    for place in ((0, 0, 0), (87, 8191, 319), (127, 8191, 511), (255, 16383, 1023)):
        assert hostmap.unpack_place(hostmap.ecc_place(*place)) == place


# The chip (Amaranth simulator) against the golden model -------------------------------------

def run_chip(image, runs):
    """Load ``image``; per run, program the injection entries with that run's faults, start,
    and read back cycles, STATUS, the ECC registers and every memory word."""
    from test_top import simulate

    config = image.config
    out = []

    async def body(host):
        for q, program in enumerate(image.queues):
            await host.load_queue(q, program)
        for faults in runs:
            for (mem, word), lanes in image.data.items():      # a fresh image: no old flips
                await host.store(mem, word, [int(x) for x in lanes])
            for entry in range(hostmap.INJECT_ENTRIES):
                f = faults[entry] if entry < len(faults) else Fault(0, 0, 0, 0, 1)
                await host.write(hostmap.inject_addr(entry, hostmap.INJECT_CYCLE), f.cycle)
                await host.write(hostmap.inject_addr(entry, hostmap.INJECT_PLACE),
                                 hostmap.ecc_place(f.mem, f.word, f.lane))
                await host.write(hostmap.inject_addr(entry, hostmap.INJECT_MASK),
                                 f.mask if entry < len(faults) else 0)
            assert await host.read(hostmap.inject_addr(0, hostmap.INJECT_MASK)) == \
                (faults[0].mask if faults else 0)
            await host.write(hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_START)
            cycles = 0
            while host.ctx.get(host.chip.running):
                cycles += 1
                await host.ctx.tick()
            regs = [await host.read(hostmap.control_addr(r)) for r in (
                hostmap.REG_STATUS, hostmap.REG_ECC_CORRECTED, hostmap.REG_ECC_DETECTED,
                hostmap.REG_ECC_FIRST_PLACE, hostmap.REG_ECC_FIRST_CYCLE)]
            touched = sorted({w for _, w in image.data} | {9, 32, 33, 34, 35, 50})
            mems = {(m, w): await host.load(m, w) for m in range(len(MEMS)) for w in touched}
            out.append((cycles, regs, mems))
    simulate(body, config)
    return out


def test_chip_injection_matches_the_golden_model_through_the_host_port():
    """gemm.s on the RTL chip, three runs: one flipped bit (corrected, counted), two (detected,
    STATUS and place), then no faults (the counters are cleared by the start)."""
    image = gemm_image()
    w0, e2 = MEMS.index("MEM_W0"), MEMS.index("MEM_E2")
    runs = [
        [Fault(0, w0, 1, 1, 1 << 5), Fault(2, w0, 50, 2, 1 << 11)],
        [Fault(0, e2, 1, 3, 0b11 << 6), Fault(1, w0, 2, 0, 0b11), Fault(9, w0, 33, 1, 1)],
        [],
    ]
    got = run_chip(image, runs)
    for faults, (cycles, regs, mems) in zip(runs, got, strict=True):
        ref = Model(image, faults=faults).run()
        status, corrected, detected, place, cycle = regs
        assert cycles == ref.cycles
        assert status == hostmap.STATUS_DONE | (hostmap.STATUS_ECC_ERROR
                                                if ref.status_ecc_error else 0)
        assert (corrected, detected) == (ref.ecc_corrected, ref.ecc_detected)
        first = (*hostmap.unpack_place(place), cycle) if ref.ecc_first else (0, 0, 0, 0)
        assert first == (ref.ecc_first or (0, 0, 0, 0))
        for (mem, word), lanes in mems.items():
            assert lanes == list(ref.memories[mem, word]), (faults, mem, word)
    ref = [Model(image, faults=faults).run() for faults in runs]
    assert ref[0].ecc_corrected >= 1 and ref[1].ecc_detected >= 2 and ref[1].ecc_corrected == 0
    assert_gemm_correct(ref[0].memories)


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_a_reset_drops_the_ecc_report_of_a_read_in_or_before_its_cycle(offset):
    """A faulty read whose SRAM cycle is the reset's (decoded in the next cycle, with the
    slices cleared), the one before it (decoded in the reset's cycle) or the one before that
    (its report reaching the host in the reset's cycle) counts nothing: the ECC registers read
    0 at once after the reset, though each MEM slice registers its report before the host
    combines them (``HostPort.add_ecc_registers``)."""
    from test_top import simulate

    image = gemm_image()
    w0 = MEMS.index("MEM_W0")
    fault = Fault(0, w0, 1, 1, 1 << 5)
    ref = Model(image, faults=[fault]).run()
    read_cycle = reads_of(Model(image, trace=True).run(), w0, 1, 1, after=0)[0]  # superlane 0
    assert ref.ecc_corrected >= 1
    reset_cycle = read_cycle + offset

    async def body(host):
        ctx, chip = host.ctx, host.chip
        for q, program in enumerate(image.queues):
            await host.load_queue(q, program)
        for (mem, word), lanes in image.data.items():
            await host.store(mem, word, [int(x) for x in lanes])
        for name, value in (("CYCLE", fault.cycle), ("MASK", fault.mask),
                            ("PLACE", hostmap.ecc_place(w0, 1, 1))):
            await host.write(hostmap.inject_addr(0, getattr(hostmap, f"INJECT_{name}")), value)
        await host.write(hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_START)
        for _ in range(reset_cycle):        # run cycles 0 .. reset_cycle - 1
            assert ctx.get(chip.running) == 1
            await ctx.tick()
        await host.write(hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_RESET)
        regs = [await host.read(hostmap.control_addr(r)) for r in (
            hostmap.REG_STATUS, hostmap.REG_ECC_CORRECTED, hostmap.REG_ECC_DETECTED,
            hostmap.REG_ECC_FIRST_PLACE, hostmap.REG_ECC_FIRST_CYCLE)]
        assert regs == [0, 0, 0, 0, 0]
        assert await host.run() == ref.cycles       # the next run counts its read again
        assert await host.read(hostmap.control_addr(hostmap.REG_ECC_CORRECTED)) == \
            ref.ecc_corrected
    simulate(body, image.config)
