"""Panel benchmark (issue 14): a cold transition-model fit, and time-based CV compiled once vs per fold.

Workload: a panel of ``--sites`` sites × ``--waves`` annual waves (default 200 × 6, i.e. 1,000
modelled transitions) simulated by :func:`mbct_bayes.model.simulate.simulate_panel` (data seed
1) and fitted with the spec that generated it (``dynamics = "transition"``, previous state
additive, E, C, F at the previous wave, site effects), at ``mb.fit``'s default sampler settings
for it (``model_defaults``: nutpie, 4 chains × 2000 draws after 1000 tuning steps at target
acceptance 0.85 since RESULTS §12b "Default for transition fits"; 1000 at 0.8 before, seed 1).

Each measurement runs in its own fresh worker process with an **empty PyTensor/numba compile
cache** (``PYTENSOR_FLAGS=base_compiledir=<temp folder>``), so *cold* is what a new user sees.

* **cold** (``bernoulli`` and ``ordinal``): the body of ``mb.fit`` in phases — ``compile_model``
  (validation, lagged rows, PyMC model build), ``ready()`` (nutpie's numba compile),
  ``sample`` (NUTS, with the posterior rebuilt), ``warn_if_failed`` (diagnostics) — each with
  wall and CPU seconds (``time.process_time``: every thread of the process). Imports and
  simulation are reported apart. The fit's max R-hat, min bulk/tail ESS and divergences are
  recorded, so a fast but broken fit cannot pass.
* **cv** (bernoulli): :func:`mbct_bayes.forecast.overtime.evaluate_over_time` (what
  ``evaluate --by time`` runs: expanding window, 1 wave ahead, cuts at waves 3, 4 and 5) twice on
  the same panel and seeds: *compiled once* (its own path: one ``compile_model``, then
  ``CompiledModel.sample(rows=...)`` per cut) and *rebuilt per fold* (the same function with its
  ``compile_model`` replaced, in this process only, by a stand-in whose ``sample`` empties the
  compiled-model cache, :func:`mbct_bayes.model.sampling.clear`, and builds and compiles a new
  model before each cut). An untimed warm-up compile of another shape comes first, so neither
  way pays numba's one-off JIT of PyTensor's dispatchers. Same seeds, so both ways should give
  the same forecasts; the largest difference is recorded.

The wall time of everything on a shared machine moves with load: the load average (``uptime``)
is recorded with every number, and CPU seconds are the steadier figure.

Run by hand:  .venv/bin/python benchmarks/bench_panel.py [--only cold|cv] [--families bernoulli,ordinal]
              [--initial-state exogenous|condition|condition+means]
Writes ``benchmarks/results_panel.json`` (``--json`` to change); results go in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA_SEED = 1
#: Issue 14 target: a cold fit of the 200 × 6 panel in under this many seconds on 2 cores.
TARGET_COLD_S = 60.0


def _load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _phase(record: dict[str, Any], name: str, call):
    """Run ``call()``, recording its wall and CPU seconds and the load average under ``name``."""
    load = _load()
    wall, cpu = time.perf_counter(), time.process_time()
    value = call()
    record[name] = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "load_before": load,
                    "load_after": _load()}
    return value


#: The spec's ``initial_state`` (``--initial-state``; the fitted spec is otherwise the generating one).
INITIAL_STATE = os.environ.get("BENCH_PANEL_INITIAL_STATE", "exogenous")


def _panel(family: str, n_sites: int, n_waves: int):
    from mbct_bayes.model.simulate import simulate_panel
    from mbct_bayes.spec import ModelSpec

    panel, truth = simulate_panel(n_sites, n_waves, family, seed=DATA_SEED)
    return panel, ModelSpec.from_dict({**truth["spec"], "initial_state": INITIAL_STATE})


# -- workers (each in a fresh process) ------------------------------------------------------------
def worker_cold(family: str, n_sites: int, n_waves: int) -> dict[str, Any]:
    """The body of ``mb.fit`` at default settings, phase by phase, on a cold process and cache."""
    record: dict[str, Any] = {"task": "cold", "family": family, "sites": n_sites, "waves": n_waves,
                              "initial_state": INITIAL_STATE}
    _phase(record, "import", lambda: __import__("mbct_bayes"))
    from mbct_bayes.model.fit import compile_model
    from mbct_bayes.model.sampling import model_defaults

    panel, spec = _phase(record, "simulate", lambda: _panel(family, n_sites, n_waves))
    settings = model_defaults(spec)  # mb.fit's defaults for this spec (transition: 2000 draws at 0.85)
    record["settings"] = settings.to_dict()
    compiled = _phase(record, "build", lambda: compile_model(panel, spec, sampler=settings))
    record["transitions"] = int(compiled.data.n_obs)
    record["centered"] = bool(compiled.centered)
    _phase(record, "compile", compiled.ready)
    fit = _phase(record, "sample", lambda: compiled.sample(settings=settings))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        _phase(record, "check", fit.warn_if_failed)
    phases = ("build", "compile", "sample", "check")
    record["fit"] = {key: sum(record[p][key] for p in phases) for key in ("wall_s", "cpu_s")}
    diag = fit.diagnostics
    record["diagnostics"] = {k: diag[k] for k in ("ok", "max_r_hat", "min_ess_bulk", "min_ess_tail", "divergences",
                                                  "problems")}
    record["diagnostics"]["worst"] = _worst(fit.convergence)
    return record


def _worst(table: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The parameter (name[index]) with the highest R-hat and with the lowest bulk and tail ESS."""
    import numpy as np

    out = {}
    for key, pick in (("r_hat", np.nanargmax), ("ess_bulk", np.nanargmin), ("ess_tail", np.nanargmin)):
        best = None
        for name, values in table.items():
            flat = np.asarray(values[key], dtype=float).ravel()
            if not np.isfinite(flat).any():
                continue
            i = int(pick(flat))
            candidate = (flat[i], f"{name}[{i}]" if flat.size > 1 else name)
            if best is None or (candidate[0] > best[0] if key == "r_hat" else candidate[0] < best[0]):
                best = candidate
        if best is not None:
            out[key] = f"{best[1]} ({best[0]:.3f})"
    return out


