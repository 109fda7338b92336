"""Test programs shared by several test modules (tests/ is on ``sys.path`` through
``tests/conftest.py``)."""

from pathlib import Path

import numpy as np

from opentsp.config import get_config
from opentsp.firmware.asm import assemble_file
from opentsp.firmware.checker import check_or_raise
from opentsp.firmware.image import Image

#: firmware/examples/, the example programs.
EXAMPLES_DIR = Path(__file__).parent.parent / "firmware" / "examples"


def four_lane_stream_pass():
    """``stream_pass.s`` with data for the ``fpga`` configuration's four lanes."""
    text = (EXAMPLES_DIR / "stream_pass.s").read_text()
    for eight, four in (("1, 2, 3, 4, 5, 6, 7, -8", "1, 2, 3, -8"),
                        ("-1, -2, -3, -4, -5, -6, -7, 8", "-1, -2, -3, 8")):
        assert eight in text
        text = text.replace(eight, four)
    return text


def small_fpga_image():
    """An ``fpga``-configuration image with two data words: memory 2 word 5 holds lanes 1..4,
    memory 7 word 1023 holds 0xEE in every lane; every queue only ends."""
    config = get_config("fpga")
    image = Image.empty(config)
    image.data[(2, 5)] = np.arange(1, config.lanes + 1, dtype=np.uint8)
    image.data[(7, 1023)] = np.full(config.lanes, 0xEE, np.uint8)
    return image


def saved(directory, images):
    """Save ``(name, Image)`` pairs as ``directory/NAME.bin``; returns ``(name, path)`` pairs, as
    the runner takes them."""
    programs = []
    for name, image in images:
        path = directory / f"{name}.bin"
        image.save(path)
        programs.append((name, path))
    return programs


def checked_examples(config, sources):
    """``(stem, Image)`` of each source assembled for ``config`` and passed by the checker."""
    images = []
    for source in sources:
        program = assemble_file(source, config)
        check_or_raise(program)
        images.append((source.stem, program.image))
    return images


def assert_all_match(records):
    """Every runner record: no error, the golden model's cycle count, bit-exact memories."""
    for record in records:
        assert record["error"] is None, f"{record['name']}: {record['error']}"
        assert record["cycles_rtl"] == record["cycles_golden"], record
        assert record["match"], f"{record['name']}: {record['mismatches']}"


#: Sessions (one load, many starts; docs/architecture.md section 10): a program that keeps its
#: state in MEM. Each run adds STEP to the counter C (MEM_W0 word 0) and then C to ACC (MEM_E0
#: word 1), with ``read``, VXM ``add`` and ``write``; checker-clean. After ``r`` runs, lane by lane
#: (int8, wrapping): C = C0 + r * STEP, ACC = r * C0 + STEP * r * (r + 1) / 2.
SESSION_COUNTER = """\
; counter.s: a program that keeps its state in MEM, for sessions (one load, many starts).
; Each run: C = C + STEP (MEM_W0 word C), then ACC = ACC + C (MEM_E0 word ACC).
.equ C, 0                   ; MEM_W0: the counter
.equ STEP, 0                ; MEM_E0: the step per lane
.equ ACC, 1                 ; MEM_E0: the running sum of the counter
.equ V1, 4                  ; C + STEP
.equ V2, V1 + 6             ; ACC + C, C read back after its write has landed

.data MEM_W0, C, i8: 0, 1, 2, 3, 4, 5, 6, 7
.data MEM_E0, STEP, i8: 1, 2, 3, 4, 5, 6, 7, 8

.queue VXM
.at V1
    add.i8 w1, e0, w0       ; C + STEP, westward to MEM_W0 (1 hop)
.at V2
    add.i8 e1, e0, w0       ; C + ACC, eastward to MEM_E0 (1 hop)

.queue MEM_W0
.at V1 - 2
    read e0, C
.at V1 + 2
    write C, w1
.at V2 - 2
    read e0, C

.queue MEM_E0
.at V1 - 2
    read w0, STEP
.at V2 - 2
    read w0, ACC
.at V2 + 2
    write ACC, e1
"""
SESSION_COUNTER_C0 = np.arange(8)
SESSION_COUNTER_STEP = np.arange(1, 9)


