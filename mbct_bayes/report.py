"""One self-contained HTML report of a fitted model.

:func:`render_report` returns the HTML text and :func:`write_report` writes it atomically. The
file needs no network to be read: figures are embedded as base64 PNG, the style sheet is inline,
there are no scripts, fonts or links to other sites, and a Content-Security-Policy in the page
forbids loading anything that is not embedded. Every user-supplied string (site and region
names, spec name and description, column names, file paths) is HTML-escaped.

Sections: the model and data in words (with every prior in force), the diagnostics verdict, the
coefficient table, a forest plot of odds ratios, the site effects, a posterior predictive check,
the planning table for new sites and the lever chart, the assurance of a cluster trial over its
size (when a trial is given), and, when an evaluation folder is given, its scores against the
baseline and a reliability diagram; with a check folder, the simulation-based calibration.

Every probability is written by :func:`mbct_bayes._format.probability`: one that rounds to 0 or 1
at the precision shown reads ``< 0.01`` / ``> 0.99``, never ``0.00`` / ``1.00``. Words follow the
model: region wording appears only for a model with region effects.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes._format import probability, probability_interval
from mbct_bayes._version import __version__
from mbct_bayes.errors import DataError
from mbct_bayes.families import get_family
from mbct_bayes.families._base import percent
from mbct_bayes.forecast.journey import Forecast, forecast
from mbct_bayes.io import check_output_path, write_text
from mbct_bayes.model.design import categorical_predictors, design_matrix, numeric_predictors, reference_notes
from mbct_bayes.model.fit import ESS_MIN, R_HAT_MAX, Fit
from mbct_bayes.model.sensitivity import EXPLANATIONS, FLAG, FLAGGED, THRESHOLD, flagged
from mbct_bayes.planning import scenarios as planning
from mbct_bayes.planning.predict import (
    check_region_mode,
    fixed_part,
    p_embedded,
    predict,
    summarise_draws,
    trial_refusal,
    typical_part,
    validate_new_data,
)
from mbct_bayes.plots.evaluate import reliability_diagram
from mbct_bayes.plots.journey import fan_chart
from mbct_bayes.plots.model import forest_plot, plain_label, posterior_predictive, ppc_plot, site_effects_plot
from mbct_bayes.plots.planning import lever_chart
from mbct_bayes.plots.power import power_curve_figure
from mbct_bayes.power import population_from_fit
from mbct_bayes.power._assurance import population_size, services_curve
from mbct_bayes.power._kernel import ANALYSIS_TEXT
from mbct_bayes.power._settings import SimulationSettings
from mbct_bayes.schema import read_table
from mbct_bayes.selfcheck import read_check
from mbct_bayes.spec import COEF_SCALE

#: Resolution of embedded figures (pixels per inch).
DPI = 100
#: At most this many sites get a panel in the lever chart (the table lists them all).
MAX_LEVER_PANELS = 12
#: At most this many rows in the planning table.
MAX_PLANNING_ROWS = 200
#: Score rows, in this order (others follow), with the direction that is better.
SCORE_ORDER = {
    "log_score": ("log score", "higher"),
    "brier": ("Brier score", "lower"),
    "rps": ("ranked probability score", "lower"),
    "auc": ("AUC", "higher"),
    "calibration_intercept": ("calibration intercept", "closer to 0"),
    "calibration_slope": ("calibration slope", "closer to 1"),
    "ece": ("expected calibration error", "lower"),
}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
:root { --ink: #1d2330; --muted: #5b6472; --line: #d8dde5; --pass: #1b7f3b; --fail: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--ink); background: #fafbfc; }
main { max-width: 1040px; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; } h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem;
     padding-bottom: .2rem; border-bottom: 2px solid var(--line); } h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
p, li { max-width: 78ch; } .muted, figcaption, .note { color: var(--muted); } .note { font-size: .93rem; }
nav ol { columns: 2; margin: .5rem 0 0; padding-left: 1.3rem; } nav a { color: #1f4f99; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; max-width: 28rem; }
th { background: #f1f3f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.bad { color: var(--fail); font-weight: 600; } td.good { color: var(--pass); }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
code, .formula { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
.formula { background: #f5f7fa; padding: .5rem .75rem; border-radius: 4px; overflow-wrap: anywhere; }
.verdict { border: 3px solid; border-radius: 6px; padding: .75rem 1rem; margin: .75rem 0; }
.verdict.pass { border-color: var(--pass); background: #eef8f1; }
.verdict.fail { border-color: var(--fail); background: #fdf0ef; }
.verdict .word { font-size: 1.35rem; font-weight: 700; letter-spacing: .04em; }
.verdict.pass .word { color: var(--pass); } .verdict.fail .word { color: var(--fail); }
.banner { padding: .45rem .8rem; border-radius: 4px; font-weight: 600; margin: .6rem 0; }
.banner.pass { background: #eef8f1; color: var(--pass); } .banner.fail { background: #fdf0ef; color: var(--fail); }
.unavailable { border-left: 4px solid #c9a227; background: #fdf8e7; padding: .5rem .8rem; }
footer { margin-top: 3rem; font-size: .85rem; color: var(--muted); }
"""


# -- HTML building blocks -------------------------------------------------------------------------
class Html(str):
    """Text that is already HTML (built here from escaped parts); everything else is escaped."""


def esc(value: Any) -> str:
    """HTML-escape any value (quotes too, so it is safe inside attributes)."""
    if isinstance(value, Html):
        return value
    return html.escape(str(value), quote=True)


def _num(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(v):
        return "–"
    return f"{v:.{digits}f}"


_pct = percent


@dataclass(frozen=True)
class Cell:
    """A table cell: its content and a CSS class (``num``, ``bad``, ``good``)."""

    value: Any
    cls: str = ""


def _table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], *, caption: str | None = None) -> Html:
    out = ["<table>"]
    if caption:
        out.append(f"<caption class=\"muted\">{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th scope=\"col\">{esc(h)}</th>" for h in headers) + "</tr></thead><tbody>")
    for row in rows:
        cells = []
        for c in row:
            cell = c if isinstance(c, Cell) else Cell(c, "num" if isinstance(c, int | float | np.number) else "")
            value = _num(cell.value) if isinstance(cell.value, float | np.floating) else cell.value
            cls = f" class=\"{esc(cell.cls)}\"" if cell.cls else ""
            cells.append(f"<td{cls}>{esc(value)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return Html("".join(out))


def _p(text: Any, cls: str = "") -> Html:
    attr = f" class=\"{esc(cls)}\"" if cls else ""
    return Html(f"<p{attr}>{esc(text)}</p>")


def _unavailable(text: Any) -> Html:
    return Html(f"<p class=\"unavailable\">{esc(text)}</p>")


def _png_size(data: bytes) -> tuple[int, int]:
    # PNG: 8-byte signature, then the IHDR chunk whose first fields are width and height
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def figure_html(fig, alt: str, caption: Any = None, *, dpi: int = DPI) -> Html:
    """Embed a matplotlib figure as a base64 PNG ``<img>`` inside a ``<figure>``."""
    buffer = io.BytesIO()
    # no Software/URL metadata: the file should carry nothing that looks like a link
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None}, facecolor="white")
    return png_html(buffer.getvalue(), alt, caption)


