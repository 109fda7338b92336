"""The assembler: syntax, directives, every instruction, data layout and every error."""

import dataclasses
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from opentsp import isa
from opentsp.app import cli
from opentsp.config import CONFIGS, Config
from opentsp.firmware.asm import AsmError, Loc, assemble, assemble_file
from opentsp.firmware.checker import check
from opentsp.firmware.disasm import disassemble

CFG = CONFIGS["default"]
QUEUE = {s.name: i for i, s in enumerate(isa.queues(CFG))}
MEM = {s.name: i for i, s in enumerate(isa.mem_slices(CFG))}


def asm(text, config=CFG):
    return assemble(text, config, filename="t.s")


def queue(program, name):
    return program.image.queues[QUEUE[name]]


def error(text, config=CFG):
    with pytest.raises(AsmError) as info:
        asm(text, config)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_every_instruction_encodes_like_isa_encode():
    program = asm("""
        .queue MEM_W0
            read e3, 5
            write 7, w2
            nop 3
            repeat 4, 2
        .queue VXM
            add.i8 e1, w0, w4
            sub.i8 e1, e0, e2
            mul.i32 w4, e0, w0
            min.i16 e2, e0, e6
            max.i8 w7, w6, e5
            relu.i32 e4, w0
            relu.i8 e1, e0
            cvt.i32.i8 w0, e4
            cvt.i8.i32 e4, w3
            cvt.i16.i8 e0, w2
            end
    """)
    e, w = isa.Dir.E, isa.Dir.W

    def s(direction, ident):
        return isa.StreamRef(direction, ident)

    assert queue(program, "MEM_W0") == [
        isa.encode("read", s=s(e, 3), addr=5), isa.encode("write", addr=7, s=s(w, 2)),
        isa.encode("nop", count=3), isa.encode("repeat", n=4, d=2), isa.encode("end")]
    i8, i16, i32 = (int(t) for t in (isa.DType.I8, isa.DType.I16, isa.DType.I32))
    assert queue(program, "VXM") == [
        isa.encode("add", dtype=i8, dst=s(e, 1), a=s(w, 0), b=s(w, 4)),
        isa.encode("sub", dtype=i8, dst=s(e, 1), a=s(e, 0), b=s(e, 2)),
        isa.encode("mul", dtype=i32, dst=s(w, 4), a=s(e, 0), b=s(w, 0)),
        isa.encode("min", dtype=i16, dst=s(e, 2), a=s(e, 0), b=s(e, 6)),
        isa.encode("max", dtype=i8, dst=s(w, 7), a=s(w, 6), b=s(e, 5)),
        isa.encode("relu", dtype=i32, dst=s(e, 4), a=s(w, 0)),
        isa.encode("relu", dtype=i8, dst=s(e, 1), a=s(e, 0)),
        isa.encode("cvt", dtype=i32, rtype=i8, dst=s(w, 0), a=s(e, 4)),
        isa.encode("cvt", dtype=i8, rtype=i32, dst=s(e, 4), a=s(w, 3)),
        isa.encode("cvt", dtype=i16, rtype=i8, dst=s(e, 0), a=s(w, 2)),
        isa.encode("end")]
    assert [str(i) for i in queue(program, "VXM")][:2] == ["add.i8 e1, w0, w4",
                                                          "sub.i8 e1, e0, e2"]


def test_end_appended_and_unopened_queues_get_end():
    program = asm(".queue MEM_E1\n read w0, 1\n")
    end = isa.encode("end")
    for name, index in QUEUE.items():
        expected = [isa.encode("read", s=isa.StreamRef(isa.Dir.W, 0), addr=1), end] \
            if name == "MEM_E1" else [end]
        assert program.image.queues[index] == expected
    # The appended end points at the .queue line.
    assert program.locations[(QUEUE["MEM_E1"], 1)] == Loc("t.s", 1, 1)
    assert (QUEUE["VXM"], 0) not in program.locations


def test_expressions_and_equ():
    program = asm("""
        .equ A, 0x10 + 0b11        ; 19
        .equ B, -(A - 20) * 3      ; 3
        .equ C, A // 4 + A % 4     ; 4 + 3
        .equ D, FWD * 2            ; forward reference
        .equ FWD, 2 - -1
        .equ E, 1_000 // 100
        .queue MEM_W0
            read e(B + 1), A + B + C + D + E
    """)
    assert program.symbols == {"A": 19, "B": 3, "C": 7, "D": 6, "FWD": 3, "E": 10}
    instr = queue(program, "MEM_W0")[0]
    assert instr["addr"] == 19 + 3 + 7 + 6 + 10
    assert instr.stream("s") == isa.StreamRef(isa.Dir.E, 4)


