"""Golden model of the SXM (docs/architecture.md section 7b): lane movements across the whole
vector, and how they wait for the superlane stagger.

An SXM instruction issued in cycle ``t`` runs on superlane ``k`` in cycle ``t + k`` like every
instruction: superlane ``k`` reads its share of the operand streams and of the table it uses
(``P`` for ``permute``, ``D`` for ``distribute``) then. Once the last superlane has read its
share (cycle ``t + superlanes - 1``) the whole vector is known and any lane can go anywhere;
output superlane ``k`` is loaded into the SXM's output stream register at the end of cycle
``t + L + k`` with ``L = isa.latency(op, config) = superlanes``.

:class:`Sxm` holds the state of one SXM (the two tables and the instructions in flight);
table loads are deferred to :meth:`Sxm.end_cycle` so that everything executed in a cycle sees
the tables as they were at the start of the cycle, as the RTL's registers do. :func:`movement`
is the lane movement itself, on whole vectors. :func:`execute` connects it to
:class:`opentsp.sim.model.Model`.
"""

import numpy as np

from opentsp import isa

__all__ = ["Sxm", "movement", "execute", "MNEMONICS", "TABLE_LOADS"]

MNEMONICS = tuple(op.mnemonic for op in isa.SXM_OPS)
#: Table-loading instructions and the table they fill.
TABLE_LOADS = {"perm_load": "perm", "dist_load": "dist"}
#: Instructions that read a table, and which.
TABLE_USERS = {"permute": "perm", "distribute": "dist"}
#: Transpose block side: a group of INT32_GROUP streams x INT32_GROUP lanes.
BLOCK = isa.INT32_GROUP


def movement(mnemonic, config, planes, n=0, perm=None, dist=None):
    """The lane movement of an SXM producer on whole vectors.

    Parameters
    ----------
    mnemonic : str
        ``shiftu``, ``shiftd``, ``rotate``, ``permute``, ``distribute`` or ``transpose``.
    config : Config
    planes : array of uint8, shape (width, lanes)
        The operand group ``a`` (width 1, or ``BLOCK`` for ``transpose``).
    n : int
        The lane count of shifts and rotations (any encodable value: a shift by ``n >= lanes``
        gives zeros, a rotation takes ``n mod lanes``).
    perm, dist : array of int, shape (lanes,)
        The tables (entries as loaded, unsigned).

    Returns
    -------
    array of uint8, shape (width, lanes)
    """
    lanes, lps = config.lanes, config.lanes_per_superlane
    planes = np.asarray(planes, dtype=np.uint8)
    lane = np.arange(lanes)
    if mnemonic == "transpose":
        out = np.zeros((BLOCK, lanes), dtype=np.uint8)
        for r in range(BLOCK):
            for c in range(BLOCK):
                dst = lane[lane % BLOCK == c]           # lanes 4b + c of stream dst + r
                src = dst - c + r                        # lane 4b + r of stream a + c
                ok = src < lanes
                out[r, dst[ok]] = planes[c, src[ok]]
        return out
    if mnemonic == "shiftu":
        src = lane - n
    elif mnemonic == "shiftd":
        src = lane + n
    elif mnemonic == "rotate":
        src = (lane - n) % lanes
    elif mnemonic == "permute":
        src = np.asarray(perm, dtype=np.int64)
    elif mnemonic == "distribute":
        entry = np.asarray(dist, dtype=np.int64)
        src = np.where(entry < lps, lane - lane % lps + entry, -1)
    else:
        raise ValueError(f"{mnemonic} is not an SXM lane movement")
    ok = (src >= 0) & (src < lanes)
    out = np.zeros((1, lanes), dtype=np.uint8)
    out[0, ok] = planes[0, src[ok]]
    return out


class Sxm:
    """One SXM: the permute table ``perm`` and the distribute table ``dist`` (one unsigned entry
    per lane, zero at reset) and the producers in flight (operand shares collected superlane
    by superlane).

    Parameters
    ----------
    config : Config
    """

    def __init__(self, config):
        self.config = config
        self.tables = {"perm": np.zeros(config.lanes, dtype=np.int64),
                       "dist": np.zeros(config.lanes, dtype=np.int64)}
        self._inflight = {}         # issue cycle -> (operand shares, table shares)
        self._pending = []

    def lanes(self, superlane):
        lps = self.config.lanes_per_superlane
        return slice(superlane * lps, (superlane + 1) * lps)

    def load(self, superlane, table, values):
        """Superlane ``superlane``'s share of ``perm_load`` / ``dist_load``: its entries of
        ``table`` become ``values`` at the end of the cycle."""
        values = np.asarray(values, dtype=np.int64).copy()
        lanes = self.lanes(superlane)
        self._pending.append(lambda: self.tables[table].__setitem__(lanes, values))

    def collect(self, t, superlane, instr, share):
        """Superlane ``superlane``'s share of producer ``instr`` issued in cycle ``t``:
        ``share`` is its slice of the operand group, shape (width, lanes_per_superlane).

        Returns the whole result (width, lanes) once the last superlane has given its share,
        else None.
        """
        shares, tables = self._inflight.setdefault(t, ({}, {}))
        shares[superlane] = np.asarray(share, dtype=np.uint8).copy()
        for table in self.tables:
            tables.setdefault(table, {})[superlane] = self.tables[table][self.lanes(superlane)]
        if superlane < self.config.superlanes - 1:
            return None
        del self._inflight[t]
        order = range(self.config.superlanes)
        planes = np.concatenate([shares[k] for k in order], axis=1)
        perm = np.concatenate([tables["perm"][k] for k in order])
        dist = np.concatenate([tables["dist"][k] for k in order])
        return movement(instr.op.mnemonic, self.config, planes, instr.get("n", 0), perm, dist)

    def end_cycle(self):
        """Land the table loads of the cycle."""
        for update in self._pending:
            update()
        self._pending.clear()


def execute(model, slice_, instr, superlane):
    """Executor of every SXM instruction for :class:`opentsp.sim.model.Model`."""
    unit = model.sxms[slice_.name]
    name = instr.op.mnemonic
    if name not in MNEMONICS:
        raise ValueError(f"{name} is not an SXM instruction")

    def share(field):
        direction, ids = instr.group(field)
        return np.stack([model._input(slice_.position, direction, s, superlane) for s in ids])

    if name in TABLE_LOADS:
        planes = share("s").astype(np.int64)
        values = sum(plane << (8 * i) for i, plane in enumerate(planes))
        unit.load(superlane, TABLE_LOADS[name], values)
        return
    t = model.cycle - superlane
    result = unit.collect(t, superlane, instr, share("a"))
    if result is None:
        return
    when = t + isa.latency(instr.op, model.config)
    direction, ids = instr.group("dst")
    for k in range(model.config.superlanes):
        for plane, stream in zip(result, ids, strict=True):
            model._write_stream(when + k, slice_, direction, stream, k, plane[unit.lanes(k)])
