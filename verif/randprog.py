"""Seeded random firmware images for differential testing of the RTL against the golden model.

The generator reads the ISA tables (``opentsp.isa``): any instruction of a queue's unit, every
operand drawn from its field kind, now and then beyond the configuration's limits (a row past
``mxm_size``, a stream past ``streams``, an address with high bits set), because the hardware
and the golden model define the same behaviour for those too. The data are random bytes and
the extreme values of every type (0, -1, min and max of int8, int16 and int32, laid out as
the byte planes a wide operand reads).

Every program runs to its end on the golden model and on the RTL, which is what a
differential test needs:

* every ``sync`` is released: :func:`opentsp.queue_timing.schedule` (the joint static schedule
  the checker uses) finds the ones that never are, and they become ``nop 1``;
* an ``ifetch`` (section 5b) is built as a block: a queue with MEM slices upstream ends its
  preloaded words with ``ifetch s, n``, four of those MEM slices read the bytes of its ``n``
  words (random instructions of the queue's unit, then ``end``) so that they reach the queue
  together in its ``n`` fetch slots, and the golden model confirms that the words arrive
  intact (another instruction may overwrite a stream on the way; then the block is dropped).

The MEM queues of a hemisphere may also start with feed sequences (``agi``, ``ago``, ``sread``:
the data words streamed one per cycle, mostly MEM_W<i> onto e<i> and MEM_E<i> onto w<i>, with
the data laid out so that the bytes of int16 and int32 values reach the VXM together), so that
random reads downstream find data rather than zeros, whole wide values included.

The programs are not meant to be useful or to pass the static checker (many stream reads find
whatever the register holds, which both sides define): they are meant to make the RTL and the
model disagree if they can. ``legal=True`` (``--legal``) passes them through :func:`legalise`,
which turns every instruction that breaks a timing rule into ``nop``: what is left honours
every rule of the architecture document. ``mix`` weighs what a queue slot holds
(:func:`parse_mix`); ``length`` bounds the instructions per queue.

    python -m opentsp.verif.randprog --seed 3 --config default -o prog.bin
"""

import argparse
import random

import numpy as np

from opentsp import isa, queue_timing
from opentsp.config import get_config
from opentsp.firmware.checker import check
from opentsp.firmware.disasm import disassemble
from opentsp.firmware.image import Image
from opentsp.sim import icu
from opentsp.sim.model import Model

__all__ = ["BATCH", "EXCLUDED", "FAMILIES", "DEFAULT_MIX", "parse_mix", "random_instr",
           "random_queue", "random_image", "extreme_values", "legalise"]

#: The fixed batch of seeds that ``make test`` runs on Verilator and measures coverage of.
BATCH = range(200)
#: Never drawn for a queue slot: ``end`` closes every queue, ``ifetch`` comes as a block, and
#: ``deskew`` waits for another chip's mark (a chip alone would wait forever).
EXCLUDED = ("end", "ifetch", "deskew")
#: Slot kinds besides the unit's own instructions, and the weight names of :func:`parse_mix`.
FAMILIES = ("nop", "repeat", "notify", "sync", "op")
#: Default weights of a queue slot; ``ifetch`` is the chance that a program gets a fetch block.
#: ``cvt`` has 16 type pairs where the other VXM functions have at most 4 types: weighed 4, each
#: pair comes about as often as each (function, type).
DEFAULT_MIX = {"nop": 0.2, "repeat": 0.08, "notify": 0.03, "sync": 0.03, "op": 0.66,
               "ifetch": 0.35, "feed": 0.4, "cvt": 4.0}
#: Elements of a feed sequence: the data words, this many times over.
FEED_ROUNDS = 5
#: Fetched words per fetch block (at least 2: a word runs FETCH_LATENCY cycles after its fetch).
FETCH_WORDS = (2, 6)
#: Golden-model cycle limit when confirming a fetch block.
_CONFIRM_CYCLES = 2_000


#: f32 values worth meeting (bit patterns as int32): +0, -0, 1.0, -1.5, a subnormal, the
#: smallest normal, the largest finite, +inf, -inf, the canonical NaN.
FLOAT_EXTREMES = (0, -(1 << 31), 0x3F800000, -0x40400000, 1, 0x00800000, 0x7F7FFFFF,
                  0x7F800000, -0x00800000, 0x7FC00000)
