"""Initial-conditions study (issue 14 B): previous[1] bias with and without conditioning on the first state.

World ``endogenous``: ``simulate_panel(200, 6 + 4, "bernoulli", seed, initial_site_effect=True)``
with the first 4 waves dropped, so each site's first kept state is drawn from the process with its
site effect. World ``exogenous``: ``simulate_panel(200, 6, "bernoulli", seed)`` (the first state is
independent of the site effect). Each panel is fitted with each ``initial_state`` at ``mb.fit``'s
default sampler settings (nutpie, 4 x 1000 + 1000 tuning, seed 1), one fit at a time.

Run:  python benchmarks/initial_state_study.py WORLD SEEDS MODES OUT.jsonl
      e.g. endogenous 1,2,3 exogenous,condition results.jsonl
One JSON line per fit: the gate (max R-hat, min bulk / tail ESS, divergences) and each
coefficient's and sigma_site's posterior mean, 5% and 95% quantiles beside its truth.
Results: benchmarks/RESULTS.md §12b.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np

from mbct_bayes.model.fit import compile_model
from mbct_bayes.model.sampling import SamplerSettings
from mbct_bayes.model.simulate import simulate_panel
from mbct_bayes.spec import ModelSpec

SITES, WAVES, BURN = 200, 6, 4


def panel_for(world: str, seed: int):
    if world == "endogenous":
        panel, truth = simulate_panel(SITES, WAVES + BURN, "bernoulli", seed=seed, initial_site_effect=True)
        return panel[panel["wave"] > BURN].reset_index(drop=True), truth
    return simulate_panel(SITES, WAVES, "bernoulli", seed=seed)


def main() -> None:
    world, seeds, modes, out_path = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    warnings.simplefilter("ignore")
    for seed in (int(s) for s in seeds.split(",")):
        panel, truth = panel_for(world, seed)
        for mode in modes.split(","):
            spec = ModelSpec.from_dict({**truth["spec"], "initial_state": mode})
            settings = SamplerSettings()
            start = time.perf_counter()
            fit = compile_model(panel, spec, sampler=settings).sample(settings=settings)
            diag, post = fit.diagnostics, fit.idata.posterior
            names = list(post["beta"].coords["predictor"].values)
            beta = np.asarray(post["beta"]).reshape(-1, len(names))
            record = {"world": world, "seed": seed, "mode": mode, "wall_s": time.perf_counter() - start,
                      "ok": diag["ok"], "rhat": diag["max_r_hat"], "bulk": diag["min_ess_bulk"],
                      "tail": diag["min_ess_tail"], "div": diag["divergences"]}
            truths = {**truth["beta"], "sigma_site": truth["sigma_site"]}
            columns = [*((n, beta[:, j]) for j, n in enumerate(names)), ("sigma_site", np.asarray(post["sigma_site"]).ravel())]
            for name, values in columns:
                q05, q95 = np.quantile(values, [0.05, 0.95])
                record[name] = {"mean": float(values.mean()), "q05": float(q05), "q95": float(q95),
                                "truth": truths.get(name)}
            print(json.dumps(record), flush=True)
            with open(out_path, "a") as fh:
                fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
