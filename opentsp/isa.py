"""The OpenTSP instruction set: the one definition of encodings, operands and latencies.

The golden model (`opentsp.sim`), the assembler and checker (`opentsp.firmware`) and the RTL
(`opentsp.hdl`) all read this module; none of them keeps a second copy of an opcode, a field
position or a latency. ``docs/architecture.md`` explains the rules in prose and
``opentsp isa`` prints the tables below.

Timing words used throughout (see the architecture document, "Timing rules"):

* An instruction *issues* on superlane 0 in cycle ``t``; superlane ``k`` executes it in cycle
  ``t + k``.
* A consumer reads the stream registers at its slice's input during its issue cycle ``t``.
* A producer with latency ``L`` loads its result into its own output stream register at the end
  of cycle ``t + L``; the value is readable by the slice ``h >= 1`` hops downstream in cycle
  ``t + L + h``.
* An instruction with memory commit ``C`` changes its SRAM word at the end of cycle ``t + C``.
"""

import bisect
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "ISA_VERSION", "INSTR_BITS", "OPCODE_BITS", "ADDR_BITS", "STREAM_BITS", "INT32_GROUP",
    "Dir", "DType", "Unit", "SliceKind", "Field", "OpInfo", "Instr", "OPS", "OPS_BY_CODE",
    "OPS_BY_NAME", "DRAIN", "VXM_FUNCS", "encode", "decode", "StreamRef", "Slice", "floorplan",
    "queues", "mem_slices", "EncodingError", "field_limit", "mxm_span", "VXM_UNARY",
    "MXM_SEQUENCERS", "mxm_sequencer", "MXM_FLOAT_TYPES",
    "CHAIN_OPERAND",
    "MEM_ADDR_TYPE", "MEM_SEQ_STARTS",
    "latency", "SXM_OPS", "VXM_CHAIN_DISTANCE", "chain_source", "NOTIFY_LATENCY", "FETCH_LATENCY",
    "is_permutation",
    "TYPE_BITS", "VXM_F32_ONLY", "HALF_TYPES", "uses_float", "check_config",
    "float_type_error", "type_pairs", "needs_float",
    "C2C_OPS", "C2C_RECV_LATENCY", "FrameKind", "c2c_frame_bytes", "c2c_frame_cycles",
    "c2c_arrival", "c2c_release", "c2c_link_name",
]

#: Bump when an encoding, a latency or a timing rule changes; images record it. Version 3: the
#: MXM's sequences (``lw``/``abc``/``acc`` with a count), planes and multi-row weight loads.
#: Version 4: every MXM plane computes and drains on its own sequencers (``abc p``, ``acc p``).
#: Version 5: 3-bit type fields (f16 and bf16 join i8, i16, i32 and f32), so the VXM's fields
#: moved; the VXM functions ``exp``, ``recip``, ``rsqrt`` and ``tanh``.
#: Version 6: the MXM's floating-point mode (``lw.f16``, ``lw.bf16``, ``abc.f16``, ``abc.bf16``,
#: ``acc.f32``) and, on chips with floating point, its exact wide accumulators.
#: Version 7: the C2C slices at the chip's edges (``send``, ``recv``, ``mark``, ``deskew``) on
#: chips with links (``Config.c2c_links``); the other slices' timing is unchanged.
#: Version 8: a chained VXM operand (``r``) is the result of the last VXM instruction executed
#: at least :data:`VXM_CHAIN_DISTANCE` = 2 cycles before, so a chain's steps are two cycles
#: apart and two chains interleave (the ALU no longer finishes and starts in one cycle).
ISA_VERSION = 8

INSTR_BITS = 32
OPCODE_BITS = 6
OPCODE_LSB = INSTR_BITS - OPCODE_BITS
ADDR_BITS = 13          # 8192 words per MEM slice, as on the real chip
STREAM_BITS = 5         # up to 32 streams per direction
STREAM_OPERAND_BITS = STREAM_BITS + 1   # direction bit above the stream id
COUNT_BITS = 16         # NOP count and Repeat count, as on the real chip
DELAY_BITS = 10         # Repeat spacing
INT32_GROUP = 4         # an int32 occupies an aligned group of 4 byte streams


class EncodingError(ValueError):
    """An instruction word or operand that the ISA cannot represent."""


class Dir(IntEnum):
    """Stream direction. Eastward streams move to higher slice positions."""
    E = 0
    W = 1


class DType(IntEnum):
    """Element types. The value is the type code in the instruction word. ``F32`` is IEEE
    binary32 with OpenTSP's rules (:mod:`opentsp.fp`: round to nearest even, subnormals read
    as zero and flushed, canonical NaN); it travels like an int32 (four byte streams). ``F16``
    (IEEE binary16) and ``BF16`` (bfloat16) travel like an int16 (an aligned stream pair); the
    VXM only converts them to and from f32 (``cvt``), the MXM multiplies them."""
    I8 = 0
    I16 = 1
    I32 = 2
    F32 = 3
    F16 = 4
    BF16 = 5

    @property
    def bytes(self):
        return {DType.I8: 1, DType.I16: 2, DType.I32: 4, DType.F32: 4, DType.F16: 2,
                DType.BF16: 2}[self]

    @property
    def is_float(self):
        return self in (DType.F32, DType.F16, DType.BF16)

    @property
    def suffix(self):
        return self.name.lower()


class Unit(IntEnum):
    """Which kind of slice queue may hold an instruction."""
    ICU = 0     # any queue: flow control handled by the queue itself
    MEM = 1
    VXM = 2
    MXM = 3
    SXM = 4
    C2C = 5


class SliceKind(IntEnum):
    MXM = 0
    SXM = 1
    MEM = 2
    VXM = 3
    C2C = 4


