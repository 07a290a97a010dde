"""The digits' minimum confidence: chosen on out-of-fold answers as written and redrawn."""

from __future__ import annotations

import numpy as np

from training.evaluate import choose_min_confidence


def answers(digits: np.ndarray, confidence: np.ndarray, right: np.ndarray) -> np.ndarray:
    """[n, 10] probabilities whose top class is the true digit (or the next one) with that confidence."""
    top = np.where(right, digits, (digits + 1) % 10)
    proba = np.tile(((1 - confidence) / 9)[:, None], (1, 10))
    proba[np.arange(len(digits)), top] = confidence
    return proba


def test_redrawn_answers_set_the_minimum_where_the_misreads_are() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 400)
    # As written: every answer right and confident. Redrawn: a tenth wrong, all of them under 0.8,
    # the right ones spread over 0.5..1.
    plain = answers(y, rng.uniform(0.9, 1.0, 400), np.ones(400, dtype=bool))
    wrong = rng.random((400, 2)) < 0.1
    confidence = np.where(wrong, rng.uniform(0.3, 0.8, (400, 2)), rng.uniform(0.5, 1.0, (400, 2)))
    redrawn = [answers(y, confidence[:, view], ~wrong[:, view]) for view in range(2)]
    oof = np.stack([plain, *redrawn], axis=1)  # [rows, 1 + views, 10], as cross_validate_digits returns

    threshold = choose_min_confidence(y, oof, precision=0.995)
    # Near the most confident misreads (0.8): 99.5 % precision tolerates a few just under it.
    assert 0.7 <= threshold.value <= 0.81
    assert "redrawn" in threshold.rule
    kept = oof.reshape(-1, 10).max(axis=1) >= threshold.value
    assert threshold.coverage == kept.mean() and 0.5 < threshold.coverage < 1
    assert threshold.accuracy_when_confident >= 0.995
    assert (oof.reshape(-1, 10).argmax(1) == np.repeat(y, 3))[kept].mean() == threshold.accuracy_when_confident
    # On the digits as written alone every level passes and nothing would ever be flagged.
    assert choose_min_confidence(y, plain[:, None, :], precision=0.995).value == 0.01


def test_no_level_reaching_the_precision_flags_everything() -> None:
    y = np.arange(10)
    oof = answers(y, np.full(10, 0.95), np.arange(10) % 2 == 0)[:, None, :]  # half wrong, all confident
    threshold = choose_min_confidence(y, oof, precision=0.995)
    assert threshold.value == 1.0