def png_html(data: bytes, alt: str, caption: Any = None) -> Html:
    """Embed PNG bytes as a base64 ``<img>`` inside a ``<figure>``."""
    width, height = _png_size(data)
    encoded = base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return Html(
        f"<figure><img src=\"data:image/png;base64,{encoded}\" alt=\"{esc(alt)}\" "
        f"width=\"{width}\" height=\"{height}\">{cap}</figure>"
    )


def _figure_or_note(make, alt: str, caption: Any = None) -> Html:
    """A figure, or a visible note when drawing it failed (the rest of the report still renders)."""
    try:
        return figure_html(make(), alt, caption)
    except (DataError, ValueError, RuntimeError) as err:
        return _unavailable(f"The figure '{alt}' could not be drawn: {' '.join(str(err).split())}")


# -- evaluation folder ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationFiles:
    """What :func:`read_evaluation` found in an evaluation folder."""

    directory: Path
    metrics: dict[str, Any]
    predictions: pd.DataFrame | None


def check_evaluation_dir(directory: str | os.PathLike[str]) -> Path:
    """Check that ``directory`` is an evaluation folder with ``metrics.json``, before long work."""
    folder = Path(directory)
    hint = f"make one with 'mbct-bayes evaluate OBS.csv --model SPEC.toml --out {folder}'"
    if not folder.exists():
        raise DataError(f"{folder}: evaluation folder not found; {hint}")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, not an evaluation folder; {hint}")
    if not (folder / "metrics.json").is_file():
        raise DataError(f"{folder}: no metrics.json in the evaluation folder; {hint}")
    return folder


def read_evaluation(directory: str | os.PathLike[str], spec=None) -> EvaluationFiles:
    """Read ``metrics.json`` (required) and ``predictions.csv`` (optional) from an evaluation folder.

    Raises
    ------
    DataError
        When the folder or ``metrics.json`` is missing, or ``metrics.json`` is not the evaluation's
        JSON (an object with ``model`` and ``baseline`` scores).
    """
    folder = check_evaluation_dir(directory)
    path = folder / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; re-create it with 'mbct-bayes evaluate'") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); re-create it with 'mbct-bayes evaluate'") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("model"), dict) or not isinstance(metrics.get("baseline"), dict):
        raise DataError(f"{path}: expected an object with 'model' and 'baseline' scores; re-create it with 'mbct-bayes evaluate'")
    predictions = None
    pred_path = folder / "predictions.csv"
    if pred_path.is_file():
        ids = [c for c in ((spec.group, spec.region) if spec is not None else ("site",)) if c]
        predictions = read_table(pred_path, what="evaluation predictions", id_columns=ids)
    return EvaluationFiles(directory=folder, metrics=metrics, predictions=predictions)


# -- sections -------------------------------------------------------------------------------------
def _prior_text(prior: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v:g}" if isinstance(v, int | float) else f"{k}={v}" for k, v in prior.items() if k != "dist")
    return f"{prior['dist']}({params})"


def _prior_rows(fit: Fit) -> list[list[Any]]:
    spec, md = fit.spec, fit.model_data
    sd_of = dict(zip(md.coef_names, (float(v) for v in md.x_sd), strict=True))
    rows = []
    for name in spec.parameter_names:
        sd = sd_of.get(name)
        prior = spec.prior_for(name, sd)
        if name in spec.priors:
            source = "set in the model spec"
        elif name in spec.coef_names:
            source = f"default: Normal(0, {COEF_SCALE:g} / sd(x)) with sd(x) = {sd:.3g} in these data"
        else:
            source = "package default"
        rows.append([name, _prior_text(prior), source])
    return rows


def _family_text(spec) -> str:
    return get_family(spec.family).describe(spec)


def _outcome_text(fit: Fit) -> str:
    return get_family(fit.spec.family).describe_outcome(fit.spec, fit.model_data)


def _column_text(spec, column: str) -> str:
    """One factor of a design column: ``(E − 3)``, or ``[setting = secondary]`` (1 at that level, else 0)."""
    if column.endswith("]") and "[" in column:
        name, level = column[:-1].split("[", 1)
        return f"[{name} = {level}]"
    if spec.time_trend and column == "time":  # the trend's column: time minus the time origin
        return f"({spec.time} − {spec.time_origin:g})"
    return f"({column} − {spec.center[column]:g})"


def _formula(spec, regions: bool) -> str:
    family = get_family(spec.family)
    terms = ["Intercept"] if family.intercept else []
    for name in spec.coef_names:
        terms.append(f"β_{name}·" + "·".join(_column_text(spec, part) for part in name.split(":")))
    terms.append("u_site[s]")
    if spec.time_trend:
        terms.append(f"b_site[s]·{_column_text(spec, 'time')}")
    if regions:
        terms.append("u_region[r]")
    lhs = family.eta_label
    site_law = (
        "(u_site, b_site) ~ MvNormal(0; SDs sigma_site, sigma_slope; correlation corr_site_slope)"
        if spec.time_trend else "u_site ~ Normal(0, sigma_site)"
    )
    text = f"{lhs} = " + " + ".join(terms) + ";   " + site_law
    if regions:
        text += ", u_region ~ Normal(0, sigma_region)"
    return text + family.formula_note(spec)


def section_model(fit: Fit, summary: dict[str, Any]) -> Html:
    spec, md, data = fit.spec, fit.model_data, fit.data
    parts: list[str] = []
    if spec.name or spec.description:
        parts.append(_p(f"Model spec: {spec.name or '(unnamed)'}" + (f" — {spec.description}" if spec.description else "")))
    per_site = np.bincount(md.site_idx, minlength=len(md.site_labels))
    data_line = (
        f"{md.n_obs} observations of {len(md.site_labels)} sites "
        f"({int(per_site.min())}–{int(per_site.max())} per site, median {float(np.median(per_site)):g})"
    )
    if md.region_labels:
        counts = pd.Series(md.region_idx).map(dict(enumerate(md.region_labels))).value_counts()
        data_line += f" in {len(md.region_labels)} regions ({', '.join(f'{r}: {counts.get(r, 0)}' for r in md.region_labels)} observations)"
    else:
        data_line += "; no region effects in this model"
    if "wave" in data.columns:
        waves = pd.Series(data["wave"]).dropna().unique()
        data_line += f"; {len(waves)} wave{'s' if len(waves) != 1 else ''}"
    parts.append(_p(data_line + "."))
    parts.append(_p(_outcome_text(fit)))
    parts.append(_p(f"Family: {_family_text(spec)}"))
    if spec.measurement == "latent":
        parts.append(_p(
            "Measurement: latent. Each site's true predictor scores are unknown; each respondent's score measures them "
            "with error" + (" and a role offset" if spec.role_offsets else "") + ". The data means below are the "
            "respondents' site averages."
        ))
    parts.append(Html("<h3>Predictors and centring</h3>"))
    rows = []
    sd_of = dict(zip(md.coef_names, (float(v) for v in md.x_sd), strict=True))
    for name in numeric_predictors(spec):
        values = pd.to_numeric(data[name], errors="coerce") if name in data.columns else pd.Series(dtype=float)
        scale = spec.scale.get(name)
        rows.append([
            name, Cell(f"{spec.center[name]:g}", "num"),
            f"{scale[0]:g}–{scale[1]:g}" if scale else "none set",
            Cell(_num(values.mean(), 2), "num"), Cell(_num(sd_of[name], 2), "num"),
        ])
    parts.append(_table(["predictor", "centred at", "scale", "mean in data", "SD in data"], rows))
    notes = reference_notes(spec)
    if notes:
        counts = {c: data[c].astype(str).value_counts() for c in categorical_predictors(spec) if c in data.columns}
        parts.append(_p(
            "Categorical covariates (treatment coding: one 0/1 column per level other than the reference): "
            + "; ".join(
                note + " (rows per level: " + ", ".join(f"{lv} {int(counts[c].get(lv, 0))}"
                                                       for lv in spec.categorical[c]["levels"]) + ")"
                for c, note in zip(categorical_predictors(spec), notes, strict=True)
            ) + "."
        ))
    if spec.interactions:
        parts.append(_p("Interactions: " + ", ".join(f"{a}:{b}" for a, b in spec.interactions)
                        + " (products of the centred predictors, or of a categorical level's 0/1 column)."))
    parts.append(Html(f"<p class=\"formula\">{esc(_formula(spec, bool(md.region_labels)))}</p>"))
    family = get_family(spec.family)
    parts.append(_p(
        f"Coefficients are {family.coefficient_scale} per scale point; because predictors are centred, the intercept "
        f"is {family.intercept_words} for a typical site with every predictor at its centre"
        + (" and each categorical covariate at its reference level" if notes else "") + ".", "note",
    ))
    parts.append(Html("<h3>Priors in force</h3>"))
    parts.append(_table(["parameter", "prior", "where it comes from"], _prior_rows(fit)))
    sampler = summary.get("sampler", {})
    if any(v is not None for v in sampler.values()):
        parts.append(_p(
            f"Sampled with {sampler.get('sampler')}: {sampler.get('chains')} chains × {sampler.get('draws')} draws "
            f"after {sampler.get('tune')} tuning steps, seed {sampler.get('seed')}; site effects "
            f"{'centred' if sampler.get('centered') else 'non-centred'}.", "note",
        ))
    return Html("".join(parts))


