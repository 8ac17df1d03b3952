"""Item-level survey responses with known truth: sites -> respondents -> subscales -> items.

The generating model, for respondent r (role g) at site s, construct c, subscale b and item i::

    theta_rc = T_sc + offset_gc + e_rc                e_rc ~ Normal(0, sd_respondent_c)
    eta_rb   = theta_rc + v_rb                        v_rb ~ Normal(0, sd_subscale)
    y*_ri    = eta_rb + d_i + u_ri                    u_ri ~ Normal(0, sd_item)
    y_ri     = clip(round(y*_ri), min_i, max_i)       Likert discretisation
    x_ri     = min_i + max_i - y_ri  if item i is reverse-keyed, else y_ri

``T_sc`` is the true site value (the ``site_table`` you pass, on the items' scale), ``d_i`` a small
item intercept that sums to zero within each subscale (so subscale means stay unbiased), and
``sd_respondent_c`` is solved so that the ICC(1) of the respondents' **scored** scale is about
the requested value: the between-site variance of ``T_c`` over the total variance of a
respondent's scale score (respondent, role, subscale, item and rounding noise, the last two
shrunk by averaging over the items). Clipping at the scale ends makes the realised ICC a little
lower when site values sit near the ends.

Items a role is not asked (codebook ``roles``) are blank by design; every asked item is left
blank with probability ``missing_rate`` (non-response, completely at random).

The true site values are the ``site_table`` itself; :func:`simulate_responses` also stores them,
with every generating parameter, in ``responses.attrs["truth"]``, and :func:`simulate_survey`
returns ``(responses, site_table)`` after drawing the site table with
:func:`simulate_site_table`.
All draws come from one ``np.random.default_rng(seed)``: the same seed gives the same table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError
from mbct_bayes.survey.scoring import CONSTRUCTS, KNOWN_ROLES, _as_codebook, asked_mask, normalise_role, read_codebook

#: Share of respondents per role, loosely after the UK study's interviewees (teachers and
#: managers most often, then referrers, commissioners and service users).
DEFAULT_ROLE_WEIGHTS: dict[str, float] = {
    "mbct_teacher": 0.35,
    "manager": 0.25,
    "commissioner": 0.10,
    "referrer": 0.15,
    "service_user": 0.15,
}
SD_SUBSCALE = 0.25
SD_ITEM = 0.8
SD_ITEM_INTERCEPT = 0.15
ROUNDING_VAR = 1.0 / 12.0  # variance of rounding to the nearest integer


def simulate_site_table(
    n_sites: int = 40,
    *,
    mean: float | Mapping[str, float] = 3.0,
    sd: float | Mapping[str, float] = 0.3,
    corr: float = 0.4,
    scale: tuple[float, float] = (1.0, 5.0),
    seed: int | None = 1,
    site_prefix: str = "S",
) -> pd.DataFrame:
    """Draw true site values of E, C, F (multivariate normal, clipped to the scale).

    Parameters
    ----------
    n_sites
        Number of sites (>= 1); ids are ``prefix`` + zero-padded number (``S01`` ... ``S40``).
    mean, sd
        Population mean and SD of each construct (one number, or a dict by construct).
    corr
        Correlation between every pair of constructs (the framework expects E, C, F to go
        together).
    scale
        Values are clipped to this range.
    seed
        Seed of ``np.random.default_rng``.

    Returns
    -------
    DataFrame
        ``site, E, C, F``.
    """
    if int(n_sites) < 1:
        raise DataError(f"n_sites must be at least 1, got {n_sites}")
    if not -0.5 < float(corr) < 1.0:
        raise DataError(f"corr must be in (-0.5, 1) so the correlation matrix is valid, got {corr}")
    mu = np.array([_per_construct(mean, c, "mean") for c in CONSTRUCTS])
    sds = np.array([_per_construct(sd, c, "sd") for c in CONSTRUCTS])
    if np.any(sds < 0):
        raise DataError(f"sd must be >= 0, got {sd}")
    r = np.full((3, 3), float(corr))
    np.fill_diagonal(r, 1.0)
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(mu, np.outer(sds, sds) * r, size=int(n_sites))
    draws = np.clip(draws, scale[0], scale[1])
    width = max(2, len(str(int(n_sites))))
    table = pd.DataFrame(draws, columns=list(CONSTRUCTS))
    table.insert(0, "site", [f"{site_prefix}{i + 1:0{width}d}" for i in range(int(n_sites))])
    return table


def _per_construct(value: float | Mapping[str, float], construct: str, name: str) -> float:
    if isinstance(value, Mapping):
        if construct not in value:
            raise DataError(f"{name} has no value for construct {construct}; give E, C and F")
        return float(value[construct])
    return float(value)


def simulate_responses(
    site_table: pd.DataFrame,
    codebook: pd.DataFrame,
    *,
    respondents_per_site: int | tuple[int, int] = 3,
    icc1: float | Mapping[str, float] = 0.1,
    role_offsets: Mapping[str, float | Mapping[str, float]] | None = None,
    role_weights: Mapping[str, float] | None = None,
    missing_rate: float = 0.05,
    seed: int | None = 1,
) -> pd.DataFrame:
    """Simulate item responses for the sites in ``site_table``.

    Parameters
    ----------
    site_table
        ``site, E, C, F``: the true site values on the items' scale (e.g. from
        :func:`simulate_site_table`). Needs two or more sites whose values differ, because the
        within-site noise is set from the between-site variance.
    codebook
        As returned by :func:`~mbct_bayes.survey.scoring.read_codebook`.
    respondents_per_site
        A number, or an inclusive range ``(low, high)`` drawn uniformly per site.
    icc1
        Target ICC(1) of the respondents' scale scores (one number or a dict by construct),
        in (0, 1). About 0.1 is typical of organisational climate surveys.
    role_offsets
        Systematic shift of a role's answers, on the scale: ``{"manager": 0.3}`` (every
        construct) or ``{"manager": {"F": 0.4}}``. Default none.
    role_weights
        Probability of each role (normalised); default :data:`DEFAULT_ROLE_WEIGHTS`.
    missing_rate
        Probability that an asked item is left blank (non-response), in [0, 1).
    seed
        Seed of ``np.random.default_rng``.

    Returns
    -------
    DataFrame
        ``site, respondent, role`` and one column per codebook item (float; NaN = blank).
        ``attrs["truth"]`` holds the site values, the per-construct respondent SD
        (``sd_respondent``) and the SD of a respondent's scale score around its site value plus
        role offset (``sd_measurement``; before rounding and clipping to the item range, which
        shrink the realised SD by some 5-10% at the default settings), the role offsets and
        weights, the noise SDs, the item intercepts and the seed.
    """
    codebook = _as_codebook(codebook)
    sites, truth_values = _check_site_table(site_table)
    n_range = _check_n_range(respondents_per_site)
    if not 0.0 <= float(missing_rate) < 1.0:
        raise DataError(f"missing_rate must be in [0, 1), got {missing_rate}")
    weights = _role_weights(role_weights)
    offsets = _role_offsets(role_offsets)
    targets = {c: _per_construct(icc1, c, "icc1") for c in CONSTRUCTS}
    for c, v in targets.items():
        if not 0.0 < v < 1.0:
            raise DataError(f"icc1 for {c} must be in (0, 1), got {v}")

    rng = np.random.default_rng(seed)
    n_sites = len(sites)
    counts = rng.integers(n_range[0], n_range[1] + 1, size=n_sites)
    site_idx = np.repeat(np.arange(n_sites), counts)
    n = len(site_idx)
    role_names = list(weights)
    roles = np.asarray(role_names, dtype=object)[
        rng.choice(len(role_names), size=n, p=np.array(list(weights.values())))
    ]
    respondent = np.concatenate([np.arange(1, k + 1) for k in counts]) if n else np.zeros(0, int)

    items = codebook["item"].tolist()
    subs = list(dict.fromkeys(zip(codebook["construct"], codebook["subscale"], strict=True)))
    sub_of_item = np.array(
        [subs.index(k) for k in zip(codebook["construct"], codebook["subscale"], strict=True)]
    )
    lo = codebook["min"].to_numpy(float)
    hi = codebook["max"].to_numpy(float)

    # item intercepts, centred within each subscale so they do not move subscale means
    d = rng.normal(0.0, SD_ITEM_INTERCEPT, size=len(items))
    for b in range(len(subs)):
        members = sub_of_item == b
        d[members] -= d[members].mean()

    parts = {
        c: _within_parts(c, targets[c], truth_values[:, CONSTRUCTS.index(c)], codebook, weights,
                         offsets)
        for c in CONSTRUCTS
    }
    sd_resp = {c: float(np.sqrt(parts[c][0])) for c in CONSTRUCTS}
    # SD of a respondent's scale score around site value + role offset (before clipping): what
    # a measurement model with role offsets should recover as its measurement SD
    sd_measure = {c: float(np.sqrt(parts[c][0] + parts[c][1])) for c in CONSTRUCTS}
    offset_mat = np.array([[offsets.get(g, {}).get(c, 0.0) for c in CONSTRUCTS] for g in roles])
    offset_mat = offset_mat.reshape(n, 3)
    e = rng.normal(size=(n, 3)) * np.array([sd_resp[c] for c in CONSTRUCTS])
    theta = truth_values[site_idx] + offset_mat + e  # (n, 3)
    subscale_noise = rng.normal(0.0, SD_SUBSCALE, size=(n, len(subs)))
    sub_construct = np.array([CONSTRUCTS.index(c) for c, _ in subs])
    eta = theta[:, sub_construct] + subscale_noise  # (n, n_subscales)
    y_star = eta[:, sub_of_item] + d + rng.normal(0.0, SD_ITEM, size=(n, len(items)))
    y = np.clip(np.rint(y_star), lo, hi)
    rev = codebook["reverse"].to_numpy(bool)
    x = np.where(rev, lo + hi - y, y)

    asked = asked_mask(roles, codebook)
    blank = rng.random(size=x.shape) < float(missing_rate)
    x = np.where(asked & ~blank, x, np.nan)

    site_ids = np.asarray(sites, dtype=object)[site_idx]
    width = max(2, len(str(int(n_range[1]))))
    out = pd.DataFrame(
        {
            "site": site_ids,
            "respondent": [
                f"{s}-R{k:0{width}d}" for s, k in zip(site_ids, respondent, strict=True)
            ],
            "role": roles,
        }
    )
    out = pd.concat([out, pd.DataFrame(x, columns=items)], axis=1)
    out.attrs["truth"] = {
        "sites": {s: dict(zip(CONSTRUCTS, map(float, row), strict=True))
                  for s, row in zip(sites, truth_values, strict=True)},
        "icc1": targets,
        "sd_respondent": sd_resp,
        "sd_measurement": sd_measure,
        "sd_subscale": SD_SUBSCALE,
        "sd_item": SD_ITEM,
        "item_intercepts": dict(zip(items, map(float, d), strict=True)),
        "role_offsets": offsets,
        "role_weights": weights,
        "respondents_per_site": list(n_range),
        "missing_rate": float(missing_rate),
        "seed": seed,
    }
    return out


def simulate_survey(
    n_sites: int = 40,
    codebook: pd.DataFrame | None = None,
    *,
    seed: int | None = 1,
    site_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw true site values, then item responses: returns ``(responses, site_table)``.

    ``codebook`` defaults to the shipped ORCA-style MBCT codebook; ``site_kwargs`` go to
    :func:`simulate_site_table`, the other keywords to :func:`simulate_responses`. Both use
    ``seed`` (the site table draws from ``seed``, the responses from ``seed + 1``).
    """
    if codebook is None:
        codebook = default_codebook()
    table = simulate_site_table(n_sites, seed=seed, **dict(site_kwargs or {}))
    resp_seed = None if seed is None else int(seed) + 1
    return simulate_responses(table, codebook, seed=resp_seed, **kwargs), table


