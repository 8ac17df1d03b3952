"""Convergence diagnostics: rank-normalised split R-hat, bulk and tail ESS, vectorised.

The definitions are Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat", *Bayesian Analysis* 16(2), as implemented by
ArviZ (``arviz_stats``), and the tests hold these kernels to ArviZ's numbers to 1e-10. ArviZ
applies its kernels one scalar parameter at a time through ``xarray.apply_ufunc``; a fit has
tens to hundreds of scalar parameters (one per site), and cross-validation checks every fold,
so here the ranks, normal scores, quantiles and autocovariances are computed for all parameters
in one numpy call each, and only Geyer's short truncation loop runs per parameter.

One deliberate difference from ArviZ 1.x defaults: the tail ESS is the minimum of the ESS of the
5 % and 95 % quantile indicators (Vehtari et al.; Stan and the R package posterior), where
``arviz.ess(method="tail")`` now defaults to its 89 % interval (11 % and 89 %), which is less
strict. Numpy kernels take arrays shaped ``(chain, draw, parameter)``; :func:`convergence`
wraps them for an xarray posterior.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.fft import next_fast_len
from scipy.special import ndtri

#: Quantiles whose indicator ESS makes the tail ESS (Vehtari et al. 2021, section 4.3).
TAIL_PROBS = (0.05, 0.95)


# -- numpy kernels: x has shape (chain, draw, parameter) -------------------------------------------
def split_chains(x: np.ndarray) -> np.ndarray:
    """Split each chain into its first and last halves (the middle draw of an odd count is dropped)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks of each parameter (average ranks for ties, Blom's offset).

    Equals ``ndtri((rank - 3/8) / (n + 1/4))`` with ``scipy.stats.rankdata(method="average")``
    ranks; since average ranks are multiples of 1/2, the normal scores are looked up in a table
    of ``2n`` values instead of evaluated ``n × parameters`` times.
    """
    flat = x.reshape(-1, x.shape[-1])
    n = flat.shape[0]
    twice_rank = _twice_average_rank(flat)
    table = ndtri((np.arange(2 * n + 1) / 2 - 0.375) / (n + 0.25))
    return table[twice_rank].reshape(x.shape)


def _twice_average_rank(flat: np.ndarray) -> np.ndarray:
    """Twice the average rank (1-based) of each value within its column, as integers."""
    n = flat.shape[0]
    order = np.argsort(flat, axis=0)
    ordered = np.take_along_axis(flat, order, axis=0)
    position = np.arange(n)[:, None]
    starts = np.ones(ordered.shape, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    if starts.all():
        twice = np.broadcast_to(2 * position + 2, ordered.shape)
    else:  # ties share the mean of their 1-based positions: (first + last + 2) / 2
        first = np.maximum.accumulate(np.where(starts, position, 0), axis=0)
        ends = np.ones(ordered.shape, dtype=bool)
        ends[:-1] = starts[1:]
        last = np.minimum.accumulate(np.where(ends, position, n)[::-1], axis=0)[::-1]
        twice = first + last + 2
    out = np.empty(ordered.shape, dtype=np.intp)
    np.put_along_axis(out, order, twice, axis=0)
    return out


def _split_rhat(x: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), axis=0, ddof=1)
    within = np.var(x, axis=1, ddof=1).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def rhat(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat per parameter: the larger of the bulk and folded R-hat.

    ``x`` is shaped ``(chain, draw, parameter)``; NaN where a draw is NaN or there are fewer than
    2 chains or 4 draws. See :func:`diagnose` to compute it with the ESS in one pass.
    """
    return diagnose(x, ("r_hat",))["r_hat"]


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """Bulk effective sample size per parameter: ESS of the rank-normalised split chains.

    ``x`` is shaped ``(chain, draw, parameter)``; NaN where a draw is NaN or there are fewer than
    4 draws.
    """
    return diagnose(x, ("ess_bulk",))["ess_bulk"]


def ess_tail(x: np.ndarray, probs: tuple[float, float] = TAIL_PROBS) -> np.ndarray:
    """Tail effective sample size per parameter: the smaller ESS of the indicators ``x ≤ q(p)``.

    ``x`` is shaped ``(chain, draw, parameter)``, ``probs`` the two quantiles (5 % and 95 %).
    """
    return diagnose(x, ("ess_tail",), probs=probs)["ess_tail"]


def diagnose(
    x: np.ndarray,
    which: Iterable[str] = ("r_hat", "ess_bulk", "ess_tail"),
    *,
    probs: tuple[float, float] = TAIL_PROBS,
) -> dict[str, np.ndarray]:
    """R-hat and bulk and tail ESS of every parameter, sharing the split chains and normal scores.

    Parameters
    ----------
    x
        Draws shaped ``(chain, draw, parameter)``.
    which
        Any of ``"r_hat"``, ``"ess_bulk"``, ``"ess_tail"``.
    probs
        Quantiles for the tail ESS.

    Returns
    -------
    dict
        ``{name: array of one value per parameter}`` for each name in ``which``.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"draws must be shaped (chain, draw, parameter), got shape {x.shape}")
    which = tuple(which)
    unknown = set(which) - {"r_hat", "ess_bulk", "ess_tail"}
    if unknown:
        raise ValueError(f"unknown diagnostic(s) {sorted(unknown)}; use r_hat, ess_bulk, ess_tail")
    out = {name: np.full(x.shape[-1], np.nan) for name in which}
    has_nan = np.isnan(x).any(axis=(0, 1))
    enough_draws = x.shape[1] >= 4
    ess_ok = ~has_nan & enough_draws
    rhat_ok = ess_ok & (x.shape[0] >= 2)
    split = split_chains(x)
    z_bulk = None
    if "r_hat" in which and rhat_ok.any():
        kept = split[..., rhat_ok]
        z_bulk = z_scale(kept)
        folded = np.abs(kept - np.median(kept.reshape(-1, kept.shape[-1]), axis=0))
        out["r_hat"][rhat_ok] = np.maximum(_split_rhat(z_bulk), _split_rhat(z_scale(folded)))
    if "ess_bulk" in which and ess_ok.any():
        if z_bulk is None or not np.array_equal(rhat_ok, ess_ok):
            z_bulk = z_scale(split[..., ess_ok])
        out["ess_bulk"][ess_ok] = _ess(z_bulk)
    if "ess_tail" in which and ess_ok.any():
        kept = x[..., ess_ok]
        quantiles = np.quantile(kept.reshape(-1, kept.shape[-1]), probs, axis=0)
        out["ess_tail"][ess_ok] = np.minimum(
            *(_ess(split_chains((kept <= q).astype(float))) for q in quantiles)
        )
    return out


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each chain at every lag, by FFT: shape (chain, draw, parameter)."""
    n = x.shape[1]
    m = next_fast_len(2 * n)
    centred = x - x.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=m, axis=1)
    spectrum *= np.conjugate(spectrum)
    return np.fft.irfft(spectrum, n=m, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of each parameter's (split) chains, Geyer's initial monotone sequence estimator."""
    n_chain, n_draw, n_par = x.shape
    constant = (x.max(axis=(0, 1)) - x.min(axis=(0, 1))) < np.finfo(float).resolution
    acov = _autocov(x).mean(axis=0)  # (lag, parameter), averaged over chains
    mean_var = acov[0] * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + np.var(x.mean(axis=1), axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var - acov) / var_plus  # (lag, parameter)
    out = np.empty(n_par)
    total = n_chain * n_draw
    for j in range(n_par):
        out[j] = total if constant[j] else _geyer_ess(rho[:, j], total)
    return out


def _geyer_ess(rho: np.ndarray, total: int) -> float:
    """ESS from one parameter's autocorrelations (ArviZ's ``_ess`` truncation, step for step)."""
    n_draw = rho.shape[0]
    if np.isnan(rho[1]):
        return np.nan
    # the sums below only reach the first negative pair, so read that far lazily
    rho_t = np.zeros(n_draw)
    rho_t[0] = 1.0
    even, odd = 1.0, float(rho[1])
    rho_t[1] = odd
    t = 1
    while t < n_draw - 3 and even + odd > 0.0:
        even, odd = float(rho[t + 1]), float(rho[t + 2])
        if even + odd >= 0:
            rho_t[t + 1] = even
            rho_t[t + 2] = odd
        t += 2
    max_t = t - 2
    if even > 0:
        rho_t[max_t + 1] = even
    t = 1
    while t <= max_t - 2:  # initial monotone sequence
        if rho_t[t + 1] + rho_t[t + 2] > rho_t[t - 1] + rho_t[t]:
            rho_t[t + 1] = (rho_t[t - 1] + rho_t[t]) / 2.0
            rho_t[t + 2] = rho_t[t + 1]
        t += 2
    tau = -1.0 + 2.0 * rho_t[: max_t + 1].sum() + rho_t[max_t + 1 : max_t + 2].sum()
    tau = max(tau, 1 / np.log10(total))
    if np.isnan(rho_t).any():
        return np.nan
    return total / tau


# -- xarray wrapper -------------------------------------------------------------------------------
def convergence(posterior, var_names: Iterable[str]) -> dict[str, dict[str, np.ndarray]]:
    """R-hat, bulk ESS and tail ESS of each variable of an xarray posterior, in one pass.

    Parameters
    ----------
    posterior
        ``xarray.Dataset`` (or DataTree node) with ``chain`` and ``draw`` as its first dims.
    var_names
        Variables to check.

    Returns
    -------
    dict
        ``{name: {"r_hat": array, "ess_bulk": array, "ess_tail": array}}``, each array shaped
        like the variable without its chain and draw dims.
    """
    names = list(var_names)
    blocks, shapes = [], []
    for name in names:
        da = posterior[name].transpose("chain", "draw", ...)
        values = np.asarray(da.values, dtype=float)
        shapes.append(values.shape[2:])
        blocks.append(values.reshape(values.shape[0], values.shape[1], -1))
    if not blocks:
        return {}
    columns = diagnose(np.concatenate(blocks, axis=2))
    out, start = {}, 0
    for name, shape in zip(names, shapes, strict=True):
        size = int(np.prod(shape, dtype=int))
        out[name] = {key: col[start : start + size].reshape(shape) for key, col in columns.items()}
        start += size
    return out
