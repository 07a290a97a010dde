"""service.models.shapley against its definition: properties (hypothesis) and a brute-force enumeration.

The model functions here are built in the test (numpy), so that a feature the model ignores and two features
it treats symmetrically are known by construction.
"""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.models.shapley import plan

FEATURES = 5
values = st.floats(-3, 3, width=32, allow_nan=False)
# Small integer values too, so that a row often shares values with a background row (the dummy shortcut).
cells = st.one_of(values, st.integers(-1, 1).map(float))


def rows(count: int) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float32, (count, FEATURES), elements=cells)


def explain(f, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    coalitions = plan(x, background)
    return coalitions.contributions(f(coalitions.rows.astype(np.float64)))


def mean_f(f, background: np.ndarray) -> float:
    return float(f(background.astype(np.float64)).mean())


def model(weights: np.ndarray):
    """A nonlinear model over the 5 columns: a sigmoid of a weighted sum plus an interaction of 0 and 1."""

    def f(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(x @ weights))) + 0.3 * x[:, 0] * x[:, 1]

    return f


weights_strategy = arrays(np.float64, FEATURES, elements=st.floats(-2, 2))


@settings(max_examples=60, deadline=None)
@given(x=rows(3), background=rows(4), weights=weights_strategy)
def test_efficiency_the_contributions_add_up_to_the_answer_minus_the_base(x, background, weights) -> None:
    f = model(weights)
    phi = explain(f, x, background)
    answers = f(x.astype(np.float64))
    np.testing.assert_allclose(phi.sum(axis=1), answers - mean_f(f, background), atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(x=rows(2), background=rows(3), weights=weights_strategy)
def test_a_feature_the_model_ignores_gets_zero(x, background, weights) -> None:
    weights = weights.copy()
    weights[4] = 0.0  # column 4 is in no term of the model
    phi = explain(model(weights), x, background)
    np.testing.assert_allclose(phi[:, 4], 0.0, atol=1e-12)  # zero up to the rounding of a weighted sum


@settings(max_examples=60, deadline=None)
@given(x=rows(2), background=rows(3), weights=weights_strategy)
def test_symmetric_features_get_equal_values(x, background, weights) -> None:
    weights = weights.copy()
    weights[3] = weights[2]  # the model is symmetric in columns 2 and 3 ...
    x = x.copy()
    x[:, 3] = x[:, 2]  # ... and so is the explained row
    background = background.copy()
    background[:, 3] = background[:, 2]  # ... and the background
    phi = explain(model(weights), x, background)
    np.testing.assert_allclose(phi[:, 2], phi[:, 3], atol=1e-12)


def brute_force(f, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Shapley's formula over every coalition, with v(S) = mean over b of f(x_S, b_rest)."""

    def v(coalition: tuple[int, ...]) -> float:
        rows = background.astype(np.float64).copy()
        rows[:, list(coalition)] = x[list(coalition)]
        return float(f(rows).mean())

    n, phi = len(x), np.zeros(len(x))
    for j in range(n):
        others = [k for k in range(n) if k != j]
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for coalition in itertools.combinations(others, size):
                phi[j] += weight * (v((*coalition, j)) - v(coalition))
    return phi


@settings(max_examples=25, deadline=None)
@given(x=rows(2), background=rows(3), weights=weights_strategy)
def test_equal_to_shapleys_formula_enumerated(x, background, weights) -> None:
    f = model(weights)
    phi = explain(f, x, background)
    for index, row in enumerate(x):
        np.testing.assert_allclose(phi[index], brute_force(f, row, background), atol=1e-9)


def test_missing_values_are_values_of_their_own() -> None:
    """NaN (missing) in the row differs from a background value and equals a background NaN."""
    f = model(np.ones(FEATURES))

    def g(x: np.ndarray) -> np.ndarray:  # a model that imputes 2.0 for a missing value, as a graph would
        return f(np.where(np.isnan(x), 2.0, x))

    background = np.array([[0, 0, 0, 0, 0], [1, 1, 1, 1, np.nan]], dtype=np.float32)
    x = np.array([[1, 1, np.nan, 1, np.nan]], dtype=np.float32)
    phi = explain(g, x, background)
    np.testing.assert_allclose(phi[0], brute_force(g, x[0], background), atol=1e-12)
    assert phi[0, 2] != 0  # the imputed 2.0 against the background's 0 and 1
    np.testing.assert_allclose(phi.sum(), g(x.astype(np.float64))[0] - mean_f(g, background), atol=1e-12)


def test_one_plan_for_many_rows_and_nothing_to_run_for_a_background_row() -> None:
    background = np.array([[0, 1, 2, 3, 4], [1, 1, 1, 1, 1]], dtype=np.float32)
    coalitions = plan(background[:1], background)  # differs from row 1 in 4 features: 16 coalitions
    assert len(coalitions.rows) == 16
    phi = coalitions.contributions(model(np.ones(FEATURES))(coalitions.rows.astype(np.float64)))
    assert phi.shape == (1, FEATURES)
