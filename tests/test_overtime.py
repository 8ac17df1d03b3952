"""The baselines of evaluation over time (issue 14, item 6): proper forecasts with stated closed forms."""

from __future__ import annotations

import numpy as np

from mbct_bayes.forecast.overtime import base_rate_forecast, persistence_forecast


def test_base_rate_is_the_jeffreys_share():
    # 3 of state 0, 1 of state 1, none of state 2: (3.5, 1.5, 0.5) / 5.5
    np.testing.assert_allclose(base_rate_forecast(np.array([0, 0, 0, 1]), 3), np.array([3.5, 1.5, 0.5]) / 5.5)


def test_persistence_keeps_the_last_state_with_the_training_share_of_kept_states():
    previous = np.array([0, 0, 1, 1, 2])
    current = np.array([0, 1, 1, 1, 0])  # 3 of 5 kept: (3 + 0.5) / (5 + 1)
    out = persistence_forecast(previous, current, np.array([2, 0]), 3)
    kept = 3.5 / 6
    np.testing.assert_allclose(out, [[(1 - kept) / 2, (1 - kept) / 2, kept], [kept, (1 - kept) / 2, (1 - kept) / 2]])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
