"""The chip's resources as reservation tables, for the compiler's list scheduler.

Everything the static checker (``firmware/checker/``) enforces is a resource here, so a
schedule that reserves before it places cannot break a rule:

* **Queue slots**: one instruction per slice per cycle (section 5).
* **Stream registers**: a value that a producer at position ``p`` loads into its output
  register at the end of cycle ``w`` (issue + latency) and that a consumer at position ``q``
  reads travels through the registers between them on one *diagonal*: ``key = w - p`` eastward,
  ``w + p`` westward (``cycle -/+ position`` is constant along its way). Two values on the same
  (direction, stream, key) whose register ranges overlap would meet: the nearer writer wins
  (rule 1) or both write one register in one cycle (rule 2). A reservation is the range of
  registers ``[p, q - 1]`` (eastward) or ``[q + 1, p]`` (westward).
* **Banks** (rule 3): a MEM slice never reads a bank in the cycle in which a write commits to it.
* **Words**: per slice and bank, a bump allocator (tensors live for the whole program).

:class:`Txn` reserves tentatively and undoes everything on :meth:`Txn.rollback`, so a placement
that needs several resources (an operand's four byte planes, a chain's operands and result)
either gets all of them or none.
"""

from collections import defaultdict

from opentsp import isa
from opentsp.compiler.graph import CompileError

__all__ = ["ChipResources", "Txn", "path_registers", "stream_key", "weight_slices", "ANY_BANK"]

#: The bank of a ``gather`` or ``scatter``: its address is data, so it may be either bank, and
#: no other read or commit of its slice may share its cycle.
ANY_BANK = -1


def path_registers(direction, src, dst):
    """Registers ``(lo, hi)`` a value uses from the producer at ``src`` to the consumer at
    ``dst`` (``dst`` downstream of ``src``)."""
    if direction == isa.Dir.E:
        return src, dst - 1
    return dst + 1, src


def stream_key(direction, written, src):
    """The diagonal of a value loaded into register ``src`` at the end of cycle ``written``."""
    return written - src if direction == isa.Dir.E else written + src


def weight_slices(config):
    """``side -> [MEM slice, ...]``: with ``R = mxm_load_rows > 1`` and at least ``2R`` slices
    per hemisphere, the ``R`` slices nearest each MXM hold its weights and nothing else, column
    ``j`` of a tile in the ``j mod R``-th, so that an ``lw`` element reads ``R`` slices that no
    activation read competes for; otherwise none (every slice holds anything)."""
    rows, count = config.mxm_load_rows, config.mem_slices
    if rows == 1 or count < 2 * rows:
        return {}
    return {side: [f"MEM_{side}{i}" for i in range(count - 1, count - 1 - rows, -1)]
            for side in ("W", "E")}


def stripes(config):
    """``G``: the slice groups of a striped state (``compiler.lower``), the power of two from
    ``mxm_load_rows`` on (so that ``mod`` and ``//`` are ``and`` and ``shr``); 1 if ``lw``
    loads one column a cycle."""
    return 1 << (config.mxm_load_rows - 1).bit_length()


