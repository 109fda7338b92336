"""The scoreboard both RTL drivers share (the cocotb testbench :mod:`opentsp.verif.tb.chip` and
the C++ harness :mod:`opentsp.verif.harness`): it compares a run on the RTL with the golden
model's prediction."""

import numpy as np

from opentsp import isa

__all__ = ["Scoreboard"]


class Scoreboard:
    """Compares the RTL's memories, cycle count and ECC reports with the golden model's.

    Parameters
    ----------
    config : Config
        The chip's configuration (it names the memories in the mismatches).
    """

    def __init__(self, config):
        self.names = [s.name for s in isa.mem_slices(config)]
        self.mismatches = []

    def compare(self, expected, memories, cycles, ecc=None):
        """Compare one run; returns True when everything matched, else the reasons are in
        :attr:`mismatches` (the first ten memory words that differ).

        Parameters
        ----------
        expected : opentsp.sim.model.Result
            The golden model's run of the same image (and faults).
        memories : numpy.ndarray
            The RTL's memories after the run, uint8 ``(memories, mem_words, lanes)``.
        cycles : int
            The RTL's cycle count.
        ecc : tuple or None
            The RTL's ``(corrected, detected, first)`` ECC report, or None to skip it.
        """
        if cycles != expected.cycles:
            self.mismatches.append(f"cycles: RTL {cycles}, golden {expected.cycles}")
        golden_ecc = (expected.ecc_corrected, expected.ecc_detected, expected.ecc_first)
        if ecc is not None and tuple(ecc) != golden_ecc:
            self.mismatches.append(f"ECC (corrected, detected, first): RTL {tuple(ecc)}, "
                                   f"golden {golden_ecc}")
        diff = np.argwhere(expected.memories != memories)
        for mem, word in sorted({(int(m), int(w)) for m, w, _ in diff})[:10]:
            self.mismatches.append(
                f"{self.names[mem]}[{word}]: RTL {memories[mem, word].tolist()}, "
                f"golden {expected.memories[mem, word].tolist()}")
        return not self.mismatches
