"""Benchmark: does the latent measurement model pass its own gate, and how fast (issue 12, item 8)?

Two fits at the package's gate settings (4 chains x 1000 draws after 1000 tuning, seed 1):

* **attenuation** — the data of ``tests/test_latent.py``'s attenuation test: 300 sites x 15 units,
  5 respondents per site, ICC(1) 0.1, site correlation 0.2, data seed 3
  (:func:`mbct_bayes.simulate_items.simulate_survey_study`), default latent spec;
* **example** — ``data/example/observations.csv`` with ``data/example/responses.csv`` scored with
  ``data/codebook_orca_mbct.csv``, spec ``models/latent.toml`` (role offsets on).

Reported per fit: compile seconds, sampling seconds, max R-hat, min bulk / tail ESS over every
gated parameter (``mbct_bayes.model.fit.diagnostics``), divergences, and min ESS per second of sampling.

Run by hand::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_latent.py --label after --out latent.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def datasets():
    import pandas as pd

    import mbct_bayes as mb
    from mbct_bayes.survey.scoring import read_codebook, score_responses
    from mbct_bayes.survey.simulate import simulate_survey_study

    codebook = read_codebook(ROOT / "data" / "codebook_orca_mbct.csv")
    obs, items, _ = simulate_survey_study(
        300, 15, codebook, beta={"E": 0.5, "C": 1.0, "F": 2.0}, respondents_per_site=5, icc1=0.1,
        site_corr=0.2, seed=3,
    )
    yield "attenuation (300 sites x 15, 5 resp.)", obs, mb.ModelSpec(measurement="latent"), score_responses(items, codebook)
    example = ROOT / "data" / "example"
    items = pd.read_csv(example / "responses.csv", dtype={"site": str, "respondent": str, "role": str})
    yield (
        "example (models/latent.toml)", mb.read_observations(example / "observations.csv"),
        mb.ModelSpec.from_toml(ROOT / "models" / "latent.toml"), score_responses(items, codebook),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, default=Path("latent.json"))
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--only", help="run only the dataset whose name starts with this")
    args = parser.parse_args()

    import mbct_bayes as mb
    from mbct_bayes.model.fit import compile_model

    warnings.simplefilter("ignore", mb.ConvergenceWarning)
    rows = []
    for name, obs, spec, scores in datasets():
        if args.only and not name.startswith(args.only):
            continue
        t0 = time.perf_counter()
        compiled = compile_model(obs, spec, responses=scores)
        compiled._nutpie_model()
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fitted = compiled.sample(seed=1, draws=args.draws, tune=args.tune, chains=args.chains)
        sample_s = time.perf_counter() - t0
        d = fitted.diagnostics
        worst = {
            key: min(((float(v[key].min()), k) for k, v in fitted.convergence.items()), key=lambda t: t[0])[1]
            for key in ("ess_bulk", "ess_tail")
        }
        row = {
            "label": args.label, "data": name, "compile_s": round(compile_s, 1), "sample_s": round(sample_s, 1),
            "max_r_hat": round(d["max_r_hat"], 4), "min_ess_bulk": round(d["min_ess_bulk"]),
            "min_ess_tail": round(d["min_ess_tail"]), "divergences": d["divergences"],
            "bulk_ess_per_s": round(d["min_ess_bulk"] / sample_s, 2),
            "tail_ess_per_s": round(d["min_ess_tail"] / sample_s, 2),
            "worst_bulk": worst["ess_bulk"], "worst_tail": worst["ess_tail"], "passed": d["ok"],
            "draws": args.draws, "tune": args.tune, "chains": args.chains,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
