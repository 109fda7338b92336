"""Instruction fetch rule (docs/architecture.md section 5b): rule 11.

Every word an ``ifetch`` takes is known statically (lane 0 of words that MEM ``read``s deliver
and that hold their ``.data``) and is an instruction of the queue; the program counter reaches a
fetched word no earlier than ``isa.FETCH_LATENCY`` cycles after its fetch; no fetch overwrites a
word that the queue has still to execute; no queue runs out of words. :func:`resolve_fetches`
finds the fetched words, which extend the queue's program for every other rule.
"""

from opentsp import isa
from opentsp.firmware.checker.mem import static_word
from opentsp.firmware.checker.progressions import Issue
from opentsp.firmware.checker.report import describe, error_at

__all__ = ["RULE_FETCH", "check_fetch", "resolve_fetches"]

#: A fetched word that cannot be known statically or is not an instruction of its queue, a word
#: executed before it has been fetched, a fetch that overwrites a word still to be executed, or a
#: queue that runs out of words.
RULE_FETCH = 11


# Finding the fetched words --------------------------------------------------------------------

def resolve_fetches(timing):
    """Every word each queue fetches, in order, as far as it is known statically.

    Parameters
    ----------
    timing : Timing
        The program as scheduled so far.

    Returns
    -------
    found : list
        Per queue, ``[(Instr, origin Loc or None)]`` of its fetched words, up to the first that
        is not known.
    problems : list
        ``(queue, ifetch index, k, cycle, cause)`` for that first unknown word (``cause`` None
        when no value arrives at all: rule 1 reports it).
    """
    mem_index = {s.name: i for i, s in enumerate(isa.mem_slices(timing.config))}
    found, problems = [], []
    for q in range(len(timing.schedule)):
        words, problem = _resolve_queue_fetches(timing, q, mem_index)
        found.append(words)
        if problem is not None:
            problems.append(problem)
    return found, problems


def _resolve_queue_fetches(timing, q, mem_index):
    """The words queue ``q`` fetches, up to the first unknown one, and that one's problem.

    Returns
    -------
    words : list
        ``[(Instr, origin Loc or None)]``.
    problem : tuple or None
        ``(q, ifetch index, k, cycle, cause)`` of the first unknown word, if there is one.
    """
    words = []
    for pc, cycle in timing.schedule[q].fetches:
        instr = timing.programs[q][pc]
        for k in range(instr["n"]):
            word, origin, where = _fetched_word(timing, q, instr, cycle + k, mem_index)
            if word is None:
                fetched, cause = None, where
            else:
                fetched, cause = _decode_fetched(timing, q, instr, k, cycle + k, word, where)
            if fetched is None:
                return words, (q, pc, k, cycle + k, cause)
            words.append((fetched, origin))
    return words, None


def _fetched_word(timing, q, instr, cycle, mem_index):
    """The word an ``ifetch`` of queue ``q`` takes in ``cycle``.

    Returns
    -------
    tuple
        ``(word, origin, where)``: the word (None when unknown), the source location of its
        ``.fetched`` data (or None), and where it comes from (when unknown: why, or None when
        no value arrives at all, which rule 1 reports).
    """
    direction, ids = instr.group("s")
    pos = timing.position(q)
    diag = cycle + timing.sign(direction) * pos
    word, origin, where = 0, None, []
    for i, s in enumerate(ids):
        found = timing.writer_at(direction, s, diag, pos)
        if found is None:
            return None, None, None
        _, producer, copy = found
        source = static_word(timing, producer, copy, mem_index)
        if isinstance(source, str):
            return None, None, f"byte {i} ({direction.name.lower()}{s}) {source}"
        data = timing.image.data.get(source)
        word |= (0 if data is None else int(data[0])) << (8 * i)
        name = isa.mem_slices(timing.config)[source[0]].name
        where.append(f"{name} word {source[1]}")
        if i == 0:
            origin = timing.fetch_locations.get(source)
    return word, origin, ", ".join(where)


def _decode_fetched(timing, q, instr, k, cycle, word, where):
    """Decode word ``k`` that ``instr``, an ``ifetch`` of queue ``q``, takes in ``cycle``.

    Returns
    -------
    tuple
        ``(Instr, None)``, or ``(None, cause)`` when the word is not an instruction of the
        queue.
    """
    what = f"word {k + 1} of {instr['n']} of {instr} (cycle {cycle}), from {where}"
    try:
        fetched = isa.decode(word)
        isa.check_config(fetched, timing.config)
    except isa.EncodingError as error:
        return None, f"{what} lane 0, is {word:#010x}, not an instruction: {error}"
    if fetched.op.unit not in (isa.Unit.ICU, isa.unit_of(timing.slices[q])):
        return None, (f"{what}, is {fetched}, a {fetched.op.unit.name} instruction, not for "
                      f"the queue of {timing.slices[q].name}")
    return fetched, None


# Rule 11 --------------------------------------------------------------------------------------

