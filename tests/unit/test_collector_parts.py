"""The collector's pure parts: settings and keys, enrichment and ids, body splitting, dead
letters, pixel signatures and rate limits. No Kafka, no HTTP server."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from adagg import env as envs
from adagg.contract import billing_key
from collector import dev_keys, pixel
from collector.config import ConfigError, hash_key, load_settings, new_key
from collector.events import Record, Request, assigned_event_id, dead_letter, from_bytes, from_object, split_body
from collector.ratelimit import RateLimiter, TokenBucket
from collector.validation import Rejection

NOW = 1_767_225_601_234
EVENT = {
    "schema_version": 1, "event_id": "e-1", "event_type": "click", "event_time": NOW - 5_000,
    "ad_id": "ad-1", "campaign_id": "camp-0001", "advertiser_id": "adv-001", "user_id": "u-1",
    "ip": "23.32.0.5", "user_agent": "Mozilla/5.0", "placement_id": "plc-001", "publisher_id": "pub-01",
    "cost_micros": 250_000,
}
SECRETS = {"ADAGG_PIXEL_SECRET_WEB": "s3cret"}


@pytest.fixture
def settings():
    return load_settings(envs.load("local"))


def request(settings, key_name="local-sdk", ip="203.0.113.9", agent="TestAgent/1.0") -> Request:
    return Request(settings.key_named(key_name), "events", ip, agent, NOW)


@pytest.mark.parametrize("name", envs.names())
def test_every_environment_has_a_loadable_collector(name, monkeypatch):
    for var, value in {**SECRETS, "ADAGG_KAFKA_USERNAME": "u", "ADAGG_KAFKA_PASSWORD": "p"}.items():
        monkeypatch.setenv(var, value)
    env = envs.load(name)
    s = load_settings(env)
    assert s.raw_topic == env.topics.raw.name and s.dlq_topic == env.topics.dlq.name
    assert s.keys and all(len(k) == 64 for k in s.keys)
    assert s.max_future_ms > 0 and s.max_past_ms > 0 and s.buffer_events > 0
    assert s.bucket_ms == {t: v * 1000 for t, v in env.billing.bucket_seconds.items()}
    if env.kafka.security_protocol == "SASL_SSL":
        assert s.kafka["sasl.username"] == "u" and s.kafka["ssl.ca.location"].endswith(".pem")


def test_a_missing_secret_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ADAGG_PIXEL_SECRET_WEB", raising=False)
    with pytest.raises(ConfigError, match="ADAGG_PIXEL_SECRET_WEB"):
        load_settings(envs.load("dev"))


def test_keys_are_stored_hashed_and_local_dev_keys_match(settings):
    text = (envs.ENV_DIR / "local.yaml").read_text()
    for plaintext in (dev_keys.SDK, dev_keys.S2S, dev_keys.SLOW):
        assert plaintext not in text and hash_key(plaintext) in settings.keys
    for name in ("dev", "prod"):
        other = (envs.ENV_DIR / f"{name}.yaml").read_text()
        assert not any(hash_key(k) in other for k in (dev_keys.SDK, dev_keys.S2S, dev_keys.SLOW))
    plaintext, digest = new_key("web")
    assert plaintext.startswith("web_") and len(plaintext) > 40 and hash_key(plaintext) == digest


def test_rates_are_split_over_workers():
    env = envs.load("local")
    one, two = load_settings(env), load_settings(env, workers=2)
    assert two.key_named("local-slow").rate_per_second == one.key_named("local-slow").rate_per_second / 2
    assert two.key_named("local-slow").burst == one.key_named("local-slow").burst // 2


# ---- events: fill, ids, keys

def test_a_complete_event_goes_out_byte_for_byte(settings):
    raw = json.dumps(EVENT).encode()
    record = from_bytes(raw, request(settings), settings)
    assert record == Record("e-1", billing_key(EVENT, settings.bucket_ms).encode(), raw, False, EVENT["event_time"])


@pytest.mark.parametrize("flavour", ["separator", "escape", "unit_separator", "quotes", "unicode", "max_length"])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_fuzzed_ids_are_accepted_and_keyed_by_their_escaped_billing_key(settings, flavour, ensure_ascii):
    """Every id the contract allows goes through: '|', backslashes, CHR(31), quotes, unicode (as
    UTF-8 or as JSON escapes, astral characters as surrogate pairs) and maximum lengths."""
    import random

    from adagg import fuzz_ids

    rng = random.Random(flavour)
    event = {**EVENT, **{name: fuzz_ids.fuzz_id(rng, EVENT[name], fuzz_ids.MAX_LENGTH[name], flavour)
                         for name in fuzz_ids.ID_FIELDS}}
    raw = json.dumps(event, ensure_ascii=ensure_ascii).encode()
    record = from_bytes(raw, request(settings), settings)
    assert record == Record(event["event_id"], billing_key(event, settings.bucket_ms).encode(), raw, False,
                            event["event_time"])


def test_missing_id_ip_and_agent_are_filled_from_the_request(settings):
    bare = {k: v for k, v in EVENT.items() if k not in ("event_id", "ip", "user_agent")}
    raw = json.dumps(bare).encode()
    record = from_bytes(raw, request(settings), settings)
    sent = json.loads(record.value)
    assert sent == {**bare, "event_id": record.event_id, "ip": "203.0.113.9", "user_agent": "TestAgent/1.0"}
    assert record.assigned_id and record.event_id == assigned_event_id("local-sdk", raw)
    # A byte-identical retry gets the same id (so the pipeline's exact dedup drops it) ...
    assert from_bytes(raw, request(settings), settings).event_id == record.event_id
    # ... and another source's identical bytes do not.
    assert assigned_event_id("other", raw) != record.event_id


def test_permissions_time_and_ip_are_checked(settings):
    conversion = {**EVENT, "event_type": "conversion"}
    assert from_bytes(json.dumps(EVENT).encode(), request(settings, "local-s2s"), settings).reason == \
        "event_type_not_allowed"
    assert isinstance(from_bytes(json.dumps(conversion).encode(), request(settings, "local-s2s"), settings), Record)
    future = {**EVENT, "event_time": NOW + settings.max_future_ms + 1}
    assert from_bytes(json.dumps(future).encode(), request(settings), settings).reason == "timestamp_out_of_range"
    assert from_bytes(json.dumps({**EVENT, "ip": "1.2.3"}).encode(), request(settings), settings).reason == "bad_ip"


def test_objects_from_query_strings_are_converted(settings):
    params = {**{k: str(v) for k, v in EVENT.items()}, "schema_version": 1}
    assert from_object(params, request(settings), settings).reason == "wrong_type"  # strict by default
    record = from_object(params, request(settings), settings, strict=False)
    assert isinstance(record, Record) and json.loads(record.value) == EVENT


@pytest.mark.parametrize("body, ndjson, expected", [
    (b'[{"a":1}, {"b":2}]', False, [b'{"a":1}', b'{"b":2}']),
    (b'  {"a":1}', False, [b'  {"a":1}']),
    (b'{"a":1}\n\n{"b":2}\r\n', True, [b'{"a":1}', b'{"b":2}']),
    (b'[]', False, []),
])
def test_split_body(body, ndjson, expected):
    assert split_body(body, ndjson) == expected


@pytest.mark.parametrize("body, reason", [
    (b'[{"a":1}', "malformed_json"), (b'"text"', "malformed_json"), (b'\xff\xfe[]', "invalid_utf8"),
    (b'{"a": "\xc3\x28"}', "invalid_utf8"),
])
def test_split_body_refusals(body, reason):
    assert split_body(body, ndjson=False).reason == reason


def test_dead_letter_records_keep_the_payload_reason_source_and_time(settings):
    req = request(settings)
    letter = json.loads(dead_letter(b'{"x": 1}', Rejection("unknown_field", "x: unknown field"), req, "c-1", 3))
    assert letter == {"raw": '{"x": 1}', "raw_truncated": False, "raw_bytes": 8, "reason": "unknown_field",
                      "message": "x: unknown field", "source": "local-sdk", "endpoint": "events", "index": 3,
                      "client_ip": "203.0.113.9", "received_at": NOW, "collector_id": "c-1"}
    binary = json.loads(dead_letter(b"\xff" * 10, Rejection("invalid_utf8", "m"), req, "c-1", None, max_raw_bytes=4))
    assert base64.b64decode(binary["raw_base64"]) == b"\xff" * 4 and binary["raw_truncated"]
    assert binary["index"] is None and binary["raw_bytes"] == 10


def test_the_dead_letters_pinot_table_reads_fields_a_dead_letter_has(settings):
    """pinot/dead_letters/ ingests the dlq topic: each of its columns is a field of the record, of
    its type (the raw payload is left in Kafka)."""
    from adagg.pinot import schema_columns, tables
    from adagg.env import load

    letter = json.loads(dead_letter(b'{"x": 1}', Rejection("unknown_field", "m"), request(settings), "c-1", 0))
    [spec] = [t for t in tables(load("local")) if t.name == "dead_letters"]
    types = {str: "STRING", bool: "BOOLEAN", int: "LONG"}
    assert {c: types[type(letter[c])] for c in schema_columns(spec.schema)} == schema_columns(spec.schema)
    stream = spec.table_config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"][0]
    assert stream["stream.kafka.topic.name"] == load("local").topics.dlq.name


# ---- pixel signatures

def test_signed_pixel_urls_verify_and_any_edit_breaks_them():
    secret = b"k"
    event = {k: v for k, v in EVENT.items() if k not in ("event_type", "event_time", "ip", "user_agent")}
    url = pixel.signed_url("http://c/v1/pixel", event, "local-sdk", secret, ttl_s=60, now_s=1000)
    params = dict(parse_qsl(urlsplit(url).query))
    assert pixel.verify(params, secret, now_s=1000, max_age_s=3600) is None
    assert pixel.event_fields(params) == {k: str(v) for k, v in event.items()}
    assert pixel.verify({**params, "cost_micros": "1"}, secret, 1000, 3600) == "bad_signature"
    assert pixel.verify({**params, "extra": "1"}, secret, 1000, 3600) == "bad_signature"
    assert pixel.verify(params, b"other", 1000, 3600) == "bad_signature"
    assert pixel.verify(params, secret, now_s=1061, max_age_s=3600) == "expired_signature"
    assert pixel.verify(params, secret, now_s=1000, max_age_s=10) == "bad_signature"  # valid for too long


# ---- rate limits

def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(rate_per_second=10, burst=20, clock=lambda: now[0])
    assert bucket.take(20) == 0 and bucket.take(1) == pytest.approx(0.1)
    now[0] = 0.5
    assert bucket.take(5) == 0 and bucket.take(1) == pytest.approx(0.1)
    assert bucket.take(21) == float("inf")


def test_rate_limiter_answers_whole_seconds(settings):
    now = [0.0]
    limiter = RateLimiter(settings.keys.values(), clock=lambda: now[0])
    assert limiter.retry_after("local-slow", 10) == 0
    assert limiter.retry_after("local-slow", 5) == 1   # 5 events at 5/s
    now[0] = 1.0
    assert limiter.retry_after("local-slow", 5) == 0
    assert limiter.retry_after("local-sdk", 5000) == 0
    assert limiter.retry_after("local-slow", 11) is None and limiter.burst("local-slow") == 10  # over the burst


def test_python_kafka_clients_connect_like_the_collector(monkeypatch):
    """The CLI's and reconcile's kafka-python clients get prod's SASL_SSL settings: the same
    secrets and CA file the collector gives librdkafka, under kafka-python's names."""
    from adagg.kafka_io import connection

    assert connection(envs.load("local")) == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    prod = envs.load("prod")
    monkeypatch.delenv(prod.kafka.sasl.username_env, raising=False)
    with pytest.raises(ConfigError, match=prod.kafka.sasl.username_env):
        connection(prod)  # a missing secret is named, not sent as None
    monkeypatch.setenv(prod.kafka.sasl.username_env, "adagg")
    monkeypatch.setenv(prod.kafka.sasl.password_env, "s3cret")
    assert connection(prod) == {
        "bootstrap_servers": prod.kafka.bootstrap_servers, "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "adagg", "sasl_plain_password": "s3cret",
        "ssl_cafile": "/etc/adagg/kafka-ca.pem"}
