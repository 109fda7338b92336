"""The static timing checker: the rules of ``docs/architecture.md`` that the programmer must
guarantee ("What the compiler or programmer must guarantee"), one module per rule family.

Section 6, stream and bank rules:

1. Every stream operand a consumer reads holds a value some producer put there
   (:mod:`~opentsp.firmware.checker.streams`).
2. No stream register is written twice at the end of the same cycle
   (:mod:`~opentsp.firmware.checker.streams`).
3. No MEM slice reads a bank in the cycle in which a write commits to the same bank
   (:mod:`~opentsp.firmware.checker.mem`).

(Rules 4 and 5, ranges, alignment, ``repeat`` and queue depth, are the assembler's.)

Section 7a, MXM rules (:mod:`~opentsp.firmware.checker.mxm`):

6. An MXM queue issues no ``abc`` or ``acc`` before its first ``iw`` ("MXM used before weights
   are installed").
7. An ``acc`` element reads an accumulator at least ``isa.mxm_span`` cycles after every earlier
   ``abc`` element of it (else before that element has landed).
12. Every element of an ``lw``/``abc``/``acc`` sequence runs: none is lost to a new sequence
    instruction of its kind or to the queue's ``end``. The elements are checked as the
    instructions they are (rules 1, 2, 6, 7 and 13).
13. No ``iw p`` in a cycle in which an element of a load sequence writes plane ``p``.

Section 5a, sync (:mod:`~opentsp.firmware.checker.sync`):

8. Every ``sync`` that a queue reaches is released by a ``notify`` (issue cycles come from
   :func:`opentsp.queue_timing.schedule`, which computes all queues together).

Section 6a, MEM sequencers (:mod:`~opentsp.firmware.checker.mem`):

9. Every element of a ``sread``/``swrite`` sequence issues: none is lost to a ``read``,
   ``gather``, ``write`` or ``scatter`` of the queue on the same port, to a new
   ``sread``/``swrite`` or to the queue's ``end``. Sequence elements are checked as the plain
   ``read``/``write`` they are (rules 1 to 3, with their addresses); ``gather`` and ``scatter``
   addresses are data, so their bank use cannot be checked.

Section 7b, SXM (:mod:`~opentsp.firmware.checker.sxm`):

10. A ``permute`` issues after a ``perm_load`` of its queue, and a ``perm_load`` whose table is
    known statically (both bytes read from words holding their ``.data`` or zero) loads a
    permutation of the lanes.

Section 5b, instruction fetch (:mod:`~opentsp.firmware.checker.fetch`):

11. Every word an ``ifetch`` takes is known statically (lane 0 of words that MEM ``read``s
    deliver and that hold their ``.data``) and is an instruction of the queue; the program
    counter reaches a fetched word no earlier than ``isa.FETCH_LATENCY`` cycles after its fetch;
    no fetch overwrites a word that the queue has still to execute; no queue runs out of words.
    The fetched words extend the queue's program for every other rule (:class:`Timing` schedules
    what is known, decodes the words the reads deliver and schedules again).

Section 8, element types (:mod:`~opentsp.firmware.checker.types`):

14. A VXM instruction reads a float operand (on streams or chained) only where its producer
    wrote that float type, and an integer operand only where it wrote an integer, whenever the
    producer states a type (a typed VXM instruction, an MXM ``acc``).

Section 7d, C2C links (:mod:`~opentsp.firmware.checker.c2c`):

15. Frames on one link at least the previous frame's cycles apart (no ``send`` or ``mark`` into
    a busy link); a C2C slice reads and writes only the streams of its edge; a ``deskew`` is
    its queue's first instruction, at most one a chip, and every other queue of its chip starts
    with ``sync`` (or ends). Rule 16, across chips, is :mod:`opentsp.firmware.system`'s.

The other modules: :mod:`~opentsp.firmware.checker.timing` (:class:`Timing`, the schedule and
the index of stream writes that every rule looks values up in; it explains how),
:mod:`~opentsp.firmware.checker.progressions` (issues as arithmetic progressions of cycles),
:mod:`~opentsp.firmware.checker.report` (:class:`CheckError` and message helpers). Whether a
MEM word is static (rules 10 and 11) is :func:`opentsp.firmware.checker.mem.static_word`.
"""

from opentsp.firmware.checker.fetch import RULE_FETCH
from opentsp.firmware.checker.mem import RULE_BANK, RULE_MEM_SEQ
from opentsp.firmware.checker.mxm import (
    RULE_MXM_ACC,
    RULE_MXM_IW,
    RULE_MXM_SEQ,
    RULE_MXM_WEIGHTS,
)
from opentsp.firmware.checker.progressions import Issue, ap_intersection, overlapping_pairs
from opentsp.firmware.checker.report import CheckError
from opentsp.firmware.checker.streams import RULE_DOUBLE_WRITE, RULE_READ
from opentsp.firmware.checker.sxm import RULE_SXM_PERMUTATION
from opentsp.firmware.checker.sync import RULE_SYNC
from opentsp.firmware.checker.timing import Timing
from opentsp.firmware.checker.types import RULE_TYPE

__all__ = ["CheckError", "Timing", "check", "check_or_raise",
           "RULE_READ", "RULE_DOUBLE_WRITE", "RULE_BANK", "RULE_MXM_WEIGHTS", "RULE_MXM_ACC",
           "RULE_MXM_SEQ", "RULE_MXM_IW",
           "RULE_SYNC", "RULE_MEM_SEQ", "RULE_SXM_PERMUTATION", "RULE_FETCH", "RULE_TYPE"]

# The names these had when the checker was one module (the tests use them).
_Issue = Issue
_ap_intersection = ap_intersection
_overlapping_pairs = overlapping_pairs


def check(program):
    """Check the timing rules; returns a list of :class:`CheckError`, earliest cycle first.

    Parameters
    ----------
    program : Program or Image
        An assembled program (errors carry source locations) or a bare image.

    Returns
    -------
    list of CheckError
    """
    return Timing(program).errors()


def check_or_raise(program):
    """Raise the first :class:`CheckError` of :func:`check`, if any.

    Parameters
    ----------
    program : Program or Image
        The program to check.

    Returns
    -------
    Program or Image
        ``program``, when it passes.

    Raises
    ------
    CheckError
        The earliest broken rule.
    """
    errors = check(program)
    if errors:
        raise errors[0]
    return program
