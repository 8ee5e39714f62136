"""The query API (FastAPI: the OpenAPI description at /openapi.json, a browsable one at /docs).

Every answer carries the tier that produced it and the freshness of the tables it read. Bad
parameters get 400 with a message naming the parameter; a Pinot failure gets 503.

Ids in a path take the `path` converter: an id may hold '/' (percent-encoded by the caller, which
the server decodes before routing), and the rest of the route still matches after it.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serving import answers, lineage, metrics, params
from serving.answers import TIER_RULE
from serving.lineage import NotFound, Sources
from serving.params import BadParameter, Filters
from serving.runner import BoundaryCache, PinotRunner, PinotUnavailable

log = logging.getLogger("adagg.serving")

_FILTER_DOC = {"country": "ISO 3166 alpha-2 (ZZ: unknown)", "device_type": ", ".join(params.DEVICE_TYPES),
               "campaign_id": "a campaign id", "advertiser_id": "an advertiser id"}


def create_app(run=None, broker_url: str = "http://127.0.0.1:8099", sources: Sources | None = None) -> FastAPI:
    """`run(sql, params) -> rows` defaults to a PinotRunner on broker_url, its whole-table
    statements (tier boundaries, freshness) kept fresh in the background, every second
    (serving.runner.BoundaryCache), so that requests do not wait for them. `sources`: the archive
    and report folders the lineage endpoint reads (without them it answers 404)."""
    own = run is None
    run = run or BoundaryCache(PinotRunner(broker_url), ttl_s=1.0, background=True)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        if own:
            run.close()
            run.run.close()

    app = FastAPI(title="adagg query API", version="1", lifespan=lifespan, description=(
        "Ad metrics from Apache Pinot for dashboards and reports. " + TIER_RULE +
        " Times are epoch milliseconds (or ISO 8601 in parameters), UTC; money is in micros."))

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, error: NotFound):
        return JSONResponse({"error": "not_found", "message": str(error)}, status_code=404)

    @app.exception_handler(BadParameter)
    async def bad_parameter(_request: Request, error: BadParameter):
        return JSONResponse({"error": "bad_parameter", "message": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
                             for e in error.errors())
        return JSONResponse({"error": "bad_parameter", "message": problems}, status_code=400)

    @app.exception_handler(PinotUnavailable)
    async def pinot_down(_request: Request, error: PinotUnavailable):
        return JSONResponse({"error": "pinot_unavailable", "message": str(error)}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def internal(_request: Request, _error: Exception):
        incident = uuid.uuid4().hex[:12]
        log.exception("internal error %s", incident)
        return JSONResponse({"error": "internal_error", "message": f"internal error; incident {incident}"},
                            status_code=500)

    app.middleware("http")(metrics.measure)
    for collector in (metrics.TABLE_AGE, metrics.FRESHNESS, metrics.DATA_QUALITY, metrics.RECONCILIATION):
        collector.run = run

    @app.get("/healthz", summary="The API process answers")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics():
        return metrics.exposition()

    @app.get("/v1/ads/{ad_id:path}/metrics", summary="One ad's measures per minute, hour or day")
    def ad_metrics(
        ad_id: str = Path(description="the ad"),
        start: str = Query(alias="from", description="start, inclusive: epoch ms or ISO 8601, aligned to the grain"),
        end: str = Query(alias="to", description="end, exclusive"),
        grain: str = Query("minute", description="minute, hour or day"),
        country: str | None = Query(None, description=_FILTER_DOC["country"]),
        device_type: str | None = Query(None, description=_FILTER_DOC["device_type"]),
        campaign_id: str | None = Query(None, description=_FILTER_DOC["campaign_id"]),
        advertiser_id: str | None = Query(None, description=_FILTER_DOC["advertiser_id"]),
    ) -> dict:
        return answers.ad_metrics(run, ad_id, start, end, grain,
                                  Filters.of(country, device_type, campaign_id, advertiser_id))

    @app.get("/v1/top-ads", summary="The top N ads by billable clicks over the last M minutes of event time")
    def top_ads(
        n: int = Query(10, description=f"how many, 1 to {params.MAX_TOP_N}"),
        minutes: int = Query(1, description=f"how many newest minute windows, 1 to {params.MAX_MINUTES}"),
        country: str | None = Query(None, description=_FILTER_DOC["country"]),
        device_type: str | None = Query(None, description=_FILTER_DOC["device_type"]),
        campaign_id: str | None = Query(None, description=_FILTER_DOC["campaign_id"]),
        advertiser_id: str | None = Query(None, description=_FILTER_DOC["advertiser_id"]),
    ) -> dict:
        return answers.top_ads(run, n, minutes, Filters.of(country, device_type, campaign_id, advertiser_id))

    @app.get("/v1/campaigns/{campaign_id:path}/summary", summary="A campaign's totals, by ad")
    def campaign_summary(
        campaign_id: str, start: str = Query(alias="from"), end: str = Query(alias="to"),
        country: str | None = Query(None, description=_FILTER_DOC["country"]),
        device_type: str | None = Query(None, description=_FILTER_DOC["device_type"]),
    ) -> dict:
        return answers.summary(run, "campaign", campaign_id, start, end, Filters.of(country, device_type))

    @app.get("/v1/advertisers/{advertiser_id:path}/summary", summary="An advertiser's totals, by campaign")
    def advertiser_summary(
        advertiser_id: str, start: str = Query(alias="from"), end: str = Query(alias="to"),
        country: str | None = Query(None, description=_FILTER_DOC["country"]),
        device_type: str | None = Query(None, description=_FILTER_DOC["device_type"]),
    ) -> dict:
        return answers.summary(run, "advertiser", advertiser_id, start, end, Filters.of(country, device_type))

    @app.get("/v1/late-events", summary="Late event deliveries by event time, per event type")
    def late_events(start: str = Query(alias="from"), end: str = Query(alias="to"),
                    ad_id: str | None = Query(None)) -> dict:
        return answers.late_events(run, start, end, ad_id)

    @app.get("/v1/freshness", summary="Per table: rows, newest event time visible, and its age")
    def freshness() -> dict:
        return answers.freshness(run)

    @app.get("/v1/lineage/{table}", summary="Where one aggregate row comes from: tier, versions, archive "
             "manifests, reconciliation changes", description="Give every primary key column of the table as a "
             "query parameter, e.g. /v1/lineage/publisher_minute?window_start_ms=...&publisher_id=...")
    def row_lineage(table: str, request: Request) -> dict:
        if sources is None:
            raise NotFound("this API was started without the archive: no lineage")
        try:
            columns = [c for c, _ in lineage.key_columns(table)]
            given = dict(request.query_params)
            if set(given) != set(columns):
                raise BadParameter(f"{table}'s key is {', '.join(columns)}; give each once (got {', '.join(given)})")
            key = lineage.parse_key(table, [given[c] for c in columns])
        except ValueError as e:
            raise BadParameter(str(e)) from None
        return lineage.lineage(run, table, key, sources)

    return app
