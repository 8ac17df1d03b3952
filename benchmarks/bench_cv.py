"""Benchmark: 10-fold leave-site-out CV, compiled-once refit vs a new model compiled per fold.

Reference workload: the bundled example (40 sites × 5 units, bernoulli E + C + F + site). Both
ways run in this one process, cold (no compiled model cached beforehand), on the same folds and
per-fold sampler seeds:

* **compiled once** — :func:`mbct_bayes.forecast.crossval.evaluate`: one ``compile_model``, then per fold
  ``CompiledModel.sample(rows=train_mask)``, held-out sites predicted as new sites, scored; the
  refits after the first overlap on threads (evaluate's default). Also timed with one fold at a
  time, to show what overlapping adds.
* **naive** — per fold ``mbct_bayes.fit(training rows, spec)``: the PyMC model is built and
  nutpie-compiled again each fold, then the held-out sites are predicted as new sites.

``mbct_bayes.fit`` (like :func:`evaluate`) keeps compiled models in memory keyed by the model's
structure, which would quietly turn the naive loop into a compiled-once one; the benchmark
empties those caches before every naive fold. An untimed warm-up compile (of a 39-site model)
comes first, so that neither way pays the one-off JIT of PyTensor's numba dispatchers. By
default PyTensor's on-disk cache is a fresh folder (``--warm-cache``: the normal one).

Run by hand:  .venv/bin/python benchmarks/bench_cv.py [--draws 1000 --tune 1000 --chains 4]
Results are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warm-cache", action="store_true", help="use PyTensor's normal on-disk compile cache")
    args = parser.parse_args()
    cache = "warm (existing PyTensor cache)"
    if not args.warm_cache:
        # must be set before pytensor is first imported
        folder = tempfile.mkdtemp(prefix="bench-cv-pytensor-")
        os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={folder}"
        cache = f"cold (fresh PyTensor cache {folder})"

    import mbct_bayes as mb
    from mbct_bayes.planning.predict import eta_draws, p_embedded

    ev = sys.modules["mbct_bayes.forecast.crossval"]  # the module (mb.evaluate is the function)

    warnings.simplefilter("ignore", mb.ConvergenceWarning)
    warnings.simplefilter("ignore", mb.DataWarning)  # "only 4 sites" when validating a held-out fold
    obs = mb.read_observations(ROOT / "data" / "example" / "observations.csv")
    spec = mb.ModelSpec.from_toml(ROOT / "models" / "bernoulli.toml")
    sampler = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    print(
        f"workload: {obs['site'].nunique()} sites × {len(obs) // obs['site'].nunique()} units, "
        f"{args.folds}-fold leave-site-out, {args.chains} chains × {args.draws} draws "
        f"(+{args.tune} tuning) per fold; compile cache: {cache}"
    )

    # -- warm-up (not timed): the first nutpie compile in a process also JIT-compiles PyTensor's
    # generic numba dispatchers; do that once on another shape (39 sites) so that neither way
    # below pays it
    start = time.perf_counter()
    warm = obs[obs["site"] != obs["site"].iloc[0]]
    mb.compile_model(warm, spec)._nutpie_model()
    print(f"warm-up compile (39 sites, not counted): {time.perf_counter() - start:.1f} s")

    # -- compiled once (evaluate's default: refits after the first overlap on threads) ----------
    _forget_compiled()
    start = time.perf_counter()
    result = ev.evaluate(obs, spec, folds=args.folds, seed=args.seed, **sampler)
    t_once = time.perf_counter() - start
    first_fold = float(result.folds["seconds"].max())  # the fold that compiled (the others wait for it)
    settings = mb.SamplerSettings(chains=args.chains)
    at_once = ev.concurrent_folds(ev._Problem(obs, None, spec, settings, False), args.folds - 1)
    print(
        f"compiled once: {t_once:.1f} s total (first fold incl. compile {first_fold:.1f} s; the other "
        f"{args.folds - 1} folds {t_once - first_fold:.1f} s, {at_once} at a time)"
    )
    # the same refits one at a time, the compiled model kept (so no compile is timed): what
    # overlapping folds adds. Counted as first fold (compile) + these refits, for a like-for-like
    # total beside the naive loop, which also runs one fold at a time.
    default_concurrency = ev.concurrent_folds
    ev.concurrent_folds = lambda problem, n_tasks: 1
    start = time.perf_counter()
    ev.evaluate(obs, spec, folds=args.folds, seed=args.seed, **sampler)
    t_refits = time.perf_counter() - start
    ev.concurrent_folds = default_concurrency
    t_one = first_fold + t_refits * (args.folds - 1) / args.folds
    print(
        f"compiled once, one fold at a time: {args.folds} refits {t_refits:.1f} s "
        f"({t_refits / args.folds:.2f} s each) → {t_one:.1f} s with the compile"
    )

    # -- naive: a new model built and compiled per fold ---------------------------------------
    fold_of = result.predictions["fold"].to_numpy()
    seeds = ev.fold_seeds(args.seed, args.folds)
    start = time.perf_counter()
    per_fold, p_naive = [], np.empty(len(obs))
    for k in range(args.folds):
        t0 = time.perf_counter()
        _forget_compiled()  # fit() would otherwise reuse a compiled model of the same shape
        test = fold_of == k + 1
        fit = mb.fit(obs[~test].reset_index(drop=True), spec, seed=seeds[k][0], **sampler)
        held = mb.validate_observations(obs[test].reset_index(drop=True), spec)
        eta = eta_draws(fit, held, kind="new_site", seed=seeds[k][1])
        p_naive[test] = p_embedded(fit, eta).mean(axis=0)
        per_fold.append(time.perf_counter() - t0)
    t_naive = time.perf_counter() - start
    print(
        f"naive (build + compile per fold): {t_naive:.1f} s total "
        f"({np.mean(per_fold):.1f} s per fold, min {np.min(per_fold):.1f}, max {np.max(per_fold):.1f})"
    )
    print(f"speed-up: {t_naive / t_once:.1f}× (one fold at a time: {t_naive / t_one:.1f}×)")
    diff = np.abs(p_naive - result.predictions["p"].to_numpy())
    print(
        "same folds and seeds, forecasts agree within Monte Carlo error: "
        f"mean |Δp| = {diff.mean():.3f}, max {diff.max():.3f}"
    )


def _forget_compiled() -> None:
    """Empty the one in-memory cache of compiled models (not PyTensor's)."""
    sys.modules["mbct_bayes.forecast.crossval"].clear_cache()


if __name__ == "__main__":
    main()