def test_labels_define_data_addresses_usable_before_and_after():
    program = asm("""
        .queue MEM_W0
            read e0, weights + 1        ; used before its definition
        weights: .data MEM_W0, 8, i16: 1, 2
        bias:    .data MEM_W1, weights * 2, i8: 3
        .queue MEM_W1
            read e1, bias
    """)
    assert program.symbols == {"weights": 8, "bias": 16}
    assert queue(program, "MEM_W0")[0]["addr"] == 9
    assert queue(program, "MEM_W1")[0]["addr"] == 16


def test_case_insensitive_mnemonics_directives_slices_and_comments():
    program = asm("""
        .CONFIG default  # comment
        .Queue mem_w0    ; comment
            READ E2, 3
        .QUEUE vxm
            ADD.I8 W1, e2, E3
            End
    """)
    assert str(queue(program, "MEM_W0")[0]) == "read e2, 3"
    assert str(queue(program, "VXM")[0]) == "add.i8 w1, e2, e3"


def test_line_continuation():
    program = asm(".data MEM_W0, 0, i8: 1, 2, \\\n    3, 4, \\\n 5\n")
    assert program.image.data[(MEM["MEM_W0"], 0)].tolist() == [1, 2, 3, 4, 5, 0, 0, 0]
    assert "t.s:3:2: error: value 999" in error(".data MEM_W0, 0, i8: 1, \\\n 2, \\\n 999\n")


def test_data_types_and_byte_planar_layout():
    program = asm("""
        .data MEM_W0, 0, i8: -1, 2, -128, 127
        .data MEM_W0, 1, u8: 255, 0, 128
        .data MEM_E0, 4, i16: 0x1234, -2
        .data MEM_E1, 10, i32: 0x12345678, -1, -2147483648, 2147483647, 1, 2, 3, 4
        .data [MEM_W3, MEM_W2, MEM_W1, MEM_W0], 20, i32: 0x0A0B0C0D
    """)
    data = program.image.data
    assert data[(MEM["MEM_W0"], 0)].tolist() == [255, 2, 128, 127, 0, 0, 0, 0]
    assert data[(MEM["MEM_W0"], 1)].tolist() == [255, 0, 128, 0, 0, 0, 0, 0]
    assert data[(MEM["MEM_E0"], 4)].tolist() == [0x34, 0xFE] + [0] * 6
    assert data[(MEM["MEM_E0"], 5)].tolist() == [0x12, 0xFF] + [0] * 6
    planes = [data[(MEM["MEM_E1"], 10 + i)] for i in range(4)]
    assert [p[0] for p in planes] == [0x78, 0x56, 0x34, 0x12]
    assert [p[1] for p in planes] == [0xFF] * 4
    assert [p[2] for p in planes] == [0, 0, 0, 0x80]
    assert [p[3] for p in planes] == [0xFF, 0xFF, 0xFF, 0x7F]
    assert [p[7] for p in planes] == [4, 0, 0, 0]
    assert all(d.dtype == np.uint8 and d.shape == (8,) for d in data.values())
    spread = [data[(MEM[name], 20)][0] for name in ("MEM_W3", "MEM_W2", "MEM_W1", "MEM_W0")]
    assert spread == [0x0D, 0x0C, 0x0B, 0x0A]
    assert len(data) == 2 + 2 + 4 + 4


def test_at_pads_with_nops_counting_slots_and_splits_long_pads():
    program = asm("""
        .queue MEM_W0
            read e0, 0          ; slot 0
            repeat 3, 2         ; slots 1..6
            nop 2               ; 7, 8
        .at 9
            read e1, 1          ; slot 9
        .at 200000
            write 0, w0
    """)
    instrs = queue(program, "MEM_W0")
    assert [str(i) for i in instrs] == [
        "read e0, 0", "repeat 3, 2", "nop 2", "read e1, 1", "nop 65535", "nop 65535",
        "nop 65535", "nop 3385", "write 0, w0", "end"]
    assert sum(i.slots for i in instrs[:-2]) == 200000
    assert program.locations[(QUEUE["MEM_W0"], 4)] == Loc("t.s", 8, 9)


def test_queue_reopened_appends_and_repeat_after_nop():
    program = asm("""
        .queue MEM_E0
            read w0, 1
        .queue VXM
            relu.i8 e0, w0
        .queue MEM_E0
            nop 5
            repeat 2, 1
    """)
    assert [str(i) for i in queue(program, "MEM_E0")] == ["read w0, 1", "nop 5", "repeat 2, 1",
                                                          "end"]
    assert program.locations[(QUEUE["MEM_E0"], 2)] == Loc("t.s", 8, 13)


