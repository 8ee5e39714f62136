"""The collector against the real Kafka broker: accounting, the bad-input suite, the pixel and
server-to-server endpoints, metrics, a broker outage and a graceful shutdown.

The collector runs as its own process (`adagg collect`), on this run's own topics."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from adagg.contract import billing_key
from adagg.demo import make_traffic
from adagg.kafka_io import ensure_topics
from adagg.paths import REPO
from adagg.traffic import key_partition
from collector import dev_keys, pixel
from tests.integration.conftest import isolated_env

PORT = 8071
AUTH = {"Authorization": f"Bearer {dev_keys.SDK}"}


@dataclass
class Running:
    env: object
    url: str
    proc: subprocess.Popen
    log: str


def start_collector(env, port: int = PORT, **sets) -> Running:
    args = {"topics.raw.name": env.topics.raw.name, "topics.dlq.name": env.topics.dlq.name,
            "collector.id": f"it-{port}", **sets}
    log = f"/tmp/adagg-collector-{port}-{uuid.uuid4().hex[:6]}.log"
    cmd = [sys.executable, "-m", "adagg.cli", "collect", "--port", str(port)]
    for key, value in args.items():
        cmd += ["--set", f"{key}={value}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    running = Running(env, f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, open(log).read()
        try:
            if httpx.get(f"{running.url}/readyz", timeout=1).status_code == 200:
                return running
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("collector not ready:\n" + open(log).read())


def stop(running: Running) -> None:
    """SIGTERM, as a supervisor would; the collector must finish cleanly (uvicorn re-raises the
    signal after its graceful shutdown, so the exit status is -SIGTERM)."""
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=60) in (0, -signal.SIGTERM)
    log = open(running.log).read()
    assert "stopped (" in log and "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def collector(kafka):
    env = isolated_env(f"col{uuid.uuid4().hex[:6]}")
    ensure_topics(env, say=lambda _: None)
    running = start_collector(env, **{"collector.delivery_timeout_ms": 5000})
    yield running
    stop(running)


def consume(env, topic: str, heartbeats: bool = False) -> list[tuple[int, bytes | None, bytes, dict]]:
    """Every record of a topic: (partition, key, value, headers); the collector's heartbeats
    (collector/heartbeat.py) only if asked for."""
    consumer = Consumer({"bootstrap.servers": env.kafka.bootstrap_servers, "group.id": f"t-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out, read, deadline = [], 0, time.monotonic() + 60
        while read < sum(ends.values()) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                read += 1
                if heartbeats or b'"heartbeat"' not in msg.value():
                    out.append((msg.partition(), msg.key(), msg.value(), dict(msg.headers() or [])))
        return out
    finally:
        consumer.close()


def unique_events(seed: int, count: int) -> list[dict]:
    traffic = make_traffic(isolated_env("x"), seed=seed, events=count, ads=10, start_ms=int(time.time() * 1000) - 600_000)
    seen, out = set(), []
    for send in (s for phase in traffic.phases for s in phase):
        event = json.loads(send.value)
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            out.append(event)
    return out


def invalid_variants(event: dict, n: int) -> dict:
    """n-th kind of broken event (each fails the contract in another way)."""
    kinds = [
        {**event, "event_time": float(event["event_time"])},
        {k: v for k, v in event.items() if k != "ad_id"},
        {**event, "schema_version": 9},
        {**event, "ad_id": "a" * 500},
        {**event, "event_time": 4_102_444_800_000},      # year 2100
        {**event, "unexpected": True},
        {**event, "ip": "300.1.1.1"},
    ]
    return kinds[n % len(kinds)]


# ---------------------------------------------------------------- accounting

def test_accounting_every_event_is_accepted_or_rejected_and_accepted_ones_are_in_the_topic_once(collector):
    events = unique_events(seed=11, count=3000)[:3000]
    sent: list[bytes] = []
    for i, event in enumerate(events):
        body = invalid_variants(event, i) if i % 10 == 3 else event
        if i % 7 == 5:  # some without event_id/ip/user_agent: the collector fills them
            body = {k: v for k, v in body.items() if k not in ("event_id", "ip", "user_agent")}
        sent.append(json.dumps(body).encode())
    answers = []
    with httpx.Client(base_url=collector.url, headers=AUTH, timeout=60) as http:
        for start in range(0, 2000, 500):  # JSON arrays
            answers.append((sent[start:start + 500], http.post("/v1/events", content=b"[" + b",".join(sent[start:start + 500]) + b"]")))
        for start in range(2000, 2900, 300):  # NDJSON
            answers.append((sent[start:start + 300], http.post("/v1/events", content=b"\n".join(sent[start:start + 300]),
                                                             headers={"Content-Type": "application/x-ndjson"})))
        for value in sent[2900:]:  # one event per request
            answers.append(([value], http.post("/v1/events", content=value)))

    accepted: dict[str, bytes] = {}   # event_id -> the bytes sent
    rejected: list[bytes] = []
    for values, response in answers:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accepted"] + body["rejected"] == len(values) and body["retry"] == 0
        for value, result in zip(values, body["results"], strict=True):
            if result["status"] == "accepted":
                event_id = result.get("event_id") or json.loads(value)["event_id"]
                accepted[event_id] = value
            else:
                assert result["status"] == "rejected" and result["reason"] and result["message"]
                rejected.append(value)
    assert len(accepted) + len(rejected) == len(sent) == 3000
    assert len(rejected) == sum(1 for i in range(3000) if i % 10 == 3)

    raw = consume(collector.env, collector.env.topics.raw.name)
    ids = [json.loads(value)["event_id"] for _, _, value, _ in raw]
    assert len(ids) == len(set(ids)) == len(accepted) and set(ids) == set(accepted)
    partitions = len({p for p, *_ in raw})
    for part, key, value, headers in raw:
        event = json.loads(value)
        assert key == billing_key(event, {"impression": 60_000, "click": 60_000, "conversion": 3_600_000}).encode()
        assert key_partition(key, collector.env.topics.raw.partitions) == part  # as a Java client picks
        assert headers["adagg-collector"] == b"it-8071" and headers["adagg-source"] == b"local-sdk"
        assert abs(int(headers["adagg-received-at"]) - time.time() * 1000) < 600_000
        original = json.loads(accepted[event["event_id"]])
        assert event == {**original, **{k: event[k] for k in ("event_id", "ip", "user_agent")}}
        if "ip" not in original:
            assert event["ip"] == "127.0.0.1" and event["user_agent"].startswith("python-httpx")
    assert partitions == collector.env.topics.raw.partitions

    dlq = [json.loads(value) for _, _, value, _ in consume(collector.env, collector.env.topics.dlq.name)]
    assert sorted(d["raw"] for d in dlq) == sorted(v.decode() for v in rejected)
    assert all(d["source"] == "local-sdk" and d["reason"] and d["received_at"] > 0 for d in dlq)


def test_heartbeats_reach_every_partition_with_the_highest_event_time_never_ahead_of_the_clock(kafka):
    """None before the first event; then every partition gets one per interval, with no key, the
    collector's id, and the highest accepted event time, capped at the collector's clock."""
    env = isolated_env(f"hb{uuid.uuid4().hex[:6]}")
    ensure_topics(env, say=lambda _: None)
    running = start_collector(env, port=8072, **{"collector.heartbeat_interval_ms": 200})
    try:
        time.sleep(1)
        assert consume(env, env.topics.raw.name, heartbeats=True) == []
        now = int(time.time() * 1000)
        events = unique_events(seed=5, count=3)[:3]
        for event, age in zip(events, (3000, 1000, 2000)):
            event["event_time"] = now - age
        with httpx.Client(base_url=running.url, headers=AUTH, timeout=30) as http:
            assert http.post("/v1/events", content=json.dumps(events)).json()["accepted"] == 3
            time.sleep(1)
            beats = [(p, k, json.loads(v), h) for p, k, v, h in consume(env, env.topics.raw.name, heartbeats=True)
                     if b'"heartbeat"' in v]
            assert {p for p, *_ in beats} == set(range(env.topics.raw.partitions))
            assert all(k is None and h["adagg-collector"] == b"it-8072" for _, k, _, h in beats)
            assert {b["event_time"] for _, _, b, _ in beats} == {now - 1000}
            assert {b["heartbeat"] for _, _, b, _ in beats} == {"it-8072"}

            future = {**unique_events(seed=6, count=1)[0], "event_time": now + 3_600_000}
            assert http.post("/v1/events", content=json.dumps(future)).json()["accepted"] == 1
            time.sleep(1)
        latest = {p: json.loads(v)["event_time"] for p, _, v, _ in consume(env, env.topics.raw.name, heartbeats=True)
                  if b'"heartbeat"' in v}  # each partition's last heartbeat (a partition is read in order)
        # Taken after the read: the collector goes on beating while it runs, so a clock taken
        # before it was older than the last beats read (a CI run failed by 12 ms).
        after = int(time.time() * 1000)
        assert all(now < t <= after for t in latest.values()), (now, latest, after)
    finally:
        stop(running)


# ---------------------------------------------------------------- bad input

def _event() -> dict:
    return {"schema_version": 2, "event_id": uuid.uuid4().hex, "event_type": "click",
            "event_time": int(time.time() * 1000), "ad_id": "ad-1", "campaign_id": "c-1", "advertiser_id": "a-1",
            "user_id": "u-1", "ip": "23.32.0.5", "user_agent": "UA", "placement_id": "p-1", "publisher_id": "pub-1",
            "cost_micros": 100}


def _json(event) -> bytes:
    return json.dumps(event).encode()


# (name, request kwargs, expected status, expected error/reason)
BAD_BODIES = [
    ("malformed JSON", b'[{"schema_version": 2,', 400, "malformed_json"),
    ("not JSON at all", b"hello", 400, "malformed_json"),
    ("invalid UTF-8", b'[{"ad_id": "\xff\xfe"}]', 400, "invalid_utf8"),
    ("empty batch", b"[]", 400, "empty_batch"),
    ("oversized body", b"[" + b",".join([_json(_event())] * 4500) + b"]", 413, "body_too_large"),
    ("too many events", b"[" + b",".join([b"{}"] * 5001) + b"]", 413, "too_many_events"),
]
BAD_EVENTS = [
    ("wrong type", {"event_time": "yesterday"}, "wrong_type"),
    ("float for an integer", {"cost_micros": 100.0}, "wrong_type"),
    ("missing field", {"ad_id": None}, "missing_field"),
    ("unknown version", {"schema_version": 7}, "unknown_schema_version"),
    ("oversized string", {"user_agent": "x" * 5000}, "bad_length"),
    ("empty id", {"ad_id": ""}, "bad_length"),
    ("timestamp far future", {"event_time": 32_503_680_000_000}, "timestamp_out_of_range"),
    ("timestamp far past", {"event_time": 0}, "timestamp_out_of_range"),
    ("negative money", {"cost_micros": -5}, "out_of_range"),
    ("unknown event type", {"event_type": "view"}, "bad_value"),
    ("unknown field", {"price": 1}, "unknown_field"),
    ("bad ip", {"ip": "1.2.3.4.5"}, "bad_ip"),
    ("not an object", "just a string", "not_an_object"),
]


@pytest.mark.parametrize("name, body, status, error", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_a_clear_error(collector, name, body, status, error):
    response = httpx.post(f"{collector.url}/v1/events", content=body, headers=AUTH, timeout=30)
    assert response.status_code == status and response.json()["error"] == error, response.text[:300]
    assert response.json()["message"] and "Traceback" not in response.text


@pytest.mark.parametrize("name, change, reason", BAD_EVENTS, ids=[b[0] for b in BAD_EVENTS])
def test_bad_events_are_rejected_one_by_one(collector, name, change, reason):
    if isinstance(change, dict):
        bad = {k: v for k, v in {**_event(), **change}.items() if v is not None}
    else:
        bad = change
    good = _event()
    response = httpx.post(f"{collector.url}/v1/events", content=json.dumps([good, bad]), headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    ok, refused = response.json()["results"]
    assert ok == {"status": "accepted"}
    assert refused["status"] == "rejected" and refused["reason"] == reason and refused["message"], refused


@pytest.mark.parametrize("headers, error", [
    ({}, "missing_api_key"), ({"Authorization": "Bearer nope"}, "invalid_api_key"),
    ({"X-API-Key": dev_keys.SDK + "x"}, "invalid_api_key"), ({"Authorization": "Basic abc"}, "missing_api_key"),
])
def test_wrong_or_missing_api_keys_are_refused(collector, headers, error):
    response = httpx.post(f"{collector.url}/v1/events", content=_json(_event()), headers=headers)
    assert response.status_code == 401 and response.json()["error"] == error
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_key_sends_only_its_event_types(collector):
    s2s = {"Authorization": f"Bearer {dev_keys.S2S}"}
    conversion = {**_event(), "event_type": "conversion", "cost_micros": 0}
    response = httpx.post(f"{collector.url}/v1/events", content=json.dumps([_event(), conversion]), headers=s2s)
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "accepted"]
    assert response.json()["results"][0]["reason"] == "event_type_not_allowed"


def test_rate_limits_answer_429_with_retry_after(collector):
    slow = {"X-API-Key": dev_keys.SLOW}
    batch = json.dumps([_event() for _ in range(10)])
    assert httpx.post(f"{collector.url}/v1/events", content=batch, headers=slow).status_code == 200
    limited = httpx.post(f"{collector.url}/v1/events", content=batch, headers=slow)
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    too_big = httpx.post(f"{collector.url}/v1/events", content=json.dumps([_event() for _ in range(11)]), headers=slow)
    assert too_big.status_code == 413 and too_big.json()["error"] == "too_many_events"


def test_unknown_paths_and_methods_answer_json(collector):
    assert httpx.get(f"{collector.url}/v1/events").status_code == 405
    missing = httpx.get(f"{collector.url}/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "http_error"


# ---------------------------------------------------------------- pixel and server-to-server

def _pixel_event() -> dict:
    return {"schema_version": 2, "event_id": uuid.uuid4().hex, "ad_id": "ad-px", "campaign_id": "c-1",
            "advertiser_id": "a-1", "user_id": "u-px", "placement_id": "p-1", "publisher_id": "pub-1",
            "cost_micros": 1500, "referrer_domain": "news.example.com"}


def test_signed_pixel_returns_a_gif_and_writes_the_impression(collector):
    event = _pixel_event()
    url = pixel.signed_url(f"{collector.url}/v1/pixel", event, "local-sdk", dev_keys.PIXEL_SECRET)
    response = httpx.get(url, headers={"User-Agent": "PixelBrowser/1.0"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and response.headers["cache-control"] == "no-store"
    assert httpx.get(url, headers={"User-Agent": "PixelBrowser/1.0"}).status_code == 200  # replay: same event_id
    written = [json.loads(v) for _, _, v, _ in consume(collector.env, collector.env.topics.raw.name)]
    mine = [e for e in written if e["event_id"] == event["event_id"]]
    assert len(mine) == 2 and mine[0] == mine[1] | {"event_time": mine[0]["event_time"]}
    assert mine[0]["event_type"] == "impression" and mine[0]["user_agent"] == "PixelBrowser/1.0"
    assert mine[0]["ip"] == "127.0.0.1" and abs(mine[0]["event_time"] - time.time() * 1000) < 60_000


@pytest.mark.parametrize("tamper, status, error", [
    (lambda p: {**p, "cost_micros": "1"}, 403, "bad_signature"),
    (lambda p: {**p, "sig": "0" * 64}, 403, "bad_signature"),
    (lambda p: {**p, "key": "local-s2s"}, 403, "bad_signature"),
    (lambda p: {k: v for k, v in p.items() if k != "sig"}, 400, "bad_pixel"),
    (lambda p: {k: v for k, v in p.items() if k != "event_id"}, 400, "bad_pixel"),
])
def test_forged_or_incomplete_pixels_are_refused(collector, tamper, status, error):
    url = pixel.signed_url(f"{collector.url}/v1/pixel", _pixel_event(), "local-sdk", dev_keys.PIXEL_SECRET)
    params = dict(httpx.QueryParams(urlsplit(url).query))
    response = httpx.get(f"{collector.url}/v1/pixel", params=tamper(params))
    assert response.status_code == status and response.json()["error"] == error


def test_expired_pixel_and_invalid_pixel_content(collector):
    old = pixel.signed_url(f"{collector.url}/v1/pixel", _pixel_event(), "local-sdk", dev_keys.PIXEL_SECRET,
                           ttl_s=10, now_s=time.time() - 100)
    assert httpx.get(old).json()["error"] == "expired_signature"
    bad = pixel.signed_url(f"{collector.url}/v1/pixel", {**_pixel_event(), "cost_micros": "cheap"}, "local-sdk",
                           dev_keys.PIXEL_SECRET)
    response = httpx.get(bad)
    assert response.status_code == 400 and response.json()["error"] == "wrong_type"


def test_server_to_server_conversions(collector):
    s2s = {"Authorization": f"Bearer {dev_keys.S2S}"}
    conversion = {k: v for k, v in _event().items() if k not in ("event_type", "event_id")}
    conversion |= {"cost_micros": 0, "conversion_value_micros": 25_000_000}
    response = httpx.post(f"{collector.url}/v1/conversions", json=conversion, headers=s2s)
    assert response.status_code == 200 and response.json()["accepted"] == 1
    event_id = response.json()["results"][0]["event_id"]
    click = httpx.post(f"{collector.url}/v1/conversions", json={**conversion, "event_type": "click"}, headers=s2s)
    assert click.json()["results"][0]["reason"] == "bad_value"
    written = [json.loads(v) for _, _, v, _ in consume(collector.env, collector.env.topics.raw.name)]
    assert [e["event_type"] for e in written if e["event_id"] == event_id] == ["conversion"]


def test_health_readiness_and_metrics(collector):
    assert httpx.get(f"{collector.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{collector.url}/readyz").json() == {"ready": True, "kafka": "up", "in_flight": 0}
    text = httpx.get(f"{collector.url}/metrics").text
    for name in ("adagg_collector_events_received_total", "adagg_collector_events_accepted_total",
                 'adagg_collector_events_rejected_total{endpoint="events",reason="wrong_type"}',
                 "adagg_collector_produce_latency_seconds_bucket", "adagg_collector_queue_depth",
                 "adagg_collector_kafka_up 1.0", 'adagg_collector_requests_total{endpoint="events",status="401"}'):
        assert name in text, name


# ---------------------------------------------------------------- Kafka outage and shutdown

def test_kafka_outage_answers_503_loses_nothing_and_recovers(collector, kafka):
    def post(events):
        return httpx.post(f"{collector.url}/v1/events", content=json.dumps(events), headers=AUTH, timeout=30)

    before = [_event() for _ in range(200)]
    assert post(before).json()["accepted"] == 200
    kafka.down(["kafka"], say=lambda _: None)
    try:
        during, answers = [_event() for _ in range(100)], []
        t0 = time.monotonic()
        for start in range(0, 100, 20):
            answers.append(post(during[start:start + 20]))
        assert all(a.status_code == 503 and int(a.headers["retry-after"]) > 0 for a in answers), \
            [a.text for a in answers]
        assert all(a.json().get("accepted", 0) == 0 for a in answers)
        assert time.monotonic() - t0 < 5 * 8  # each within the delivery timeout (5 s), most at once
        ready = httpx.get(f"{collector.url}/readyz")
        assert ready.status_code == 503 and ready.json()["kafka"] == "unreachable"
        assert httpx.get(f"{collector.url}/healthz").status_code == 200
    finally:
        kafka.up(["kafka"], say=lambda _: None)
    deadline = time.monotonic() + 60
    while httpx.get(f"{collector.url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the collector did not see Kafka come back"
        time.sleep(0.5)
    after = post(during)  # the client sends again what was answered 503
    assert after.status_code == 200 and after.json()["accepted"] == 100
    written = [json.loads(v)["event_id"] for _, _, v, _ in consume(collector.env, collector.env.topics.raw.name)]
    for event in before + during:
        assert event["event_id"] in written
    assert all(written.count(e["event_id"]) == 1 for e in before)


def test_graceful_shutdown_answers_and_flushes_what_is_in_flight(kafka):
    env = isolated_env(f"gs{uuid.uuid4().hex[:6]}")
    ensure_topics(env, say=lambda _: None)
    running = start_collector(env, port=PORT + 1, **{"collector.linger_ms": 200})
    events = [_event() for _ in range(2000)]
    result = {}

    def send():
        result["response"] = httpx.post(f"{running.url}/v1/events", content=json.dumps(events), headers=AUTH,
                                        timeout=60)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.15)  # the request is in flight: records produced, linger not yet over
    stop(running)
    sender.join(timeout=60)
    assert result["response"].status_code == 200 and result["response"].json()["accepted"] == 2000
    written = {json.loads(v)["event_id"] for _, _, v, _ in consume(env, env.topics.raw.name)}
    assert written == {e["event_id"] for e in events}
    assert "0 records unsent" in open(running.log).read()


def test_dead_letters_of_whole_bodies_keep_the_bytes(collector):
    before = len(consume(collector.env, collector.env.topics.dlq.name))
    httpx.post(f"{collector.url}/v1/events", content=b'\xff\xfe{"broken"', headers=AUTH)
    letters = [json.loads(v) for _, _, v, _ in consume(collector.env, collector.env.topics.dlq.name)][before:]
    assert len(letters) == 1 and letters[0]["reason"] == "invalid_utf8" and letters[0]["index"] is None
    assert base64.b64decode(letters[0]["raw_base64"]) == b'\xff\xfe{"broken"'
