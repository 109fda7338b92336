"""MXM sequencers (docs/architecture.md section 7a, ISA v4): on superlane 0, the MXM's load
sequencer (``lw``, shared by the planes) and every plane's compute and drain sequencers (``abc
p``, ``acc p``), and the delay lines that hand each element (and each ``iw``) to superlane ``k``
``k`` cycles later."""

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned
from amaranth.lib import data

from opentsp import isa
from opentsp.hdl.layouts import STREAM, is_op, merged_layout, opcode_of
from opentsp.hdl.mxm_float import FORMAT_BITS, FORMATS

__all__ = ["MXM_LAYOUT", "Sequence", "element_layouts", "build_sequencer", "build_install",
           "delayed", "ops_of", "format_code", "is_mnemonic"]

#: The merged layout of the MXM's instruction fields.
MXM_LAYOUT = merged_layout([op for op in isa.OPS if op.unit == isa.Unit.MXM])


def ops_of(mnemonic, config):
    """The MXM's instructions of ``mnemonic`` that ``config``'s chip runs: every type with
    floating point, the integer one alone without (its loader refuses the others)."""
    return [op for op in isa.OPS if op.unit == isa.Unit.MXM and op.mnemonic == mnemonic
            and (config.floating_point or not op.suffix)]


def format_code(op):
    """The element format of MXM sequence instruction ``op``: for ``lw``/``abc`` the index of
    its stream type in :data:`~opentsp.hdl.mxm_float.FORMATS` (0 int8, 1 fp16, 2 bf16; every
    16-bit ``lw`` loads alike), for ``acc`` 1 when it reads f32, else 0 (int32)."""
    types = dict(op.operand_types)
    if op.mnemonic == "acc":
        return int(types["dst"] == isa.DType.F32)
    return FORMATS.index(types.get("s"))


def is_mnemonic(word, mnemonic, config):
    """1 when the instruction word ``word`` is one of :func:`ops_of` ``mnemonic``."""
    hits = [opcode_of(word) == op.opcode for op in ops_of(mnemonic, config)]
    return hits[0] if len(hits) == 1 else Cat(*hits).any()


def _format_of(word, mnemonic, config):
    """The :func:`format_code` of the instruction word ``word`` of ``mnemonic``."""
    code = Const(0, FORMAT_BITS)
    for op in ops_of(mnemonic, config):
        if format_code(op):
            code = Mux(opcode_of(word) == op.opcode, format_code(op), code)
    return code


def element_layouts(config):
    """The element each sequencer hands the superlanes, per kind: an ``lw`` element's first
    row and an ``abc``/``acc`` element's accumulator saturate at ``mxm_size`` and
    ``mxm_accumulators`` (a row or accumulator that does not exist), so that a long sequence
    cannot wrap round to a real one. The ``abc``/``acc`` elements carry no plane: each plane
    has its own compute and drain sequencers. With floating point every element carries its
    ``fmt`` (:func:`format_code`)."""
    row = unsigned(config.mxm_size.bit_length())
    acc = unsigned(config.mxm_accumulators.bit_length())
    plane = unsigned(isa.MXM_PLANE_BITS)
    fmt = {"fmt": unsigned(FORMAT_BITS)} if config.floating_point else {}
    return {
        "lw": data.StructLayout({"valid": 1, "plane": plane, "index": row, "s": STREAM, **fmt}),
        "abc": data.StructLayout({"valid": 1, "index": acc, "add": 1, "s": STREAM, **fmt}),
        "acc": data.StructLayout({"valid": 1, "index": acc, "dst": STREAM, **fmt}),
    }


class Sequence(NamedTuple):
    """A sequencer's outputs in a cycle (:func:`build_sequencer`): its ``element``, and the two
    values it chooses between, so that a user may select on each ahead of the choice (the MXM
    selects its operand streams so): ``first``, the element of an instruction issued in this
    cycle, used when ``start``; otherwise ``held``, the next element of a running sequence
    (``element`` is ``held`` when ``held.valid`` and not ``halt``, else no element)."""
    element: Signal
    start: Signal
    first: Signal
    held: Signal


def _saturated(value, limit):
    return Mux(value >= limit, limit, value)


