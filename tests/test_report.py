"""The self-contained HTML report (mbct_bayes.report) and the ``report`` command.

One report of the shared example fit is rendered per module; small synthetic fits (posterior
draws chosen here, so their diagnostics truly pass or fail) cover the verdict, other families and
regions.
"""

from __future__ import annotations

import base64
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mbct_bayes as mb
from mbct_bayes.cli.main import main
from mbct_bayes.errors import DataError
from mbct_bayes.model.build import prepare_data
from mbct_bayes.model.fit import Fit
from mbct_bayes.report import read_evaluation, render_report, write_report

ROOT = Path(__file__).resolve().parents[1]
NEW_SITES = ROOT / "data" / "example" / "new_sites.csv"
EVIL = '<script>alert("x")</script>'
SECTIONS = ("model", "diagnostics", "coefficients", "priors", "forest", "sites", "ppc", "planning", "levers", "trial", "evaluation",
            "reading")


# -- helpers -----------------------------------------------------------------------------------
class Tags(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Tags:
    parser = Tags()
    parser.feed(text)
    return parser


def new_sites_with_evil_names() -> pd.DataFrame:
    sites = mb.read_table(NEW_SITES)
    extra = pd.DataFrame([
        {"site": EVIL, "region": "Wales", "E": 3.0, "C": 3.0, "F": 3.0},
        {"site": "$x$ & co", "region": "Wales", "E": 4.0, "C": 2.0, "F": 2.0},
    ])
    return pd.concat([sites, extra], ignore_index=True)


def write_evaluation(folder: Path, data: pd.DataFrame, seed: int = 0) -> Path:
    """An evaluation folder shaped like Evaluation.save writes (metrics.json, predictions.csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pred = data[["site", "E", "C", "F", "embedded"]].copy()
    pred.insert(0, "fold", 1)
    pred["p"] = np.clip(0.3 + 0.4 * pred["embedded"] + rng.normal(0, 0.1, len(pred)), 0.01, 0.99)
    pred["p_baseline"] = pred["embedded"].mean()
    pred.to_csv(folder / "predictions.csv", index=False)
    metrics = {
        "folds": 5,
        "model": {"log_score": -0.61, "brier": 0.2, "auc": 0.76, "calibration_slope": 0.9,
                  "calibration_intercept": 0.01, "ece": 0.05},
        "baseline": {"log_score": -0.69, "brier": 0.25, "auc": None, "calibration_slope": None,
                     "calibration_intercept": 0.0, "ece": 0.01},
        "skill": {"log_score": {"mean": 0.08, "q05": 0.02, "q95": 0.14},
                  "brier": {"mean": 0.05, "q05": 0.02, "q95": 0.07}},
        "log_score_of": {"model": "predictive mixture <test>", "baseline": "BetaBinomial(k | n)"},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def idata_fit(*, ok: bool, family: str = "bernoulli", regions: bool = False, J: int = 6, chains: int = 4,
              draws: int = 500, seed: int = 0, region_loc: float = 0.0) -> Fit:
    """A full Fit (with an ArviZ posterior) whose diagnostics truly pass (iid draws) or fail
    (chains centred apart, so R-hat is far above 1.01, plus divergences)."""
    import arviz as az

    rng = np.random.default_rng(seed)
    spec = mb.ModelSpec(family=family, region="region" if regions else None, name="synthetic")
    n = J * 4
    data = pd.DataFrame({
        "site": np.repeat([f"T{j}" for j in range(J)], 4),
        "E": rng.uniform(1, 5, n).round(2), "C": rng.uniform(1, 5, n).round(2), "F": rng.uniform(1, 5, n).round(2),
    })
    if regions:
        data["region"] = np.repeat([f"R{j % 2}" for j in range(J)], 4)
    if family == "ordinal":
        data["level"] = rng.choice(["none", "partial", "embedded"], n)
    elif family == "binomial":
        data["trials"] = 8
        data["embedded"] = rng.integers(0, 9, n)
    else:
        data["embedded"] = rng.integers(0, 2, n)
    md = prepare_data(data, spec)
    shift = np.zeros((chains, 1)) if ok else np.arange(chains)[:, None] * 1.0

    def draw(*shape, loc=0.0, scale=0.3):
        x = rng.normal(loc, scale, size=(chains, draws, *shape))
        return x + shift.reshape((chains, 1) + (1,) * len(shape))

    posterior = {"beta": draw(3, loc=0.5), "sigma_site": np.abs(draw(loc=1.0, scale=0.1)), "u_site": draw(J)}
    dims = {"beta": ["predictor"], "u_site": ["site"]}
    coords = {"predictor": list(spec.coef_names), "site": list(md.site_labels)}
    if family == "ordinal":
        posterior["cutpoints"] = np.sort(draw(2), axis=-1) + np.array([-1.0, 1.0])
        dims["cutpoints"] = ["cutpoint"]
        coords["cutpoint"] = ["none|partial", "partial|embedded"]
    else:
        posterior["Intercept"] = draw()
    if regions:
        posterior["sigma_region"] = np.abs(draw(loc=0.5, scale=0.1))
        posterior["u_region"] = draw(2, loc=region_loc)
        dims["u_region"] = ["region"]
        coords["region"] = list(md.region_labels)
    diverging = np.zeros((chains, draws), bool)
    if not ok:
        diverging[0, :3] = True
    idata = az.from_dict({"posterior": posterior, "sample_stats": {"diverging": diverging}}, dims=dims, coords=coords)
    meta = {"sampler": "synthetic", "seed": seed, "draws": draws, "tune": 0, "chains": chains, "centered": False}
    return Fit(spec=spec, data=data, idata=idata, model_data=md, meta=meta)


# -- the example report, rendered once ---------------------------------------------------------
@pytest.fixture(scope="module")
def example_report(example_fit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    eval_dir = write_evaluation(folder / "eval", example_fit.data)
    path = write_report(
        example_fit, folder / "report.html", observations=example_fit.data,
        new_sites=new_sites_with_evil_names(), evaluation_dir=eval_dir,
    )
    return path.read_text(encoding="utf-8")


def test_every_section_is_present(example_report):
    tags = parse(example_report)
    ids = [a.get("id") for t, a in tags.tags if t == "section"]
    assert ids == list(SECTIONS)
    for heading in ("The model and the data", "Diagnostics verdict", "Coefficients", "Effects of E, C and F (odds ratios)",
                    "Site effects", "Posterior predictive check", "Planning new sites", "Which lever to pull",
                    "Forecast evaluation", "Reliability diagram"):
        assert f">{heading}<" in example_report
    # the data in words: sites, observations, family, centring
    assert "200 observations of 40 sites" in example_report
    assert "Bernoulli" in example_report and "centred at" in example_report
    # what each log score scores, from metrics.json, escaped
    assert "The log score scores, for the model: predictive mixture &lt;test&gt;; for the baseline: " in example_report


def test_every_prior_in_force_is_listed(example_fit, example_report):
    # bernoulli.toml sets E, C, F and sigma_site; the intercept keeps the package default
    for text in ("Normal(mu=0, sigma=1)", "Normal(mu=0.25, sigma=1)", "HalfNormal(sigma=1)",
                 "StudentT(nu=3, mu=0, sigma=2.5)"):
        assert text in example_report
    table = example_report.split("Priors in force")[1].split("</table>")[0]
    for name in example_fit.spec.parameter_names:
        assert f"<td>{name}</td>" in table


def test_default_coefficient_prior_uses_the_data_sd():
    fit = idata_fit(ok=True)
    text = render_report(fit)
    sd = float(fit.model_data.x_sd[0])
    assert f"Normal(mu=0, sigma={2.5 / sd:g})" in text
    assert f"sd(x) = {sd:.3g}" in text


def test_every_image_is_an_embedded_png(example_report):
    imgs = [a for t, a in parse(example_report).tags if t == "img"]
    assert len(imgs) >= 5  # forest, sites, ppc, levers, reliability
    for attrs in imgs:
        src = attrs["src"]
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert int(attrs["width"]) > 0 and int(attrs["height"]) > 0 and attrs["alt"]


def test_nothing_is_loaded_from_outside(example_report):
    tags = parse(example_report).tags
    for tag, attrs in tags:
        assert tag not in {"script", "link", "iframe", "object", "embed", "base", "form"}
        for key in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("#", "data:")), (tag, key, value[:80])
    assert "http://" not in example_report and "https://" not in example_report
    assert "url(" not in example_report and "@import" not in example_report
    # the page forbids loading anything that is not embedded
    csp = [a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "img-src data:" in csp[0]


def test_site_names_are_escaped(example_report):
    assert "<script" not in example_report.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in example_report
    assert "$x$ &amp; co" in example_report
    # the escaped sites appear in the planning table as text
    assert EVIL in "".join(parse(example_report).text)


def test_verdict_reflects_the_fit(example_fit, example_report):
    word = "PASS" if example_fit.diagnostics["ok"] else "FAIL"
    assert f'data-verdict="{word}"' in example_report
    assert f"Diagnostics: {word}" in example_report


def test_failing_fit_says_fail_with_its_problems():
    fit = idata_fit(ok=False, family="ordinal")
    assert not fit.diagnostics["ok"]
    text = render_report(fit)
    assert 'data-verdict="FAIL"' in text and 'class="banner fail"' in text
    assert "do not trust" in text
    assert "3 divergent transitions" in text and "max R-hat" in text
    assert 'data-verdict="PASS"' not in text
    assert "cutpoint none|partial" in text  # ordinal extras


def test_passing_fit_says_pass_binomial_with_regions():
    fit = idata_fit(ok=True, family="binomial", regions=True)
    assert fit.diagnostics["ok"], fit.diagnostics
    sites = pd.DataFrame({"site": ["N1", "N2"], "region": ["R0", ""], "E": [3.0, 4.0], "C": [3.0, 2.5], "F": [2.0, 4.5]})
    text = render_report(fit, new_sites=sites)
    assert 'data-verdict="PASS"' in text and 'class="banner pass"' in text
    assert "in 2 regions" in text and "Region effects" not in text  # region panel is in the figure, not text
    assert "sigma_region" in text and "(unknown)" in text  # empty region: drawn from the population


def _new_site_p(text: str, site: str) -> float:
    """The 'P(embedded), new site' cell of one site's row in the planning table."""
    planning_section = re.search(r'<section id="planning">(.*?)</section>', text, re.S).group(1)
    row = re.search(rf"<tr><td>{site}</td>(.*?)</tr>", planning_section, re.S).group(1)
    return float(re.findall(r'<td class="num">([^<]*)</td>', row)[3])  # after E, C, F


def test_region_mode_moves_only_sites_without_a_region_and_is_stated():
    # both fitted regions sit 3 log-odds up (sigma_region about 0.5): 'mixture' puts a site with no
    # region in one of them, 'new' in a new region near 0, so its P(embedded) must drop a lot
    fit = idata_fit(ok=True, regions=True, region_loc=3.0, draws=200, chains=2)
    sites = pd.DataFrame({"site": ["N1", "N2"], "region": ["R0", ""], "E": [3.0, 3.0], "C": [3.0, 3.0], "F": [3.0, 3.0]})
    mixture = render_report(fit, new_sites=sites)  # the default
    new = render_report(fit, new_sites=sites, region_mode="new")
    assert _new_site_p(mixture, "N2") - _new_site_p(new, "N2") > 0.2
    assert abs(_new_site_p(mixture, "N1") - _new_site_p(new, "N1")) <= 0.03  # a known region: same up to draws
    # the levers use the mode too: near P = 0.5 one point gains more than near the 0.93 ceiling
    lever_gain = {name: float(re.search(r"<tr><td>N2</td>.*?<td>\w+: ([+-][\d.]+) \(", text).group(1))
                  for name, text in (("mixture", mixture), ("new", new))}
    assert lever_gain["new"] - lever_gain["mixture"] > 0.04, lever_gain
    assert "Region mode &#x27;mixture&#x27;: a site with no region is one of the fitted regions" in mixture
    assert "Region mode &#x27;new&#x27;: a site with no region is in a new region" in new
    with pytest.raises(DataError, match=r"^region_mode 'both' is not one of mixture, new \(mixture"):
        render_report(fit, new_sites=sites, region_mode="both")
    no_regions = render_report(idata_fit(ok=True), new_sites=sites.drop(columns="region"), region_mode="new")
    assert "Region mode" not in no_regions


def test_without_new_sites_or_evaluation_the_sections_say_how():
    text = render_report(idata_fit(ok=True))
    assert "No new sites were given" in text and "--sites" in text
    assert "No evaluation was given" in text and "--eval" in text


def test_bad_inputs_are_one_line_errors(tmp_path):
    fit = idata_fit(ok=True)
    with pytest.raises(DataError, match="evaluation folder not found"):
        render_report(fit, evaluation_dir=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no metrics\.json"):
        render_report(fit, evaluation_dir=tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.json").write_text("{not json")
    with pytest.raises(DataError, match=r"metrics\.json: not valid JSON"):
        read_evaluation(bad)
    (bad / "metrics.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="expected an object with 'model' and 'baseline'"):
        read_evaluation(bad)


def test_write_report_never_leaves_partial_or_clobbered_files(tmp_path):
    fit = idata_fit(ok=True)
    out = tmp_path / "report.html"
    out.write_text("old report")
    off_scale = pd.DataFrame({"site": ["N1"], "E": [3.0], "C": [3.0], "F": [9.0]})
    with pytest.raises(DataError):
        write_report(fit, out, new_sites=off_scale)
    assert out.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left


# -- the command line ---------------------------------------------------------------------------
def run(capsys, *argv):
    code = main(["report", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_the_report(example_fit, example_fit_path, tmp_path, capsys):
    eval_dir = write_evaluation(tmp_path / "eval", example_fit.data)
    out = tmp_path / "r.html"
    code, stdout, stderr = run(capsys, example_fit_path, "--out", out, "--sites", NEW_SITES, "--eval", eval_dir)
    assert code == 0, stderr
    assert stdout == ""
    assert f"report written to {out}" in stderr
    text = out.read_text(encoding="utf-8")
    assert "NEW1" in text and "Reliability diagram" in text
    assert "Assurance (blue" in text  # the trial section is on by default on the command line


def test_cli_region_mode(tmp_path, capsys):
    fit_path = tmp_path / "fit.nc"
    idata_fit(ok=True, regions=True, draws=100, chains=2).save(fit_path)
    sites = tmp_path / "sites.csv"
    pd.DataFrame({"site": ["N1"], "region": [""], "E": [3.0], "C": [3.0], "F": [3.0]}).to_csv(sites, index=False)
    out = tmp_path / "r.html"
    code, _, stderr = run(capsys, fit_path, "--out", out, "--sites", sites, "--region-mode", "new", "--no-trial")
    assert code == 0, stderr
    assert "Region mode &#x27;new&#x27;" in out.read_text(encoding="utf-8")
    assert "No trial was planned" in out.read_text(encoding="utf-8")  # --no-trial
    out.unlink()
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, fit_path, "--out", out, "--region-mode", "both")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "invalid choice: 'both'" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_fit", "fit file not found"),
        ("missing_folder", "output folder .* does not exist"),
        ("out_is_dir", "output path is a directory"),
        ("missing_eval", "evaluation folder not found"),
        ("missing_sites", "not found"),
        ("read_only_folder", "not writable"),
    ],
)
def test_cli_errors_cleanly(case, message, example_fit_path, tmp_path, capsys):
    out = tmp_path / "r.html"
    args = [example_fit_path, "--out", out]
    if case == "read_only_folder":
        if os.geteuid() == 0:
            pytest.skip("root can write to a read-only folder")
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        out = args[2] = locked / "r.html"
    if case == "missing_fit":
        args[0] = tmp_path / "nope.nc"
    elif case == "missing_folder":
        args[2] = tmp_path / "no" / "such" / "r.html"
    elif case == "out_is_dir":
        args[2] = tmp_path
    elif case == "missing_eval":
        args += ["--eval", tmp_path / "no-eval"]
    elif case == "missing_sites":
        args += ["--sites", tmp_path / "no-sites.csv"]
    code, stdout, stderr = run(capsys, *args)
    assert code == 2
    assert stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("mbct-bayes report: error: ")
    assert re.search(message, stderr), stderr
    assert "Traceback" not in stderr
    assert not out.exists()
