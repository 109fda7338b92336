"""Address map of the top level's host port, shared by the RTL and every host-side driver.

The host port moves 32-bit words. An address selects a region in bits 31..28:

* ``CONTROL`` registers (see the ``REG_*`` constants),
* ``QUEUE`` entries: ``queue << 16 | index`` (queue numbering of :func:`opentsp.isa.queues`),
* ``MEMORY`` chunks: ``mem << 20 | word << 7 | superlane << 2 | chunk``; a chunk holds lanes
  ``4*chunk .. 4*chunk+3`` of one superlane of one word, lane ``4*chunk`` in bits 7..0.

Reads return their data one cycle after the read strobe, with ``rvalid`` high.

SECDED ECC (docs/architecture.md section 6b): ``REG_ECC_*`` report what the SRAM decoders saw
in the run, and ``INJECT_ENTRIES`` injection entries (``inject_addr``) flip stored bits at a
chosen cycle. A place (memory, word, lane) is packed by :func:`ecc_place`.
"""

__all__ = [
    "REGION_SHIFT", "CONTROL", "QUEUE", "MEMORY", "REG_CTRL", "REG_STATUS", "REG_CYCLES",
    "REG_CONFIG", "CTRL_START", "CTRL_RESET", "STATUS_DONE", "STATUS_RUNNING",
    "queue_addr", "mem_addr", "chunks_per_superlane", "config_word",
    "REG_ECC_CORRECTED", "REG_ECC_DETECTED", "REG_ECC_FIRST_PLACE", "REG_ECC_FIRST_CYCLE",
    "STATUS_ECC_ERROR", "ECC_COUNT_MAX", "INJECT_ENTRIES", "INJECT_CYCLE", "INJECT_PLACE",
    "INJECT_MASK", "inject_reg", "inject_addr", "ecc_place", "unpack_place",
    "REG_C2C_CRC", "REG_C2C_ERRORS", "REG_C2C_FIRST", "REG_C2C_FIRST_CYCLE", "STATUS_C2C_ERROR",
    "C2C_CRC", "C2C_BUSY", "C2C_OVERFLOW", "C2C_EMPTY", "C2C_STRAY", "c2c_first", "C2C_COUNT_MAX",
]

REGION_SHIFT = 28
CONTROL = 0
QUEUE = 1
MEMORY = 2

REG_CTRL = 0        # write: CTRL_START starts the queues, CTRL_RESET clears the run state
REG_STATUS = 1      # read: STATUS_DONE, STATUS_RUNNING
REG_CYCLES = 2      # read: cycle counter (final cycle count once done)
REG_CONFIG = 3      # read: low 32 bits of the configuration hash
REG_ECC_CORRECTED = 4       # read: code words corrected (single-bit errors) in the run
REG_ECC_DETECTED = 5        # read: uncorrectable code words (double-bit errors) in the run
REG_ECC_FIRST_PLACE = 6     # read: ecc_place of the first uncorrectable error (0 if none)
REG_ECC_FIRST_CYCLE = 7     # read: the cycle of its SRAM read (0 if none)
# Chip-to-chip links (docs/architecture.md section 7d), all cleared by a start:
REG_C2C_CRC = 8             # read: link frames that failed their CRC in the run (saturating)
REG_C2C_ERRORS = 9          # read: link errors of kinds C2C_BUSY..C2C_STRAY (saturating)
REG_C2C_FIRST = 10          # read: c2c_first(kind, side, link) of the first error (0 if none)
REG_C2C_FIRST_CYCLE = 11    # read: its cycle in the chip's time (0 if none)
#: Injection entry i: INJECT_BASE + INJECT_STRIDE * i + field (read/write, kept over runs).
INJECT_BASE = 16
INJECT_STRIDE = 4
INJECT_CYCLE = 0            # run cycle at whose end the entry flips its place's bits
INJECT_PLACE = 1            # ecc_place(mem, word, lane)
INJECT_MASK = 2             # XOR mask over the 13-bit code word (bits 12..0), 0: entry off
INJECT_ENTRIES = 4

CTRL_START = 1 << 0
CTRL_RESET = 1 << 1
STATUS_DONE = 1 << 0
STATUS_RUNNING = 1 << 1
STATUS_ECC_ERROR = 1 << 2   # sticky over the run: some read found an uncorrectable error
STATUS_C2C_ERROR = 1 << 3   # sticky over the run: some link error (any kind) happened

#: Kinds of link error (section 7d): a frame failed its CRC; a send or mark into a busy link
#: (not sent); a frame arrived at a full receive buffer (dropped); a recv found the buffer empty
#: (zeros); a mark arrived with no deskew of its link waiting (dropped).
C2C_CRC, C2C_BUSY, C2C_OVERFLOW, C2C_EMPTY, C2C_STRAY = 1, 2, 3, 4, 5
C2C_COUNT_MAX = (1 << 32) - 1   # the link counters saturate here

ECC_COUNT_MAX = (1 << 32) - 1   # the ECC counters saturate here
#: ecc_place(): lane in bits 9..0, word in bits 23..10, memory in bits 31..24 (wide enough for
#: every configuration opentsp.config allows: 512 lanes, 8192 words, 128 memories).
PLACE_WORD_SHIFT = 10
PLACE_MEM_SHIFT = 24

QUEUE_SHIFT = 16
MEM_SHIFT = 20
WORD_SHIFT = 7
SUPERLANE_SHIFT = 2
LANES_PER_CHUNK = 4


def control_addr(reg):
    return CONTROL << REGION_SHIFT | reg


def queue_addr(queue, index):
    return QUEUE << REGION_SHIFT | queue << QUEUE_SHIFT | index


def mem_addr(mem, word, superlane, chunk):
    return (MEMORY << REGION_SHIFT | mem << MEM_SHIFT | word << WORD_SHIFT
            | superlane << SUPERLANE_SHIFT | chunk)


def config_word(config):
    """What ``REG_CONFIG`` reads on a chip built for ``config``: the low 32 bits of its hash."""
    return int.from_bytes(config.hash[:4], "little")


def chunks_per_superlane(config):
    return -(-config.lanes_per_superlane // LANES_PER_CHUNK)


def inject_reg(entry, field):
    """Control register of ``field`` (``INJECT_CYCLE``, ``INJECT_PLACE``, ``INJECT_MASK``) of
    injection entry ``entry``."""
    if not 0 <= entry < INJECT_ENTRIES:
        raise ValueError(f"injection entry must be in 0..{INJECT_ENTRIES - 1}, not {entry!r}")
    return INJECT_BASE + INJECT_STRIDE * entry + field


def inject_addr(entry, field):
    """Host address of :func:`inject_reg`."""
    return control_addr(inject_reg(entry, field))


def ecc_place(mem, word, lane):
    """Pack a place of the SRAM (memory, word, lane) into one register value."""
    return mem << PLACE_MEM_SHIFT | word << PLACE_WORD_SHIFT | lane


def unpack_place(value):
    """Inverse of :func:`ecc_place`: ``(mem, word, lane)``."""
    return (value >> PLACE_MEM_SHIFT, value >> PLACE_WORD_SHIFT & ((1 << (PLACE_MEM_SHIFT
            - PLACE_WORD_SHIFT)) - 1), value & ((1 << PLACE_WORD_SHIFT) - 1))



def c2c_first(kind, side, link):
    """What ``REG_C2C_FIRST`` reads for a first link error of ``kind`` (``C2C_CRC`` ..) on link
    ``link`` of the C2C slice ``side`` (0 ``C2C_W``, 1 ``C2C_E``)."""
    return kind << 8 | side << 4 | link
