"""Forecasting journeys (issue 14, item 5): the path kernels, what-if parsing, and forecasts from fits.

The kernels are checked against closed forms (the two-state Markov chain) and against brute
force (Monte Carlo paths); forecasts from a hand-made posterior check the wiring (known and new
sites, common random numbers); a simulated world checks what a forecast is for.
"""

from __future__ import annotations

import numpy as np
import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.forecast.journey import (
    Change,
    check_horizon,
    parse_change,
    predictor_paths,
    sample_paths,
    state_distribution,
)


def two_state(a: np.ndarray, b: np.ndarray, horizon: int) -> np.ndarray:
    """T (S, 1, H, 2, 2) of a two-state chain: P(0→1) = a, P(1→0) = b per draw, the same every wave."""
    t = np.empty((a.size, 1, horizon, 2, 2))
    t[:, 0, :, 0, :] = np.stack([1 - a, a], axis=-1)[:, None, :]
    t[:, 0, :, 1, :] = np.stack([b, 1 - b], axis=-1)[:, None, :]
    return t


def test_state_distribution_matches_the_two_state_closed_form():
    # Two-state Markov chain (Norris, Markov Chains, 1997, §1.1): starting in state 0,
    # P(state 1 after k steps) = a/(a+b) · (1 − (1 − a − b)^k).
    a, b = np.array([0.2, 0.05, 0.6]), np.array([0.1, 0.3, 0.25])
    p = state_distribution(two_state(a, b, 6), np.array([0]))
    k = np.arange(1, 7)
    expected = (a / (a + b))[:, None] * (1 - (1 - a - b)[:, None] ** k[None, :])
    np.testing.assert_allclose(p[:, 0, :, 1], expected, atol=1e-12)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-12)


def test_sample_paths_follow_the_state_distribution():
    # brute force: many paths from one draw's (time-varying, three-state) chain reproduce its
    # exact state probabilities within Monte Carlo error
    rng = np.random.default_rng(3)
    horizon, n_paths = 4, 40_000
    raw = rng.random((1, 1, horizon, 3, 3)) + 0.2
    t = raw / raw.sum(axis=-1, keepdims=True)
    exact = state_distribution(t, np.array([1]))[0, 0]
    paths = sample_paths(np.repeat(t, n_paths, axis=0), np.array([1]), rng.random((n_paths, 1, horizon)))
    for k in range(horizon):
        shares = np.bincount(paths[:, 0, k], minlength=3) / n_paths
        np.testing.assert_allclose(shares, exact[k], atol=4 * np.sqrt(0.25 / n_paths))


def test_same_uniforms_same_paths_where_the_chain_is_the_same():
    rng = np.random.default_rng(0)
    t = two_state(np.full(50, 0.3), np.full(50, 0.2), 3)
    u = rng.random((50, 1, 3))
    np.testing.assert_array_equal(sample_paths(t, np.array([0]), u), sample_paths(t.copy(), np.array([0]), u))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("F=-1.5@2", Change("F", -1.5, 2)), ("F=-1.5", Change("F", -1.5, 1)), (" C = +0.5 @ 3 ", Change("C", 0.5, 3))],
)
def test_parse_change(text, expected):
    assert parse_change(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("F-1.5@2", "is not a change"),
        ("F=down@2", "is not a number"),
        ("F=-1.5@two", "not a whole number"),
        ("F=-1.5@0", "1 or later"),
        ("F=inf", "finite"),
        ("=1", "is not a change"),
    ],
)
def test_parse_change_refuses_bad_syntax(text, words):
    with pytest.raises(DataError, match=words) as err:
        parse_change(text)
    assert "\n" not in str(err.value) and "F=-1.5@2" in str(err.value)


@pytest.mark.parametrize("horizon", [0, -1, 1.5, True, "3"])
def test_horizon_must_be_a_whole_number_from_one(horizon):
    with pytest.raises(DataError, match="horizon must be a whole number"):
        check_horizon(horizon)


def test_predictor_paths_change_from_their_wave_and_clamp_to_the_scale():
    last = np.array([[3.0, 3.0, 2.0], [3.0, 3.0, 4.0]])
    values, notes = predictor_paths(last, ("E", "C", "F"), 3, [Change("F", -1.5, 2)], {"F": (1.0, 5.0)})
    np.testing.assert_allclose(values[:, :, 2], [[2.0, 2.0, 1.0, 1.0], [4.0, 4.0, 2.5, 2.5]])
    np.testing.assert_allclose(values[:, :, :2], 3.0)
    assert len(notes) == 1 and "1 site(s)" in notes[0] and "clamped" in notes[0]
    _, none = predictor_paths(last, ("E", "C", "F"), 3, [Change("F", 0.5, 1)], {"F": (1.0, 5.0)})
    assert none == []