@dataclass(frozen=True)
class Field:
    """A bit field of an instruction word.

    ``kind`` is one of ``"count"`` (unsigned, at least 1), ``"uint"``, ``"flag"`` (0 or 1),
    ``"addr"`` (a MEM word address, below ``mem_words``), ``"row"`` (an MXM weight row, below
    ``mxm_size``), ``"accum"`` (an MXM accumulator, below ``mxm_accumulators``), ``"plane"``
    (an MXM plane, below ``mxm_planes``), ``"link"`` (a link of a C2C slice, below
    ``c2c_links``), ``"lane"``
    (a lane count of the SXM, below ``lanes``), ``"stride"`` (a MEM sequencer stride, below
    ``mem_words``), ``"stream"``
    (direction bit above a stream id) or ``"dtype"``. :func:`field_limit` gives the largest
    value a configuration accepts.
    """
    name: str
    lsb: int
    width: int
    kind: str = "uint"

    @property
    def mask(self):
        return (1 << self.width) - 1


@dataclass(frozen=True)
class OpInfo:
    """One instruction of the ISA.

    Attributes
    ----------
    latency : int or None
        For producers: the result is in the slice's output stream register at the end of
        cycle ``issue + latency``.
    commit : int or None
        For memory writers: the SRAM word changes at the end of cycle ``issue + commit``.
    reads : tuple of str
        Stream operand fields read in the issue cycle.
    writes : tuple of str
        Stream operand fields written ``latency`` cycles after issue.
    """
    mnemonic: str
    opcode: int
    unit: Unit
    fields: tuple
    operands: tuple          # assembly operand order (field names)
    latency: int | None = None
    commit: int | None = None
    reads: tuple = ()
    writes: tuple = ()
    typed: bool = False       # takes a .i8/.i16/.i32 suffix (the "dtype" field)
    converts: bool = False    # takes a second suffix, the result type (the "rtype" field)
    operand_types: tuple = ()  # (operand, DType) pairs fixed by the instruction itself
    #: (operand, Config parameter) pairs: the operand is that many groups side by side (an
    #: ``lw`` reads ``mxm_load_rows`` streams, an ``acc`` writes one int32 group per plane).
    operand_repeats: tuple = ()
    doc: str = ""
    #: A fixed type in the name (``abc.bf16``: ``mnemonic`` "abc", ``suffix`` "bf16"); the
    #: mnemonic names the operation (its sequencer, its checks), :attr:`name` the instruction.
    suffix: str = ""

    @property
    def name(self):
        """The instruction's assembly name: the mnemonic, with its fixed type if it has one."""
        return f"{self.mnemonic}.{self.suffix}" if self.suffix else self.mnemonic

    @property
    def chainable(self):
        """True if operand ``a`` may be the VXM's previous result (``r``, the "chain" flag)."""
        return any(f.name == "chain" for f in self.fields)

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def operand_type(self, name, dtype=None, rtype=None):
        """Element type of stream operand ``name``: fixed by the instruction, else the result
        type for written operands and the source type for read ones; None means one byte."""
        fixed = dict(self.operand_types)
        if name in fixed:
            return fixed[name]
        if name in self.writes:
            return rtype if self.converts else dtype
        return dtype

    def operand_width(self, name, dtype=None, rtype=None, config=None):
        """Byte streams in operand ``name``'s group; with ``config``, times the groups side by
        side that the configuration gives it (:attr:`operand_repeats`)."""
        dtype = self.operand_type(name, dtype, rtype)
        width = 1 if dtype is None else dtype.bytes
        if config is not None:
            for operand, parameter in self.operand_repeats:
                if operand == name:
                    width *= getattr(config, parameter)
        return width


# Field layouts ----------------------------------------------------------------------------

_COUNT = Field("count", 0, COUNT_BITS, "count")
_REPEAT_N = Field("n", 0, COUNT_BITS, "count")
_REPEAT_D = Field("d", 16, DELAY_BITS, "count")
_ADDR = Field("addr", 0, ADDR_BITS, "addr")
_MEM_STREAM = Field("s", 20, STREAM_OPERAND_BITS, "stream")
TYPE_BITS = 3
_DTYPE = Field("dtype", 23, TYPE_BITS, "dtype")
_DST = Field("dst", 17, STREAM_OPERAND_BITS, "stream")
_SRC_A = Field("a", 11, STREAM_OPERAND_BITS, "stream")
_SRC_B = Field("b", 5, STREAM_OPERAND_BITS, "stream")
_RTYPE = Field("rtype", 2, TYPE_BITS, "dtype")
_CHAIN = Field("chain", 0, 1, "flag")

#: The VXM's ALU functions, in opcode order. Each is one opcode; see the golden model's
#: ``opentsp.sim.alu`` for the arithmetic (wrapping add/sub/mul, saturating conversion).
VXM_FUNCS = ("add", "sub", "mul", "min", "max", "relu", "cvt",
             "neg", "abs", "shl", "shr", "rshr", "mulh", "and", "or", "xor", "cmpeq", "cmpgt",
             "exp", "recip", "rsqrt", "tanh")
#: The functions of f32 alone: the transcendental functions of :mod:`opentsp.fp`.
VXM_F32_ONLY = ("exp", "recip", "rsqrt", "tanh")
VXM_UNARY = ("relu", "cvt", "neg", "abs") + VXM_F32_ONLY
#: The 16-bit float types, which the VXM only converts to and from f32.
HALF_TYPES = (DType.F16, DType.BF16)
VXM_LATENCY = 1
#: Cycles from a VXM instruction executed in cycle t to the first instruction that reads its
#: result as the chained operand ``r`` (cycle t + VXM_CHAIN_DISTANCE): ``r`` in cycle c is the
#: result of the last VXM instruction executed in a cycle <= c - VXM_CHAIN_DISTANCE (section 8).
#: The result is formed in t + 1 and registered for chaining at its end.
VXM_CHAIN_DISTANCE = 2


