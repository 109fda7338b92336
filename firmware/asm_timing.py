"""``.at`` padding: ``nop`` so that the next instruction of a queue issues in a given cycle.

Before a queue's first ``sync`` its slots are cycles, so the assembler pads at once
(:func:`nop_padding`). After it the cycle depends on other queues' notifies: those ``.at`` are
resolved when every queue is known, by scheduling the whole program
(:func:`resolve_ats_after_sync`).
"""

from opentsp import isa, queue_timing
from opentsp.firmware.lexer import AsmError

__all__ = ["MAX_NOP", "nop_padding", "resolve_ats_after_sync"]

#: The most slots one ``nop`` fills.
MAX_NOP = (1 << isa.COUNT_BITS) - 1


def nop_padding(slots):
    """The fewest ``nop`` instructions that fill ``slots`` issue slots."""
    nops = []
    while slots:
        count = min(slots, MAX_NOP)
        nops.append(isa.encode("nop", count=count))
        slots -= count
    return nops


def resolve_ats_after_sync(queues, config, deskew=None):
    """Turn every ``.at`` after a ``sync`` into ``nop`` padding, in place.

    The whole program is scheduled (:func:`opentsp.queue_timing.schedule`, with
    :class:`~opentsp.queue_timing.At` placeholders) and the target is, as everywhere, an
    absolute cycle.

    Parameters
    ----------
    queues : list
        The assembler's queues (``instrs``, ``locs`` and ``ats``, the ``(instr index, At)``
        of every such ``.at``), in queue order.
    config : Config
        The configuration assembled for.
    deskew : int or None
        The cycle the chip's ``deskew`` releases its queues in (section 7d), if known.
    """
    if not any(queue.ats for queue in queues):
        return
    programs = [_timing_program(queue) for queue in queues]
    try:
        schedules = queue_timing.schedule(programs, deskew=deskew)
    except queue_timing.AtError as error:
        name = queues[error.queue].slice.name
        raise AsmError(error.at.tag, f".at {error.at.cycle}: the queue of {name} is "
                       f"already at cycle {error.cycle} (after its sync)") from None
    for queue, items, sched in zip(queues, programs, schedules, strict=True):
        if queue.ats:
            _pad_queue(queue, items, sched.starts, config)


def _timing_program(queue):
    """The queue's instructions with its ``At`` placeholders, ending as the image will."""
    items = list(queue.instrs)
    for index, at in reversed(queue.ats):
        items.insert(index, at)
    fetches = any(instr.op.mnemonic == "ifetch" for instr in queue.instrs)
    tail = queue_timing.Stop() if fetches else isa.encode("end")     # the end to come
    return items + ([tail] if queue.end_loc is None else [])


def _pad_queue(queue, items, starts, config):
    """Replace the ``At`` placeholders among ``items`` by padding, given the cycle each item
    starts in (``None`` where never)."""
    instrs, locs, source = [], [], iter(zip(queue.instrs, queue.locs, strict=True))
    for item, start in zip(items, starts, strict=False):
        if not isinstance(item, queue_timing.At):
            pair = next(source, None)
            if pair is None:        # the end added for scheduling
                break
            instrs.append(pair[0])
            locs.append(pair[1])
            continue
        if start is None:
            raise AsmError(item.tag, f".at {item.cycle}: the queue of "
                           f"{queue.slice.name} never gets here: its sync at "
                           f"{queue.synced} or a later one is never released")
        padding = nop_padding(item.cycle - start)
        instrs += padding
        locs += [item.tag] * len(padding)
    if len(instrs) - queue.fetched > config.queue_depth:
        raise AsmError(locs[config.queue_depth], f"queue of {queue.slice.name} is "
                       f"full: more than queue_depth {config.queue_depth} "
                       f"instructions (with the padding of .at after a sync)")
    queue.instrs, queue.locs = instrs, locs
