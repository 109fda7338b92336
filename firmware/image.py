"""Firmware images: every queue's instruction words and the initial memory contents.

The byte format is section 9 of ``docs/architecture.md`` (little-endian throughout)::

    0      4   magic b"OTSP"
    4      2   image format version (FORMAT_VERSION)
    6      2   ISA version (isa.ISA_VERSION)
    8      8   configuration hash (Config.hash)
    16     4   number of queues Q
    20     4   number of data records D
    24   4*Q   instruction count of each queue, in queue order
    ..   4*N   instruction words, queue after queue
    ..   D*(8+lanes)  data records: memory index u32, word address u32, lanes bytes
    end-4  4   CRC-32 (zlib.crc32) of everything before it

:meth:`Image.from_bytes` refuses anything else with an :class:`ImageError` whose one-line
message names the offset or record and the cause.
"""

import errno
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from opentsp import isa
from opentsp.config import CONFIGS, Config

__all__ = ["MAGIC", "FORMAT_VERSION", "HEADER_SIZE", "ImageError", "Image", "load",
           "write_atomically"]

MAGIC = b"OTSP"
FORMAT_VERSION = 1
HEADER_SIZE = 24
_HEADER = struct.Struct("<4sHH8sII")
_RECORD_HEAD = struct.Struct("<II")


class ImageError(ValueError):
    """A firmware image that cannot be loaded (or written); the message is one line."""


def _config_label(config_hash):
    names = [name for name, cfg in CONFIGS.items() if cfg.hash == config_hash]
    label = f"hash {config_hash.hex()}"
    if names:
        return f"configuration {names[0]!r} ({label})"
    return f"an unknown configuration ({label})"


@dataclass(eq=False)
class Image:
    """A firmware image for one configuration.

    Parameters
    ----------
    config : Config
        The configuration the image is built for.
    queues : list of list of isa.Instr
        One instruction list per queue, in the order of :func:`opentsp.isa.queues`: the words
        preloaded into the queue. Each ends with ``end``, and ``end`` appears nowhere else;
        a queue with an ``ifetch`` may leave its ``end`` to fetched words (section 5b).
    data : dict
        Initial memory words: ``(mem_index, word_address) -> numpy uint8 array`` of
        ``config.lanes`` bytes (lane 0 first). Memories are numbered west to east as in
        :func:`opentsp.isa.mem_slices`; words not listed start as zero.
    """

    config: Config
    queues: list = field(default_factory=list)
    data: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, config):
        """An image whose every queue is just ``end`` and whose memories are zero."""
        end = isa.encode("end")
        return cls(config, [[end] for _ in isa.queues(config)], {})

    def __eq__(self, other):
        if not isinstance(other, Image):
            return NotImplemented
        return (self.config == other.config and self.queues == other.queues
                and self.data.keys() == other.data.keys()
                and all(np.array_equal(self.data[k], other.data[k]) for k in self.data))

    # Checks ---------------------------------------------------------------------------------

    def validate(self):
        """Raise :class:`ImageError` if the image breaks a rule the loader enforces."""
        config = self.config
        slices = isa.queues(config)
        if len(self.queues) != len(slices):
            raise ImageError(f"image has {len(self.queues)} queues, configuration "
                             f"{config.name!r} has {len(slices)}")
        for index, (slice_, instrs) in enumerate(zip(slices, self.queues, strict=True)):
            _check_queue(config, index, slice_, instrs)
        memories = len(isa.mem_slices(config))
        for (mem, addr), value in self.data.items():
            where = f"data word (memory {mem}, address {addr})"
            if not 0 <= mem < memories:
                raise ImageError(f"{where}: memory index out of range 0..{memories - 1}")
            if not 0 <= addr < config.mem_words:
                raise ImageError(f"{where}: word address out of range 0..{config.mem_words - 1}")
            array = np.asarray(value)
            if array.shape != (config.lanes,):
                raise ImageError(f"{where}: must hold {config.lanes} bytes, not shape "
                                 f"{array.shape}")

    # Serialisation --------------------------------------------------------------------------

    def to_bytes(self):
        """The image in the format of section 9; canonical (data records sorted)."""
        self.validate()
        config = self.config
        parts = [_HEADER.pack(MAGIC, FORMAT_VERSION, isa.ISA_VERSION, config.hash,
                              len(self.queues), len(self.data))]
        parts.append(struct.pack(f"<{len(self.queues)}I", *(len(q) for q in self.queues)))
        words = [instr.encode() for q in self.queues for instr in q]
        parts.append(struct.pack(f"<{len(words)}I", *words))
        for (mem, addr) in sorted(self.data):
            value = np.asarray(self.data[(mem, addr)])
            if value.dtype != np.uint8:
                if value.min(initial=0) < 0 or value.max(initial=0) > 255:
                    raise ImageError(f"data word (memory {mem}, address {addr}): bytes must be "
                                     f"0..255")
                value = value.astype(np.uint8)
            parts.append(_RECORD_HEAD.pack(mem, addr))
            parts.append(value.tobytes())
        body = b"".join(parts)
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, blob, config):
        """Parse and check an image for ``config``.

        Raises
        ------
        ImageError
            With a one-line message naming the byte offset or record and the cause.
        """
        blob = bytes(blob)
        header = _read_header(blob)
        counts_end = HEADER_SIZE + 4 * header.nqueues
        expected = (counts_end + 4 * sum(header.counts)
                    + header.nrecords * (8 + config.lanes) + 4)
        _check_size_and_crc(blob, expected)
        _check_built_for(header, config)
        queues, offset = _read_queues(blob, config, header.counts, counts_end)
        return cls(config, queues, _read_data(blob, config, header.nrecords, offset))

    # Files ----------------------------------------------------------------------------------

    def save(self, path):
        """Write the image to ``path`` atomically (:func:`write_atomically`)."""
        write_atomically(path, self.to_bytes())

    @classmethod
    def load(cls, path, config):
        """Read and check the image in ``path`` (see :meth:`from_bytes`)."""
        with open(path, "rb") as handle:
            blob = handle.read()
        try:
            return cls.from_bytes(blob, config)
        except ImageError as error:
            raise ImageError(f"{os.fspath(path)}: {error}") from None

    # Helpers --------------------------------------------------------------------------------

    def words(self, queue):
        """The encoded instruction words of queue number ``queue``."""
        return [instr.encode() for instr in self.queues[queue]]

    def queue_words(self):
        """The encoded instruction words of every queue, in queue order."""
        return [self.words(queue) for queue in range(len(self.queues))]

    def memories(self):
        """Initial contents of every memory, ``(memories, mem_words, lanes)`` uint8."""
        return np.stack([self.memory(mem) for mem in range(len(isa.mem_slices(self.config)))])

    def memory(self, mem):
        """Initial contents of memory ``mem`` as a ``(mem_words, lanes)`` uint8 array."""
        array = np.zeros((self.config.mem_words, self.config.lanes), dtype=np.uint8)
        for (index, addr), value in self.data.items():
            if index == mem:
                array[addr] = value
        return array


