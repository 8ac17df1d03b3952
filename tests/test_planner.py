"""The planning page (issue 15): same draws, same numbers as Python, offline, and its bad inputs.

The page (``mb.planner``) is opened in headless Chromium (tests/browser.py, the DevTools pipe)
from a ``file:`` URL with every host name unresolvable. For random scenarios set through the URL
hash, the numbers it shows (``data-value`` of each ``data-testid`` element) must equal
``predict``, ``levers`` and ``target`` computed in Python on the same thinned draws
(:func:`mbct_bayes.planner.planner_fit`) to 3 decimals, and its new-site mean must agree with
``predict`` on the full posterior within 0.03. Its analytic assurance must agree with the
package's simulated assurance (``mb.power.assurance``) within
:data:`mbct_bayes.planner.ASSURANCE_AGREEMENT`, the figure the page states.
"""

from __future__ import annotations

import base64
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
import pytest
from browser import Browser, problems, requires_chromium

import mbct_bayes as mb
from mbct_bayes.planner import ASSURANCE_AGREEMENT, planner_data, planner_draws, planner_fit, write_planner
from mbct_bayes.planning.predict import predict

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
#: the page's numbers, by data-testid: the data-value attribute (full precision; NaN: unreachable)
VALUES_JS = (
    "JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll('[data-testid]'))"
    ".map(e => [e.dataset.testid, e.dataset.value])))"
)
TEXT_JS = (
    "JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll('[data-testid]'))"
    ".map(e => [e.dataset.testid, e.textContent])))"
)
SAME = 5e-4  # "equal to 3 decimals"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def set_hash(browser: Browser, session: str, params: dict) -> dict:
    """Set the scenario through the URL hash; the page's numbers once it has handled the change."""
    text = urlencode(params, quote_via=quote)
    script = (
        "new Promise(done => { window.addEventListener('hashchange', () => done(" + VALUES_JS + "), {once: true});"
        f" location.hash = {json.dumps('#' + text)}; }})"
    )
    return json.loads(browser.evaluate(session, script, await_promise=True))


def scenarios(fit, count: int, seed: int) -> list[dict]:
    """Random scenarios on the spec's scales (regions, respondents and the target's settings too)."""
    rng = np.random.default_rng(seed)
    spec = fit.spec
    out = []
    for _ in range(count):
        sc: dict = {p: round(float(rng.uniform(*spec.scale[p])), 2) for p in spec.predictors}
        if spec.region:
            sc["region"] = str(rng.choice([*fit.model_data.region_labels, ""]))
        if spec.measurement == "latent":
            sc["n"] = int(rng.integers(1, 9))
        sc.update(tl=str(rng.choice(spec.predictors)), tp=round(float(rng.uniform(0.2, 0.8)), 2),
                  tq=round(float(rng.uniform(0.5, 0.95)), 2))
        out.append(sc)
    return out


def python_numbers(fit, sc: dict) -> dict:
    """What the page should show for scenario ``sc``, computed by the package on ``fit``'s draws."""
    spec = fit.spec
    row = {spec.group: "planned", **{p: sc[p] for p in spec.predictors}}
    if spec.region:
        row[spec.region] = sc["region"]
    if spec.measurement == "latent":
        row["n_respondents"] = sc["n"]
    new = pd.DataFrame([row])
    p_new = predict(fit, new, "new_site", seed=0).iloc[0]
    p_typical = predict(fit, new, "typical_site", seed=0).iloc[0]
    gains = mb.levers(fit, new, step=1.0, seed=0).set_index("lever")
    goal = mb.target(fit, new, sc["tl"], sc["tp"], sc["tq"], seed=0).iloc[0]
    out = {"p-mean": p_new.p_mean, "p-q05": p_new.p_q05, "p-q95": p_new.p_q95, "p-typical": p_typical.p_mean,
           "target-value": goal.target_value}
    for lever in spec.predictors:
        out[f"gain-{lever}"] = gains.loc[lever, "delta_mean"]
        out[f"gain-{lever}-positive"] = gains.loc[lever, "p_positive"]
    return out