def _diag_rows(diag: dict[str, Any]) -> list[list[Any]]:
    def ok(flag: bool) -> Cell:
        return Cell("✓ meets" if flag else "✗ fails", "good" if flag else "bad")

    r, b, t, d = diag["max_r_hat"], diag["min_ess_bulk"], diag["min_ess_tail"], diag["divergences"]
    return [
        ["largest R-hat", Cell(_num(r), "num"), f"≤ {R_HAT_MAX}", ok(bool(r <= R_HAT_MAX))],
        ["smallest bulk ESS", Cell(_num(b, 0), "num"), f"≥ {ESS_MIN}", ok(bool(b >= ESS_MIN))],
        ["smallest tail ESS", Cell(_num(t, 0), "num"), f"≥ {ESS_MIN}", ok(bool(t >= ESS_MIN))],
        ["divergent transitions", Cell(str(int(d)), "num"), "0", ok(int(d) == 0)],
    ]


def verdict_banner(diag: dict[str, Any]) -> Html:
    """One line at the top of the report; the full box is in the diagnostics section."""
    if diag["ok"]:
        return Html("<p class=\"banner pass\" id=\"verdict-banner\">Diagnostics: PASS — "
                    "see <a href=\"#diagnostics\">the diagnostics</a>.</p>")
    return Html("<p class=\"banner fail\" id=\"verdict-banner\">Diagnostics: FAIL — do not trust the numbers "
                "below; see <a href=\"#diagnostics\">the diagnostics</a>.</p>")


def section_diagnostics(diag: dict[str, Any]) -> Html:
    word = "PASS" if diag["ok"] else "FAIL"
    if diag["ok"]:
        lead = "The sampler converged by every check: the numbers in this report can be used."
    else:
        lead = ("The fit failed the diagnostics gate: do not trust these numbers. Sample longer "
                "(more --draws and --tune) or reparametrize, then make the report again.")
    problems = ""
    if diag.get("problems"):
        problems = "<ul>" + "".join(f"<li>{esc(p)}</li>" for p in diag["problems"]) + "</ul>"
    return Html(
        f"<div class=\"verdict {word.lower()}\" id=\"verdict\" data-verdict=\"{word}\">"
        f"<div class=\"word\">{word}</div><p>{esc(lead)}</p>{problems}"
        + _table(["check", "value", "needed", "verdict"], _diag_rows(diag))
        + "</div>"
    )


def typical_at_centre(fit: Fit, seed: int = 0) -> dict[str, float]:
    """P(embedded) of a typical site with every predictor at its centre (a categorical covariate at
    its reference level) and no region given.

    The same definition as everywhere (:func:`mbct_bayes.planning.predict.typical_part`: site effect 0;
    an unknown region is one of the fitted regions in proportion to their sites).
    """

    # built here rather than through predict(): at the centre the design row is 0 whatever the
    # measurement model, so a latent fit needs no measured scores for it
    centre = pd.DataFrame([{fit.spec.group: "typical", **{k: float(v) for k, v in fit.spec.center.items()}}])
    eta = fixed_part(fit.draws, design_matrix(centre, fit.spec)) + typical_part(
        fit.posterior, centre, np.random.default_rng(seed)
    )
    row = summarise_draws(p_embedded(fit.posterior, eta)).iloc[0]
    return {key: float(row[key]) for key in ("p_mean", "p_q05", "p_q50", "p_q95")}


def section_coefficients(fit: Fit, summary: dict[str, Any]) -> Html:
    def rhat_cell(v: float) -> Cell:
        return Cell(_num(v), "num" + (" bad" if not v <= R_HAT_MAX else ""))

    def ess_cell(v: float) -> Cell:
        return Cell(_num(v, 0), "num" + (" bad" if not v >= ESS_MIN else ""))

    def row(name: str, s: dict[str, float], odds: bool) -> list[Any]:
        ratio = (f"{math.exp(s['q50']):.2f} ({math.exp(s['q05']):.2f}–{math.exp(s['q95']):.2f})" if odds else "")
        return [name, Cell(_num(s["mean"]), "num"), Cell(_num(s["sd"]), "num"), Cell(_num(s["q05"]), "num"),
                Cell(_num(s["q50"]), "num"), Cell(_num(s["q95"]), "num"), Cell(ratio, "num"),
                rhat_cell(s["r_hat"]), ess_cell(s["ess_bulk"]), ess_cell(s["ess_tail"])]

    rows = [row(name, s, name != "Intercept") for name, s in summary["coefficients"].items()]
    rows += [row(f"sigma_{level}", s, False) for level, s in summary["group_sd"].items()]
    rows += [row(f"corr_{pair}", s, False) for pair, s in summary.get("group_corr", {}).items()]
    rows += [row(f"cutpoint {c['name']}", c, False) for c in summary.get("cutpoints", [])]
    rows += [row(name, s, False) for name, s in summary.get("family_parameters", {}).items()]
    family = get_family(fit.spec.family)
    parts = [_table(
        ["parameter", "mean", "SD", "5%", "median", "95%", f"{family.ratio_name} per point (90%)", "R-hat",
         "bulk ESS", "tail ESS"],
        rows,
    )]
    if fit.spec.categorical:
        parts.append(_p(
            "A categorical level's row (e.g. setting[secondary]) is the log-odds, and its odds ratio, relative to the "
            "reference level: " + "; ".join(reference_notes(fit.spec)) + ".", "note",
        ))
    if "time_trend" in summary:
        parts.append(_p(f"Time trend: {summary['time_trend']['note']}.", "note"))
    if "Intercept" in summary["coefficients"]:
        typical = typical_at_centre(fit)
        fmt = ".2f" if family.planned_is_probability else ".3g"  # a probability, or a rate
        where = (" (region unknown: one of the fitted regions in proportion to their sites)"
                 if fit.model_data.region_labels else "")
        parts.append(_p(
            f"A typical site{where} at the centre of every scale"
            + (" (each categorical covariate at its reference level)" if fit.spec.categorical else "")
            + (" embeds with probability "
               f"{probability(typical['p_q50'])} (90% interval {probability_interval(typical['p_q05'], typical['p_q95'])})."
               if family.planned_is_probability
               else f" has {family.planned_label(fit.spec)} {typical['p_q50']:{fmt}} "
               f"(90% interval {typical['p_q05']:{fmt}}–{typical['p_q95']:{fmt}})."),
            "note",
        ))
    parts.append(_p(
        f"Coefficients are on the {family.eta_scale} scale ({family.ratio_name} = exp(coefficient)); "
        "sigma_site is the SD of the site "
        "effects on that scale. R-hat and ESS values that fail the gate are shown in red.", "note",
    ))
    return Html("".join(parts))


