"""The HTTP request metrics, recorded by the app's outermost ASGI layer (service.asgi).

They keep the names, labels and help texts of Litestar's Prometheus plugin (`litestar_requests_total`,
`litestar_request_duration_seconds`, `litestar_requests_in_progress`, `litestar_requests_error_total`;
labels method, path, status_code, app_name), so dashboards and rules written for Litestar work, and
Litestar's `PrometheusController` exposes them. They are declared here with prometheus_client rather
than through `PrometheusMiddleware`, because they are not recorded by that middleware:
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

from prometheus_client import Counter, Gauge, Histogram

from service.metrics import HTTP_LATENCY_BUCKETS, CounterCell, HistogramCell

APP_NAME = "modelserve"
UNMATCHED = "<unmatched>"
EXCLUDED = frozenset({"/metrics"})  # route templates not measured: the scrapes themselves
# Litestar's middleware labels in-flight requests with status 200 (the status is not known yet).
IN_PROGRESS_STATUS = 200
_LABELS = ("method", "path", "status_code", "app_name")

REQUESTS = Counter("litestar_requests_total", "Total requests", _LABELS)
DURATION = Histogram(
    "litestar_request_duration_seconds", "Request duration, in seconds", _LABELS, buckets=HTTP_LATENCY_BUCKETS
)
IN_PROGRESS = Gauge(
    "litestar_requests_in_progress", "Total requests currently in progress", _LABELS, multiprocess_mode="livesum"
)
ERRORS = Counter("litestar_requests_error_total", "Total errors in requests", _LABELS)


class HttpMetrics:
    """The HTTP request metrics of one app, with the labelled children cached as cells."""

    def __init__(self) -> None:
        self._in_progress: dict[tuple[str, str], CounterCell] = {}
        self._finished: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def in_progress(self, method: str, path: str) -> CounterCell:
        """The in-flight gauge child for this route (inc before, dec after the request)."""
        key = (method, path)
        child = self._in_progress.get(key)
        if child is None:
            child = self._in_progress[key] = CounterCell(IN_PROGRESS.labels(method, path, IN_PROGRESS_STATUS, APP_NAME))
        return child

    def finished(self, method: str, path: str, status: int, seconds: float) -> None:
        """Count one answered request and observe its duration."""
        key = (method, path, status)
        children = self._finished.get(key)
        if children is None:
            labels = (method, path, status, APP_NAME)
            errors = CounterCell(ERRORS.labels(*labels)) if status >= 500 else None
            children = (CounterCell(REQUESTS.labels(*labels)), HistogramCell(DURATION.labels(*labels)), errors)
            self._finished[key] = children
        count, latency, errors = children
        count.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()
