"""Atomic file output and output-path checks.

Every file the package writes goes through here: written to a temporary file in the target
folder, then renamed over the target, so a failure never leaves a half-written file and never
clobbers an existing one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` can be written, before any long work starts.

    Parameters
    ----------
    path
        The file to be written. It may exist (it is replaced atomically on success).

    Returns
    -------
    Path
        The path as a :class:`~pathlib.Path`.

    Raises
    ------
    DataError
        When the path is a directory, its folder is missing, or the folder is not writable.
    """
    target = Path(path)
    if target.is_dir():
        raise DataError(f"{target}: output path is a directory; give a file name such as {target / 'out.csv'}")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise DataError(f"{target}: output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"{target}: output folder {folder} is not writable; choose another --out")
    if target.exists() and not os.access(target, os.W_OK):
        raise DataError(f"{target}: output file exists and is read-only; remove it or choose another --out")
    return target


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """Check that an output folder can be used (or created), without creating anything yet.

    A failed run must leave no trace, so the folder is only made when results are written.

    Raises
    ------
    DataError
        When the path is an existing file, or its nearest existing ancestor is not a writable
        folder.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: exists and is a file, not a folder; give --out a folder name (it is created if missing)")
    ancestor = folder
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DataError(f"{folder}: cannot create the output folder, {ancestor} is a file; choose another --out")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DataError(f"{folder}: output folder {ancestor} is not writable; choose another --out")
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = check_output_path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; give the file the permissions a plain open() would have
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write an object as indented JSON atomically (NaN becomes null)."""
    return write_text(path, dumps_json(obj) + "\n")


def write_table(path: str | os.PathLike[str], table: pd.DataFrame) -> Path:
    """Write a DataFrame atomically: Parquet for ``.parquet``/``.pq``, CSV otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return write_atomic(path, lambda tmp: table.to_parquet(tmp, index=False))
    return write_atomic(path, lambda tmp: table.to_csv(tmp, index=False))


def _jsonable(obj: Any) -> Any:
    """Turn numpy scalars, NaN and tuples into plain JSON values."""


    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return None if math.isnan(value) or math.isinf(value) else value
    if obj is pd.NA or obj is None:
        return None
    return obj


def dumps_json(obj: Any) -> str:
    """Serialise to strict JSON (no NaN), with numpy types converted."""
    return json.dumps(_jsonable(obj), indent=2, allow_nan=False)
