"""Fit benchmark: mbct-bayes against bambi and plain PyMC on the same data, in one run.

Model: ``embedded ~ E + C + F + (1 | site)``, bernoulli, the priors of ``models/bernoulli.toml``
(Intercept StudentT(3, 0, 2.5); E, C ~ Normal(0, 1); F ~ Normal(0.25, 1); site SD HalfNormal(1);
predictors centred at 3), on data from ``simulate_observations``.

Sizes: ``reference`` (40 sites x 5 units) and ``large`` (400 sites x 20 units).

For every (size, tool) a fresh worker process does

* **cold**: the first fit in that process, model build and compile included, on data seed 1;
* **warm**: a second fit of new data of the same shape (data seed 2) in the same process:
  ours swaps the data into the compiled nutpie model (``CompiledModel.sample(table=...)``);
  bambi has no data swap, so it builds and fits a new ``bmb.Model``; plain PyMC uses
  ``pm.set_data`` + ``pm.sample``.

Each worker gets an empty PyTensor/numba compile cache (``base_compiledir`` in a temp folder)
so that "cold" means what a new user sees; ``--keep-cache`` uses the normal cache instead.

Tools:

* ``ours``: ``mb.compile_model(table, spec)`` + ``.sample(...)`` + ``warn_if_failed()`` — exactly
  the body of ``mb.fit`` (kept apart so the warm refit can reuse the compiled model). nutpie.
* ``bambi``: ``bmb.Model(...).fit(...)`` with bambi's default ``inference_method="pymc"``
  (PyMC's own NUTS, chains in parallel processes), priors matched to ours.
* ``pymc``: our ``build_model`` graph sampled with ``pm.sample`` and its default sampler
  (with nutpie installed and the numba backend, PyMC 6 picks nutpie, recompiling on each call).

Metrics: wall time of the fit call, min bulk ESS over the model's parameters
{Intercept, beta_E, beta_C, beta_F, sigma_site} and ESS per second (= min bulk ESS / wall time),
and the ratio ours / bambi. Max R-hat, divergences and the min bulk ESS of the site effects are
recorded as well.

For the large size (and the reference size) the ours-worker also builds the centred and the
non-centred model with ``mbct_bayes.model.build_model(..., centered=True/False)``, compiles each
with nutpie and samples the warm data, to check the parametrization rule in ``choose_centered``.

Run: ``.venv/bin/python benchmarks/bench_fit.py`` (10-25 minutes on 2 cores, depending on load). Writes
``benchmarks/results_fit.json`` and ``benchmarks/RESULTS_fit.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC_PATH = ROOT / "models" / "bernoulli.toml"
SIZES = {"reference": (40, 5), "large": (400, 20)}
TOOLS = ("ours", "bambi", "bambi_cores2", "pymc")
PARAMS = ("Intercept", "beta_E", "beta_C", "beta_F", "sigma_site")
COLD_DATA_SEED, WARM_DATA_SEED = 1, 2
COLD_SAMPLER_SEED, WARM_SAMPLER_SEED = 101, 102
#: Issue 2 targets (ours / bambi ESS-per-second ratios).
TARGET_WARM_REFERENCE = 10.0
TARGET_LARGE = 1.5


# -- worker: one tool, one size, in a fresh process ----------------------------------------------
def _data(n_sites: int, per_site: int, seed: int):
    from mbct_bayes.model.simulate import simulate_observations

    df, _ = simulate_observations(n_sites, per_site, "bernoulli", seed=seed)
    return df


def _spec():
    from mbct_bayes.spec import ModelSpec

    return ModelSpec.from_toml(SPEC_PATH)


def _stack(chain_draw_arrays: dict) -> object:
    """A Dataset of (chain, draw) arrays (extra dims allowed) for ArviZ diagnostics."""
    import numpy as np
    import xarray as xr

    data = {}
    for name, values in chain_draw_arrays.items():
        values = np.asarray(values, dtype=float)
        dims = ["chain", "draw"] + [f"{name}_dim_{i}" for i in range(values.ndim - 2)]
        data[name] = (dims, values)
    return xr.Dataset(data)


def _diagnose(params: dict, site_effects, sample_stats) -> dict:
    """Min bulk ESS over PARAMS, max R-hat, site-effect min ESS, divergences, mean grad evals."""
    import arviz as az
    import numpy as np

    def as_ds(tree):
        return tree.to_dataset() if hasattr(tree, "to_dataset") else tree

    ds = _stack(params)
    ess = as_ds(az.ess(ds, method="bulk"))
    rhat = as_ds(az.rhat(ds))
    ess_site = as_ds(az.ess(_stack({"u_site": site_effects}), method="bulk"))
    per_param = {k: float(ess[k].values) for k in params}
    out = {
        "min_ess_bulk": min(per_param.values()),
        "ess_bulk": per_param,
        "argmin_ess": min(per_param, key=per_param.get),
        "max_r_hat": max(float(rhat[k].values) for k in params),
        "min_ess_bulk_site_effects": float(np.min(ess_site["u_site"].values)),
        "divergences": int(np.asarray(sample_stats["diverging"].values).sum()),
    }
    for name in ("n_steps", "tree_size"):
        if name in sample_stats:
            out["mean_grad_evals"] = float(np.asarray(sample_stats[name].values).mean())
            break
    return out


def _ours_posterior(idata, coef_names):
    post = idata["posterior"]
    params = {"Intercept": post["Intercept"].values, "sigma_site": post["sigma_site"].values}
    for name in coef_names:
        params[f"beta_{name}"] = post["beta"].sel(predictor=name).values
    return params, post["u_site"].values, idata["sample_stats"]


def _bambi_posterior(idata, coef_names):
    post = idata["posterior"]
    params = {"Intercept": post["Intercept"].values, "sigma_site": post["1|site_sigma"].values}
    for name in coef_names:
        params[f"beta_{name}"] = post[name].values
    return params, post["1|site"].values, idata["sample_stats"]


def _bambi_priors(spec):
    import bambi as bmb

    def prior(p):
        p = dict(p)
        return bmb.Prior(p.pop("dist"), **p)

    priors = {name: prior(spec.prior_for(name)) for name in spec.coef_names}
    priors["Intercept"] = prior(spec.prior_for("Intercept"))
    priors[f"1|{spec.group}"] = bmb.Prior("Normal", mu=0.0, sigma=prior(spec.prior_for("sigma_site")))
    return priors


def _bambi_fit(table, spec, seed, draws, tune, chains, cores=None):
    """Build and fit the same model in bambi (bambi's default sampler; ``cores`` as given)."""
    import bambi as bmb

    df = table[[spec.group, *spec.predictors, spec.outcome]].copy()
    for p in spec.predictors:  # centre as ours does, so the Intercept prior means the same thing
        df[p] = df[p] - spec.center[p]
    formula = f"{spec.outcome} ~ {' + '.join(spec.predictors)} + (1|{spec.group})"
    model = bmb.Model(formula, df, family="bernoulli", priors=_bambi_priors(spec), center_predictors=False)
    extra = {} if cores is None else {"cores": cores}
    return model.fit(draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=False, **extra)


def _sampler_name(idata) -> str:
    attrs = dict(idata["posterior"].attrs)
    return str(attrs.get("inference_library") or attrs.get("sampling_library") or attrs)


def _fast_likelihood_model(data, spec, centered: bool):
    """The same model with the likelihood written out: sum(y * eta - softplus(eta)).

    Candidate change for ``mbct_bayes.model.build_model`` (bernoulli): identical posterior
    (Bernoulli log-likelihood with logit link), fewer graph nodes than ``pm.Bernoulli(logit_p=)``
    and ``X @ beta`` as column products (no BLAS call on a skinny matrix).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from mbct_bayes.model.build import _group_effect, _rv, data_values

    values = data_values(data, spec)
    coords = {"site": list(data.site_labels), "predictor": list(data.coef_names)}
    with pm.Model(coords=coords) as model:
        X = pm.Data("X", values["X"])
        site_idx = pm.Data("site_idx", values["site_idx"])
        y = pm.Data("y", values["y"])
        mu = pm.Data("beta_mu", values["beta_mu"])
        sigma = pm.Data("beta_sigma", values["beta_sigma"])
        beta = pm.Normal("beta", mu=mu, sigma=sigma, dims="predictor")
        eta = _rv("Intercept", spec.prior_for("Intercept"))
        for j in range(data.X.shape[1]):
            eta = eta + X[:, j] * beta[j]
        sigma_site = _rv("sigma_site", spec.prior_for("sigma_site"))
        eta = eta + _group_effect("site", sigma_site, centered)[site_idx]
        pm.Potential("obs_loglik", pt.sum(y * eta - pt.softplus(eta)))
    return model


def _ours_param_check(table, spec, args, rec) -> None:
    """Centred vs non-centred site effects (build_model + nutpie), plus the fast-likelihood variant.

    The arm the auto rule picks is the warm fit already measured (same data, model and sampler),
    so only the other arm and the fast-likelihood variant of the picked arm are sampled here.
    """
    import nutpie

    from mbct_bayes.model.build import build_model, choose_centered, prepare_data
    from mbct_bayes.schema import validate_observations

    table = validate_observations(table, spec, source="bench")
    data = prepare_data(table, spec)
    auto = bool(choose_centered(data, spec))
    rec["auto_centered"] = auto
    warm = rec["warm"]
    out = {
        ("centered" if auto else "noncentered"): {
            "compile_s": None,
            "sample_s": warm["wall_s"],
            "reused_warm_fit": True,
            **{k: v for k, v in warm.items() if k not in ("wall_s", "ess_per_s")},
            "ess_per_s_sampling": warm["ess_per_s"],
        }
    }
    arms = [
        ("noncentered" if auto else "centered", lambda: build_model(data, spec, centered=not auto)),
        (
            ("centered" if auto else "noncentered") + " + fast likelihood",
            lambda: _fast_likelihood_model(data, spec, auto),
        ),
    ]
    for key, make in arms:
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(make())
        t1 = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=WARM_SAMPLER_SEED,
            progress_bar=False,
            save_warmup=False,
        )
        t2 = time.perf_counter()
        diag = _diagnose(*_ours_posterior(idata, spec.coef_names))
        out[key] = {
            "compile_s": t1 - t0,
            "sample_s": t2 - t1,
            **diag,
            "ess_per_s_sampling": diag["min_ess_bulk"] / (t2 - t1),
        }
        print(
            f"  param-check {key}: compile {t1 - t0:.1f}s sample {t2 - t1:.1f}s, min ESS {diag['min_ess_bulk']:.0f}",
            file=sys.stderr,
            flush=True,
        )
    rec["parametrization"] = out


def worker(args) -> dict:
    t_start = time.perf_counter()
    warnings.filterwarnings("ignore")
    import numpy as np  # noqa: F401
    import pymc as pm

    import mbct_bayes as mb
    from mbct_bayes.model.build import build_model, data_values, prepare_data
    from mbct_bayes.schema import validate_observations

    if args.tool.startswith("bambi"):
        import bambi  # noqa: F401
    import_s = time.perf_counter() - t_start

    n_sites, per_site = SIZES[args.size]
    spec = _spec()
    cold_table = _data(n_sites, per_site, COLD_DATA_SEED)
    warm_table = _data(n_sites, per_site, WARM_DATA_SEED)
    kw = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    rec: dict = {"tool": args.tool, "size": args.size, "n_obs": len(cold_table), "import_s": import_s}

    def run(label, fn, extract):
        t0 = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - t0
        idata = result.idata if hasattr(result, "idata") else result
        diag = _diagnose(*extract(idata, spec.coef_names))
        rec[label] = {"wall_s": wall, **diag, "ess_per_s": diag["min_ess_bulk"] / wall}
        print(
            f"  {args.tool} {args.size} {label}: {wall:.1f}s, min ESS {diag['min_ess_bulk']:.0f}",
            file=sys.stderr,
            flush=True,
        )
        return idata

    if args.tool == "ours":
        holder = {}

        def cold():
            # == mb.fit(cold_table, spec, seed=..., **kw): compile_model, sample, warn_if_failed
            holder["cm"] = mb.compile_model(cold_table, spec)
            result = holder["cm"].sample(seed=COLD_SAMPLER_SEED, **kw)
            result.warn_if_failed()
            return result

        def warm():
            result = holder["cm"].sample(table=warm_table, seed=WARM_SAMPLER_SEED, **kw)
            result.warn_if_failed()
            return result

        run("cold", cold, _ours_posterior)
        rec["centered_used"] = bool(holder["cm"].centered)
        rec["sampler"] = "nutpie (mbct_bayes CompiledModel)"
        run("warm", warm, _ours_posterior)
        if args.param_check:
            _ours_param_check(warm_table, spec, args, rec)

    elif args.tool in ("bambi", "bambi_cores2"):
        # bambi's default leaves cores=None, and PyMC then takes cpu_count() // 2 (it assumes
        # hyper-threading): 1 on this 2-vCPU machine, so the chains run one after another.
        # "bambi_cores2" passes cores=2 to show bambi with both cores (not its default).
        cores = 2 if args.tool == "bambi_cores2" else None
        idata = run(
            "cold",
            lambda: _bambi_fit(cold_table, spec, COLD_SAMPLER_SEED, cores=cores, **kw),
            _bambi_posterior,
        )
        rec["sampler"] = "bambi inference_method='pymc' (default): " + _sampler_name(idata)
        run("warm", lambda: _bambi_fit(warm_table, spec, WARM_SAMPLER_SEED, cores=cores, **kw), _bambi_posterior)

    else:  # plain PyMC on our model graph, pm.sample defaults
        holder = {}

        def cold():
            table = validate_observations(cold_table, spec, source="bench")
            data = prepare_data(table, spec)
            holder["data"] = data
            holder["model"] = build_model(data, spec)
            with holder["model"]:
                return pm.sample(random_seed=COLD_SAMPLER_SEED, progressbar=False, **kw)

        def warm():
            table = validate_observations(warm_table, spec, source="bench")
            old = holder["data"]
            data = prepare_data(table, spec, site_labels=old.site_labels)
            with holder["model"]:
                pm.set_data(data_values(data, spec))
                return pm.sample(random_seed=WARM_SAMPLER_SEED, progressbar=False, **kw)

        idata = run("cold", cold, _ours_posterior)
        rec["sampler"] = "pm.sample default: " + _sampler_name(idata)
        run("warm", warm, _ours_posterior)
    return rec


# -- orchestrator ---------------------------------------------------------------------------------
def _spawn(tool: str, size: str, args) -> dict:
    out = Path(tempfile.mkstemp(prefix=f"bench_{tool}_{size}_", suffix=".json")[1])
    cache = Path(tempfile.mkdtemp(prefix="bench_pytensor_"))
    env = dict(os.environ)
    if not args.keep_cache:
        flags = env.get("PYTENSOR_FLAGS", "")
        env["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={cache}"]))
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--tool",
        tool,
        "--size",
        size,
        "--draws",
        str(args.draws),
        "--tune",
        str(args.tune),
        "--chains",
        str(args.chains),
        "--json-out",
        str(out),
    ]
    if args.param_check and tool == "ours":
        cmd.append("--param-check")
    print(f"[{datetime.now():%H:%M:%S}] {tool} / {size} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, timeout=args.timeout, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            rec = {"tool": tool, "size": size, "error": proc.stderr[-3000:]}
        else:
            rec = json.loads(out.read_text())
            sys.stderr.write(proc.stderr[-2000:] if args.verbose else "")
    except subprocess.TimeoutExpired:
        rec = {"tool": tool, "size": size, "error": f"timed out after {args.timeout}s"}
    finally:
        out.unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
    rec["process_s"] = time.perf_counter() - t0
    if "error" in rec:
        print(f"  FAILED: {rec['error'][-500:]}", file=sys.stderr, flush=True)
    else:
        print(
            f"  cold {rec['cold']['wall_s']:.1f}s ESS {rec['cold']['min_ess_bulk']:.0f} | "
            f"warm {rec['warm']['wall_s']:.1f}s ESS {rec['warm']['min_ess_bulk']:.0f}",
            file=sys.stderr,
            flush=True,
        )
    return rec


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("mbct-bayes", "pymc", "pytensor", "nutpie", "numba", "arviz", "bambi", "formulae", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _machine() -> dict:
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return "?"

    return {
        "date": sh("date"),
        "nproc": sh("nproc"),
        "cpu": sh("lscpu | grep 'Model name' | sed 's/Model name:\\s*//'"),
        "ram": sh("free -h | awk '/^Mem:/ {print $2}'"),
        "os": platform.platform(),
    }


def _fmt(x, spec=".1f"):
    return "—" if x is None else format(x, spec)


def _markdown(results: list[dict], meta: dict) -> str:
    by = {(r["tool"], r["size"]): r for r in results}
    lines = [
        "# Fit benchmark: mbct-bayes vs bambi vs plain PyMC",
        "",
        "Generated by `benchmarks/bench_fit.py` (one run; every number below comes from that run).",
        "",
        f"- Date: {meta['machine']['date']}",
        f"- Machine: {meta['machine']['nproc']} cores, {meta['machine']['cpu']}, RAM {meta['machine']['ram']}, "
        f"{meta['machine']['os']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- Command: `{meta['command']}`",
        f"- Settings: draws={meta['draws']}, tune={meta['tune']}, chains={meta['chains']} for every tool; "
        f"cold = first fit in a fresh process with an {'existing' if meta['keep_cache'] else 'empty'} "
        "PyTensor/numba compile cache, compile included; warm = second fit of new data "
        "(same shape, another seed) in the same process.",
        f"- Model: `embedded ~ E + C + F + (1|site)`, bernoulli, priors of `models/bernoulli.toml`; "
        f"data `simulate_observations(n_sites, per_site, 'bernoulli', seed={COLD_DATA_SEED})` (cold) and "
        f"`seed={WARM_DATA_SEED}` (warm).",
        "- ESS: min bulk ESS over {Intercept, beta_E, beta_C, beta_F, sigma_site}; ESS/s = that / wall time "
        "of the fit call (model build, compile and sampling; imports excluded, shown separately).",
        "",
        "| size | fit | tool | sampler | wall s | min bulk ESS | ESS/s | ESS/s ratio ours/tool | max R-hat | div | min ESS site effects |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    samplers = {
        "ours": "nutpie, compiled once",
        "bambi": "PyMC NUTS (bambi default; cores=1 here)",
        "bambi_cores2": "PyMC NUTS, cores=2 (not default)",
        "pymc": "pm.sample default",
    }
    for size in SIZES:
        for phase in ("cold", "warm"):
            ours = by.get(("ours", size), {}).get(phase)
            for tool in TOOLS:
                r = by.get((tool, size))
                if r is None:
                    continue
                if "error" in r:
                    lines.append(f"| {size} | {phase} | {tool} | failed: {r['error'][-80:]!r} |||||||||")
                    continue
                m = r[phase]
                ratio = ours["ess_per_s"] / m["ess_per_s"] if ours and tool != "ours" else None
                sampler = samplers[tool]
                if tool == "pymc":
                    sampler += " (" + ("nutpie" if "nutpie" in r.get("sampler", "") else r.get("sampler", "?")) + ")"
                lines.append(
                    f"| {size} | {phase} | {tool} | {sampler} | {m['wall_s']:.1f} | {m['min_ess_bulk']:.0f} | "
                    f"{m['ess_per_s']:.1f} | {_fmt(ratio, '.2f')} | {m['max_r_hat']:.3f} | "
                    f"{m['divergences']} | {m['min_ess_bulk_site_effects']:.0f} |"
                )
    lines += [
        "",
        "Imports (s, per fresh process): "
        + ", ".join(f"{r['tool']}/{r['size']} {r['import_s']:.1f}" for r in results if "import_s" in r),
    ]

    # targets
    def ratio(size, phase, tool="bambi"):
        try:
            return by[("ours", size)][phase]["ess_per_s"] / by[(tool, size)][phase]["ess_per_s"]
        except (KeyError, ZeroDivisionError):
            return None

    def wall_ratio(size):
        try:
            return by[("ours", size)]["cold"]["wall_s"] / by[("bambi", size)]["cold"]["wall_s"]
        except KeyError:
            return None

    def verdict(ok):
        return "—" if ok is None else ("MET" if ok else "NOT MET")

    r_warm = ratio("reference", "warm")
    r_cold = wall_ratio("reference")
    r_large_w, r_large_c = ratio("large", "warm"), ratio("large", "cold")
    lines += [
        "",
        "## Targets (issue 2)",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| warm refit, reference size: ESS/s ≥ {TARGET_WARM_REFERENCE:g}× bambi | {_fmt(r_warm, '.1f')}× | "
        f"{verdict(None if r_warm is None else r_warm >= TARGET_WARM_REFERENCE)} |",
        f"| cold fit, reference size: wall time no slower than bambi | ours/bambi wall = {_fmt(r_cold, '.2f')} "
        f"(ESS/s ratio {_fmt(ratio('reference', 'cold'), '.1f')}×) | {verdict(None if r_cold is None else r_cold <= 1.0)} |",
        f"| cold fit, large size: wall time no slower than bambi | ours/bambi wall = {_fmt(wall_ratio('large'), '.2f')} | "
        f"{verdict(None if wall_ratio('large') is None else wall_ratio('large') <= 1.0)} |",
        f"| large size: ESS/s ≥ {TARGET_LARGE:g}× bambi (warm; cold in brackets) | {_fmt(r_large_w, '.1f')}× "
        f"({_fmt(r_large_c, '.1f')}×) | {verdict(None if r_large_w is None else min(r_large_w, r_large_c or 0) >= TARGET_LARGE)} |",
    ]

    # parametrization check
    lines += [
        "",
        "## Site-effect parametrization (ours, build_model + nutpie, warm data)",
        "",
        "| size | auto rule picks | variant | compile s | sample s (warm fit: wall) | min bulk ESS | ESS/s (sampling) | "
        "min ESS site effects | mean grad evals/draw | div |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in SIZES:
        r = by.get(("ours", size), {})
        for key, m in (r.get("parametrization") or {}).items():
            lines.append(
                f"| {size} | {'centred' if r['auto_centered'] else 'non-centred'} | {key} | "
                f"{'(= warm fit)' if m.get('reused_warm_fit') else format(m['compile_s'], '.1f')} | "
                f"{m['sample_s']:.1f} | {m['min_ess_bulk']:.0f} | {m['ess_per_s_sampling']:.1f} | "
                f"{m['min_ess_bulk_site_effects']:.0f} | {_fmt(m.get('mean_grad_evals'))} | {m['divergences']} |"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="reference,large")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument(
        "--large-tools",
        default="ours,bambi",
        help="tools at the large size (all four take ~35 min on 2 cores; default ~20 min)",
    )
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per worker process")
    ap.add_argument("--keep-cache", action="store_true", help="use the normal PyTensor/numba cache")
    ap.add_argument("--no-param-check", dest="param_check", action="store_false")
    ap.add_argument("--json", default=str(HERE / "results_fit.json"))
    ap.add_argument("--md", default=str(HERE / "RESULTS_fit.md"))
    ap.add_argument("--verbose", action="store_true")
    # worker mode (internal)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tool", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    ap.add_argument("--param-check", dest="param_check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        rec = worker(args)
        Path(args.json_out).write_text(json.dumps(rec, indent=1))
        return 0

    sizes = [s for s in args.sizes.split(",") if s]
    tools = [t for t in args.tools.split(",") if t]
    t0 = time.perf_counter()
    large_tools = [t for t in args.large_tools.split(",") if t]
    results = [_spawn(tool, size, args) for size in sizes for tool in (large_tools if size == "large" else tools)]
    meta = {
        "machine": _machine(),
        "versions": _versions(),
        "command": " ".join([".venv/bin/python", "benchmarks/bench_fit.py", *(argv or sys.argv[1:])]),
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "keep_cache": args.keep_cache,
        "total_s": time.perf_counter() - t0,
    }
    Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    md = _markdown(results, meta)
    Path(args.md).write_text(md)
    print(md)
    print(f"total {meta['total_s']:.0f}s; wrote {args.json} and {args.md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
