"""The collector's HTTP endpoints (Starlette on uvicorn; docs/collector.md says why).

When is an event "accepted"? Only once Kafka's delivery report for its raw-topic record came back
without error, from an idempotent producer with acks=all, i.e. every in-sync replica has it. A
"rejected" event likewise has its dead-letter record written. Anything else is answered 503 with
Retry-After (status "retry" per event): the client must send it again, and the pipeline's exact
dedup (event_id) absorbs a copy that Kafka did keep after all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import time
import uuid
from typing import Callable

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route

from adagg.contract import versions
from collector import metrics, pixel
from collector.config import ApiKey, Settings
from collector.events import Record, Request, dead_letter, from_bytes, from_object, split_body
from collector.heartbeat import Heartbeat
from collector.kafka_writer import KafkaWriter, Unavailable
from collector.ratelimit import RateLimiter
from collector.validation import Rejection

log = logging.getLogger("adagg.collector")
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
_json = msgspec.json.Encoder().encode
_ACCEPTED = {"status": "accepted"}  # the answer for an event that came with its own event_id


def _reply(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(_json(body), status_code=status, headers=headers, media_type="application/json")


class _Refused(Exception):
    """A whole request refused before any event is looked at."""

    def __init__(self, status: int, error: str, message: str, retry_after: int | None = None):
        self.status, self.error, self.message, self.retry_after = status, error, message, retry_after

    def response(self) -> Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        if self.status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return _reply(self.status, {"error": self.error, "message": self.message}, headers)


class Collector:
    def __init__(self, settings: Settings, writer_factory: Callable[[Settings], KafkaWriter] | None = None):
        self.settings = settings
        self.limiter = RateLimiter(settings.keys.values())
        self.writer_factory = writer_factory or (lambda s: KafkaWriter(
            s.kafka, s.buffer_events, s.delivery_timeout_ms, s.linger_ms, probe_topic=s.raw_topic))
        self.writer: KafkaWriter | None = None
        self._probe_task: asyncio.Task | None = None
        self.heartbeat = Heartbeat(settings.collector_id, settings.heartbeat_interval_ms / 1000)
        self._heartbeat_task: asyncio.Task | None = None

    # ---- lifecycle ----

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        self.writer = self.writer_factory(self.settings)
        self.writer.start()
        # A batch allocates a few objects per event, all short-lived and acyclic: collect the
        # young generation less often, and never rescan what start-up left behind.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        await asyncio.to_thread(self.writer.probe)
        self._probe_task = asyncio.create_task(self._probe_forever())
        if self.settings.heartbeat_interval_ms > 0:
            headers = [("adagg-collector", self.settings.collector_id.encode())]
            self._heartbeat_task = asyncio.create_task(self.heartbeat.run(self.writer, self.settings.raw_topic, headers))
        log.info("collector %s ready=%s, writing %s (dead letters: %s)", self.settings.collector_id,
                 self.writer.kafka_up, self.settings.raw_topic, self.settings.dlq_topic)
        try:
            yield
        finally:
            self._probe_task.cancel()
            if self._heartbeat_task:
                self._heartbeat_task.cancel()
            # uvicorn has stopped taking requests and waited for those in progress; flush the rest.
            left = await self.writer.close(self.settings.delivery_timeout_ms / 1000)
            log.info("collector %s stopped (%d records unsent)", self.settings.collector_id, left)

    async def _probe_forever(self, every_s: float = 1.0) -> None:
        while True:
            up = await asyncio.to_thread(self.writer.probe)
            metrics.KAFKA_UP.set(1 if up else 0)
            await asyncio.sleep(every_s)

    # ---- request plumbing ----

    def _authenticate(self, request: HttpRequest) -> ApiKey:
        token = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
        if not token:
            raise _Refused(401, "missing_api_key", "send the API key as 'Authorization: Bearer <key>' or X-API-Key")
        key = self.settings.keys.get(hashlib.sha256(token.encode()).hexdigest())
        if key is None:
            raise _Refused(401, "invalid_api_key", "the API key is not known")
        return key

    def _context(self, request: HttpRequest, key: ApiKey, endpoint: str) -> Request:
        client_ip = request.client.host if request.client else ""
        if self.settings.trust_forwarded_for and request.headers.get("x-forwarded-for"):
            client_ip = request.headers["x-forwarded-for"].split(",")[0].strip()
        return Request(key, endpoint, client_ip, request.headers.get("user-agent", ""), int(time.time() * 1000))

    async def _body(self, request: HttpRequest) -> tuple[bytes, bool]:
        """The body, and whether it was cut at the size limit (the rest is never read)."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return b"", True
        chunks, size = [], 0
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(chunks)[:limit], True
        return b"".join(chunks), False

    def _limit(self, key: ApiKey, events: int) -> None:
        wait = self.limiter.retry_after(key.name, events)
        if wait is None:
            raise _Refused(413, "too_many_events", f"{events} events in one request; key {key.name!r} may send "
                           f"at most {self.limiter.burst(key.name)} at once per collector process")
        if wait:
            raise _Refused(429, "rate_limited", f"key {key.name!r} is over its rate of "
                           f"{key.rate_per_second:g} events/s per collector process; retry in {wait} s",
                           retry_after=wait)

    def _headers(self, req: Request) -> list[tuple[str, bytes]]:
        return [("adagg-received-at", str(req.received_at_ms).encode()),
                ("adagg-collector", self.settings.collector_id.encode()),
                ("adagg-source", req.source.name.encode())]

    async def _write(self, req: Request, raws: list[bytes], outcomes: list[Record | Rejection],
                     whole_body: bool = False) -> Response:
        """Write accepted events to the raw topic and rejections to the dead-letter topic, then answer."""
        s, headers = self.settings, self._headers(req)
        records = [(s.raw_topic, o.key, o.value, headers) if isinstance(o, Record)
                   else (s.dlq_topic, None, dead_letter(raw, o, req, s.collector_id, None if whole_body else i), headers)
                   for i, (raw, o) in enumerate(zip(raws, outcomes))]
        t0 = time.perf_counter()
        try:
            failed = await self.writer.write(records)
        except Unavailable as error:
            metrics.UNAVAILABLE.labels(req.endpoint).inc(len(records))
            raise _Refused(503, "unavailable", f"not written, send again: {error}", s.retry_after_s) from None
        metrics.PRODUCE_LATENCY.observe(time.perf_counter() - t0)
        results, accepted, rejected = [], 0, 0
        for i, outcome in enumerate(outcomes):
            if i in failed:
                results.append({"status": "retry", "reason": "unavailable", "message": failed[i]})
            elif isinstance(outcome, Record):
                accepted += 1
                self.heartbeat.saw(outcome.event_time)
                results.append({"status": "accepted", "event_id": outcome.event_id} if outcome.assigned_id
                               else _ACCEPTED)
            else:
                rejected += 1
                metrics.REJECTED.labels(req.endpoint, outcome.reason).inc()
                results.append({"status": "rejected", "reason": outcome.reason, "message": outcome.message})
        metrics.ACCEPTED.labels(req.endpoint).inc(accepted)
        body = {"accepted": accepted, "rejected": rejected, "retry": len(failed), "results": results}
        if failed:
            metrics.UNAVAILABLE.labels(req.endpoint).inc(len(failed))
            return _reply(503, body, {"Retry-After": str(s.retry_after_s)})
        return _reply(200, body)

    async def _refuse_body(self, req: Request, raw: bytes, status: int, rejection: Rejection) -> Response:
        """A body unusable as a whole: one dead-letter record, and a 4xx naming the reason."""
        written = await self._write(req, [raw], [rejection], whole_body=True)
        if written.status_code != 200:
            return written
        return _reply(status, {"error": rejection.reason, "message": rejection.message})

    async def _batch(self, request: HttpRequest, endpoint: str, to_outcome) -> Response:
        key = self._authenticate(request)
        req = self._context(request, key, endpoint)
        body, cut = await self._body(request)
        if cut:
            return await self._refuse_body(req, body, 413, Rejection(
                "body_too_large", f"the body is over {self.settings.max_body_bytes} bytes"))
        ndjson = "ndjson" in request.headers.get("content-type", "")
        raws = split_body(body, ndjson)
        if isinstance(raws, Rejection):
            return await self._refuse_body(req, body, 400, raws)
        if not raws:
            raise _Refused(400, "empty_batch", "the body holds no events")
        if len(raws) > self.settings.max_events_per_request:
            return await self._refuse_body(req, body, 413, Rejection(
                "too_many_events", f"{len(raws)} events in one request; the limit is "
                f"{self.settings.max_events_per_request}"))
        self._limit(key, len(raws))
        metrics.RECEIVED.labels(endpoint).inc(len(raws))
        return await self._write(req, raws, [to_outcome(raw, req) for raw in raws])

    # ---- endpoints ----

    async def events(self, request: HttpRequest) -> Response:
        return await self._batch(request, "events", lambda raw, req: from_bytes(raw, req, self.settings))

    async def conversions(self, request: HttpRequest) -> Response:
        def outcome(raw: bytes, req: Request):
            try:
                obj = msgspec.json.decode(raw)
            except msgspec.DecodeError as error:
                return Rejection("malformed_json", f"malformed JSON: {error}")
            if not isinstance(obj, dict):
                return Rejection("not_an_object", "an event must be a JSON object")
            obj.setdefault("event_type", "conversion")
            if obj["event_type"] != "conversion":
                return Rejection("bad_value", "event_type: this endpoint takes conversions only")
            return from_object(obj, req, self.settings)
        return await self._batch(request, "conversions", outcome)

    async def pixel(self, request: HttpRequest) -> Response:
        items = request.query_params.multi_items()
        params = dict(items)
        if len(params) != len(items):
            raise _Refused(400, "bad_pixel", "each pixel parameter may appear once")
        missing = [name for name in pixel.REQUIRED if not params.get(name)]
        if missing:
            raise _Refused(400, "bad_pixel", f"missing pixel parameters: {', '.join(missing)}")
        key = self.settings.key_named(params["key"])
        if key is None or key.pixel_secret is None:
            raise _Refused(403, "bad_signature", "unknown signing key")
        problem = pixel.verify(params, key.pixel_secret, time.time(), self.settings.pixel_max_age_s)
        if problem:
            raise _Refused(403, problem, "the pixel URL's signature does not match its parameters"
                           if problem == "bad_signature" else "the pixel URL has expired")
        self._limit(key, 1)
        req = self._context(request, key, "pixel")
        metrics.RECEIVED.labels("pixel").inc()
        event = pixel.event_fields(params)
        version = event.get("schema_version", str(max(versions())))
        event["schema_version"] = int(version) if version.isdigit() else version
        event |= {"event_type": "impression", "event_time": req.received_at_ms}
        outcome = from_object(event, req, self.settings, strict=False)
        raw = str(request.url.query).encode()
        response = await self._write(req, [raw], [outcome])
        if response.status_code != 200:
            return response  # not written (the event, or its dead letter): 503, retry later
        if isinstance(outcome, Rejection):
            return _reply(400, {"error": outcome.reason, "message": outcome.message})
        return Response(GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})

    async def healthz(self, _request: HttpRequest) -> Response:
        return _reply(200, {"status": "ok", "collector_id": self.settings.collector_id})

    async def readyz(self, _request: HttpRequest) -> Response:
        ready = bool(self.writer and self.writer.kafka_up)
        state = self.writer.kafka_state if self.writer else "starting"
        return _reply(200 if ready else 503, {"ready": ready, "kafka": state,
                                              "in_flight": self.writer.in_flight if self.writer else 0},
                      None if ready else {"Retry-After": str(self.settings.retry_after_s)})

    async def metrics(self, _request: HttpRequest) -> Response:
        metrics.QUEUE_DEPTH.set(self.writer.in_flight if self.writer else 0)
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)