def test_config_directive_selects_and_must_match():
    program = assemble(".config medium\n.queue MEM_W7\n read e0, 100\n")
    assert program.config is CONFIGS["medium"]
    assert assemble(".queue VXM\n").config is CONFIGS["default"]
    assert asm(".config default\n").config is CFG
    message = error("\n  .config medium\n")
    assert message.startswith("t.s:2:11: error: program is written for configuration 'medium'")
    assert "t.s:1:9: error: unknown configuration 'tiny'" in error(".config tiny")


def test_assemble_file_uses_path_in_errors(tmp_path):
    path = tmp_path / "p.s"
    path.write_text(".queue VXM\n  bogus\n")
    with pytest.raises(AsmError, match=rf"^{path}:2:3: error: unknown mnemonic 'bogus'$"):
        assemble_file(path, CFG)


@pytest.mark.parametrize("text, where, cause", [
    # syntax
    (".queue MEM_W0\n read e0 5", "2:10", "unexpected '5' in the operands"),
    (".queue MEM_W0\n read e0, ?", "2:11", "unexpected character '?'"),
    (".queue MEM_W0\n read e0, (1 + 2", "2:17", "expected ')' to close the parenthesis"),
    (".equ X 3", "1:8", "expected ',' after the name"),
    (".data MEM_W0, 0, i8 1", "1:21", "expected ':' after the data type"),
    ("x:\n", "1:1", "label 'x' must be followed by a .data directive"),
    (".data MEM_W0, 0, i8: 1 \\", "1:24", "line continuation at the end of the file"),
    # names, directives, mnemonics
    (".queue VXM\n   frob e0, e1", "2:4", "unknown mnemonic 'frob'"),
    (".bogus 3", "1:1", "unknown directive '.bogus'"),
    (".queue VXM\n add e0, e1, e2", "2:2", "'add': expected the form add.T"),
    (".queue VXM\n cvt.i8 e0, e1", "2:2", "expected the form cvt.T.R"),
    (".queue VXM\n add.i64 e0, e1, e2", "2:2", "unknown type 'i64'"),
    (".queue MEM_W0\n nop.i8 1", "2:2", "expected the form nop"),
    (".queue MXM_W\n abc.i8 0, 0, e0, 0, 1", "2:2",
     "'abc.i8': unknown instruction; abc comes as abc, abc.f16, abc.bf16"),
    (".queue MXM_W\n lw.bf16 0, 0, e1, 1", "2:16",
     "bf16 operand s must start an aligned group of 2 streams (id a multiple of 2), not 1"),
    (".queue MXM_W\n acc.f32 0, e2, 0, 1", "2:13",
     "f32 operand dst must start an aligned group of 4 streams"),
    (".queue MXM_W\n lw.f16 0, 0, e7, 1", "2:15", "streams 7..8 out of range"),
    (".queue VXM\n cvt.i8.i8 e0, e1", "2:2", "source and result types are both i8"),
    (".queue MEM_W0\n read e0, X", "2:11", "unknown name 'X'"),
    (".equ A, B\n.equ B, A", "2:9", "circular definition of 'A'"),
    (".equ A, 1\n.equ A, 2", "2:6", "duplicate name 'A' (first defined at t.s:1:6)"),
    ("a: .data MEM_W0, 0, i8: 1\na: .data MEM_W0, 1, i8: 1", "2:1", "duplicate name 'a'"),
    (".equ A, 1 // 0", "1:11", "division by zero"),
    (".queue SXM_W\n read e0, 0", "2:2", "read is a MEM instruction; the queue of SXM_W takes "
     "SXM"),
    (".queue SXM_W\n rotate e0, w0, 8", "2:17", "lane count 8 out of range 0..7 (lanes 8)"),
    (".queue MEM_W9", "1:8", "unknown slice 'MEM_W9'"),
    (".data VXM, 0, i8: 1", "1:7", "VXM is not a MEM slice"),
    # operands
    (".queue MEM_W0\n read e0", "2:2", "read takes 2 operand(s) (s, addr), not 1"),
    (".queue MEM_W0\n read e0, 1, 2", "2:14", "read takes 2 operand(s)"),
    (".queue MEM_W0\n read 1, e0", "2:7", "operand s of read must be a stream"),
    (".queue MEM_W0\n write e0, 1", "2:8", "operand addr of write must be a number"),
    (".queue MEM_W0\n read e0, 64", "2:11", "address 64 out of range 0..63"),
    (".queue MEM_W0\n read e0, -1", "2:11", "address -1 out of range"),
    (".queue MEM_W0\n read e8, 0", "2:7", "stream 8 out of range: this configuration has 8"),
    (".queue VXM\n add.i32 e4, e8, w0", "2:14", "streams 8..11 out of range"),
    (".queue VXM\n add.i32 e2, e0, w0", "2:10", "i32 operand dst must start an aligned group"),
    (".queue VXM\n add.i16 e0, e1, w0", "2:14", "i16 operand a must start an aligned group"),
    (".queue VXM\n cvt.i8.i32 e2, e1", "2:13", "i32 operand dst must start an aligned group"),
    (".queue MEM_W0\n nop 0", "2:6", "operand count of nop must be in 1..65535, not 0"),
    (".queue MEM_W0\n nop 65536", "2:6", "operand count of nop must be in 1..65535"),
    (".queue MEM_W0\n read e0, 0\n repeat 1, 1024", "3:12", "operand d of repeat must be in "
     "1..1023"),
    # units, queues, timing directives
    (".queue VXM\n read e0, 0", "2:2", "read is a MEM instruction; the queue of VXM takes VXM"),
    (".queue MEM_E0\n  add.i8 e0, e1, e2", "2:3", "add is a VXM instruction; the queue of "
     "MEM_E0 takes MEM"),
    ("  read e0, 0", "1:3", "instruction outside a .queue section"),
    (".at 3", "1:1", ".at outside a .queue section"),
    (".queue MEM_W0\n nop 4\n .at 1 + 2", "3:6", ".at 3: the queue of MEM_W0 is already at "
     "slot 4"),
    (".queue MEM_W0\n nop 2\n repeat 2, 1", "3:2", "repeat has no instruction before it"),
    (".queue MEM_W0\n end\n read e0, 0", "3:2", "instruction after 'end' in the queue of "
     "MEM_W0 (ended at t.s:2:2)"),
    (".queue MEM_W0\n end\n.queue VXM\n.queue MEM_W0\n .at 5", "5:2", ".at after 'end'"),
    (".queue MEM_W0\n" + " nop 1\n" * 128 + " nop 1\n", "130:2", "queue of MEM_W0 is full: "
     "more than queue_depth 128"),
    (".queue MEM_W0\n" + " nop 1\n" * 128, "129:2", "no room for the final 'end' in the queue"),
    # data
    (".data MEM_W0, 0, i8: 1, 128", "1:25", "value 128 out of range for i8 (-128..127)"),
    (".data MEM_W0, 0, u8: -1", "1:22", "value -1 out of range for u8 (0..255)"),
    (".data MEM_W0, 0, i16: 40000", "1:23", "out of range for i16"),
    (".data MEM_W0, 0, i32: 0x80000000", "1:23", "out of range for i32"),
    (".data MEM_W0, 0, i8: 1,2,3,4,5,6,7,8,9", "1:38", "9 values for 8 lanes"),
    (".data MEM_W0, 62, i32: 1", "1:15", "words 62..65 out of range (0..63)"),
    (".data MEM_W0, 64, i8: 1", "1:15", "word 64 out of range"),
    (".data MEM_W0, 0, f64: 1", "1:18", "unknown data type 'f64'"),
    (".data MEM_W0, 1, i8: 1\n.data MEM_W0, 0, i16: 1", "2:7", "word 1 of MEM_W0 is already "
     "initialised at t.s:1:7"),
    (".data [MEM_W0, MEM_W1], 0, i32: 1", "1:7", "i32 spreads over 4 slice(s), not 2"),
    (".data [MEM_W0, VXM], 0, i16: 1", "1:16", "VXM is not a MEM slice"),
])
def test_errors_name_file_line_column_and_cause(text, where, cause):
    message = error(text)
    assert message.startswith(f"t.s:{where}: error: "), message
    assert cause in message, message