#: The same values in f16 and bf16 (bit patterns as int16).
HALF_EXTREMES = {
    isa.DType.F16: (0, -0x8000, 0x3C00, -0x4200, 1, 0x0400, 0x7BFF, 0x7C00, -0x0400, 0x7E00),
    isa.DType.BF16: (0, -0x8000, 0x3F80, -0x4040, 1, 0x0080, 0x7F7F, 0x7F80, -0x0080, 0x7FC0),
}


#: The types whose extreme values the aligned feeders lay out (coverage's ``vxm values``).
_VALUE_TYPES = [t for t in isa.DType if t not in isa.HALF_TYPES]


def extreme_values(dtype):
    """0, -1, 1, min and max of ``dtype`` (an :class:`opentsp.isa.DType`); for a float type,
    the bit patterns of :data:`FLOAT_EXTREMES` (:data:`HALF_EXTREMES`)."""
    if dtype in HALF_EXTREMES:
        return HALF_EXTREMES[dtype]
    if dtype.is_float:
        return FLOAT_EXTREMES
    bits = 8 * dtype.bytes
    return (0, -1, 1, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def parse_mix(text):
    """Weights of queue slots from ``"name=weight,..."``, on top of :data:`DEFAULT_MIX`.

    A name is a family of :data:`FAMILIES` (``op``: all of the unit's own instructions),
    ``ifetch`` (the chance of a fetch block per program), ``feed`` (the chance that a
    hemisphere's MEM queues start with feed sequences), a unit (``mem``, ``vxm``, ``mxm``,
    ``sxm``: scales that unit's instructions) or a mnemonic (scales that instruction).
    """
    mix = dict(DEFAULT_MIX)
    units = {unit.name.lower() for unit in isa.Unit if unit != isa.Unit.ICU}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"mix entry must be name=weight, not {item!r}")
        if name not in mix and name not in units and (
                name not in isa.OPS_BY_NAME or name in ("end", "nop", "repeat")):
            raise ValueError(f"mix name must be a family, a unit or a mnemonic, not {name!r}")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"mix weight of {name} must be a number, not {value!r}") from None
        if not weight >= 0 or weight == float("inf"):
            raise ValueError(f"mix weight of {name} must be a finite number >= 0, not {value!r}")
        mix[name] = weight
    for name in ("ifetch", "feed"):
        if mix[name] > 1:
            raise ValueError(f"mix weight of {name} must be a probability (0..1), not "
                             f"{mix[name]!r}")
    return mix


