"""Sessions on the golden model: one load, then ``runs`` starts in a row, memories carried over.

This is how a program that keeps its state in MEM runs (a decode step that updates its KV cache,
token buffer and position counter itself): the host loads the image once (queues and memories)
and then only writes ``CTRL_START`` and waits for ``done``, ``runs`` times, before it reads the
memories back. Each run starts from what a start leaves (docs/architecture.md section 10, "What
a start keeps"): the SRAMs and the queue memories as the previous run left them, everything else
cleared as after reset (:meth:`opentsp.sim.model.Model.restart`).

The queue memories matter only for a program with ``ifetch`` (section 5b): a run whose fetches
wrap the ring writes over preloaded words, and the next start would then run other
instructions. :func:`run_session` refuses to go on after such a run unless the host reloads the
queues between runs (``reload_queues``, as it can: queue words are host-writable) or the change
is wanted (``allow_queue_changes``, which runs on from the changed queues exactly as the chip
does). Fetched words beyond the preloaded ones stay in the ring too; a program that keeps rule
11 (no word executed before it is fetched) fetches them again before it executes them.

Faults (section 6b) are not modelled in a session: on the chip the injection entries fire again
in every run and an injected flip outlives a start, which the golden model's single-run faults
do not describe.
"""

import operator
from dataclasses import dataclass

from opentsp.sim.model import Model, Result

__all__ = ["SessionError", "SessionResult", "check_runs", "run_session"]


class SessionError(RuntimeError):
    """A session that cannot go on as asked: a run wrote over preloaded queue words, so the next
    start would run other instructions (the message is one line)."""


@dataclass
class SessionResult:
    """Outcome of a session of ``runs`` starts.

    Attributes
    ----------
    config : Config
        The image's configuration.
    cycles : list of int
        Each run's cycle count (``REG_CYCLES`` after it), first run first.
    memories : numpy.ndarray
        The memories after the last run, uint8 ``(memories, mem_words, lanes)`` (memory
        numbering of :func:`opentsp.isa.mem_slices`), as the host reads them back.
    ecc : list of tuple
        Each run's ECC report ``(corrected, detected, first)`` (section 6b; a start clears it).
    run_memories : list of numpy.ndarray or None
        The memories after each run (``keep_memories``), else None.
    overwritten : list of list
        Per run, ``(queue number, slice name, index)`` of the preloaded queue words the ring no
        longer held after it (:meth:`opentsp.sim.model.Model.overwritten_queue_words`).
    reload_queues : bool
        Whether the host reloaded the queues before every start after the first.
    """
    config: object
    cycles: list
    memories: object
    ecc: list
    run_memories: list | None = None
    overwritten: list | None = None
    reload_queues: bool = False

    @property
    def runs(self):
        """The number of runs."""
        return len(self.cycles)

    def result(self, run):
        """Run ``run`` (0-based) as a :class:`~opentsp.sim.model.Result`: its cycles and ECC
        report, and the memories after it (kept for every run with ``keep_memories``, else only
        for the last)."""
        if not 0 <= run < self.runs:
            raise IndexError(f"run must be 0..{self.runs - 1}, not {run!r}")
        if self.run_memories is not None:
            memories = self.run_memories[run]
        elif run == self.runs - 1:
            memories = self.memories
        else:
            raise ValueError(f"run {run}: memories kept for the last run only "
                             f"(keep_memories=False)")
        corrected, detected, first = self.ecc[run]
        return Result(self.config, self.cycles[run], memories, [], corrected, detected, first)


def check_runs(runs):
    """Return ``runs`` if it is an integer of at least 1 (a bool is not), else raise a one-line
    TypeError or ValueError naming it."""
    if isinstance(runs, bool):
        raise TypeError(f"runs must be an integer, not {runs!r}")
    try:
        runs = operator.index(runs)
    except TypeError:
        raise TypeError(f"runs must be an integer, not {runs!r}") from None
    if runs < 1:
        raise ValueError(f"runs must be at least 1, not {runs!r}")
    return runs


def _overwrite_error(run, runs, overwritten):
    number, name, index = overwritten[0]
    more = f" (and {len(overwritten) - 1} more)" if len(overwritten) > 1 else ""
    return SessionError(
        f"run {run} of {runs}: its fetches wrote over preloaded word {index} of queue {number} "
        f"({name}){more}, so the next start would run other instructions; reload the queues "
        f"between runs (reload_queues=True) or allow it (allow_queue_changes=True)")


def run_session(image, runs, *, max_cycles=10_000_000, reload_queues=False,
                allow_queue_changes=False, keep_memories=False):
    """Run ``image`` ``runs`` times in a row on the golden model, as the chip does after one
    load and ``runs`` writes of ``CTRL_START``.

    Parameters
    ----------
    image : opentsp.firmware.image.Image
        The program, loaded once (queues and memories).
    runs : int
        Starts, at least 1.
    max_cycles : int
        Per run: a run that has not finished by then raises
        :class:`~opentsp.sim.model.CycleLimitError`.
    reload_queues : bool
        The host writes every queue's preloaded words again before each start after the
        first (memories are not reloaded).
    allow_queue_changes : bool
        Go on after a run whose fetches wrote over preloaded queue words (without
        ``reload_queues``): the next run executes the ring as that run left it, as the chip
        does. Without it such a session raises :class:`SessionError`.
    keep_memories : bool
        Keep the memories after every run (``SessionResult.run_memories``).

    Returns
    -------
    SessionResult
        Per-run cycles and ECC reports, the final memories.

    Raises
    ------
    TypeError, ValueError
        ``image`` is not an :class:`~opentsp.firmware.image.Image`, ``runs`` not an integer
        of at least 1.
    SessionError
        A run wrote over preloaded queue words and another run follows (neither
        ``reload_queues`` nor ``allow_queue_changes``).
    """
    if not all(hasattr(image, name) for name in ("config", "queues", "data")):
        # duck-typed: the golden model stands below the firmware tools (docs/layers.md)
        raise TypeError(f"image must be an opentsp.firmware.image.Image, not {image!r}")
    runs = check_runs(runs)
    model = Model(image, max_cycles=max_cycles)
    cycles, ecc, run_memories, overwritten = [], [], [], []
    for run in range(1, runs + 1):
        if run > 1:
            model.restart(reload_queues=reload_queues)
        result = model.run()
        cycles.append(result.cycles)
        ecc.append((result.ecc_corrected, result.ecc_detected, result.ecc_first))
        changed = model.overwritten_queue_words()
        overwritten.append(changed)
        if keep_memories:
            run_memories.append(result.memories)
        if changed and run < runs and not (reload_queues or allow_queue_changes):
            raise _overwrite_error(run, runs, changed)
    return SessionResult(image.config, cycles, result.memories, ecc,
                         run_memories if keep_memories else None, overwritten, reload_queues)
