"""SECDED codec of one SRAM lane: extended Hamming (13,8), as :mod:`opentsp.secded`."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from opentsp import secded

__all__ = ["Secded"]


class Secded(wiring.Component):
    """Encoder and decoder of the SRAM's SECDED code (docs/architecture.md section 6b).

    Code word layout, syndrome and outcomes exactly as :mod:`opentsp.secded` (the constants
    come from there): bits 7..0 data, 11..8 Hamming check bits, 12 overall parity.

    Both halves are combinational (latency 0, one word per cycle each) and independent: the
    encoder sits on an SRAM lane's write data, the decoder between its read data and the
    stream register, so ECC adds no cycle to any instruction.

    Ports
    -----
    data : In(8)
        Byte to store.
    code : Out(13)
        Its code word.
    stored : In(13)
        Code word read from the SRAM.
    corrected_data : Out(8)
        The corrected byte; for a detected (uncorrectable) error the raw data bits 7..0.
    corrected : Out(1)
        ``stored`` had a correctable single-bit error.
    detected : Out(1)
        ``stored`` had an uncorrectable error (two bits, or three or more that the code sees).
    """

    data: In(secded.DATA_BITS)
    code: Out(secded.CODE_BITS)
    stored: In(secded.CODE_BITS)
    corrected_data: Out(secded.DATA_BITS)
    corrected: Out(1)
    detected: Out(1)

    @staticmethod
    def _check(m, data, name):
        """The 4 Hamming check bits of ``data``, as a signal driven whole: bit ``i`` is the
        parity of ``data & CHECK_MASKS[i]`` (one reduction each, which a simulator evaluates
        as one operation, where a bit-by-bit XOR tree assigned bit by bit into the signal
        cost the Verilated model more than any other line: bench/model_profile.py)."""
        check = Signal(secded.CHECK_BITS, name=name)
        m.d.comb += check.eq(Cat(*((data & mask).xor() for mask in secded.CHECK_MASKS)))
        return check

    def elaborate(self, platform):
        m = Module()
        nd = secded.DATA_BITS

        # Encoder.
        body = Signal(nd + secded.CHECK_BITS)
        m.d.comb += [body.eq(Cat(self.data, self._check(m, self.data, "check"))),
                     self.code.eq(Cat(body, body.xor()))]

        # Decoder.
        raw = self.stored[:nd]
        syndrome = Signal(secded.CHECK_BITS)
        odd = Signal()
        m.d.comb += [syndrome.eq(self._check(m, raw, "recomputed")
                                 ^ self.stored[nd:nd + secded.CHECK_BITS]),
                     odd.eq(self.stored.xor())]
        flip = Signal(nd)
        in_check = Signal()
        single = Signal()
        m.d.comb += [
            flip.eq(Cat(*(syndrome == pos for pos in secded.DATA_POSITIONS))),
            in_check.eq((syndrome == 0) | (syndrome == 1) | (syndrome == 2) | (syndrome == 4)
                        | (syndrome == 8)),
            single.eq(odd & (flip.any() | in_check)),
            self.corrected.eq(single),
            self.detected.eq((odd & ~single) | (~odd & syndrome.any())),
            self.corrected_data.eq(raw ^ Mux(single, flip, 0)),
        ]
        return m
