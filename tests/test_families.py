"""The family objects: numpy log-likelihood against PyMC's, the registry, and no family branches.

Each family's numpy log-likelihood (used by LOO, sensitivity and the forecasts) must equal the
log-likelihood PyMC computes from the model the package builds (``pm.compute_log_likelihood``),
to 1e-10 per observation, on random data and random parameter values. A fault planted in each
family's numpy log-likelihood must be caught by the same comparison.
"""

from __future__ import annotations

import ast
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mbct_bayes.errors import DataError
from mbct_bayes.families import Family, family_names, get_family, register
from mbct_bayes.model.build import build_model, prepare_data
from mbct_bayes.model.simulate import simulate_observations
from mbct_bayes.schema import DataWarning, validate_observations
from mbct_bayes.spec import ModelSpec

PACKAGE = Path(__file__).resolve().parents[1] / "mbct_bayes"
FAMILIES = ("bernoulli", "binomial", "ordinal", "poisson", "negbinomial")
N_DRAWS = 3


def _problem(family: str, seed: int):
    """Small random data of ``family``, its validated model data, the built model and random draws."""
    obs, _ = simulate_observations(9, 4, family, n_regions=3, seed=seed)
    # count families: with their exposure column, so the offset log(exposure) is checked too
    exposure = {"exposure": "population", "rate_per": 1000.0} if get_family(family).counts_events else {}
    spec = ModelSpec(family=family, region="region", **exposure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        table = validate_observations(obs, spec)
    data = prepare_data(table, spec)
    model = build_model(data, spec, centered=False)
    rng = np.random.default_rng(seed + 100)
    n_sites, n_regions, n_coef = len(data.site_labels), len(data.region_labels), data.X.shape[1]
    shape = (1, N_DRAWS)
    draws = {
        "beta": rng.normal(0.0, 0.7, (*shape, n_coef)),
        "sigma_site": rng.uniform(0.2, 1.5, shape),
        "z_site": rng.normal(size=(*shape, n_sites)),
        "sigma_region": rng.uniform(0.1, 1.0, shape),
        "z_region": rng.normal(size=(*shape, n_regions)),
    }
    if get_family(family).counts_events:
        draws["Intercept"] = rng.normal(-8.0, 1.0, shape)  # log rate per person (exposures are populations)
    elif get_family(family).intercept:
        draws["Intercept"] = rng.normal(0.0, 1.0, shape)
    else:
        draws["cutpoints"] = np.sort(rng.normal(0.0, 1.5, (*shape, spec.n_levels - 1)), axis=-1)
    if "overdispersion" in get_family(family).parameters:
        draws["overdispersion"] = rng.uniform(0.05, 1.5, shape)
    return spec, data, model, draws


def _pymc_log_likelihood(model, draws: dict[str, np.ndarray]) -> np.ndarray:
    """PyMC's pointwise log-likelihood of ``obs`` (S, n) at the given draws."""
    import pymc as pm

    # the cutpoints' starting values matter to the sampler only, and compute_log_likelihood
    # refuses a model that has any
    for rv in model.free_RVs:
        model.set_initval(rv, None)
    dims = {name: ("chain", "draw", *(model.named_vars_to_dims.get(name) or ())) for name in draws}
    posterior = xr.Dataset(
        {name: (dims[name], value) for name, value in draws.items()},
        coords={"chain": [0], "draw": np.arange(N_DRAWS), **{k: list(v) for k, v in model.coords.items()}},
    )
    tree = xr.DataTree.from_dict({"posterior": posterior})
    out = pm.compute_log_likelihood(tree, model=model, extend_inferencedata=False, progressbar=False)
    return out["obs"].to_numpy().reshape(N_DRAWS, -1)  # without extending, the log_likelihood group itself


def _numpy_log_likelihood(family: Family, data, draws: dict[str, np.ndarray]) -> np.ndarray:
    """The family's numpy log-likelihood at the same draws, the linear predictor written out here."""
    flat = {k: v.reshape((N_DRAWS, *v.shape[2:])) for k, v in draws.items()}
    eta = flat["beta"] @ data.X.T
    eta = eta + (flat["z_site"] * flat["sigma_site"][:, None])[:, data.site_idx]
    eta = eta + (flat["z_region"] * flat["sigma_region"][:, None])[:, data.region_idx]
    if "Intercept" in flat:
        eta = eta + flat["Intercept"][:, None]
    if data.offset is not None:
        eta = eta + np.log(np.exp(data.offset))  # log(exposure), written out
    return family.log_likelihood(data.y, eta, data.trials, flat)


def _largest_gap(family: Family, family_name: str, seed: int) -> float:
    _, data, model, draws = _problem(family_name, seed)
    ours = _numpy_log_likelihood(family, data, draws)
    theirs = _pymc_log_likelihood(model, draws)
    assert ours.shape == theirs.shape == (N_DRAWS, data.n_obs)
    return float(np.max(np.abs(ours - theirs)))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("seed", [7])
def test_numpy_log_likelihood_equals_pymc(name, seed):
    assert _largest_gap(get_family(name), name, seed) < 1e-10


def _drop_binomial_coefficient(y, eta, trials, params):
    from scipy.special import gammaln

    full = get_family("binomial").log_likelihood(y, eta, trials, params)
    return full - (gammaln(trials + 1) - gammaln(y + 1) - gammaln(trials - y + 1))


def _shift_cutpoint(y, eta, trials, params):
    shifted = dict(params)
    shifted["cutpoints"] = params["cutpoints"] + np.array([0.0] * (params["cutpoints"].shape[-1] - 1) + [0.05])
    return get_family("ordinal").log_likelihood(y, eta, trials, shifted)


def _ignore_outcome(y, eta, trials, params):
    return get_family("bernoulli").log_likelihood(np.ones_like(y), eta, trials, params)


def _drop_factorial(y, eta, trials, params):
    from scipy.special import gammaln

    return get_family("poisson").log_likelihood(y, eta, trials, params) + gammaln(y + 1.0)


def _inverted_overdispersion(y, eta, trials, params):
    flipped = dict(params)
    flipped["overdispersion"] = 1.0 / params["overdispersion"]  # alpha where 1/alpha belongs
    return get_family("negbinomial").log_likelihood(y, eta, trials, flipped)


@pytest.mark.parametrize(
    ("name", "fault"),
    [("bernoulli", _ignore_outcome), ("binomial", _drop_binomial_coefficient), ("ordinal", _shift_cutpoint),
     ("poisson", _drop_factorial), ("negbinomial", _inverted_overdispersion)],
)
def test_planted_log_likelihood_fault_is_caught(name, fault):
    faulty = dataclasses.replace(get_family(name), log_likelihood=fault)
    assert _largest_gap(faulty, name, 1) > 1e-3


# -- the registry -------------------------------------------------------------------------------


def test_registry_holds_the_five_families():
    assert set(FAMILIES) <= set(family_names())
    for name in FAMILIES:
        assert get_family(name).name == name


def test_unknown_family_is_a_one_line_error():
    with pytest.raises(DataError, match=r"^family 'gamma' is not one of bernoulli, binomial, ordinal, poisson"):
        get_family("gamma")
    with pytest.raises(DataError, match="family 'gamma' is not one of"):
        ModelSpec(family="gamma")


def test_a_registered_new_family_is_usable_by_name():
    """A minimal new family (a bernoulli outcome named 'flag') works through spec, schema and model."""
    import mbct_bayes.families as families

    base = get_family("bernoulli")
    new = dataclasses.replace(base, name="flag_test", default_outcome="flag", eta_label="logit P(flag)")
    register(new)
    try:
        assert get_family("flag_test") is new
        spec = ModelSpec(family="flag_test")
        assert spec.outcome == "flag"
        obs, _ = simulate_observations(8, 4, "bernoulli", n_regions=0, seed=3)
        obs = obs.rename(columns={"embedded": "flag"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            table = validate_observations(obs, spec)
        data = prepare_data(table, spec)
        model = build_model(data, spec)
        assert "obs" in model.named_vars
        bad = obs.assign(flag=2)
        with pytest.raises(DataError, match="column 'flag'"):
            validate_observations(bad, spec)
    finally:
        families._REGISTRY.pop("flag_test", None)
    with pytest.raises(DataError):
        get_family("flag_test")


def test_register_refuses_a_non_family():
    with pytest.raises(TypeError, match="register takes a Family"):
        register("bernoulli")  # type: ignore[arg-type]


# -- no branch on the family name outside families/ ----------------------------------------------


def _mentions_family(node: ast.AST) -> bool:
    """An expression holding a family name: ``family``, ``spec.family``, ``x["family"]``, ..."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == "family":
            return True
        if isinstance(sub, ast.Attribute) and sub.attr == "family":
            return True
        if isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Constant) and sub.slice.value == "family":
            return True
    return False


def _is_name_literal(node: ast.AST, names: set[str]) -> bool:
    """A family-name string, or a tuple/list/set/dict of them."""
    if isinstance(node, ast.Constant):
        return node.value in names
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_name_literal(e, names) for e in node.elts)
    if isinstance(node, ast.Dict):
        return any(k is not None and _is_name_literal(k, names) for k in node.keys)
    return False


def family_branches(source: str, filename: str, names: set[str]) -> list[str]:
    """Places in ``source`` that branch on the family's name or on a family class."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_mentions_family(o) for o in operands) and any(_is_name_literal(o, names) for o in operands):
                found.append(f"{filename}:{node.lineno}: compares the family name with a literal")
        elif isinstance(node, ast.Match) and _mentions_family(node.subject):
            found.append(f"{filename}:{node.lineno}: match on the family")
        elif isinstance(node, ast.Dict) and sum(_is_name_literal(k, names) for k in node.keys if k) >= 2:
            found.append(f"{filename}:{node.lineno}: a table keyed by family names")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
            and "Family" in ast.unparse(node.args[1])
        ):
            found.append(f"{filename}:{node.lineno}: isinstance on a family class")
    return found


def test_no_branch_on_the_family_name_outside_families():
    names = set(family_names())
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "families" in path.relative_to(PACKAGE).parts:
            continue
        found += family_branches(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)), names)
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "snippet",
    [
        "if spec.family == 'ordinal':\n    pass\n",
        "x = 1 if fit.spec.family != \"binomial\" else 2\n",
        "if family in ('bernoulli', 'binomial'):\n    pass\n",
        "match spec.family:\n    case 'ordinal':\n        pass\n",
        "ok = isinstance(f, OrdinalFamily)\n",
        "TEXT = {'bernoulli': 'a', 'binomial': 'b'}\n",
        "if params['family'] == 'ordinal':\n    pass\n",
    ],
)
def test_the_branch_check_finds_each_kind_of_branch(snippet):
    assert family_branches(snippet, "snippet.py", set(FAMILIES))


def test_the_branch_check_leaves_family_free_code_alone():
    code = "f = get_family(spec.family)\nif f.intercept:\n    pass\nname = spec.name or 'model'\n"
    assert family_branches(code, "ok.py", set(FAMILIES)) == []
    assert isinstance(pd.DataFrame(), pd.DataFrame)  # an unrelated isinstance is no family branch
