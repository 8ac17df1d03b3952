"""Exceptions shared by every layer.

Kept in their own module so that the lowest layers (io, spec, schema) can raise them without
importing each other.
"""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data or configuration: says what is wrong, where, and how to fix it."""


class FitFileError(DataError):
    """A saved fit that cannot be trusted (corrupt, foreign, or from an incompatible version)."""


class ConvergenceWarning(UserWarning):
    """A fit that failed the diagnostics gate (R-hat, ESS or divergences)."""
