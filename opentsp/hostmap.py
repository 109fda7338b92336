"""Address map of the top level's host port, shared by the RTL and every host-side driver.

The host port moves 32-bit words. An address selects a region in bits 31..28:

* ``CONTROL`` registers (see the ``REG_*`` constants),
* ``QUEUE`` entries: ``queue << 16 | index`` (queue numbering of :func:`opentsp.isa.queues`),
* ``MEMORY`` chunks: ``mem << 20 | word << 7 | superlane << 2 | chunk``; a chunk holds lanes
  ``4*chunk .. 4*chunk+3`` of one superlane of one word, lane ``4*chunk`` in bits 7..0.

Reads return their data one cycle after the read strobe, with ``rvalid`` high.
"""

__all__ = [
    "REGION_SHIFT", "CONTROL", "QUEUE", "MEMORY", "REG_CTRL", "REG_STATUS", "REG_CYCLES",
    "REG_CONFIG", "CTRL_START", "CTRL_RESET", "STATUS_DONE", "STATUS_RUNNING",
    "queue_addr", "mem_addr", "chunks_per_superlane",
]

REGION_SHIFT = 28
CONTROL = 0
QUEUE = 1
MEMORY = 2

REG_CTRL = 0        # write: CTRL_START starts the queues, CTRL_RESET clears the run state
REG_STATUS = 1      # read: STATUS_DONE, STATUS_RUNNING
REG_CYCLES = 2      # read: cycle counter (final cycle count once done)
REG_CONFIG = 3      # read: low 32 bits of the configuration hash

CTRL_START = 1 << 0
CTRL_RESET = 1 << 1
STATUS_DONE = 1 << 0
STATUS_RUNNING = 1 << 1

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


def chunks_per_superlane(config):
    return -(-config.lanes_per_superlane // LANES_PER_CHUNK)
