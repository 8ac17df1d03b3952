"""What several commands share: sampler and measured-score options, survey options, the one fit.

One definition each, imported by the command modules (``fit``, ``demo``, ``predict``, ``plan``,
``power``, ``evaluate``, ``check``, ``simulate``, ``validate``, ``score``, ``reliability``); this
module registers no command itself.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import pandas as pd

from mbct_bayes.errors import ConvergenceWarning, DataError
from mbct_bayes.families import get_family
from mbct_bayes.model.fit import compile_model
from mbct_bayes.model.sampling import SamplerSettings, model_defaults, sampler_settings
from mbct_bayes.schema import read_table
from mbct_bayes.spec import ModelSpec
from mbct_bayes.survey.scoring import parse_columns, read_codebook, read_responses, score_responses


def say(message: str) -> None:
    """Progress and notes go to stderr, so stdout holds only the command's result."""
    print(message, file=sys.stderr, flush=True)


# -- sampling ------------------------------------------------------------------------------------


def add_sampler_args(parser: argparse.ArgumentParser, *, tune: int = 1000) -> None:
    """Sampler options shared by every command that fits (``--draws`` unsaid: the model's default)."""
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same draws; default 1)")
    parser.add_argument(
        "--draws", type=int, default=None,
        help="posterior draws per chain (default 1000; 2000 for transition models, at target acceptance 0.85)",
    )
    parser.add_argument("--tune", type=int, default=tune, help=f"tuning steps per chain (default {tune})")
    parser.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    parser.add_argument("--sampler", choices=("nutpie", "pymc"), default="nutpie", help="NUTS implementation")


def sampler_settings_from(args: argparse.Namespace, spec: ModelSpec | None = None) -> SamplerSettings:
    """The one :class:`~mbct_bayes.model.sampling.SamplerSettings` of a command's sampler options.

    Every command that samples (fit, demo, evaluate, check) makes its settings here, before
    reading any data, so a bad ``--draws`` is a one-line error at once. Options left unsaid
    (``None``) take ``spec``'s defaults (:func:`~mbct_bayes.model.sampling.model_defaults`) once
    the spec is read, or :class:`SamplerSettings`'s without one.
    """
    base = SamplerSettings() if spec is None else model_defaults(spec)
    return sampler_settings(
        args.sampler, base, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed
    )


def fit_model(observations, spec, settings, *, quiet: bool = False, responses=None, source: str = "observations"):
    """Validate and compile (bad input fails here, before any sampling), then sample with ``settings``."""

    compiled = compile_model(observations, spec, responses=responses, sampler=settings, source=source)
    if not quiet:
        say(
            f"sampling {settings.chains} chains × {settings.draws} draws ({settings.tune} tuning) "
            f"with {compiled.sampler}…"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = compiled.sample(settings=settings, progress=sys.stderr.isatty() and not quiet)
        result.warn_if_failed()
    for w in caught:
        say(f"warning: {w.message}")
    return result


# -- new sites' measured scores (predict, plan, power) -------------------------------------------


def add_responses_args(parser: argparse.ArgumentParser, responses_help: str, metavar: str | None = None) -> None:
    """``--responses`` (what it is for, per command), ``--codebook`` and ``--columns``, which
    :func:`read_responses_option` reads (fit, predict, plan, check)."""
    parser.add_argument("--responses", metavar=metavar, help=responses_help)
    parser.add_argument("--codebook", help="codebook CSV: score the --responses items first")
    parser.add_argument(
        "--columns", metavar="MAP",
        help="with --codebook: your file's id column names, e.g. site=Trust,respondent=ID,role=Job",
    )


def add_measured_args(parser: argparse.ArgumentParser) -> None:
    """Options that give a latent fit's new sites their measured scores (predict, plan)."""
    add_responses_args(
        parser,
        "latent fits: the new sites' respondent-level scores (or survey items with --codebook); "
        "their means become the sites' E, C, F",
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
        say(f"note: the sites' E, C, F were {table['scores'].iloc[0]} (latent fit; see column 'scores')")


# -- survey files (score, reliability) -----------------------------------------------------------


def add_survey_args(p: argparse.ArgumentParser) -> None:
    """The responses file, its codebook, its column names and the share of items to answer."""
    p.add_argument("responses", help="responses CSV: site, respondent, role and the item columns")
    p.add_argument(
        "--codebook",
        required=True,
        metavar="CODEBOOK",
        help="codebook CSV (item, construct, subscale, reverse, min, max, text, roles), "
        "e.g. data/codebook_orca_mbct.csv",
    )
    p.add_argument(
        "--columns",
        metavar="MAP",
        help="your file's names for the id columns, e.g. site=Trust,respondent=ID,role=Job "
        "(outputs use site, respondent, role)",
    )
    p.add_argument(
        "--min-answered",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="score a subscale only when at least this share of the items the respondent was "
        "asked is answered (default 0.5, the ORCA rule)",
    )


def survey_columns(args: argparse.Namespace) -> dict[str, str] | None:
    """``--columns`` parsed, or None when the file already uses site, respondent, role."""
    return parse_columns(args.columns) if getattr(args, "columns", None) else None


# -- observations (simulate, validate) -----------------------------------------------------------


def outcome_counts(df: pd.DataFrame, spec: ModelSpec) -> dict[str, int]:
    """Counts of each outcome value: 0/1, embedded/not embedded units, or each level in order."""
    return get_family(spec.family).outcome_counts(df, spec)
