"""``fit``, ``summary``, ``predict`` and ``demo``: the model's main job from the command line."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from mbct_bayes.errors import ConvergenceWarning, DataError
from mbct_bayes.io import check_output_dir, check_output_path, dumps_json, write_json, write_table
from mbct_bayes.model.fit import compile_model, load_fit
from mbct_bayes.model.sampling import SamplerSettings
from mbct_bayes.model.simulate import simulate_observations
from mbct_bayes.schema import read_table, validate_observations
from mbct_bayes.spec import ModelSpec
from mbct_bayes.survey.scoring import parse_columns, read_codebook, read_responses, score_responses

EXIT_NOT_CONVERGED = 3
EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "example"


def add_sampler_args(parser: argparse.ArgumentParser, *, draws: int = 1000, tune: int = 1000) -> None:
    """Sampler options shared by every command that fits."""
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same draws; default 1)")
    parser.add_argument("--draws", type=int, default=draws, help=f"posterior draws per chain (default {draws})")
    parser.add_argument("--tune", type=int, default=tune, help=f"tuning steps per chain (default {tune})")
    parser.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    parser.add_argument("--sampler", choices=("nutpie", "pymc"), default="nutpie", help="NUTS implementation")


def sampler_settings_from(args: argparse.Namespace):
    """The one :class:`~mbct_bayes.model.sampling.SamplerSettings` of a command's sampler options.

    Every command that samples (fit, demo, evaluate, check) makes its settings here, before
    reading any data, so a bad ``--draws`` is a one-line error at once.
    """
    return SamplerSettings(
        draws=args.draws, tune=args.tune, chains=args.chains, sampler=args.sampler, seed=args.seed
    )


def add_measured_args(parser: argparse.ArgumentParser) -> None:
    """Options that give a latent fit's new sites their measured scores (predict, plan)."""
    parser.add_argument(
        "--responses",
        help="latent fits: the new sites' respondent-level scores (or survey items with --codebook); "
        "their means become the sites' E, C, F",
    )
    parser.add_argument("--codebook", help="codebook CSV: score the --responses items first")
    parser.add_argument(
        "--columns", metavar="MAP",
        help="with --codebook: your file's id column names, e.g. site=Trust,respondent=ID,role=Job",
    )
    parser.add_argument(
        "--scores-are-true", dest="scores_are_true", action="store_true",
        help="latent fits: take the sites' E, C, F as true site scores, not measurements",
    )


