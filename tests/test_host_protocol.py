"""The host protocol (opentsp.host_protocol), the one source of the host-port words that the
cocotb driver and the board host program send: each transaction list checked against an
independent reading of the host-port map (docs/architecture.md, "Host port")."""

import numpy as np
import pytest
from programs import small_fpga_image

from opentsp import bridge_protocol as proto
from opentsp import host_protocol as hp
from opentsp import hostmap, isa
from opentsp.config import CONFIGS, get_config


def shape(config):
    return len(isa.mem_slices(config)), config.mem_words, config.lanes


def test_config_word_is_the_low_32_bits_of_the_hash():
    for config in CONFIGS.values():
        assert hostmap.config_word(config) == int.from_bytes(config.hash[:4], "little")
    assert len({hostmap.config_word(config) for config in CONFIGS.values()}) == len(CONFIGS)


@pytest.mark.parametrize("name", ["default", "groq"])
def test_chunk_words_pack_four_lanes_little_endian(name):
    config = get_config(name)
    vector = np.arange(config.lanes, dtype=np.uint64) * 7 % 256
    chunks = hp.chunk_words(config, vector.astype(np.uint8))
    assert len(chunks) == config.superlanes * hostmap.chunks_per_superlane(config)
    lps = config.lanes_per_superlane
    for superlane, chunk, value in chunks:
        for i in range(4):
            lane = 4 * chunk + i
            want = int(vector[superlane * lps + lane]) if lane < lps else 0
            assert value >> 8 * i & 0xFF == want


def test_load_writes_skip_what_the_memories_hold():
    image = small_fpga_image()
    config = image.config
    queue_words = sum(len(q) for q in image.queues)
    chunks = config.superlanes * hostmap.chunks_per_superlane(config)
    every = hp.load_writes(config, image.queue_words(), image.memories())
    assert len(every) == 1 + queue_words + shape(config)[0] * shape(config)[1] * chunks
    sparse = hp.load_writes(config, image.queue_words(), image.memories(),
                            holding=np.zeros(shape(config), np.uint8))
    assert len(sparse) == 1 + queue_words + 2 * chunks
    assert sparse[0] == (hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_RESET)
    assert (hostmap.mem_addr(2, 5, 0, 0), 0x04030201) in sparse
    queue_writes = [w for w in every if w[0] >> hostmap.REGION_SHIFT == hostmap.QUEUE]
    assert queue_writes == [(hostmap.queue_addr(q, i), word)
                            for q, words in enumerate(image.queue_words())
                            for i, word in enumerate(words)]


@pytest.mark.parametrize("name", ["default", "fpga"])
def test_memory_reads_and_back(name):
    config = get_config(name)
    rng = np.random.default_rng(1)
    memories = rng.integers(0, 256, shape(config), dtype=np.uint8)
    words = [(0, 0), (len(isa.mem_slices(config)) - 1, config.mem_words - 1), (1, 3)]
    addrs = hp.memory_reads(config, words)
    # the chip's answer to each address, worked out from the map's own fields
    values = []
    for addr in addrs:
        mem = addr >> hostmap.MEM_SHIFT & 0xFF
        word = addr >> hostmap.WORD_SHIFT & 0x1FFF
        superlane = addr >> hostmap.SUPERLANE_SHIFT & 0x1F
        chunk = addr & 3
        lps = config.lanes_per_superlane
        lanes = memories[mem, word, superlane * lps:(superlane + 1) * lps][4 * chunk:4 * chunk + 4]
        values.append(int.from_bytes(bytes(lanes), "little"))
    got = hp.memories_from_reads(config, values, words)
    for mem, word in words:
        np.testing.assert_array_equal(got[mem, word], memories[mem, word])
    assert got.sum() == sum(int(memories[m, w].sum()) for m, w in words)
    assert len(hp.memory_reads(config)) == (shape(config)[0] * shape(config)[1] * config.superlanes
                                            * hostmap.chunks_per_superlane(config))