# Loading ----------------------------------------------------------------------------------------
# The checks of Image.from_bytes, in the order its errors are reported: the header's own
# layout, the size and CRC (so that a corrupt header is reported as corruption), what the image
# was built for, then the queues and the data records.

@dataclass(frozen=True)
class _Header:
    isa_version: int
    config_hash: bytes
    nqueues: int
    nrecords: int
    counts: tuple           # instructions per queue


def _read_header(blob):
    """The header and queue counts of ``blob``, whose magic, format version and length up to
    the counts are checked."""
    size = len(blob)
    if blob[:4] != MAGIC[:min(size, 4)]:
        raise ImageError(f"offset 0: bad magic {blob[:4]!r}, not an OpenTSP image "
                         f"(expected {MAGIC!r})")
    if size < HEADER_SIZE + 4:
        raise ImageError(f"offset {size}: truncated image: {size} bytes, shorter than the "
                         f"{HEADER_SIZE + 4}-byte header and CRC")
    _, fmt, isa_version, config_hash, nqueues, nrecords = _HEADER.unpack_from(blob)
    if fmt != FORMAT_VERSION:
        raise ImageError(f"offset 4: image format version {fmt}, this loader reads version "
                         f"{FORMAT_VERSION}")
    counts_end = HEADER_SIZE + 4 * nqueues
    if counts_end + 4 > size:
        raise ImageError(f"offset {size}: truncated image: {nqueues} queue counts need "
                         f"{counts_end + 4} bytes, image has {size}")
    counts = struct.unpack_from(f"<{nqueues}I", blob, HEADER_SIZE)
    return _Header(isa_version, config_hash, nqueues, nrecords, counts)


def _crc_matches(blob, end):
    """True if the 4 bytes before ``end`` are the CRC of everything before them."""
    return struct.unpack_from("<I", blob, end - 4)[0] == zlib.crc32(blob[:end - 4])


def _check_size_and_crc(blob, expected):
    """``blob`` is the ``expected`` size the header announces, and its CRC matches."""
    size = len(blob)
    if size < expected:
        if _crc_matches(blob, size):
            raise ImageError(f"offset 16: inconsistent counts: the header announces "
                             f"{expected} bytes, the (checksummed) image has {size}")
        raise ImageError(f"offset {size}: truncated image: header announces {expected} "
                         f"bytes, image has {size}")
    if size > expected and _crc_matches(blob, expected):
        raise ImageError(f"offset {expected}: {size - expected} trailing bytes after "
                         f"the image")
    # Otherwise a longer image's header itself is probably corrupt: report the checksum.
    stored_crc = struct.unpack_from("<I", blob, size - 4)[0]
    actual_crc = zlib.crc32(blob[:size - 4])
    if stored_crc != actual_crc:
        raise ImageError(f"offset {size - 4}: bad CRC {stored_crc:#010x}, contents give "
                         f"{actual_crc:#010x} (corrupted image)")


