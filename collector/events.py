"""From wire bytes to raw-topic records: validate, enrich, assign ids and keys. Pure Python."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
from msgspec import UNSET

from adagg.contract import billing_key_of
from collector import validation
from collector.config import ApiKey, Settings
from collector.validation import Rejection


@dataclass(frozen=True)
class Request:
    """What the collector knows about the request an event came in."""
    source: ApiKey
    endpoint: str
    client_ip: str
    user_agent: str
    received_at_ms: int


class Record(NamedTuple):
    """One event ready for the raw topic (a NamedTuple: built once per event, so cheap matters)."""
    event_id: str
    key: bytes      # billing key: the pipeline's idempotency key, and what the topic is keyed by
    value: bytes    # the contract event, compact JSON
    assigned_id: bool  # event_id was made by the collector (the answer then carries it)
    event_time: int  # epoch ms: what the collector's heartbeats follow (collector/heartbeat.py)


def assigned_event_id(source: str, raw: bytes) -> str:
    """For an event sent without event_id: derived from the source and the event's bytes, so a
    byte-identical retry gets the same id and the pipeline's exact dedup drops the second copy."""
    return "c-" + hashlib.blake2b(source.encode() + b"\0" + raw, digest_size=16).hexdigest()


def finish(event: Any, raw: bytes | None, req: Request, settings: Settings) -> Record | Rejection:
    """Check what the contract types cannot (permissions, time bounds, IP format), fill the
    fields the collector owns when missing, and build the record. `raw` is the event's bytes;
    they go to the topic as they came when nothing was filled in (they passed validation)."""
    if event.event_type not in req.source.event_types:
        return Rejection("event_type_not_allowed",
                         f"key {req.source.name!r} may not send {event.event_type} events "
                         f"(allowed: {sorted(req.source.event_types)})")
    problem = (validation.check_time(event, req.received_at_ms, settings.max_past_ms, settings.max_future_ms)
               or validation.check_ips(event))
    if problem:
        return problem
    fill = {}
    if event.event_id is UNSET:
        fill["event_id"] = assigned_event_id(req.source.name, raw or validation.encode(event))
    if event.ip is UNSET:
        fill["ip"] = req.client_ip
    if event.user_agent is UNSET:
        fill["user_agent"] = req.user_agent[:1024]
    if fill:
        event = msgspec.structs.replace(event, **fill)
    key = billing_key_of(event.ad_id, event.user_id, event.event_type, event.event_time, settings.bucket_ms)
    return Record(event.event_id, key.encode(), raw if raw is not None and not fill else validation.encode(event),
                  "event_id" in fill, event.event_time)


def from_bytes(raw: bytes, req: Request, settings: Settings) -> Record | Rejection:
    event = validation.decode(raw)
    return event if isinstance(event, Rejection) else finish(event, raw, req, settings)


def from_object(obj: dict, req: Request, settings: Settings, strict: bool = True) -> Record | Rejection:
    """For the pixel (query strings, strict=False) and server-to-server conversions."""
    event = validation.convert(obj, strict=strict)
    if isinstance(event, Rejection):
        return event
    return finish(event, None, req, settings)


def dead_letter(raw: bytes, rejection: Rejection, req: Request, collector_id: str, index: int | None,
                max_raw_bytes: int = 262_144) -> bytes:
    """The dead-letter record of a rejected event or body: its raw payload (text, or base64 when
    it is not UTF-8; cut at max_raw_bytes), why, where from and when."""
    cut = raw[:max_raw_bytes]
    try:
        payload = {"raw": cut.decode("utf-8")}
    except UnicodeDecodeError:
        payload = {"raw_base64": base64.b64encode(cut).decode()}
    return validation.encode({
        **payload, "raw_truncated": len(raw) > len(cut), "raw_bytes": len(raw),
        "reason": rejection.reason, "message": rejection.message,
        "source": req.source.name, "endpoint": req.endpoint, "index": index,
        "client_ip": req.client_ip, "received_at": req.received_at_ms, "collector_id": collector_id,
    })


def split_body(body: bytes, ndjson: bool) -> list[bytes] | Rejection:
    """The events of a request body: a JSON array, one JSON object, or NDJSON lines."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return Rejection("invalid_utf8", f"the body is not UTF-8: {error.reason} at byte {error.start}")
    if ndjson:
        return [stripped for line in body.split(b"\n") if (stripped := line.strip())]
    stripped = body.lstrip()
    if stripped[:1] == b"{":
        return [body]
    try:
        return [bytes(item) for item in msgspec.json.decode(body, type=list[msgspec.Raw])]
    except msgspec.ValidationError:
        return Rejection("malformed_json", "the body must be a JSON array of events, one event object, or NDJSON")
    except msgspec.DecodeError as error:
        return Rejection("malformed_json", f"malformed JSON: {error}")
