"""Benchmark: vectorised cluster-trial simulation vs a straightforward per-trial loop.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/bench_power.py [--sims 10000] \
        [--markdown benchmarks/RESULTS_power.md]

Design: 2 arms x 15 clusters x 20 members, typical-cluster p0 = 0.30, p1 = 0.45, proportion-scale
ICC 0.05 (sigma_b from :func:`mbct_bayes.power.sigma_b_from_icc`), pooled two-sample t-test on
cluster proportions at alpha = 0.05, success = significant with the estimate in the effect's
direction. Both paths are measured in the same run:

* end to end — ``mbct_bayes.power.simulate`` (generation + analysis, serial) against a loop that
  per trial draws the cluster effects and counts with numpy and calls
  ``scipy.stats.ttest_ind``;
* analysis only — on one shared set of simulated cluster proportions, the vectorised
  ``cluster_t_test`` against ``scipy.stats.ttest_ind`` per trial (the decisions must agree
  exactly).

With ``--assurance-fit FIT.nc`` (issue 11) it times instead ``mbct_bayes.power.assurance`` from
that fit at 15 clusters per arm x 20, one trial per posterior draw: over the population of the
fitted sites (the default) against all services alike (``profile={}``), best of 3 each:

    .venv/bin/python benchmarks/bench_power.py --assurance-fit fit.nc
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import time
import warnings

import numpy as np
from scipy import special, stats

from mbct_bayes.power import cluster_t_test, power_curve, sigma_b_from_icc

P0, P1, ICC, C, M, ALPHA = 0.30, 0.45, 0.05, 15, 20, 0.05


def simulate(*, clusters_per_arm: int, cluster_size: int, n_jobs: int = 1, **kw) -> dict[str, float]:
    """Simulated power of one design: ``mbct_bayes.power.simulate`` without its size check (the
    extra null run that ``simulate`` adds to report ``actual_size``), so the same trials are timed."""
    row = power_curve(clusters=[clusters_per_arm], cluster_sizes=[cluster_size], n_jobs=n_jobs, **kw).iloc[0]
    return {key: float(row[key]) for key in ("power", "power_mc_low", "power_mc_high")}


def loop_end_to_end(sims: int, sigma_b: float, seed: int) -> float:
    """The straightforward way: one trial at a time, scipy's t-test."""
    rng = np.random.default_rng(seed)
    eta = special.logit(np.repeat([P0, P1], C))
    successes = 0
    for _ in range(sims):
        prob = special.expit(eta + sigma_b * rng.standard_normal(2 * C))
        prop = rng.binomial(M, prob) / M
        res = stats.ttest_ind(prop[C:], prop[:C])
        successes += bool(res.pvalue < ALPHA and res.statistic > 0)
    return successes / sims


def loop_analysis(prop_a: np.ndarray, prop_b: np.ndarray) -> np.ndarray:
    out = np.empty(len(prop_a), dtype=bool)
    for i in range(len(prop_a)):
        res = stats.ttest_ind(prop_b[i], prop_a[i])
        out[i] = res.pvalue < ALPHA  # nan (no variation, no difference) compares False
    return out


def timed(fn, repeat: int = 1):
    best, value = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def machine() -> str:
    try:
        model = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip()
            for line in model.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    versions = f"Python {platform.python_version()}, numpy {np.__version__}"
    return f"{model}, {os.cpu_count()} CPUs (nproc), {versions}"