def chain_source(cycles, now):
    """Which result the chained operand ``r`` reads in cycle ``now`` (section 8).

    Parameters
    ----------
    cycles : sequence of int
        The cycles in which a superlane's VXM instructions executed, in ascending order.
    now : int
        The cycle of the chained read.

    Returns
    -------
    int or None
        The index in ``cycles`` of the last instruction executed in ``now -
        VXM_CHAIN_DISTANCE`` or earlier, or None if there is none (``r`` reads zero).
    """
    at = bisect.bisect_right(cycles, now - VXM_CHAIN_DISTANCE)
    return at - 1 if at else None


MEM_READ_LATENCY = 1
MEM_WRITE_COMMIT = 1
#: Cycles from a ``notify`` issued in cycle t to the first slot of every queue it releases
#: (cycle t + NOTIFY_LATENCY): one register stage on the chip-wide notify bus, then the parked
#: queues advance. A ``sync`` reached in cycle a is released by the first notify issued in a
#: cycle t >= a + 1 - NOTIFY_LATENCY (section 5a).
NOTIFY_LATENCY = 2
#: Cycles from an ``ifetch`` slot that takes a word (cycle c) to the first slot that can
#: execute it (cycle c + FETCH_LATENCY): the word is written into the queue memory at the end of
#: cycle c and the prefetch read port reads it in cycle c + 1 for slot c + 2 (section 5b).
FETCH_LATENCY = 2
_IFETCH_S = Field("s", 20, STREAM_OPERAND_BITS, "stream")
_IFETCH_N = Field("n", 0, COUNT_BITS, "count")

_OPS = [
    OpInfo("nop", 0x00, Unit.ICU, (_COUNT,), ("count",),
           doc="Issue nothing for `count` cycles (1..65535)."),
    OpInfo("repeat", 0x01, Unit.ICU, (_REPEAT_N, _REPEAT_D), ("n", "d"),
           doc="Issue the previous instruction `n` more times, every `d` cycles; "
               "occupies n*d slots, copy k issues at slot start + d-1 + k*d."),
    OpInfo("end", 0x02, Unit.ICU, (), (),
           doc="End of this queue's program; the queue issues nothing afterwards."),
    # Barrier across queues (ICU, docs/architecture.md section 5a): see NOTIFY_LATENCY.
    OpInfo("sync", 0x03, Unit.ICU, (), (),
           doc="Park the queue (issue nothing) until a notify of any queue releases it; "
               "the next instruction issues NOTIFY_LATENCY cycles after that notify."),
    OpInfo("notify", 0x04, Unit.ICU, (), (),
           doc="Release every queue parked on a sync (or reaching one within "
               "NOTIFY_LATENCY - 1 cycles): they all resume NOTIFY_LATENCY cycles later."),
    # Instruction fetch (ICU, docs/architecture.md section 5b): see FETCH_LATENCY.
    OpInfo("ifetch", 0x05, Unit.ICU, (_IFETCH_N, _IFETCH_S), ("s", "n"),
           reads=("s",), operand_types=(("s", DType.I32),),
           doc="Occupy `n` slots; in each, append lane 0 (superlane 0) of the int32 group `s` "
               "at the slice input to this queue as one instruction word (usable "
               "FETCH_LATENCY cycles later)."),
    OpInfo("read", 0x08, Unit.MEM, (_ADDR, _MEM_STREAM), ("s", "addr"),
           latency=MEM_READ_LATENCY, writes=("s",),
           doc="Read word `addr` of this slice onto stream `s`."),
    OpInfo("write", 0x09, Unit.MEM, (_ADDR, _MEM_STREAM), ("addr", "s"),
           commit=MEM_WRITE_COMMIT, reads=("s",),
           doc="Write the value on stream `s` at this slice into word `addr`."),
]
_VXM_DOC = {
    "add": "dst = a + b, wrapping", "sub": "dst = a - b, wrapping",
    "mul": "dst = a * b, low half, wrapping", "min": "dst = min(a, b), signed",
    "max": "dst = max(a, b), signed", "relu": "dst = max(a, 0)",
    "cvt": "dst (rtype) = a (dtype): integers saturate, floats round to nearest even "
           "(f16/bf16 only to and from f32)",
    "neg": "dst = -a, wrapping", "abs": "dst = |a|, wrapping (|min| = min)",
    "shl": "dst = a << (b mod bits), wrapping",
    "shr": "dst = a >> (b mod bits), arithmetic",
    "rshr": "dst = (a + 2^(n-1)) >> n with n = b mod bits (a if n = 0): rounding shift",
    "mulh": "dst = (a * b) >> bits: high half of the signed product",
    "and": "dst = a & b", "or": "dst = a | b", "xor": "dst = a ^ b",
    "cmpeq": "dst = -1 (all ones) if a == b else 0",
    "cmpgt": "dst = -1 (all ones) if a > b (signed) else 0",
    "exp": "dst = e**a (f32 only; the algorithm of opentsp.fp.exp32)",
    "recip": "dst = 1 / a (f32 only), correctly rounded",
    "rsqrt": "dst = 1 / sqrt(a) (f32 only), correctly rounded",
    "tanh": "dst = tanh(a) (f32 only; the algorithm of opentsp.fp.tanh32)",
}
for _i, _func in enumerate(VXM_FUNCS):
    _unary = _func in VXM_UNARY
    _fields = (_DTYPE, _DST, _SRC_A) + (() if _unary else (_SRC_B,))
    _fields += ((_RTYPE,) if _func == "cvt" else ()) + (_CHAIN,)
    _OPS.append(OpInfo(
        _func, 0x10 + _i, Unit.VXM, _fields,
        ("dst", "a") if _unary else ("dst", "a", "b"),
        latency=VXM_LATENCY, reads=("a",) if _unary else ("a", "b"), writes=("dst",),
        typed=True, converts=_func == "cvt", doc=_VXM_DOC[_func]))