def add_region_mode(parser: argparse.ArgumentParser) -> None:
    """``--region-mode mixture|new``: where a site with an empty region is (region models)."""
    parser.add_argument(
        "--region-mode", choices=("mixture", "new"), default="mixture",
        help="a site with an empty region: 'mixture' (default) is one of the fitted regions in "
        "proportion to their sites; 'new' is a region not in the data (wider forecasts)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit a model spec to observations and save the fit (.nc)")
    p.add_argument("observations", help="observations CSV or Parquet")
    p.add_argument("--model", required=True, help="model spec TOML (see models/)")
    p.add_argument("--out", required=True, help="fit file to write (.nc)")
    p.add_argument(
        "--responses",
        help="latent models: respondent-level data (E, C, F scores, or survey items with --codebook)",
    )
    p.add_argument("--codebook", help="codebook CSV: score the --responses items first")
    p.add_argument(
        "--columns", metavar="MAP",
        help="with --codebook: your file's id column names, e.g. site=Trust,respondent=ID,role=Job",
    )
    add_sampler_args(p)
    p.add_argument("--strict", action="store_true", help="exit 3 when the diagnostics gate fails")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("summary", help="posterior summary of a saved fit")
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("predict", help="P(embedded) for new, typical or known sites")
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("sites", help="CSV/Parquet with the predictors (and site, region columns)")
    p.add_argument("--out", required=True, help="predictions CSV to write")
    p.add_argument("--kind", choices=("new_site", "typical_site", "known_site"), default="new_site")
    p.add_argument("--seed", type=int, default=0, help="seed for new-site effect draws")
    add_measured_args(p)
    add_region_mode(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("demo", help="the whole main job on the bundled example data")
    p.add_argument("--out", default="demo-output", help="folder for the outputs (default demo-output)")
    add_sampler_args(p)
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(func=cmd_demo)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_responses_option(args: argparse.Namespace):
    """Respondent scores for a latent fit: read as given, or scored from items with a codebook."""
    if getattr(args, "columns", None) and not args.codebook:
        raise DataError("--columns renames survey item files; it needs --responses with --codebook")
    if args.codebook and not args.responses:
        raise DataError("--codebook needs --responses (the survey items to score)")
    if not args.responses:
        return None
    if args.codebook:
        codebook = read_codebook(args.codebook)
        columns = parse_columns(args.columns) if args.columns else None
        return score_responses(read_responses(args.responses, codebook, columns=columns), codebook)
    return read_table(args.responses, what="responses")


def note_scores(table) -> None:
    """Say on stderr what a latent fit's new-site scores were taken as (the ``scores`` column)."""
    if "scores" in table.columns and len(table):
        _say(f"note: the sites' E, C, F were {table['scores'].iloc[0]} (latent fit; see column 'scores')")


def _fit(observations, spec, settings, *, quiet: bool = False, responses=None, source: str = "observations"):
    """Validate and compile (bad input fails here, before any sampling), then sample with ``settings``."""
    compiled = compile_model(observations, spec, responses=responses, sampler=settings, source=source)
    if not quiet:
        _say(
            f"sampling {settings.chains} chains × {settings.draws} draws ({settings.tune} tuning) "
            f"with {compiled.sampler}…"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = compiled.sample(settings=settings, progress=sys.stderr.isatty() and not quiet)
        result.warn_if_failed()
    for w in caught:
        _say(f"warning: {w.message}")
    return result


def cmd_fit(args: argparse.Namespace) -> int:
    out = check_output_path(args.out)
    settings = sampler_settings_from(args)
    spec = ModelSpec.from_toml(args.model)
    table = read_table(args.observations, what="observations")
    responses = read_responses_option(args)
    result = _fit(table, spec, settings, quiet=args.json, responses=responses, source=args.observations)
    result.save(out)
    if args.json:
        print(dumps_json(result.summary()))
    else:
        print(result.summary_text())
        _say(f"fit written to {out}")
    if args.strict and not result.diagnostics["ok"]:
        _say("error: --strict: the fit failed the diagnostics gate (it was still written, for inspection)")
        return EXIT_NOT_CONVERGED
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    result = load_fit(args.fit)
    print(dumps_json(result.summary()) if args.json else result.summary_text())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    out = check_output_path(args.out)
    responses = read_responses_option(args)
    result = load_fit(args.fit)
    sites = read_table(args.sites, what="sites")
    predictions = result.predict(
        sites,
        kind=args.kind,
        seed=args.seed,
        responses=responses,
        scores_are_true=args.scores_are_true,
        region_mode=args.region_mode,
    )
    write_table(out, predictions)
    _say(f"{len(predictions)} predictions ({args.kind}) written to {out}")
    note_scores(predictions)
    return 0


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
    spec_path = Path(__file__).resolve().parents[2] / "models" / "bernoulli.toml"
    spec = ModelSpec.from_toml(spec_path) if spec_path.exists() else ModelSpec(name="parihs-bernoulli")
    _say(f"demo: {len(obs)} observations from {obs['site'].nunique()} sites ({origin}); simulated, not real data")


    validate_observations(obs, spec, source="example observations")
    _say("demo: data validated against the spec")
    result = _fit(obs, spec, settings)
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
    print("\nP(embedded) for the example new sites (new_site: site effect drawn; typical: site effect 0, region kept):")
    cols = [c for c in ("site", "region", "E", "C", "F", "p_mean", "p_q05", "p_q95", "p_typical_mean") if c in predictions]
    shown = predictions[cols].round(3)
    if "region" in shown:
        shown["region"] = shown["region"].fillna("(unknown)")
    print(shown.to_string(index=False))

    written = ["observations.csv", "fit.nc", "summary.json", "new_sites.csv", "predictions.csv"]
    if not args.no_report:
        from mbct_bayes.report import (
            write_report,  # deferred: it draws figures, and matplotlib takes over a second to import
        )
        write_report(result, out_dir / "report.html", observations=obs, new_sites=new_sites)
        written.append("report.html")
    _say(f"demo: wrote {', '.join(written)} to {out_dir}/")
    return 0