def section_prior_sensitivity(summary: dict[str, Any]) -> Html:
    """Power-scaling prior sensitivity: a table with each parameter's verdict in words."""
    sens = summary["prior_sensitivity"]
    rows = [
        [name, Cell(_num(v["prior"]), "num" + (" bad" if v["diagnosis"] in FLAGGED else "")),
         Cell(_num(v["likelihood"]), "num"),
         Cell(f"{v['diagnosis']}: {EXPLANATIONS[v['diagnosis']]}", "bad" if v["diagnosis"] in FLAGGED else "")]
        for name, v in sens.items()
    ]
    flags = flagged(sens)
    lead = (
        f"Flagged: {', '.join(flags)}. For these numbers the prior, not only the data, sets the answer; "
        "state and defend that prior, or gather more data." if flags
        else "No number is flagged: the data, not the priors, set the results below."
    )
    return Html(
        _p(lead)
        + _table(["parameter", "prior sensitivity", "data sensitivity", "what it means"], rows)
        + _p(
            "How far each posterior moves when the prior (or the data) is made slightly stronger or weaker "
            "(power-scaling, Kallioinen et al. 2024; computed from the draws, no refit). A prior sensitivity of "
            f"{THRESHOLD:g} or more means some prior influence; {FLAG:g} or more is flagged: with data sensitivity "
            f"of {THRESHOLD:g} or more as prior-data conflict, below it as the prior dominating.", "note",
        )
    )


def section_check(result: dict[str, Any], folder: Path) -> Html:
    """Simulation-based calibration from a ``mbct-bayes check --out`` folder."""
    rows = [
        [name, Cell(probability(p.get("rank_p_value"), 3), "num" + (" bad" if p.get("rejected") else "")),
         Cell(_pct(p.get("coverage_50", math.nan)), "num"), Cell(_pct(p.get("coverage_90", math.nan)), "num"),
         Cell("ranks not uniform" if p.get("rejected") else "ok", "bad" if p.get("rejected") else "good")]
        for name, p in result["parameters"].items()
    ]
    word = "passed" if result["passed"] else "FAILED"
    lead = (
        f"The model was fitted to {result.get('fitted_reps', '?')} studies simulated from its own priors at this "
        f"design and {word} the calibration check: "
        + ("its posteriors put the true values where they should." if result["passed"]
           else "some posteriors are systematically off (red rows); do not trust those numbers.")
        + f" {_pct(result.get('degenerate_share', math.nan))} of simulated studies had a single outcome class and "
        f"could not be fitted (counted, not refitted); {result.get('divergent_fits', '?')} refits had divergent "
        "transitions."
    )
    plot = folder / "ecdf.png"
    figure = png_html(plot.read_bytes(), "ECDF difference of the SBC ranks",
                      "Each line should stay inside its grey simultaneous band.") if plot.is_file() else ""
    return Html(
        _p(lead) + _table(["parameter", "rank p-value", "50% covers", "90% covers", "verdict"], rows)
        + _p(f"Rule: {result.get('rule', '')}. Coverage near 50% and 90% is expected.", "note") + figure
    )


def _sites_with_ids(fit: Fit, sites: pd.DataFrame) -> pd.DataFrame:
    """The new-sites table with a site id column (numbered when the table has none)."""
    group = fit.spec.group
    table = sites.reset_index(drop=True).copy()
    if group not in table.columns:
        table.insert(0, group, [f"new site {i + 1}" for i in range(len(table))])
    return table


def _id_text(value: Any) -> str:
    """A site or region id for a table; missing or blank (an unknown region) says so."""
    if value is None or (not isinstance(value, str) and pd.isna(value)) or not str(value).strip():
        return "(unknown)"
    return str(value)


#: What a site with an empty region is, per region mode (the sentence the planning section shows).
REGION_MODE_TEXT = {
    "mixture": "a site with no region is one of the fitted regions, drawn in proportion to their numbers of sites",
    "new": "a site with no region is in a new region, drawn from the fitted population of regions",
}


def _planning(fit: Fit, sites: pd.DataFrame, seed: int, region_mode: str = "mixture") -> tuple[Html, Html]:
    """The planning table section and the lever section."""
    spec = fit.spec
    label = get_family(spec.family).planned_label(spec)  # P(embedded), or a count model's rate per rate_per
    table = _sites_with_ids(fit, sites)
    new = predict(fit, table, kind="new_site", seed=seed, region_mode=region_mode)
    typical = predict(fit, table, kind="typical_site", seed=seed, region_mode=region_mode)
    lever_table = planning.levers(fit, table, 1.0, "new_site", seed=seed, region_mode=region_mode)
    shown = list(dict.fromkeys(lever_table["site"].astype(str)))[:MAX_LEVER_PANELS]
    # labels only: a site named with '$' must not switch matplotlib into mathtext
    labelled = lever_table.assign(site=lever_table["site"].astype(str).map(lambda s: plain_label(s, 40)))
    chart_sites = list(dict.fromkeys(plain_label(s, 40) for s in shown))
    note = ""
    if len(set(lever_table["site"].astype(str))) > MAX_LEVER_PANELS:
        note = f" The chart shows the first {MAX_LEVER_PANELS} sites; the table lists them all."
    lever_html = Html(
        _p(f"Each panel is one new site: the gain in {label} from raising each of "
           + ", ".join(numeric_predictors(spec)) + " by one scale point (clipped at the top of the scale), posterior "
           "mean and 90% interval, best lever on top; the label gives P(gain > 0)." + note)
        + _figure_or_note(lambda: lever_chart(labelled, chart_sites), "lever chart",
                          f"Gain in {label} per lever for each new site (new-site predictions).")
    )
    best = {}
    for r in lever_table[lever_table["rank"] == 1].itertuples(index=False):
        best[str(r.site)] = (f"{r.lever}: {r.delta_mean:+.2f} ({r.delta_q05:+.2f} to {r.delta_q95:+.2f}), "
                             f"P(gain) {probability(r.p_positive)}")
    id_cols = [spec.group] + ([spec.region] if spec.region and spec.region in table.columns else [])
    rows = []
    for i in range(min(len(table), MAX_PLANNING_ROWS)):
        site = str(table[spec.group].iloc[i])
        row: list[Any] = [_id_text(table[c].iloc[i]) for c in id_cols]
        row += [Cell(f"{float(table[p].iloc[i]):g}", "num") if p not in spec.categorical else str(table[p].iloc[i])
                for p in spec.predictors]
        row += [
            Cell(probability(new["p_mean"].iloc[i]), "num"),
            Cell(probability_interval(new["p_q05"].iloc[i], new["p_q95"].iloc[i]), "num"),
            Cell(probability(typical["p_mean"].iloc[i]), "num"),
        ]
        if lever_table is not None:
            row.append(best.get(site, ""))
        rows.append(row)
    headers = [*id_cols, *spec.predictors, f"{label}, new site", "90% interval", "typical site"]
    if lever_table is not None:
        headers.append("best lever, +1 point: ΔP (90%)")
    parts = [
        _p(f"{label} for each new service. 'New site' draws the site effect from the fitted population of sites "
           "(what to expect of one new service); 'typical site' sets it to 0 (the median service "
           + ("of its region " if fit.model_data.region_labels else "") + "with these scores)."
           + (f" Region mode '{region_mode}': {REGION_MODE_TEXT[region_mode]}."
                       if fit.model_data.region_labels else "")),
        _table(headers, rows),
    ]
    if len(table) > MAX_PLANNING_ROWS:
        parts.append(_p(f"Only the first {MAX_PLANNING_ROWS} of {len(table)} sites are listed.", "note"))
    return Html("".join(parts)), lever_html


