"""Robustness battery: every subcommand fed every kind of bad input, as a user would (issue 7).

Each case either **works** (a BOM, Windows line ends, a semicolon CSV, unicode or 10k-character
site names, an output that already exists) and gives the same result as the plain file, or
**fails** with exit code 2, exactly one line on stderr, no traceback, nothing on stdout, and no
partial or clobbered output (the workspace listing and every file's bytes are unchanged).

Cases run in this process through ``mbct_bayes.cli.main.main`` (a new interpreter costs seconds);
a few real subprocesses at the end prove the same behaviour end to end. Commands that fit fail
bad input before sampling, so only their ``works`` cases sample (20 draws, 1 chain).

To add a subcommand: one ``Command(...)`` line in :data:`COMMANDS` (machinery in
``tests/battery.py``). A bug found in package code is listed in :data:`KNOWN_BUGS`, which marks
its cases ``xfail(strict=True)``: when the bug is fixed they pass, and strict xfail turns that into
a failure that says to delete the entry.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from battery import (
    EXIT_BAD_INPUT,
    FAILS,
    SENTINEL,
    Case,
    Command,
    DataSlot,
    FitSlot,
    SpecSlot,
    cases,
    codebook,
    draws_csv,
    forecasts_csv,
    known_bug,
    new_sites,
    observations,
    outcomes_csv,
    panel_sites,
    prepare,
    responses,
    result_path,
    results,
    run_cli,
    snapshot,
    unlock,
)

# -- the inputs ------------------------------------------------------------------------------

# What each table's own checks say where the shared words (battery.DATA_MESSAGES) do not apply,
# for the kinds (pipe_delimited, huge_value, nan, inf); None keeps the shared words.
OWN_WORDS: dict[str, tuple[str | None, ...]] = {
    "responses": (
        r"responses\.csv: missing columns 'site', 'respondent', 'role'; responses need site",
        r"column 'E_RE1' row 1: value '1e\+308' is outside the codebook range 1-5; fix the value",
        None,  # a blank item is a legal non-response, and "nan" reads as blank
        r"column 'E_RE1' row 1: value 'inf' is outside the codebook range 1-5",
    ),
    "codebook": (
        r"codebook\.csv: missing columns 'item', 'construct', .*; a codebook needs the columns",
        r"columns 'min'/'max' row 1: min 1e\+308 is not below max 5",
        r"column 'min' row 1: value 'nan' is not a number; give the item's lowest response",
        r"column 'min' row 1: value 'inf' is not a number; give the item's lowest response",
    ),
    "forecasts": (
        r"forecasts\.csv: id column 'site' is missing; columns are site\|p_mean",
        r"column 'p_mean' rows 1: value 1e\+308 is outside \[0, 1\]; forecasts must be probabilities",
        r"column 'p_mean' rows 1: missing forecast; fill it in or drop the row",
        r"column 'p_mean' rows 1: value inf is outside \[0, 1\]",
    ),
    "outcomes": (
        r"outcomes\.csv: id column 'site' is missing; columns are site\|embedded",
        r"column 'embedded' rows 1: value 1e\+308 is not 0 or 1",
        r"column 'embedded' rows 1: missing outcome; fill it in or drop the row",
        r"column 'embedded' rows 1: value inf is not 0 or 1",
    ),
    "draws": (
        r"draws\.csv: missing column\(s\) baseline_logit, sigma_site, log_odds_ratio; give",
        r"sigma_b_draws draw 1 is 1e\+308, beyond the plausible ±10 on the logit scale",
        r"draws\.csv: column 'sigma_site' rows 1: not a finite number; every draw needs a value",
        r"draws\.csv: column 'sigma_site' rows 1: not a finite number; every draw needs a value",
    ),
}


def _own_words(key: str) -> dict[str, str]:
    kinds = ("pipe_delimited", "huge_value", "nan", "inf")
    return {k: m for k, m in zip(kinds, OWN_WORDS[key], strict=True) if m is not None}


OBS = DataSlot("observations", observations, numeric="E")
SITES = DataSlot("sites", new_sites, numeric="F")
RESPONSES = DataSlot("responses", responses, numeric="E_RE1", expect={"nan": "works"}, messages=_own_words("responses"))
CODEBOOK = DataSlot("codebook", codebook, numeric="min", names="text", messages=_own_words("codebook"))
FORECASTS = DataSlot("forecasts", forecasts_csv, numeric="p_mean", messages=_own_words("forecasts"))
OUTCOMES = DataSlot("outcomes", outcomes_csv, numeric="embedded", messages=_own_words("outcomes"))
DRAWS = DataSlot("draws", draws_csv, numeric="sigma_site", names=None, messages=_own_words("draws"))
REPORT_DATA = DataSlot("observations", observations, numeric="E", names=None)
FIT = FitSlot()
JOURNEY_FIT = FitSlot(fixture="journey_fit_path")  # a transition model of the example journeys
PANEL_SITES = DataSlot("sites", panel_sites, numeric="F")
SPEC = SpecSlot()
SPEC_SAMPLING = SpecSlot()

SAMPLER = ("--draws", "20", "--tune", "20", "--chains", "1", "--seed", "1")
SIMS = ("--sims", "200", "--seed", "1", "--quiet")


def _beside(out: str | None, name: str) -> str:
    return str(Path(out or ".").parent / name)


# -- the commands: one line each -------------------------------------------------------------

COMMANDS: tuple[Command, ...] = (
    Command("simulate", lambda p, o: ["simulate", "--sites", "6", "--per-site", "2", "--out", o, "--json"], out="sim", out_dir=True, results=("observations.csv", "truth.json"), fail_args=("--sites", "0"), fail_message=r"n_sites must be a whole number >= 1, got 0"),
    Command("validate", lambda p, o: ["validate", p["observations"], "--model", p["spec"], "--json"], inputs=(OBS, SPEC)),
    Command("fit", lambda p, o: ["fit", p["observations"], "--model", p["spec"], "--out", o, *SAMPLER], inputs=(OBS, SPEC_SAMPLING), out="fit.nc", results=(), samples=True),
    Command("summary", lambda p, o: ["summary", p["fit"], "--json"], inputs=(FIT,)),
    Command("predict", lambda p, o: ["predict", p["fit"], p["sites"], "--out", o], inputs=(FIT, SITES), out="predictions.csv", site_table="predictions.csv"),
    Command("demo", lambda p, o: ["demo", "--out", o, *SAMPLER, "--no-report"], out="demo", out_dir=True, results=("predictions.csv",), fail_args=("--draws", "0"), samples=True, fail_message=r"--draws must be a whole number ≥ 1, got 0"),
    Command("score", lambda p, o: ["score", p["responses"], "--codebook", p["codebook"], "--out", o, "--level", "site", "--json"], inputs=(RESPONSES, CODEBOOK), out="scores.csv", site_table="scores.csv"),
    Command("reliability", lambda p, o: ["reliability", p["responses"], "--codebook", p["codebook"], "--json"], inputs=(RESPONSES, CODEBOOK)),
    Command("plan", lambda p, o: ["plan", p["fit"], p["sites"], "--levers", "--out", o], inputs=(FIT, SITES), out="levers.csv", site_table="levers.csv"),
    Command("forecast", lambda p, o: ["forecast", p["fit"], p["sites"], "--horizon", "2", "--out", o], inputs=(JOURNEY_FIT, PANEL_SITES), out="forecast.csv", site_table="forecast.csv"),
    Command("evaluate", lambda p, o: ["evaluate", p["observations"], "--model", p["spec"], "--folds", "2", *SAMPLER, "--n-boot", "10", "--out", o, "--json"], inputs=(OBS, SPEC_SAMPLING), out="eval", out_dir=True, results=("metrics.json", "predictions.csv"), samples=True),
    Command("check", lambda p, o: ["check", p["spec"], "--like", p["observations"], "--reps", "15", "--draws", "100", "--tune", "20", "--chains", "1", "--seed", "1", "--out", o, "--json"], inputs=(OBS, SPEC_SAMPLING), out="sbc", out_dir=True, results=("check.json",), samples=True),
    # the fits come last, so that fail_args add a second (missing) fit
    Command("loo", lambda p, o: ["loo", "--json", "--out", o, p["fit"]], inputs=(FIT,), out="loo.json", fail_args=("no-such-second-fit.nc",), fail_message=r"no-such-second-fit\.nc: fit file not found"),
    Command("score-forecasts", lambda p, o: ["score-forecasts", p["forecasts"], p["outcomes"], "--n-boot", "20", "--json", "--out", o], inputs=(FORECASTS, OUTCOMES), out="scores.json"),
    Command("power-analytic", lambda p, o: ["power", "analytic", "--p0", "0.3", "--p1", "0.5", "--icc", "0.05", "--cluster-size", "20", "--power", "0.8", "--json", "--out", o], out="power.json", fail_args=("--p0", "1.5"), fail_message=r"p0 = 1\.5 is outside \(0, 1\)"),
    Command("power-simulate", lambda p, o: ["power", "simulate", "--p0", "0.3", "--p1", "0.5", "--icc", "0.05", "--clusters", "10", "--cluster-size", "20", *SIMS, "--json", "--out", o], out="power.json", fail_args=("--p0", "1.5"), fail_message=r"p0 = 1\.5 is outside \(0, 1\)"),
    Command("power-assurance-fit", lambda p, o: ["power", "assurance", p["fit"], "--clusters", "10", "--cluster-size", "10", *SIMS, "--json", "--out", o], inputs=(FIT,), out="assurance.json", fail_args=("--profile", "E=abc"), fail_message=r"--profile 'E=abc': write NAME=VALUE pairs separated by commas"),
    Command("power-assurance-draws", lambda p, o: ["power", "assurance", "--draws", p["draws"], "--clusters", "10", "--cluster-size", "10", *SIMS, "--json", "--out", o], inputs=(DRAWS,), out="assurance.json"),
    Command("power-search", lambda p, o: ["power", "search", "--method", "assurance", "--draws", p["draws"], "--target", "0.5", "--cluster-size", "10", "--max-clusters", "30", *SIMS, "--json", "--out", o, "--curve-out", _beside(o, "curve.csv")], inputs=(DRAWS,), out="search.json", results=("search.json", "curve.csv")),
    Command("power-stepped-wedge", lambda p, o: ["power", "stepped-wedge", "--sequences", "3,3", "--cluster-size", "20", "--p0", "0.3", "--p1", "0.4", "--icc", "0.05", "--sims", "200", "--seed", "1", "--json", "--out", o], out="power.json", fail_args=("--sequences", "3,0"), fail_message=r"sequences \(--sequences\) = '3,0': '0' is not a positive whole number"),
    Command("report", lambda p, o: ["report", p["fit"], "--data", p["observations"], "--out", o], inputs=(FIT, REPORT_DATA), out="report.html", results=()),
    # the page refuses to replace a file unless told (--force), which the battery's replace case says
    Command("planner", lambda p, o: ["planner", p["fit"], "--sites", p["sites"], "--out", o, "--force"], inputs=(FIT, SITES), out="planner.html", results=()),
)

# -- bugs found in package code (see the report to the lead); fnmatch patterns on case ids ----

KNOWN_BUGS: dict[str, str] = {}


# -- helpers ---------------------------------------------------------------------------------


def _registered() -> dict[str, set[str]]:
    """Registered subcommands, and the sub-subcommands of those that have them (``power``)."""
    import argparse

    from mbct_bayes.cli.main import build_parser

    def choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    return {name: set(choices(sub)) for name, sub in choices(build_parser()).items()}


REGISTERED = _registered()
CASES = cases(COMMANDS)
PARAMS = [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=r, strict=True)] if (r := known_bug(c, KNOWN_BUGS)) else [])
    for c in CASES
]
# a "works" variant of the input must give the plain file's result exactly
SAME_RESULT = {"bom", "crlf", "semicolon_delimited", "out_exists_replaced", "out_missing_folder"}
_BASELINES: dict[str, dict[str, str]] = {}
HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def _words(argv: list[str]) -> tuple[str, ...]:
    """``("power", "assurance")`` for a command with sub-subcommands, else ``("fit",)``."""
    return (argv[0], argv[1]) if REGISTERED.get(argv[0]) else (argv[0],)


def _assert_registered(cmd: Command) -> None:
    """A battery line for a command the parser lacks is a failure, never a skip (issue 13)."""
    argv = cmd.argv({s.key: "x" for s in cmd.inputs}, "x")
    assert argv[0] in REGISTERED, f"'mbct-bayes {argv[0]}' is not registered"
    if REGISTERED[argv[0]]:
        assert argv[1] in REGISTERED[argv[0]], f"'mbct-bayes {argv[0]} {argv[1]}' is not registered"


def _run(case: Case, root: Path, capsys, request):
    fixture = next((s.fixture for s in case.command.inputs if isinstance(s, FitSlot)), "example_fit_path")
    fit_path = request.getfixturevalue(fixture) if case.command.needs_fit else None
    root.mkdir(parents=True, exist_ok=True)
    ws, argv = prepare(case, root, fit_path)
    before = snapshot(root)
    cwd = os.getcwd()
    os.chdir(root)  # a stray relative write lands in the workspace, where the listing sees it
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = run_cli(argv, capsys)
        # what a user's terminal would show besides stderr (Python hides these categories)
        run.warnings = [w for w in caught if not issubclass(w.category, HIDDEN_WARNINGS)]
        after = snapshot(root)
    finally:
        os.chdir(cwd)
        unlock(root)
    return ws, run, before, after


def _baseline(cmd: Command, tmp_path_factory, capsys, request) -> dict[str, str]:
    """The results of the plain, valid run of ``cmd`` (computed once per session)."""
    if cmd.id not in _BASELINES:
        case = next(c for c in CASES if c.command is cmd and c.kind == "ok")
        ws, run, _, _ = _run(case, tmp_path_factory.mktemp("baseline"), capsys, request)
        assert run.code == 0, f"the plain run of {cmd.id} failed: {run.stderr}"
        _BASELINES[cmd.id] = results(case, ws, run)
    return _BASELINES[cmd.id]


def _check_failure(case: Case, run, before, after) -> None:
    lines = run.stderr.splitlines()
    assert run.code == EXIT_BAD_INPUT, f"exit {run.code}, expected 2; stderr: {run.stderr[-2000:]!r}"
    assert len(lines) == 1, f"stderr must be one line, got {len(lines)}: {run.stderr[-2000:]!r}"
    assert lines[0].startswith("mbct-bayes"), lines[0]
    assert case.message and re.search(case.message, lines[0]), f"expected /{case.message}/ in: {lines[0]!r}"
    shown = [f"{w.category.__name__}: {w.message}" for w in run.warnings]
    assert not shown, f"warnings would be printed on stderr too: {shown}"
    assert run.stdout == "", f"nothing on stdout on failure, got {run.stdout[:500]!r}"
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a failed run changed the workspace: {changed}"


def _check_success(case: Case, ws, run, before, after, baseline) -> None:
    assert run.code == 0, f"exit {run.code}; stderr: {run.stderr[-2000:]!r}"
    temp = [k for k in after if Path(k).name.startswith(".") and k.endswith(".tmp")]
    assert not temp, f"temporary files left behind: {temp}"
    outputs = [] if ws.out is None else [str(ws.out.relative_to(ws.root))]
    untouched = {k: v for k, v in before.items() if not any(k == o or k.startswith(o + os.sep) for o in outputs)}
    assert {k: after.get(k) for k in untouched} == untouched, "a successful run changed its inputs"
    if ws.out is not None:
        assert ws.out.exists(), f"no output at {ws.out}"
        for name in case.command.result_files():
            path = result_path(case, ws, name)
            assert path.is_file() and path.read_bytes() != SENTINEL, f"{name} was not (re)written"
        if not case.command.out_dir and not case.command.result_files():
            assert ws.out.read_bytes() != SENTINEL, "the old output was not replaced"
    if case.kind in SAME_RESULT:
        assert results(case, ws, run) == baseline, "the result differs from the plain file's"
    if case.command.site_table and ws.renamed and isinstance(case.slot, DataSlot) and case.slot.names == "site":
        table = pd.read_csv(result_path(case, ws, case.command.site_table), dtype=str, keep_default_na=False, encoding="utf-8")
        assert set(table["site"]) == set(ws.renamed.values()), "site names did not survive unchanged"


# -- the battery -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", PARAMS)
def test_battery(case: Case, tmp_path, tmp_path_factory, capsys, request):
    _assert_registered(case.command)
    baseline = None
    if case.expect != FAILS and case.kind in SAME_RESULT:
        baseline = _baseline(case.command, tmp_path_factory, capsys, request)
    ws, run, before, after = _run(case, tmp_path / "ws", capsys, request)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    if case.expect == FAILS:
        _check_failure(case, run, before, after)
    else:
        _check_success(case, ws, run, before, after, baseline)
        if case.kind == "ok":
            _BASELINES.setdefault(case.command.id, results(case, ws, run))


def test_every_subcommand_is_in_the_battery():
    """A new subcommand must get its line in COMMANDS (power: each of its subcommands)."""
    covered = {_words(c.argv({s.key: "x" for s in c.inputs}, "x")) for c in COMMANDS}
    missing = []
    for name, subs in REGISTERED.items():
        for sub in sorted(subs) or [None]:
            key = (name, sub) if sub else (name,)
            if key not in covered:
                missing.append(" ".join(key))
    assert not missing, f"subcommands without a battery line: {missing}"


def test_every_failing_case_says_what_it_must():
    """A failure is checked for its message, not only its exit code (issue 13)."""
    unsaid = [c.id for c in CASES if c.expect == FAILS and not c.message]
    assert not unsaid, f"failing cases without an expected message: {unsaid}"


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# -- end to end, in real processes -----------------------------------------------------------

CLI = [sys.executable, "-m", "mbct_bayes.cli.main"]


@pytest.fixture(scope="module")
def subprocess_runs(tmp_path_factory):
    """A few failures run as real processes, all started at once (each costs a cold start)."""
    from battery import bad_data

    root = tmp_path_factory.mktemp("subprocess")
    (root / "nonutf8.csv").write_bytes(bad_data(observations(), "non_utf8", OBS))
    (root / "empty.csv").write_bytes(b"")
    (root / "a_file.txt").write_bytes(b"x\n")
    (root / "old.json").write_bytes(SENTINEL)
    spec = str(Path(__file__).resolve().parents[1] / "models" / "bernoulli.toml")
    cb = str(Path(__file__).resolve().parents[1] / "data" / "codebook_orca_mbct.csv")
    jobs = {
        "validate_missing_file": ["validate", str(root / "missing.csv"), "--model", spec],
        "fit_non_utf8": ["fit", str(root / "nonutf8.csv"), "--model", spec, "--out", str(root / "fit.nc")],
        "score_empty_file": ["score", str(root / "empty.csv"), "--codebook", cb, "--out", str(root / "s.csv")],
        "analytic_unwritable_out": ["power", "analytic", "--p0", "0.3", "--p1", "0.5", "--icc", "0.05", "--cluster-size", "20", "--power", "0.8", "--out", str(root / "a_file.txt" / "p.json")],
        "analytic_bad_value_keeps_old_out": ["power", "analytic", "--p0", "1.5", "--p1", "0.5", "--icc", "0.05", "--cluster-size", "20", "--power", "0.8", "--out", str(root / "old.json")],
        "usage_error": ["fit", "--draws", "many"],
    }
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = {
        name: subprocess.Popen([*CLI, *argv], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, argv in jobs.items()
    }
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        done[name] = (proc.returncode, out, err)
    listing = sorted(p.name for p in root.iterdir())
    return done, listing, root


SUBPROCESS_MESSAGES = {
    "validate_missing_file": r"^mbct-bayes validate: error: \S+missing\.csv: observations file not found; check the path",
    "fit_non_utf8": r"^mbct-bayes fit: error: \S+nonutf8\.csv: not UTF-8 text \(byte 0xe9 at offset \d+, line 2\)",
    "score_empty_file": r"^mbct-bayes score: error: \S+empty\.csv: file is empty \(0 bytes\)",
    "analytic_unwritable_out": r"^mbct-bayes power: error: \S+p\.json: output folder \S+a_file\.txt does not exist",
    "analytic_bad_value_keeps_old_out": r"^mbct-bayes power: error: p0 = 1\.5 is outside \(0, 1\)",
    "usage_error": r"^mbct-bayes fit: error: argument --draws: invalid int value: 'many'",
}


@pytest.mark.parametrize("name", list(SUBPROCESS_MESSAGES))
def test_subprocess_failure_is_one_line_exit_2(name, subprocess_runs):
    done, listing, root = subprocess_runs
    code, out, err = done[name]
    assert "Traceback" not in err, err
    assert code == EXIT_BAD_INPUT, (code, err)
    assert len(err.splitlines()) == 1 and err.startswith("mbct-bayes"), err
    assert re.search(SUBPROCESS_MESSAGES[name], err), err
    assert out == ""
    # nothing was written by any of them; the old output keeps its bytes
    assert listing == ["a_file.txt", "empty.csv", "nonutf8.csv", "old.json"]
    assert (root / "old.json").read_bytes() == SENTINEL
