"""Fuzzing the inputs under hypothesis: the assembler, the image loader, the disassembler, the
checker and ``opentsp asm``.

Random text, mutated example programs, random bytes and mutated valid images (bit flips,
truncation, extension, header fields, with and without a fixed-up CRC) either succeed or are
refused with the project's own error (``AsmError``, ``ImageError``: ``ValueError`` subclasses)
carrying a one-line message that names the place (``FILE:LINE:COL`` or ``offset N``). Anything
else is a bug. What succeeds must be whole: an image serialises and loads back equal, and its
disassembly assembles back to it. ``opentsp asm`` leaves no output file when it fails.

Bounded for ``make test`` (derandomized, fixed example counts): about a minute in all. The long
campaign, ``make fuzz``, sets ``OPENTSP_FUZZ_EXAMPLES`` (examples per test) and runs only the
hypothesis tests (``-m hypothesis``, the marker hypothesis gives them) with random search
(``derandomize=False``) from the seed it prints (``--hypothesis-seed``); hypothesis prints a
failing example, shrunk, with the way to reproduce it.
"""

import os
import random
import struct
import zlib
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from opentsp import isa
from opentsp.app.cli import main as cli_main
from opentsp.config import CONFIGS
from opentsp.firmware.asm import AsmError, assemble
from opentsp.firmware.checker import CheckError, check
from opentsp.firmware.disasm import disassemble
from opentsp.firmware.image import HEADER_SIZE, Image, ImageError
from opentsp.verif.randprog import random_image

CFG = CONFIGS["default"]
EXAMPLES = sorted((Path(__file__).parent.parent / "firmware" / "examples").glob("*.s"))
SOURCES = [path.read_text() for path in EXAMPLES]
VALID = [random_image(CFG, seed).to_bytes() for seed in range(6)]

#: Examples per test of the long campaign (``make fuzz``); unset: the bounded run of make test.
CAMPAIGN = int(os.environ.get("OPENTSP_FUZZ_EXAMPLES", "0"))


def _fuzz_settings(bounded):
    """Hypothesis settings: ``bounded`` examples, derandomized (``make test``), or the
    campaign's count with random search when ``OPENTSP_FUZZ_EXAMPLES`` is set."""
    return settings(max_examples=CAMPAIGN or bounded, deadline=None,
                    derandomize=not CAMPAIGN, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


FUZZ = _fuzz_settings(150)

#: Words an assembly line is made of, for text that gets past the lexer now and then.
_VOCABULARY = ([op.name for op in isa.OPS] + [f"add.{t.suffix}" for t in isa.DType]
               + ["cvt.i8.i32", ".queue", ".data", ".at", ".equ", ".config", ".fetched", "VXM",
                  "MEM_W0", "MEM_E3", "MXM_W", "SXM_E", "e0", "w4", "e31", "w33", "r", "i8:",
                  "u8:", "i32:", ",", ":", "(", ")", "[", "]", "+", "-", "*", "//", "%", "0",
                  "1", "-1", "65535", "65536", "0x7fffffff", "1_000", "0b101", "0o17", "007",
                  "0x", "X", "X:", ";",
                  "\n", "\t", " ", "default", "medium"])


def _assemble_or_refuse(text):
    """Assemble ``text``; a refusal must be an AsmError with one line naming the place."""
    try:
        program = assemble(text, CFG, filename="fuzz.s")
    except AsmError as error:
        message = str(error)
        assert isinstance(error, ValueError)
        assert "\n" not in message and message.startswith("fuzz.s:"), message
        return None
    image = program.image
    assert Image.from_bytes(image.to_bytes(), CFG) == image
    again = assemble(disassemble(image), CFG, filename="disasm.s").image
    assert again.to_bytes() == image.to_bytes()
    return program


def _load_or_refuse(blob):
    """Load ``blob``; a refusal must be an ImageError with one line naming the offset."""
    try:
        image = Image.from_bytes(blob, CFG)
    except ImageError as error:
        message = str(error)
        assert "\n" not in message and message.startswith("offset "), message
        return None
    again = image.to_bytes()
    assert Image.from_bytes(again, CFG) == image
    assert assemble(disassemble(image), CFG).image == image
    return image


def _with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body))


@FUZZ
@given(st.text(max_size=300))
@example("\x00")
@example(".data MEM_W0, 0, i8: " + ", ".join(["1"] * 9))
@example(".queue VXM\n.at 5\n.at 3\n")
@example(".queue VXM\nnop 01\n")                    # int(..., 0) raised ValueError on these
@example(".data MEM_W0, 0, i8: 007, 040, 0x_\n")
def test_random_text(text):
    _assemble_or_refuse(text)