def differences(page: dict, python: dict) -> dict:
    """|page - Python| per number (0 when both say unreachable)."""
    out = {}
    for key, expected in python.items():
        got = float(page[key])
        out[key] = 0.0 if math.isnan(got) and math.isnan(expected) else abs(got - float(expected))
    return out


def check_scenarios(browser, fit, tmp_path, count: int, seed: int) -> float:
    """Run ``count`` scenarios on one page; return the largest difference from Python seen."""
    path = write_planner(fit, tmp_path / "planner.html")
    thin = planner_fit(fit)
    session = browser.page(path.resolve().as_uri())
    worst = 0.0
    for sc in scenarios(fit, count, seed):
        page = set_hash(browser, session, sc)
        diff = differences(page, python_numbers(thin, sc))
        worst = max(worst, max(diff.values()))
        assert max(diff.values()) < SAME, (sc, {k: v for k, v in diff.items() if v >= SAME})
    full = python_numbers(fit, sc)  # the last scenario on the full posterior: Monte Carlo error only
    assert abs(float(page["p-mean"]) - full["p-mean"]) < 0.03
    assert problems(browser.events) == [], problems(browser.events)
    assert all(u.startswith(("file:", "data:")) for u in browser.requests()), browser.requests()
    return worst


@requires_chromium
def test_page_equals_python_on_the_same_draws_bernoulli(browser, example_fit, tmp_path):
    worst = check_scenarios(browser, example_fit, tmp_path, 20, seed=1)
    assert worst < 1e-9  # measured: about 1e-15 (same draws, same random numbers, same formulas)


@requires_chromium
@pytest.mark.parametrize("which", ["binomial_fit", "ordinal_fit", "latent_fit"])
def test_page_equals_python_for_regions_levels_and_measured_scores(browser, which, request, tmp_path):
    check_scenarios(browser, request.getfixturevalue(which), tmp_path, 6, seed=2)


@requires_chromium
def test_assurance_agrees_with_the_simulation(browser, example_fit, binomial_fit, tmp_path):
    worst = 0.0
    for fit in (example_fit, binomial_fit):
        path = write_planner(fit, tmp_path / f"planner-{fit.spec.family}.html")
        session = browser.page(path.resolve().as_uri())
        for c, m in ((5, 20), (10, 20), (25, 10), (30, 1)):
            page = set_hash(browser, session, {"al": "F", "ad": 1, "c": c, "m": m})
            simulated = mb.power.assurance(fit, lever="F", delta=1.0, clusters_per_arm=c, cluster_size=m,
                                           sims=6000, seed=3)["assurance"]
            worst = max(worst, abs(float(page["assurance"]) - simulated))
    assert worst < ASSURANCE_AGREEMENT, worst
    assert problems(browser.events) == []


@requires_chromium
def test_off_scale_hash_is_clamped_and_said(browser, binomial_fit, tmp_path):
    path = write_planner(binomial_fit, tmp_path / "planner.html")
    session = browser.page(path.resolve().as_uri() + "#E=9&C=-2&F=abc&region=Atlantis&c=1&tp=1.5")
    values = json.loads(browser.evaluate(session, VALUES_JS))
    notice = browser.evaluate(session, "document.getElementById('notice').textContent")
    shown = browser.evaluate(session, "['x-0-num', 'x-1-num', 'x-2-num', 'region', 'c', 'tp']"
                                      ".map(id => document.getElementById(id).value)")
    assert shown == ["5", "1", "3", "", "2", "0.99"]
    for words in ("E = 9 is off its scale 1–5: set to 5", "C = -2 is off its scale 1–5: set to 1",
                  'F = "abc" is not a number', 'Region "Atlantis" was not in the fitted data',
                  "clusters per arm = 1 is off its scale 2–500", "chance to reach = 1.5 is off its scale"):
        assert words in notice, notice
    # the clamped scenario is what the page computes and what its address now says
    expected = python_numbers(planner_fit(binomial_fit), {"E": 5, "C": 1, "F": 3, "region": "", "tl": "F", "tp": 0.99,
                                                          "tq": 0.8})
    assert max(differences(values, expected).values()) < SAME
    assert "E=5&C=1&F=3" in browser.evaluate(session, "location.hash")
    # rounding that would read 0 or 1 is written as an inequality, the number stays in data-value
    text = json.loads(browser.evaluate(session, TEXT_JS))
    for key in ("gain-E-positive", "gain-C-positive", "gain-F-positive"):
        value = float(values[key])
        if value > 0.995:
            assert text[key] == "> 0.99"
        elif value < 0.005:
            assert text[key] == "< 0.01"
    assert problems(browser.events) == []