def _reliability(fit: Fit, ev: EvaluationFiles) -> Html:
    spec, pred = fit.spec, ev.predictions
    if pred is None:
        return _unavailable(f"{ev.directory} has no predictions.csv, so the reliability diagram is left out.")
    family = get_family(spec.family)
    needed = ["p", *family.outcome_columns(spec)]
    missing = [c for c in needed if c not in pred.columns]
    if missing:
        return _unavailable(
            f"{ev.directory / 'predictions.csv'} lacks column(s) {', '.join(missing)}, so the reliability diagram is left out; "
            "was the evaluation made with this model spec?"
        )
    p = pd.to_numeric(pred["p"], errors="coerce").to_numpy(float)
    sites = pred[spec.group].astype(str).to_numpy() if spec.group in pred.columns else None
    if family.ordered_levels:
        y = (pred[spec.outcome].astype(str) == str(spec.ordinal_levels[-1])).to_numpy(float)
    elif family.counts_trials:
        k = pd.to_numeric(pred[spec.outcome], errors="coerce").to_numpy(float)
        n = pd.to_numeric(pred[spec.trials_column], errors="coerce").to_numpy(float)
        if not (np.isfinite(k).all() and np.isfinite(n).all()):
            return _unavailable("predictions.csv has missing outcome or trials values; reliability diagram left out.")
        reps = n.astype(np.intp)
        rows = np.repeat(np.arange(n.size), reps)
        within = np.arange(rows.size) - np.repeat(np.cumsum(reps) - reps, reps)
        y, p = (within < k[rows]).astype(float), p[rows]
        sites = sites[rows] if sites is not None else None
    else:
        y = pd.to_numeric(pred[spec.outcome], errors="coerce").to_numpy(float)
    return _figure_or_note(
        lambda: reliability_diagram(p, y, sites=sites),
        "reliability diagram",
        "Held-out forecasts binned by predicted P(embedded) against the observed rate in each bin; points on the "
        "diagonal are well calibrated. The band resamples whole sites.",
    )


def _score_value(value: Any) -> Cell:
    if isinstance(value, dict):
        return Cell(f"{_num(value.get('mean'))} ({_num(value.get('q05'))} to {_num(value.get('q95'))})", "num")
    return Cell(_num(value), "num")


def section_evaluation(fit: Fit, ev: EvaluationFiles) -> Html:
    m = ev.metrics
    model, base, skill = m["model"], m["baseline"], m.get("skill", {}) or {}
    keys = [k for k in SCORE_ORDER if k in model or k in base]
    keys += [k for k in model if k not in keys]
    rows = []
    for k in keys:
        label, better = SCORE_ORDER.get(k, (k, ""))
        rows.append([label, _score_value(model.get(k)), _score_value(base.get(k)),
                     _score_value(skill[k]) if k in skill else Cell("", "num"), better])
    folds = m.get("folds")
    parts = [
        _p(f"Read from {ev.directory}" + (f": {folds}-fold leave-site-out cross-validation (whole sites held out and "
                                          "predicted as new sites)." if folds else ".")),
        _table(["score", "model", "baseline", "skill (90% interval)", "better when"], rows),
        _p("The baseline is the intercept-only forecast fitted to the same training folds. Skill is the model's "
           "gain over the baseline (positive = model better), with a 90% interval from resampling whole sites.",
           "note"),
        *([_p("The log score scores, for the model: " + str(m["log_score_of"].get("model", "")) + "; for the "
              "baseline: " + str(m["log_score_of"].get("baseline", "")) + ".", "note")]
          if isinstance(m.get("log_score_of"), dict) else []),
        Html("<h3>Reliability diagram</h3>"),
        _reliability(fit, ev),
    ]
    return Html("".join(parts))


# -- journeys (transition models) -----------------------------------------------------------------
#: Panels of the fan chart at most (a readable figure); the table lists every site.
MAX_FAN_PANELS = 12
#: Future waves forecast by the journeys section unless told otherwise.
DEFAULT_HORIZON = 3


def latest_waves(fit: Fit) -> pd.DataFrame:
    """Each fitted site's latest wave (its row at its largest time): where the journeys section starts."""
    spec = fit.spec
    data = fit.data.sort_values([str(spec.group), str(spec.time)], kind="stable")
    return data.groupby(str(spec.group), sort=True).tail(1).reset_index(drop=True)


def journey_forecast(
    fit: Fit, sites: pd.DataFrame | None = None, *, horizon: int = DEFAULT_HORIZON, seed: int = 0,
    region_mode: str = "mixture",
) -> Forecast:
    """The journeys section's forecast: :func:`mbct_bayes.forecast.journey.forecast` from ``sites``
    (default :func:`latest_waves`), at the fit's usual step, with no what-if."""
    table = latest_waves(fit) if sites is None else sites
    source = "the fitted sites' latest waves" if sites is None else "forecast sites"
    result = forecast(fit, table, horizon=horizon, seed=seed, region_mode=region_mode, source=source)
    assert isinstance(result, Forecast)  # the section is only for transition fits, whose forecasts have states
    return result


def fan_sites(result: Forecast, limit: int = MAX_FAN_PANELS) -> tuple[list[str], str]:
    """The sites the fan chart draws and a sentence saying which: all, or ``limit`` of them evenly
    spaced in the order of P(top state at the horizon), so the figure spans the range."""
    names = list(result.sites)
    if len(names) <= limit:
        return names, f"All {len(names)} sites are drawn."
    top = len(result.levels) - 1
    order = np.argsort(result.p[:, :, -1, top].mean(axis=0), kind="stable")
    picks = order[np.unique(np.round(np.linspace(0, len(order) - 1, limit)).astype(int))]
    chosen = [names[i] for i in picks]
    return chosen, (
        f"{len(chosen)} of the {len(names)} sites are drawn, chosen evenly spaced in the order of P({result.levels[top]} "
        f"at wave {result.horizon}) from lowest to highest so the figure spans the range: {', '.join(chosen)}. "
        "The table lists every site."
    )


