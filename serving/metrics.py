"""Prometheus metrics of the query API (GET /metrics): requests and their latency by route, as
the dashboards and report jobs that call it see them, how old each table's newest row is, and the
data-quality counts of the newest hour (duplicates, billing repeats, late deliveries per source)."""

from __future__ import annotations

import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import Response

PREFIX = "adagg_query_api"
REQUESTS = Counter(f"{PREFIX}_requests", "HTTP requests by route and status", ["route", "status"])
LATENCY = Histogram(f"{PREFIX}_request_seconds", "From request to response, by route", ["route"],
                    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
log = logging.getLogger("adagg.serving")


class TableAge:
    """adagg_table_age_seconds{table}: now minus the newest time-column value each table shows, as
    the freshness endpoint's age_s. Read at scrape time through the API's runner, whose cache keeps
    these statements fresh in the background. No sample for an empty table or while Pinot fails."""

    def __init__(self) -> None:
        self.run = None  # set by the app that serves (create_app)

    def collect(self):
        from serving import queries

        family = GaugeMetricFamily("adagg_table_age_seconds", "Now minus the newest event or window time a table shows",
                                   labels=["table"])
        if self.run is not None:
            try:
                for table, fresh in queries.freshness(self.run, queries.TABLES).items():
                    if fresh["age_s"] is not None:
                        family.add_metric([table], fresh["age_s"])
            except Exception as e:  # noqa: BLE001 - a scrape must answer; a Pinot role down alerts on its own
                log.warning("table ages not read: %s", e)
        yield family


class DataQuality:
    """adagg_quality_<count>{source}: the counts of queries.quality over the newest
    QUALITY_MINUTES minutes of the quality table, with the span as adagg_quality_window_{start,end}_ms.
    Read from Pinot at scrape time, like the table ages; no sample while the table is empty."""

    def __init__(self) -> None:
        self.run = None  # set by the app that serves (create_app)

    def collect(self):
        from serving import queries

        counts = (*queries.QUALITY_COUNTS, "late_deliveries")
        families = {c: GaugeMetricFamily(f"adagg_quality_{c}", f"{c} per source over the newest "
                                         f"{queries.QUALITY_MINUTES} minutes of event time", labels=["source"])
                    for c in counts}
        start = GaugeMetricFamily("adagg_quality_window_start_ms", "First event-time ms the quality counts cover")
        end = GaugeMetricFamily("adagg_quality_window_end_ms", "Event-time ms the quality counts end before")
        if self.run is not None:
            try:
                q = queries.quality(self.run)
                for source, values in q["sources"].items():
                    for c in counts:
                        families[c].add_metric([source], values[c])
                if q["from_ms"] is not None:
                    start.add_metric([], q["from_ms"])
                    end.add_metric([], q["to_ms"])
            except Exception as e:  # noqa: BLE001 - as in TableAge
                log.warning("data quality not read: %s", e)
        yield from families.values()
        yield start
        yield end


TABLE_AGE = TableAge()
REGISTRY.register(TABLE_AGE)
DATA_QUALITY = DataQuality()
REGISTRY.register(DATA_QUALITY)


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