# The MXM (section 7a, ISA v4): mxm_planes weight-stationary mxm_size x mxm_size arrays; lw,
# abc and acc start sequences of n elements, one per cycle, on the MXM's load sequencer and the
# plane's compute and drain sequencers. Integer mode (ISA v2): int8 weights and activations,
# int32 results. Floating-point mode (ISA v6, chips with Config.floating_point): fp16 or bf16
# weights and activations, products summed exactly (opentsp.fp.Accumulator) and rounded once
# to fp32 by acc.f32.
MXM_ROW_BITS = 9        # up to 512 weight rows
MXM_ACC_BITS = 9        # up to 512 accumulators
MXM_SEQ_BITS = 9        # sequences of 1..511 elements
MXM_PLANE_BITS = 1      # up to 2 planes per MXM: the real chip's four in all
MXM_ACC_LATENCY = 1
#: The MXM's sequencers (by mnemonic, every type alike): one load sequencer, and per plane a
#: compute and a drain sequencer.
MXM_SEQUENCERS = {"lw": "load", "abc": "compute", "acc": "drain"}
#: The types of the MXM's floating-point mode: weights and activations (``lw.T``, ``abc.T``).
MXM_FLOAT_TYPES = (DType.F16, DType.BF16)
_MXM_STREAM = Field("s", 20, STREAM_OPERAND_BITS, "stream")
_MXM_DST = Field("dst", 20, STREAM_OPERAND_BITS, "stream")
_MXM_ROW = Field("row", 0, MXM_ROW_BITS, "row")
_MXM_ACC = Field("acc", 0, MXM_ACC_BITS, "accum")
_MXM_N = Field("n", 9, MXM_SEQ_BITS, "count")
_MXM_ADD = Field("add", 18, 1, "flag")
_MXM_PLANE = Field("p", 19, MXM_PLANE_BITS, "plane")
_LW_FIELDS = (_MXM_ROW, _MXM_N, _MXM_PLANE, _MXM_STREAM)
_ABC_FIELDS = (_MXM_ACC, _MXM_N, _MXM_ADD, _MXM_PLANE, _MXM_STREAM)
_ACC_FIELDS = (_MXM_ACC, _MXM_N, _MXM_PLANE, _MXM_DST)


def _mxm_lw(opcode, dtype=None):
    streams = "streams" if dtype is None else f"{dtype.suffix} stream pairs"
    return OpInfo(
        "lw", opcode, Unit.MXM, _LW_FIELDS, ("p", "row", "s", "n"), reads=("s",),
        operand_types=(() if dtype is None else (("s", dtype),)),
        operand_repeats=(("s", "mxm_load_rows"),), suffix="" if dtype is None else dtype.suffix,
        doc=f"Load sequence: element e writes back-buffer rows row+e*R .. row+e*R+R-1 of plane "
            f"`p` from the {streams} from s on, one row each (R = mxm_load_rows).")


def _mxm_abc(opcode, dtype=None):
    what = "int8" if dtype is None else dtype.suffix
    return OpInfo(
        "abc", opcode, Unit.MXM, _ABC_FIELDS, ("p", "acc", "s", "add", "n"), reads=("s",),
        operand_types=(() if dtype is None else (("s", dtype),)),
        suffix="" if dtype is None else dtype.suffix,
        doc=f"Compute sequence of plane `p`: element e does acc_p[acc+e][j] (+)= "
            f"sum_i W_p[j][i] * x[i], {what} x = stream `s` and weights, exactly; add = 0 "
            f"sets, 1 adds.")


_OPS += [
    _mxm_lw(0x30),
    OpInfo("iw", 0x31, Unit.MXM, (_MXM_PLANE,), ("p",),
           doc="Install: plane `p`'s back weight buffer becomes its array's weights."),
    _mxm_abc(0x32),
    OpInfo("acc", 0x33, Unit.MXM, _ACC_FIELDS, ("p", "dst", "acc", "n"),
           latency=MXM_ACC_LATENCY, writes=("dst",), operand_types=(("dst", DType.I32),),
           doc="Drain sequence of plane `p`: element e emits accumulator acc+e of plane p as "
               "int32 (wrapping) on the group dst."),
    _mxm_lw(0x34, DType.F16),
    _mxm_lw(0x35, DType.BF16),
    _mxm_abc(0x36, DType.F16),
    _mxm_abc(0x37, DType.BF16),
    OpInfo("acc", 0x2F, Unit.MXM, _ACC_FIELDS, ("p", "dst", "acc", "n"),
           latency=MXM_ACC_LATENCY, writes=("dst",), operand_types=(("dst", DType.F32),),
           suffix="f32",
           doc="Drain sequence of plane `p`: element e emits accumulator acc+e of plane p "
               "rounded once to f32 on the group dst."),
]

