"""Exceptions shared by every layer.

Kept in their own module so that the lowest layers (io, spec, schema) can raise them without
importing each other.
"""

from __future__ import annotations

import os


class DataError(ValueError):
    """Bad input data or configuration: says what is wrong, where, and how to fix it."""


class FitFileError(DataError):
    """A saved fit that cannot be trusted (corrupt, foreign, or from an incompatible version)."""


class ConvergenceWarning(UserWarning):
    """A fit that failed the diagnostics gate (R-hat, ESS or divergences)."""


def one_line(err: BaseException | str) -> str:
    """An error's text on one line (runs of whitespace, newlines included, become one space).

    The CLI prints every user-facing error this way: ``mbct-bayes COMMAND: error: <one line>``.
    """
    text = err if isinstance(err, str) else (str(err) or type(err).__name__)
    return " ".join(text.split())


def problem(what: str, *, where: str | os.PathLike[str] | None = None, fix: str | None = None) -> DataError:
    """The :class:`DataError` for a user-facing problem, worded as every message in the package.

    One line ``"<where>: <what>; <fix>"``: where the problem is (a file, a column, an option as
    typed), what is wrong, and how to fix it. Raise the result: ``raise problem(...)``.

    Parameters
    ----------
    what
        What is wrong, e.g. ``"'abc' is not a number"``.
    where
        The file, column or option it is in, e.g. ``"--step 'abc'"`` or a path; left out if None.
    fix
        How to fix it, in the imperative, e.g. ``"give a number of scale points (e.g. 1)"``.

    Examples
    --------
    >>> str(problem("'x' is not a number", where="--step 'x'", fix="give e.g. 1 or 'sd'"))
    "--step 'x': 'x' is not a number; give e.g. 1 or 'sd'"
    """
    text = what if where is None else f"{os.fspath(where)}: {what}"
    return DataError(one_line(text if not fix else f"{text}; {fix}"))
