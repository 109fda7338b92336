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
        golden_ecc = (expected.ecc_corrected, expected.ecc_detected, expected.ecc_first)
        self._compare_run("", (expected.cycles, golden_ecc, expected.memories),
                          (cycles, ecc, memories))
        return not self.mismatches

    def compare_session(self, expected, memories, cycles, ecc=None, run_memories=None):
        """Compare a session (one load, several starts: docs/architecture.md section 10):
        every run's cycle count and ECC report, the memories after the last run and, if given,
        after every run. Returns True when everything matched; each mismatch of run ``k``
        (1-based) starts with ``run k: ``.

        Parameters
        ----------
        expected : opentsp.sim.session.SessionResult
            The golden model's session (with ``keep_memories`` if ``run_memories`` is given).
        memories : numpy.ndarray
            The RTL's memories after the last run.
        cycles : list of int
            The RTL's cycle count of every run.
        ecc : list of tuple or None
            The RTL's ECC report of every run, or None to skip them.
        run_memories : list of numpy.ndarray or None
            The RTL's memories after every run, or None to compare the last run's only.
        """
        if len(cycles) != expected.runs:
            self.mismatches.append(f"runs: RTL {len(cycles)}, golden {expected.runs}")
            return False
        for run in range(expected.runs):
            last = run == expected.runs - 1
            rtl_memories = memories if last else (run_memories[run] if run_memories else None)
            golden_memories = (expected.memories if last or rtl_memories is None
                               else expected.run_memories[run])
            self._compare_run(f"run {run + 1}: ", (
                expected.cycles[run], expected.ecc[run], golden_memories),
                (cycles[run], None if ecc is None else ecc[run], rtl_memories))
        return not self.mismatches

    def _compare_run(self, prefix, golden, rtl):
        """Add the mismatches of one run, each starting with ``prefix``: ``golden`` and ``rtl``
        are ``(cycles, ecc, memories)``; an RTL ``ecc`` or ``memories`` of None is not
        compared."""
        (golden_cycles, golden_ecc, golden_memories), (cycles, ecc, memories) = golden, rtl
        if cycles != golden_cycles:
            self.mismatches.append(f"{prefix}cycles: RTL {cycles}, golden {golden_cycles}")
        golden_ecc = tuple(golden_ecc)
        if ecc is not None and tuple(ecc) != golden_ecc:
            self.mismatches.append(f"{prefix}ECC (corrected, detected, first): RTL "
                                   f"{tuple(ecc)}, golden {golden_ecc}")
        if memories is None:
            return
        diff = np.argwhere(golden_memories != memories)
        for mem, word in sorted({(int(m), int(w)) for m, w, _ in diff})[:10]:
            self.mismatches.append(
                f"{prefix}{self.names[mem]}[{word}]: RTL {memories[mem, word].tolist()}, "
                f"golden {golden_memories[mem, word].tolist()}")
