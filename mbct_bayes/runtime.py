"""One task runner: serially, on threads, on local processes, or on a Dask distributed cluster.

Cross-validation folds (:func:`mbct_bayes.forecast.crossval.evaluate`), power-simulation chunks
(:mod:`mbct_bayes.power`) and the calibration check's refits
(:func:`mbct_bayes.selfcheck.check`) all run through :func:`run`, so they share

* **one start method** for local processes, ``forkserver`` (:data:`START_METHOD`): safe in a
  process that already runs threads (nutpie and numba start them; a forked copy of a threaded
  process can deadlock), and quicker than ``spawn`` because workers fork from a server that has
  imported :data:`PRELOAD` once;
* **one time-out**: connecting to a Dask scheduler gives up after :data:`CONNECT_TIMEOUT` with a
  one-line :class:`~mbct_bayes.errors.DataError`; tasks themselves run to the end;
* **one progress mechanism**: ``progress(result)`` is called in this process as each task
  finishes (in the order they finish); :class:`Progress` turns that into throttled
  ``label: done/total unit (pct%)`` lines, and callers with their own words pass a function;
* **one answer**: results come back in task order. Every task carries its own seed, so the
  same seed gives the same numbers whichever runner ran the tasks, and in whatever order.

Warnings filters set in this process (e.g. "ignore ConvergenceWarning" while folds run) are
copied into local worker processes, so a runner does not change what the user sees.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any, TextIO

from mbct_bayes.errors import DataError

#: How long to keep trying a scheduler address before giving up.
CONNECT_TIMEOUT = "10s"
#: The one start method of local worker processes.
START_METHOD = "forkserver"
#: Modules the fork server imports once, so every worker starts with them loaded (the package,
#: with numpy, pandas, scipy and PyMC; importing them starts no Python threads, and nutpie and numba,
#: which do, are imported by the workers themselves).
PRELOAD = ("mbct_bayes",)
#: ``shared`` not given: tasks run as ``fn(task)``.
NOT_SHARED: Any = object()


# -- progress ----------------------------------------------------------------------------------------
class Progress:
    """Line-based progress on stderr, ``label: done/total unit (pct%)``, at most every ``every`` seconds.

    Pass it as ``progress=`` to :func:`run` (it is called with each finished task's result) or
    call :meth:`step` by hand; the last line is always printed.
    """

    def __init__(
        self,
        label: str,
        total: int,
        enabled: bool = True,
        stream: TextIO | None = None,
        every: float = 0.5,
        unit: str = "tasks",
    ) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream
        self.every = every
        self.unit = unit
        self.done = 0
        self._last = -math.inf  # the first line is always shown

    def __call__(self, result: Any = None) -> None:
        self.step()

    def step(self) -> None:
        """Count one finished task; print a line when ``every`` seconds have passed since the last, or at the end."""
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if self.done == self.total or now - self._last >= self.every:
            self._last = now
            pct = 100.0 * self.done / self.total
            print(
                f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:.0f}%)",
                file=self.stream or sys.stderr,
                flush=True,
            )


def printer(progress: bool | Callable[[str], None]) -> Callable[[str], None]:
    """Where progress lines go: a callable as given, ``True`` stderr, ``False`` nowhere."""
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, file=sys.stderr, flush=True)
    return lambda line: None


# -- where tasks run -----------------------------------------------------------------------------------
def resolve_jobs(n_jobs: int) -> int:
    """``n_jobs`` as a number of local worker processes: -1 means every CPU."""
    if n_jobs == -1:
        return os.cpu_count() or 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise DataError(
            f"n_jobs (--jobs) = {n_jobs!r} must be a whole number >= 1, or -1 for every CPU"
        )
    return n_jobs


def describe(scheduler: Any) -> str:
    """A scheduler's address for messages (a ``distributed.Client`` or an address string)."""
    try:
        return str(scheduler.scheduler.address)
    except AttributeError:
        return str(scheduler)


def where(*, n_jobs: int = 1, threads: int = 1, scheduler: Any = None, n_tasks: int | None = None) -> str:
    """Which runner :func:`run` uses for these settings: ``"dask"``, ``"processes"``, ``"threads"`` or ``"serial"``."""
    if scheduler is not None:
        return "dask"
    many = n_tasks is None or n_tasks > 1
    if resolve_jobs(n_jobs) > 1 and many:
        return "processes"
    if threads > 1 and many:
        return "threads"
    return "serial"


def describe_run(n_tasks: int, noun: str, *, n_jobs: int = 1, threads: int = 1, scheduler: Any = None) -> str:
    """Where :func:`run` runs ``n_tasks`` tasks, in words: ``"10 folds on 2 local processes"``."""
    runner = where(n_jobs=n_jobs, threads=threads, scheduler=scheduler, n_tasks=n_tasks)
    if runner == "dask":
        return f"{n_tasks} {noun} on the Dask cluster {describe(scheduler)}"
    if runner == "processes":
        return f"{n_tasks} {noun} on {min(resolve_jobs(n_jobs), n_tasks)} local processes"
    if runner == "threads":
        return f"{n_tasks} {noun} in this process, {min(threads, n_tasks)} at a time on threads"
    return f"{n_tasks} {noun} in this process, one at a time"


def run(
    fn: Callable[..., Any],
    tasks: Sequence[Any],
    *,
    shared: Any = NOT_SHARED,
    n_jobs: int = 1,
    threads: int = 1,
    scheduler: Any = None,
    progress: Callable[[Any], None] | None = None,
) -> list[Any]:
    """``[fn(task) for task in tasks]`` (or ``fn(shared, task)``), in task order, run where asked.

    Parameters
    ----------
    fn
        A module-level function (processes and Dask pickle it by name).
    tasks
        Its arguments, one per task; small, and each with its own seed.
    shared
        When given, every task runs as ``fn(shared, task)`` and ``shared`` (e.g. the data and
        the model spec) travels once per worker, not once per task: as the process pool's
        initializer argument, or scattered to every Dask worker.
    n_jobs
        Local worker processes (-1: every CPU), started with :data:`START_METHOD`.
    threads
        Threads in this process when ``n_jobs`` is 1 (for work that releases the GIL, like
        nutpie's sampling); 1 runs the tasks one after another.
    scheduler
        A Dask scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``; overrides
        ``n_jobs`` and ``threads``. Workers must be able to import ``mbct_bayes``.
    progress
        Called in this process with each result as its task finishes.

    Returns
    -------
    list
        One result per task, in the order of ``tasks``.

    Raises
    ------
    DataError
        A bad ``n_jobs``, a scheduler that is not an address, or one that cannot be reached
        within :data:`CONNECT_TIMEOUT`. An exception raised by a task is raised here.
    """
    tasks = list(tasks)
    head = () if shared is NOT_SHARED else (shared,)  # the arguments before each task
    report = progress or (lambda result: None)
    runner = where(n_jobs=n_jobs, threads=threads, scheduler=scheduler, n_tasks=len(tasks))
    if runner == "dask":
        return _run_dask(fn, tasks, head, scheduler, report)
    if runner == "processes":
        context = multiprocessing.get_context(START_METHOD)
        context.set_forkserver_preload(list(PRELOAD))
        token = uuid.uuid4().hex
        processes = ProcessPoolExecutor(
            max_workers=min(resolve_jobs(n_jobs), len(tasks)), mp_context=context,
            initializer=_init_worker, initargs=(_picklable_filters(), token, head),
        )
        return _run_pool(processes, lambda task: processes.submit(_call, fn, token, task), tasks, report)
    if runner == "threads":
        pool = ThreadPoolExecutor(max_workers=min(threads, len(tasks)), thread_name_prefix="mbct-task")
        return _run_pool(pool, lambda task: pool.submit(fn, *head, task), tasks, report)
    results = []
    for task in tasks:
        results.append(fn(*head, task))
        report(results[-1])
    return results


def _run_pool(
    pool: Executor, submit: Callable[[Any], Future], tasks: list[Any], report: Callable[[Any], None]
) -> list[Any]:
    with pool:
        futures = {submit(task): i for i, task in enumerate(tasks)}
        results: list[Any] = [None] * len(tasks)
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                report(results[futures[future]])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # a failed task stops the rest
            raise
    return results


# -- local processes ---------------------------------------------------------------------------------
#: In a worker process: the arguments before each task (``()`` or ``(shared,)``), by the run's token.
_HEADS: dict[str, tuple[Any, ...]] = {}


def _picklable_filters() -> list[Any]:
    """This process's warnings filters that can travel to a worker (all but exotic categories)."""
    out = []
    for entry in warnings.filters:
        try:
            pickle.dumps(entry)
        except Exception:  # a filter on a class defined inside a function: left behind
            continue
        out.append(entry)
    return out


def _init_worker(filters: list[Any], token: str, head: tuple[Any, ...]) -> None:
    warnings.filters[:] = filters  # type: ignore[index]  # a list at run time
    _HEADS[token] = head


def _call(fn: Callable[..., Any], token: str, task: Any) -> Any:
    return fn(*_HEADS[token], task)


# -- Dask --------------------------------------------------------------------------------------------
def _connect(scheduler: Any) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``scheduler`` and whether this call opened it (and must close it)."""
    try:
        from distributed import Client  # deferred: Dask is only needed when a scheduler is asked for
    except ImportError as err:  # pragma: no cover - distributed is a dependency
        raise DataError(
            "a Dask scheduler needs the 'distributed' package; pip install 'dask[distributed]'"
        ) from err
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str) or "://" not in scheduler:
        raise DataError(
            f"scheduler (--scheduler) = {scheduler!r} is not a Dask scheduler address; "
            "give one such as tcp://host:8786"
        )
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT), True
    except (OSError, TimeoutError) as err:
        raise DataError(
            f"cannot reach the Dask scheduler at {scheduler} ({type(err).__name__}) within "
            f"{CONNECT_TIMEOUT}; check the address and that 'dask scheduler' is running"
        ) from None


def _run_dask(
    fn: Callable[..., Any], tasks: list[Any], head: tuple[Any, ...], scheduler: Any, report: Callable[[Any], None]
) -> list[Any]:
    from distributed import (
        as_completed as dask_completed,  # deferred: Dask is only needed when a scheduler is asked for
    )

    client, own = _connect(scheduler)
    try:
        # one copy of the shared object per worker, not one per task
        head = tuple(client.scatter(shared, broadcast=True) for shared in head)
        run_id = uuid.uuid4().hex[:8]
        futures = [
            client.submit(fn, *head, task, pure=False, key=f"mbct-{fn.__name__.strip('_')}-{run_id}-{i}")
            for i, task in enumerate(tasks)
        ]
        position = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(tasks)
        for future in dask_completed(futures):
            results[position[future.key]] = future.result()
            report(results[position[future.key]])
        return results
    finally:
        if own:
            client.close()
