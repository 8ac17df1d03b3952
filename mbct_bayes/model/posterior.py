"""The posterior as plain arrays: the typed boundary between a fit and the computations on it.

A :class:`Posterior` holds what every prediction, planning, power and report computation needs
from a fit and nothing more: the spec, the model's data (design matrix, site and region indices,
outcome) and the posterior draws with chains stacked, each array's dimensions named. It is built
once from the fit's InferenceData (:meth:`Posterior.from_idata`; :attr:`mbct_bayes.model.fit.Fit.posterior`)
and is read-only: the dataclass is frozen and its arrays are not writeable, so no computation can
change the draws another one sees.

Computations take the arrays they need (numpy kernels over a leading ``sample`` axis);
:meth:`Posterior.to_dataset` is the thin wrapper that attaches the names and coordinates again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from mbct_bayes.model.build import ModelData
from mbct_bayes.spec import ModelSpec

if TYPE_CHECKING:  # model.fit builds its Posterior from this module
    from mbct_bayes.model.fit import Fit

#: Name of the leading axis of every draw array: chains stacked, ``chain * n_draws + draw``.
SAMPLE_DIM = "sample"


def stacked_draws(posterior: Any) -> dict[str, np.ndarray]:
    """Each variable of a posterior group (chain, draw, ...) as a numpy array (chains * draws, ...)."""
    out = {}
    for name in posterior.data_vars:
        values = np.asarray(posterior[name].transpose("chain", "draw", ...).values)
        out[str(name)] = values.reshape((-1, *values.shape[2:]))
    return out


def as_posterior(source: Posterior | Fit) -> Posterior:
    """``source`` itself, or a fit's :attr:`~mbct_bayes.model.fit.Fit.posterior` (for entry points
    that accept either)."""
    return source if isinstance(source, Posterior) else source.posterior


def _read_only(values: np.ndarray) -> np.ndarray:
    values = np.array(values, copy=True)
    values.flags.writeable = False
    return values


@dataclass(frozen=True)
class Posterior:
    """Posterior draws of one fit, with the spec and the data they were drawn for.

    Attributes
    ----------
    spec
        The model specification.
    model_data
        The arrays the model was fitted to: ``X`` (centred design matrix), ``y``, ``trials``,
        ``site_idx``, ``region_idx``, the site/region labels (:class:`~mbct_bayes.model.build.ModelData`).
    draws
        ``{variable: array}`` with chains stacked, shape ``(S, ...)``; read-only.
    dims
        ``{variable: dimension names}``, the first always :data:`SAMPLE_DIM`.
    coords
        ``{dimension: labels}`` for the named dimensions that have labels (``site``,
        ``region``, ``predictor``, ...).
    """

    spec: ModelSpec
    model_data: ModelData
    draws: Mapping[str, np.ndarray]
    dims: Mapping[str, tuple[str, ...]]
    coords: Mapping[str, tuple[Any, ...]]

    @classmethod
    def from_idata(cls, spec: ModelSpec, model_data: ModelData, idata: Any) -> Posterior:
        """Build from an InferenceData/DataTree with a ``posterior`` group (chain, draw, ...)."""
        group = idata["posterior"]
        draws = {name: _read_only(values) for name, values in stacked_draws(group).items()}
        dims = {
            name: (SAMPLE_DIM, *(str(d) for d in group[name].dims if d not in ("chain", "draw")))
            for name in draws
        }
        named = {d for var_dims in dims.values() for d in var_dims[1:]}
        coords = {
            str(d): tuple(np.asarray(group[d].values).tolist())
            for d in group.coords if str(d) in named
        }
        return cls(spec=spec, model_data=model_data, draws=draws, dims=dims, coords=coords)

    @classmethod
    def from_draws(
        cls,
        spec: ModelSpec,
        model_data: ModelData,
        draws: Mapping[str, np.ndarray],
        dims: Mapping[str, tuple[str, ...]] | None = None,
        coords: Mapping[str, tuple[Any, ...]] | None = None,
    ) -> Posterior:
        """Build from stacked draws ``{name: (S, ...)}`` (e.g. chosen draws in a test).

        Dimensions not named in ``dims`` are called ``<name>_dim_<k>`` (xarray's default).
        """
        arrays = {name: _read_only(np.asarray(values)) for name, values in draws.items()}
        named = dict(dims or {})
        all_dims = {
            name: named.get(name, (SAMPLE_DIM, *(f"{name}_dim_{k}" for k in range(values.ndim - 1))))
            for name, values in arrays.items()
        }
        return cls(spec=spec, model_data=model_data, draws=arrays, dims=all_dims, coords=dict(coords or {}))

    @property
    def n_draws(self) -> int:
        """Number of posterior draws S (all chains)."""
        return int(next(iter(self.draws.values())).shape[0])

    def thinned(self, keep: np.ndarray) -> Posterior:
        """The same posterior with only the draws at positions ``keep`` (spec and data shared)."""
        keep = np.asarray(keep)
        draws = {name: _read_only(values[keep]) for name, values in self.draws.items()}
        return Posterior(spec=self.spec, model_data=self.model_data, draws=draws, dims=self.dims, coords=self.coords)

    def to_dataset(self) -> xr.Dataset:
        """The draws as an ``xarray.Dataset`` with their dimension names and coordinates."""
        variables = {name: (self.dims[name], np.asarray(values)) for name, values in self.draws.items()}
        return xr.Dataset(variables, coords={d: list(v) for d, v in self.coords.items()})
