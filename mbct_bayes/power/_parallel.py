"""Run simulation chunks serially, in local processes, or on a Dask distributed cluster.

Chunks are fixed by the number of simulations and the chunk size alone, each with its own
seed, so the result does not depend on how many workers run them or in what order they finish.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TextIO

from mbct_bayes.errors import DataError

# How long to keep trying a scheduler address before giving up.
CONNECT_TIMEOUT = "10s"


class Progress:
    """Line-based progress on stderr: ``label: done/total chunks (pct%)``, at most every 0.5 s."""

    def __init__(
        self,
        label: str,
        total: int,
        enabled: bool = True,
        stream: TextIO | None = None,
        every: float = 0.5,
    ) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream
        self.every = every
        self.done = 0
        self._last = 0.0

    def step(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if self.done == self.total or now - self._last >= self.every:
            self._last = now
            pct = 100.0 * self.done / self.total
            print(
                f"{self.label}: {self.done}/{self.total} chunks ({pct:.0f}%)",
                file=self.stream or sys.stderr,
                flush=True,
            )


def resolve_jobs(n_jobs: int) -> int:
    """``n_jobs`` as a worker count: -1 means every CPU."""
    if n_jobs == -1:
        return os.cpu_count() or 1
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise DataError(
            f"n_jobs (--jobs) = {n_jobs!r} must be a whole number >= 1, or -1 for every CPU"
        )
    return n_jobs


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    *,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: Progress | None = None,
) -> list[Any]:
    """``[fn(t) for t in tasks]``, in task order, run where asked.

    Parameters
    ----------
    fn
        A module-level (picklable) function.
    tasks
        Its arguments.
    n_jobs
        Local worker processes (-1: every CPU); 1 runs in this process.
    scheduler
        A Dask scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``; overrides
        ``n_jobs``. Workers must be able to import ``mbct_bayes``.
    progress
        Stepped once per finished task.
    """
    progress = progress or Progress("", len(tasks), enabled=False)
    if scheduler is not None:
        return _run_dask(fn, tasks, scheduler, progress)
    jobs = min(resolve_jobs(n_jobs), len(tasks))
    if jobs <= 1:
        results = []
        for task in tasks:
            results.append(fn(task))
            progress.step()
        return results
    context = _mp_context()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(fn, task) for task in tasks]
        for _ in as_completed(futures):
            progress.step()
        return [f.result() for f in futures]


def _mp_context() -> multiprocessing.context.BaseContext:
    """fork when this process has one thread (workers start instantly, modules already loaded);
    otherwise forkserver, which is safe with threads, preloading the kernel once."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mbct_bayes.power._kernel"])
    return context


def _run_dask(fn, tasks, scheduler, progress: Progress) -> list[Any]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as err:  # pragma: no cover - distributed is a dependency
        raise DataError(
            "a Dask scheduler needs the 'distributed' package; pip install 'dask[distributed]'"
        ) from err
    own = not isinstance(scheduler, Client)
    if own:
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise DataError(
                f"scheduler (--scheduler) = {scheduler!r} is not a Dask scheduler address; "
                "give one such as tcp://host:8786"
            )
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise DataError(
                f"cannot reach the Dask scheduler at {scheduler} ({type(err).__name__}); "
                "check the address and that the scheduler is running"
            ) from None
    else:
        client = scheduler
    try:
        futures = client.map(fn, list(tasks), pure=False)
        for _ in dask_completed(futures):
            progress.step()
        return client.gather(futures)
    finally:
        if own:
            client.close()
