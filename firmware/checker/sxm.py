"""SXM rule (docs/architecture.md section 7b): rule 10, a ``permute`` issues after a
``perm_load`` of its queue, and a table known statically is a permutation of the lanes."""

import numpy as np

from opentsp import isa
from opentsp.firmware.checker.mem import static_word
from opentsp.firmware.checker.progressions import EXPAND
from opentsp.firmware.checker.report import error_at

__all__ = ["RULE_SXM_PERMUTATION", "check_sxm"]

#: A ``permute`` before any ``perm_load`` of its queue, or a ``perm_load`` whose table comes
#: from memory contents known statically (``.data``, or zero) that are not a permutation.
RULE_SXM_PERMUTATION = 10


def check_sxm(timing):
    """Rule 10 for every SXM queue of ``timing`` (a :class:`Timing`).

    The permute table is data: it is checked where it is known statically, i.e. when both
    bytes of the ``perm_load``'s operand come from ``read`` instructions of words that no
    ``write`` of their MEM slice changes before the read (so they hold their ``.data``, or
    zero). Tables computed on the chip are not checked (docs/architecture.md section 7b).

    Yields
    ------
    CheckError
    """
    mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(timing.config))}
    for q, slice_ in enumerate(timing.slices):
        if slice_.kind != isa.SliceKind.SXM:
            continue
        issues = [i for i in timing.issues if i.queue == q]
        loads = [i.t0 for i in issues if i.instr.op.mnemonic == "perm_load"]
        first_load = min(loads, default=None)
        for issue in issues:
            name = issue.instr.op.mnemonic
            if name == "permute" and (first_load is None or issue.t0 < first_load):
                yield _permute_before_load(timing, issue, slice_.name)
            elif name == "perm_load":
                yield from _check_perm_load(timing, issue, mem_index)


def _permute_before_load(timing, issue, slice_name):
    """The error of a ``permute`` that issues before any ``perm_load`` of its queue."""
    lanes = timing.config.lanes
    cause = (f"permute in cycle {issue.t0} before any perm_load of {slice_name}: "
             f"its table is all zeros, not a permutation of lanes 0..{lanes - 1}")
    return error_at(timing, issue, RULE_SXM_PERMUTATION, issue.t0, cause, 0)


def _check_perm_load(timing, issue, mem_index):
    """Rule 10 for the tables a ``perm_load`` loads, as far as they are known statically.

    Only the first :data:`EXPAND` copies of a repeated ``perm_load`` are checked, and at most
    one error is reported per ``perm_load``.
    """
    lanes = timing.config.lanes
    for k in range(min(issue.n, EXPAND)):
        found = _static_table(timing, issue, k, mem_index)
        if found is None:
            continue
        table, origin = found
        if not isa.is_permutation(table, lanes):
            cause = (f"perm_load in cycle {issue.cycle(k)} loads {origin}, which is "
                     f"not a permutation of lanes 0..{lanes - 1}: "
                     f"{_not_permutation(table, lanes)}")
            yield error_at(timing, issue, RULE_SXM_PERMUTATION, issue.cycle(k), cause, k)
            return


def _static_table(timing, issue, k, mem_index):
    """The table copy ``k`` of a ``perm_load`` loads, if memory contents known statically give
    it.

    Returns
    -------
    tuple or None
        ``(entries, description)``, or None when a byte of the table is not static.
    """
    direction, ids = issue.instr.group("s")
    q = timing.position(issue.queue)
    diag = timing.read_diagonal(issue, direction, k)
    planes, words = [], []
    for s in ids:
        found = timing.writer_at(direction, s, diag, q)
        if found is None:
            return None
        _, producer, copy = found
        source = static_word(timing, producer, copy, mem_index)
        if isinstance(source, str):
            return None
        word = timing.image.data.get(source)
        planes.append(np.zeros(timing.config.lanes, dtype=np.int64) if word is None
                      else np.asarray(word, dtype=np.int64))
        words.append(f"{timing.slices[producer.queue].name} word {source[1]}")
    table = sum(plane << (8 * i) for i, plane in enumerate(planes))
    return table, "the table in " + " and ".join(words)


def _not_permutation(table, lanes):
    """Why ``table`` is not a permutation of ``lanes`` lanes: an entry out of range, or a lane
    that appears more than once."""
    for i, entry in enumerate(table):
        if entry >= lanes:
            return f"entry {i} is {int(entry)}"
    values, counts = np.unique(table, return_counts=True)
    twice = int(values[counts > 1][0])
    return f"lane {twice} appears {int(counts[values == twice][0])} times"