def bench_assurance(path: str, seed: int) -> str:
    """Assurance over the fitted sites vs all alike, from one fit: seconds and answers."""
    from mbct_bayes.model.fit import load_fit
    from mbct_bayes.power import assurance

    fit = load_fit(path)
    design = dict(clusters_per_arm=C, cluster_size=M, seed=seed)
    assurance(fit, **{**design, "sims": 200})  # warm-up (imports, caches)
    t_pop, pop = timed(lambda: assurance(fit, **design), repeat=3)
    t_alike, alike = timed(lambda: assurance(fit, profile={}, **design), repeat=3)
    rows = [("population of the fitted sites (default)", t_pop, pop), ("all services alike (profile)", t_alike, alike)]
    lines = [
        "## Assurance over a population of services (`mbct_bayes.power.assurance`, issue 11)",
        "",
        f"Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}. Machine: {machine()}.",
        "",
        f"Fit `{path}`: {fit.n_draws:,} posterior draws, one simulated trial per draw, {C} clusters per arm x "
        f"{M} members, pooled t-test, seed {seed}; best of 3 (shared machine: other jobs add noise).",
        "",
        "| population | seconds | assurance (95% MC) | power at posterior mean |",
        "|---|---:|---:|---:|",
        *[
            f"| {name} | {sec:.2f} | {r['assurance']:.3f} ({r['assurance_mc_low']:.3f}-{r['assurance_mc_high']:.3f})"
            f" | {r['power_at_posterior_mean']:.3f} |"
            for name, sec, r in rows
        ],
        "",
        f"- Ratio population / profile: **{t_pop / t_alike:.1f}x** the time.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--markdown", help="write the results section (Markdown) to this file")
    parser.add_argument("--assurance-fit", help="time assurance over a population of services from this fit")
    args = parser.parse_args()
    if args.assurance_fit:
        text = bench_assurance(args.assurance_fit, args.seed)
        print(text)
        if args.markdown:
            from mbct_bayes.io import write_text

            write_text(args.markdown, text)
        return
    warnings.simplefilter("ignore", RuntimeWarning)  # scipy: constant rows in a few trials
    sims, sigma_b = args.sims, sigma_b_from_icc(ICC, P0)
    kw = dict(
        p0=P0, p1=P1, clusters_per_arm=C, cluster_size=M, sigma_b=sigma_b, sims=sims, seed=args.seed
    )

    simulate(**{**kw, "sims": 1000})  # warm-up (imports, caches)
    t_vec, vec = timed(lambda: simulate(**kw), repeat=3)
    t_jobs, jobs = timed(lambda: simulate(**kw, n_jobs=2))
    t_loop, loop_power = timed(lambda: loop_end_to_end(sims, sigma_b, args.seed))

    rng = np.random.default_rng(args.seed)
    eta = special.logit(np.array([P0, P1]))[:, None, None]
    prop = rng.binomial(M, special.expit(eta + sigma_b * rng.standard_normal((2, sims, C)))) / M
    t_vec_an, (sig, _) = timed(lambda: cluster_t_test(prop[0], prop[1], [C], ALPHA), repeat=3)
    t_loop_an, sig_loop = timed(lambda: loop_analysis(prop[0], prop[1]))
    agree = bool((sig[:, 0] == sig_loop).all())

    rows = [
        ("end to end, vectorised (serial)", t_vec, vec["power"]),
        ("end to end, vectorised (2 local processes)", t_jobs, jobs["power"]),
        ("end to end, per-trial loop + scipy ttest_ind", t_loop, loop_power),
        ("analysis only, vectorised cluster_t_test", t_vec_an, float(sig[:, 0].mean())),
        ("analysis only, per-trial scipy ttest_ind", t_loop_an, float(sig_loop.mean())),
    ]
    lines = [
        "## Cluster RCT power (`mbct_bayes.power`)",
        "",
        f"Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}. "
        f"Machine: {machine()}.",
        "",
        f"{sims:,} simulated trials, 2 arms x {C} clusters x {M} members, typical-cluster "
        f"p0 = {P0}, p1 = {P1}, proportion-scale ICC {ICC} (sigma_b = {sigma_b:.3f}), pooled "
        f"t-test on cluster proportions, alpha = {ALPHA}. "
        f"`python benchmarks/bench_power.py --sims {sims}`; vectorised times are the best of 3, "
        "loops run once, all in one run (on a shared machine: other jobs may add noise).",
        "",
        "| path | seconds | power / rejection rate |",
        "|---|---:|---:|",
        *[f"| {name} | {sec:.3f} | {value:.4f} |" for name, sec, value in rows],
        "",
        f"- Speed-up end to end (loop / vectorised): **{t_loop / t_vec:.0f}x** (target >= 50x).",
        f"- Speed-up analysis only: **{t_loop_an / t_vec_an:.0f}x**; decisions identical to scipy "
        f"per trial: {agree}.",
        f"- Vectorised power {vec['power']:.4f} (MC 95% {vec['power_mc_low']:.4f}-"
        f"{vec['power_mc_high']:.4f}) vs loop {loop_power:.4f}: same model, different random "
        "streams.",
        "- 2 local processes equal the serial result exactly "
        f"({jobs['power'] == vec['power']}); at this size process start-up outweighs the work.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        from mbct_bayes.io import write_text

        write_text(args.markdown, text)


if __name__ == "__main__":
    main()