def test_memories_from_reads_wants_one_value_per_read():
    config = get_config("default")
    with pytest.raises(ValueError, match=r"^values must hold one word per read \(2\), not 1$"):
        hp.memories_from_reads(config, [0], [(0, 0)])


def test_inject_writes_arm_the_given_entries_and_clear_the_rest():
    writes = hp.inject_writes([(9, hostmap.ecc_place(1, 2, 3), 0x11)])
    assert len(writes) == 3 * hostmap.INJECT_ENTRIES
    assert writes[:3] == [(hostmap.inject_addr(0, hostmap.INJECT_CYCLE), 9),
                          (hostmap.inject_addr(0, hostmap.INJECT_PLACE),
                           hostmap.ecc_place(1, 2, 3)),
                          (hostmap.inject_addr(0, hostmap.INJECT_MASK), 0x11)]
    assert all(value == 0 for _, value in writes[3:])
    with pytest.raises(ValueError, match=r"^faults must be at most 4 \(the injection entries"):
        hp.inject_writes([(0, 0, 1)] * (hostmap.INJECT_ENTRIES + 1))


def test_ecc_report():
    assert hp.ecc_reads()[0] == hostmap.control_addr(hostmap.REG_STATUS)
    place = hostmap.ecc_place(3, 17, 5)
    assert hp.ecc_from_reads([hostmap.STATUS_ECC_ERROR, 2, 1, place, 40]) == (2, 1, (3, 17, 5, 40))
    assert hp.ecc_from_reads([hostmap.STATUS_DONE, 4, 0, 0, 0]) == (4, 0, None)
    with pytest.raises(hp.HostError, match="place 0x1 and cycle 0 without STATUS_ECC_ERROR"):
        hp.ecc_from_reads([0, 0, 0, 1, 0])


def drive(operation, chip):
    """Run an operation against ``chip``, a dict of host-port words behind the bridge bytes."""
    writes = []
    try:
        request = next(operation)
        while True:
            data, count = request
            addr = int.from_bytes(data[1:5], "little")
            if data[0] == proto.CMD_WRITE:
                writes.append((addr, int.from_bytes(data[5:9], "little")))
                reply = bytes([proto.ACK_WRITE])
            else:
                reply = bytes([proto.ACK_READ]) + chip.get(addr, 0).to_bytes(4, "little")
            assert len(reply) == count
            request = operation.send(reply)
    except StopIteration as stop:
        return stop.value, writes


def test_operations_send_the_transactions():
    image = small_fpga_image()
    config = image.config
    chip = {hostmap.control_addr(hostmap.REG_CONFIG): hostmap.config_word(config)}
    _, writes = drive(hp.op_load(config, image.queue_words(), image.memories()), chip)
    assert writes == hp.load_writes(config, image.queue_words(), image.memories())
    chip[hostmap.control_addr(hostmap.REG_STATUS)] = hostmap.STATUS_DONE
    chip[hostmap.control_addr(hostmap.REG_CYCLES)] = 77
    cycles, writes = drive(hp.op_run(), chip)
    assert (cycles, writes) == (77, [hp.start_write()])
    chip[hostmap.mem_addr(2, 5, 0, 0)] = 0x04030201
    memories, _ = drive(hp.op_read_memories(config, [(2, 5)]), chip)
    assert memories[2, 5].tolist() == [1, 2, 3, 4]


def test_operations_refuse_another_configuration_and_a_hang():
    config = get_config("fpga")
    chip = {hostmap.control_addr(hostmap.REG_CONFIG): hostmap.config_word(get_config("default"))}
    with pytest.raises(hp.HostError, match="^the chip was built for another configuration than "
                                           "'fpga'"):
        drive(hp.op_check_config(config), chip)
    with pytest.raises(hp.HostError, match="still running after 3 status reads"):
        drive(hp.op_run(max_polls=3), {})