def session_counter_expected(runs):
    """``(C, ACC)`` of :data:`SESSION_COUNTER` after ``runs`` runs, as uint8 lanes."""
    c = SESSION_COUNTER_C0 + runs * SESSION_COUNTER_STEP
    acc = runs * SESSION_COUNTER_C0 + SESSION_COUNTER_STEP * runs * (runs + 1) // 2
    return c.astype(np.uint8), (acc % 256).astype(np.uint8)


#: Sessions: state that a start clears (the VXM's chaining register, an MXM accumulator, the SXM's
#: permute table, a MEM write sequencer's count), each used before the run sets it and left set
#: by the run. Every run writes the same words from the same inputs, so every run leaves the
#: memories of the first exactly when the start cleared that state. It breaks checker rules on
#: purpose (``acc`` before ``iw``, ``permute`` before ``perm_load``, ``swrite`` of a stream
#: nothing writes: zeros): assemble it without the checker.
SESSION_CLEARS = """\
; clears.s: state a start must clear, used before the run sets it; every run writes the same
; words from the same inputs, so every run leaves the same memories only if the start cleared it.
.data MEM_W0, 0, i8: 1, 2, 3, 4, 5, 6, 7, 8            ; x for the VXM
.data MEM_W3, 0, i8: 1, 2, 3, 4                        ; MXM weight rows 0..3
.data MEM_W3, 1, i8: 5, 6, 7, 8
.data MEM_W3, 2, i8: -1, -2, -3, -4
.data MEM_W3, 3, i8: 9, 10, 11, 12
.data MEM_W2, 8, i8: 1, 1, 2, 3                        ; MXM activations
.data MEM_E3, 0, u8: 10, 11, 12, 13, 14, 15, 16, 17    ; x for the SXM
.data MEM_E3, 1, u8: 3, 7, 0, 5, 1, 6, 2, 4            ; permute table, low bytes
.data MEM_E1, 10, u8: 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55
.data MEM_E1, 11, u8: 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55
.data MEM_E1, 20, u8: 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66
.data MEM_E1, 21, u8: 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66
.data MEM_E1, 22, u8: 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66
.data MEM_E1, 23, u8: 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66

; VXM: the chaining register is 0 after a start, so r + x = x; the run leaves it at 2x.
.queue MEM_W0
    read e0, 0
    read e0, 0
.queue VXM
.at 2
    add.i8 e1, r, e0
    add.i8 e1, e0, e0
.queue MEM_E0
.at 4
    write 8, e1             ; r + x
    write 9, e1             ; 2x

; MXM: accumulator 0 reads 0 after a start, and abc with add = 1 adds q to 0.
.queue MEM_W3
    read w0, 0              ; weight rows, at MXM_W (2 hops) in cycles 3..6
    read w0, 1
    read w0, 2
    read w0, 3
.at 5
    write 16, e0            ; accumulator 0 at the start (byte 0)
.at 13
    write 17, e0            ; q (byte 0)
.queue MEM_W2
.at 4
    read w1, 8              ; x, at MXM_W (3 hops) in cycle 8
.at 14
    write 17, e1            ; q (byte 1)
.queue MXM_W
.at 2
    acc 0, e0, 0, 1
.at 3
    lw 0, 0, w0, 4
.at 7
    iw 0
.at 8
    abc 0, 0, w1, 1, 1
.at 10
    acc 0, e0, 0, 1

; SXM: the permute table is 0 after a start (every lane takes lane 0), then a permutation.
.queue MEM_E3
.at 2
    read e2, 0              ; x, at SXM_E (1 hop) in cycle 4
.at 6
    read e4, 1              ; table, low bytes, at SXM_E in cycle 8
    write 5, w0             ; permute by the cleared table
    read e2, 0              ; x again, for cycle 10
.at 13
    write 7, w0             ; permute by the loaded table
.queue MEM_E2
.at 5
    read e5, 2              ; table, high bytes (word 2 is zero)
.queue SXM_E
.at 4
    permute w0, e2
.at 8
    perm_load e4
.at 10
    permute w0, e2

; MEM write sequencer: count 1 after a start (one word), 3 after the agi.
.queue MEM_E1
.at 1
    swrite 10, e7           ; word 10 only
.at 3
    agi 1, 1, 3
.at 5
    swrite 20, e7           ; words 20, 21, 22
.at 9
    nop 1
"""