@FUZZ
@given(st.lists(st.sampled_from(_VOCABULARY), max_size=40))
@example([".queue", "VXM", "\n", "add.i8", "e0", ",", "e0", ",", "e0"])
@example([".equ", "X", ",", "1", "//", "0"])
@example([".equ", "X", ",", "1", "%", "0"])
@example([".at", "-1"])
@example([".queue", "VXM", "\n", "nop", "65536"])
@example([".config", "medium"])
def test_random_token_streams(tokens):
    _assemble_or_refuse(" ".join(tokens))


@FUZZ
@given(st.sampled_from(range(len(SOURCES))), st.data())
def test_mutated_examples(index, data):
    text = SOURCES[index]
    lines = text.splitlines(keepends=True)
    kind = data.draw(st.sampled_from(["delete", "insert", "replace", "swap", "duplicate"]))
    i = data.draw(st.integers(0, len(lines) - 1))
    j = data.draw(st.integers(0, len(lines) - 1))
    if kind == "delete":
        del lines[i:i + data.draw(st.integers(1, 5))]
    elif kind == "insert":
        lines.insert(i, data.draw(st.sampled_from(lines + ["\n", "repeat 3, 2\n", "end\n",
                                                           ".queue MEM_W0\n", "sync\n"])))
    elif kind == "replace":
        line = lines[i]
        at = data.draw(st.integers(0, len(line)))
        cut = data.draw(st.integers(0, 6))
        new = data.draw(st.sampled_from(_VOCABULARY + ["9", "99999", "-", ",", ""]))
        lines[i] = line[:at] + new + line[at + cut:]
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i:i] = lines[i:i + data.draw(st.integers(1, 8))]
    _assemble_or_refuse("".join(lines))


@FUZZ
@given(st.binary(max_size=400))
@example(b"OTSP")
@example(b"OTSP" + b"\x00" * 30)
def test_random_bytes(blob):
    _load_or_refuse(blob)