class _RebuildPerFold:
    """Stands in for ``compile_model`` in ``evaluate_over_time``: a new model built and compiled per cut."""

    def __init__(self, compile_model, table, spec, **kwargs):
        from mbct_bayes.model import sampling

        self._clear, self._compile, self._args = sampling.clear, compile_model, (table, spec, kwargs)
        self._first = compile_model(table, spec, **kwargs)
        self.table, self.spec = self._first.table, self._first.spec
        self.folds = 0

    def sample(self, **kwargs):
        compiled = self._first
        if self.folds:  # the first cut samples the model built above; every later one starts afresh
            self._clear()
            table, spec, options = self._args
            compiled = self._compile(table, spec, **options)
        self.folds += 1
        return compiled.sample(**kwargs)


def worker_cv(family: str, n_sites: int, n_waves: int) -> dict[str, Any]:
    """``evaluate_over_time`` compiled once vs rebuilt per cut, same panel and seeds."""
    import numpy as np

    import mbct_bayes as mb
    from mbct_bayes.forecast import overtime
    from mbct_bayes.model import sampling
    from mbct_bayes.model.fit import compile_model

    warnings.simplefilter("ignore", mb.ConvergenceWarning)
    record: dict[str, Any] = {"task": "cv", "family": family, "sites": n_sites, "waves": n_waves}
    panel, spec = _panel(family, n_sites, n_waves)
    settings = sampling.SamplerSettings()
    record["settings"] = settings.to_dict()
    # warm-up (not timed): numba's first compile in a process JIT-compiles PyTensor's generic
    # dispatchers; do it once on another shape (one site fewer) so neither way pays it
    other = panel[panel["site"] != panel["site"].iloc[0]]
    _phase(record, "warm_up", lambda: compile_model(other, spec).ready())
    sampling.clear()
    once = _phase(record, "compiled_once", lambda: overtime.evaluate_over_time(panel, spec, sampler=settings))
    sampling.clear()
    stand_in: list[_RebuildPerFold] = []

    def rebuilding(table, spec, **kwargs):
        stand_in.append(_RebuildPerFold(compile_model, table, spec, **kwargs))
        return stand_in[-1]

    overtime.compile_model = rebuilding  # this process only
    try:
        rebuilt = _phase(record, "rebuilt_per_fold", lambda: overtime.evaluate_over_time(panel, spec, sampler=settings))
    finally:
        overtime.compile_model = compile_model
    record["cuts"] = once.metrics["cuts"]
    record["folds_rebuilt"] = stand_in[0].folds
    record["n_forecasts"] = once.metrics["n_forecasts"]
    record["ratio_wall"] = record["rebuilt_per_fold"]["wall_s"] / record["compiled_once"]["wall_s"]
    record["ratio_cpu"] = record["rebuilt_per_fold"]["cpu_s"] / record["compiled_once"]["cpu_s"]
    p_cols = [c for c in once.predictions if c.startswith("p_")]
    diff = np.abs(once.predictions[p_cols].to_numpy() - rebuilt.predictions[p_cols].to_numpy())
    record["max_abs_diff_p"] = float(diff.max())
    record["skill_vs_persistence"] = once.metrics["vs_persistence"].get("skill")
    return record


