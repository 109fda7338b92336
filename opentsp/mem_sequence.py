"""The MEM slice's address sequencers, statically (docs/architecture.md section 6a): which plain
``read``/``gather`` and ``write``/``scatter`` a MEM queue's issues make, cycle by cycle.

The sequencers act at issue, on superlane 0. Per port (read, write) and cycle ``t`` (the *port
priority*):

1. the queue issues ``sread`` (``swrite``): a new sequence starts, element 0 in cycle ``t``;
   a sequence still running is abandoned;
2. the queue issues ``read`` or ``gather`` (``write`` or ``scatter``): that instruction takes
   the port; a running sequence loses its element of cycle ``t`` (it still advances);
3. else a running sequence issues its next element, unless the queue has reached its ``end``
   slot (a sequence never issues in or after it).

This is the rule the golden model's cycle-by-cycle sequencers (:mod:`opentsp.sim.mem`) follow
and the static checker plans with (:func:`expand`).
"""

from dataclasses import dataclass

from opentsp import isa

__all__ = ["MNEMONICS", "PORTS", "SeqConfig", "sequence", "expand"]

MNEMONICS = ("gather", "scatter", "agi", "ago", "sread", "swrite")
#: Per port (0 = read, 1 = write): the starting instruction and the queue instructions that
#: take the port from a running sequence.
PORTS = (("sread", ("read", "gather")), ("swrite", ("write", "scatter")))


@dataclass(frozen=True)
class SeqConfig:
    """A sequencer's loop registers; after reset: one element (count 1, ocount 1)."""
    stride: int = 1
    count: int = 1
    ostride: int = 0
    ocount: int = 1

    def set(self, instr):
        """The registers after ``agi`` or ``ago`` ``instr``."""
        if instr.op.mnemonic == "agi":
            return SeqConfig(instr["stride"], instr["count"], self.ostride, self.ocount)
        return SeqConfig(self.stride, self.count, instr["stride"], instr["count"])

    @property
    def elements(self):
        return self.count * self.ocount


def sequence(addr, cfg, mem_words):
    """Addresses of a sequence started at ``addr`` with :class:`SeqConfig` ``cfg``, in order:
    element ``j * count + i`` is ``(addr + i * stride + j * ostride) mod mem_words``."""
    return [(addr + i * cfg.stride + j * cfg.ostride) % mem_words
            for j in range(cfg.ocount) for i in range(cfg.count)]



def expand(config, issues, end):
    """The static form of :func:`issue_cycle` for one MEM queue.

    Parameters
    ----------
    config : Config
    issues : iterable of (int, object, Instr)
        The queue's issues: cycle, a tag of the caller's, instruction.
    end : int or None
        The cycle of the queue's ``end`` slot.

    Returns
    -------
    ports : list of (int, object, Instr, bool)
        Every plain port instruction (``read``, ``gather``, ``write``, ``scatter``) in cycle
        order, with the tag of the instruction that issued it and whether it is a sequence
        element (tagged with its ``sread``/``swrite``).
    losses : list of (int, object, str)
        Sequence elements that do not issue: cycle, the starter's tag and why.
    """
    issues = sorted(issues, key=lambda item: item[0])
    words = config.mem_words
    cfgs = [SeqConfig(), SeqConfig()]
    ports, losses = [], []
    pending = [None, None]      # per port: (tag, starter, addresses, first cycle)

    def flush(port, upto, why):
        """Issue port's running sequence up to cycle ``upto`` (excluded); the rest is lost."""
        run = pending[port]
        pending[port] = None
        if run is None:
            return
        tag, starter, addrs, first = run
        element = isa.MEM_SEQ_STARTS[starter.op.mnemonic]
        stop = min(len(addrs), max(upto - first, 0))
        for e in range(stop):
            ports.append((first + e, tag,
                          isa.encode(element, s=starter["s"], addr=addrs[e]), True))
        if stop < len(addrs):
            losses.append((first + stop, tag, why(len(addrs) - stop)))

    for cycle, tag, instr in issues:
        name = instr.op.mnemonic
        if name in ("agi", "ago"):
            cfgs[instr["g"]] = cfgs[instr["g"]].set(instr)
        for port, (starter, plain) in enumerate(PORTS):
            if name == starter:
                flush(port, cycle, lambda n, c=cycle, i=instr: (
                    f"{n} element(s) of the sequence abandoned: {i} restarts it in cycle {c}"))
                pending[port] = (tag, instr, sequence(instr["addr"], cfgs[port], words), cycle)
            elif name in plain:
                ports.append((cycle, tag, instr, False))
    for port in range(2):
        flush(port, end if end is not None else 1 << 62,
              lambda n: f"{n} element(s) of the sequence cut off by the queue's end in "
                        f"cycle {end}")
    taken = {(cycle, _port_of(instr)) for cycle, _, instr, element in ports if not element}
    kept = []
    for item in ports:
        cycle, tag, instr, element = item
        if element and (cycle, _port_of(instr)) in taken:
            losses.append((cycle, tag, f"its element of cycle {cycle} is lost: the queue "
                                       f"issues a {PORTS[_port_of(instr)][1][0]} or "
                                       f"{PORTS[_port_of(instr)][1][1]} in that cycle"))
            continue
        kept.append(item)
    kept.sort(key=lambda item: item[0])
    losses.sort(key=lambda item: item[0])
    return kept, losses


def _port_of(instr):
    return 0 if instr.op.mnemonic in PORTS[0][1] else 1
