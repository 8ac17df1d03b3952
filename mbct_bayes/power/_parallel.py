"""Run simulation chunks where asked: power's names for :mod:`mbct_bayes.runtime`.

Chunks are fixed by the number of simulations and the chunk size alone, each with its own
seed, so the result does not depend on how many workers run them or in what order they finish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TextIO

from mbct_bayes import runtime
from mbct_bayes.runtime import resolve_jobs

__all__ = ["Progress", "resolve_jobs", "run_tasks"]


class Progress(runtime.Progress):
    """:class:`mbct_bayes.runtime.Progress` counting simulation chunks."""

    def __init__(
        self, label: str, total: int, enabled: bool = True, stream: TextIO | None = None, every: float = 0.5
    ) -> None:
        super().__init__(label, total, enabled=enabled, stream=stream, every=every, unit="chunks")


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    *,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: Progress | None = None,
) -> list[Any]:
    """``[fn(t) for t in tasks]`` in task order, serially, on local processes or on Dask; see :func:`mbct_bayes.runtime.run`."""
    return runtime.run(fn, tasks, n_jobs=n_jobs, scheduler=scheduler, progress=progress)
