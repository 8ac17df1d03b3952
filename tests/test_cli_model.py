"""CLI: fit, summary, predict, demo — outputs, exit codes, and bad input that writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mbct_bayes.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
MODELS = ROOT / "models"
TINY = ["--draws", "30", "--tune", "30", "--chains", "1"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_summary_predict_round_trip(tmp_path, capsys):
    fit_path = tmp_path / "fit.nc"
    code, out, err = run(["fit", EXAMPLE / "observations.csv", "--model", MODELS / "bernoulli.toml",
                          "--out", fit_path, *TINY, "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary["coefficients"]) == {"Intercept", "E", "C", "F"}
    assert fit_path.exists()

    code, out, _ = run(["summary", fit_path, "--json"], capsys)
    assert code == 0 and json.loads(out)["coefficients"] == summary["coefficients"]

    pred_path = tmp_path / "pred.csv"
    code, _, err = run(["predict", fit_path, EXAMPLE / "new_sites.csv", "--out", pred_path, "--kind", "typical_site"], capsys)
    assert code == 0, err
    pred = pd.read_csv(pred_path)
    assert list(pred.columns[-5:]) == ["p_mean", "p_sd", "p_q05", "p_q50", "p_q95"]
    assert len(pred) == 5 and pred["p_mean"].between(0, 1).all()


def test_strict_exits_3_when_the_gate_fails(tmp_path, capsys):
    code, _, err = run(["fit", EXAMPLE / "observations.csv", "--model", MODELS / "bernoulli.toml",
                        "--out", tmp_path / "fit.nc", "--draws", "15", "--tune", "15", "--chains", "2", "--strict"], capsys)
    assert code == 3
    assert "diagnostics gate" in err


def _bad_observations(tmp_path: Path, name: str) -> tuple[Path, str, str]:
    """A bad observations file, the spec to use, and the message expected."""
    obs = pd.read_csv(EXAMPLE / "observations.csv", dtype={"site": str})
    ordinal = pd.read_csv(EXAMPLE / "observations_ordinal.csv", dtype={"site": str})
    binomial = pd.read_csv(EXAMPLE / "observations_binomial.csv", dtype={"site": str})
    spec = "bernoulli.toml"
    if name == "missing-column":
        table, message = obs.drop(columns=["F"]), "missing column 'F'"
    elif name == "non-numeric-score":
        table, message = obs.astype({"C": object}), "not a number"
        table.loc[2, "C"] = "high"
    elif name == "out-of-scale":
        table, message = obs.copy(), "outside the scale 1-5"
        table.loc[0, "E"] = 7.5
    elif name == "missing-outcome":
        table, message = obs.astype({"embedded": float}), "missing"
        table.loc[3, "embedded"] = None
    elif name == "unknown-level":
        table, message, spec = ordinal.copy(), "not among the declared levels", "ordinal.toml"
        table.loc[1, "level"] = "sustained"
    elif name == "k-greater-than-n":
        table, message, spec = binomial.copy(), "trials", "binomial.toml"
        table.loc[0, "embedded"] = 99
    elif name == "one-class":
        table, message = obs.assign(embedded=1), "every outcome is 1"
    else:
        raise AssertionError(name)
    path = tmp_path / f"{name}.csv"
    table.to_csv(path, index=False)
    return path, spec, message


@pytest.mark.parametrize(
    "name",
    ["missing-column", "non-numeric-score", "out-of-scale", "missing-outcome", "unknown-level",
     "k-greater-than-n", "one-class"],
)
def test_fit_bad_observations_exit_2_and_write_nothing(tmp_path, capsys, name):
    path, spec, message = _bad_observations(tmp_path, name)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = run(["fit", path, "--model", MODELS / spec, "--out", out_dir / "fit.nc", *TINY], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert err.startswith(f"mbct-bayes fit: error: {path}")  # names the data file, not the spec
    assert list(out_dir.iterdir()) == []


def test_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    code, _, err = run(["fit", empty, "--model", MODELS / "bernoulli.toml", "--out", tmp_path / "fit.nc"], capsys)
    assert code == 2 and "empty" in err and not (tmp_path / "fit.nc").exists()


def test_unknown_spec_key(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text('family = "bernoulli"\nprior = 1\n')
    code, _, err = run(["fit", EXAMPLE / "observations.csv", "--model", spec, "--out", tmp_path / "fit.nc"], capsys)
    assert code == 2 and "unknown key 'prior'" in err and not (tmp_path / "fit.nc").exists()


@pytest.mark.parametrize("kind", ["corrupt", "foreign"])
def test_bad_fit_file(tmp_path, capsys, kind):
    path = tmp_path / "fit.nc"
    if kind == "corrupt":
        path.write_bytes(b"not netcdf at all")
        message = "not a readable NetCDF fit file"
    else:
        import numpy as np
        import xarray as xr

        xr.Dataset({"x": ("i", np.arange(3))}).to_netcdf(path, engine="netcdf4")
        message = "not an mbct-bayes fit"
    for argv in (["summary", path], ["predict", path, EXAMPLE / "new_sites.csv", "--out", tmp_path / "p.csv"]):
        code, _, err = run(argv, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.csv").exists()


def test_known_site_prediction_for_unknown_site_is_exit_2(example_fit_path, tmp_path, capsys):
    code, _, err = run(["predict", example_fit_path, EXAMPLE / "new_sites.csv", "--out", tmp_path / "p.csv",
                        "--kind", "known_site"], capsys)
    assert code == 2
    assert "not among the fitted sites" in err or "not in the fitted data" in err
    assert not (tmp_path / "p.csv").exists()


def test_predict_region_mode(binomial_fit, tmp_path, capsys):
    fit_path = tmp_path / "binomial.nc"
    binomial_fit.save(fit_path)
    sites = tmp_path / "sites.csv"
    pd.DataFrame({"site": ["X1"], "region": [""], "E": [3.0], "C": [3.0], "F": [3.0]}).to_csv(sites, index=False)
    widths = {}
    for mode in ("mixture", "new"):
        code, _, _ = run(["predict", fit_path, sites, "--out", tmp_path / f"{mode}.csv", "--region-mode", mode], capsys)
        assert code == 0
        table = pd.read_csv(tmp_path / f"{mode}.csv")
        widths[mode] = table["p_q95"].iloc[0] - table["p_q05"].iloc[0]
    assert widths["new"] > widths["mixture"]
    with pytest.raises(SystemExit) as exc:
        run(["predict", fit_path, sites, "--out", tmp_path / "x.csv", "--region-mode", "region5"], capsys)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "argument --region-mode: invalid choice: 'region5'" in err and "mixture" in err
    assert not (tmp_path / "x.csv").exists()


def test_demo_writes_what_the_readme_promises(tmp_path, capsys):
    """Issue 15: the demo's report leaves no section empty (evaluation, trial, priors filled)."""
    import re

    out_dir = tmp_path / "demo"
    code, out, err = run(["demo", "--out", out_dir, *TINY], capsys)
    assert code == 0, err
    for name in ("observations.csv", "fit.nc", "summary.json", "new_sites.csv", "predictions.csv", "report.html",
                 "evaluation/metrics.json", "evaluation/predictions.csv", "planner.html"):
        assert (out_dir / name).exists(), name
    assert "P(embedded)" in out
    # the example model has no region effects: no region column, no region words
    assert "region" not in out[out.index("P(embedded) for the example"):].lower()
    assert re.search(r"10-fold leave-site-out evaluation in \d+\.\d s \(the compiled model reused", err), err
    report = (out_dir / "report.html").read_text(encoding="utf-8")
    sections = dict(re.findall(r'<section id="([a-z]+)">(.*?)</section>', report, re.S))
    assert {"evaluation", "trial", "priors", "planning", "levers"} <= set(sections)
    empty = [sid for sid, body in sections.items() if 'class="unavailable"' in body]
    assert not empty, f"sections left empty in the demo's report: {empty}"
    assert "10-fold leave-site-out cross-validation" in sections["evaluation"] and "<img" in sections["evaluation"]
    assert "<table>" in sections["trial"] and "<img" in sections["trial"] and "assurance" in sections["trial"]
    assert "<table>" in sections["priors"] and "sigma_site" in sections["priors"]
    # the planning page offers each example new site and carries the fit's draws (all of them: the
    # tiny fit has fewer than the page's 1,000), so on the page's draws the demo's table comes out
    # exactly; tests/test_planner.py shows the page computes predict on those draws per scenario
    import numpy as np
    import pandas as pd

    import mbct_bayes as mb
    from mbct_bayes.planner import planner_fit

    page = (out_dir / "planner.html").read_text(encoding="utf-8")
    new = pd.read_csv(out_dir / "new_sites.csv", dtype={"site": str})
    demo = pd.read_csv(out_dir / "predictions.csv", dtype={"site": str})
    assert all(site in page for site in new["site"]), "an example new site is not offered as a scenario on the page"
    on_page_draws = planner_fit(mb.load_fit(out_dir / "fit.nc")).predict(new, kind="new_site", seed=0)
    np.testing.assert_allclose(on_page_draws["p_mean"].to_numpy(), demo["p_mean"].to_numpy(), rtol=0, atol=1e-12)


