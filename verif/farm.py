"""Farm work items out to worker processes on this machine or on many, on Dask distributed.

``make regress`` (:mod:`opentsp.verif.regress`) hands its seed batches to a :class:`Farm`: a
Dask cluster that it starts on this machine (:class:`distributed.LocalCluster`, one process per
worker, one thread each) or one already running elsewhere, reached at its scheduler's address::

    dask scheduler --port 8786                       # on one host
    dask worker tcp://HOST:8786 --nworkers 2 --nthreads 1   # on every host, in the project
    python -m opentsp.verif.regress --cluster tcp://HOST:8786 --seeds 100000

Why Dask and not Ray (docs/verification.md, "Regressions"): the work is a few hundred
independent batches, each a minute of a Verilator run in a subprocess, with a few kilobytes of
result; Dask distributed is pure Python (an ordinary PyPI dependency, no native object store or
daemon), starts a two-worker local cluster in about two seconds on a 2-core machine, restarts a
worker that dies (its nanny) and gives its unfinished tasks to another worker, all of which this
workload needs and no more.

Each item runs as :func:`_attempt` on a worker: it reports its start (worker, process) and its
progress as events (``Worker.log_event`` under :data:`TOPIC`), then returns the function's
result with the attempt that made it. :meth:`Farm.run` gathers the results as they come and
returns an :class:`Outcome` per item, in the items' order: its result, or why it has none (an
exception, a task lost with every worker that tried it, a stop), and, for an item that was
started more than once because a worker died under it, which attempts there were.
:func:`run_serial` runs the same items one after another in this process (``--workers 0``).
"""

import logging
import os
import queue
import socket
import time
from dataclasses import dataclass, field

import dask
from distributed import Client, KilledWorker, LocalCluster, get_worker, wait

__all__ = ["TOPIC", "CONNECT_TIMEOUT", "FarmError", "Outcome", "Farm", "run_serial",
           "local_workers", "local_cluster"]

#: The event topic of the attempts' start and progress reports.
TOPIC = "opentsp-farm"
#: Seconds to reach a cluster's scheduler before giving up (:class:`FarmError`).
CONNECT_TIMEOUT = 3.0
#: Seconds between two looks at the events while waiting for results.
_POLL = 0.25


class FarmError(Exception):
    """A cluster that cannot be reached or used: its message is one line for the user."""


@dataclass
class Outcome:
    """What became of one item.

    Attributes
    ----------
    item : object
        The item given to :meth:`Farm.run`.
    key : str
        Its task key.
    state : str
        ``"done"`` (``result`` holds the function's value), ``"error"`` (the function raised:
        ``error`` says what), ``"lost"`` (every worker that ran it died, more often than the
        scheduler allows) or ``"stopped"`` (not run: the caller's ``stop`` held first).
    result : object
        The function's value, if done.
    error : str or None
        One line: why there is no result.
    attempts : list of dict
        The starts of the item, in the order reported: ``{"worker", "pid", "host"}`` each.
    ran_on : dict or None
        The attempt that made the result.
    deaths : int
        How often a worker died while holding the item, running it or with it waiting in its
        queue (the scheduler's count, else the attempts that did not make the result).
    """

    item: object
    key: str
    state: str = "stopped"
    result: object = None
    error: str | None = None
    attempts: list = field(default_factory=list)
    ran_on: dict | None = None
    deaths: int = 0

    @property
    def dead_attempts(self):
        """The attempts that started the item on a worker that died before finishing it."""
        return [attempt for attempt in self.attempts if attempt != self.ran_on]

    @property
    def rerun(self):
        """Whether the item ran again after a worker died while running it."""
        return bool(self.dead_attempts)

    @property
    def reassigned(self):
        """Whether the item waited on a worker that died before starting it (the scheduler
        counts the item among the dead worker's) and went to another: not rerun."""
        return self.deaths > 0 and not self.rerun


def _where():
    """This process as an attempt's place: its worker's address (``"local"`` outside Dask),
    process id and host name."""
    try:
        address = get_worker().address
    except ValueError:
        address = "local"
    return {"worker": address, "pid": os.getpid(), "host": socket.gethostname()}


def _attempt(function, item, key):
    """Run ``function(item, progress)`` on a worker: report the start and every
    ``progress(count)`` as events of :data:`TOPIC`; return ``(attempt, result)``."""
    worker = get_worker()
    where = _where()
    worker.log_event(TOPIC, {"kind": "start", "key": key, **where})

    def progress(count):
        worker.log_event(TOPIC, {"kind": "progress", "key": key, "count": int(count),
                                 "pid": where["pid"]})

    return where, function(item, progress)


