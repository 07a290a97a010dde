"""Litestar's Prometheus HTTP metrics, recorded by the app's outermost ASGI layer.

The metrics are Litestar's own (`litestar.plugins.prometheus`: `litestar_requests_total`,
`litestar_request_duration_seconds`, `litestar_requests_in_progress`, `litestar_requests_error_total`,
with its labels method, path, status_code and app_name, created through `PrometheusMiddleware`'s getters
and exposed by its `PrometheusController`). What differs is where they are recorded: not as route
middleware but in `ServiceApp.__call__`, next to the request id and the access log. Why:
- cost: any route middleware makes Litestar add a second exception-handling layer to every route,
  and the middleware's own bypass checks and send wrapper ran on top; measured in-process, that was
  15 µs of a 30 µs liveness probe and of a ~85 µs single prediction;
- coverage: route middleware never sees requests that match no route, so 404s and 405s went
  uncounted; here they are counted under path "<unmatched>" (a fixed value: raw paths as label values
  would let any client create unbounded series).
Labelled children are cached per (method, path, status) as cells (service.metrics), so a request costs
four value increments.
"""

from __future__ import annotations

from typing import Any

from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from service.metrics import CounterCell, HistogramCell

UNMATCHED = "<unmatched>"
# Litestar's middleware labels in-flight requests with status 200 (the status is not known yet).
IN_PROGRESS_STATUS = 200


async def _never_called(*_: Any) -> None:  # the middleware is used for its metrics, not as an ASGI app
    raise RuntimeError("HttpMetrics is not an ASGI app")


class HttpMetrics(PrometheusMiddleware):
    """Litestar's HTTP request metrics for one app, with the labelled children cached."""

    def __init__(self, config: PrometheusConfig) -> None:
        super().__init__(_never_called, config)
        self.excluded = frozenset(config.exclude or ())  # route templates not measured (`/metrics`)
        self._in_progress: dict[tuple[str, str], Any] = {}
        self._finished: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def _labels(self, method: str, path: str, status: int) -> dict[str, str | int | float]:
        return {"method": method, "path": path, "status_code": status, "app_name": self._config.app_name}

    def in_progress(self, method: str, path: str) -> Any:
        """The in-flight gauge child for this route (inc before, dec after the request)."""
        key = (method, path)
        child = self._in_progress.get(key)
        if child is None:
            labels = self._labels(method, path, IN_PROGRESS_STATUS)
            gauge = self.requests_in_progress(labels).labels(*labels.values())
            child = self._in_progress[key] = CounterCell(gauge)
        return child

    def finished(self, method: str, path: str, status: int, seconds: float) -> None:
        """Count one answered request and observe its duration."""
        key = (method, path, status)
        children = self._finished.get(key)
        if children is None:
            children = self._finished[key] = self._children(method, path, status)
        count, latency, errors = children
        count.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def _children(self, method: str, path: str, status: int) -> tuple[Any, Any, Any]:
        labels = self._labels(method, path, status)
        values = list(labels.values())
        errors = None
        if status >= HTTP_500_INTERNAL_SERVER_ERROR:
            errors = CounterCell(self.requests_error_count(labels).labels(*values))
        count = CounterCell(self.request_count(labels).labels(*values))
        return count, HistogramCell(self.request_time(labels).labels(*values)), errors
