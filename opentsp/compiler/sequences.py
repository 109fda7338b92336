"""Sequences: many scheduled instructions issued by one queue word.

The scheduler places one instruction per element (one ``lw`` row group, one ``abc`` row, one
``read`` of one word); the queues hold far fewer words because the sequencers of the ISA issue
runs of them (docs/architecture.md):

* **MXM** (section 7a): ``lw``, ``abc`` and ``acc`` with ``n`` elements, the row stepping by
  ``mxm_load_rows`` (``lw``) or the accumulator by 1 (``abc``, ``acc``) per cycle;
* **MEM** (section 6a): ``sread`` / ``swrite`` after ``agi g, stride, count``, one ``read`` /
  ``write`` per cycle at addresses ``stride`` apart, on one stream.

Each function here turns one queue's ``{cycle: (Instr, comment)}`` into ``{cycle: (Instr,
comment, cycles it runs)}`` whose sequences issue exactly the elements they replace, in the
same cycles: the schedule, its resources and its cycle count do not change, only the words.
"""

from opentsp import isa

__all__ = ["MAX_SEQUENCE", "SEQUENCE_INDEX", "continues", "fields", "merge_queue",
           "queue_words"]

#: The field an element of each MXM sequence steps (by mxm_load_rows for lw, else by 1).
SEQUENCE_INDEX = {"lw": "row", "abc": "acc", "acc": "acc"}
#: The longest MXM sequence.
MAX_SEQUENCE = (1 << isa.MXM_SEQ_BITS) - 1
#: The longest MEM sequence (one ``agi`` count, ``ocount`` 1).
MAX_MEM_SEQUENCE = (1 << isa.MEM_SEQ_COUNT_BITS) - 1
#: MEM element -> (starter, sequencer g).
MEM_STARTERS = {"read": ("sread", 0), "write": ("swrite", 1)}
#: The sequencers' registers after reset: (stride, count).
_RESET = (1, 1)
_MAX_NOP = (1 << isa.COUNT_BITS) - 1


def fields(instr):
    """The field values of ``instr`` as :func:`opentsp.isa.encode` takes them."""
    values = dict(instr.args)
    values.update({f.name: instr.stream(f.name) for f in instr.op.fields if f.kind == "stream"})
    return values


def continues(head, count, instr, config):
    """``instr`` (one element) is element ``count`` of the MXM sequence ``head`` starts: the
    same operation and fields, the index field ``count`` steps further."""
    index = SEQUENCE_INDEX[head.op.mnemonic]
    step = config.mxm_load_rows if head.op.mnemonic == "lw" else 1
    if instr.op is not head.op or instr["n"] != 1:
        return False
    return all(value == (head[name] + count * step if name == index else head[name])
               for name, value in instr.args if name != "n")


def merge_queue(name, table, config):
    """One queue's table with its runs of elements issued as sequences (see the module)."""
    if name.startswith("MXM"):
        return _merge_mxm(table, config)
    if name.startswith("MEM"):
        return _merge_mem(table, config)
    return {cycle: (instr, comment, 1) for cycle, (instr, comment) in table.items()}