def build_sequencer(m, mxm, kind, halt, plane=None):
    """Superlane 0: a sequencer of ``kind``, the load sequencer (``lw``, ``plane`` None) or
    plane ``plane``'s compute (``abc``) or drain (``acc``) sequencer; returns a
    :class:`Sequence` whose ``element`` is the element of this cycle (a signal in
    :func:`element_layouts`' layout).

    An instruction for it (of mnemonic ``kind``, any type the chip runs (:func:`ops_of`), and
    for ``abc``/``acc`` with ``p == plane``; one of a plane the MXM does not have matches no
    sequencer) issued in cycle ``t`` is element 0 in ``t`` and starts the sequence anew;
    elements ``1 .. n-1`` follow one per cycle from the registers, unless ``halt`` (the queue
    is in or past its ``end`` slot), which ends the sequence. ``clear`` ends it too, at the
    end of the cycle. Combinational in the issue cycle; the registers load at its end. The
    element carries the instruction's format (``fmt``, :func:`format_code`) with floating
    point.
    """
    cfg = mxm.config
    layout = element_layouts(cfg)[kind]
    limit, step = ((cfg.mxm_size, cfg.mxm_load_rows) if kind == "lw"
                   else (cfg.mxm_accumulators, 1))
    word = MXM_LAYOUT(mxm.issue.word)
    name = kind if plane is None else f"{kind}_{plane}"
    start = Signal(name=f"{name}_start")
    issued = mxm.issue.valid & is_mnemonic(mxm.issue.word, kind, cfg)
    m.d.comb += start.eq(issued if plane is None else issued & (word.p == plane))
    count = Mux(word.n == 0, 1, word.n)     # n = 0 does not decode; run it as 1 all the same

    held = Signal(layout, name=f"{name}_held")          # the next element, while active
    left = Signal(isa.MXM_SEQ_BITS, name=f"{name}_left")  # elements after the held one
    element = Signal(layout, name=f"{name}_element")
    first = Signal(layout, name=f"{name}_first")
    m.d.comb += [first.valid.eq(1),
                 first.index.eq(_saturated(word.row if kind == "lw" else word.acc, limit))]
    fields = {"plane": word.p, "s": word.s, "add": word.add, "dst": word.dst}
    if "fmt" in layout.members:
        fields["fmt"] = _format_of(mxm.issue.word, kind, cfg)
    for member in layout.members:
        if member not in ("valid", "index"):
            m.d.comb += getattr(first, member).eq(fields[member])
    with m.If(start):
        m.d.comb += element.eq(first)
    with m.Elif(held.valid & ~halt):
        m.d.comb += element.eq(held)

    following = Signal(layout, name=f"{name}_following")
    m.d.comb += [following.eq(element), following.index.eq(_saturated(element.index + step,
                                                                      limit))]
    with m.If(mxm.clear):
        m.d.sync += held.valid.eq(0)
    with m.Elif(start):
        m.d.sync += [held.eq(following), held.valid.eq(count > 1), left.eq(count - 2)]
    with m.Elif(held.valid & halt):
        m.d.sync += held.valid.eq(0)
    with m.Elif(held.valid):
        m.d.sync += [held.eq(following), held.valid.eq(left != 0), left.eq(left - 1)]
    return Sequence(element, start, first, held)


def build_install(m, mxm):
    """Superlane 0: the queue's ``iw`` of this cycle (``valid``, ``plane``)."""
    word = MXM_LAYOUT(mxm.issue.word)
    install = Signal(data.StructLayout({"valid": 1, "plane": unsigned(isa.MXM_PLANE_BITS)}),
                     name="iw")
    m.d.comb += [install.valid.eq(mxm.issue.valid & is_op(mxm.issue.word, "iw")),
                 install.plane.eq(word.p)]
    return install


def delayed(m, mxm, signal, name):
    """``signal`` (with a ``valid`` member) as superlane ``k`` sees it: the list of
    ``superlanes`` values, element ``k`` registered ``k`` times; ``clear`` empties the line."""
    line = [signal]
    for k in range(1, mxm.config.superlanes):
        reg = Signal(signal.shape(), name=f"{name}_{k}")
        with m.If(mxm.clear):
            m.d.sync += reg.valid.eq(0)
        with m.Else():
            m.d.sync += reg.eq(line[-1])
        line.append(reg)
    return line