# The SXM (switch execution module, docs/architecture.md section 7b): lane movements across
# the whole vector. Every SXM producer has the configuration-dependent latency
# ``config.superlanes`` (see :func:`latency`): superlane k's share of the operands is read in
# cycle t + k, and only after the last superlane's share has arrived can a lane move from any
# superlane to any other; output superlane k loads at the end of cycle t + superlanes + k.
_SXM_DST = Field("dst", 20, STREAM_OPERAND_BITS, "stream")
_SXM_S = Field("s", 20, STREAM_OPERAND_BITS, "stream")
_SXM_A = Field("a", 14, STREAM_OPERAND_BITS, "stream")
_SXM_N = Field("n", 0, 9, "lane")       # a lane count, below config.lanes
_SXM_TABLE_TYPE = DType.I16             # permute table entries: 16-bit lane indices
_SXM_BLOCK_TYPE = DType.I32             # transpose blocks: INT32_GROUP streams x lanes
_OPS += [
    OpInfo("shiftu", 0x38, Unit.SXM, (_SXM_DST, _SXM_A, _SXM_N), ("dst", "a", "n"),
           reads=("a",), writes=("dst",),
           doc="dst[i] = a[i - n] for i >= n, else 0: lanes move n up (zero fill)."),
    OpInfo("shiftd", 0x39, Unit.SXM, (_SXM_DST, _SXM_A, _SXM_N), ("dst", "a", "n"),
           reads=("a",), writes=("dst",),
           doc="dst[i] = a[i + n] for i + n < lanes, else 0: lanes move n down (zero fill)."),
    OpInfo("rotate", 0x3A, Unit.SXM, (_SXM_DST, _SXM_A, _SXM_N), ("dst", "a", "n"),
           reads=("a",), writes=("dst",),
           doc="dst[i] = a[(i - n) mod lanes]: lanes move n up, wrapping around."),
    OpInfo("perm_load", 0x3B, Unit.SXM, (_SXM_S,), ("s",), reads=("s",),
           operand_types=(("s", _SXM_TABLE_TYPE),),
           doc="Permute table P[i] = s[i] (an int16 pair, read as unsigned lane indices)."),
    OpInfo("permute", 0x3C, Unit.SXM, (_SXM_DST, _SXM_A), ("dst", "a"),
           reads=("a",), writes=("dst",),
           doc="dst[i] = a[P[i]] (0 where P[i] >= lanes); P must be a permutation."),
    OpInfo("dist_load", 0x3D, Unit.SXM, (_SXM_S,), ("s",), reads=("s",),
           doc="Distribute table D[i] = s[i] (unsigned): a lane within i's superlane, or zero."),
    OpInfo("distribute", 0x3E, Unit.SXM, (_SXM_DST, _SXM_A), ("dst", "a"),
           reads=("a",), writes=("dst",),
           doc="dst[i] = a[base(i) + D[i]] if D[i] < lanes_per_superlane else 0, with base(i) "
               "the first lane of i's superlane: replicate or zero lanes within superlanes."),
    OpInfo("transpose", 0x3F, Unit.SXM, (_SXM_DST, _SXM_A), ("dst", "a"),
           reads=("a",), writes=("dst",),
           operand_types=(("a", _SXM_BLOCK_TYPE), ("dst", _SXM_BLOCK_TYPE)),
           doc="Transpose 4x4 byte blocks: stream dst+r lane 4b+c = stream a+c lane 4b+r "
               "(0 beyond the last lane)."),
]
SXM_OPS = tuple(op for op in _OPS if op.unit == Unit.SXM)

# The C2C slices (chip-to-chip links, docs/architecture.md section 7d, ISA v7): on a chip with
# links, one at each edge, outside the MXMs. A link carries frames (a header byte, the payload,
# a CRC-16) at Config.c2c_bytes bytes a cycle each way; ``send`` and ``mark`` put a frame on a
# link, ``recv`` takes the oldest frame its receive buffer holds, ``deskew`` parks the queue
# until a mark arrives and then puts the chip on the sender's time (see c2c_release).
C2C_LINK_BITS = 4       # up to 16 links per C2C slice
C2C_RECV_LATENCY = 1
#: Payload of a mark: the sender's cycle when it issued the mark, little-endian.
C2C_STAMP_BYTES = 4
#: A frame's header byte (its kind) and its CRC-16/CCITT-FALSE over header and payload.
C2C_HEADER_BYTES = 1
C2C_CRC_BYTES = 2


class FrameKind(IntEnum):
    """A link frame's header byte."""
    DATA = 0xA5     # payload: one stream vector, lane 0 first
    MARK = 0x5A     # payload: the sender's cycle (C2C_STAMP_BYTES)


_C2C_LINK = Field("l", 0, C2C_LINK_BITS, "link")
_C2C_STREAM = Field("s", 20, STREAM_OPERAND_BITS, "stream")
_C2C_DST = Field("dst", 20, STREAM_OPERAND_BITS, "stream")
_OPS += [
    OpInfo("send", 0x26, Unit.C2C, (_C2C_LINK, _C2C_STREAM), ("l", "s"), reads=("s",),
           doc="Send the vector on stream `s` (superlane k read in cycle t + k) as one data "
               "frame on link `l`; the link is busy for the frame's cycles."),
    OpInfo("recv", 0x27, Unit.C2C, (_C2C_LINK, _C2C_DST), ("dst", "l"),
           latency=C2C_RECV_LATENCY, writes=("dst",),
           doc="Take the oldest frame of link `l`'s receive buffer onto stream `dst` (zeros, "
               "and an error counted, if there is none or it failed its CRC)."),
    OpInfo("mark", 0x28, Unit.C2C, (_C2C_LINK,), ("l",),
           doc="Send a mark frame carrying this chip's cycle on link `l` (for the peer's "
               "deskew)."),
    OpInfo("deskew", 0x29, Unit.C2C, (_C2C_LINK,), ("l",),
           doc="Park this queue until a mark arrives on link `l`; then notify and take the "
               "sender's time: the chip's parked queues resume in cycle c2c_release(stamp)."),
]
C2C_OPS = tuple(op for op in _OPS if op.unit == Unit.C2C)


def is_permutation(table, lanes):
    """True when ``table`` (``lanes`` entries) holds each of ``0..lanes-1`` exactly once: the
    tables ``permute`` accepts."""
    entries = [int(entry) for entry in table]
    return len(entries) == lanes and sorted(entries) == list(range(lanes))