def section_journeys(fit: Fit, result: Forecast, given: bool) -> Html:
    """Forecast paths of the sites: a fan chart, P(top state at the horizon) per site, and the assumptions."""
    spec = fit.spec
    top = len(result.levels) - 1
    top_name = result.levels[top]
    chosen, which = fan_sites(result)
    draws = result.p[:, :, -1, top]
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    horizon_time = result.start_time + result.step * result.horizon
    rows = [
        [site, _id_text(result.levels[int(result.start_state[i])]), f"{result.start_time[i]:g}", f"{horizon_time[i]:g}",
         Cell(probability(draws[:, i].mean()), "num"), probability_interval(low[i], high[i]),
         "in the fit (its own effect)" if result.known[i] else "new (effect drawn from the population)"]
        for i, site in enumerate(result.sites)
    ]
    start = ("the rows given (forecast_sites= in Python, --forecast-sites in 'mbct-bayes report')" if given
             else "each fitted site's latest wave in the fitted data")
    names = numeric_predictors(spec)
    n_new = int((~result.known).sum())
    assumptions = [
        f"The paths start from {start}: its time, its observed state and its {', '.join(names)}.",
        f"Future waves come every {result.step:g} {spec.time} for {result.horizon} wave(s) "
        + ("(the median gap between the fitted panel's waves)." if any("median gap" in n for n in result.notes)
           else "(as given)."),
        f"{', '.join(names)} are held at each site's latest values at every future wave (no change of support, no "
        f"champion leaving); they enter at the {spec.predictors_at} wave, as fitted.",
        "Each path is simulated from the posterior: every draw's transition probabilities, chained wave by wave, "
        f"give P(each state) at each future wave; the intervals are 5-95% over {result.p.shape[0]} posterior draws.",
        (f"{len(result.sites) - n_new} site(s) were in the fit and use their own effects; {n_new} are new and draw "
         "a site effect from the fitted population per draw (wider intervals)."),
    ]
    note_text = "; ".join(result.notes)
    return Html(
        _p(f"Where each service may be over the next {result.horizon} wave(s): P({top_name}) along its forecast path, "
           f"from {start}. {which}")
        + _figure_or_note(
            lambda: fan_chart(result, chosen), f"fan chart of P({top_name}) along each site's forecast path",
            f"P({top_name}) at each future wave (line: posterior mean; band: 90% interval over posterior draws); the "
            "first point is the site's latest observed state.",
        )
        + _table(["site", "latest state", "latest time", f"time of wave {result.horizon}",
                  f"P({top_name} at wave {result.horizon})", "90% interval", "site effect"], rows,
                 caption=f"P({top_name}) at the horizon, wave {result.horizon}, per site (posterior mean and 90% interval).")
        + Html("<h3>What these numbers assume</h3>") + Html("<ul>" + "".join(f"<li>{esc(a)}</li>" for a in assumptions)
                                                          + "</ul>")
        + _p(f"Forecast notes: {note_text}. Python: mb.forecast(fit, sites, horizon={result.horizon}); command line: "
             f"'mbct-bayes forecast FIT.nc SITES.csv --horizon {result.horizon}' (add --what-if for a scenario).", "note")
    )


# -- trial planning -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialSettings:
    """The parallel cluster trial the report's trial-planning section plans (``mbct-bayes power`` names).

    Attributes
    ----------
    lever
        Predictor the intervention moves; ``None``: ``F`` when the model has it (the power
        module's default), else its first numeric predictor.
    delta
        How far the intervention moves it, in scale points.
    cluster_size
        Members measured per cluster (``m``).
    clusters
        Smallest and largest clusters per arm of the assurance curve.
    sims
        Simulated trials per design; ``None``: one per posterior draw (as ``mbct-bayes power
        assurance``); other numbers cycle the draws in a seeded random order.
    alpha, analysis
        Two-sided significance and the trial's analysis (as ``mbct-bayes power --analysis``).
    """

    lever: str | None = None
    delta: float = 1.0
    cluster_size: int = 20
    clusters: tuple[int, int] = (4, 30)
    sims: int | None = None
    alpha: float = 0.05
    analysis: str = "t"

    def lever_for(self, fit: Fit) -> str:
        """The lever this plan moves in ``fit``."""
        if self.lever is not None:
            return self.lever
        numeric = numeric_predictors(fit.spec)
        return "F" if "F" in numeric or not numeric else numeric[0]


#: Rows of the trial table: this many designs spread over the curve's range (the figure shows every one).
TRIAL_TABLE_ROWS = 5


@dataclass(frozen=True)
class TrialPlan:
    """What the trial-planning section shows: the assurance curve and the size checks.

    Attributes
    ----------
    settings
        The plan asked for (lever resolved).
    curve
        One row per clusters-per-arm (:func:`mbct_bayes.power.population_curve`'s columns).
    inputs
        What every row shares (population, implied proportions, ``assumptions``, seed, ...).
    sizes
        Clusters per arm -> the analysis's type-I error keys at that design (``actual_size``,
        ``size_holds``, ``size_note``, ...), for the rows of the table.
    seconds
        Time taken (curve and size checks).
    """

    settings: TrialSettings
    curve: pd.DataFrame
    inputs: dict[str, Any]
    sizes: dict[int, dict[str, Any]]
    seconds: float


def _table_clusters(low: int, high: int) -> list[int]:
    return sorted({int(c) for c in np.rint(np.linspace(low, high, TRIAL_TABLE_ROWS))})


def trial_unavailable(fit: Fit) -> str | None:
    """Why the trial-planning section cannot plan a trial from ``fit`` (a sentence), or None when it can.

    The reason is :func:`mbct_bayes.planning.predict.trial_refusal`'s, which the power module
    also gives when asked for such a trial.
    """
    refusal = trial_refusal(fit.spec)
    return None if refusal is None else f"{refusal}; no assurance is computed rather than one for a design this fit does not fit"


def trial_plan(fit: Fit, settings: TrialSettings | None = None, *, seed: int = 0) -> TrialPlan:
    """The assurance curve over clusters per arm for a trial recruiting from the fitted services.

    Computed by the power module's own functions (:func:`mbct_bayes.power.population_from_fit`,
    then the curve of :func:`mbct_bayes.power.population_curve` with its inputs, and the size of
    the analysis at the table's designs as :func:`mbct_bayes.power.population_assurance` reports
    it), so the numbers equal ``mb.power.population_curve(population_from_fit(fit, lever=...,
    delta=...), clusters=..., cluster_sizes=[m], sims=..., seed=seed, alpha=..., analysis=...)``.

    Raises
    ------
    DataError
        Bad settings (an unknown lever, clusters below 2, ...).
    """
    settings = settings or TrialSettings()
    settings = TrialSettings(**{**settings.__dict__, "lever": settings.lever_for(fit)})
    low, high = (int(c) for c in settings.clusters)
    if not 2 <= low <= high:
        raise DataError(f"trial clusters per arm {low}-{high}: give LOW-HIGH with 2 <= LOW <= HIGH, e.g. 4-30")
    start = time.perf_counter()
    population = population_from_fit(fit, lever=str(settings.lever), delta=settings.delta)
    sim = SimulationSettings(sims=settings.sims, alpha=settings.alpha, seed=seed, analysis=settings.analysis)
    curve = services_curve(population, range(low, high + 1), [int(settings.cluster_size)], settings=sim)
    inputs = dict(curve.inputs)
    sizes = {
        c: population_size({**inputs, "clusters_per_arm": c, "cluster_size": int(settings.cluster_size)},
                           population, sim)
        for c in _table_clusters(low, high)
    }
    return TrialPlan(settings, curve.table, inputs, sizes, time.perf_counter() - start)


