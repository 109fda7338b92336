"""Firmware images: the byte format, every refusal of the loader, atomic save, and the
assembler/disassembler round trip."""

import os
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from opentsp import isa
from opentsp.config import CONFIGS
from opentsp.firmware.asm import assemble, assemble_file
from opentsp.firmware.disasm import disassemble
from opentsp.firmware.image import Image, ImageError, load

CFG = CONFIGS["default"]
EXAMPLES = sorted((Path(__file__).parent.parent / "firmware" / "examples").glob("*.s"))
SMALL = """
.data MEM_W0, 3, i8: 1, -2, 3
.queue MEM_W0
    read e0, 3
.queue MEM_E0
.at 2
    write 5, e0
"""


def small():
    return assemble(SMALL, CFG).image


def refused(blob, config=CFG):
    with pytest.raises(ImageError) as info:
        Image.from_bytes(blob, config)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def build(queues, records=(), *, magic=b"OTSP", fmt=1, isa_version=isa.ISA_VERSION,
          config=CFG, nqueues=None):
    """An image blob from raw parts, with a correct CRC."""
    body = struct.pack("<4sHH8sII", magic, fmt, isa_version, config.hash,
                       len(queues) if nqueues is None else nqueues, len(records))
    body += struct.pack(f"<{len(queues)}I", *(len(q) for q in queues))
    for q in queues:
        body += struct.pack(f"<{len(q)}I", *q)
    for mem, addr, data in records:
        body += struct.pack("<II", mem, addr) + bytes(data)
    return body + struct.pack("<I", zlib.crc32(body))


END = isa.encode("end").encode()
NQ = len(isa.queues(CFG))
UNUSED = max(set(range(1 << isa.OPCODE_BITS)) - set(isa.OPS_BY_CODE))   # an opcode no op has


def test_layout_matches_the_specification():
    image = small()
    blob = image.to_bytes()
    assert blob[:4] == b"OTSP"
    assert struct.unpack_from("<HH", blob, 4) == (1, isa.ISA_VERSION)
    assert blob[8:16] == CFG.hash
    assert struct.unpack_from("<II", blob, 16) == (NQ, 1)
    counts = struct.unpack_from(f"<{NQ}I", blob, 24)
    assert counts == tuple(len(q) for q in image.queues)
    words = struct.unpack_from(f"<{sum(counts)}I", blob, 24 + 4 * NQ)
    assert list(words) == [i.encode() for q in image.queues for i in q]
    record = 24 + 4 * NQ + 4 * sum(counts)
    assert struct.unpack_from("<II", blob, record) == (3, 3)      # MEM_W0 is memory 3
    assert blob[record + 8:record + 16] == bytes([1, 254, 3, 0, 0, 0, 0, 0])
    assert len(blob) == record + 16 + 4
    assert struct.unpack_from("<I", blob, len(blob) - 4)[0] == zlib.crc32(blob[:-4])
    assert blob == build([q for q in (image.words(i) for i in range(NQ))],
                         [(3, 3, [1, 254, 3, 0, 0, 0, 0, 0])])


def test_data_records_are_sorted_so_the_bytes_are_canonical():
    image = small()
    zeros = np.zeros(CFG.lanes, dtype=np.uint8)
    a = Image(CFG, image.queues, {(5, 1): zeros, (0, 9): zeros + 1, (0, 2): zeros + 2})
    b = Image(CFG, image.queues, {(0, 2): zeros + 2, (5, 1): zeros, (0, 9): zeros + 1})
    assert a.to_bytes() == b.to_bytes()
    assert Image.from_bytes(a.to_bytes(), CFG) == a


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_round_trip_bytes_and_disassembly(path):
    program = assemble_file(path, CFG)
    blob = program.image.to_bytes()
    again = Image.from_bytes(blob, CFG)
    assert again == program.image
    assert again.to_bytes() == blob
    text = disassemble(again)
    assert assemble(text, CFG).image.to_bytes() == blob