# MEM, the rest (docs/architecture.md section 6a): gather/scatter with per-lane addresses from
# an int16 address pair, and two address sequencers per MEM slice (one for the read port, one
# for the write port) configured by agi/ago and started by sread/swrite, which then issue one
# read (write) per cycle: element e = j*count + i of a sequence started at address A in cycle t
# issues in cycle t + e at (A + i*stride + j*ostride) mod mem_words.
MEM_ADDR_TYPE = DType.I16       # gather/scatter address operand: an int16 pair per lane
MEM_SEQ_COUNT_BITS = 12         # agi/ago counts: 1..4095
_MEM_GS_A = Field("a", 12, STREAM_OPERAND_BITS, "stream")
_MEM_AG_G = Field("g", 25, 1, "flag")           # 0: the read sequencer, 1: the write one
_MEM_AG_STRIDE = Field("stride", 12, ADDR_BITS, "stride")
_MEM_AG_COUNT = Field("count", 0, MEM_SEQ_COUNT_BITS, "count")
_OPS += [
    OpInfo("gather", 0x0A, Unit.MEM, (_MEM_GS_A, _MEM_STREAM), ("s", "a"),
           latency=MEM_READ_LATENCY, reads=("a",), writes=("s",),
           operand_types=(("a", MEM_ADDR_TYPE),),
           doc="s[l] = byte l of word a[l] (a: int16 pair, unsigned, mod mem_words)."),
    OpInfo("scatter", 0x0B, Unit.MEM, (_MEM_GS_A, _MEM_STREAM), ("a", "s"),
           commit=MEM_WRITE_COMMIT, reads=("a", "s"), operand_types=(("a", MEM_ADDR_TYPE),),
           doc="Byte l of word a[l] = s[l] (a: int16 pair, unsigned, mod mem_words)."),
    OpInfo("agi", 0x0C, Unit.MEM, (_MEM_AG_COUNT, _MEM_AG_STRIDE, _MEM_AG_G),
           ("g", "stride", "count"),
           doc="Sequencer g (0 read, 1 write): inner loop of `count` addresses `stride` apart."),
    OpInfo("ago", 0x0D, Unit.MEM, (_MEM_AG_COUNT, _MEM_AG_STRIDE, _MEM_AG_G),
           ("g", "stride", "count"),
           doc="Sequencer g (0 read, 1 write): outer loop of `count` rows `stride` apart."),
    OpInfo("sread", 0x0E, Unit.MEM, (_ADDR, _MEM_STREAM), ("s", "addr"),
           latency=MEM_READ_LATENCY, writes=("s",),
           doc="Start the read sequence at `addr`: one read onto `s` per cycle from now on."),
    OpInfo("swrite", 0x0F, Unit.MEM, (_ADDR, _MEM_STREAM), ("addr", "s"),
           commit=MEM_WRITE_COMMIT, reads=("s",),
           doc="Start the write sequence at `addr`: one write from `s` per cycle from now on."),
]
MEM_SEQ_STARTS = {"sread": "read", "swrite": "write"}   # starter -> what each element is

OPS = tuple(_OPS)
OPS_BY_CODE = {op.opcode: op for op in OPS}
OPS_BY_NAME = {op.name: op for op in OPS}

#: Cycles after a queue's END slot during which an instruction issued before it can still
#: change a memory (the largest memory commit). The run ends DRAIN cycles after the last
#: superlane sees the last END: cycles = last END slot + superlanes - 1 + DRAIN.
DRAIN = max(op.commit for op in OPS if op.commit is not None)


# Instructions -------------------------------------------------------------------------------

@dataclass(frozen=True)
class StreamRef:
    """A stream operand: direction and stream id (the first of a group for wide types)."""
    dir: Dir
    id: int

    @classmethod
    def decode(cls, value):
        return cls(Dir(value >> STREAM_BITS), value & ((1 << STREAM_BITS) - 1))

    def encode(self):
        return int(self.dir) << STREAM_BITS | self.id

    def __str__(self):
        return f"{self.dir.name.lower()}{self.id}"


@dataclass(frozen=True)
class Instr:
    """A decoded instruction: its :class:`OpInfo` and its field values (plain ints)."""
    op: OpInfo
    args: tuple   # (name, value) pairs in field order

    def __getitem__(self, name):
        for key, value in self.args:
            if key == name:
                return value
        raise KeyError(name)

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    @property
    def dtype(self):
        return DType(self["dtype"]) if self.op.typed else None

    @property
    def rtype(self):
        return DType(self["rtype"]) if self.op.converts else self.dtype

    @property
    def chained(self):
        """Operand ``a`` is the VXM's previous result, not a stream (ALU chaining)."""
        return self.op.chainable and self["chain"] == 1

    @property
    def stream_reads(self):
        """The operands this instruction reads from streams in its issue cycle."""
        return tuple(name for name in self.op.reads if not (name == "a" and self.chained))

    def stream(self, name):
        return StreamRef.decode(self[name])

    def group(self, name, config=None):
        """Stream ids of operand ``name``: one per byte of its type; with ``config``, every
        group the operand spans on it (:attr:`OpInfo.operand_repeats`)."""
        ref = self.stream(name)
        width = self.op.operand_width(name, self.dtype, self.rtype, config)
        return ref.dir, tuple(range(ref.id, ref.id + width))

    @property
    def slots(self):
        """Issue slots this instruction occupies in its queue."""
        if self.op.mnemonic == "nop":
            return self["count"]
        if self.op.mnemonic == "repeat":
            return self["n"] * self["d"]
        if self.op.mnemonic == "ifetch":
            return self["n"]
        return 1

    def encode(self):
        word = self.op.opcode << OPCODE_LSB
        for (name, value), field in zip(self.args, self.op.fields, strict=True):
            assert field.name == name
            word |= (value & field.mask) << field.lsb
        return word

    def __str__(self):
        name = self.op.name
        if self.op.typed:
            name += "." + self.dtype.suffix
        if self.op.converts:
            name += "." + self.rtype.suffix
        parts = []
        for operand in self.op.operands:
            field = self.op.field(operand)
            value = self[operand]
            if operand == "a" and self.chained:
                parts.append(CHAIN_OPERAND)
                continue
            parts.append(str(StreamRef.decode(value)) if field.kind == "stream" else str(value))
        return f"{name} {', '.join(parts)}".strip()


#: Assembly spelling of a chained operand: the VXM's previous result instead of stream ``a``.
CHAIN_OPERAND = "r"


