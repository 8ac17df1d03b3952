"""Old module paths from before the package was grouped by capability (0.1), kept as aliases.

``import mbct_bayes.scoring`` still works, with a ``DeprecationWarning`` naming the new home;
the aliases go in 0.3. ``mbct_bayes.fit``, ``mbct_bayes.evaluate`` and ``mbct_bayes.check`` are
not aliased: those names are the package's functions, and an alias module would replace them.
Names that moved between modules (:data:`MOVED_NAMES`) resolve through :func:`moved_name`, also
with a warning; the lookup is by module path at run time, so the old home does not import the new
one (no import cycle).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings

MOVED: dict[str, str] = {
    "mbct_bayes.scoring": "mbct_bayes.survey.scoring",
    "mbct_bayes.reliability": "mbct_bayes.survey.reliability",
    "mbct_bayes.simulate_items": "mbct_bayes.survey.simulate",
    "mbct_bayes.scores": "mbct_bayes.forecast.rules",
    "mbct_bayes.forecasts": "mbct_bayes.forecast.saved",
    "mbct_bayes.convergence": "mbct_bayes.model.convergence",
    "mbct_bayes.sensitivity": "mbct_bayes.model.sensitivity",
    "mbct_bayes.simulate": "mbct_bayes.model.simulate",
    "mbct_bayes.predict": "mbct_bayes.planning.predict",
    "mbct_bayes.measured": "mbct_bayes.planning.measured",
}
#: ``(old module, name) -> new module`` of single names that moved out of a module.
MOVED_NAMES: dict[tuple[str, str], str] = {
    ("mbct_bayes.survey.scoring", name): "mbct_bayes.survey.reliability"
    for name in (
        "cronbach_alpha", "mcdonald_omega", "item_rest_correlations", "icc1_icc2", "reliability",
        "pairwise_cov", "pairwise_corr",
    )
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path to the module at its new home."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} is now {new}; the old path goes in mbct-bayes 0.3", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: types.ModuleType) -> None:  # the new module is already executed
        return None


def install() -> None:
    """Add the alias finder once (at the end, so real modules always win)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())


def moved_name(module: str, name: str) -> object:
    """``module.name`` at its new home (with a ``DeprecationWarning``), for a module ``__getattr__``.

    Raises AttributeError, as a missing attribute does, when ``name`` did not move out of ``module``.
    """
    new = MOVED_NAMES.get((module, name))
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} is now {new}.{name}; the old path goes in mbct-bayes 0.3", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(new), name)
