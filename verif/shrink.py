"""A delta-debugging shrinker for firmware images: remove instructions while a failure persists.

:func:`shrink` is Zeller's ddmin, first over whole queues (a queue left as just ``end``), then
over the image's instructions (every word of every queue but the ``end`` that closes it): it
tries removing chunks of them, halving the chunk size whenever no removal keeps the failure,
until no single queue or instruction can go. A candidate counts only if it
is a program that still makes sense:

* it is a valid image (:meth:`opentsp.firmware.image.Image.validate`);
* every ``sync`` is released (the joint schedule of :func:`opentsp.queue_timing.schedule`);
* with an ``ifetch``, it runs to its end on the golden model within ``max_cycles`` (no fetched
  word that fails to decode, no queue running round its ring for ever; without one, the
  schedule already shows that every queue reaches its ``end``);
* if the original passes the static checker (:func:`opentsp.firmware.checker.check`), the
  candidate does too: a legal failing program shrinks to a legal one.

The failure is a predicate over images, evaluated a batch at a time (``test(images)`` returns
one bool per image) so that a Verilator run can judge a whole round of candidates at once;
:func:`mismatch_test` is the RTL-against-golden-model predicate that
``python -m opentsp.verif.regress --shrink`` uses.
"""

from pathlib import Path

from opentsp import isa, queue_timing
from opentsp.firmware.checker import check
from opentsp.firmware.image import Image, ImageError
from opentsp.sim import icu
from opentsp.sim.model import CycleLimitError, Model, run
from opentsp.verif.runner import run_images

__all__ = ["shrink", "acceptable", "mismatch_test", "one_by_one"]


def _items(image):
    """(queue, index) of every removable instruction: all but a queue's closing ``end``."""
    items = []
    for q, queue in enumerate(image.queues):
        last = len(queue) - 1 if queue and queue[-1].op.mnemonic == "end" else len(queue)
        items += [(q, i) for i in range(last)]
    return items


def _build(image, removable, keep):
    queues = [[instr for i, instr in enumerate(queue)
               if (q, i) in keep or (q, i) not in removable]
              for q, queue in enumerate(image.queues)]
    return Image(image.config, queues, dict(image.data))


def acceptable(image, *, legal=False, max_cycles=100_000):
    """True if ``image`` is a candidate :func:`shrink` may keep (module docstring); ``legal``
    also demands that the static checker finds no error."""

    try:
        image.validate()
    except ImageError:
        return False
    try:
        programs = [list(q) + [queue_timing.Stop()] for q in image.queues]
        schedules = queue_timing.schedule(programs, issues=False)
    except (ValueError, isa.EncodingError):
        return False
    if any(resume is None for s in schedules for _, _, resume in s.syncs):
        return False
    if any(instr.op.mnemonic == "ifetch" for queue in image.queues for instr in queue):
        try:        # fetched words: only a run tells whether they decode and the queue ends
            Model(image, max_cycles=max_cycles).run()
        except (icu.FetchError, CycleLimitError):
            return False
    return not (legal and check(image))


def one_by_one(predicate):
    """A batch test from a predicate over one image."""
    return lambda images: [bool(predicate(image)) for image in images]


def shrink(image, test, *, legal=None, max_cycles=None, log=None):
    """The smallest image ddmin finds for which ``test`` holds.

    Parameters
    ----------
    image : Image
        A program for which ``test([image]) == [True]``.
    test : callable
        ``test(images)`` -> list of bool: does the failure persist in each candidate.
    legal : bool or None
        Keep candidates checker-clean; None: if the original is.
    max_cycles : int or None
        Golden-model cycle limit of a candidate with an ``ifetch`` (one whose fetched words
        went astray may run round its ring for ever); None: twice the original's cycles
        plus 1000.
    log : callable or None
        Called with a line of progress per round.

    Returns
    -------
    Image
        1-minimal: removing any one more instruction loses the failure or the legality.
    """

    if legal is None:
        legal = not check(image)
    if max_cycles is None:
        max_cycles = 2 * run(image).cycles + 1000
    if test([image]) != [True]:
        raise ValueError("shrink needs an image for which the test holds")

    def judge(candidates):
        candidates = [(subset, candidate) for subset, candidate in candidates
                      if acceptable(candidate, legal=legal, max_cycles=max_cycles)]
        verdicts = test([candidate for _, candidate in candidates]) if candidates else []
        return [subset for (subset, _), hit in zip(candidates, verdicts, strict=True) if hit]

    # Whole queues first (a queue left as just `end`): a fetch block, whose words depend on one
    # another, only goes this way; then single instructions.
    end = isa.encode("end")
    busy = [q for q, queue in enumerate(image.queues) if queue != [end]]
    queues = _ddmin(busy, lambda kept: Image(image.config, [
        queue if q in kept else [end] for q, queue in enumerate(image.queues)], image.data),
        judge, "queues", log)
    image = Image(image.config, [queue if q in queues else [end]
                                 for q, queue in enumerate(image.queues)], image.data)
    removable = set(_items(image))
    kept = _ddmin(sorted(removable), lambda kept: _build(image, removable, kept), judge,
                  "instructions", log)
    return _build(image, removable, kept)


def _ddmin(items, build, judge, what, log):
    """Zeller's ddmin over ``items``: the subset it keeps. ``judge`` takes (subset, image)
    pairs and returns the subsets whose images still fail, in order."""
    kept = list(items)
    chunks = 2
    while kept:
        size = -(-len(kept) // chunks)
        parts = [kept[i:i + size] for i in range(0, len(kept), size)]
        # Remove one chunk: keep its complement.
        subsets = [[item for part in parts if part is not drop for item in part]
                   for drop in parts]
        failing = judge([(subset, build(set(subset))) for subset in subsets])
        if log:
            log(f"shrink: {len(kept)} {what}, {len(parts)} chunks, "
                f"{'a smaller one kept' if failing else 'none smaller fails'}")
        if failing:
            kept = failing[0]
            chunks = max(chunks - 1, 2)
        elif size == 1:
            break
        else:
            chunks = min(len(kept), chunks * 2)
    return kept


def mismatch_test(config, directory, *, max_cycles=100_000):
    """The batch test "the RTL in Verilator and the golden model disagree" (an error or a
    mismatch of memories or cycles), for :func:`shrink`; candidates are written to
    ``directory`` as ``shrinkN.bin``."""

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    counter = [0]

    def test(images):
        programs = []
        for image in images:
            path = directory / f"shrink{counter[0]}.bin"
            counter[0] += 1
            image.save(path)
            programs.append((path.stem, path))
        records = run_images(config, programs, max_cycles=max_cycles, log_level="WARNING")
        for _, path in programs:
            path.unlink()
        return [bool(r["error"]) or not r["match"]
                or r["cycles_rtl"] != r["cycles_golden"] for r in records]

    return test
