"""Chip configurations: the parameters every other part of OpenTSP is generated from.

The golden model, the assembler, the static checker and the RTL all take a :class:`Config`.
A configuration is hashed into every firmware image, so that an image built for one chip is
refused by another.
"""

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, fields

from opentsp import isa

__all__ = ["Config", "CONFIGS", "get_config"]


def _is_pow2(value):
    return value > 0 and value & (value - 1) == 0


@dataclass(frozen=True)
class Config:
    """Parameters of one TSP instance.

    Parameters
    ----------
    name : str
        Name used on the command line (``--config NAME``).
    superlanes : int
        Number of superlanes. Superlane ``k`` runs every instruction ``k`` cycles after
        superlane 0 (the stagger).
    lanes_per_superlane : int
        Lanes in one superlane; a stream carries one byte per lane.
    streams : int
        Streams per direction (east and west), a multiple of 4 so that int32 groups fit.
    mem_slices : int
        MEM slices per hemisphere (the chip has ``2 * mem_slices`` in all).
    mem_words : int
        Words per MEM slice. A word is one vector: one byte per lane.
    mem_banks : int
        SRAM banks per MEM slice; word ``a`` lives in bank ``a % mem_banks``.
    mxm_size : int
        Side of the MXM's weight-stationary MAC array; it uses lanes ``0..mxm_size-1``.
    mxm_accumulators : int
        int32 accumulator vectors in each plane of each MXM.
    mxm_planes : int
        Planes per MXM (1 or 2): arrays with their own weights, accumulators and compute and
        drain sequencers, sharing the MXM's queue and load sequencer (ISA v4, section 7a).
    mxm_load_rows : int
        Weight rows one element of an ``lw`` sequence writes, from that many streams.
    queue_depth : int
        Instructions each slice's queue holds.
    clock_mhz : float
        Nominal clock, used only to turn cycles into time in reports.
    floating_point : bool
        Build the floating-point hardware (the VXM's f32 ALU, conversions and functions:
        ``docs/floating-point.md``). Without it, every instruction with a float type is
        refused by the assembler, the checker and the image loader, and each VXM lane is an
        integer ALU alone.
    c2c_links : int
        Links on each of the chip's two C2C slices (docs/architecture.md section 7d); 0 (the
        default): no C2C slices, the floorplan of ISA v6.
    c2c_bytes : int
        Bytes a link carries each cycle in each direction.
    c2c_latency : int
        The least cycles a frame spends between the sender's link and the receiver's buffer.
    c2c_window : int
        How many cycles more a link may take (cables and clock phases): every link's latency
        is fixed within a run and lies in ``c2c_latency .. c2c_latency + c2c_window``.
    c2c_buffer : int
        Frames each link's receive buffer holds.
    """

    name: str
    superlanes: int
    lanes_per_superlane: int
    streams: int
    mem_slices: int
    mem_words: int
    mem_banks: int = 2
    mxm_size: int = 4
    mxm_accumulators: int = 16
    mxm_planes: int = 1
    mxm_load_rows: int = 1
    queue_depth: int = 128
    clock_mhz: float = 100.0
    floating_point: bool = True
    c2c_links: int = 0
    c2c_bytes: int = 4
    c2c_latency: int = 6
    c2c_window: int = 4
    c2c_buffer: int = 4

    #: Parameters that may be 0 (the rest are positive integers).
    _MAY_BE_ZERO = ("c2c_links", "c2c_window")

    def __post_init__(self):
        if not isinstance(self.floating_point, bool):
            raise ValueError(f"Config.floating_point must be True or False, "
                             f"not {self.floating_point!r}")
        # The field widths of the encoding (opentsp.isa) bound the parameters.
        for field in fields(self):
            value = getattr(self, field.name)
            least = 0 if field.name in self._MAY_BE_ZERO else 1
            if field.type in ("int", int) and (not isinstance(value, int) or value < least):
                kind = "a non-negative" if least == 0 else "a positive"
                raise ValueError(f"Config.{field.name} must be {kind} integer, "
                                 f"not {value!r}")
        if self.streams % isa.INT32_GROUP or self.streams > 1 << isa.STREAM_BITS:
            raise ValueError(f"Config.streams must be a multiple of {isa.INT32_GROUP} and at "
                             f"most {1 << isa.STREAM_BITS}, not {self.streams!r}")
        if not _is_pow2(self.mem_banks):
            raise ValueError(f"Config.mem_banks must be a power of two, not {self.mem_banks!r}")
        if (not _is_pow2(self.mem_words) or self.mem_words < self.mem_banks
                or self.mem_words > 1 << isa.ADDR_BITS):
            raise ValueError(f"Config.mem_words must be a power of two between mem_banks and "
                             f"{1 << isa.ADDR_BITS}, not {self.mem_words!r}")
        if self.lanes_per_superlane > 16 or self.superlanes > 32 or self.mem_slices > 64:
            raise ValueError(f"Config {self.name!r}: the host port addresses at most 16 lanes "
                             f"per superlane, 32 superlanes and 64 MEM slices per hemisphere")
        if self.mxm_size > self.lanes or self.mxm_size > 1 << isa.MXM_ROW_BITS:
            raise ValueError(f"Config.mxm_size must be at most the lanes ({self.lanes}), "
                             f"not {self.mxm_size!r}")
        if not 1 <= self.mxm_planes <= 1 << isa.MXM_PLANE_BITS:
            raise ValueError(f"Config.mxm_planes must be 1 to {1 << isa.MXM_PLANE_BITS}, "
                             f"not {self.mxm_planes!r}")
        if self.mxm_load_rows > min(self.streams, self.mxm_size):
            raise ValueError(f"Config.mxm_load_rows must be at most the streams and the MXM "
                             f"size ({min(self.streams, self.mxm_size)}), "
                             f"not {self.mxm_load_rows!r}")
        if self.mxm_accumulators > 1 << isa.MXM_ACC_BITS:
            raise ValueError(f"Config.mxm_accumulators must be at most "
                             f"{1 << isa.MXM_ACC_BITS}, not {self.mxm_accumulators!r}")
        if self.c2c_links > 1 << isa.C2C_LINK_BITS:
            raise ValueError(f"Config.c2c_links must be at most {1 << isa.C2C_LINK_BITS}, "
                             f"not {self.c2c_links!r}")
        if not _is_pow2(self.queue_depth) or self.queue_depth > 1 << 16:
            raise ValueError(f"Config.queue_depth must be a power of two, "
                             f"not {self.queue_depth!r}")

    # Derived figures -----------------------------------------------------------------------

    @property
    def lanes(self):
        """Lanes in all: the length of a vector in bytes."""
        return self.superlanes * self.lanes_per_superlane

    @property
    def words_per_bank(self):
        return self.mem_words // self.mem_banks

    @property
    def mem_bytes(self):
        """SRAM bytes on the whole chip."""
        return 2 * self.mem_slices * self.mem_words * self.lanes

    def to_json(self):
        """Every parameter as one JSON object (keys sorted); :meth:`from_json` reads it back."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """The configuration :meth:`to_json` wrote, checked as any new one is.

        Raises
        ------
        ValueError
            If ``text`` is not a JSON object of exactly :class:`Config`'s parameters, or the
            values are not a valid configuration.
        """
        try:
            values = json.loads(text)
        except (TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"Config.from_json: not JSON: {error}") from None
        names = {field.name for field in fields(cls)}
        required = {field.name for field in fields(cls) if field.default is MISSING}
        if not isinstance(values, dict) or set(values) - names or required - set(values):
            raise ValueError(f"Config.from_json: must be an object of the parameters "
                             f"{sorted(names)} (at least {sorted(required)}), not {text!r}")
        return cls(**values)

    @property
    def hash(self):
        """8-byte digest of every parameter, stored in firmware images."""
        text = self.to_json() + f"|isa{isa.ISA_VERSION}"
        return hashlib.sha256(text.encode()).digest()[:8]


CONFIGS = {
    # Small enough to simulate quickly in Verilator and in Amaranth's simulator.
    # Four MEM slices per hemisphere is the fewest that can feed an int32 operand (4 byte
    # streams, one read per slice per cycle) to the VXM in one cycle and store its result.
    "default": Config(name="default", superlanes=2, lanes_per_superlane=4, streams=8,
                      mem_slices=4, mem_words=64, mxm_size=4, queue_depth=128),
    # A little wider: four superlanes and more MEM, still quick in Verilator.
    "medium": Config(name="medium", superlanes=4, lanes_per_superlane=4, streams=8,
                     mem_slices=8, mem_words=128, mxm_size=4, queue_depth=256),
    # The default chip with an 8 x 8 MXM across both superlanes, so that the partial sums ride
    # the stagger from superlane to superlane (section 7a) on the RTL too.
    "wide": Config(name="wide", superlanes=2, lanes_per_superlane=4, streams=8,
                   mem_slices=4, mem_words=64, mxm_size=8, queue_depth=128),
    # The language model's chip (opentsp.app.lm_chip, make demo): `wide` with the memory a
    # decode step of the Zen model needs (its weights, KV cache and every intermediate: 16,072
    # of the 32,768 words; a KV-cache row of 32 bfloat16 values is 8 words, one per slice of a
    # side) and 8192-word queues (the longest, MEM_W2's, holds 6,428 instructions of a
    # step, so nothing is fetched and the program stays loaded from run to run).
    "lm": Config(name="lm", superlanes=2, lanes_per_superlane=4, streams=8,
                 mem_slices=8, mem_words=2048, mxm_size=8, queue_depth=8192),
    # `lm` with one link on each edge: the decoder split over two chips of a ring
    # (opentsp.app.lm_split, make multichip-lm; docs/multichip.md).
    "lm_c2c": Config(name="lm_c2c", superlanes=2, lanes_per_superlane=4, streams=8,
                     mem_slices=8, mem_words=2048, mxm_size=8, queue_depth=8192, c2c_links=1),
    # For an FPGA board (opentsp fpga, docs/fpga.md): one superlane of the default chip (the
    # default itself needs more LUTs than the largest ECP5 has) with 4 + 4 streams, the fewest
    # that carry an int32 group (8 + 8 used 78% of the LFE5U-85F's LUTs and did not route: the
    # stream-select muxes of every slice grow with the streams); 1024-word MEM slices, so that
    # every lane's memory (1024 x 13 bits, both banks) is one block RAM (DP16KD), and 256-entry
    # queues (one block RAM each). Its clock, 35 MHz, comes from the PLL (25 MHz x 7 / 5):
    # the highest the PLL makes below the routed 39.41 MHz of 25431de with more than the
    # 1.5 MHz by which placement moves that figure (docs/fpga.md; 31.25 MHz from a24c211,
    # 25 MHz, the oscillator's, before, and 18.75 MHz while the chip reached 20 to 24).
    # Without floating point, whose per-lane f32 ALU would not fit beside it.
    "fpga": Config(name="fpga", superlanes=1, lanes_per_superlane=4, streams=4,
                   mem_slices=4, mem_words=1024, mxm_size=4, queue_depth=256, clock_mhz=35.0,
                   floating_point=False),
    # `fpga` with 2 MEM slices per hemisphere, for the smaller ULX3S boards (docs/fpga.md):
    # the MEM slices are over half of `fpga`'s LUTs, and `fpga` (46,300 LUT4s) does not fit
    # the LFE5U-45F's 43,848.
    "fpga_small": Config(name="fpga_small", superlanes=1, lanes_per_superlane=4, streams=4,
                         mem_slices=2, mem_words=1024, mxm_size=4, queue_depth=256,
                         clock_mhz=25.0, floating_point=False),
    # `fpga` with the default chip's 8 + 8 streams: the largest configuration that fits the
    # LFE5U-85F (docs/fpga.md, "The largest configuration"); exactly one superlane of
    # `default` with 1024-word MEM slices and 256-entry queues, without floating point.
    "fpga_large": Config(name="fpga_large", superlanes=1, lanes_per_superlane=4, streams=8,
                         mem_slices=4, mem_words=1024, mxm_size=4, queue_depth=256,
                         clock_mhz=25.0, floating_point=False),
    # The real chip's figures (Abts et al., ISCA 2020): 20 x 16 lanes, 32 + 32 streams,
    # 44 MEM slices per hemisphere of 8192 words x 320 bytes (2.5 MiB), 900 MHz, 320 x 320 MXM.
    # Four MXM planes in all (two per hemisphere), whose weights arrive on 16 streams per
    # hemisphere per cycle: a 320 x 320 plane loads in 20 cycles (ISCA 2020).
    "groq": Config(name="groq", superlanes=20, lanes_per_superlane=16, streams=32,
                   mem_slices=44, mem_words=8192, mxm_size=320, mxm_accumulators=320,
                   mxm_planes=2, mxm_load_rows=16, queue_depth=4096, clock_mhz=900.0,
                   # 16 links (8 on each edge), 4 lanes of 30 Gbps each (ISCA 2022): 120 Gbps
                   # = 16.7 bytes a cycle at 900 MHz, so 16. Latency and window are this
                   # project's assumptions, not published figures (docs/architecture.md 7d).
                   c2c_links=8, c2c_bytes=16, c2c_latency=40, c2c_window=8, c2c_buffer=4),
    # The default chip with two links on each edge (a ring needs two a chip, four chips fully
    # connected three): the multi-chip systems of docs/multichip.md. Links of 4 bytes a cycle
    # take a vector (an 11-byte frame) in 3 cycles, about the groq chip's ratio of link to
    # stream bandwidth scaled to its 8 lanes; latency 6 to 10 cycles.
    "c2c": Config(name="c2c", superlanes=2, lanes_per_superlane=4, streams=8,
                  mem_slices=4, mem_words=64, mxm_size=4, queue_depth=128, c2c_links=2),
}


def get_config(name):
    """Return the configuration called ``name``; unknown names list the known ones."""
    if isinstance(name, Config):
        return name
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown configuration {name!r}; known: "
                         f"{', '.join(sorted(CONFIGS))}") from None