def test_asm_error_attributes():
    with pytest.raises(AsmError) as info:
        asm(".queue VXM\n frob")
    assert info.value.loc == Loc("t.s", 2, 2)
    assert info.value.cause == "unknown mnemonic 'frob'"
    assert isinstance(info.value, ValueError)


def _vxm_lines():
    """One assembly line per VXM function and type (every cvt pair), aligned operands."""
    for func in isa.VXM_FUNCS:
        op = isa.OPS_BY_NAME[func]
        for dtype, rtype in isa.type_pairs(op):
            if True:
                name = f"{func}.{dtype.suffix}" + (f".{rtype.suffix}" if op.converts else "")
                refs = {"dst": "w4", "a": "e0", "b": f"w{8 - op.operand_width('b', dtype)}"}
                yield func, dtype, rtype, f"{name} {', '.join(refs[o] for o in op.operands)}"


def test_every_vxm_function_and_type_assembles_disassembles_and_round_trips():
    lines = list(_vxm_lines())
    assert {func for func, *_ in lines} == set(isa.VXM_FUNCS)
    program = asm(".queue VXM\n" + "\n".join(f"    {line}" for *_, line in lines))
    instrs = queue(program, "VXM")[:-1]
    e, w = isa.Dir.E, isa.Dir.W
    for (func, dtype, rtype, line), instr in zip(lines, instrs, strict=True):
        op = isa.OPS_BY_NAME[func]
        values = {"dtype": int(dtype), "dst": isa.StreamRef(w, 4), "a": isa.StreamRef(e, 0)}
        if "b" in op.operands:
            values["b"] = isa.StreamRef(w, 8 - dtype.bytes)
        if op.converts:
            values["rtype"] = int(rtype)
        assert instr == isa.encode(func, **values), line
        assert str(instr) == line
        assert isa.decode(instr.encode()) == instr
    blob = program.image.to_bytes()
    assert assemble(disassemble(program.image), CFG).image.to_bytes() == blob


