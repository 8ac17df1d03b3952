"""Regenerate ``data/example/responses.csv``: an item-level readiness survey of 40 MBCT services.

Run from the repository root: ``python data/example/make_responses.py``. Seed 2026, so the file
is the same on every run. The true site values are drawn with ``simulate_site_table`` (seed
2026) and the responses with ``simulate_responses`` (seed 2027, i.e. ``simulate_survey``); two
to five respondents per service, ICC(1) about 0.1, managers a little more positive about
facilitation and service users a little less, 5% non-response.
"""

from __future__ import annotations

from pathlib import Path

from mbct_bayes.io import write_table
from mbct_bayes.simulate_items import default_codebook, simulate_survey

SEED = 2026
HERE = Path(__file__).resolve().parent


def make_responses():
    """The example responses and the true site values behind them."""
    return simulate_survey(
        40,
        default_codebook(),
        seed=SEED,
        site_kwargs={"mean": 3.0, "sd": 0.3, "corr": 0.4},
        respondents_per_site=(2, 5),
        icc1=0.1,
        role_offsets={"manager": {"F": 0.2}, "service_user": {"F": -0.2}},
        missing_rate=0.05,
    )


def main() -> None:
    responses, _sites = make_responses()
    # Likert answers are whole numbers: write them without a trailing ".0"
    items = [c for c in responses.columns if c not in ("site", "respondent", "role")]
    out = responses.copy()
    out[items] = out[items].astype("Int64")
    write_table(HERE / "responses.csv", out)
    print(f"wrote {HERE / 'responses.csv'} ({len(out)} respondents, {out['site'].nunique()} sites)")


if __name__ == "__main__":
    main()
