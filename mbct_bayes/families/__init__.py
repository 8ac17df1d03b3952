"""Outcome families and their registry.

Each family is one module building a :class:`~mbct_bayes.families._base.Family` (the functions
listed there: outcome checks and encoding, PyMC likelihood, numpy log-likelihood, outcome
probabilities, simulation draw, default priors, report words). To add one, write the module and
``register`` its ``FAMILY``; the spec, model, predictions, simulation and report then take it
by name (``family = "<name>"`` in the spec).
"""

from __future__ import annotations

from mbct_bayes.errors import DataError
from mbct_bayes.families import bernoulli, binomial, negbinomial, ordinal, poisson
from mbct_bayes.families._base import Family

__all__ = ["Family", "family_names", "get_family", "register"]

_REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Make ``family`` available by its name (replacing a family of the same name)."""
    if not isinstance(family, Family):
        raise TypeError(f"register takes a Family, got {type(family).__name__}")
    _REGISTRY[family.name] = family
    return family


def family_names() -> tuple[str, ...]:
    """Names of the registered families, in registration order."""
    return tuple(_REGISTRY)


def get_family(name: str) -> Family:
    """The family registered as ``name``; a :class:`DataError` naming the choices otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise DataError(f"family {name!r} is not one of {', '.join(_REGISTRY)}") from None


for _module in (bernoulli, binomial, ordinal, poisson, negbinomial):
    register(_module.FAMILY)
