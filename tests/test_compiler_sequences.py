"""opentsp.compiler.sequences: runs of scheduled elements issued as MXM and MEM sequences, the
elements (cycles, addresses, streams) unchanged."""

from opentsp import isa, mem_sequence
from opentsp.compiler.sequences import merge_queue, queue_words
from opentsp.config import get_config
from opentsp.isa import Dir, StreamRef

CONFIG = get_config("default")
E0, E1 = StreamRef(Dir.E, 0), StreamRef(Dir.E, 1)


def _read(addr, s=E0):
    return isa.encode("read", s=s, addr=addr)


def _write(addr, s=E0):
    return isa.encode("write", s=s, addr=addr)


def _elements(merged):
    """The plain reads and writes a merged MEM table issues: ``{cycle: Instr}``."""
    issues = [(cycle, None, instr) for cycle, (instr, _, _) in merged.items()]
    end = max(cycle + length for cycle, (_, _, length) in merged.items())
    ports, losses = mem_sequence.expand(CONFIG, issues, end)
    assert losses == []
    return {(cycle, instr.op.mnemonic): instr for cycle, _, instr, _ in ports}


def _original(table):
    return {(cycle, instr.op.mnemonic): instr for cycle, (instr, _) in table.items()}


def test_a_strided_run_of_reads_is_one_sread_after_an_agi():
    table = {10 + i: (_read(3 + 2 * i), f"row {i}") for i in range(5)}
    merged = merge_queue("MEM_W0", table, CONFIG)
    assert [str(merged[c][0]) for c in sorted(merged)] == ["agi 0, 2, 5", "sread e0, 3"]
    assert sorted(merged) == [9, 10] and merged[10][2] == 5
    assert "(5 elements)" in merged[10][1]
    assert _elements(merged) == _original(table)


def test_writes_merge_on_the_write_sequencer_and_reads_beside_them():
    table = {5 + i: (_write(40 + i, E1), "") for i in range(4)}
    table.update({20 + i: (_read(7 + i), "") for i in range(3)})
    merged = merge_queue("MEM_E2", table, CONFIG)
    mnemonics = [merged[c][0].op.mnemonic for c in sorted(merged)]
    assert mnemonics == ["agi", "swrite", "agi", "sread"]
    assert {merged[c][0]["g"] for c in merged if merged[c][0].op.mnemonic == "agi"} == {0, 1}
    assert _elements(merged) == _original(table)
    assert queue_words(merged) < queue_words({c: (i, m, 1) for c, (i, m) in table.items()})


def test_runs_stay_plain_where_they_cannot_merge():
    """No slot for the agi before cycle 0, a stream change, a stride change, a lone read."""
    table = {0: (_read(0), ""), 1: (_read(1), ""), 2: (_read(2), ""),       # no slot before
             10: (_read(5), ""), 11: (_read(6, E1), ""),                    # stream changes
             20: (_read(1), ""), 21: (_read(2), ""), 22: (_read(4), "")}    # stride changes
    merged = merge_queue("MEM_W1", table, CONFIG)
    assert merged[0][0].op.mnemonic == "read" and merged[10][0].op.mnemonic == "read"
    assert merged[11][0].op.mnemonic == "read"
    assert _elements(merged) == _original(table)


def test_the_sequencer_registers_are_reused_without_a_second_agi():
    table = {c + i: (_read(a + i), "") for c, a in ((10, 0), (30, 20)) for i in range(4)}
    merged = merge_queue("MEM_W3", table, CONFIG)
    assert [merged[c][0].op.mnemonic for c in sorted(merged)] == ["agi", "sread", "sread"]
    assert _elements(merged) == _original(table)


def test_mxm_rows_merge_into_one_abc_sequence():
    table = {4 + a: (isa.encode("abc", p=0, acc=a, s=E0, add=0, n=1), "") for a in range(6)}
    merged = merge_queue("MXM_W", table, CONFIG)
    assert list(merged) == [4] and merged[4][0]["n"] == 6 and merged[4][2] == 6
    other = {c: (i, m) for c, (i, m) in table.items()}
    assert merge_queue("VXM", other, CONFIG) == {c: (i, m, 1) for c, (i, m) in other.items()}
