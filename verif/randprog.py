"""Seeded random firmware images for differential testing of the RTL against the golden model.

The generator reads the ISA tables (``opentsp.isa``): any instruction of a queue's unit, every
operand drawn from its field kind, now and then beyond the configuration's limits (a row past
``mxm_size``, a stream past ``streams``, an address with high bits set), because the hardware
and the golden model define the same behaviour for those too. The programs are not meant to
be useful or to pass the static checker: they are meant to make the RTL and the model disagree
if they can. Instructions that could stop a queue forever (``sync``) or that take their words
from the streams (``ifetch``) are left out; their own tests cover them.

    python -m opentsp.verif.randprog --seed 3 --config default -o prog.bin
"""

import argparse
import random

import numpy as np

from opentsp import isa
from opentsp.config import get_config
from opentsp.firmware.image import Image

__all__ = ["EXCLUDED", "random_instr", "random_queue", "random_image"]

#: Left out of random programs (see the module docstring).
EXCLUDED = ("sync", "ifetch", "end")


def _value(rng, field, config, words):
    """A random value for a non-stream field, sometimes at or past the configuration's limit."""
    limit = isa.field_limit(field, config)
    if field.kind == "count":
        return rng.choice([1, 1, 2, rng.randint(1, 6)])
    if field.kind == "addr":
        addr = rng.randrange(words)
        if rng.random() < 0.15:         # high bits set: taken modulo mem_words
            addr += config.mem_words * rng.randrange((1 << isa.ADDR_BITS) // config.mem_words)
        return addr
    if field.kind == "flag":
        return rng.randrange(2)
    return min(field.mask, rng.choice([0, 1, rng.randrange(limit + 1), limit + 1]))


def random_instr(rng, op, config, words=8):
    """One random :class:`~opentsp.isa.Instr` of ``op``."""
    values = {}
    if op.typed:
        dtype = rng.choice(list(isa.DType))
        values["dtype"] = int(dtype)
    if op.converts:
        values["rtype"] = int(rng.choice([t for t in isa.DType if t != dtype]))
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
    return isa.encode(op.mnemonic, **values)


def random_queue(rng, config, slice_, length, words=8):
    """A queue of ``length`` instructions for ``slice_`` (plus ``end``): its unit's
    instructions, ``nop``, ``repeat`` and ``notify``."""
    unit = isa.unit_of(slice_)
    ops = [op for op in isa.OPS if op.unit == unit and op.mnemonic not in EXCLUDED]
    program = []
    for _ in range(length):
        r = rng.random()
        if r < 0.2:
            program.append(isa.encode("nop", count=rng.randint(1, 6)))
        elif r < 0.28 and program:
            program.append(isa.encode("repeat", n=rng.randint(1, 3), d=rng.randint(1, 3)))
        elif r < 0.3:
            program.append(isa.encode("notify"))
        else:
            program.append(random_instr(rng, rng.choice(ops), config, words))
    return program + [isa.encode("end")]


def random_image(config, seed, *, length=16, words=8):
    """A random :class:`~opentsp.firmware.image.Image`: every queue gets up to ``length``
    instructions, the first ``words`` words of every memory random data."""
    config = get_config(config)
    rng = random.Random(seed)
    words = min(words, config.mem_words)
    queues = [random_queue(rng, config, s, rng.randint(0, min(length, config.queue_depth - 1)),
                           words)
              for s in isa.queues(config)]
    data_rng = np.random.default_rng(seed)
    data = {(mem, addr): data_rng.integers(0, 256, config.lanes, dtype=np.uint8)
            for mem in range(len(isa.mem_slices(config))) for addr in range(words)}
    return Image(config, queues, data)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m opentsp.verif.randprog",
                                     description="write a random firmware image")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--config", default="default")
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    image = random_image(args.config, args.seed, length=args.length)
    image.save(args.output)
    print(f"{args.output}: seed {args.seed}, {sum(len(q) for q in image.queues)} instructions")


if __name__ == "__main__":
    main()