def queue_words(merged):
    """Words a merged table takes in its queue: instructions, ``nop`` runs and ``end``."""
    if not merged:
        return 1
    cycles = sorted(merged)
    busy = max(cycle + merged[cycle][2] for cycle in cycles)
    ends = cycles[1:] + [busy]
    gaps = sum(-(-(b - a - 1) // _MAX_NOP) for a, b in zip(cycles, ends, strict=True))
    return len(cycles) + gaps + -(-cycles[0] // _MAX_NOP) + 1


# MXM ----------------------------------------------------------------------------------------

def _merge_mxm(table, config):
    """Every run of one-element ``lw``, ``abc`` or ``acc`` in consecutive cycles that one
    sequence does, as that sequence; the queue's slots between them fall idle."""
    merged, run = {}, None      # run: [first cycle, first instr, comment, elements]
    for cycle in sorted(table):
        instr, comment = table[cycle]
        first = run and run[1]
        if (run is not None and first.op.mnemonic in SEQUENCE_INDEX and first["n"] == 1
                and cycle == run[0] + run[3] and run[3] < MAX_SEQUENCE
                and continues(first, run[3], instr, config)):
            run[3] += 1
            continue
        if run is not None:
            merged[run[0]] = _mxm_sequence(*run)
        run = [cycle, instr, comment, 1]
    if run is not None:
        merged[run[0]] = _mxm_sequence(*run)
    return merged


def _mxm_sequence(first, head, comment, count):
    if count == 1:      # perhaps a sequence already (the scheduler's): it runs n cycles
        length = head["n"] if head.op.mnemonic in SEQUENCE_INDEX else 1
        return head, comment, length
    instr = isa.encode(head.op.name, **{**fields(head), "n": count})
    return instr, _many(comment, count), count


def _many(comment, count):
    return f"{comment} .. ({count} elements)" if comment else comment


# MEM ----------------------------------------------------------------------------------------

def _merge_mem(table, config):
    """Runs of ``read`` (``write``) in consecutive cycles on one stream, at addresses one
    stride apart, as ``sread`` (``swrite``) sequences. A sequence whose stride and count the
    sequencer does not hold already needs an ``agi`` in a free slot after the previous
    sequence of its port started (``sread``/``swrite`` latch the registers when they issue);
    a run of three or more gets one, else it stays as plain instructions."""
    runs = _mem_runs(table, config)
    taken = {cycle for cycle in table}
    for run in runs:
        taken.difference_update(range(run[0] + 1, run[0] + len(run[1])))
    merged = {}
    registers, last_start = {0: _RESET, 1: _RESET}, {0: -1, 1: -1}
    for first, elements, stride in runs:
        if elements[0][0].op.mnemonic not in MEM_STARTERS:     # gather, scatter, ...
            merged[first] = (*elements[0], 1)
            continue
        _, port = MEM_STARTERS[elements[0][0].op.mnemonic]
        wanted = (stride, len(elements))
        agi = None
        if registers[port] != wanted:
            agi = next((c for c in range(first - 1, last_start[port], -1) if c not in taken),
                       None)
        if len(elements) < 2 or (registers[port] != wanted and (agi is None
                                                                 or len(elements) < 3)):
            for i, (instr, comment) in enumerate(elements):      # stays plain
                merged[first + i] = (instr, comment, 1)
                taken.add(first + i)
            continue
        if agi is not None:
            taken.add(agi)
            merged[agi] = (isa.encode("agi", g=port, stride=stride, count=len(elements)),
                           "address sequence of the next " + MEM_STARTERS[
                               elements[0][0].op.mnemonic][0], 1)
            registers[port] = wanted
        head, comment = elements[0]
        starter = MEM_STARTERS[head.op.mnemonic][0]
        merged[first] = (isa.encode(starter, **fields(head)), _many(comment, len(elements)),
                         len(elements))
        last_start[port] = first
    return merged


def _mem_runs(table, config):
    """``[[first cycle, [(Instr, comment), ...], stride]]``: maximal runs, in cycle order, and
    every other instruction as a run of one."""
    runs = []
    for cycle in sorted(table):
        instr, comment = table[cycle]
        if runs and _mem_extends(runs[-1], cycle, instr, config):
            elements = runs[-1][1]
            runs[-1][2] = (instr["addr"] - elements[-1][0]["addr"]) % config.mem_words
            elements.append((instr, comment))
            continue
        runs.append([cycle, [(instr, comment)], 1])
    return runs


def _mem_extends(run, cycle, instr, config):
    first, elements, stride = run
    head = elements[0][0]
    count = len(elements)
    if (head.op.mnemonic not in MEM_STARTERS or instr.op is not head.op
            or cycle != first + count or count >= MAX_MEM_SEQUENCE
            or instr.stream("s") != head.stream("s")):
        return False
    step = (instr["addr"] - elements[-1][0]["addr"]) % config.mem_words
    return count == 1 or step == stride