def random_image(rng, config):
    slices = isa.queues(config)
    vxm = [op for op in isa.OPS if op.unit == isa.Unit.VXM]
    mxm = [op for op in isa.OPS if op.unit == isa.Unit.MXM]
    queues = []
    for slice_ in slices:
        instrs = []
        real = False
        for _ in range(rng.randrange(0, 12)):
            kind = rng.random()
            if kind < 0.2:
                instrs.append(isa.encode("nop", count=rng.randrange(1, 70000) % 65535 + 1))
            elif kind < 0.35 and real:
                instrs.append(isa.encode("repeat", n=rng.randrange(1, 65536),
                                         d=rng.randrange(1, 1024)))
            elif slice_.kind == isa.SliceKind.MEM:
                name = rng.choice(["read", "write"])
                stream = isa.StreamRef(rng.choice(list(isa.Dir)), rng.randrange(config.streams))
                instrs.append(isa.encode(name, s=stream,
                                         addr=rng.randrange(config.mem_words)))
                real = True
            elif slice_.kind in (isa.SliceKind.MXM, isa.SliceKind.SXM):
                op = rng.choice(mxm if slice_.kind == isa.SliceKind.MXM else list(isa.SXM_OPS))
                values = {}
                for fld in op.fields:
                    if fld.kind == "stream":
                        step = op.operand_width(fld.name)
                        values[fld.name] = isa.StreamRef(
                            rng.choice(list(isa.Dir)), rng.randrange(0, config.streams, step))
                    else:
                        low = 1 if fld.kind == "count" else 0
                        values[fld.name] = rng.randrange(low, isa.field_limit(fld, config) + 1)
                instrs.append(isa.encode(op.name, **values))
                real = True
            else:
                op = rng.choice(vxm)
                dtype, rtype = rng.choice(isa.type_pairs(op, config.floating_point))
                values = {"dtype": int(dtype)}
                if op.converts:
                    values["rtype"] = int(rtype)
                for name in op.operands:
                    width = (rtype if op.converts and name == "dst" else dtype).bytes
                    ident = rng.randrange(0, config.streams, width)
                    values[name] = isa.StreamRef(rng.choice(list(isa.Dir)), ident)
                instrs.append(isa.encode(op.name, **values))
                real = True
        queues.append(instrs + [isa.encode("end")])
    data = {}
    for _ in range(rng.randrange(0, 6)):
        key = (rng.randrange(2 * config.mem_slices), rng.randrange(config.mem_words))
        data[key] = np.array([rng.randrange(256) for _ in range(config.lanes)], dtype=np.uint8)
    return Image(config, queues, data)


@pytest.mark.parametrize("config_name", ["default", "medium"])
def test_random_images_round_trip(config_name):
    config = CONFIGS[config_name]
    rng = random.Random(1234)
    for _ in range(40):
        image = random_image(rng, config)
        blob = image.to_bytes()
        assert Image.from_bytes(blob, config) == image
        text = disassemble(image)
        assert assemble(text, config).image.to_bytes() == blob, text


def test_every_truncation_is_refused():
    blob = small().to_bytes()
    for size in range(len(blob)):
        message = refused(blob[:size])
        assert "truncated" in message or (size < 4 and "magic" in message), (size, message)
        assert message.startswith("offset "), message


def test_every_flipped_bit_is_refused():
    blob = small().to_bytes()
    counts_end = 24 + 4 * NQ
    for byte in range(len(blob)):
        for bit in range(8):
            broken = bytearray(blob)
            broken[byte] ^= 1 << bit
            message = refused(bytes(broken))
            if byte >= counts_end or 8 <= byte < 16:
                assert "bad CRC" in message, (byte, bit, message)


def test_bad_crc_names_the_offset():
    blob = bytearray(small().to_bytes())
    blob[-10] ^= 0xFF
    message = refused(bytes(blob))
    assert message.startswith(f"offset {len(blob) - 4}: bad CRC"), message


def test_bad_magic():
    message = refused(b"ELF\x7f" + small().to_bytes()[4:])
    assert message.startswith("offset 0: bad magic"), message


def test_other_format_and_isa_version():
    queues = [[END]] * NQ
    assert refused(build(queues, fmt=2)).startswith("offset 4: image format version 2, this "
                                                    "loader reads version 1")
    message = refused(build(queues, isa_version=isa.ISA_VERSION + 1))
    assert message.startswith(f"offset 6: image built for ISA version {isa.ISA_VERSION + 1}")
    # images of ISA v2 (one-row lw, abc and acc without sequences), v3 (abc and acc on every
    # plane at once), v4 (2-bit type fields), v5 (no MXM floating point) and v6 (no C2C slices)
    # are refused as such, as are v7's (a chained operand of the cycle before)
    assert isa.ISA_VERSION == 8
    for old in (2, 3, 4, 5, 6, 7):
        assert refused(build(queues, isa_version=old)) == (
            f"offset 6: image built for ISA version {old}, this is ISA version 8")


def test_image_for_another_configuration_is_refused_by_name():
    medium = CONFIGS["medium"]
    blob = Image.empty(medium).to_bytes()
    message = refused(blob, CFG)
    assert message == (f"offset 8: image built for configuration 'medium' (hash "
                       f"{medium.hash.hex()}), this is configuration 'default' (hash "
                       f"{CFG.hash.hex()})")
    assert Image.from_bytes(blob, medium) == Image.empty(medium)


def test_counts_that_disagree_with_a_checksummed_image():
    blob = build([[END]] * NQ, [(0, 0, [0] * 8)])
    body = bytearray(blob[:-4])
    body[20] = 5                                    # D = 5 records, only one present
    message = refused(bytes(body) + struct.pack("<I", zlib.crc32(bytes(body))))
    assert message.startswith("offset 16: inconsistent counts"), message