@pytest.mark.parametrize("text, where, cause", [
    (".queue VXM\n neg.i8 e0, e1, e2", "2:17", "neg takes 2 operand(s) (dst, a), not 3"),
    (".queue VXM\n abs.i16 e1, e0", "2:10", "i16 operand dst must start an aligned group"),
    (".queue VXM\n shl.i32 e4, e0, w2", "2:18", "i32 operand b must start an aligned group"),
    (".queue VXM\n mulh.i32 e4, e0, w8", "2:19", "streams 8..11 out of range"),
    (".queue VXM\n cmpgt e0, e1, e2", "2:2", "'cmpgt': expected the form cmpgt.T"),
    (".queue VXM\n rshr.i8.i32 e0, e1, e2", "2:2", "expected the form rshr.T"),
    (".queue VXM\n and.i8 e0, e1, 3", "2:17", "operand b of and must be a stream"),
    (".queue MEM_E0\n xor.i8 e0, e1, e2", "2:2", "xor is a VXM instruction"),
    (".queue VXM\n exp.i32 e4, e0", "2:2", "exp: a function of f32 only, not of i32"),
    (".queue VXM\n add.bf16 e4, e0, e2", "2:2",
     "add: the VXM does not compute on bf16; cvt it to f32 first"),
    (".queue VXM\n cvt.f16.i32 e4, e0", "2:2", "cvt: f16 converts only to and from f32, not i32"),
    (".queue VXM\n cvt.f16.f32 e4, e1", "2:18", "f16 operand a must start an aligned group of 2"),
])
def test_new_vxm_mnemonic_errors(text, where, cause):
    message = error(text)
    assert message.startswith(f"t.s:{where}: error: "), message
    assert cause in message, message


@pytest.mark.parametrize("text, where, cause", [
    ("f32: 1e39", "1:23", "value 1e39 does not fit f32: beyond its largest finite value "
     "3.40282e+38"),
    ("f16: -65520", "1:23", "value -65520 does not fit f16: beyond its largest finite value 65504"),
    ("f16: 1e-8", "1:23", "value 1e-8 does not fit f16: below its smallest value 2**-24"),
    ("bf16: 1e-41", "1:24", "value 1e-41 does not fit bf16: below its smallest value 2**-133"),
    ("f32: 1e-40", "1:23", "value 1e-40 does not fit f32: below its smallest normal 2**-126"),
    ("f32: 1e999", "1:23", "value 1e999 does not fit f32"),
    ("f32: 1.5, x", "1:28", "expected a float literal (such as 1.5, -2e-3, 7, inf or nan), "
     "found 'x'"),
    ("i8: 1.5", "1:22", "'1.5' is a float literal; an integer is expected here"),
    ("f64: 1.5", "1:18", "unknown data type 'f64'; known: i8, u8, i16, i32, f32, f16, bf16"),
])
def test_float_literal_errors(text, where, cause):
    message = error(f".data MEM_W0, 0, {text}")
    assert message.startswith(f"t.s:{where}: error: "), message
    assert cause in message, message


def test_float_data_rounds_to_nearest_even_as_numpy():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    values = [1.5, -2e-3, 0.1, 1 / 3, 65504.0, 6e-5, -0.0]
    text = ", ".join(repr(v) for v in values)
    program = asm(f".data MEM_W0, 0, f32: {text}, inf\n"
                  f".data MEM_W1, 0, bf16: {text}, nan\n"
                  f".data MEM_W2, 0, f16: {text}, -inf")

    def words(name, count):
        planes = [program.image.data[(MEM[name], w)].astype(np.uint32) for w in range(count)]
        return sum(plane << np.uint32(8 * i) for i, plane in enumerate(planes))

    for name, np_type, tail in (("MEM_W0", np.float32, np.inf),
                                ("MEM_W1", ml_dtypes.bfloat16, np.nan),
                                ("MEM_W2", np.float16, -np.inf)):
        expected = np.array([*values, tail], dtype=np.float64).astype(np_type)
        width = expected.dtype.itemsize
        assert np.array_equal(words(name, width),
                              expected.view(np.uint32 if width == 4 else np.uint16)), name


