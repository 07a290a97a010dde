"""Concurrent single predictions share one onnxruntime call and get the same answers as alone."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import numpy as np
import pytest

from service.batching import MicroBatcher
from service.dataplane import DataPlane
from service.settings import Settings


def test_concurrent_requests_share_model_calls(settings: Settings, heart_reference: dict[str, Any]) -> None:
    inputs = heart_reference["inputs"]

    async def run() -> tuple[list[float], list[float], int]:
        plane = DataPlane(settings)
        await plane.load_all()
        heart = plane.get("heart")
        rows = [heart.model.row(msgspec.convert(body, heart.model.request), "") for body in inputs]
        threshold = heart.model.threshold
        calls_before = heart.batcher.calls
        together = await asyncio.gather(*(heart.predict_one(row, threshold) for row in rows))
        calls = heart.batcher.calls - calls_before
        alone = [float((await heart.predict_one(row, threshold))[0]) for row in rows[:10]]
        return [float(output) for output, _ in together], alone, calls

    together, alone, calls = asyncio.run(run())
    assert calls == 1  # all of them were waiting in the same event-loop turn
    assert together[:10] == alone
    assert np.allclose(together, heart_reference["probabilities"], atol=1e-5)


def test_flushes_when_full_and_passes_errors_to_every_waiter() -> None:
    seen: list[int] = []

    def predict(matrix: np.ndarray) -> np.ndarray:
        seen.append(len(matrix))
        if np.isnan(matrix).any():
            raise ValueError("boom")
        return matrix.sum(axis=1)

    async def run() -> list[Any]:
        batcher = MicroBatcher(predict, max_rows=4)
        ok = await asyncio.gather(*(batcher.predict([i, None if i < 0 else 1.0]) for i in range(10)))
        failed = await asyncio.gather(*(batcher.predict([1.0, None]) for _ in range(3)), return_exceptions=True)
        return [ok, failed]

    ok, failed = asyncio.run(run())
    assert ok == [i + 1.0 for i in range(10)]
    assert seen[:3] == [4, 4, 2]
    assert all(isinstance(error, ValueError) for error in failed)


def test_a_cancelled_request_does_not_break_the_others() -> None:
    async def run() -> list[Any]:
        batcher = MicroBatcher(lambda matrix: matrix[:, 0])
        first = asyncio.ensure_future(batcher.predict([1.0]))
        second = asyncio.ensure_future(batcher.predict([2.0]))
        await asyncio.sleep(0)  # both rows queued, flush pending
        first.cancel()
        return list(await asyncio.gather(second, return_exceptions=True))

    (second,) = asyncio.run(run())
    assert second == pytest.approx(2.0)