@FUZZ
@given(st.sampled_from(range(len(VALID))), st.data())
@example(0, None)
def test_mutated_images(index, data):
    blob = bytearray(VALID[index])
    if data is None:        # the valid image itself
        assert _load_or_refuse(bytes(blob)) is not None
        return
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "header", "word",
                                      "count"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            bit = data.draw(st.integers(0, 8 * len(blob) - 1))
            blob[bit // 8] ^= 1 << (bit % 8)
    elif kind == "truncate":
        del blob[data.draw(st.integers(0, len(blob) - 1)):]
    elif kind == "extend":
        blob += data.draw(st.binary(min_size=1, max_size=40))
    elif kind == "header":      # any header field: version, ISA, hash, counts
        offset = data.draw(st.sampled_from([4, 6, 8, 16, 20]))
        width = {4: 2, 6: 2, 8: 8, 16: 4, 20: 4}[offset]
        blob[offset:offset + width] = data.draw(st.binary(min_size=width, max_size=width))
    elif kind == "word":        # an instruction word or a data record byte
        offset = data.draw(st.integers(HEADER_SIZE, len(blob) - 5))
        blob[offset:offset + 4] = data.draw(st.binary(min_size=4, max_size=4))
    else:                       # a queue's instruction count
        nqueues = struct.unpack_from("<I", blob, 16)[0]
        q = data.draw(st.integers(0, nqueues - 1))
        struct.pack_into("<I", blob, HEADER_SIZE + 4 * q,
                         data.draw(st.sampled_from([0, 1, 2, 129, 1 << 20, (1 << 32) - 1])))
    if data.draw(st.booleans()):            # a consistent CRC: the mutation itself is judged
        blob = bytearray(_with_crc(bytes(blob[:-4])) if len(blob) >= 4 else blob)
    _load_or_refuse(bytes(blob))


@_fuzz_settings(40)
@given(st.integers(0, 10_000), st.integers(0, 24))
def test_checker_on_random_programs(seed, length):
    """The checker judges any random program without crashing: a list of CheckErrors, each one
    line naming its queue and instruction."""
    errors = check(random_image(CFG, seed, length=length))
    for error in errors:
        assert isinstance(error, CheckError) and "\n" not in str(error)
        assert str(error).startswith(f"error: queue {error.queue} ("), str(error)


def test_asm_leaves_no_output_when_it_fails(tmp_path, capsys):
    source = tmp_path / "bad.s"
    output = tmp_path / "bad.bin"
    rng = random.Random(5)
    for text in [".queue VXM\nadd.i8 e0, e0\n", ".queue VXM\n.at 3\nnop 1\n.at 2\n",
                 "\x00\xff", SOURCES[0] + "\n.queue VXM\n    end 1\n"] + \
            [SOURCES[rng.randrange(len(SOURCES))][:rng.randrange(400)] + "\n@"
             for _ in range(5)]:
        source.write_text(text, errors="surrogateescape")
        assert cli_main(["asm", str(source), "-o", str(output)]) == 1
        assert not output.exists()
        message = capsys.readouterr().err
        assert message.startswith("opentsp: error: ") and message.count("\n") == 1, message
        assert list(tmp_path.iterdir()) == [source]         # no temporary file either
    output.write_bytes(b"previous")
    source.write_text(".queue VXM\nbogus\n")
    assert cli_main(["asm", str(source), "-o", str(output)]) == 1
    assert output.read_bytes() == b"previous"                # untouched, not half-written


def test_cli_refuses_unreadable_input_with_one_line(tmp_path, capsys):
    binary = tmp_path / "binary.s"
    binary.write_bytes(b"\xff\xfe\x00 .queue VXM\n")
    missing = tmp_path / "missing.s"
    nowhere = tmp_path / "no" / "such" / "dir" / "x.bin"
    good = tmp_path / "good.s"
    good.write_text(".queue VXM\n    nop 1\n")
    for argv in (["asm", str(binary)], ["asm", str(missing)],
                 ["asm", str(good), "-o", str(nowhere)],
                 ["disasm", str(binary)], ["disasm", str(missing)]):
        assert cli_main(argv) == 1, argv
        message = capsys.readouterr().err
        assert message.startswith("opentsp: error: ") and message.count("\n") == 1, message
    assert not nowhere.exists()


def test_word_directive_round_trips_what_the_text_form_refuses():
    """Regression of the fuzzer's first find: a valid image with an operand past the
    configuration's limits (here an address with high bits set, a stream past `streams` and
    an accumulator past mxm_accumulators) or a repeat with nothing to repeat disassembled to
    text that did not assemble. Such words now come out as `.word`."""
    words = {"MEM_W0": [isa.encode("repeat", n=2, d=1),
                        isa.encode("read", s=isa.StreamRef(isa.Dir.E, 0), addr=4098)],
             "VXM": [isa.encode("add", dtype=0, dst=isa.StreamRef(isa.Dir.W, 9),
                                a=0, b=0)],
             "MXM_E": [isa.encode("acc", p=0, acc=300, dst=0, n=1)]}
    names = [s.name for s in isa.queues(CFG)]
    queues = [words.get(name, []) + [isa.encode("end")] for name in names]
    image = Image(CFG, queues, {})
    text = disassemble(image)
    assert text.count(".word") == 4 and "read e0, 4098 (not accepted as text)" in text
    assert assemble(text, CFG).image == image
    program = assemble(".queue MEM_E0\n    .word 0x20000000 + 4098\n", CFG)
    assert str(program.image.queues[names.index("MEM_E0")][0]) == "read e0, 4098"


def test_word_directive_refuses_bad_words_with_one_line():
    for text, message in [
        (".queue VXM\n.word 0x18000000\n", "fuzz.s:2:1: error: .word: word 0x18000000: "
                                           "unknown opcode 0x06"),
        (".queue VXM\n.word 0xffffffff\n", "fuzz.s:2:1: error: .word: word 0xffffffff: "
                                           "reserved bits set for transpose"),
        (".queue VXM\n.word 0x20000000\n", "fuzz.s:2:1: error: .word 0x20000000 is read, a MEM "
                                           "instruction; the queue of VXM takes VXM and "
                                           "flow-control instructions only"),
        (".word 0\n", "fuzz.s:1:1: error: .word outside a .queue section"),
    ]:
        try:
            assemble(text, CFG, filename="fuzz.s")
        except AsmError as error:
            assert str(error) == message
        else:
            raise AssertionError(f"{text!r} assembled")


def test_non_utf8_source_is_an_asm_error_at_the_byte(tmp_path):
    from opentsp.firmware.asm import assemble_file

    source = tmp_path / "latin1.s"
    source.write_bytes(b".queue VXM\n    nop 1 ; caf\xe9\n")
    try:
        assemble_file(source, CFG)
    except AsmError as error:
        assert str(error) == f"{source}:2:16: error: not UTF-8 text: byte 0xe9"
    else:
        raise AssertionError("assembled")


def test_fetched_code_without_a_preloaded_ifetch_is_refused():
    """Regression of the long campaign's find (make fuzz, seed 2190284835): ifetch.s without
    its preloaded `ifetch` assembled to an image whose VXM queue was empty (its only ifetch was
    in the fetched code, which nothing fetched), and the image refused to serialise. Fetched
    code with no preloaded ifetch is now an AsmError at the first .fetched."""
    lines = SOURCES[[path.name for path in EXAMPLES].index("ifetch.s")].splitlines(True)
    at = lines.index(".at F1\n")
    assert lines[at:at + 2] == [".at F1\n", "    ifetch e0, N\n"]
    del lines[at:at + 2]
    for text, where in [("".join(lines), f"fuzz.s:{at + 1}:1"),
                        (".queue VXM\n    nop 1\n.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0\n"
                         "    end\n", "fuzz.s:3:1")]:
        try:
            assemble(text, CFG, filename="fuzz.s")
        except AsmError as error:
            assert str(error) == (f"{where}: error: the queue of VXM has fetched code but no "
                                  f"ifetch before its first .fetched: nothing would fetch it")
        else:
            raise AssertionError("assembled")
