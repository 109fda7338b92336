"""MEM rules: rule 3, bank conflicts (section 6), rule 9, MEM sequencers (section 6a), and
which memory words are static (still hold their ``.data``) when a read delivers them."""

from collections import defaultdict

from opentsp import isa, mem_sequence
from opentsp.firmware.checker.progressions import Issue, ap_intersection, overlapping_pairs
from opentsp.firmware.checker.report import describe, error_at

__all__ = ["RULE_BANK", "RULE_MEM_SEQ", "check_banks", "check_mem_seq", "expand_mem",
           "static_word"]

#: A MEM slice reads a bank in the cycle in which a write commits to the same bank.
RULE_BANK = 3
#: An element of a ``sread``/``swrite`` sequence that does not issue.
RULE_MEM_SEQ = 9


# Bank conflicts (rule 3) ------------------------------------------------------------------------

def check_banks(timing):
    """Rule 3 for every MEM queue of ``timing`` (a :class:`Timing`).

    Yields
    ------
    CheckError
    """
    for q, slice_ in enumerate(timing.slices):
        if slice_.kind == isa.SliceKind.MEM:
            yield from _check_queue_banks(timing, q, slice_)


def _bank_uses(timing, q):
    """Reads and commits of MEM queue ``q`` per bank, as ``(cycle, step, count, issue)``."""
    banks = timing.config.mem_banks
    reads = defaultdict(list)
    commits = defaultdict(list)
    for issue in timing.issues:
        if issue.queue != q or issue.instr.get("addr") is None:
            continue
        op = issue.instr.op
        bank = issue.instr["addr"] % banks
        if op.commit is not None:
            commits[bank].append((issue.t0 + op.commit, issue.d, issue.n, issue))
        elif op.writes:
            reads[bank].append((issue.t0, issue.d, issue.n, issue))
    return reads, commits


def _check_queue_banks(timing, q, slice_):
    """Rule 3 for MEM queue ``q`` (slice ``slice_``)."""
    reads, commits = _bank_uses(timing, q)
    for bank, bank_reads in reads.items():
        for a, b in overlapping_pairs(bank_reads, commits.get(bank, [])):
            hit = ap_intersection(a[0], a[1], a[2], b[0], b[1], b[2])
            if hit is None:
                continue
            u = a[0] + hit[0] * a[1]
            cause = (f"bank conflict in {slice_.name}: the read of word "
                     f"{a[3].instr['addr']} in cycle {u} and the commit of "
                     f"{describe(timing, b[3])} (issued in cycle {u - b[3].instr.op.commit}"
                     f") both use bank {bank}")
            yield error_at(timing, a[3], RULE_BANK, u, cause, hit[0])


# MEM sequencers (rule 9) ------------------------------------------------------------------------

def expand_mem(timing, q, issues):
    """Issues of queue ``q`` with its MEM sequences expanded into their port instructions.

    ``sread``/``swrite`` sequences become the plain ``read``/``write`` elements they issue
    (:func:`opentsp.mem_sequence.expand`); ``agi``/``ago`` issue nothing on a port. The
    elements that do not issue go to ``timing.mem_losses`` (rule 9).

    Parameters
    ----------
    timing : Timing
        The program being modelled (its ``schedule`` is set).
    q : int
        The queue.
    issues : iterable of Issue
        Its issues; other queues' issues pass unchanged.

    Returns
    -------
    list of Issue
        The port issues, then the queue's ``ifetch``es.
    """
    issues = list(issues)
    fetches = [issue for issue in issues if issue.instr.op.mnemonic == "ifetch"]
    issues = [issue for issue in issues if issue.instr.op.mnemonic != "ifetch"]
    if timing.slices[q].kind != isa.SliceKind.MEM or not any(
            issue.instr.op.mnemonic in mem_sequence.MNEMONICS[2:] for issue in issues):
        return issues + fetches
    items = [(issue.cycle(k), (issue, k), issue.instr) for issue in issues
             for k in range(issue.n)]
    ports, losses = mem_sequence.expand(timing.config, items, timing.schedule[q].end)
    timing.mem_losses.extend(losses)
    # one issue per port instruction, located at its instruction (a sequence element at its
    # sread/swrite, a repeat copy at its repeat)
    return [Issue(q, issue.index, instr, cycle, 1, 1, False)
            for cycle, (issue, _), instr, _ in ports] + fetches


def check_mem_seq(timing):
    """Rule 9: no element of a MEM sequence is lost (see :func:`expand_mem`).

    Yields
    ------
    CheckError
    """
    for cycle, (issue, k), why in timing.mem_losses:
        starter = issue.instr
        cause = f"{starter} (issued in cycle {issue.cycle(k)}): {why}"
        yield error_at(timing, issue, RULE_MEM_SEQ, cycle, cause, k)


# Static words (for rules 10 and 11) -----------------------------------------------------------

def static_word(timing, producer, copy, mem_index):
    """The word copy ``copy`` of ``producer`` puts on its stream, if it is known statically.

    It is when ``producer`` is a MEM ``read`` of a word that no write of its slice may have
    changed before the read: the word still holds its ``.data`` (or zero).

    Parameters
    ----------
    timing : Timing
        The checked program.
    producer : Issue
        The instruction whose value a reader sees.
    copy : int
        Which copy of ``producer``.
    mem_index : dict
        MEM slice name -> index in :func:`opentsp.isa.mem_slices` (the key of ``image.data``).

    Returns
    -------
    tuple or str
        ``(mem, addr)``, the word's key in ``image.data``, or why the word is not static.
    """
    if producer.instr.op.mnemonic != "read":
        return (f"comes from {describe(timing, producer)}, not from a MEM read of a word that "
                f"holds its .data")
    mem_slice = timing.slices[producer.queue]
    addr = producer.instr["addr"] % timing.config.mem_words
    read_cycle = producer.cycle(copy)
    if _may_be_written_before(timing, producer.queue, addr, read_cycle):
        return (f"comes from word {addr} of {mem_slice.name}, which may be written on the "
                f"chip before its read in cycle {read_cycle}")
    return mem_index[mem_slice.name], addr


def _may_be_written_before(timing, q, addr, cycle):
    """Whether a write of MEM queue ``q`` may commit to word ``addr`` before ``cycle``.

    Writes whose address is data (``scatter``) may hit any word.
    """
    for other in timing.issues:
        commit = other.instr.op.commit
        if other.queue != q or commit is None or other.t0 + commit >= cycle:
            continue
        target = other.instr.get("addr")
        if target is None or target % timing.config.mem_words == addr:
            return True
    return False