def test_float_instructions_are_refused_without_floating_point():
    integer_only = dataclasses.replace(CFG, name="integer-only", floating_point=False)
    message = error(".queue VXM\n add.f32 e4, e0, w0", integer_only)
    assert message == ("t.s:2:2: error: add.f32: configuration 'integer-only' is built without "
                       "floating point (Config.floating_point)")
    assert "without floating point" in error(".queue VXM\n cvt.i8.f32 e4, e0", integer_only)
    assert "without floating point" in error(
        f".queue VXM\n .word {isa.encode('exp', dtype=3, dst=4, a=0).encode():#x}", integer_only)
    asm(".queue VXM\n add.i32 e4, e0, w0\n cvt.i32.i8 e4, e0", integer_only)


def test_address_limit_comes_from_the_configuration():
    medium = CONFIGS["medium"]
    asm(".queue MEM_W0\n read e0, 127", medium)
    message = error(".queue MEM_W0\n read e0, 128", medium)
    assert "address 128 out of range 0..127 (mem_words 128)" in message
    groq = CONFIGS["groq"]          # mem_words = 2^ADDR_BITS: the encoding is the limit
    asm(".queue MEM_W0\n read e0, 8191", groq)
    assert "address 8192 out of range 0..8191" in error(".queue MEM_W0\n read e0, 8192", groq)


_MXM_QUEUES = any(s.kind == isa.SliceKind.MXM and s.has_queue for s in isa.floorplan(CFG))


@pytest.mark.skipif(not _MXM_QUEUES, reason="the floorplan has no MXM queues yet")
@pytest.mark.parametrize("text, where, cause", [
    (".queue MXM_W\n lw 0, 4, e0, 1", "2:8", "weight row 4 out of range 0..3 (mxm_size 4)"),
    (".queue MXM_W\n lw 0, -1, e0, 1", "2:8", "weight row -1 out of range 0..3"),
    (".queue MXM_W\n lw 1, 0, e0, 1", "2:5", "MXM plane 1 out of range 0..0 (mxm_planes 1)"),
    (".queue MXM_W\n lw 0, 0, e0, 0", "2:15", "operand n of lw must be in 1..511, not 0"),
    (".queue MXM_W\n iw 4", "2:5", "MXM plane 4 out of range 0..0"),
    (".queue MXM_E\n abc 0, 16, w0, 0, 1", "2:9", "accumulator 16 out of range 0..15 "
     "(mxm_accumulators 16)"),
    (".queue MXM_E\n abc 1, 0, w0, 0, 1", "2:6", "MXM plane 1 out of range 0..0 (mxm_planes 1)"),
    (".queue MXM_E\n abc 0, 0, w0, 2, 1", "2:16", "operand add of abc must be 0 or 1, not 2"),
    (".queue MXM_E\n abc 0, 0, w0, 1, 512", "2:19",
     "operand n of abc must be in 1..511, not 512"),
    (".queue MXM_E\n abc 0, w0, 0, 1", "2:2", "abc takes 5 operand(s) (p, acc, s, add, n), not 4"),
    (".queue MXM_W\n acc 0, e2, 0, 1", "2:9", "i32 operand dst must start an aligned group of 4"),
    (".queue MXM_W\n acc 0, e4, 16, 1", "2:13", "accumulator 16 out of range 0..15"),
    (".queue MXM_W\n acc 1, e4, 0, 1", "2:6", "MXM plane 1 out of range 0..0 (mxm_planes 1)"),
    (".queue MXM_W\n acc e4, 0, 1", "2:2", "acc takes 4 operand(s) (p, dst, acc, n), not 3"),
])
def test_mxm_operand_ranges_come_from_field_limit(text, where, cause):
    message = error(text)
    assert message.startswith(f"t.s:{where}: error: "), message
    assert cause in message, message


