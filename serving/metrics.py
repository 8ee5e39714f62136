"""Prometheus metrics of the query API (GET /metrics): requests and their latency by route, as
the dashboards and report jobs that call it see them."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

PREFIX = "adagg_query_api"
REQUESTS = Counter(f"{PREFIX}_requests", "HTTP requests by route and status", ["route", "status"])
LATENCY = Histogram(f"{PREFIX}_request_seconds", "From request to response, by route", ["route"],
                    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))


def route_of(request: Request) -> str:
    """The route's template (/v1/ads/{ad_id}/metrics), never the raw path: ids would make a new
    series each."""
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


async def measure(request: Request, call_next) -> Response:
    """HTTP middleware: count and time every request. An exception that escapes the app's handlers
    counts as a 500."""
    t0 = time.perf_counter()
    status = "500"
    try:
        response = await call_next(request)
        status = str(response.status_code)
        return response
    finally:
        route = route_of(request)
        REQUESTS.labels(route, status).inc()
        LATENCY.labels(route).observe(time.perf_counter() - t0)


def exposition() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
