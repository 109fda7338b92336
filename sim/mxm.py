"""Golden model of the MXM (docs/architecture.md section 7a): weights, accumulators and the
partial-sum chain that follows the superlane stagger.

:class:`Mxm` is the state of one MXM and executes one instruction on one superlane (what that
superlane does in the cycle it runs it); every state change is deferred to :meth:`Mxm.end_cycle`
so that everything executed in a cycle sees the state as it was at the start of the cycle, as
the registers of the RTL do. :func:`execute` connects it to :class:`opentsp.sim.model.Model`.

Types are explicit: weights are ``int8``, products and sums ``int32`` with wrap-around
(computed in ``int64`` and wrapped by :func:`wrap32`).
"""

import numpy as np

from opentsp import isa, packing

__all__ = ["Mxm", "wrap32", "execute", "MNEMONICS"]

MNEMONICS = tuple(op.mnemonic for op in isa.OPS if op.unit == isa.Unit.MXM)


def wrap32(values):
    """int64 values to int32, modulo 2**32 (two's complement wrap-around)."""
    values = np.asarray(values, dtype=np.int64)
    return ((values + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


class Mxm:
    """One MXM: back weights ``B``, front weights ``F`` (``N x N`` int8), accumulators
    (``mxm_accumulators x N`` int32) and the partial-sum registers ``chain[k]`` (``p_k`` of the
    ``abc`` that superlane ``k`` ran in the previous cycle). All zero at reset.

    Parameters
    ----------
    config : Config
    """

    def __init__(self, config):
        self.config = config
        n = self.size = config.mxm_size
        self.span = isa.mxm_span(config)
        self.back = np.zeros((n, n), dtype=np.int8)
        self.front = np.zeros((n, n), dtype=np.int8)
        self.acc = np.zeros((config.mxm_accumulators, n), dtype=np.int32)
        self.chain = np.zeros((config.superlanes, n), dtype=np.int32)
        self._pending = []

    def lanes(self, superlane):
        """The MXM lanes (columns ``i < N``) of ``superlane``: a range, empty beyond the span."""
        lps = self.config.lanes_per_superlane
        return range(superlane * lps, min((superlane + 1) * lps, self.size))

    # One instruction on one superlane; x is that superlane's slice of the stream, int8.

    def lw(self, superlane, row, x):
        """``B[row][i] = x[i]`` for the lanes of ``superlane`` (rows >= N: nothing)."""
        lanes = self.lanes(superlane)
        if row < self.size and len(lanes):
            values = np.asarray(x, dtype=np.int8)[:len(lanes)].copy()
            self._pending.append(lambda: self.back.__setitem__((row, lanes), values))

    def iw(self, superlane):
        """``F[j][i] = B[j][i]`` for every row and the lanes of ``superlane``."""
        lanes = self.lanes(superlane)
        if len(lanes):
            values = self.back[:, lanes].copy()
            self._pending.append(lambda: self.front.__setitem__((slice(None), lanes), values))

    def abc(self, superlane, acc, add, x):
        """Superlane ``k``'s share of ``abc``: ``p_k = p_(k-1) + F[:, lanes] @ x``; the last
        superlane of the span updates accumulator ``acc`` (if it exists)."""
        k = superlane
        lanes = self.lanes(k)
        if not len(lanes):
            return
        x = np.asarray(x, dtype=np.int8)[:len(lanes)].astype(np.int64)
        local = self.front[:, lanes].astype(np.int64) @ x      # int8 x int8 products, exact
        previous = self.chain[k - 1].astype(np.int64) if k else 0
        partial = wrap32(previous + local)
        if k < self.span - 1:
            self._pending.append(lambda: self.chain.__setitem__(k, partial))
        elif acc < self.config.mxm_accumulators:
            base = self.acc[acc].astype(np.int64) if add else 0
            total = wrap32(base + partial.astype(np.int64))
            self._pending.append(lambda: self.acc.__setitem__(acc, total))

    def read_acc(self, superlane, acc):
        """``acc[acc][j]`` for the lanes ``j`` of ``superlane`` (``lanes_per_superlane`` int32,
        zero for ``j >= N`` and for accumulators that do not exist)."""
        out = np.zeros(self.config.lanes_per_superlane, dtype=np.int32)
        lanes = self.lanes(superlane)
        if len(lanes) and acc < self.config.mxm_accumulators:
            out[:len(lanes)] = self.acc[acc, lanes]
        return out

    def end_cycle(self):
        """Land the state changes of the cycle's instructions."""
        for update in self._pending:
            update()
        self._pending.clear()


def execute(model, slice_, instr, superlane):
    """Executor of ``lw``, ``iw``, ``abc`` and ``acc`` for :class:`opentsp.sim.model.Model`."""
    unit = model.mxms[slice_.name]
    name = instr.op.mnemonic

    def stream(field):
        direction, (ident,) = instr.group(field)
        return model._input(slice_.position, direction, ident, superlane).view(np.int8)

    if name == "lw":
        unit.lw(superlane, instr["row"], stream("s"))
    elif name == "iw":
        unit.iw(superlane)
    elif name == "abc":
        unit.abc(superlane, instr["acc"], instr["add"], stream("s"))
    elif name == "acc":
        planes = packing.pack(unit.read_acc(superlane, instr["acc"]), isa.DType.I32)
        direction, ids = instr.group("dst")
        for plane, ident in zip(planes, ids, strict=True):
            model._write_stream(model.cycle + isa.latency(instr.op, model.config), slice_,
                                direction, ident, superlane, plane)
    else:
        raise ValueError(f"{name} is not an MXM instruction")
