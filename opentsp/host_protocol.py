"""The host protocol: which host-port words load a program, start it, poll it, inject faults and
read the memories and ECC registers back (docs/architecture.md, "Host port").

Written once, here, for every host: the cocotb driver of the simulated chip
(:mod:`opentsp.verif.tb.chip`) performs these *transactions* on the host-port pins, and the
board host program (:mod:`opentsp.app.board`) and the UART bridge testbench
(:mod:`opentsp.verif.tb.bridge`) run the same transactions as *operations* over the UART bridge
(:mod:`opentsp.bridge_protocol`).

Transactions are plain data: a write is ``(addr, value)``, a read is an address; addresses and
register meanings are those of :mod:`opentsp.hostmap`. Operations are generators that yield
``(request bytes, answer length)``, receive the answer bytes and return their result; a driver
(:class:`opentsp.app.board.Board`, or the testbench's UART model) carries the bytes.
"""

import numpy as np

from opentsp import bridge_protocol as proto
from opentsp import hostmap, isa

__all__ = [
    "HostError", "HostTimeout", "chunk_words", "load_writes", "start_write",
    "memory_words", "memory_reads", "memories_from_reads", "inject_writes", "ECC_REGISTERS",
    "ecc_reads", "ecc_from_reads", "op_write", "op_read", "op_check_config", "op_load", "op_run",
    "op_read_memories",
]


class HostError(Exception):
    """The chip answered, but not as the protocol expects (another configuration, a protocol
    error, a program that does not finish)."""


class HostTimeout(HostError):
    """The chip did not answer in time."""


# Transactions -------------------------------------------------------------------------------

def chunk_words(config, vector):
    """One memory word (``lanes`` bytes) as ``(superlane, chunk, value)`` host chunks, in
    :func:`opentsp.hostmap.mem_addr` order; a chunk's lane ``4*chunk`` is its bits 7..0."""
    lps = config.lanes_per_superlane
    chunks = []
    for superlane in range(config.superlanes):
        lanes = bytes(vector[superlane * lps:(superlane + 1) * lps])
        for chunk in range(hostmap.chunks_per_superlane(config)):
            part = lanes[4 * chunk:4 * chunk + 4]
            chunks.append((superlane, chunk, int.from_bytes(part.ljust(4, b"\0"), "little")))
    return chunks


def load_writes(config, queue_words, memories, *, holding=None):
    """The writes that load a program: a run-state reset, every queue entry, every memory word.

    Parameters
    ----------
    queue_words : sequence of sequence of int
        The encoded instruction words of each queue (queue numbering of
        :func:`opentsp.isa.queues`).
    memories : numpy array
        The memories to load, uint8 ``(memories, mem_words, lanes)`` (zeros where the program
        has no data).
    holding : numpy array, optional
        What the memories hold now, of the same shape: words that hold their target already
        are not written (zeros right after an FPGA is configured; the previous program's
        memories in a simulation).

    Returns
    -------
    list of (int, int)
        ``(addr, value)`` in the order to write them.
    """
    writes = [(hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_RESET)]
    for queue, words in enumerate(queue_words):
        writes += [(hostmap.queue_addr(queue, index), word) for index, word in enumerate(words)]
    for mem in range(len(isa.mem_slices(config))):
        for word in range(config.mem_words):
            target = memories[mem, word]
            if holding is not None and np.array_equal(holding[mem, word], target):
                continue
            writes += [(hostmap.mem_addr(mem, word, superlane, chunk), value)
                       for superlane, chunk, value in chunk_words(config, target)]
    return writes


def start_write():
    """The write that starts the loaded program; ``REG_STATUS`` then reads ``STATUS_RUNNING``
    until ``STATUS_DONE``, and ``REG_CYCLES`` the cycle count once done."""
    return hostmap.control_addr(hostmap.REG_CTRL), hostmap.CTRL_START


def memory_words(config):
    """Every ``(mem, word)`` of the chip, memory numbering of :func:`opentsp.isa.mem_slices`."""
    return [(mem, word) for mem in range(len(isa.mem_slices(config)))
            for word in range(config.mem_words)]


def _chunk_places(config, words):
    """``(addr, mem, word, first lane, lanes)`` of every host chunk of ``words``."""
    lps = config.lanes_per_superlane
    for mem, word in (memory_words(config) if words is None else words):
        for superlane in range(config.superlanes):
            for chunk in range(hostmap.chunks_per_superlane(config)):
                yield (hostmap.mem_addr(mem, word, superlane, chunk), mem, word,
                       superlane * lps + 4 * chunk, min(4, lps - 4 * chunk))


def memory_reads(config, words=None):
    """The reads that fetch memory words (all of them by default), in the order
    :func:`memories_from_reads` expects their values."""
    return [place[0] for place in _chunk_places(config, words)]


