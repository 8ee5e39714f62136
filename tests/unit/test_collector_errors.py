"""Failures inside the collector: an unexpected one answers 500 with an incident id, never a
trace; a write Kafka did not confirm answers 503, never a success or a plain refusal.
(The only collector tests with stand-ins: writers that raise or fail every record, which real
Kafka cannot be made to do on cue.)"""

from __future__ import annotations

import json
import logging

from starlette.testclient import TestClient

from adagg import env as envs
from collector import dev_keys, pixel
from collector.app import create_app
from collector.config import load_settings


class ExplodingWriter:
    kafka_up, kafka_state, in_flight = True, "up", 0

    def start(self) -> None: ...

    def probe(self) -> bool:
        return True

    async def write(self, records):
        raise RuntimeError("secret internals: /etc/adagg/creds")

    async def close(self, timeout_s: float) -> int:
        return 0


def test_internal_errors_answer_500_without_a_trace(caplog):
    app = create_app(load_settings(envs.load("local")), writer_factory=lambda s: ExplodingWriter())
    event = {"schema_version": 1, "event_type": "click", "event_time": 1, "ad_id": "a"}
    with caplog.at_level(logging.ERROR, logger="adagg.collector"), TestClient(app) as client:
        response = client.post("/v1/events", content=json.dumps(event),
                               headers={"Authorization": f"Bearer {dev_keys.SDK}"})
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal_error" and "incident" in body["message"]
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "secret internals" in caplog.text  # the trace goes to the log


class UnconfirmedWriter(ExplodingWriter):
    async def write(self, records):
        return {i: "Local: Message timed out" for i in range(len(records))}


def test_a_refused_pixel_whose_dead_letter_is_not_written_answers_503():
    app = create_app(load_settings(envs.load("local")), writer_factory=lambda s: UnconfirmedWriter())
    event = {"schema_version": 1, "event_id": "px-1", "ad_id": "a" * 300, "campaign_id": "c", "advertiser_id": "v"}
    url = pixel.signed_url("http://testserver/v1/pixel", event, "local-sdk", dev_keys.PIXEL_SECRET)
    with TestClient(app) as client:
        response = client.get(url)
    # Invalid (ad_id too long), but its dead letter was not confirmed: retry, do not drop.
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.json()["retry"] == 1
