"""Prometheus metrics of the query API (GET /metrics): requests and their latency by route, as
the dashboards and report jobs that call it see them; and, read from Pinot at each scrape, how old
each table's newest row is, how long accepted events take to be visible, the data-quality counts
of the newest hour (duplicates, billing repeats, late deliveries per source) and the newest
reconcile pass (served against billed, what is left, its cost). What each means: docs/slo.md."""

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


class FromPinot:
    """A collector whose samples are read from Pinot at scrape time, through the API's runner (set
    by create_app). Its families always appear; their samples only while Pinot answers: a scrape
    must answer, and a Pinot role that is down alerts on its own."""

    what = ""

    def __init__(self) -> None:
        self.run = None

    def families(self) -> dict[str, GaugeMetricFamily]:
        raise NotImplementedError

    def fill(self, families: dict[str, GaugeMetricFamily], run) -> None:
        raise NotImplementedError

    def collect(self):
        families = self.families()
        if self.run is not None:
            try:
                self.fill(families, self.run)
            except Exception as e:  # noqa: BLE001 - see the class doc
                log.warning("%s not read: %s", self.what, e)
        yield from families.values()


class TableAge(FromPinot):
    """adagg_table_age_seconds{table}: now minus the newest time-column value each table shows, as
    the freshness endpoint's age_s (the runner's cache keeps these statements fresh in the
    background). No sample for an empty table."""

    what = "table ages"

    def families(self):
        return {"age": GaugeMetricFamily("adagg_table_age_seconds",
                                         "Now minus the newest event or window time a table shows", labels=["table"])}

    def fill(self, families, run):
        from serving import queries

        for table, fresh in queries.freshness(run, queries.TABLES).items():
            if fresh["age_s"] is not None:
                families["age"].add_metric([table], fresh["age_s"])


class Freshness(FromPinot):
    """adagg_freshness_seconds{tier}: now minus the newest collector acceptance the live tier
    (ad_minute_live) and the final tier (quality_minute, closed with it) show, at scrape time. With
    traffic flowing, how long an accepted event takes to be visible; Prometheus takes percentiles
    over time of it (docs/slo.md#freshness). No sample before collector traffic reached a table."""

    what = "freshness"

    def families(self):
        return {"lag": GaugeMetricFamily("adagg_freshness_seconds", "Now minus the newest collector acceptance "
                                         "a tier shows", labels=["tier"])}

    def fill(self, families, run):
        from serving import queries

        for tier, lag in queries.received_lags(run).items():
            if lag is not None:
                families["lag"].add_metric([tier], lag)


class DataQuality(FromPinot):
    """adagg_quality_<count>{source}: the counts of queries.quality over the newest
    QUALITY_MINUTES minutes of the quality table, with the span as adagg_quality_window_{start,end}_ms.
    No sample while the table is empty."""

    what = "data quality"

    def families(self):
        from serving import queries

        out = {c: GaugeMetricFamily(f"adagg_quality_{c}", f"{c} per source over the newest "
                                    f"{queries.QUALITY_MINUTES} minutes of event time", labels=["source"])
               for c in (*queries.QUALITY_COUNTS, "late_deliveries")}
        out["start"] = GaugeMetricFamily("adagg_quality_window_start_ms",
                                         "First event-time ms the quality counts cover")
        out["end"] = GaugeMetricFamily("adagg_quality_window_end_ms", "Event-time ms the quality counts end before")
        return out

    def fill(self, families, run):
        from serving import queries

        q = queries.quality(run)
        for source, values in q["sources"].items():
            for c, n in values.items():
                families[c].add_metric([source], n)
        if q["from_ms"] is not None:
            families["start"].add_metric([], q["from_ms"])
            families["end"].add_metric([], q["to_ms"])


class Reconciliation(FromPinot):
    """The newest reconcile pass, from the reconciliations table (reconcile/history.py):
    adagg_reconcile_<figure>{grain, measure} for what the dashboards served against what billing
    bills, what the pass changed and what is left after it, and the pass's cost without labels.
    No sample before the first pass."""

    what = "the reconciliation history"
    PER_MEASURE = ("served", "billed", "served_diff", "changed", "residual")
    PER_GRAIN = ("changed_windows", "published_corrections")
    PER_PASS = ("run_at_ms", "from_ms", "to_ms", "backfill_seconds", "cpu_seconds", "rows_read", "archive_bytes",
                "archive_files", "data_days")

    def families(self):
        out = {f: GaugeMetricFamily(f"adagg_reconcile_{f}", f"{f} per grain and measure, newest reconcile pass",
                                    labels=["grain", "measure"]) for f in self.PER_MEASURE}
        out |= {f: GaugeMetricFamily(f"adagg_reconcile_{f}", f"{f} per grain, newest reconcile pass", labels=["grain"])
                for f in self.PER_GRAIN}
        out |= {f: GaugeMetricFamily(f"adagg_reconcile_{f}", f"{f} of the newest reconcile pass")
                for f in self.PER_PASS}
        return out

    def fill(self, families, run):
        from serving import queries

        rows = queries.newest_reconciliation(run)
        for r in rows:
            for f in self.PER_MEASURE:
                families[f].add_metric([r["grain"], r["measure"]], r[f])
        for r in {r["grain"]: r for r in rows}.values():
            for f in self.PER_GRAIN:
                families[f].add_metric([r["grain"]], r[f])
        for f in self.PER_PASS if rows else ():
            families[f].add_metric([], rows[0][f])


TABLE_AGE = TableAge()
REGISTRY.register(TABLE_AGE)
FRESHNESS = Freshness()
REGISTRY.register(FRESHNESS)
DATA_QUALITY = DataQuality()
REGISTRY.register(DATA_QUALITY)
RECONCILIATION = Reconciliation()
REGISTRY.register(RECONCILIATION)


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
