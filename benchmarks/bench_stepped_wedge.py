"""Benchmark: stepped-wedge power — analytic for 1,000 designs, and the vectorised simulation.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/bench_stepped_wedge.py [--designs 1000] [--sims 20000] [--type1-grid]

* analytic — ``mb.power.stepped_wedge_analytic`` (input checks, design matrix, per-cluster GLS
  information matrix, HH closed form beside it) for ``--designs`` random standard designs:
  2–8 sequences of 1–8 clusters, 0–2 extra periods, 10–200 people per cluster-period, p0 in
  (0.05, 0.5), p1 = p0 + 0.01–0.06, ICC 0.001–0.1, period effects or a linear trend; median of
  5 runs of the whole batch, wall-clock and CPU seconds (the target is under 1 s; on a shared
  machine the CPU time is the steadier figure, and the load average is printed).
* simulation — ``mb.power.stepped_wedge_simulate`` for swCRTdesign's swPwr example
  (6,6,6,6 × 120, p0 0.05, p1 0.035, tau 0.01): seconds for ``--sims`` trials, simulated power
  against the analytic 0.786, and the type-I error at p1 = p0 (same design, same number of trials).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np

from mbct_bayes.power import stepped_wedge_analytic, stepped_wedge_simulate

SWPWR = dict(sequences=[6, 6, 6, 6], cluster_size=120, p0=0.05, p1=0.035, tau=0.01)


def random_designs(n: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    designs = []
    for _ in range(n):
        steps = int(rng.integers(2, 9))
        p0 = float(rng.uniform(0.05, 0.5))
        designs.append(
            dict(
                sequences=rng.integers(1, 9, size=steps).tolist(),
                periods=steps + 1 + int(rng.integers(0, 3)),
                cluster_size=int(rng.integers(10, 201)),
                p0=p0,
                p1=p0 + float(rng.uniform(0.01, 0.06)),
                icc=float(rng.uniform(0.001, 0.1)),
                time=str(rng.choice(["categorical", "linear"])),
            )
        )
    return designs


def type_one_grid(sims: int) -> None:
    """Type-I error (p1 = p0) of the simulation's analysis over small and large designs."""
    print(f"| sequences | clusters | df | m | p0 | ICC | type-I ({sims} trials) | 95% MC interval |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for seqs in ([1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3], [6, 6, 6, 6]):
        for m in (20, 120):
            for p0 in (0.1, 0.3):
                icc = 0.05
                r = stepped_wedge_simulate(sequences=seqs, cluster_size=m, p0=p0, p1=p0, icc=icc, sims=sims, seed=3)
                print(
                    f"| {','.join(map(str, seqs))} | {sum(seqs)} | {r['df']} | {m} | {p0} | {icc} | "
                    f"{r['rejection_rate_two_sided']:.4f} | {r['power_mc_low']:.4f}–{r['power_mc_high']:.4f} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", type=int, default=1000)
    parser.add_argument("--sims", type=int, default=20000)
    parser.add_argument("--type1-grid", action="store_true", help="also the type-I error over a grid of designs")
    args = parser.parse_args()

    designs = random_designs(args.designs)
    runs, cpu = [], []
    for _ in range(5):
        start, start_cpu = time.perf_counter(), time.process_time()
        powers = [stepped_wedge_analytic(**d)["power"] for d in designs]
        runs.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    analytic = stepped_wedge_analytic(**SWPWR)["power"]

    start = time.perf_counter()
    sim = stepped_wedge_simulate(**SWPWR, sims=args.sims, seed=1)
    sim_seconds = time.perf_counter() - start
    null = stepped_wedge_simulate(**{**SWPWR, "p1": SWPWR["p0"]}, sims=args.sims, seed=2)

    load = os.getloadavg()[0]
    print(
        f"date {datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f}"
    )
    print("| workload | result |")
    print("|---|---:|")
    print(f"| analytic, {args.designs} random designs (median of 5 runs, s) | {np.median(runs):.3f} |")
    print(f"| analytic, {args.designs} random designs (median of 5 runs, CPU s) | {np.median(cpu):.3f} |")
    print(f"| powers computed (min / median / max) | {min(powers):.3f} / {np.median(powers):.3f} / {max(powers):.3f} |")
    print(f"| swPwr example, analytic | {analytic:.4f} |")
    print(
        f"| swPwr example, simulated ({args.sims} trials, {sim_seconds:.2f} s) | {sim['power']:.4f} "
        f"({sim['power_mc_low']:.4f}–{sim['power_mc_high']:.4f}) |"
    )
    print(
        f"| type-I error at p1 = p0 ({args.sims} trials) | {null['rejection_rate_two_sided']:.4f} "
        f"({null['power_mc_low']:.4f}–{null['power_mc_high']:.4f}) |"
    )

    if args.type1_grid:
        type_one_grid(args.sims // 2)


if __name__ == "__main__":
    main()