def striped_rows(rows, config):
    """The rows a striped state of ``rows`` keeps in memory: through the last column an ``lw``
    element loads (``lw`` loads whole elements of ``mxm_load_rows`` columns; past ``rows``
    they read zeros), rounded up to a multiple of :func:`stripes`. Its dummy row is the next.
    """
    size, per, groups = config.mxm_size, config.mxm_load_rows, stripes(config)
    last = (rows - 1) // size * size
    loaded = last + -(-(rows - last) // per) * per
    return -(-loaded // groups) * groups


class ChipResources:
    """Reservation tables of one configuration.

    Attributes
    ----------
    slots : dict
        ``queue name -> {cycle: (Instr, comment)}``: the program being built.
    """

    def __init__(self, config):
        self.config = config
        plan = isa.floorplan(config)
        self.pos = {s.name: s.position for s in plan}
        self.mems = [s.name for s in isa.mem_slices(config)]
        self.mem_index = {name: i for i, name in enumerate(self.mems)}
        self.vxm = self.pos["VXM"]
        self.sides = {"W": [f"MEM_W{i}" for i in range(config.mem_slices)],
                      "E": [f"MEM_E{i}" for i in range(config.mem_slices)]}
        self.weight_mems = weight_slices(config)
        self.slots = defaultdict(dict)
        self.streams = defaultdict(list)
        self.reads = defaultdict(dict)      # mem -> {cycle: bank read}
        self.commits = defaultdict(dict)    # mem -> {cycle: bank committed}
        self.next_word = {(mem, bank): 0 for mem in self.mems for bank in range(config.mem_banks)}
        self.data = {}                      # (mem index, addr) -> uint8 lanes
        self.last_cycle = -1                # the latest cycle with an instruction

    def side_of(self, mem):
        return "W" if self.pos[mem] < self.vxm else "E"

    def hops(self, a, b):
        return abs(self.pos[a] - self.pos[b])

    def words_free(self, mem):
        banks = self.config.mem_banks
        return sum(self.config.mem_words // banks - self.next_word[(mem, b)]
                   for b in range(banks))

    def alloc(self, mem, bank=None, what="tensor"):
        """A free word of ``mem`` (in ``bank`` if given); None if that bank is full."""
        banks = self.config.mem_banks
        order = [bank] if bank is not None else sorted(
            range(banks), key=lambda b: self.next_word[(mem, b)])
        for b in order:
            index = self.next_word[(mem, b)]
            if index < self.config.mem_words // banks:
                self.next_word[(mem, b)] = index + 1
                return index * banks + b
        return None

    def alloc_or_raise(self, mem, what):
        addr = self.alloc(mem)
        if addr is None:
            raise CompileError(f"tensor {what} does not fit: {mem} is full "
                               f"({self.config.mem_words} words)")
        return addr

    def stream_free(self, direction, stream, key, lo, hi):
        for a, b in self.streams.get((direction, stream, key), ()):
            if a <= hi and lo <= b:
                return False
        return True


class Txn:
    """Tentative reservations on a :class:`ChipResources`, undone by :meth:`rollback`."""

    def __init__(self, chip):
        self.chip = chip
        self.undo = []

    def rollback(self):
        for action in reversed(self.undo):
            action()
        self.undo = []

    def slot(self, queue, cycle, instr, comment=""):
        """Reserve ``queue``'s slot in ``cycle`` for ``instr``; False if taken."""
        if cycle < 0:
            return False
        table = self.chip.slots[queue]
        if cycle in table:
            return False
        table[cycle] = (instr, comment)
        self.undo.append(lambda: table.pop(cycle))
        return True

    def stream(self, direction, stream, key, lo, hi):
        """Reserve registers ``lo..hi`` of (direction, stream) on diagonal ``key``."""
        chip = self.chip
        if not 0 <= stream < chip.config.streams or not chip.stream_free(direction, stream,
                                                                         key, lo, hi):
            return False
        entries = chip.streams[(direction, stream, key)]
        entries.append((lo, hi))
        self.undo.append(entries.pop)
        return True

    def read_bank(self, mem, cycle, bank):
        """A read of ``bank`` in ``cycle``: not while a write commits to it (rule 3)."""
        commit = self.chip.commits[mem].get(cycle)
        if commit is not None and ANY_BANK in (commit, bank) or commit == bank:
            return False
        table = self.chip.reads[mem]
        if cycle in table:
            return False
        table[cycle] = bank
        self.undo.append(lambda: table.pop(cycle))
        return True

    def commit_bank(self, mem, cycle, bank):
        """A write committing to ``bank`` at the end of ``cycle``: not while it is read."""
        read = self.chip.reads[mem].get(cycle)
        if (read is not None and ANY_BANK in (read, bank) or read == bank
                or cycle in self.chip.commits[mem]):
            return False
        table = self.chip.commits[mem]
        table[cycle] = bank
        self.undo.append(lambda: table.pop(cycle))
        return True

    def alloc(self, mem, bank):
        """A fresh word of ``mem`` in ``bank`` (freed again on rollback); None if full."""
        chip = self.chip
        addr = chip.alloc(mem, bank)
        if addr is not None:
            key = (mem, bank)
            self.undo.append(lambda: chip.next_word.__setitem__(key, chip.next_word[key] - 1))
        return addr