def encode(mnemonic, **values):
    """Build an :class:`Instr`, checking every field against its width and kind. The "chain"
    flag of VXM instructions defaults to 0; a chained instruction has ``a`` = 0."""
    try:
        op = OPS_BY_NAME[mnemonic]
    except KeyError:
        raise EncodingError(f"unknown mnemonic {mnemonic!r}") from None
    if op.chainable:
        values.setdefault("chain", 0)
        if values["chain"] and int(values.get("a", 0)):
            raise EncodingError(f"{mnemonic}: a chained instruction has no stream a")
    args = []
    for field in op.fields:
        if field.name not in values:
            raise EncodingError(f"{mnemonic}: missing operand {field.name!r}")
        value = values.pop(field.name)
        if isinstance(value, StreamRef):
            value = value.encode()
        value = int(value)
        low = 1 if field.kind == "count" else 0
        if field.kind == "flag" and value > 1:
            raise EncodingError(f"{mnemonic}: operand {field.name} must be 0 or 1, "
                                f"not {value!r}")
        if not low <= value <= field.mask:
            raise EncodingError(f"{mnemonic}: operand {field.name} must be in "
                                f"{low}..{field.mask}, not {value!r}")
        if field.kind == "dtype" and value not in DType._value2member_map_:
            raise EncodingError(f"{mnemonic}: type code {value} is not a type")
        args.append((field.name, value))
    if values:
        raise EncodingError(f"{mnemonic}: unexpected operands {sorted(values)}")
    instr = Instr(op, tuple(args))
    _check_groups(instr)
    return instr


def _check_groups(instr):
    for name in instr.stream_reads + instr.op.writes:
        dtype = instr.op.operand_type(name, instr.dtype, instr.rtype)
        width = instr.op.operand_width(name, instr.dtype, instr.rtype)
        ref = instr.stream(name)
        if ref.id % width:
            raise EncodingError(f"{instr.op.name}: {dtype.suffix} operand {name} must "
                                f"start an aligned group of {width} streams, not {ref}")
    if instr.op.converts and instr.dtype == instr.rtype:
        raise EncodingError(f"{instr.op.mnemonic}: source and result types are both "
                            f"{instr.dtype.suffix}")
    if instr.op.typed:
        _check_float_types(instr)


def _check_float_types(instr):
    cause = float_type_error(instr.op.mnemonic, instr.dtype, instr.rtype)
    if cause:
        raise EncodingError(f"{instr.op.mnemonic}: {cause}")


def float_type_error(mnemonic, dtype, rtype):
    """Why VXM function ``mnemonic`` cannot take source type ``dtype`` and result type
    ``rtype`` (None if it can): the VXM computes f32 and only converts f16 and bf16, to and
    from f32; ``exp``, ``recip``, ``rsqrt`` and ``tanh`` are functions of f32 alone."""
    if mnemonic in VXM_F32_ONLY and dtype is not DType.F32:
        return f"a function of f32 only, not of {dtype.suffix}"
    halves = [t for t in (dtype, rtype) if t in HALF_TYPES]
    if halves and mnemonic != "cvt":
        return f"the VXM does not compute on {halves[0].suffix}; cvt it to f32 first"
    if halves and DType.F32 not in (dtype, rtype):
        other = rtype if dtype in HALF_TYPES else dtype
        return f"{halves[0].suffix} converts only to and from f32, not {other.suffix}"
    return None


def type_pairs(op, floating_point=True):
    """The ``(dtype, rtype)`` pairs typed instruction ``op`` accepts (``rtype`` is ``dtype``
    unless it converts); without ``floating_point``, the integer ones alone."""
    types = [t for t in DType if floating_point or not t.is_float]
    pairs = ([(d, r) for d in types for r in types if d != r] if op.converts
             else [(d, d) for d in types])
    return [(d, r) for d, r in pairs if float_type_error(op.mnemonic, d, r) is None]


def uses_float(instr):
    """True if ``instr`` needs the floating-point hardware (``Config.floating_point``): a
    typed instruction with a float source or result type, or an MXM instruction of the
    floating-point mode (a float operand type fixed by the instruction)."""
    return needs_float(instr.op) or (instr.op.typed and (instr.dtype.is_float
                                                          or instr.rtype.is_float))


def needs_float(op):
    """True if every instruction of ``op`` needs the floating-point hardware: an f32 function,
    or an MXM instruction of the floating-point mode (a float type fixed by the instruction)."""
    return (any(dtype.is_float for _, dtype in op.operand_types)
            or (op.typed and not type_pairs(op, floating_point=False)))


def check_config(instr, config):
    """Raise :class:`EncodingError` if ``config`` cannot run ``instr`` for want of hardware
    (floating point on a chip built without it)."""
    if uses_float(instr) and not config.floating_point:
        if instr.op.typed:
            kind = instr.rtype if instr.rtype.is_float else instr.dtype
            name = f"{instr.op.mnemonic}.{kind.suffix}"
        else:
            name = instr.op.name
        raise EncodingError(f"{name}: configuration "
                            f"{config.name!r} is built without floating point "
                            f"(Config.floating_point)")


def decode(word):
    """Decode one 32-bit instruction word; raises :class:`EncodingError` if it is not one."""
    if not 0 <= word < 1 << INSTR_BITS:
        raise EncodingError(f"instruction word must be 32-bit, not {word!r}")
    code = word >> OPCODE_LSB
    try:
        op = OPS_BY_CODE[code]
    except KeyError:
        raise EncodingError(f"word {word:#010x}: unknown opcode {code:#04x}") from None
    used = op.opcode << OPCODE_LSB
    values = {}
    for field in op.fields:
        values[field.name] = (word >> field.lsb) & field.mask
        used |= field.mask << field.lsb
    if word & ~used & ((1 << INSTR_BITS) - 1):
        raise EncodingError(f"word {word:#010x}: reserved bits set for {op.name}")
    try:
        return encode(op.name, **values)
    except EncodingError as error:
        raise EncodingError(f"word {word:#010x}: {error}") from None