def test_real_process_bad_input_has_no_traceback(tmp_path):
    missing = tmp_path / "nope.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "mbct_bayes.cli.main", "fit", str(missing), "--model", str(MODELS / "bernoulli.toml"),
         "--out", str(tmp_path / "fit.nc")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_fit_from_survey_items_with_a_latent_spec(tmp_path, capsys):
    """The README's item-level fit: responses scored with the codebook, then a latent model."""
    fit_path = tmp_path / "latent.nc"
    code, out, err = run(["fit", EXAMPLE / "observations.csv", "--model", MODELS / "latent.toml",
                          "--responses", EXAMPLE / "responses.csv", "--codebook", ROOT / "data" / "codebook_orca_mbct.csv",
                          "--out", fit_path, "--draws", "30", "--tune", "30", "--chains", "1", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["measurement"] == "latent" and set(summary["measurement_model"]["sigma_measure"]) == {"E", "C", "F"}
    assert fit_path.exists()


def test_codebook_without_responses_is_exit_2(tmp_path, capsys):
    code, _, err = run(["fit", EXAMPLE / "observations.csv", "--model", MODELS / "latent.toml",
                        "--codebook", ROOT / "data" / "codebook_orca_mbct.csv", "--out", tmp_path / "f.nc"], capsys)
    assert code == 2 and "--codebook needs --responses" in err


def test_columns_without_codebook_is_exit_2(tmp_path, capsys):
    code, _, err = run(["fit", EXAMPLE / "observations.csv", "--model", MODELS / "latent.toml",
                        "--responses", EXAMPLE / "responses.csv", "--columns", "site=Trust",
                        "--out", tmp_path / "f.nc"], capsys)
    assert code == 2 and "--columns renames survey item files; it needs --responses with --codebook" in err
    assert not (tmp_path / "f.nc").exists()