def memories_from_reads(config, values, words=None):
    """The memories from the values of :func:`memory_reads` (same ``words``): uint8
    ``(memories, mem_words, lanes)``, words not read left at zero."""
    memories = np.zeros((len(isa.mem_slices(config)), config.mem_words, config.lanes), np.uint8)
    places = list(_chunk_places(config, words))
    if len(values) != len(places):
        raise ValueError(f"values must hold one word per read ({len(places)}), "
                         f"not {len(values)!r}")
    for (_, mem, word, lane, width), value in zip(places, values, strict=True):
        memories[mem, word, lane:lane + width] = list(int(value).to_bytes(4, "little")[:width])
    return memories


def inject_writes(entries):
    """The writes of every fault-injection entry (docs/architecture.md section 6b).

    Parameters
    ----------
    entries : sequence of (int, int, int)
        ``(cycle, place, mask)`` per entry to arm (``place`` from
        :func:`opentsp.hostmap.ecc_place`), at most ``hostmap.INJECT_ENTRIES``; the other
        entries are written off (mask 0).
    """
    entries = list(entries)
    if len(entries) > hostmap.INJECT_ENTRIES:
        raise ValueError(f"faults must be at most {hostmap.INJECT_ENTRIES} (the injection "
                         f"entries of the host port), not {len(entries)!r}")
    writes = []
    for entry in range(hostmap.INJECT_ENTRIES):
        cycle, place, mask = entries[entry] if entry < len(entries) else (0, 0, 0)
        writes += [(hostmap.inject_addr(entry, hostmap.INJECT_CYCLE), cycle),
                   (hostmap.inject_addr(entry, hostmap.INJECT_PLACE), place),
                   (hostmap.inject_addr(entry, hostmap.INJECT_MASK), mask)]
    return writes


#: The registers :func:`ecc_reads` reads, in order.
ECC_REGISTERS = (hostmap.REG_STATUS, hostmap.REG_ECC_CORRECTED, hostmap.REG_ECC_DETECTED,
                 hostmap.REG_ECC_FIRST_PLACE, hostmap.REG_ECC_FIRST_CYCLE)


def ecc_reads():
    """The reads of the ECC report, in the order :func:`ecc_from_reads` expects."""
    return [hostmap.control_addr(reg) for reg in ECC_REGISTERS]


def ecc_from_reads(values):
    """``(corrected, detected, first)`` from the values of :func:`ecc_reads`; ``first`` is
    ``(mem, word, lane, cycle)`` of the first uncorrectable error, or None when
    ``STATUS_ECC_ERROR`` is clear (then its place and cycle must read 0)."""
    status, corrected, detected, place, cycle = values
    if status & hostmap.STATUS_ECC_ERROR:
        return corrected, detected, (*hostmap.unpack_place(place), cycle)
    if (place, cycle) != (0, 0):
        raise HostError(f"ECC first-error place {place:#x} and cycle {cycle} without "
                        f"STATUS_ECC_ERROR")
    return corrected, detected, None


# Operations over the UART bridge ------------------------------------------------------------

def op_write(addr, data):
    """Host-port write of ``data`` to ``addr``."""
    reply = yield proto.encode_write(addr, data), proto.WRITE_REPLY_BYTES
    proto.decode_write_reply(reply)


def op_read(addr):
    """Host-port read of ``addr``; returns the word."""
    reply = yield proto.encode_read(addr), proto.READ_REPLY_BYTES
    return proto.decode_read_reply(reply)


def op_check_config(config):
    """Check that the chip was built for ``config``: ``REG_CONFIG`` reads
    :func:`opentsp.hostmap.config_word`."""
    value = yield from op_read(hostmap.control_addr(hostmap.REG_CONFIG))
    expected = hostmap.config_word(config)
    if value != expected:
        raise HostError(f"the chip was built for another configuration than {config.name!r} "
                        f"(config word {value:#010x}, expected {expected:#010x})")


def op_load(config, queue_words, memories, *, holding=None):
    """Check the chip's configuration, then perform :func:`load_writes` (same parameters)."""
    yield from op_check_config(config)
    for addr, value in load_writes(config, queue_words, memories, holding=holding):
        yield from op_write(addr, value)


def op_run(max_polls=100_000):
    """Start the loaded program and poll ``REG_STATUS`` until done; returns the cycle count."""
    yield from op_write(*start_write())
    for _ in range(max_polls):
        status = yield from op_read(hostmap.control_addr(hostmap.REG_STATUS))
        if status & hostmap.STATUS_DONE:
            return (yield from op_read(hostmap.control_addr(hostmap.REG_CYCLES)))
    raise HostError(f"the program is still running after {max_polls} status reads")


def op_read_memories(config, words=None):
    """Read memory words back (:func:`memory_reads`); returns :func:`memories_from_reads`."""
    values = []
    for addr in memory_reads(config, words):
        values.append((yield from op_read(addr)))
    return memories_from_reads(config, values, words)
