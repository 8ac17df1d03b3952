"""Regenerate the bundled example data in this folder (seed 2026).

    python data/example/make_example.py

The data are simulated (see README.md here): 40 services in 4 UK-nation-like regions, 5 assessed
units each, from the known parameters in ``truth*.json``. The three outcome files share the same
sites, regions, effects and E/C/F scores (same seed); only the outcome differs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mbct_bayes.io import write_json, write_table
from mbct_bayes.simulate import simulate_new_site_rate, simulate_observations

SEED = 2026
HERE = Path(__file__).resolve().parent

# Five hypothetical new services: low, mid and high facilitation, one in a region never given
# (empty = unknown region, so its region effect is drawn too when predicting).
NEW_SITES = pd.DataFrame(
    {
        "site": ["NEW1", "NEW2", "NEW3", "NEW4", "NEW5"],
        "region": ["England-North", "Scotland", "Wales", "England-South", ""],
        "E": [3.5, 3.2, 3.6, 2.6, 3.4],
        "C": [3.0, 3.2, 3.4, 2.4, 3.0],
        "F": [1.8, 3.0, 4.3, 2.5, 3.8],
    }
)


def main(out: Path = HERE) -> None:
    """Write observations*.csv, truth*.json and new_sites.csv into ``out``."""
    files = {"bernoulli": "", "binomial": "_binomial", "ordinal": "_ordinal"}
    for family, suffix in files.items():
        obs, truth = simulate_observations(40, 5, family, seed=SEED)
        # the truth's P(embedded) for each hypothetical new service (site effect drawn; region
        # effect too when the region is empty), to compare with model predictions
        truth["new_site_rates"] = {
            row.site: simulate_new_site_rate(
                truth, row.E, row.C, row.F, seed=SEED, region=row.region or None
            )
            for row in NEW_SITES.itertuples()
        }
        write_table(out / f"observations{suffix}.csv", obs)
        write_json(out / f"truth{suffix}.json", truth)
    write_table(out / "new_sites.csv", NEW_SITES)


if __name__ == "__main__":
    main()