@pytest.mark.skipif(not _MXM_QUEUES, reason="the floorplan has no MXM queues yet")
def test_mxm_limits_follow_the_configuration():
    groq = CONFIGS["groq"]
    program = asm(".queue MXM_W\n lw 0, 319, e0, 511\n iw 0\n abc 0, 319, e0, 1, 2\n"
                  " acc 0, e4, 319, 1", groq)
    mxm_w = [s.name for s in isa.queues(groq)].index("MXM_W")     # 1: C2C_W is queue 0
    assert [str(i) for i in program.image.queues[mxm_w][:4]] == [
        "lw 0, 319, e0, 511", "iw 0", "abc 0, 319, e0, 1, 2", "acc 0, e4, 319, 1"]
    assert "weight row 320 out of range 0..319" in error(".queue MXM_W\n lw 0, 320, e0, 1",
                                                         groq)
    assert "weight row 512 out of range" in error(".queue MXM_W\n lw 0, 512, e0, 1", groq)
    # the streams an operand spans on a configuration: R weight rows; one int32 group per acc
    planes = Config(name="planes", superlanes=2, lanes_per_superlane=4, streams=8,
                    mem_slices=4, mem_words=64, mxm_size=4, mxm_planes=2, mxm_load_rows=4)
    assert "streams 6..9 out of range" in error(".queue MXM_W\n lw 0, 0, e6, 1", planes)
    assert "MXM plane 2 out of range 0..1" in error(".queue MXM_W\n acc 2, e4, 0, 1", planes)
    program = asm(".queue MXM_W\n lw 1, 0, e4, 1\n acc 1, e4, 0, 1", planes)
    assert str(program.image.queues[0][1]) == "acc 1, e4, 0, 1"


# docs/assembly.md: every example runs as the document says -------------------------------

DOC = Path(__file__).parent.parent / "docs" / "assembly.md"
_FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def doc_examples():
    """The examples of docs/assembly.md: ``("asm", text, None)`` for a program that must
    assemble and check cleanly, ``("asm-error", text, (argv, message))`` for one that
    ``opentsp asm`` must refuse with ``message`` (the ``text`` block after it holds the
    command line, ``$ opentsp asm ...``, and the line it prints)."""
    blocks = [(m.group(1), m.group(2)) for m in _FENCE.finditer(DOC.read_text())]
    examples = []
    for i, (kind, text) in enumerate(blocks):
        if kind == "asm":
            examples.append((kind, text, None))
        elif kind == "asm-error":
            follow_kind, follow = blocks[i + 1]
            assert follow_kind == "text", f"asm-error block {text!r} without its output"
            command, message = follow.rstrip("\n").split("\n")
            assert command.startswith("$ opentsp asm "), command
            examples.append((kind, text, (shlex.split(command)[2:], message)))
    return examples


def test_docs_assembly_has_examples_of_every_checker_rule():
    examples = doc_examples()
    assert len([e for e in examples if e[0] == "asm"]) >= 6
    text = DOC.read_text()
    for rule in range(1, 12):
        assert f"**Rule {rule}" in text, rule


@pytest.mark.parametrize("kind, text, expected", doc_examples(),
                         ids=lambda value: value if isinstance(value, str) and
                         value.startswith("asm") else "")
def test_docs_assembly_examples(kind, text, expected, tmp_path, monkeypatch, capsys):
    if kind == "asm":
        program = assemble(text, filename="x.s")     # the configuration of its .config
        assert check(program) == []
        return
    argv, message = expected
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.s").write_text(text)
    argv = [str(tmp_path / "x.bin") if arg == "/tmp/x.bin" else arg for arg in argv]
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert err == message + "\n" and out == ""
    assert not (tmp_path / "x.bin").exists()


# Number literals: every base, and a leading zero refused with what to write instead ------

def test_number_literals_in_every_base():
    program = asm(".equ A, 0x1F + 0X10\n.equ B, 0o17 + 0O1\n.equ C, 0b101 + 0B1_0\n"
                  ".equ D, 1_000 + 0 + 0_ + 0x_ff\n.queue MEM_W0\n    read e(0b1), 0o7\n")
    assert program.symbols == {"A": 47, "B": 16, "C": 7, "D": 1255}
    assert str(queue(program, "MEM_W0")[0]) == "read e1, 7"