def _wrap(handler, endpoint: str):
    """Count every answer; refusals become their response; nothing unexpected shows a trace."""
    async def endpoint_handler(request: HttpRequest) -> Response:
        try:
            response = await handler(request)
        except _Refused as refused:
            if refused.error in ("missing_api_key", "invalid_api_key", "rate_limited", "bad_signature",
                                 "expired_signature", "bad_pixel"):
                metrics.REJECTED.labels(endpoint, refused.error).inc()
            response = refused.response()
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("internal error %s on %s", incident, endpoint)
            response = _reply(500, {"error": "internal_error", "message": f"internal error; incident {incident}"})
        metrics.REQUESTS.labels(endpoint, str(response.status_code)).inc()
        return response
    return endpoint_handler


async def _http_error(_request: HttpRequest, exc: HTTPException) -> Response:
    return _reply(exc.status_code, {"error": "http_error", "message": exc.detail})


def create_app(settings: Settings, writer_factory=None) -> Starlette:
    c = Collector(settings, writer_factory)
    routes = [
        Route("/v1/events", _wrap(c.events, "events"), methods=["POST"]),
        Route("/v1/conversions", _wrap(c.conversions, "conversions"), methods=["POST"]),
        Route("/v1/pixel", _wrap(c.pixel, "pixel"), methods=["GET"]),
        Route("/v1/pixel.gif", _wrap(c.pixel, "pixel"), methods=["GET"]),
        Route("/healthz", c.healthz, methods=["GET"]),
        Route("/readyz", c.readyz, methods=["GET"]),
        Route("/metrics", c.metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=c.lifespan, exception_handlers={HTTPException: _http_error})
    app.state.collector = c
    return app