@requires_chromium
@pytest.mark.parametrize("which", ["binomial_fit", "latent_fit"])
def test_page_prints_on_one_page(browser, which, request, tmp_path):
    path = write_planner(request.getfixturevalue(which), tmp_path / "planner.html")
    session = browser.page(path.resolve().as_uri() + "#E=3.5&C=3&F=2")
    pdf = base64.b64decode(browser.call("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69,
                                                           "preferCSSPageSize": True}, session=session)["data"])
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1


def test_planner_draws_are_an_even_thinning(example_fit):
    post = planner_draws(example_fit, n_draws=100)
    assert post.n_draws == 100
    full = example_fit.draws["sigma_site"]
    np.testing.assert_array_equal(post.draws["sigma_site"], full[np.linspace(0, full.size - 1, 100).round().astype(int)])
    assert planner_draws(example_fit).n_draws == min(1000, example_fit.n_draws)


def test_page_is_self_contained_and_small(example_fit, tmp_path):
    path = write_planner(example_fit, tmp_path / "planner.html", sites=pd.read_csv(EXAMPLE / "new_sites.csv"))
    text = path.read_text(encoding="utf-8")
    assert path.stat().st_size < 3_000_000
    for remote in ("http://", "https://", "<link", "src="):
        assert remote not in text.replace("http://www.w3.org/2000/svg", ""), remote
    for testid in ("p-mean", "p-q05", "p-q95", "p-typical", "target-value", "assurance"):
        assert f'data-testid="{testid}"' in text
    sites = pd.read_csv(EXAMPLE / "new_sites.csv")
    data = planner_data(example_fit, sites=sites)
    assert [p["site"] for p in data["presets"]] == sites["site"].tolist()


def test_existing_output_needs_force(example_fit, tmp_path):
    path = tmp_path / "planner.html"
    path.write_text("mine", encoding="utf-8")
    with pytest.raises(mb.DataError, match=r"output file exists.*--force"):
        write_planner(example_fit, path)
    assert path.read_text(encoding="utf-8") == "mine"
    write_planner(example_fit, path, force=True)
    assert "planner-data" in path.read_text(encoding="utf-8")


def test_not_a_fit_is_refused(tmp_path):
    with pytest.raises(mb.DataError, match="expected a fit"):
        write_planner("fit.nc", tmp_path / "planner.html")  # type: ignore[arg-type]


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mbct_bayes.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_writes_the_page_and_refuses_bad_input(example_fit_path, tmp_path):
    out = tmp_path / "planner.html"
    done = _cli("planner", example_fit_path, "--out", out, "--sites", EXAMPLE / "new_sites.csv")
    assert done.returncode == 0, done.stderr
    assert "planner-data" in out.read_text(encoding="utf-8")
    again = _cli("planner", example_fit_path, "--out", out)
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "output file exists" in again.stderr and "--force" in again.stderr
    assert _cli("planner", example_fit_path, "--out", out, "--force").returncode == 0
    fake = tmp_path / "fake.nc"
    fake.write_text("not a fit", encoding="utf-8")
    bad = _cli("planner", fake, "--out", tmp_path / "other.html")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "not a readable NetCDF fit file" in bad.stderr
    assert not (tmp_path / "other.html").exists()