def _check_built_for(header, config):
    """The image was built for this ISA version and ``config``, whose queues it has."""
    if header.isa_version != isa.ISA_VERSION:
        raise ImageError(f"offset 6: image built for ISA version {header.isa_version}, this "
                         f"is ISA version {isa.ISA_VERSION}")
    if header.config_hash != config.hash:
        raise ImageError(f"offset 8: image built for {_config_label(header.config_hash)}, "
                         f"this is configuration {config.name!r} (hash {config.hash.hex()})")
    slices = isa.queues(config)
    if header.nqueues != len(slices):
        raise ImageError(f"offset 16: image has {header.nqueues} queues, configuration "
                         f"{config.name!r} has {len(slices)}")


def _read_queues(blob, config, counts, offset):
    """Decode and check every queue, whose words start at ``offset``; the queues and the
    offset after them."""
    queues = []
    for index, (slice_, count) in enumerate(zip(isa.queues(config), counts, strict=True)):
        count_offset = HEADER_SIZE + 4 * index
        if count > config.queue_depth:
            raise ImageError(f"offset {count_offset}: queue {index} ({slice_.name}) has "
                             f"{count} instructions, more than queue_depth "
                             f"{config.queue_depth}")
        instrs = [_decode_word(blob, offset + 4 * i, f"queue {index} ({slice_.name}) "
                               f"instruction {i}") for i in range(count)]
        _check_queue(config, index, slice_, instrs, count_offset=count_offset,
                     words_offset=offset)
        queues.append(instrs)
        offset += 4 * count
    return queues, offset


def _decode_word(blob, offset, what):
    """The instruction whose word is at ``offset``; ``what`` names it in the error."""
    word = struct.unpack_from("<I", blob, offset)[0]
    try:
        return isa.decode(word)
    except isa.EncodingError as error:
        raise ImageError(f"offset {offset}: {what}: undecodable: {error}") from None


def _read_data(blob, config, nrecords, offset):
    """The ``nrecords`` data records from ``offset`` on, each for a distinct word."""
    data = {}
    memories = len(isa.mem_slices(config))
    for record in range(nrecords):
        mem, addr = _RECORD_HEAD.unpack_from(blob, offset)
        where = f"offset {offset}: data record {record}"
        if mem >= memories:
            raise ImageError(f"{where}: memory index {mem} out of range 0..{memories - 1}")
        if addr >= config.mem_words:
            raise ImageError(f"{where}: word address {addr} out of range "
                             f"0..{config.mem_words - 1}")
        if (mem, addr) in data:
            raise ImageError(f"{where}: second record for memory {mem} address {addr}")
        start = offset + 8
        data[(mem, addr)] = np.frombuffer(blob[start:start + config.lanes],
                                          dtype=np.uint8).copy()
        offset += 8 + config.lanes
    return data


def _check_queue(config, index, slice_, instrs, count_offset=None, words_offset=None):
    where = f"queue {index} ({slice_.name})"
    prefix = "" if count_offset is None else f"offset {count_offset}: "
    if len(instrs) > config.queue_depth:
        raise ImageError(f"{prefix}{where} has {len(instrs)} instructions, more than "
                         f"queue_depth {config.queue_depth}")
    fetches = any(instr.op.mnemonic == "ifetch" for instr in instrs)
    if not instrs or (instrs[-1].op.mnemonic != "end" and not fetches):
        raise ImageError(f"{prefix}{where} does not end with 'end' (nor has an 'ifetch' "
                         f"to fetch it)")
    unit = isa.unit_of(slice_)
    for i, instr in enumerate(instrs):
        at = "" if words_offset is None else f"offset {words_offset + 4 * i}: "
        if instr.op.mnemonic == "end" and i != len(instrs) - 1:
            raise ImageError(f"{at}{where} instruction {i}: 'end' before the last instruction")
        if instr.op.unit not in (isa.Unit.ICU, unit):
            raise ImageError(f"{at}{where} instruction {i}: {instr.op.mnemonic} is a "
                             f"{instr.op.unit.name} instruction, not allowed in a "
                             f"{unit.name} queue")
        try:
            isa.check_config(instr, config)
        except isa.EncodingError as error:
            raise ImageError(f"{at}{where} instruction {i}: {error}") from None


def write_atomically(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file in the same directory, so that
    nothing half-written is left behind on error; the file's mode follows the umask, as
    ``open`` would give it.

    Raises
    ------
    OSError
        Naming ``path`` itself (not the temporary file): a directory, a missing directory, no
        permission.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".otsp-", suffix=".tmp", dir=directory)
    except OSError as error:
        raise type(error)(error.errno, error.strerror, path) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask():
    """The process's umask (read by setting it, then setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load(path, config):
    """Read and check a firmware image file; see :meth:`Image.from_bytes`."""
    return Image.load(path, config)