def _value(rng, field, config, words):
    """A random value for a non-stream field, sometimes at or past the configuration's limit."""
    limit = isa.field_limit(field, config)
    if field.kind == "count":
        return rng.choice([1, 1, 2, rng.randint(1, 6)])
    if field.kind == "addr":
        if rng.random() < 0.05:         # the last word of the memory
            return limit
        addr = rng.randrange(words)
        if rng.random() < 0.15:         # high bits set: taken modulo mem_words
            addr += config.mem_words * rng.randrange((1 << isa.ADDR_BITS) // config.mem_words)
        return addr
    if field.kind == "flag":
        return rng.randrange(2)
    return min(field.mask, rng.choice([0, 1, rng.randrange(limit + 1), limit, limit + 1]))


def random_instr(rng, op, config, words=8):
    """One random :class:`~opentsp.isa.Instr` of ``op``."""
    values = {}
    if op.typed:
        dtype, rtype = rng.choice(isa.type_pairs(op, config.floating_point))
        values["dtype"] = int(dtype)
        if op.converts:
            values["rtype"] = int(rtype)
    dtype = isa.DType(values["dtype"]) if op.typed else None
    rtype = isa.DType(values["rtype"]) if op.converts else dtype
    for field in op.fields:
        if field.name in values:
            continue
        if field.kind == "stream":
            width = op.operand_width(field.name, dtype, rtype)
            ident = rng.randrange(0, config.streams + (width if rng.random() < 0.1 else 0),
                                  width)
            values[field.name] = isa.StreamRef(isa.Dir(rng.randrange(2)), ident)
        elif field.name == "chain":
            values["chain"] = int(rng.random() < 0.3)
        else:
            values[field.name] = _value(rng, field, config, words)
    if values.get("chain"):
        values["a"] = 0
    return isa.encode(op.name, **values)


def _slot_weights(unit, mix, config):
    """(kind, weight) pairs for one queue slot of ``unit``: a family or an OpInfo (not the
    instructions that need floating point on a ``config`` without it: the f32 functions, the
    MXM's floating-point mode)."""
    ops = [op for op in isa.OPS if op.unit == unit and op.mnemonic not in EXCLUDED
           and (config.floating_point or not isa.needs_float(op))]
    unit_weight = mix.get(unit.name.lower(), 1.0)
    choices = [(family, mix[family]) for family in ("nop", "repeat", "notify", "sync")]
    choices += [(op, mix["op"] * unit_weight
                 * mix.get(op.name, mix.get(op.mnemonic, 1.0)) / len(ops))
                for op in ops]
    return [(kind, weight) for kind, weight in choices if weight > 0]


def random_queue(rng, config, slice_, length, words=8, mix=None, end=True):
    """A queue of ``length`` instructions for ``slice_`` (plus ``end`` if ``end``): its unit's
    instructions, ``nop``, ``repeat``, ``notify`` and ``sync``, weighed by ``mix``."""
    choices = _slot_weights(isa.unit_of(slice_), mix or DEFAULT_MIX, config)
    kinds = [kind for kind, _ in choices]
    weights = [weight for _, weight in choices]
    program = []
    while kinds and len(program) < length:
        kind = rng.choices(kinds, weights)[0]
        if kind == "nop":
            program.append(isa.encode("nop", count=rng.randint(1, 6)))
        elif kind == "repeat":
            if program:
                program.append(isa.encode("repeat", n=rng.randint(1, 3), d=rng.randint(1, 3)))
        elif kind in ("notify", "sync"):
            program.append(isa.encode(kind))
        else:
            program.append(random_instr(rng, kind, config, words))
    return program + ([isa.encode("end")] if end else [])



def _data_word(rng, lanes):
    """One memory word: random bytes, or per lane a byte of an extreme value (0x00, 0xff,
    0x7f, 0x80: the byte planes of 0, -1, max and min of every type; the low planes of min and
    max are 0x00 and 0xff, hence weighed double) or a random one."""
    if rng.random() < 0.35:
        return np.array([rng.randrange(256) for _ in range(lanes)], dtype=np.uint8)
    planes = (0x00, 0x00, 0xFF, 0xFF, 0x7F, 0x80)
    return np.array([rng.choice(planes) if rng.random() < 0.8 else rng.randrange(256)
                     for _ in range(lanes)], dtype=np.uint8)


def _feed(config, program, words, direction, stream):
    """``program`` (a MEM queue's, ending with ``end``) behind a feed sequence: the read
    sequencer streams the data words, FEED_ROUNDS times over, onto ``stream``, one per cycle
    (element e issues in cycle 2 + e); the queue waits until the last element has issued
    (a read-port instruction would cut the sequence short), then runs ``program``."""
    elements = words * FEED_ROUNDS
    return [isa.encode("agi", g=0, stride=1, count=words),
            isa.encode("ago", g=0, stride=0, count=FEED_ROUNDS),
            isa.encode("sread", s=isa.StreamRef(direction, stream), addr=0),
            isa.encode("nop", count=elements - 1)] + program


def _feeds(rng, config, queues, words, mix):
    """Feed sequences (module docstring): each hemisphere, with probability ``mix["feed"]``,
    has all its MEM slices feed; most feed aligned, MEM_W<i> (MEM_E<i>) onto e<i> (w<i>)
    towards the VXM. Changes ``queues``; returns ``{mem index: (plane, hops)}`` of the
    aligned feeders (their data are laid out by :func:`_aligned_data`)."""
    slices = isa.queues(config)
    vxm = next(s for s in slices if s.kind == isa.SliceKind.VXM)
    mems = isa.mem_slices(config)
    aligned = {}
    for side, towards in (("W", isa.Dir.E), ("E", isa.Dir.W)):
        if rng.random() >= mix["feed"]:
            continue
        for m, mem in enumerate(mems):
            q = slices.index(mem)
            if not mem.name.startswith(f"MEM_{side}") or \
                    len(queues[q]) + 4 > config.queue_depth:
                continue
            if rng.random() < 0.8:
                stream = int(mem.name[len("MEM_W"):]) % config.streams
                direction = towards
                aligned[m] = (stream % isa.INT32_GROUP, abs(mem.position - vxm.position))
            else:
                stream, direction = rng.randrange(config.streams), isa.Dir(rng.randrange(2))
            queues[q] = _feed(config, queues[q], words, direction, stream)
    return aligned


def _aligned_data(rng, config, words, aligned):
    """Data words of the aligned feeders: word a of a feeder ``hops`` from the VXM holds byte
    ``plane`` of the int32 lane values V[(a + hops) mod words], so that in VXM cycle c the
    feeders' elements (c - 3 - hops) are the planes of the same V[(c - 3) mod words]: a wide
    operand on e0.. (w0..) is whole. A lane of V is an extreme value of a random type
    (sign-extended; of the types whose values coverage counts) or a random int32."""
    vectors = []
    for _ in range(words):
        lanes = [rng.choice(extreme_values(rng.choice(_VALUE_TYPES)))
                 if rng.random() < 0.8 else rng.randrange(-(1 << 31), 1 << 31)
                 for _ in range(config.lanes)]
        vectors.append(np.array(lanes, dtype=np.int64) & 0xFFFFFFFF)
    return {(m, a): ((vectors[(a + hops) % words] >> (8 * plane)) & 0xFF).astype(np.uint8)
            for m, (plane, hops) in aligned.items() for a in range(words)}


def _release_syncs(queues, fetched=None):
    """Replace every ``sync`` that is never released by ``nop 1``, until all are released.
    ``fetched``: ``{queue: words}`` appended to a queue's program for the schedule."""
    fetched = fetched or {}
    while True:
        programs = [list(q) + list(fetched.get(i, ())) + [queue_timing.Stop()]
                    for i, q in enumerate(queues)]
        stuck = [(q, pc) for q, sched in enumerate(queue_timing.schedule(programs, issues=False))
                 for pc, _, resume in sched.syncs if resume is None]
        if not stuck:
            return queues
        for q, pc in stuck:
            queues[q][pc] = isa.encode("nop", count=1)


def _fetch_block(rng, config, queues, data, words, mix):
    """Give one queue a fetch block (module docstring); returns the fetched words and the
    queue's index, or None if no queue fits. Changes ``queues`` and ``data`` in place."""
    slices = isa.queues(config)
    mems = isa.mem_slices(config)
    mem_index = {s.name: i for i, s in enumerate(mems)}
    candidates = []
    for q, slice_ in enumerate(slices):
        for direction in isa.Dir:
            upstream = [m for m in mems if (m.position < slice_.position
                                            if direction == isa.Dir.E
                                            else m.position > slice_.position)]
            if len(upstream) >= isa.INT32_GROUP:
                candidates.append((q, direction, upstream))
    if not candidates or config.mem_words <= words:
        return None
    q, direction, upstream = rng.choice(candidates)
    feeders = rng.sample(upstream, isa.INT32_GROUP)
    stream = rng.randrange(0, config.streams, isa.INT32_GROUP)
    hops = [abs(slices[q].position - m.position) for m in feeders]
    # The queue's preloaded words: a random prefix without sync (its fetch cycle is then the sum
    # of its slots), padding so that every feeder's first read is in cycle 0 or later, ifetch.
    room = config.queue_depth - 1 - FETCH_WORDS[1] - 1
    if room < 0:
        return None
    prefix_mix = dict(mix, sync=0)
    prefix = random_queue(rng, config, slices[q], rng.randint(0, min(6, room)), words,
                          prefix_mix, end=False)
    first = sum(instr.slots for instr in prefix)
    pad = max(0, 1 + max(hops) - first)
    if pad:
        prefix.insert(0, isa.encode("nop", count=pad))
        first += pad
    count = rng.randint(*FETCH_WORDS)
    body_mix = dict(mix, sync=0, notify=0, repeat=0)
    body = random_queue(rng, config, slices[q], count - 1, words, body_mix, end=True)
    body = [isa.encode("nop", count=1)] * (count - len(body)) + body
    queues[q] = prefix + [isa.encode("ifetch", s=isa.StreamRef(direction, stream), n=count)]
    # Feeder i reads byte i of word k (lane 0 of its word base + k, above the random data)
    # onto stream + i in cycle first + k - 1 - hops[i]: it reaches the queue in its slot k.
    base = rng.randrange(words, config.mem_words - count + 1)
    for i, (feeder, hop) in enumerate(zip(feeders, hops, strict=True)):
        reads = [isa.encode("nop", count=first - 1 - hop)] if first - 1 - hop else []
        for k, instr in enumerate(body):
            addr = base + k
            word = _data_word(rng, config.lanes)
            word[0] = (instr.encode() >> (8 * i)) & 0xFF
            data[(mem_index[feeder.name], addr)] = word
            reads.append(isa.encode("read", s=isa.StreamRef(direction, stream + i), addr=addr))
        f = slices.index(feeder)
        queues[f] = reads + queues[f]
    return q, body


def _fetch_arrives(image, q, body):
    """True if queue ``q`` of ``image`` fetches ``body`` intact on the golden model (it then
    runs to its end: the schedule releases every sync and the words are the ones planned)."""

    model = Model(image)
    queue = model.queues[q]
    try:
        while len(queue.fetched) < len(body) and model.cycle < _CONFIRM_CYCLES:
            model.step()
    except icu.FetchError:
        return False
    return [word for _, word in queue.fetched] == [instr.encode() for instr in body]


def legalise(image, rounds=500):
    """``image`` made checker-clean: every instruction that breaks a rule of the static
    checker (:func:`opentsp.firmware.checker.check`) becomes ``nop`` of its slots (a queue
    whose fetched words break one loses its ``ifetch``), until none does. Removing a producer
    can starve a consumer, so this runs in rounds; what is left honours every timing rule."""

    for _ in range(rounds):
        errors = check(image)
        if not errors:
            return image
        queues = [list(q) for q in image.queues]
        for error in errors:
            queue = queues[error.queue]
            if error.index >= len(queue) or queue[error.index].op.mnemonic == "ifetch":
                for i, instr in enumerate(queue):      # a fetched word: no fetch at all
                    if instr.op.mnemonic == "ifetch":
                        queue[i:] = [isa.encode("nop", count=instr.slots), isa.encode("end")]
                        break
            elif queue[error.index].op.mnemonic not in ("nop", "end"):
                queue[error.index] = isa.encode("nop", count=queue[error.index].slots)
        image = Image(image.config, _release_syncs(queues), image.data)
    raise RuntimeError(f"no checker-clean program after {rounds} rounds")


def random_image(config, seed, *, length=16, words=8, mix=None, legal=False):
    """A random :class:`~opentsp.firmware.image.Image` (see the module docstring).

    Parameters
    ----------
    config : Config or str
    seed : int
    length : int
        Most instructions per queue (each queue gets 0 .. ``length``).
    words : int
        Words of random data at the start of every memory (the addresses programs use).
    mix : dict or None
        Slot weights from :func:`parse_mix`; None: :data:`DEFAULT_MIX`.
    legal : bool
        Pass the result through :func:`legalise`: a program that honours every timing rule
        of the architecture document (much of the random program becomes ``nop``).
    """
    config = get_config(config)
    mix = DEFAULT_MIX if mix is None else mix
    if length < 0:
        raise ValueError(f"length must be >= 0, not {length!r}")
    if words < 1:
        raise ValueError(f"words must be >= 1, not {words!r}")
    rng = random.Random(seed)
    words = min(words, config.mem_words)
    queues = [random_queue(rng, config, s, rng.randint(0, min(length, config.queue_depth - 1)),
                           words, mix)
              for s in isa.queues(config)]
    aligned = _feeds(rng, config, queues, words, mix)
    data = {(mem, addr): _data_word(rng, config.lanes)
            for mem in range(len(isa.mem_slices(config))) for addr in range(words)}
    data.update(_aligned_data(rng, config, words, aligned))
    if rng.random() < mix["ifetch"]:
        fetch_queues, fetch_data = [list(q) for q in queues], dict(data)
        block = _fetch_block(rng, config, fetch_queues, fetch_data, words, mix)
        # A fetch block longer than the queue (a long random prefix in a feeder) is dropped.
        if block is not None and all(len(q) <= config.queue_depth for q in fetch_queues):
            q, body = block
            _release_syncs(fetch_queues, {q: body})
            image = Image(config, fetch_queues, fetch_data)
            if _fetch_arrives(image, q, body):
                return legalise(image) if legal else image
    image = Image(config, _release_syncs(queues), data)
    return legalise(image) if legal else image


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.verif.randprog",
                                     description="write a random firmware image")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--config", default="default")
    parser.add_argument("--length", type=int, default=16, help="most instructions per queue")
    parser.add_argument("--mix", default="", help="slot weights, e.g. 'vxm=2,sync=0,add=3' "
                        f"(defaults {DEFAULT_MIX})")
    parser.add_argument("--legal", action="store_true",
                        help="only checker-clean programs (see legalise)")
    parser.add_argument("-o", "--output", required=True,
                        help="image (.bin); a .s name writes the disassembly")
    args = parser.parse_args(argv)
    try:
        mix = parse_mix(args.mix)
        image = random_image(args.config, args.seed, length=args.length, mix=mix,
                             legal=args.legal)
    except ValueError as error:
        parser.error(str(error))
    if args.output.endswith(".s"):
        with open(args.output, "w") as file:
            file.write(disassemble(image))
    else:
        image.save(args.output)
    print(f"{args.output}: seed {args.seed}, {sum(len(q) for q in image.queues)} instructions")


if __name__ == "__main__":
    main()
