"""An unexpected failure inside the collector answers 500 with an incident id, never a trace.
(The only collector test with a stand-in: a writer that raises, which real Kafka cannot be made to.)"""

from __future__ import annotations

import json
import logging

from starlette.testclient import TestClient

from adagg import env as envs
from collector import dev_keys
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