def _build_on_worker(prepare, items):
    """``prepare(items)`` on a worker: ``(host name, what it returned)``."""
    return socket.gethostname(), prepare(items)


def _error_line(error):
    """``error`` as one line: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def local_workers():
    """The default number of local workers: the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def local_cluster(workers):
    """A :class:`distributed.LocalCluster` of ``workers`` processes of one thread each on this
    machine, quiet (errors only), its scheduler's HTTP server on a free port (not the
    dashboard's 8787, which another cluster may hold) and without a dashboard."""
    # Scheduler-side queuing as tight as Dask allows (worker-saturation 1.0: for the tasks it
    # counts as root tasks, no more per worker than its threads), so that few batches wait on a
    # busy worker while another idles; a dying worker may still hold a queued batch, which the
    # summary calls reassigned.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                            silence_logs=logging.ERROR)


def run_serial(function, items, keys, *, on_start=None, on_progress=None, on_done=None,
               stop=None):
    """Run ``function(item, progress)`` for every item in turn in this process.

    The callbacks and the result are those of :meth:`Farm.run`; an exception of the function
    becomes the item's ``error``, and once ``stop()`` holds the remaining items are
    ``"stopped"``.
    """
    outcomes = [Outcome(item, key) for item, key in zip(items, keys, strict=True)]
    for outcome in outcomes:
        if stop is not None and stop():
            break
        where = _where()
        outcome.attempts.append(where)
        if on_start is not None:
            on_start(outcome.key, where)

        def progress(count, key=outcome.key):
            if on_progress is not None:
                on_progress(key, count)

        try:
            outcome.result = function(outcome.item, progress)
            outcome.state, outcome.ran_on = "done", where
        except Exception as error:     # the item's failure, reported with it
            outcome.state, outcome.error = "error", _error_line(error)
        if on_done is not None:
            on_done(outcome)
    return outcomes