def section_trial(fit: Fit, plan: TrialPlan) -> Html:
    """The assurance curve with power at the posterior mean beside it, its assumptions and size warnings."""
    s, info, table = plan.settings, plan.inputs, plan.curve
    m = int(s.cluster_size)
    points = "scale point" if abs(float(s.delta)) == 1 else "scale points"
    reach = table[table["assurance"] >= 0.8]
    bound = float(info["assurance_bound"])
    if len(reach):
        first = f"Assurance first reaches 0.8 at {int(reach['clusters_per_arm'].iloc[0])} clusters per arm."
    else:
        first = f"Assurance stays below 0.8 up to {int(table['clusters_per_arm'].max())} clusters per arm." + (
            f" No number of clusters can get it there: it is at most {probability(bound)}, the chance the effect "
            "lies in the intended direction (plus alpha/2 of the rest)." if bound < 0.8 else "")
    lead = _p(
        f"A parallel cluster-randomised trial of implementation support that raises {s.lever} by {float(s.delta):+g} "
        f"{points} in each intervention service, {m} {'member' if m == 1 else 'members'} measured per cluster, "
        f"analysed by a {ANALYSIS_TEXT.get(s.analysis, s.analysis)} at two-sided alpha {s.alpha:g}. Assurance is the "
        "chance the trial succeeds averaged over what the posterior still doubts (O'Hagan, Stevens & Campbell 2005); "
        "power at the posterior mean fixes every parameter at its posterior mean and uses the same simulated "
        f"services and random numbers. {first}"
    )
    rows = []
    for c in sorted(plan.sizes):
        row = table[table["clusters_per_arm"] == c].iloc[0]
        size = plan.sizes[c]
        rows.append([
            Cell(str(c), "num"), Cell(str(2 * c), "num"),
            Cell(f"{probability(row['assurance'])} ({probability_interval(row['assurance_mc_low'], row['assurance_mc_high'])})",
                 "num"),
            Cell(f"{probability(row['power_at_posterior_mean'])} ({probability_interval(row['power_at_posterior_mean_mc_low'], row['power_at_posterior_mean_mc_high'])})",
                 "num"),
            Cell(f"{probability(size['actual_size'], 3)} ({'holds' if size['size_holds'] else 'does not hold'})",
                 "num" if size["size_holds"] else "num bad"),
        ])
    warnings_html = "".join(
        f"<p class=\"unavailable\">Warning: {esc(size['size_note'])}.</p>"
        for size in plan.sizes.values() if size.get("size_note")
    )
    effect = (
        f"Implied by the posterior and these services (posterior means): embedding {percent(info['p0_marginal'])} in "
        f"control services and {percent(info['p1_marginal'])} with the intervention (population-averaged), a "
        f"cluster-specific odds ratio of {info['odds_ratio']:.2f} per service, proportion-scale ICC {info['icc']:.2f}; "
        f"P(effect in the intended direction, {info['direction']}) {probability(info['p_effect_in_direction'])}."
    )
    if info.get("clipped_share"):
        effect += (f" {percent(info['clipped_share'])} of intervention services would pass the end of the {s.lever} "
                   "scale; their move is cut there.")
    assumptions = "<ul>" + "".join(f"<li>{esc(a)}</li>" for a in info.get("assumptions", [])) + "</ul>"
    band = next(iter(plan.sizes.values()))["size_band"]
    run = (
        f"Each design: {info['sims']} simulated trials over {info['draws_used']} of {info['draws_total']} posterior "
        f"draws, seed {info['seed']} (same seed, same numbers); every design shares the same random numbers. The "
        f"type-I error is the rejection rate of at least {min(v['size_sims'] for v in plan.sizes.values())} trials "
        f"with the effect removed; it holds alpha when it lies in [{band[0]:.3f}, {band[1]:.3f}]. Computed in "
        f"{plan.seconds:.1f} s. Python: mbct_bayes.power.population_curve; command line: 'mbct-bayes power "
        f"assurance FIT --lever {s.lever} --delta {float(s.delta):g} --clusters C --cluster-size {m} --analysis "
        f"{s.analysis} --alpha {s.alpha:g} --sims {info['sims']} --seed {info['seed']}'."
    )
    figure = _figure_or_note(
        lambda: power_curve_figure(table, x="clusters_per_arm", target=0.8),
        "assurance curve over clusters per arm",
        f"Assurance (blue, with its 95% Monte Carlo band) and power at the posterior mean (green dashed) against "
        f"clusters per arm, {m} per cluster; the dotted line is the most assurance can reach.",
    )
    return Html(
        lead + figure
        + _table(["clusters per arm", "clusters in all", "assurance (95% MC)", "power at posterior mean (95% MC)",
                  "type-I error of the analysis"], rows)
        + warnings_html + _p(effect) + Html("<h3>What these numbers assume</h3>") + Html(assumptions)
        + _p(run, "note")
    )


HOW_TO_READ = (
    "Start with the diagnostics verdict: if it says FAIL, nothing else here should be relied on. The forest plot "
    "shows how the odds of embedding change per scale point of Evidence, Context and Facilitation; an interval "
    "that crosses 1 means the data cannot tell the direction. Site effects show how much services differ beyond "
    "their E, C, F scores. The posterior predictive check compares the observed embedding rates with rates "
    "simulated from the fitted model: observed points far outside their intervals point to misfit. The planning "
    "table gives what to expect of new services, and the lever chart which score is worth raising first. "
    "The trial section gives the chance that a cluster trial of raising one score succeeds, by its size. "
    "Forecast scores, when given, say whether the model predicts held-out sites better than a base rate."
)


