"""``demo``: the four jobs on the bundled example data.

Validate and fit, predict the example new sites, evaluate the model by leave-site-out
cross-validation (the compiled model is reused, so only the refits cost time), and write one
report with every section filled: planning, the trial's assurance over its size, the forecast
evaluation and prior sensitivity; and the planning page for service leads (``planner.html``,
:func:`mbct_bayes.planner.write_planner`), which offers the example new sites as scenarios.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from mbct_bayes._format import probability
from mbct_bayes.cli._common import add_sampler_args, fit_model, sampler_settings_from, say
from mbct_bayes.errors import ConvergenceWarning
from mbct_bayes.forecast.crossval import evaluate
from mbct_bayes.io import check_output_dir, write_json, write_table
from mbct_bayes.model.simulate import simulate_observations
from mbct_bayes.schema import read_table, validate_observations
from mbct_bayes.spec import ModelSpec

REPO_DIR = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO_DIR / "data" / "example"
#: Folds of the demo's leave-site-out evaluation (evaluate's default).
DEMO_FOLDS = 10
PROBABILITY_COLUMNS = ("p_mean", "p_q05", "p_q95", "p_typical_mean")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the ``mbct-bayes`` parser."""
    p = sub.add_parser("demo", help="the whole main job on the bundled example data")
    p.add_argument("--out", default="demo-output", help="folder for the outputs (default demo-output)")
    add_sampler_args(p)
    p.add_argument("--no-report", action="store_true",
                   help="skip the HTML report and the leave-site-out evaluation and trial planning it shows")
    p.set_defaults(func=cmd_demo)


def _example_tables():
    """The bundled example (observations, new sites), simulated afresh if the files are absent."""

    obs_path, new_path = EXAMPLE_DIR / "observations.csv", EXAMPLE_DIR / "new_sites.csv"
    if obs_path.exists() and new_path.exists():
        return read_table(obs_path), read_table(new_path), str(obs_path)

    obs, _ = simulate_observations(40, 5, "bernoulli", seed=2026)
    new = obs.drop_duplicates("site").head(5)[["region", "E", "C", "F"]].reset_index(drop=True)
    new.insert(0, "site", [f"NEW{i + 1}" for i in range(len(new))])
    return obs, new, "simulated (seed 2026)"


def cmd_demo(args: argparse.Namespace) -> int:
    out_dir = check_output_dir(args.out)
    settings = sampler_settings_from(args)

    obs, new_sites, origin = _example_tables()
    spec_path = REPO_DIR / "models" / "bernoulli.toml"
    spec = ModelSpec.from_toml(spec_path) if spec_path.exists() else ModelSpec(name="parihs-bernoulli")
    say(f"demo: {len(obs)} observations from {obs['site'].nunique()} sites ({origin}); simulated, not real data")

    validate_observations(obs, spec, source="example observations")
    say("demo: data validated against the spec")
    result = fit_model(obs, spec, settings)
    print(result.summary_text())

    out_dir.mkdir(parents=True, exist_ok=True)
    result.save(out_dir / "fit.nc")  # first: the one that can fail for reasons outside the data
    write_table(out_dir / "observations.csv", obs)
    write_json(out_dir / "summary.json", result.summary())
    predictions = result.predict(new_sites, kind="new_site", seed=0)
    typical = result.predict(new_sites, kind="typical_site")
    predictions["p_typical_mean"] = typical["p_mean"]
    write_table(out_dir / "new_sites.csv", new_sites)
    write_table(out_dir / "predictions.csv", predictions)
    print("\n" + predictions_text(predictions, has_regions=bool(result.model_data.region_labels)))

    written = ["observations.csv", "fit.nc", "summary.json", "new_sites.csv", "predictions.csv"]
    if not args.no_report:
        from mbct_bayes.report import (  # deferred: it draws figures, and matplotlib takes over a second to import
            TrialSettings,
            write_report,
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            # a fold's failed gate is counted below, in one line, rather than once per fold
            warnings.simplefilter("ignore", ConvergenceWarning)
            evaluation = evaluate(obs, spec, folds=DEMO_FOLDS, sampler=settings)
        failed = int((~evaluation.folds["ok"].astype(bool)).sum())
        evaluation.save(out_dir / "evaluation")
        say(f"demo: {DEMO_FOLDS}-fold leave-site-out evaluation in {time.perf_counter() - start:.1f} s (the compiled "
            "model reused; each fold refitted with the same sampler settings"
            + (f"; {failed} fold fits failed the diagnostics gate" if failed else "") + ")")
        start = time.perf_counter()
        trial = TrialSettings()
        write_report(result, out_dir / "report.html", observations=obs, new_sites=new_sites,
                     evaluation_dir=out_dir / "evaluation", trial=trial)
        low, high = trial.clusters
        say(f"demo: report (with the trial's assurance over {low}-{high} clusters per arm) in "
            f"{time.perf_counter() - start:.1f} s")
        written += ["evaluation/", "report.html"]
    # deferred: the planner module is only needed here, after the fit
    from mbct_bayes.planner import write_planner

    # the demo owns its output folder and replaces its own files, as the tables above are replaced
    write_planner(result, out_dir / "planner.html", sites=new_sites, seed=0, force=True)
    written.append("planner.html")
    say(f"demo: wrote {', '.join(written)} to {out_dir}/")
    return 0


def predictions_text(predictions: pd.DataFrame, *, has_regions: bool) -> str:
    """The example new sites' P(embedded) as a table for the terminal, in the model's own words.

    Probabilities that round to 0 or 1 read ``< 0.001`` / ``> 0.999``; a region is named only when
    the model has region effects.
    """
    lead = ("P(embedded) for the example new sites (new_site: site effect drawn; typical: site effect 0"
            + (", its region's effect kept" if has_regions else "") + "):")
    ids = ["site", "region"] if has_regions else ["site"]
    cols = [c for c in (*ids, "E", "C", "F", *PROBABILITY_COLUMNS) if c in predictions]
    shown = predictions[cols].copy()
    for col in PROBABILITY_COLUMNS:
        if col in shown:
            shown[col] = shown[col].map(lambda v: probability(v, 3))
    if "region" in shown:
        shown["region"] = shown["region"].fillna("(unknown)")
    return lead + "\n" + shown.to_string(index=False)