@pytest.mark.parametrize("text, where, cause", [
    (".queue VXM\n    nop 01", "2:9", "number '01' has a leading zero: write 1 (decimal) or 0o1 "
     "(octal)"),
    (".data MEM_W0, 0, i8: 007, 040", "1:22", "number '007' has a leading zero: write 7 "
     "(decimal) or 0o7 (octal)"),
    (".data MEM_W0, 0, i8: 7, 040", "1:25", "number '040' has a leading zero: write 40 "
     "(decimal) or 0o40 (octal, 32)"),
    (".equ A, 09", "1:9", "number '09' has a leading zero: write 9 (decimal)"),
    (".equ A, 00", "1:9", "number '00' has a leading zero: write 0 (decimal)"),
    (".equ A, 0_7", "1:9", "number '0_7' has a leading zero: write 7 (decimal) or 0o7 (octal)"),
    (".queue MEM_W0\n .at 010", "2:6", "number '010' has a leading zero: write 10 (decimal) or "
     "0o10 (octal, 8)"),
    (".queue MEM_W0\n .word 0x1 + 01", "2:14", "number '01' has a leading zero: write 1 (decimal) "
     "or 0o1 (octal)"),
    (".queue MEM_W0\n read e(01), 0", "2:9", "number '01' has a leading zero: write 1 (decimal) "
     "or 0o1 (octal)"),
    (".queue MEM_W0\n read e01, 0", "2:7", "stream 'e01' has a leading zero: write e1"),
    (".queue MEM_W0\n write 0, W007", "2:11", "stream 'W007' has a leading zero: write W7"),
    (".fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 05", "1:44", "number '05' has a leading "
     "zero: write 5 (decimal) or 0o5 (octal)"),
    (".equ A, 0x", "1:9", "bad number '0x': no hexadecimal digits after 0x"),
    (".equ A, 0x_", "1:9", "bad number '0x_': no hexadecimal digits after 0x"),
    (".equ A, 0b", "1:9", "bad number '0b': no binary digits after 0b"),
    (".equ A, 0xfg", "1:9", "bad number '0xfg': 'g' is not a hexadecimal digit (0-9, a-f)"),
    (".equ A, 0o8", "1:9", "bad number '0o8': '8' is not an octal digit (0-7)"),
    (".equ A, 0b102", "1:9", "bad number '0b102': '2' is not a binary digit (0 or 1)"),
    (".equ A, 12abc", "1:9", "bad number '12abc': 'a' is not a decimal digit (0-9)"),
    (".equ A, 1.5.2", "1:9", "bad number '1.5.2': '.' is not a decimal digit (0-9)"),
    (".equ A, 1.5", "1:9", "'1.5' is a float literal; an integer is expected here (floats "
     "stand only in .data of f32, f16 or bf16)"),
])
def test_bad_number_literals_are_asm_errors_at_the_literal(text, where, cause):
    assert error(text) == f"t.s:{where}: error: {cause}"


def test_leading_zero_through_the_command_line(tmp_path, capsys):
    """`opentsp asm` used to print a traceback (int(..., 0)'s ValueError): now one line."""
    source = tmp_path / "lz.s"
    output = tmp_path / "lz.bin"
    for text, message in [
        (".queue VXM\n    nop 01\n", f"{source}:2:9: error: number '01' has a leading zero: "
                                       f"write 1 (decimal) or 0o1 (octal)"),
        (".data MEM_W0, 0, i8: 1, 007, 040\n", f"{source}:1:25: error: number '007' has a "
                                               f"leading zero: write 7 (decimal) or 0o7 "
                                               f"(octal)"),
    ]:
        source.write_text(text)
        assert cli.main(["asm", str(source), "-o", str(output)]) == 1
        out, err = capsys.readouterr()
        assert err == f"opentsp: error: {message}\n" and out == ""
        assert "Traceback" not in err and not output.exists()


ARCH = Path(__file__).parent.parent / "docs" / "architecture.md"


def test_architecture_encoding_table_is_the_isa():
    """Section 7's table of fields (one row per mnemonic) is exactly what opentsp.isa encodes."""
    rows = re.findall(r"^\| `(\w+)` \| 0x([0-9A-F]{2}) \| ([^|]*) \|$", ARCH.read_text(), re.M)
    assert len(rows) >= 20
    for mnemonic, opcode, fields in rows:
        op = isa.OPS_BY_NAME[mnemonic]
        assert op.opcode == int(opcode, 16), mnemonic
        documented = set()
        for name, hi, lo in re.findall(r"(\w+)\[(\d+)(?::(\d+))?\]", fields):
            low = int(lo or hi)
            documented.add((name, low, int(hi) - low + 1))
        assert documented == {(f.name, f.lsb, f.width) for f in op.fields}, mnemonic


def test_the_mxm_float_mode_assembles_round_trips_and_needs_floating_point():
    text = (".queue MXM_W\n    lw.bf16 0, 0, e2, 1\n    iw 0\n    abc.f16 0, 1, w4, 1, 3\n"
            "    acc.f32 0, e4, 1, 3\n")
    program = asm(text)
    names = [instr.op.name for instr in program.image.queues[0][:4]]
    assert names == ["lw.bf16", "iw", "abc.f16", "acc.f32"]
    assert "abc.f16 0, 1, w4, 1, 3" in disassemble(program.image)
    assert assemble(disassemble(program.image), CFG).image.to_bytes() == \
        program.image.to_bytes()
    message = error(text, CONFIGS["fpga"])
    assert message == ("t.s:2:5: error: lw.bf16: configuration 'fpga' is built without "
                       "floating point (Config.floating_point)")