def test_trailing_bytes():
    blob = small().to_bytes()
    message = refused(blob + b"\0\0")
    assert message == f"offset {len(blob)}: 2 trailing bytes after the image"


@pytest.mark.parametrize("queues, records, nqueues, expected", [
    ([[END]] * (NQ - 1), (), None,
     f"offset 16: image has {NQ - 1} queues, configuration 'default' has {NQ}"),
    ([[END]] * (NQ - 1) + [[0x00000001] * 128 + [END]], (), None,
     f"queue {NQ - 1} (MXM_E) has 129 instructions, more than queue_depth 128"),
    ([[END]] * (NQ - 1) + [[0x00000001]], (), None,
     f"queue {NQ - 1} (MXM_E) does not end with 'end'"),
    ([[END]] * (NQ - 1) + [[]], (), None, f"queue {NQ - 1} (MXM_E) does not end with 'end'"),
    ([[END, END]] + [[END]] * (NQ - 1), (), None,
     f"offset {24 + 4 * NQ}: queue 0 (MXM_W) instruction 0: 'end' before the last "
     "instruction"),
    ([[0, END]] + [[END]] * (NQ - 1), (), None,
     f"offset {24 + 4 * NQ}: queue 0 (MXM_W) instruction 0: undecodable: word 0x00000000"),
    ([[UNUSED << isa.OPCODE_LSB, END]] + [[END]] * (NQ - 1), (), None,
     f"unknown opcode {UNUSED:#04x}"),
    ([[isa.encode("relu", dtype=0, dst=0, a=1).encode(), END]] + [[END]] * (NQ - 1), (), None,
     "queue 0 (MXM_W) instruction 0: relu is a VXM instruction, not allowed in a MXM queue"),
    ([[END]] * NQ, [(8, 0, [0] * 8)], None, "data record 0: memory index 8 out of range 0..7"),
    ([[END]] * NQ, [(0, 0, [0] * 8), (7, 64, [0] * 8)], None,
     "data record 1: word address 64 out of range 0..63"),
    ([[END]] * NQ, [(1, 2, [0] * 8), (1, 2, [1] * 8)], None,
     "data record 1: second record for memory 1 address 2"),
])
def test_inconsistent_images_are_refused(queues, records, nqueues, expected):
    message = refused(build(queues, records, nqueues=nqueues))
    assert expected in message, message
    assert message.startswith("offset "), message


def test_save_and_load(tmp_path):
    image = small()
    path = tmp_path / "a.bin"
    image.save(path)
    assert path.read_bytes() == image.to_bytes()
    assert load(path, CFG) == image
    assert Image.load(str(path), CFG) == image
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ImageError, match=rf"^{path}: offset \d+: truncated"):
        load(path, CFG)


def test_save_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "a.bin"
    bad = Image(CFG, [[]] * NQ, {})
    with pytest.raises(ImageError, match="does not end with 'end'"):
        bad.save(path)
    assert list(tmp_path.iterdir()) == []
    # A failure while replacing keeps the old file intact and removes the temporary one.
    path.write_bytes(b"old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        small().save(path)
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"old"


def test_validate_rejects_bad_data_words():
    image = small()
    image.data[(0, 0)] = np.zeros(3, dtype=np.uint8)
    with pytest.raises(ImageError, match=r"must hold 8 bytes"):
        image.to_bytes()
    image.data = {(0, 64): np.zeros(8, dtype=np.uint8)}
    with pytest.raises(ImageError, match=r"word address out of range 0..63"):
        image.to_bytes()


def test_memory_helper_and_empty():
    image = small()
    memory = image.memory(3)
    assert memory.shape == (64, 8) and memory[3].tolist() == [1, 254, 3, 0, 0, 0, 0, 0]
    assert memory.sum() == 1 + 254 + 3
    empty = Image.empty(CFG)
    assert all(q == [isa.encode("end")] for q in empty.queues)
    assert Image.from_bytes(empty.to_bytes(), CFG) == empty


def test_a_float_instruction_for_a_chip_without_floating_point_is_refused():
    fpga = CONFIGS["fpga"]
    assert not fpga.floating_point
    vxm = next(i for i, s in enumerate(isa.queues(fpga)) if s.name == "VXM")
    word = isa.encode("exp", dtype=int(isa.DType.F32), dst=4, a=0).encode()
    queues = [[END] for _ in isa.queues(fpga)]
    queues[vxm] = [word, END]
    message = refused(build(queues, config=fpga), fpga)
    assert message.endswith(f"queue {vxm} (VXM) instruction 0: exp.f32: configuration 'fpga' "
                            f"is built without floating point (Config.floating_point)"), message
    assert "\n" not in message
    queues[vxm] = [isa.encode("add", dtype=int(isa.DType.I32), dst=4, a=0, b=0).encode(), END]
    load_ok = Image.from_bytes(build(queues, config=fpga), fpga)
    assert load_ok.queues[vxm][0].op.mnemonic == "add"
