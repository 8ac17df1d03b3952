"""Type-I error of each power analysis over the issue-11 grid: the README table.

Run by hand (not part of the tests; tests/test_power.py::test_type_one_error_grid_every_analysis
checks the same grid):

    .venv/bin/python benchmarks/size_grid.py [--sims 10000] [--seed 1] [--markdown FILE]

Its table is section 7 of benchmarks/RESULTS.md (and the README's size table).

Grid: 4, 8, 15, 30 clusters per arm; cluster sizes 1, 5, 20 (equal); typical-cluster p0 = p1 of
0.1, 0.3, 0.5; between-cluster SD sigma_b = 0.5 on the logit scale; alpha 0.05 two-sided. Size 1
is exact by enumeration for t, Welch and GEE; the rest is simulated (``--sims`` null trials per
cell, Wilson 95 % half-width about 0.0043 at 0.05). The adjusted analysis uses 3 standard-normal
baseline covariates per cluster explaining half the between-cluster logit variance. A size
holds when it lies in [0.035, 0.065]; cells outside are marked with an asterisk.
"""

from __future__ import annotations

import argparse
import time

from mbct_bayes.io import write_text
from mbct_bayes.power import size_grid

CLUSTERS = (4, 8, 15, 30)
SIZES = (1, 5, 20)
P0 = (0.1, 0.3, 0.5)
SIGMA_B = 0.5
NAMES = {
    "t": "pooled t",
    "welch": "Welch t",
    "gee": "GEE, KC SE, t(2c−2)",
    "adjusted": "adjusted (E, C, F)",
}


def markdown(table) -> str:
    """One row per analysis and cluster size; each cell the sizes at p0 = 0.1 / 0.3 / 0.5."""
    lines = [
        "| analysis | size | " + " | ".join(f"{c} per arm" for c in CLUSTERS) + " |",
        "|---|---:|" + "---:|" * len(CLUSTERS),
    ]
    for analysis, name in NAMES.items():
        for m in SIZES:
            cells = []
            for c in CLUSTERS:
                rows = table[
                    (table.analysis == analysis) & (table.cluster_size == m) & (table.clusters_per_arm == c)
                ].sort_values("p0")
                cells.append(
                    " / ".join(
                        f"{r.actual_size:.3f}" + ("" if r.size_holds else "*") for r in rows.itertuples()
                    )
                )
            method = "exact" if rows.size_method.iloc[0] == "exact" else "sim."
            lines.append(f"| {name} | {m} ({method}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    start = time.perf_counter()
    table = size_grid(
        clusters=CLUSTERS, cluster_sizes=SIZES, p0=P0, sigma_b=SIGMA_B, sims=args.sims, seed=args.seed
    )
    text = markdown(table)
    print(text)
    failing = table[~table.size_holds]
    print(f"{len(failing)} of {len(table)} cells outside [0.035, 0.065]; {time.perf_counter() - start:.1f} s")
    if args.markdown:
        write_text(args.markdown, text)


if __name__ == "__main__":
    main()
