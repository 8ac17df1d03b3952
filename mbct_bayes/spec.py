"""Model specifications: what to fit, separate from how PyMC fits it.

A :class:`ModelSpec` is a small, validated, immutable description (family, outcome, predictors,
centring, allowed ranges, interactions, priors). It round-trips through TOML (for analysts) and a
plain dict (stored inside a saved fit). The default priors live here, in one place.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mbct_bayes.errors import DataError
from mbct_bayes.families import family_names, get_family
from mbct_bayes.families.ordinal import DEFAULT_LEVELS as DEFAULT_LEVELS  # re-exported: the default ordinal levels

FAMILIES = family_names()  # the families registered at import (mbct_bayes.families)
PARIHS = ("E", "C", "F")
PARIHS_CENTER = 3.0
PARIHS_SCALE = (1.0, 5.0)
MEASUREMENTS = ("observed", "latent")
PARAMETRIZATIONS = ("auto", "centered", "noncentered")
DYNAMICS = ("none", "transition")
PREDICTORS_AT = ("previous", "current")
#: The coefficient of the population time trend (time_trend = true): the last column of X.
TIME_COEFFICIENT = "time"
#: Columns a transition model adds to its rows (:func:`mbct_bayes.model.panel.lagged_rows`): not predictor names.
TRANSITION_COLUMNS = ("previous", "gap")

# Distribution name -> the parameters it takes (all required unless a default is shown here).
PRIOR_FAMILIES: dict[str, dict[str, float | None]] = {
    "Normal": {"mu": 0.0, "sigma": None},
    "StudentT": {"nu": None, "mu": 0.0, "sigma": None},
    "Cauchy": {"alpha": 0.0, "beta": None},
    "HalfNormal": {"sigma": None},
    "HalfStudentT": {"nu": None, "sigma": None},
    "HalfCauchy": {"beta": None},
    "Exponential": {"lam": None},
    "LKJ": {"eta": None},  # correlations only (corr_site_slope): density ∝ det(R)^(eta - 1)
}
POSITIVE_ONLY = ("HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential")

#: The default priors, stated once. Coefficients use rstanarm's autoscaling:
#: Normal(0, COEF_SCALE / sd(x)), so a 0/1 covariate and a 1-5 score both get a sensible scale.
COEF_SCALE = 2.5
DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    "Intercept": {"dist": "StudentT", "nu": 3.0, "mu": 0.0, "sigma": 2.5},
    "sigma_site": {"dist": "HalfStudentT", "nu": 3.0, "sigma": 2.5},
    "sigma_region": {"dist": "HalfStudentT", "nu": 3.0, "sigma": 2.5},
    # time trend: SD of the sites' slopes, log-odds per 1 unit of the time column (years: a site
    # whose trend differs from the population's by 1 log-odds a year is already extreme), and the
    # correlation of a site's intercept (at the time origin) with its slope, LKJ(2) (mildly
    # towards 0: density ∝ 1 - rho²)
    "sigma_slope": {"dist": "HalfStudentT", "nu": 3.0, "sigma": 1.0},
    "corr_site_slope": {"dist": "LKJ", "eta": 2.0},
    # measurement model (latent scores)
    "sigma_measure": {"dist": "HalfNormal", "sigma": 1.0},
    "latent_sd": {"dist": "HalfNormal", "sigma": 1.0},
    "latent_mean": {"dist": "Normal", "mu": 0.0, "sigma": 1.0},
    "role_offset": {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
}
SPEC_KEYS_DOC = (
    "name, description, family, outcome, trials, levels, group, region, predictors, center, "
    "scale, interactions, categorical, priors, measurement, role_offsets, parametrization, exposure, rate_per, time_origin, "
    "time, dynamics, predictors_at, time_trend, gaps"
)
#: The panel keys, written to a spec's dict and TOML only when not at their defaults (so specs
#: without them keep their old dict, TOML and hashes).
PANEL_DEFAULTS: dict[str, Any] = {
    "time": None, "dynamics": "none", "predictors_at": "previous", "time_trend": False, "gaps": {},
    "time_origin": None,
}


def _fail(source: str, message: str) -> DataError:
    return DataError(f"{source}: {message}" if source else message)


def check_prior(name: str, prior: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """Validate one prior table such as ``{dist = "Normal", mu = 0, sigma = 1}``.

    Returns a complete copy with defaults filled in; raises :class:`DataError` otherwise.
    """
    where = f"{source} [priors.{name}]" if source else f"prior {name!r}"
    if not isinstance(prior, Mapping) or "dist" not in prior:
        raise DataError(f"{where}: a prior needs a 'dist' key, e.g. {{dist = \"Normal\", mu = 0, sigma = 1}}")
    dist = prior["dist"]
    if dist not in PRIOR_FAMILIES:
        raise DataError(f"{where}: unknown dist {dist!r}; use one of {', '.join(PRIOR_FAMILIES)}")
    allowed = PRIOR_FAMILIES[dist]
    unknown = sorted(set(prior) - set(allowed) - {"dist"})
    if unknown:
        raise DataError(f"{where}: {dist} takes {', '.join(allowed)}; unknown key(s) {', '.join(unknown)}")
    out: dict[str, Any] = {"dist": dist}
    for param, default in allowed.items():
        value = prior.get(param, default)
        if value is None:
            raise DataError(f"{where}: {dist} needs {param!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise DataError(f"{where}: {param} must be a finite number, got {value!r}")
        if param in {"sigma", "beta", "lam", "nu", "eta"} and value <= 0:
            raise DataError(f"{where}: {param} must be > 0, got {value!r}")
        out[param] = float(value)
    return out


@dataclass(frozen=True)
class ModelSpec:
    """What to fit: a hierarchical PARIHS model of P(embedded).

    Parameters
    ----------
    family
        ``"bernoulli"`` (0/1 outcome), ``"binomial"`` (k of ``trials``) or ``"ordinal"``
        (cumulative logit over ``levels``).
    outcome
        Outcome column. Default ``"embedded"``, or ``"level"`` for ordinal models.
    trials
        Binomial only: the column with the number of trials. Default ``"trials"``.
    levels
        Ordinal only: the outcome's values from low to high (strings or numbers).
        Default ``("none", "partial", "embedded")``.
    exposure
        Count families (``"poisson"``, ``"negbinomial"``) only: the column with each row's
        exposure (e.g. catchment population, or weeks observed), > 0; the model's log link has
        the offset ``log(exposure)``, so the intercept and coefficients are per unit of exposure
        (log rates and log rate ratios). Without it every row has exposure 1.
    rate_per
        Count families only: the unit of exposure in which planning reports rates (e.g.
        ``100000``: per 100,000 population). Default 1; needs ``exposure``.
    group
        Site id column (the level of the random intercept).
    region
        Optional region column (a second, higher level; sites nest in regions).
    predictors
        Numeric columns of the linear predictor. Default E, C, F.
    center
        Value subtracted from each predictor; default 3 (the scale midpoint) for E, C, F and 0
        for others, so the intercept is the log-odds at a mid-scale site.
    scale
        Allowed ``[min, max]`` per predictor; default 1-5 for E, C, F, none for others.
    interactions
        Pairs such as ``("C", "F")``; the product of the centred predictors is added (for a
        categorical covariate, of each of its 0/1 columns).
    categorical
        Categorical covariates among the predictors (treatment coding; see
        :mod:`mbct_bayes.model.design`), by column: the reference level (``setting = "primary"``
        in TOML), or ``{}`` for the default reference (the most frequent level in the fitted
        data). A fitted spec holds ``{"reference", "levels", "default"}`` per column. A predictor
        column holding text is categorical without an entry.
    priors
        Overrides by parameter name: ``Intercept``, a predictor or ``"C:F"``, ``sigma_site``,
        ``sigma_region``, ``cutpoints``, and for latent models ``sigma_measure``,
        ``latent_sd``, ``latent_mean``, ``role_offset``.
    measurement
        ``"observed"`` (predictors are exact) or ``"latent"`` (respondent scores measure a
        latent site value; see :mod:`mbct_bayes.model.build`).
    role_offsets
        Latent models: estimate a shift per respondent role.
    parametrization
        Site effects: ``"noncentered"``, ``"centered"`` or ``"auto"`` (chosen from how much
        data each site has).
    time
        Optional column with each observation's time (a year, or any ordered number; gaps between
        waves allowed). With it the observations are a panel: one row per site and time
        (:func:`mbct_bayes.schema.validate_observations`).
    dynamics
        ``"none"`` (default: a site's waves are exchangeable observations) or ``"transition"``:
        the outcome at a wave depends on the site's state at its previous wave (needs ``time``,
        and an outcome with states: bernoulli or ordinal); see :mod:`mbct_bayes.model.panel`.
    predictors_at
        Transition models: the predictors are taken at the ``"previous"`` wave (default) or at the
        ``"current"`` one.
    time_trend
        A population time trend with site-specific slopes (needs ``time``). Default false. The
        coefficient ``time`` (last in :attr:`coef_names`) is the population trend in log-odds per
        1 unit of the time column; each site's slope ``b_site`` adds to it, and a site's intercept
        and slope are bivariate normal (SDs ``sigma_site``, ``sigma_slope``; correlation
        ``corr_site_slope`` with an LKJ prior). See :mod:`mbct_bayes.model.design`.
    gaps
        Transition models: how the time since the previous wave enters, ``{"terms": bool,
        "center": number}``. With ``terms`` the model has a ``gap`` coefficient (gap minus
        ``center``) and one ``gap:previous[<level>]`` per state, so the previous state's pull can
        fade over a longer gap. Fitting fixes what is not given: ``terms`` = whether the fitted gaps
        are unequal, ``center`` = their median (see :mod:`mbct_bayes.model.panel`).
    time_origin
        Time-trend models: the time ``t0`` at which the intercept and the site effects are
        defined (the design's time column is ``t - t0``). Default: the latest time in the fitted
        data, fixed into the fitted spec by :func:`mbct_bayes.model.design.resolve`.
    """

    family: str = "bernoulli"
    outcome: str = ""  # empty: the family's default (set in __post_init__)
    trials: str | None = None
    levels: tuple[Any, ...] | None = None
    group: str = "site"
    region: str | None = None
    predictors: tuple[str, ...] = PARIHS
    center: Mapping[str, float] = field(default_factory=dict)
    scale: Mapping[str, tuple[float, float] | None] = field(default_factory=dict)
    interactions: tuple[tuple[str, str], ...] = ()
    categorical: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    priors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    measurement: str = "observed"
    role_offsets: bool = False
    parametrization: str = "auto"
    exposure: str | None = None
    rate_per: float | None = None
    time: str | None = None
    dynamics: str = "none"
    predictors_at: str = "previous"
    time_trend: bool = False
    gaps: Mapping[str, Any] = field(default_factory=dict)
    time_origin: float | None = None
    name: str = ""
    description: str = ""
    source: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        src = self.source
        set_ = object.__setattr__
        if self.family not in family_names():
            raise _fail(src, f"family {self.family!r} is not one of {', '.join(family_names())}")
        family = get_family(self.family)
        if self.measurement not in MEASUREMENTS:
            raise _fail(src, f"measurement {self.measurement!r} is not one of {', '.join(MEASUREMENTS)}")
        if self.parametrization not in PARAMETRIZATIONS:
            raise _fail(
                src, f"parametrization {self.parametrization!r} is not one of {', '.join(PARAMETRIZATIONS)}"
            )
        set_(self, "outcome", self.outcome or family.default_outcome)
        trials, levels = family.configure(self.trials, self.levels, self.family, src)
        set_(self, "trials", trials)
        set_(self, "levels", levels)
        exposure, rate_per = family.configure_exposure(self.exposure, self.rate_per, self.family, src)
        set_(self, "exposure", exposure)
        set_(self, "rate_per", rate_per)
        predictors = _str_tuple(self.predictors, "predictors", src)
        if not predictors:
            raise _fail(src, "predictors is empty; name at least one column, e.g. [\"E\", \"C\", \"F\"]")
        if len(set(predictors)) != len(predictors):
            raise _fail(src, f"predictors has duplicates: {list(predictors)}")
        set_(self, "predictors", predictors)
        reserved = {self.group, self.region, self.outcome, self.trials, self.exposure} - {None}
        clash = [p for p in predictors if p in reserved]
        if clash:
            raise _fail(src, f"predictor {clash[0]!r} is also the group, region, outcome, trials or exposure column")
        set_(self, "categorical", self._resolve_categorical(src))
        set_(self, "center", self._resolve_center(src))
        set_(self, "scale", self._resolve_scale(src))
        set_(self, "interactions", self._resolve_interactions(src))
        if self.measurement == "latent":
            if self.categorical:
                raise _fail(src, "measurement = \"latent\" takes E, C, F-like scores only; remove the [categorical] entries")
            bad = [p for p in predictors if self.scale.get(p) is None]
            if bad:
                raise _fail(src, f"latent measurement needs a scale range for every predictor; set scale.{bad[0]}")
            if self.parametrization == "centered":
                raise _fail(src, "the latent model's site effects are non-centred (sampled jointly with the true "
                                 "scores); remove parametrization = \"centered\" or set it to \"auto\"")
        elif self.role_offsets:
            raise _fail(src, "role_offsets = true needs measurement = \"latent\"")
        self._check_panel(src)
        set_(self, "priors", self._resolve_priors(src))

    # -- resolution helpers -------------------------------------------------------------------
    def _check_panel(self, src: str) -> None:
        """The panel keys: time, dynamics, predictors_at, time_trend (one-line messages with the fix)."""
        if self.time is not None:
            if not isinstance(self.time, str) or not self.time.strip():
                raise _fail(src, f"time must be a column name, e.g. time = \"year\"; got {self.time!r}")
            roles = {self.group: "group", self.region: "region", self.outcome: "outcome", self.trials: "trials"}
            if self.time in roles:
                raise _fail(src, f"time {self.time!r} is also the {roles[self.time]} column; name the column with each wave's time")
            if self.time in self.predictors:
                raise _fail(src, f"time {self.time!r} is also a predictor; remove it from predictors (time_trend = true models a trend)")
        if self.dynamics not in DYNAMICS:
            raise _fail(src, f"dynamics {self.dynamics!r} is not one of {', '.join(DYNAMICS)}")
        if self.predictors_at not in PREDICTORS_AT:
            raise _fail(src, f"predictors_at {self.predictors_at!r} is not one of {', '.join(PREDICTORS_AT)}")
        if not isinstance(self.time_trend, bool):
            raise _fail(src, f"time_trend must be true or false, got {self.time_trend!r}")
        if self.time_trend and self.time is None:
            raise _fail(src, "time_trend = true needs a time column; set time = \"year\" (the column with each wave's time)")
        object.__setattr__(self, "gaps", self._resolve_gaps(src))
        self._check_time_trend(src)
        if self.dynamics == "none":
            if self.gaps:
                raise _fail(src, "[gaps] is only for dynamics = \"transition\"; remove it")
            if self.predictors_at != "previous":
                raise _fail(src, f"predictors_at = {self.predictors_at!r} is only for dynamics = \"transition\"; remove it")
            return
        if self.time is None:
            raise _fail(src, "dynamics = \"transition\" needs a time column; set time = \"year\" (the column with each wave's time)")
        if get_family(self.family).state_levels is None:
            with_states = [n for n in family_names() if get_family(n).state_levels is not None]
            raise _fail(src, f"dynamics = \"transition\" needs an outcome with states ({' or '.join(with_states)}), "
                             f"not family {self.family!r}; remove dynamics or change the family")
        if self.measurement == "latent":
            raise _fail(src, "dynamics = \"transition\" takes observed scores per wave; remove measurement = \"latent\"")
        clash = [p for p in self.predictors if p in TRANSITION_COLUMNS]
        if clash:
            raise _fail(src, f"predictor {clash[0]!r} is a column a transition model makes itself "
                             f"({', '.join(TRANSITION_COLUMNS)}); rename that column")

    def _check_time_trend(self, src: str) -> None:
        """time_trend's own constraints and ``time_origin`` (a finite number, only with a trend)."""
        origin = self.time_origin
        if origin is not None:
            if isinstance(origin, bool) or not isinstance(origin, int | float) or not math.isfinite(origin):
                raise _fail(src, f"time_origin must be a finite number (a time, e.g. 2024), got {origin!r}")
            if not self.time_trend:
                raise _fail(src, "time_origin is only for time_trend = true; remove it or set time_trend = true")
            object.__setattr__(self, "time_origin", float(origin))
        if not self.time_trend:
            return
        if self.measurement == "latent":
            raise _fail(src, "time_trend = true takes observed scores per wave; remove measurement = \"latent\"")
        if self.parametrization == "centered":
            raise _fail(src, "a time-trend model's site intercepts and slopes are non-centred (one correlated pair "
                             "per site); remove parametrization = \"centered\" or set it to \"auto\"")
        if TIME_COEFFICIENT in self.predictors:
            raise _fail(src, f"predictor {TIME_COEFFICIENT!r} clashes with the time trend's coefficient "
                             f"{TIME_COEFFICIENT!r}; rename that column")

    def _numeric(self) -> tuple[str, ...]:
        return tuple(p for p in self.predictors if p not in self.categorical)

    def _resolve_categorical(self, src: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for column, entry in dict(self.categorical or {}).items():
            if column not in self.predictors:
                raise _fail(src, f"[categorical] names {column!r}, which is not a predictor ({', '.join(self.predictors)}); add it to predictors")
            out[column] = _categorical_entry(column, entry, src)
        return out

    def _resolve_center(self, src: str) -> dict[str, float]:
        given = dict(self.center or {})
        _refuse_categorical(given, self.categorical, "center", src)
        unknown = sorted(set(given) - set(self.predictors))
        if unknown:
            raise _fail(src, f"center names {unknown[0]!r}, which is not a predictor ({', '.join(self.predictors)})")
        out = {}
        for p in self._numeric():
            value = given.get(p, PARIHS_CENTER if p in PARIHS else 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise _fail(src, f"center.{p} must be a finite number, got {value!r}")
            out[p] = float(value)
        return out

    def _resolve_scale(self, src: str) -> dict[str, tuple[float, float] | None]:
        given = dict(self.scale or {})
        _refuse_categorical(given, self.categorical, "scale", src)
        unknown = sorted(set(given) - set(self.predictors))
        if unknown:
            raise _fail(src, f"scale names {unknown[0]!r}, which is not a predictor ({', '.join(self.predictors)})")
        out: dict[str, tuple[float, float] | None] = {}
        for p in self._numeric():
            value = given.get(p, PARIHS_SCALE if p in PARIHS else None)
            if value is None or (isinstance(value, Sequence) and len(value) == 0):
                out[p] = None
                continue
            if (
                not isinstance(value, Sequence)
                or len(value) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            ):
                raise _fail(src, f"scale.{p} must be [min, max], got {value!r}")
            lo, hi = float(value[0]), float(value[1])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise _fail(src, f"scale.{p} needs finite min < max, got {value!r}")
            out[p] = (lo, hi)
        return out

    def _resolve_gaps(self, src: str) -> dict[str, Any]:
        given = self.gaps if self.gaps is not None else {}
        if not isinstance(given, Mapping):
            raise _fail(src, f"[gaps] must be a table such as {{terms = true, center = 1.0}}, got {given!r}")
        unknown = sorted(set(given) - {"terms", "center"})
        if unknown:
            raise _fail(src, f"[gaps] has unknown key {unknown[0]!r}; it takes terms (true/false) and center (a number)")
        out: dict[str, Any] = {}
        if "terms" in given:
            if not isinstance(given["terms"], bool):
                raise _fail(src, f"gaps.terms must be true or false, got {given['terms']!r}")
            out["terms"] = given["terms"]
        if "center" in given:
            value = given["center"]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise _fail(src, f"gaps.center must be a finite number (a time difference), got {value!r}")
            out["center"] = float(value)
        return out

    def _resolve_interactions(self, src: str) -> tuple[tuple[str, str], ...]:
        out = []
        for pair in self.interactions or ():
            if isinstance(pair, str):
                pair = tuple(pair.split(":"))
            if len(pair) != 2 or not all(isinstance(x, str) for x in pair) or pair[0] == pair[1]:
                raise _fail(src, f"each interaction is a pair of two different predictors, e.g. [\"C\", \"F\"]; got {pair!r}")
            # a transition model's previous state may interact with a predictor (state-specific slopes)
            terms = (*self.predictors, "previous") if self.dynamics == "transition" else self.predictors
            missing = [x for x in pair if x not in terms]
            if missing:
                raise _fail(src, f"interaction {':'.join(pair)} names {missing[0]!r}, which is not a predictor")
            key = (pair[0], pair[1])
            if key in out or key[::-1] in out:
                raise _fail(src, f"interaction {':'.join(pair)} is listed twice")
            out.append(key)
        return tuple(out)

    def _resolve_priors(self, src: str) -> dict[str, dict[str, Any]]:
        known = set(self.parameter_names)
        # a family parameter whose default prior is for positive values (a dispersion) stays positive
        family_priors = get_family(self.family).default_priors
        positive = {name for name, prior in family_priors.items() if prior.get("dist") in POSITIVE_ONLY}
        out = {}
        for name, prior in dict(self.priors or {}).items():
            if name not in known and not self._is_level_coefficient(name) and not self._may_be_gap_term(name):
                raise _fail(src, f"[priors] names {name!r}, which is not a parameter of this model; use one of {', '.join(sorted(known))}")
            checked = check_prior(name, prior, src)
            if name.startswith("corr") != (checked["dist"] == "LKJ"):
                raise _fail(src, f"[priors.{name}]: a correlation takes {{dist = \"LKJ\", eta = ...}} and only a "
                                 f"correlation does; got {checked['dist']}")
            if name.startswith("sigma") or name == "latent_sd" or name in positive:
                if checked["dist"] not in POSITIVE_ONLY:
                    raise _fail(src, f"[priors.{name}] is a standard deviation; use a positive dist ({', '.join(POSITIVE_ONLY)})")
            elif checked["dist"] in POSITIVE_ONLY:
                raise _fail(src, f"[priors.{name}] can be negative; {checked['dist']} is for standard deviations")
            if name == "role_offset" and (checked["dist"] != "Normal" or checked.get("mu", 0.0) != 0.0):
                # the offsets are a ZeroSumNormal: they sum to zero over roles, so only sigma is free
                raise _fail(
                    src,
                    "[priors.role_offset] must be { dist = \"Normal\", mu = 0.0, sigma = ... } "
                    f"(role offsets sum to zero over roles; only sigma can be set), got {prior!r}",
                )
            out[name] = checked
        return out

    # -- derived names ------------------------------------------------------------------------
    def term_columns(self, predictor: str) -> tuple[str, ...]:
        """Design-matrix columns of one predictor: itself, or ``col[level]`` per non-reference level.

        A categorical covariate whose levels are not fixed yet (a spec not fitted) gives its bare
        name; :func:`mbct_bayes.model.design.resolve` fixes the levels from the data.
        """
        if predictor == "previous" and self.dynamics == "transition":
            return self.previous_columns
        entry = self.categorical.get(predictor)
        if entry is None or entry.get("levels") is None:
            return (predictor,)
        return tuple(f"{predictor}[{level}]" for level in entry["levels"] if level != entry["reference"])

    @property
    def state_levels(self) -> tuple[Any, ...]:
        """A transition model's states, lowest first, in the outcome's own values (from the family)."""
        levels = get_family(self.family).state_levels
        if self.dynamics != "transition" or levels is None:
            raise ValueError(f"a {self.family} model with dynamics = {self.dynamics!r} has no previous state")
        return tuple(levels(self))

    @property
    def previous_columns(self) -> tuple[str, ...]:
        """``previous[<level>]`` for each state but the lowest (transition models; else empty)."""
        if self.dynamics != "transition":
            return ()
        return tuple(f"previous[{level}]" for level in self.state_levels[1:])

    @property
    def gap_columns(self) -> tuple[str, ...]:
        """``gap`` and ``gap:previous[<level>]`` when the gap terms are on (``gaps.terms``; else empty)."""
        if self.dynamics != "transition" or not self.gaps.get("terms"):
            return ()
        return ("gap", *(f"gap:{name}" for name in self.previous_columns))

    @property
    def coef_names(self) -> tuple[str, ...]:
        """Coefficient names in design-matrix order: predictors (a categorical: one per non-reference
        level, ``setting[secondary]``), then a transition model's ``previous[<level>]`` and gap terms
        (:attr:`previous_columns`, :attr:`gap_columns`), then ``a:b`` interactions (every column of
        ``a`` by every column of ``b``; ``F:previous[1]`` for a state-specific slope), then ``time``
        in a time-trend model. The columns themselves are built by :mod:`mbct_bayes.model.design`."""
        names = [name for p in self.predictors for name in self.term_columns(p)]
        names += [*self.previous_columns, *self.gap_columns]
        for a, b in self.interactions:
            names += [f"{x}:{y}" for x in self.term_columns(a) for y in self.term_columns(b)]
        if self.time_trend:
            names.append(TIME_COEFFICIENT)
        return tuple(names)

    def _may_be_gap_term(self, name: str) -> bool:
        """``name`` is a gap term of a transition model whose gap terms are not fixed yet (fitting fixes them)."""
        if self.dynamics != "transition" or "terms" in self.gaps:
            return False
        return name in ("gap", *(f"gap:{column}" for column in self.previous_columns))

    def _is_level_coefficient(self, name: str) -> bool:
        """``name`` is a coefficient of a categorical level, ``col[level]`` (or a product with one),
        of a column that may be categorical (its levels are fixed by the data)."""
        parts = name.split(":")
        if len(parts) > 2 or not any("[" in part for part in parts):
            return False
        for part in parts:
            column = part.split("[", 1)[0] if part.endswith("]") and "[" in part else part
            if column not in self.predictors or (part == column and column in self.categorical):
                return False
        return len(parts) == 1 or tuple(p.split("[", 1)[0] for p in parts) in self.interactions

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every parameter that a ``[priors]`` table may name."""
        names = ["Intercept", *self.coef_names, "sigma_site"]
        if self.region:
            names.append("sigma_region")
        if self.time_trend:
            names += ["sigma_slope", "corr_site_slope"]
        family = get_family(self.family)
        if not family.intercept:
            names.remove("Intercept")  # the family's own parameters (cutpoints) take its place
        names.extend(family.parameters)
        if self.measurement == "latent":
            names += ["sigma_measure", "latent_sd", "latent_mean"]
            if self.role_offsets:
                names.append("role_offset")
        return tuple(names)

    @property
    def ordinal_levels(self) -> tuple[Any, ...]:
        """The outcome levels, lowest first (ordinal models; their spec always has them)."""
        if self.levels is None:
            raise ValueError(f"a {self.family} model has no outcome levels")
        return self.levels

    @property
    def trials_column(self) -> str:
        """The column with each row's number of trials (binomial models; their spec always has one)."""
        if self.trials is None:
            raise ValueError(f"a {self.family} model has no trials column")
        return self.trials

    @property
    def n_levels(self) -> int:
        """Number of outcome categories (2 for bernoulli and binomial)."""
        return len(self.levels) if self.levels else 2

    def prior_for(self, name: str, predictor_sd: float | None = None) -> dict[str, Any]:
        """The prior in force for parameter ``name``: the override, else the default.

        For coefficients the default is Normal(0, 2.5 / sd(x)); ``predictor_sd`` is sd(x).
        """
        if name in self.priors:
            return dict(self.priors[name])
        if name in self.coef_names or self._is_level_coefficient(name) or self._may_be_gap_term(name):
            sd = predictor_sd if predictor_sd and math.isfinite(predictor_sd) and predictor_sd > 0 else 1.0
            return {"dist": "Normal", "mu": 0.0, "sigma": COEF_SCALE / sd}
        family_priors = get_family(self.family).default_priors
        if name in family_priors:
            return dict(family_priors[name])
        if name in DEFAULT_PRIORS:
            return dict(DEFAULT_PRIORS[name])
        raise KeyError(name)

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe dict; ``ModelSpec.from_dict(spec.to_dict()) == spec``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "source":
                continue
            value = getattr(self, f.name)
            if f.name in {"exposure", "rate_per"} and value is None:
                continue  # specs of event families keep their old dict (and hashes)
            if f.name in PANEL_DEFAULTS and value == PANEL_DEFAULTS[f.name]:
                continue  # specs without panel keys keep their old dict (and hashes)
            if f.name == "scale":
                value = {k: (list(v) if v is not None else []) for k, v in value.items()}
            elif f.name in {"predictors", "levels"} and value is not None:
                value = list(value)
            elif f.name == "interactions":
                value = [list(p) for p in value]
            elif f.name in {"center", "priors", "gaps"}:
                value = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in value.items()}
            elif f.name == "categorical":
                if not value:
                    continue  # specs without categorical covariates keep their old dict (and hashes)
                value = {k: {**v, "levels": list(v["levels"]) if v.get("levels") is not None else None}
                         for k, v in value.items()}
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> ModelSpec:
        """Build a spec from a dict (as read from TOML); unknown keys are an error."""
        allowed = {f.name for f in fields(cls)} - {"source"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise _fail(source, f"unknown key {unknown[0]!r} in the model spec; allowed keys: {SPEC_KEYS_DOC}")
        kwargs = dict(data)
        for key in ("predictors", "levels"):
            if kwargs.get(key) is not None:
                if isinstance(kwargs[key], str) or not isinstance(kwargs[key], Sequence):
                    raise _fail(source, f"{key} must be a list, e.g. {key} = [\"E\", \"C\", \"F\"]")
                kwargs[key] = tuple(kwargs[key])
        if "interactions" in kwargs:
            if isinstance(kwargs["interactions"], str) or not isinstance(kwargs["interactions"], Sequence):
                raise _fail(source, "interactions must be a list of pairs, e.g. [[\"C\", \"F\"]]")
            kwargs["interactions"] = tuple(
                tuple(p) if not isinstance(p, str) else p for p in kwargs["interactions"]
            )
        for key in ("center", "scale", "priors", "categorical", "gaps"):
            if key in kwargs and not isinstance(kwargs[key], Mapping):
                raise _fail(source, f"[{key}] must be a table, e.g. [{key}] on its own line then name = value")
        if "scale" in kwargs:
            kwargs["scale"] = {k: (tuple(v) if isinstance(v, list | tuple) and len(v) else None) for k, v in kwargs["scale"].items()}
        for key in ("family", "outcome", "trials", "group", "region", "measurement", "parametrization", "name", "description",
                    "exposure", "time", "dynamics", "predictors_at"):
            if key in kwargs and kwargs[key] is not None and not isinstance(kwargs[key], str):
                raise _fail(source, f"{key} must be a string, got {kwargs[key]!r}")
        for key in ("role_offsets", "time_trend"):
            if key in kwargs and not isinstance(kwargs[key], bool):
                raise _fail(source, f"{key} must be true or false, got {kwargs[key]!r}")
        return cls(**kwargs, source=source)

    @classmethod
    def from_toml(cls, path: str | Path) -> ModelSpec:
        """Read a spec from a TOML file (see ``models/`` for examples)."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: model spec not found; see models/ for examples")
        if path.is_dir():
            raise DataError(f"{path}: is a directory, not a TOML model spec")
        try:
            text = path.read_text(encoding="utf-8-sig")
            data = tomllib.loads(text)
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text; save the spec as UTF-8") from None
        except tomllib.TOMLDecodeError as err:
            raise DataError(f"{path}: not valid TOML ({err}); compare with models/bernoulli.toml") from None
        if not data:
            raise DataError(f"{path}: the model spec is empty; state at least family = \"bernoulli\" (see models/bernoulli.toml)")
        return cls.from_dict(data, source=str(path))

    def to_toml(self) -> str:
        """The spec as TOML text that :meth:`from_toml` reads back to an equal spec."""
        d = self.to_dict()
        lines = []
        for key in ("name", "description", "family", "outcome", "trials", "levels", "exposure", "rate_per", "group",
                    "region", "predictors", "interactions", "measurement", "role_offsets", "parametrization",
                    "time", "dynamics", "predictors_at", "time_trend", "time_origin"):
            value = d.get(key)
            if value is None:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        for table in ("center", "scale"):
            lines.append(f"\n[{table}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d[table].items()]
        if d.get("categorical"):
            lines.append("\n[categorical]")
            lines += [f"{_toml_key(k)} = {_toml_value({key: x for key, x in v.items() if x is not None})}"
                      for k, v in d["categorical"].items()]
        if d.get("gaps"):
            lines.append("\n[gaps]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d["gaps"].items()]
        if d["priors"]:
            lines.append("\n[priors]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d["priors"].items()]
        return "\n".join(lines) + "\n"

    def with_changes(self, **changes: Any) -> ModelSpec:
        """A copy with some fields replaced (validated again)."""
        d = self.to_dict()
        d.update(changes)
        return ModelSpec.from_dict(d, source=self.source)


def _categorical_entry(column: str, entry: Any, src: str) -> dict[str, Any]:
    """One ``[categorical]`` entry as ``{"reference", "levels", "default"}`` (levels None until fitted).

    Accepted: a reference level (text or a whole number), ``{}`` (default reference), or a table
    ``{reference = ..., levels = [...], default = ...}`` as a fitted spec stores it.
    """
    where = f"[categorical] {column}"
    if isinstance(entry, Mapping):
        unknown = sorted(set(entry) - {"reference", "levels", "default"})
        if unknown:
            raise _fail(src, f"{where}: unknown key {unknown[0]!r}; give the reference level, e.g. {column} = \"primary\"")
        reference, levels, default = entry.get("reference"), entry.get("levels"), entry.get("default")
    else:
        reference, levels, default = entry, None, None
    reference = None if reference is None else _level_text(reference, where, src)
    if levels is not None:
        if isinstance(levels, str) or not isinstance(levels, Sequence) or len(levels) < 2:
            raise _fail(src, f"{where}: levels must be a list of at least two levels, got {levels!r}")
        levels = tuple(_level_text(v, where, src) for v in levels)
        if len(set(levels)) != len(levels):
            raise _fail(src, f"{where}: levels has duplicates: {list(levels)}")
        if reference is None or reference not in levels:
            raise _fail(src, f"{where}: the reference level {reference!r} must be one of the levels {list(levels)}")
    if default is not None and not isinstance(default, bool):
        raise _fail(src, f"{where}: default must be true or false, got {default!r}")
    return {"reference": reference, "levels": levels, "default": bool(default) if levels is not None else reference is None}


def _level_text(value: Any, where: str, src: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or (isinstance(value, str) and not value.strip()):
        raise _fail(src, f"{where}: a level is text (or a whole number), e.g. \"primary\"; got {value!r}")
    return str(value).strip()


def _refuse_categorical(given: Mapping[str, Any], categorical: Mapping[str, Any], table: str, src: str) -> None:
    named = [k for k in given if k in categorical]
    if named:
        raise _fail(src, f"{table}.{named[0]} is set, but {named[0]!r} is categorical (no centring or scale); remove it")


def _str_tuple(value: Any, key: str, src: str) -> tuple[str, ...]:
    items = tuple(value)
    if not all(isinstance(x, str) and x for x in items):
        raise _fail(src, f"{key} must be a list of column names, got {list(items)!r}")
    return items


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").isalnum() else '"' + key + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"