# -- the report -------------------------------------------------------------------------------
def render_report(
    fit: Fit,
    *,
    observations: pd.DataFrame | None = None,
    new_sites: pd.DataFrame | None = None,
    evaluation_dir: str | os.PathLike[str] | None = None,
    title: str | None = None,
    seed: int = 0,
    check_dir: str | os.PathLike[str] | None = None,
    region_mode: str = "mixture",
    trial: TrialSettings | None = None,
    forecast_sites: pd.DataFrame | None = None,
    horizon: int = DEFAULT_HORIZON,
) -> str:
    """The report as one self-contained HTML document.

    Parameters
    ----------
    fit
        A :class:`~mbct_bayes.model.fit.Fit` (fitted or loaded with :func:`~mbct_bayes.model.fit.load_fit`).
    observations
        Observations for the posterior predictive check (validated against the spec); default the
        data stored in the fit. Rows of sites the model has not seen are predicted as new sites.
    new_sites
        New services for the planning table and the lever chart: one row per site with the
        predictors, a site id and (for models with regions) a region. ``None`` leaves the two
        sections with a note on how to add them.
    evaluation_dir
        A folder written by ``mbct-bayes evaluate --out`` (``metrics.json``, ``predictions.csv``)
        for the scores table and the reliability diagram.
    title
        Page title; default names the model.
    seed
        Seed of the new-site draws and the posterior predictive replication.
    check_dir
        A folder written by ``mbct-bayes check --out`` (``check.json``, ``ecdf.png``) for the
        simulation-based calibration section.
    region_mode
        Where a new site with an empty region is (models with region effects): ``"mixture"``, one of
        the fitted regions in proportion to their sites; ``"new"``, a region drawn from the region
        population. Used by every new-site prediction and the levers; the planning section says which.
    trial
        The parallel cluster trial to plan (:class:`TrialSettings`): the trial-planning section's
        assurance curve over clusters per arm, with power at the posterior mean, the analysis's
        type-I error and what the numbers assume (a few seconds). ``None`` leaves the section with
        a note on how to add it (``mbct-bayes report`` adds it unless ``--no-trial``).
    forecast_sites
        Transition models: the sites' latest waves to forecast from in the journeys section (as
        ``mbct-bayes forecast``'s SITES); default each fitted site's latest wave. Ignored otherwise.
    horizon
        Transition models: future waves forecast in the journeys section (default 3).

    Returns
    -------
    str
        The HTML text.

    Raises
    ------
    DataError
        Bad ``observations``, ``new_sites``, evaluation folder, ``region_mode`` or ``trial``.
    """
    spec = fit.spec
    check_region_mode(region_mode)
    # inputs first, so bad ones fail before any figure is drawn
    ev = read_evaluation(evaluation_dir, spec) if evaluation_dir is not None else None
    if check_dir is not None:
        sbc = read_check(check_dir)
    if new_sites is not None:
        validate_new_data(fit.posterior, _sites_with_ids(fit, new_sites), source="new sites")
    journeys = None
    if spec.dynamics == "transition":
        journeys = journey_forecast(fit, forecast_sites, horizon=horizon, seed=seed, region_mode=region_mode)
    no_trial = trial_unavailable(fit) if trial is not None else None
    plan = trial_plan(fit, trial, seed=seed) if trial is not None and no_trial is None else None
    ppc = posterior_predictive(fit, observations, seed=seed)
    family = get_family(spec.family)
    summary = fit.summary()
    diag = summary["diagnostics"]
    name = spec.name or f"{spec.family} model"
    title = title or f"mbct-bayes report: {name}"

    sections: list[tuple[str, str, Html]] = [
        ("model", "The model and the data", section_model(fit, summary)),
        ("diagnostics", "Diagnostics verdict", section_diagnostics(diag)),
        ("coefficients", "Coefficients", section_coefficients(fit, summary)),
        ("priors", "Do the priors or the data decide?", section_prior_sensitivity(summary)),
        ("forest", f"Effects of E, C and F ({family.ratio_name}s)", _figure_or_note(
            lambda: forest_plot(fit), f"forest plot of {family.ratio_name}s",
            f"{family.ratio_name.capitalize()} per scale point: point = posterior median, thick bar = 50% interval, "
            "thin line = 90% interval, grey = prior 90% interval. Right: median (90% interval).",
        )),
        ("sites", "Site effects", _figure_or_note(
            lambda: site_effects_plot(fit), "caterpillar plot of site effects",
            f"Each site's effect on the {family.eta_scale} beyond its E, C, F scores, "
            "sorted; orange = 90% interval excludes 0.",
        )),
    ]
    rate_words = "embedded rate" if family.planned_is_probability else f"rate ({family.planned_label(spec)})"
    fmt = ".2f" if family.planned_is_probability else ".3g"
    ppc_text = _p(
        f"Replicated data sets drawn from the posterior ({ppc.replicated_overall.size} draws) against {ppc.source} "
        f"({len(ppc.sites)} sites). Overall {rate_words} observed {ppc.observed_overall:{fmt}}; P(replicated ≥ "
        f"observed) = {probability(ppc.p_value)} (values near 0 or 1 signal misfit). {ppc.site_coverage:.0%} of sites "
        "lie inside their 90% replicated interval (about 90% or more is expected; this is an in-sample check)."
    )
    sections.append(("ppc", "Posterior predictive check", Html(ppc_text + _figure_or_note(
        lambda: ppc_plot(ppc), "posterior predictive check", None))))

    how = "pass new_sites= to write_report (Python) or --sites SITES.csv to 'mbct-bayes report' (one row per site)"
    if new_sites is not None:
        planning_html, lever_html = _planning(fit, new_sites, seed, region_mode)
    else:
        planning_html = _unavailable(f"No new sites were given; {how}.")
        lever_html = _unavailable(f"No new sites were given, so there is no lever chart; {how}.")
    sections.append(("planning", "Planning new sites", planning_html))
    sections.append(("levers", "Which lever to pull", lever_html))
    if journeys is not None:
        sections.append(("journeys", "Journeys: forecast paths", section_journeys(fit, journeys, forecast_sites is not None)))
    if no_trial is not None:
        sections.append(("trial", "Planning a trial", _unavailable(f"No trial section for this fit: {no_trial}.")))
    else:
        sections.append(("trial", "Planning a trial", section_trial(fit, plan) if plan is not None else _unavailable(
            "No trial was planned. Pass trial=TrialSettings() to write_report (Python), or run 'mbct-bayes report' "
            "without --no-trial, for the assurance of a cluster trial over clusters per arm.")))
    if ev is not None:
        sections.append(("evaluation", "Forecast evaluation", section_evaluation(fit, ev)))
    else:
        sections.append(("evaluation", "Forecast evaluation", _unavailable(
            "No evaluation was given. Run 'mbct-bayes evaluate OBS.csv --model SPEC.toml --out EVAL' and make the "
            "report with --eval EVAL (or evaluation_dir= in Python) to add scores and a reliability diagram.")))
    if check_dir is not None:
        sections.append(("check", "Self-check: simulation-based calibration", section_check(sbc, Path(check_dir))))
    sections.append(("reading", "How to read this report", _p(HOW_TO_READ)))

    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f"<li><a href=\"#{sid}\">{esc(head)}</a></li>" for sid, head, _ in sections)
    body = "".join(f"<section id=\"{sid}\"><h2>{esc(head)}</h2>{content}</section>" for sid, head, content in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{esc(title)}</h1>"
        f"<p class=\"muted\">{esc(_family_text(spec))} Made {esc(created)} by mbct-bayes {esc(__version__)}.</p>"
        f"{verdict_banner(diag)}"
        f"<nav aria-label=\"contents\"><ol>{nav}</ol></nav>{body}"
        "<footer>Self-contained: figures and styles are embedded; this file needs no network.</footer>"
        "</main></body></html>\n"
    )


def write_report(
    fit: Fit,
    path: str | os.PathLike[str],
    *,
    observations: pd.DataFrame | None = None,
    new_sites: pd.DataFrame | None = None,
    evaluation_dir: str | os.PathLike[str] | None = None,
    title: str | None = None,
    seed: int = 0,
    check_dir: str | os.PathLike[str] | None = None,
    region_mode: str = "mixture",
    trial: TrialSettings | None = None,
    forecast_sites: pd.DataFrame | None = None,
    horizon: int = DEFAULT_HORIZON,
) -> Path:
    """Write the HTML report to ``path`` atomically (see :func:`render_report` for the arguments).

    The output path is checked before any work, and a failure leaves no partial file and never
    replaces an existing report.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    target = check_output_path(path)
    text = render_report(
        fit, observations=observations, new_sites=new_sites, evaluation_dir=evaluation_dir, title=title, seed=seed,
        check_dir=check_dir, region_mode=region_mode, trial=trial,
        forecast_sites=forecast_sites, horizon=horizon,
    )
    write_text(target, text)
    return target


__all__ = [
    "TrialPlan",
    "TrialSettings",
    "check_evaluation_dir",
    "figure_html",
    "journey_forecast",
    "latest_waves",
    "read_evaluation",
    "render_report",
    "trial_plan",
    "write_report",
]
