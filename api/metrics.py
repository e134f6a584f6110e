"""Prometheus metrics of the API: requests and latency by route, and the `/metrics` endpoint.

Requests are labelled by the route *template* (`/v1/memories/{unit_id}`), never the raw
path, so label cardinality stays bounded; a path no route matched is `unmatched`. The
service's own metrics (`memory_service/metrics.py`) and the job queue's depth, read from
the queue at scrape time, are exposed on the same page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from compressors.lm.process import LMProcessStatus
from stores.job_queue import QueueStats

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HTTP_REQUESTS = Counter(
    "memory_http_requests_total", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "memory_http_request_duration_seconds",
    "HTTP request latency by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestMetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = route_template(scope)
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


class QueueCollector(Collector):
    """The job queue's state as of the last scrape (read from the queue by the `/metrics` handler)."""

    def __init__(self) -> None:
        self.stats: QueueStats | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("memory_queue_up", "1 when the job queue answered the last scrape")
        up.add_metric([], 0 if self.stats is None else 1)
        yield up
        if self.stats is None:
            return
        depth = GaugeMetricFamily("memory_queue_jobs", "Jobs in the queue by state", labels=["backend", "state"])
        for state in ("queued", "running", "scheduled"):
            depth.add_metric([self.stats.backend, state], getattr(self.stats, state))
        yield depth
        workers = GaugeMetricFamily("memory_queue_workers", "Workers the queue knows of", labels=["backend"])
        workers.add_metric([self.stats.backend], self.stats.workers)
        yield workers
        failed = CounterMetricFamily(
            "memory_queue_failed_jobs", "Jobs that failed for good (dead-lettered), queue-wide", labels=["backend"]
        )
        failed.add_metric([self.stats.backend], self.stats.failed_total)
        yield failed


class LMProcessCollector(Collector):
    """Starts and failures of the child processes that run native LM code, read at scrape time."""

    def __init__(self) -> None:
        self.processes: list[LMProcessStatus] = []

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("memory_lm_process_up", "1 while the LM child process is running", labels=["lm"])
        starts = CounterMetricFamily("memory_lm_process_starts", "LM child processes started", labels=["lm"])
        failures = CounterMetricFamily(
            "memory_lm_process_failures", "LM child processes that died, hung or failed to load", labels=["lm"]
        )
        for process in self.processes:
            up.add_metric([process.label], 1 if process.state == "running" else 0)
            starts.add_metric([process.label], process.starts)
            failures.add_metric([process.label], process.failures)
        yield from (up, starts, failures)


def install_metrics(app: FastAPI) -> None:
    """Add the request middleware and the `/metrics` route (left out of the OpenAPI schema)."""
    app.add_middleware(RequestMetricsMiddleware)
    queue = QueueCollector()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(queue)
    lm = LMProcessCollector()
    registry.register(lm)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        service = request.app.state.service
        lm.processes = service.lm_processes()
        try:
            queue.stats = await service.job_stats(0)
        except Exception as exc:  # Redis away: the page still renders, memory_queue_up says so
            log.warning("job queue stats unavailable for /metrics: %s", exc)
            queue.stats = None
        return Response(generate_latest(REGISTRY) + generate_latest(registry), media_type=CONTENT_TYPE)
