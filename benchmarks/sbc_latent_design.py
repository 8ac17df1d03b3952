"""Write a small latent-model study design for ``mbct-bayes check`` (issue 12: SBC of the latent model).

20 sites x 5 assessed units, 3 respondents per site answering the ORCA-MBCT items
(``data/codebook_orca_mbct.csv``), from :func:`mbct_bayes.survey.simulate.simulate_survey_study`
(seed 1). Only the design matters to the check (sites, units, respondents, their roles and which
items they answered): the outcomes and scores are simulated again from the spec's priors.

Run by hand, then check the latent spec at this design::

    PYTHONPATH=. .venv/bin/python benchmarks/sbc_latent_design.py /tmp/sbcl
    mbct-bayes check models/latent.toml --like /tmp/sbcl/observations.csv \\
        --responses /tmp/sbcl/items.csv --codebook data/codebook_orca_mbct.csv \\
        --reps 100 --draws 250 --tune 300 --chains 2 --out /tmp/sbcl/out
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from mbct_bayes.survey.scoring import read_codebook
    from mbct_bayes.survey.simulate import simulate_survey_study

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    codebook = read_codebook(ROOT / "data" / "codebook_orca_mbct.csv")
    obs, items, _ = simulate_survey_study(20, 5, codebook, respondents_per_site=3, seed=1)
    obs.to_csv(out / "observations.csv", index=False)
    items.to_csv(out / "items.csv", index=False)
    print(f"wrote {out / 'observations.csv'} ({len(obs)} rows) and {out / 'items.csv'} ({len(items)} respondents)")


if __name__ == "__main__":
    main()
