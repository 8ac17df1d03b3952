"""Input checks shared by the power functions: one-line :class:`DataError` messages.

Messages name the argument as the Python API spells it and, where it differs, the command-line
flag, so the same message serves both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mbct_bayes.errors import DataError

# Python name -> command-line flag, for names that differ.
FLAGS = {
    "clusters_per_arm": "--clusters",
    "cluster_size": "--cluster-size",
    "odds_ratio": "--odds-ratio",
    "sigma_b": "--sigma-b",
    "max_clusters": "--max-clusters",
    "max_cluster_size": "--max-cluster-size",
    "chunk_size": "--chunk-size",
    "n_jobs": "--jobs",
}


def label(name: str) -> str:
    """``name`` with its command-line flag when the two differ."""
    flag = FLAGS.get(name)
    return f"{name} ({flag})" if flag else name


def _finite(name: str, value: float | None) -> float:
    # None is a value users pass (an unset setting); it gets the same message float(None) would
    if value is None:
        raise DataError(f"{label(name)} = None is not a number; give a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{label(name)} = {value!r} is not a number; give a number") from None
    if not math.isfinite(number):
        raise DataError(f"{label(name)} = {value!r} is not finite; give a finite number")
    return number


def probability(name: str, value: float) -> float:
    """A probability strictly inside (0, 1)."""
    number = _finite(name, value)
    if not 0.0 < number < 1.0:
        raise DataError(
            f"{label(name)} = {number:g} is outside (0, 1); "
            "give a probability strictly between 0 and 1"
        )
    return number


def icc(value: float, name: str = "icc") -> float:
    """An intracluster correlation in [0, 1)."""
    number = _finite(name, value)
    if not 0.0 <= number < 1.0:
        raise DataError(
            f"{label(name)} = {number:g} is outside [0, 1); give an intracluster correlation with "
            "0 <= icc < 1 (proportion scale unless stated)"
        )
    return number


def cluster_size(value: float | None, name: str = "cluster_size") -> float:
    """A (mean) cluster size of at least 1 (1: one binary outcome per cluster)."""
    number = _finite(name, value)
    if number < 1:
        raise DataError(
            f"{label(name)} = {number:g} is below 1; give the members per cluster, or 1 when the "
            "outcome is one yes/no per cluster (e.g. whether the service embeds MBCT)"
        )
    return number


def per_cluster_outcome(cluster_size: float | None, *, cv: float = 0.0, k: float | None = None) -> None:
    """Refuse settings that mean nothing when each cluster contributes one binary outcome."""
    if cluster_size is None or cluster_size >= 2:
        return
    if cv:
        raise DataError(
            f"cv (--cv) = {cv:g} with cluster_size {cluster_size:g}: clusters of one member cannot "
            "vary in size; set cv to 0 or give a cluster size of at least 2"
        )
    if k:
        raise DataError(
            f"k (--k) = {k:g} with cluster_size {cluster_size:g}: with one outcome per cluster the "
            "between-cluster variation is part of that outcome's own variance; set k to 0"
        )


def clusters(value: float | None, name: str = "clusters_per_arm") -> float:
    """A number of clusters per arm of at least 2."""
    number = _finite(name, value)
    if number < 2:
        raise DataError(
            f"{label(name)} = {number:g} is below 2; the cluster-level analysis needs at least "
            "2 clusters per arm"
        )
    return number


def integer(name: str, value: float | None, minimum: int) -> int:
    """A whole number >= ``minimum``."""
    number = _finite(name, value)
    if number != int(number) or number < minimum:
        raise DataError(f"{label(name)} = {value!r} must be a whole number >= {minimum}")
    return int(number)


def nonnegative(name: str, value: float) -> float:
    """A finite number >= 0."""
    number = _finite(name, value)
    if number < 0:
        raise DataError(f"{label(name)} = {number:g} is negative; give a value >= 0")
    return number


def positive(name: str, value: float) -> float:
    """A finite number > 0."""
    number = _finite(name, value)
    if number <= 0:
        raise DataError(f"{label(name)} = {number:g} must be > 0")
    return number


def alpha(value: float) -> float:
    """A two-sided significance level in (0, 1)."""
    number = _finite("alpha", value)
    if not 0.0 < number < 1.0:
        raise DataError(
            f"alpha = {number:g} is outside (0, 1); give a significance level such as 0.05"
        )
    return number


def target_power(value: float, alpha_: float, name: str = "power") -> float:
    """A target power/assurance in (alpha/2, 1): below alpha/2 any design 'reaches' it."""
    number = _finite(name, value)
    if not alpha_ / 2 < number < 1.0:
        raise DataError(
            f"{label(name)} = {number:g} is outside ({alpha_ / 2:g}, 1); give a target such as 0.8 "
            "(it must exceed alpha/2, the rate of significant results in the effect's direction "
            "under no effect)"
        )
    return number


def choice(name: str, value: str, options: Sequence[str]) -> str:
    """One of ``options``."""
    if value not in options:
        raise DataError(f"{label(name)} = {value!r} is not one of {', '.join(map(repr, options))}")
    return value


def effect(p0: float, p1: float | None, odds_ratio: float | None) -> float | None:
    """``p1`` from ``p1`` or ``odds_ratio`` (applied to the odds of ``p0``); None if neither."""
    if p1 is not None and odds_ratio is not None:
        raise DataError(
            "give p1 (--p1) or odds_ratio (--odds-ratio), not both; the odds ratio sets p1 from p0"
        )
    if odds_ratio is not None:
        ratio = positive("odds_ratio", odds_ratio)
        odds = p0 / (1.0 - p0) * ratio
        return probability("p1 (from odds_ratio)", odds / (1.0 + odds))
    if p1 is not None:
        return probability("p1", p1)
    return None