def default_codebook() -> pd.DataFrame:
    """The ORCA-style MBCT codebook shipped in ``data/codebook_orca_mbct.csv``."""


    path = Path(__file__).resolve().parents[2] / "data" / "codebook_orca_mbct.csv"
    if not path.is_file():
        raise DataError(f"{path}: shipped codebook not found; pass a codebook explicitly")
    return read_codebook(path)


# --------------------------------------------------------------------------------------------


def _check_site_table(site_table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    if not isinstance(site_table, pd.DataFrame):
        raise DataError(f"site_table must be a DataFrame, got {type(site_table).__name__}")
    missing = [c for c in ("site", *CONSTRUCTS) if c not in site_table.columns]
    if missing:
        raise DataError(f"site_table: missing column(s) {', '.join(missing)}; give site, E, C, F "
                        "(true site values), e.g. from simulate_site_table()")
    sites = site_table["site"].astype(str).tolist()
    if len(set(sites)) != len(sites):
        raise DataError("site_table: column 'site' has duplicate sites; give one row per site")
    values = site_table[list(CONSTRUCTS)].to_numpy(dtype=float, na_value=np.nan)
    if not np.all(np.isfinite(values)):
        raise DataError("site_table: E, C, F must be finite numbers for every site")
    return sites, values


def _check_n_range(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int | np.integer):
        low = high = int(value)
    else:
        try:
            low, high = (int(v) for v in value)
        except (TypeError, ValueError):
            raise DataError(
                f"respondents_per_site must be a number or a (low, high) pair, got {value!r}"
            ) from None
    if low < 1 or high < low:
        raise DataError(f"respondents_per_site must be >= 1 with low <= high, got {value!r}")
    return low, high


def _role_weights(role_weights: Mapping[str, float] | None) -> dict[str, float]:
    raw = dict(DEFAULT_ROLE_WEIGHTS if role_weights is None else role_weights)
    weights = {normalise_role(k): float(v) for k, v in raw.items()}
    unknown = [k for k in weights if k not in KNOWN_ROLES]
    if unknown:
        raise DataError(f"role_weights: unknown role {', '.join(unknown)}; use "
                        f"{', '.join(KNOWN_ROLES)}")
    total = sum(weights.values())
    if any(v < 0 for v in weights.values()) or total <= 0:
        raise DataError("role_weights must be >= 0 and not all zero")
    return {k: v / total for k, v in weights.items() if v > 0}


def _role_offsets(
    role_offsets: Mapping[str, float | Mapping[str, float]] | None,
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for role, value in (role_offsets or {}).items():
        name = normalise_role(role)
        if name not in KNOWN_ROLES:
            raise DataError(f"role_offsets: unknown role {role!r}; use {', '.join(KNOWN_ROLES)}")
        if isinstance(value, Mapping):
            bad = [c for c in value if c not in CONSTRUCTS]
            if bad:
                raise DataError(f"role_offsets[{role!r}]: unknown construct {', '.join(bad)}; "
                                "use E, C or F")
            out[name] = {c: float(value.get(c, 0.0)) for c in CONSTRUCTS}
        else:
            out[name] = dict.fromkeys(CONSTRUCTS, float(value))
    return out


def _within_parts(
    construct: str,
    icc1: float,
    site_values: np.ndarray,
    codebook: pd.DataFrame,
    weights: Mapping[str, float],
    offsets: Mapping[str, Mapping[str, float]],
) -> tuple[float, float]:
    """Respondent variance that makes the scale score's ICC(1) about ``icc1``, and the variance
    that subscale, item and rounding noise add to a scale score: ``(var_respondent, var_noise)``.

    Total within-site variance of a scale score must be ``var_between (1 - icc1) / icc1``. Part
    of it comes from role offsets (their variance over the role mix) and from subscale, item and
    rounding noise averaged into the scale (averaged over roles, since roles are asked different
    numbers of items); the respondent term fills the rest.
    """
    var_between = float(np.var(site_values, ddof=1)) if len(site_values) > 1 else 0.0
    if not var_between > 0:
        raise DataError(
            f"site_table: the true {construct} values do not vary between sites, so icc1 cannot "
            "set the respondent noise; give two or more sites with different values"
        )
    within = var_between * (1.0 - icc1) / icc1
    roles = list(weights)
    p = np.array([weights[g] for g in roles])
    off = np.array([offsets.get(g, {}).get(construct, 0.0) for g in roles])
    var_offsets = float(np.sum(p * (off - np.sum(p * off)) ** 2))

    rows = codebook[codebook["construct"] == construct]
    asked = asked_mask(roles, rows)  # (roles, items)
    sub_names = rows["subscale"].to_numpy(dtype=object)
    noise = []
    for r in range(len(roles)):
        per_sub = [
            SD_SUBSCALE**2 + (SD_ITEM**2 + ROUNDING_VAR) / int(asked[r, sub_names == s].sum())
            for s in dict.fromkeys(sub_names)
            if asked[r, sub_names == s].any()
        ]
        noise.append(np.sum(per_sub) / len(per_sub) ** 2 if per_sub else 0.0)
    var_noise = float(np.sum(p * np.array(noise)))
    rest = within - var_offsets - var_noise
    if rest <= 0:
        raise DataError(
            f"icc1 = {icc1:g} for {construct} is too high for this design: item and role noise "
            f"alone give a lower ICC(1); use a smaller icc1, larger site differences or smaller "
            "role offsets"
        )
    return float(rest), var_noise


def simulate_survey_study(
    n_sites: int = 40,
    per_site: int = 5,
    codebook: pd.DataFrame | None = None,
    *,
    beta: Mapping[str, float] | None = None,
    intercept: float = -0.3,
    sigma_site: float = 0.5,
    site_sd: float = 0.3,
    site_corr: float = 0.4,
    respondents_per_site: int | tuple[int, int] = 3,
    icc1: float | Mapping[str, float] = 0.1,
    seed: int | None = 1,
    **response_kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """A whole study with known truth: true site scores, survey items, and embedded outcomes.

    True site values ``T`` of E, C, F are drawn with :func:`simulate_site_table`; respondents
    answer items about them (:func:`simulate_responses`); each site has ``per_site`` assessed
    units whose outcome is ``Bernoulli(expit(intercept + beta · (T - 3) + u_site))`` with
    ``u_site ~ Normal(0, sigma_site)``. The outcome depends on the *true* values, so a model fed
    the respondents' noisy averages is attenuated, and a latent-measurement model is not.

    Returns
    -------
    observations, responses, truth
        ``site, wave, embedded`` (no E, C, F: they are to be measured); item responses; and a
        JSON-ready dict with ``beta``, ``Intercept``, ``sigma_site``, the site values and the
        measurement truth from :func:`simulate_responses`.
    """
    beta = dict(beta or {"E": 0.5, "C": 1.0, "F": 2.0})
    missing = [c for c in CONSTRUCTS if c not in beta]
    if missing:
        raise DataError(f"beta needs a value for each of E, C, F; missing {', '.join(missing)}")
    if per_site < 1:
        raise DataError(f"per_site must be at least 1, got {per_site}")
    codebook = default_codebook() if codebook is None else codebook
    root = np.random.SeedSequence(seed)
    site_seed, resp_seed, outcome_seed = (int(s.generate_state(1)[0]) for s in root.spawn(3))
    sites = simulate_site_table(n_sites, sd=site_sd, corr=site_corr, seed=site_seed)
    responses = simulate_responses(
        sites, codebook, respondents_per_site=respondents_per_site, icc1=icc1, seed=resp_seed, **response_kwargs
    )
    rng = np.random.default_rng(outcome_seed)
    u_site = rng.normal(0.0, sigma_site, size=len(sites))
    eta = intercept + sum(beta[c] * (sites[c].to_numpy() - 3.0) for c in CONSTRUCTS) + u_site
    eta_units = np.repeat(eta, per_site)
    embedded = (rng.random(eta_units.size) < 1.0 / (1.0 + np.exp(-eta_units))).astype(np.int64)
    observations = pd.DataFrame({
        "site": np.repeat(sites["site"].to_numpy(), per_site),
        "wave": np.tile(np.arange(1, per_site + 1), len(sites)),
        "embedded": embedded,
    })
    truth = {
        "beta": beta, "Intercept": intercept, "sigma_site": sigma_site, "site_sd": site_sd,
        "site_values": sites.set_index("site")[list(CONSTRUCTS)].to_dict(orient="index"),
        "site_effects": dict(zip(sites["site"], u_site.tolist(), strict=True)),
        "measurement": responses.attrs.get("truth", {}), "seed": seed,
    }
    return observations, responses, truth