# Floorplan ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Slice:
    """A functional slice at a position of the floorplan (0 = westmost)."""
    name: str
    kind: SliceKind
    position: int
    has_queue: bool


def floorplan(config):
    """Slices west to east: MXM, SXM, MEM_W(n-1)..MEM_W0, VXM, MEM_E0..MEM_E(n-1), SXM, MXM,
    and on a chip with links (``config.c2c_links > 0``, ISA v7) a C2C slice at each end.

    Every slice has a queue: the MEM slices, the VXM, (since ISA v2) the two MXMs and (since
    ISA v3) the two SXMs, which until then were plain stream-register stages at the same
    positions, so no hop count changed. Queues are numbered west to east over the slices that
    have one, so ``MXM_W`` is queue 0, ``SXM_W`` queue 1 and ``MXM_E`` the last queue; with
    links, ``C2C_W`` is position and queue 0 and every other slice one further.
    """
    n = config.mem_slices
    names = (["MXM_W", "SXM_W"] + [f"MEM_W{i}" for i in reversed(range(n))] + ["VXM"]
             + [f"MEM_E{i}" for i in range(n)] + ["SXM_E", "MXM_E"])
    if config.c2c_links:
        names = ["C2C_W"] + names + ["C2C_E"]
    slices = []
    for position, name in enumerate(names):
        kind = SliceKind[name.split("_")[0]]
        slices.append(Slice(name, kind, position, True))
    return tuple(slices)


def queues(config):
    """The slices that have an instruction queue, west to east (the queue numbering)."""
    return tuple(s for s in floorplan(config) if s.has_queue)


def mem_slices(config):
    """MEM slices west to east (the memory numbering used by images and the host port)."""
    return tuple(s for s in floorplan(config) if s.kind == SliceKind.MEM)


def unit_of(slice_):
    return {SliceKind.MEM: Unit.MEM, SliceKind.VXM: Unit.VXM, SliceKind.MXM: Unit.MXM,
            SliceKind.SXM: Unit.SXM, SliceKind.C2C: Unit.C2C}[slice_.kind]


def field_limit(field, config):
    """Largest value of ``field`` that ``config`` accepts (the encoding may allow more)."""
    if field.kind == "addr":
        return min(field.mask, config.mem_words - 1)
    if field.kind == "row":
        return min(field.mask, config.mxm_size - 1)
    if field.kind == "accum":
        return min(field.mask, config.mxm_accumulators - 1)
    if field.kind == "plane":
        return min(field.mask, config.mxm_planes - 1)
    if field.kind == "flag":
        return 1
    if field.kind == "stride":     # MEM sequencer strides, taken modulo mem_words
        return min(field.mask, config.mem_words - 1)
    if field.kind == "lane":
        return min(field.mask, config.lanes - 1)
    if field.kind == "link":
        return min(field.mask, config.c2c_links - 1)
    return field.mask


def latency(op, config):
    """Latency of producer ``op`` on ``config`` (None for non-producers).

    Every user of a latency (golden model, checker, RTL) calls this rather than reading
    ``op.latency``: the SXM's latency is ``config.superlanes`` (section 7b), the others are
    the fixed ``op.latency``.
    """
    if op.unit == Unit.SXM:
        return config.superlanes if op.writes else None
    return op.latency


def mxm_span(config):
    """Superlanes that the MXM's lanes (0..mxm_size-1) cover: an ``abc`` has updated its
    accumulator at the end of cycle ``issue + mxm_span - 1`` (the reduction follows the
    stagger, one superlane per cycle)."""
    return -(-config.mxm_size // config.lanes_per_superlane)


def mxm_sequencer(instr):
    """The sequencer that runs MXM sequence instruction ``instr``: ``("lw", None)`` (one load
    sequencer per MXM) or ``("abc", p)`` / ``("acc", p)`` (one compute and one drain sequencer
    per plane ``p``)."""
    kind = instr.op.mnemonic
    return (kind, None) if kind == "lw" else (kind, instr["p"])


def c2c_frame_bytes(config, kind):
    """Bytes of a frame of ``kind`` (:class:`FrameKind`) on ``config``'s links: header,
    payload (a vector of ``lanes`` bytes, or a mark's stamp) and CRC."""
    payload = config.lanes if kind == FrameKind.DATA else C2C_STAMP_BYTES
    return C2C_HEADER_BYTES + payload + C2C_CRC_BYTES


def c2c_frame_cycles(config, kind):
    """Cycles a frame of ``kind`` occupies its link (``c2c_bytes`` bytes a cycle): a link
    takes the next frame that many cycles after the last (section 7d)."""
    return -(-c2c_frame_bytes(config, kind) // config.c2c_bytes)


def c2c_arrival(config, kind, issue, excess=0):
    """The first cycle a frame of ``kind`` issued (``send``/``mark``) in cycle ``issue`` is in
    the receiver's buffer, in the sender's time: it leaves after the last superlane's share
    (``issue + superlanes``), takes :func:`c2c_frame_cycles` on the wire and
    ``c2c_latency + excess`` in flight, ``0 <= excess <= c2c_window`` (section 7d)."""
    return (issue + config.superlanes + c2c_frame_cycles(config, kind) + config.c2c_latency
            + excess)


def c2c_release(config, stamp):
    """The cycle, on the sender's time, in which the queues parked by a ``deskew`` resume when
    the mark issued in the sender's cycle ``stamp`` arrives (section 7d): the mark's nominal
    arrival plus NOTIFY_LATENCY."""
    return c2c_arrival(config, FrameKind.MARK, stamp) + NOTIFY_LATENCY


def c2c_link_name(side, link):
    """A link's name: the C2C slice (``"C2C_W"``/``"C2C_E"``) and the link, ``C2C_E.1``."""
    return f"{side}.{link}"