class Farm:
    """A Dask cluster to run items on, as a context manager.

    Parameters
    ----------
    address : str or None
        A running scheduler (``tcp://host:8786``); None starts a local cluster.
    workers : int or None
        Worker processes of the local cluster (default: :func:`local_workers`); not with
        ``address``.
    timeout : float
        Seconds to reach the scheduler.

    Raises
    ------
    FarmError
        On entering: a scheduler that cannot be reached within ``timeout``, or a bad address.
    """

    def __init__(self, address=None, workers=None, *, timeout=CONNECT_TIMEOUT):
        if address is not None and workers is not None:
            raise FarmError(f"--workers {workers}: a cluster at {address} has its own workers")
        if workers is not None and workers < 1:
            raise FarmError(f"--workers {workers}: a local cluster needs at least one worker")
        self.address = address
        self.workers = local_workers() if address is None and workers is None else workers
        self.timeout = timeout
        self.cluster = self.client = None

    def __enter__(self):
        if self.address is None:
            self.cluster = local_cluster(self.workers)
            self.client = Client(self.cluster)
            return self
        # One try within the timeout: a refused or unroutable address fails at once.
        with dask.config.set({"distributed.comm.timeouts.connect": f"{self.timeout}s"}):
            try:
                self.client = Client(self.address, timeout=self.timeout)
            except Exception as error:  # refused, timed out, a bad address, not a scheduler
                raise FarmError(f"--cluster {self.address}: no Dask scheduler answered within "
                                f"{self.timeout:g} s ({_error_line(error)})") from None
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def describe(self):
        """One line: where the cluster is and how many workers it has now."""
        count = len(self.client.scheduler_info(n_workers=-1)["workers"])
        where = "local cluster" if self.address is None else f"cluster {self.address}"
        return f"{where}, {count} worker{'s' if count != 1 else ''}"

    def prepare(self, function, items):
        """Call ``function(items)`` on every worker now (each host's first worker builds the
        simulation models, the others find them built); returns ``{worker address: (host
        name, function's value)}``.

        Raises
        ------
        FarmError
            A cluster without a worker (none joined within the timeout), or ``function``
            failed on a worker: one line with the worker's error.
        """
        try:
            self.client.wait_for_workers(1, timeout=self.timeout)
        except (TimeoutError, OSError):
            raise FarmError(f"--cluster {self.address}: the scheduler has no worker (start "
                            f"some: dask worker {self.address} --nthreads 1)") from None
        try:
            return self.client.run(_build_on_worker, function, items)
        except Exception as error:     # whatever a worker raised, as one line
            raise FarmError(f"preparing the workers failed: {_error_line(error)}") from None

    def run(self, function, items, keys, *, on_start=None, on_progress=None, on_done=None,
            stop=None):
        """Run ``function(item, progress)`` for every item on the cluster's workers.

        Parameters
        ----------
        function : callable
            Importable on the workers (a module's function); ``progress(count)`` reports how
            much of the item is done.
        items : list
            Picklable work items, submitted first to last (earlier ones first).
        keys : list of str
            One unique task key per item.
        on_start, on_progress, on_done : callable or None
            Called in this process as ``on_start(key, attempt)`` when an attempt starts
            (``attempt``: ``{"worker", "pid", "host"}``), ``on_progress(key, count)`` and
            ``on_done(outcome)`` when an item's outcome is known.
        stop : callable or None
            Looked at after every outcome: once it returns True, items not started yet are
            cancelled (``"stopped"``) and the ones running are waited for.

        Returns
        -------
        list of Outcome
            In the order of ``items``.
        """
        client = self.client
        events = queue.SimpleQueue()
        client.subscribe_topic(TOPIC, events.put)
        outcomes = {key: Outcome(item, key) for item, key in zip(items, keys, strict=True)}
        futures = {client.submit(_attempt, function, item, key, key=key, pure=False,
                                 priority=-index): key
                   for index, (item, key) in enumerate(zip(items, keys, strict=True))}
        pending, finished, stopping = set(futures), [], False
        try:
            while pending:
                try:
                    done = wait(pending, timeout=_POLL, return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    done = set()
                self._drain(events, outcomes, on_start, on_progress)
                for future in done:
                    pending.discard(future)
                    finished.append(future)
                    outcome = outcomes[futures[future]]
                    self._settle(future, outcome)
                    if on_done is not None:
                        on_done(outcome)
                if not stopping and stop is not None and stop():
                    stopping = True
                    idle = [f for f in pending if not outcomes[futures[f]].attempts]
                    client.cancel(idle)
                    pending.difference_update(idle)
                    for future in idle:
                        if on_done is not None:
                            on_done(outcomes[futures[future]])
            time.sleep(_POLL)       # the last events (progress of the last items) arrive
            self._drain(events, outcomes, on_start, on_progress)
            self._count_deaths(outcomes, [futures[f] for f in finished])
        finally:
            client.unsubscribe_topic(TOPIC)
            client.cancel(list(pending))
        return [outcomes[key] for key in keys]

    @staticmethod
    def _drain(events, outcomes, on_start, on_progress):
        """Hand the events received so far to the callbacks (in this thread)."""
        while True:
            try:
                _, message = events.get_nowait()
            except queue.Empty:
                return
            outcome = outcomes.get(message.get("key"))
            if outcome is None:
                continue
            if message["kind"] == "start":
                attempt = {name: message[name] for name in ("worker", "pid", "host")}
                outcome.attempts.append(attempt)
                if on_start is not None:
                    on_start(outcome.key, attempt)
            elif message["kind"] == "progress" and on_progress is not None:
                if outcome.attempts and outcome.attempts[-1]["pid"] == message["pid"]:
                    on_progress(outcome.key, message["count"])

    @staticmethod
    def _settle(future, outcome):
        """Fill ``outcome`` from its finished, failed or cancelled ``future``."""
        if future.status == "finished":
            outcome.ran_on, outcome.result = future.result()
            outcome.state = "done"
            if outcome.ran_on not in outcome.attempts:      # its start event is still coming
                outcome.attempts.append(outcome.ran_on)
            return
        if future.status == "cancelled":
            outcome.state, outcome.error = "stopped", "cancelled"
            return
        error = future.exception()
        if isinstance(error, KilledWorker):
            outcome.state = "lost"
            outcome.error = ("every worker that ran it died (more often than the scheduler's "
                             "distributed.scheduler.allowed-failures)")
        else:
            outcome.state, outcome.error = "error", _error_line(error)

    def _count_deaths(self, outcomes, keys):
        """Set each outcome's ``deaths``: the scheduler's count of workers that died running
        its task, else the attempts that did not make its result."""
        for key in keys:
            outcome = outcomes[key]
            outcome.deaths = sum(1 for a in outcome.attempts if a != outcome.ran_on)
        try:
            counts = self.client.run_on_scheduler(_suspicious, keys=list(keys))
        except Exception:       # a scheduler that refuses to run functions: the events hold
            return
        for key, count in counts.items():
            outcomes[key].deaths = max(outcomes[key].deaths, count)


def _suspicious(keys, dask_scheduler=None):
    """On the scheduler: how often a worker died while running each of ``keys``."""
    tasks = dask_scheduler.tasks
    return {key: tasks[key].suspicious for key in keys if key in tasks}