WORKERS = {"cold": worker_cold, "cv": worker_cv}


# -- orchestrator ---------------------------------------------------------------------------------
def _spawn(task: str, family: str, args) -> dict[str, Any]:
    """Run one worker in a fresh process with an empty compile cache; its record (or an error)."""
    out = Path(tempfile.mkstemp(prefix=f"bench_panel_{task}_", suffix=".json")[1])
    cache = Path(tempfile.mkdtemp(prefix="bench_panel_pytensor_"))
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = ",".join(filter(None, [env.get("PYTENSOR_FLAGS", ""), f"base_compiledir={cache}"]))
    env["BENCH_PANEL_INITIAL_STATE"] = args.initial_state
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))  # this checkout
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", task, "--family", family,
           "--sites", str(args.sites), "--waves", str(args.waves), "--json-out", str(out)]
    print(f"[{datetime.now(UTC):%H:%M:%S} UTC, load {_load()}] {task} / {family} ...", flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, timeout=args.timeout, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            record = {"task": task, "family": family, "error": proc.stderr[-3000:]}
        else:
            record = json.loads(out.read_text())
    except subprocess.TimeoutExpired:
        record = {"task": task, "family": family, "error": f"timed out after {args.timeout} s"}
    finally:
        out.unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
    record["process_s"] = time.perf_counter() - start
    record["uptime_after"] = _sh("uptime")
    print("  " + _line(record), flush=True)
    return record


def _line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"FAILED: {r['error'][-800:]}"
    if r["task"] == "cold":
        d = r["diagnostics"]
        verdict = "met" if r["fit"]["wall_s"] < TARGET_COLD_S else "missed"
        return (
            f"cold fit {r['fit']['wall_s']:.1f} s wall, {r['fit']['cpu_s']:.1f} s CPU (target < {TARGET_COLD_S:.0f} s "
            f"wall: {verdict}) = build {r['build']['wall_s']:.1f} + compile {r['compile']['wall_s']:.1f} + sample "
            f"{r['sample']['wall_s']:.1f} + check {r['check']['wall_s']:.1f} | gate {'pass' if d['ok'] else 'FAIL'}: "
            f"R-hat {d['max_r_hat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, min tail ESS {d['min_ess_tail']:.0f}, "
            f"{d['divergences']} divergences, worst {d.get('worst', '?')} | load {r['build']['load_before']} → {r['check']['load_after']}"
        )
    return (
        f"time CV ({len(r['cuts'])} cuts): compiled once {r['compiled_once']['wall_s']:.1f} s wall "
        f"({r['compiled_once']['cpu_s']:.1f} CPU), rebuilt per fold {r['rebuilt_per_fold']['wall_s']:.1f} s "
        f"({r['rebuilt_per_fold']['cpu_s']:.1f} CPU): ratio {r['ratio_wall']:.2f}× wall, {r['ratio_cpu']:.2f}× CPU; "
        f"max |Δp| {r['max_abs_diff_p']:.2g} | load {r['compiled_once']['load_before']} → "
        f"{r['rebuilt_per_fold']['load_after']}"
    )


def _sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _meta() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("mbct-bayes", "pymc", "pytensor", "nutpie", "numba", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "uptime_start": _sh("uptime"),
        "nproc": _sh("nproc"),
        "cpu": _sh("lscpu | grep 'Model name' | sed 's/Model name:\\s*//'"),
        "os": platform.platform(),
        "commit": _sh(f"git -C {ROOT} rev-parse --short HEAD"),
        "versions": versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(WORKERS), help="run one measurement (default: both)")
    parser.add_argument("--families", default="bernoulli,ordinal", help="families of the cold fit")
    parser.add_argument("--cv-family", default="bernoulli", help="family of the time-based CV")
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--waves", type=int, default=6)
    parser.add_argument("--initial-state", default="exogenous", help="the fitted spec's initial_state")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    parser.add_argument("--json", type=Path, default=HERE / "results_panel.json")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--family", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        record = WORKERS[args.worker](args.family, args.sites, args.waves)
        args.json_out.write_text(json.dumps(record, indent=2, default=str))
        return
    tasks = []
    if args.only in (None, "cold"):
        tasks += [("cold", family) for family in args.families.split(",")]
    if args.only in (None, "cv"):
        tasks.append(("cv", args.cv_family))
    meta = _meta()
    print(f"{meta['date']}: {meta['nproc']} cores, {meta['cpu']}; {meta['uptime_start']}", flush=True)
    results = [_spawn(task, family, args) for task, family in tasks]
    meta["uptime_end"] = _sh("uptime")
    args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
