"""What power calculations return: typed results whose ``to_dict()`` is the CLI's JSON.

* :class:`Curve` — a table of candidate designs and the inputs every row shares (this replaces
  ``DataFrame.attrs["inputs"]``, which pandas drops or merges silently on most operations).
* :class:`PowerResult` — a power (analytic or simulated) with everything it rests on.
* :class:`AssuranceResult` — an assurance with everything it rests on.

A result is also a read-only mapping of its values (``result["p0"]``, ``"icc" in result``,
``result.get("size_note")``), so code written for the dicts these functions returned before keeps
working; :meth:`~PowerResult.updated` replaces ``dict.update``. Inside Python an assurance has one
name, ``assurance``. The JSON of the parallel-arm assurance commands also carries it as ``power``
(the key every power subcommand shares), kept for the users who read it; reading
``result["power"]`` of an assurance in Python still works but warns (deprecated).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import pandas as pd

#: Deprecated keys of the JSON: key -> the field it repeats.
LEGACY_ALIASES = {"power": "assurance"}


@dataclass(frozen=True)
class Curve:
    """Candidate designs, one row each, and the inputs they share.

    Attributes
    ----------
    table
        One row per design (``clusters_per_arm``, ``cluster_size``, the power or assurance with its
        Monte Carlo interval, ...).
    inputs
        The checked inputs and the summaries every row shares (``p0``, ``sigma_b``, ``seed``, ...).
    """

    table: pd.DataFrame
    inputs: Mapping[str, Any]


@dataclass(frozen=True, eq=False, kw_only=True)
class _Result(Mapping[str, Any]):
    """A result's values in the order of its JSON; the headline number is a typed field."""

    #: every value but the headline, by key
    details: Mapping[str, Any]
    #: the JSON's keys in their order (the headline's and any legacy alias's included)
    order: tuple[str, ...]
    #: the designs evaluated on the way (a search's power curve), or None
    curve: pd.DataFrame | None = None

    #: the name of the typed headline field
    headline: ClassVar[str] = ""

    @classmethod
    def from_values(cls, values: Mapping[str, Any], curve: pd.DataFrame | None = None) -> Self:
        """The result holding ``values`` (a mapping in JSON order, as the functions built it)."""
        aliases = [k for k in values if LEGACY_ALIASES.get(k) == cls.headline]
        for alias in aliases:
            if values[alias] != values[cls.headline]:
                raise ValueError(f"legacy key {alias!r} = {values[alias]!r} differs from {cls.headline!r}")
        details = {k: v for k, v in values.items() if k != cls.headline and k not in aliases}
        return cls(**{cls.headline: values[cls.headline]}, details=details, order=tuple(values), curve=curve)

    def _is_alias(self, key: str) -> bool:
        return LEGACY_ALIASES.get(key) == self.headline and key in self.order

    def _value(self, key: str) -> Any:
        return getattr(self, self.headline) if key == self.headline or self._is_alias(key) else self.details[key]

    def __getitem__(self, key: str) -> Any:
        if key == "curve" and self.curve is not None and "curve" not in self.details:
            return self.curve
        if self._is_alias(key):
            warnings.warn(
                f"result[{key!r}] of an assurance is deprecated; read result[{self.headline!r}] (the JSON keeps both)",
                DeprecationWarning,
                stacklevel=2,
            )
        if key != self.headline and key not in self.details and not self._is_alias(key):
            raise KeyError(key)
        return self._value(key)

    def __iter__(self) -> Iterator[str]:
        keys = [k for k in self.order if not self._is_alias(k)]
        return iter([*keys, "curve"] if self.curve is not None else keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: today's keys in today's order (legacy aliases included; a curve as rows)."""
        out = {k: self._value(k) for k in self.order}
        if self.curve is not None:
            out["curve"] = self.curve.to_dict(orient="records")
        return out

    def updated(self, **values: Any) -> Self:
        """A copy with ``values`` set: keys it has keep their place, new keys go last (as ``dict.update``)."""
        merged = {k: self._value(k) for k in self.order}
        merged.update(values)
        for k in self.order:
            if self._is_alias(k):
                merged[k] = merged[self.headline]
        return type(self).from_values(merged, curve=self.curve)

    @property
    def clusters_per_arm(self) -> Any:
        """Clusters per arm (exact when solved for; parallel arms only), or None."""
        return self.details.get("clusters_per_arm")

    @property
    def cluster_size(self) -> Any:
        """Members per cluster (per cluster-period in a stepped wedge), or None."""
        return self.details.get("cluster_size")

    @property
    def size_holds(self) -> bool | None:
        """Whether the analysis holds its size at this design (None when not checked)."""
        return self.details.get("size_holds")


@dataclass(frozen=True, eq=False, kw_only=True)
class PowerResult(_Result):
    """A power and everything it rests on; ``to_dict()`` gives the ``--json`` object.

    Attributes
    ----------
    power
        The power (analytic, or simulated with its Monte Carlo interval in ``power_mc_low`` /
        ``power_mc_high``).
    details, order, curve
        The other values (inputs echoed, design, size check, ...), the JSON key order, and the
        power curve of a search.
    """

    power: float
    headline: ClassVar[str] = "power"


@dataclass(frozen=True, eq=False, kw_only=True)
class AssuranceResult(_Result):
    """An assurance and everything it rests on; ``to_dict()`` gives the ``--json`` object.

    Attributes
    ----------
    assurance
        The share of simulated trials, each under one posterior draw, that succeed (significant
        in the intended direction), with its interval in ``assurance_mc_low``/``_mc_high``.
    details, order, curve
        As :class:`PowerResult`. Where the JSON has always repeated the assurance as ``power``,
        ``order`` holds that key and ``to_dict()`` writes it.
    """

    assurance: float
    headline: ClassVar[str] = "assurance"
