"""One runtime: the compiled-model cache, the task runner and the sampler settings (issue 13, item 3).

* Cache: a second model of the same structure (other outcomes, the cross-validation and
  calibration path) is the cached one; changing any structural field of the key builds afresh.
* Runner: serial, threads, processes give the same results in task order, with one progress
  call per task, the caller's warnings filters and a task's exception; power's simulation gives
  identical counts on every runner (evaluate's runners: tests/test_evaluate.py).
* Settings: one ``SamplerSettings`` reaches the sampler from the fit, evaluate and check commands;
  bad settings are one-line errors.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mbct_bayes as mb
from mbct_bayes import runtime
from mbct_bayes.cli.main import main
from mbct_bayes.errors import DataError
from mbct_bayes.model import sampling
from mbct_bayes.model.fit import compile_model
from mbct_bayes.model.sampling import SamplerSettings, sampler_settings, structure_key

ev = sys.modules["mbct_bayes.forecast.crossval"]
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
MODELS = ROOT / "models"


@pytest.fixture(scope="module")
def spec():
    return mb.ModelSpec.from_toml(MODELS / "bernoulli.toml")


@pytest.fixture(scope="module")
def obs():
    return mb.read_observations(EXAMPLE / "observations.csv")


# -- the one compiled-model cache --------------------------------------------------------------------
def test_a_second_model_of_the_same_structure_is_the_cached_one(spec, obs):
    first = compile_model(obs, spec)
    hits = sampling.STATS["hits"]
    flipped = obs.assign(embedded=1 - obs["embedded"])  # other outcomes, same sites and predictors
    second = compile_model(flipped, spec, centered=first.centered)
    assert second.model is first.model and second._entry is first._entry
    assert sampling.STATS["hits"] == hits + 1
    # evaluate's folds and the calibration check's refits reach the same entry
    problem = ev._Problem(table=second.table, data=second.data, spec=spec, settings=SamplerSettings(), centered=second.centered)
    compiled, _ = ev._compiled_for(problem)
    assert compiled._entry is first._entry
    assert sampling.STATS["hits"] == hits + 2


def _other_sites(obs: pd.DataFrame, spec) -> pd.DataFrame:
    return obs[obs[spec.group] != obs[spec.group].iloc[0]]


def _fewer_regions(obs: pd.DataFrame, spec) -> pd.DataFrame:
    first, second = obs[spec.region].drop_duplicates().iloc[:2]
    return obs.assign(**{spec.region: obs[spec.region].replace(first, second)})


def _interaction(spec):
    return mb.ModelSpec.from_dict({**spec.to_dict(), "interactions": [["C", "F"]]})


def _student_prior(spec):
    d = spec.to_dict()
    d["priors"] = {"E": {"dist": "StudentT", "nu": 3, "mu": 0, "sigma": 1}}  # C, F: default Normal(0, 2.5 / sd)
    return mb.ModelSpec.from_dict(d)


def _wider_spread(obs: pd.DataFrame) -> pd.DataFrame:
    return obs.assign(F=3 + (obs["F"] - 3) * 0.3)


def _regional(spec):
    return mb.ModelSpec.from_dict({**spec.to_dict(), "region": "region"})


#: Two compiled models that differ in one structural field each: (spec, obs, base) -> (one, other).
STRUCTURES = {
    "number of sites": lambda spec, obs, c: (c, compile_model(_other_sites(obs, spec), spec, centered=c.centered)),
    "number of regions": lambda spec, obs, c: (
        compile_model(obs, _regional(spec), centered=c.centered),
        compile_model(_fewer_regions(obs, _regional(spec)), _regional(spec), centered=c.centered),
    ),
    "parametrization": lambda spec, obs, c: (c, compile_model(obs, spec, centered=not c.centered)),
    "sampler": lambda spec, obs, c: (c, compile_model(obs, spec, sampler="pymc", centered=c.centered)),
    "spec (coefficients)": lambda spec, obs, c: (c, compile_model(obs, _interaction(spec), centered=c.centered)),
    "spec (priors)": lambda spec, obs, c: (c, compile_model(obs, _student_prior(spec), centered=c.centered)),
}


@pytest.mark.parametrize("field", list(STRUCTURES))
def test_a_different_structure_is_built_afresh(spec, obs, field):
    """Each structural field of the key on its own: drop one from structure_key and its case goes red."""
    one, other = STRUCTURES[field](spec, obs, compile_model(obs, spec))
    assert other.model is not one.model
    assert other._entry.key != one._entry.key


def test_baked_priors_are_in_the_key_and_normal_priors_are_not(spec, obs):
    student = _student_prior(spec)
    baked = compile_model(obs, student)
    assert compile_model(_wider_spread(obs), student).model is not baked.model  # baked prior scale differs
    assert compile_model(_wider_spread(obs), spec).model is compile_model(obs, spec).model  # swapped, not baked


def test_the_key_names_every_structural_field(spec, obs):
    compiled = compile_model(obs, spec)
    key = structure_key(spec, compiled.data, compiled.centered, "nutpie")
    assert set(__import__("json").loads(key)) == {
        "spec", "n_sites", "n_regions", "n_roles", "n_coefficients", "centered", "sampler", "baked_priors",
    }


def test_a_hand_made_compiled_model_gets_its_own_entry(spec, obs):
    cached = compile_model(obs, spec)
    by_hand = dataclasses.replace(cached, _entry=None)
    assert by_hand._entry is not cached._entry and by_hand._entry.model is cached.model


# -- the one task runner -----------------------------------------------------------------------------
def _square(task: int) -> int:
    return task * task


def _offset(shared: dict, task: int) -> tuple[int, int]:
    return shared["offset"] + task, shared["seed"]


def _warns(task: int) -> int:
    warnings.warn("a task's warning", RuntimeWarning, stacklevel=1)
    return task


def _fails(task: int) -> int:
    if task == 3:
        raise ValueError("task 3 failed")
    return task


RUNNERS = {"serial": {}, "threads": {"threads": 3}, "processes": {"n_jobs": 2}}


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_every_runner_returns_results_in_task_order_with_one_progress_call_each(runner):
    where = RUNNERS[runner]
    assert runtime.where(**where, n_tasks=7) == runner
    seen = []
    assert runtime.run(_square, range(7), progress=seen.append, **where) == [t * t for t in range(7)]
    assert sorted(seen) == [t * t for t in range(7)]
    shared = {"offset": 100, "seed": 5}
    assert runtime.run(_offset, [1, 2, 3], shared=shared, **where) == [(101, 5), (102, 5), (103, 5)]


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_a_failing_task_raises_in_the_caller(runner):
    with pytest.raises(ValueError, match="task 3 failed"):
        runtime.run(_fails, range(6), **RUNNERS[runner])


def test_worker_processes_keep_the_callers_warnings_filters():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(RuntimeWarning, match="a task's warning"):
            runtime.run(_warns, range(2), n_jobs=2)
        warnings.simplefilter("ignore", RuntimeWarning)
        assert runtime.run(_warns, range(2), n_jobs=2) == [0, 1]


def test_where_and_bad_jobs():
    assert runtime.where(n_jobs=2, n_tasks=1) == "serial"  # one task needs no pool
    assert runtime.where(scheduler="tcp://x:1") == "dask"
    assert runtime.describe_run(5, "folds", n_jobs=2) == "5 folds on 2 local processes"
    with pytest.raises(DataError, match=r"n_jobs \(--jobs\) = 0 must be a whole number >= 1"):
        runtime.run(_square, range(3), n_jobs=0)


def test_progress_lines_are_counted_and_throttled(capsys):
    bar = runtime.Progress("refits", 3, unit="refits", every=3600)
    runtime.run(_square, range(3), progress=bar)
    err = capsys.readouterr().err.splitlines()
    assert err == ["refits: 1/3 refits (33%)", "refits: 3/3 refits (100%)"]  # the 2nd within `every`


def test_power_simulation_counts_are_identical_on_every_runner(monkeypatch):
    from mbct_bayes.power import _simulate

    design = dict(
        logit_p0=-1.0, log_or=0.7, sigma_b=0.4, sims=600, clusters=[6, 10], sizes=[20], cv=0.2, alpha=0.05,
        analysis="t", direction=1, seed=31, chunk_size=150,
    )
    serial = _simulate.simulate_counts(**design)
    processes = _simulate.simulate_counts(**design, n_jobs=2)

    def on_threads(fn, tasks, *, n_jobs=1, scheduler=None, progress=None):
        assert runtime.where(threads=2, n_tasks=len(tasks)) == "threads"
        return runtime.run(fn, tasks, threads=2, progress=progress)

    monkeypatch.setattr(_simulate, "run_tasks", on_threads)
    threads = _simulate.simulate_counts(**design)
    assert serial.sum() > 0
    np.testing.assert_array_equal(processes, serial)
    np.testing.assert_array_equal(threads, serial)


# -- one sampler-settings object -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"draws": 0}, r"^--draws must be a whole number ≥ 1, got 0$"),
        ({"tune": -1}, r"^--tune must be a whole number ≥ 0, got -1$"),
        ({"chains": 1.5}, r"^--chains must be a whole number ≥ 1, got 1.5$"),
        ({"draws": True}, r"^--draws must be a whole number ≥ 1, got True$"),
        ({"seed": -3}, r"^--seed must be a whole number ≥ 0, got -3$"),
        ({"sampler": "stan"}, r"^sampler 'stan' is not 'nutpie' or 'pymc'$"),
        ({"target_accept": 1.0}, r"^target_accept must be a number between 0 and 1 \(exclusive\), got 1.0$"),
        ({"target_accept": "high"}, r"^target_accept must be a number between 0 and 1 \(exclusive\), got 'high'$"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(DataError, match=message):
        SamplerSettings(**kwargs)


def test_keywords_build_or_override_the_settings():
    assert sampler_settings("pymc", draws=50) == SamplerSettings(draws=50, sampler="pymc")
    base = SamplerSettings(draws=500, tune=500)
    assert sampler_settings(None, base, seed=4) == SamplerSettings(draws=500, tune=500, seed=4)
    given = SamplerSettings(draws=20, tune=10, chains=2, seed=9)
    assert sampler_settings(given, base) is given  # a settings object wins over the defaults
    assert sampler_settings(given, base, chains=1) == dataclasses.replace(given, chains=1)
    with pytest.raises(DataError, match="--draws must be a whole number"):
        mb.fit(pd.DataFrame(), mb.ModelSpec(), draws=0)  # settings are checked before the data


class _Reached(Exception):
    """The sampler was called: stop there (nothing is compiled or sampled)."""


@pytest.fixture
def sampler_calls(monkeypatch):
    """Record every sampler call and stop it; an empty cache, so no fake module outlives the test."""
    import nutpie
    import pymc

    calls: list[dict] = []

    class FakeCompiled:
        def with_data(self, **values):
            return self

    def record(*args, **kwargs):
        calls.append(kwargs)
        raise _Reached

    monkeypatch.setattr(sampling, "_CACHE", OrderedDict())
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda model, var_names=None: FakeCompiled())
    monkeypatch.setattr(nutpie, "sample", record)
    monkeypatch.setattr(pymc, "sample", record)
    return calls


SETTINGS_ARGS = ["--draws", "7", "--tune", "5", "--chains", "3", "--seed", "11"]


@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_fit_command_settings_reach_the_sampler(sampler_calls, tmp_path, sampler):
    with pytest.raises(_Reached):
        main([
            "fit", str(EXAMPLE / "observations.csv"), "--model", str(MODELS / "bernoulli.toml"),
            "--out", str(tmp_path / "fit.nc"), "--sampler", sampler, *SETTINGS_ARGS,
        ])
    (call,) = sampler_calls
    assert (call["draws"], call["tune"], call["chains"]) == (7, 5, 3)
    assert call["seed" if sampler == "nutpie" else "random_seed"] == 11
    assert call["target_accept"] == 0.8  # not a transition model: SamplerSettings' default


def _transition_panel(tmp_path):
    """A small simulated bernoulli transition panel and its spec, also written as CSV and TOML."""
    from mbct_bayes.model.simulate import simulate_panel

    panel, truth = simulate_panel(20, 3, "bernoulli", seed=1)
    spec = mb.ModelSpec.from_dict(truth["spec"])
    panel.to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "panel.toml").write_text(spec.to_toml())
    return panel, spec


def test_transition_fits_default_to_2000_draws_at_target_accept_0_85(sampler_calls, tmp_path, spec):
    """RESULTS §12b "Default for transition fits": what a caller leaves unsaid comes from model_defaults."""
    assert sampling.model_defaults(spec) == SamplerSettings()  # the static bernoulli model
    panel, spec = _transition_panel(tmp_path)
    assert sampling.model_defaults(spec) == SamplerSettings(draws=2000, target_accept=0.85)
    for kwargs, expected in (({}, 2000), ({"draws": 300}, 300)):
        with pytest.raises(_Reached):
            mb.fit(panel, spec, **kwargs)
        assert (sampler_calls[-1]["draws"], sampler_calls[-1]["target_accept"]) == (expected, 0.85)
    with pytest.raises(_Reached):  # a settings object says everything: its own defaults hold
        mb.fit(panel, spec, sampler=SamplerSettings(draws=50))
    assert (sampler_calls[-1]["draws"], sampler_calls[-1]["target_accept"]) == (50, 0.8)
    for args, expected in (([], 2000), (["--draws", "7"], 7)):
        with pytest.raises(_Reached):
            main(["fit", str(tmp_path / "panel.csv"), "--model", str(tmp_path / "panel.toml"),
                  "--out", str(tmp_path / "fit.nc"), *args])
        assert (sampler_calls[-1]["draws"], sampler_calls[-1]["target_accept"]) == (expected, 0.85)


def test_evaluate_command_settings_reach_the_sampler(sampler_calls, tmp_path):
    with pytest.raises(_Reached):
        main([
            "evaluate", str(EXAMPLE / "observations.csv"), "--model", str(MODELS / "bernoulli.toml"),
            "--folds", "3", "--out", str(tmp_path / "ev"), *SETTINGS_ARGS,
        ])
    assert sampler_calls
    fold_seeds = {s for s, _ in ev.fold_seeds(11, 3)}
    for call in sampler_calls:
        assert (call["draws"], call["tune"], call["chains"]) == (7, 5, 3)
        assert call["seed"] in fold_seeds  # each fold's seed from --seed


def test_check_command_settings_reach_the_sampler(sampler_calls):
    with pytest.raises(_Reached):
        main([
            "check", str(MODELS / "bernoulli.toml"), "--like", str(EXAMPLE / "observations.csv"),
            "--reps", "10", "--draws", "40", "--tune", "5", "--chains", "3", "--seed", "11",
        ])
    assert sampler_calls
    for call in sampler_calls:
        assert (call["draws"], call["tune"], call["chains"]) == (40, 5, 3)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["fit", "OBS", "--model", "SPEC", "--out", "{tmp}/f.nc", "--chains", "0"], "--chains must be a whole number ≥ 1, got 0"),
        (["evaluate", "OBS", "--model", "SPEC", "--out", "{tmp}/e", "--seed", "-1"], "--seed must be a whole number ≥ 0, got -1"),
        (["check", "SPEC", "--like", "OBS", "--draws", "0"], "--draws must be a whole number ≥ 1, got 0"),
    ],
)
def test_bad_settings_on_the_command_line_are_one_line_exit_2(command, message, tmp_path, capsys):
    paths = {"OBS": str(EXAMPLE / "observations.csv"), "SPEC": str(MODELS / "bernoulli.toml")}
    argv = [paths.get(a, a.replace("{tmp}", str(tmp_path))) for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