def check_fetch(timing):
    """Rule 11 (section 5b) for every queue of ``timing`` (a :class:`Timing`).

    Every fetched word is known statically and is an instruction of its queue; the program
    counter reaches a fetched word no earlier than ``isa.FETCH_LATENCY`` cycles after its fetch;
    a fetch never overwrites a word the queue has still to execute (the fill pointer stays less
    than ``queue_depth`` words ahead); a queue never runs out of words.

    Yields
    ------
    CheckError
    """
    for q, sched in enumerate(timing.schedule):
        problems = [problem for problem in timing.fetch_problems if problem[0] == q]
        yield from _unknown_words(timing, problems)
        fetch_cycles = _fetch_cycles(timing, q, sched)
        yield from _check_fetch_latency(timing, q, sched, fetch_cycles)
        yield from _check_overwrites(timing, q, sched, fetch_cycles)
        # a queue stops at its first unknown fetched word, which is reported already (above,
        # or by rule 1 when no value arrives)
        if sched.stopped is not None and not problems:
            yield _runs_out(timing, q, sched)


def _ifetch_issue(timing, q, pc, cycle):
    """The ``ifetch`` at index ``pc`` of queue ``q``, issued from ``cycle`` on."""
    program = timing.programs[q]
    return Issue(q, pc, program[pc], cycle, 1, program[pc]["n"], False)


def _unknown_words(timing, problems):
    """Errors for fetched words not known statically (``problems`` of one queue)."""
    for q, pc, k, cycle, cause in problems:
        if cause is not None:
            yield error_at(timing, _ifetch_issue(timing, q, pc, cycle - k), RULE_FETCH, cycle,
                           f"fetched word not known statically: {cause}")


def _fetch_cycles(timing, q, sched):
    """Queue index -> ``(fetch cycle, ifetch index, k)`` of every word queue ``q`` fetches."""
    program = timing.programs[q]
    fetch_cycles = {}
    j = len(timing.image.queues[q])
    for pc, cycle in sched.fetches:
        for k in range(program[pc]["n"]):
            fetch_cycles[j] = (cycle + k, pc, k)
            j += 1
    return fetch_cycles


def _check_fetch_latency(timing, q, sched, fetch_cycles):
    """The first fetched word of queue ``q`` reached less than ``FETCH_LATENCY`` cycles after
    its fetch, if any."""
    program = timing.programs[q]
    late = isa.FETCH_LATENCY
    for j in range(len(timing.image.queues[q]), len(program) - 1):
        start = sched.starts[j]
        if start is None:
            return
        fetched, pc, _ = fetch_cycles[j]
        if start < fetched + late:
            where = describe(timing, _ifetch_issue(timing, q, pc, sched.starts[pc]))
            cause = (f"{program[j]} (word {j} of the queue of {timing.slices[q].name}) is "
                     f"reached in cycle {start} but fetched in cycle {fetched} by {where}: a "
                     f"fetched word executes from cycle fetch + {late} on")
            yield error_at(timing, Issue(q, j, program[j], start, 1, 1, False), RULE_FETCH,
                           start, cause)
            return


def _check_overwrites(timing, q, sched, fetch_cycles):
    """The first fetch of queue ``q`` that overwrites a word still to be executed, if any."""
    program = timing.programs[q]
    depth = timing.config.queue_depth
    late = isa.FETCH_LATENCY
    for j, (fetched, pc, k) in sorted(fetch_cycles.items()):
        old = j - depth
        if old < 0:
            continue
        leave = _leave_cycle(program, sched, old)
        if leave is None or leave > fetched + late:
            until = "is never finished" if leave is None else f"runs until cycle {leave - 1}"
            cause = (f"word {k + 1} of this ifetch (cycle {fetched}, word {j}) overwrites "
                     f"queue index {j % depth}, whose word {old} ({program[old]}) {until}: "
                     f"the fill pointer may be at most queue_depth {depth} words ahead of "
                     f"the program counter (the word must be done by cycle "
                     f"{fetched + late - 1})")
            yield error_at(timing, _ifetch_issue(timing, q, pc, fetched - k), RULE_FETCH,
                           fetched, cause)
            return


def _leave_cycle(program, sched, index):
    """The cycle in which the queue is done with word ``index`` (None: never)."""
    if program[index].op.mnemonic == "end":
        start = sched.starts[index]
        return None if start is None else start + 1
    return sched.starts[index + 1]


def _runs_out(timing, q, sched):
    """The error of queue ``q`` running out of words (``sched.stopped`` is set)."""
    index, cycle = sched.stopped
    cause = (f"the queue of {timing.slices[q].name} runs out of words: word {index} (cycle "
             f"{cycle}) is neither preloaded nor fetched by an ifetch; a queue ends with 'end'")
    last = max(index - 1, 0)
    program = timing.programs[q]
    return error_at(timing, Issue(q, last, program[last], cycle, 1, 1, False), RULE_FETCH,
                    cycle, cause)
