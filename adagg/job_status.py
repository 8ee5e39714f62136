"""`adagg job status`: what an operator asks of the running streaming job, from any Flink REST
endpoint of an environment and its Kafka: state and uptime, restarts, the last completed
checkpoint and its age, the event-time watermark after each source, and the consumer lag."""

from __future__ import annotations

import time

import requests

MIN_WATERMARK = -(2 ** 63)  # Long.MIN_VALUE: no watermark yet


def _get(rest_url: str, path: str):
    resp = requests.get(f"{rest_url}{path}", timeout=10)
    resp.raise_for_status()
    return resp.json()


def source_watermarks(rest_url: str, job_id: str) -> dict[str, int | None]:
    """Per source vertex, the lowest input watermark among the subtasks of the vertices it feeds
    (a source's own tasks have no input watermark): the event time the job has reached after it.
    None: no watermark yet (just started or restored)."""
    nodes = _get(rest_url, f"/jobs/{job_id}/plan")["plan"]["nodes"]
    out = {}
    for source in (n for n in nodes if not n.get("inputs")):
        marks = [int(m["value"]) for n in nodes if any(i["id"] == source["id"] for i in n.get("inputs", []))
                 for m in _get(rest_url, f"/jobs/{job_id}/vertices/{n['id']}/watermarks")]
        lowest = min(marks, default=MIN_WATERMARK)
        out[source["description"].split("<br/>")[0][:120]] = None if lowest <= MIN_WATERMARK else lowest
    return out


def job_status(env, job_id: str, now_ms: int | None = None) -> dict:
    """One running job's figures (the Flink REST API, and Kafka for the lag)."""
    from adagg.kafka_io import consumer_lag

    rest = env.flink.rest_url
    now_ms = now_ms or int(time.time() * 1000)
    detail = _get(rest, f"/jobs/{job_id}")
    checkpoints = _get(rest, f"/jobs/{job_id}/checkpoints")
    latest = (checkpoints.get("latest") or {}).get("completed")
    restarts = {m["id"]: m["value"] for m in _get(rest, f"/jobs/{job_id}/metrics?get=numRestarts")}
    lag = consumer_lag(env)
    return {
        "job_id": job_id, "name": detail["name"], "state": detail["state"],
        "uptime_s": round((now_ms - detail["start-time"]) / 1000, 1),
        "restarts": int(float(restarts.get("numRestarts", 0))),
        "last_checkpoint": None if not latest else {
            "id": latest["id"], "age_s": round((now_ms - latest["latest_ack_timestamp"]) / 1000, 1),
            "duration_ms": latest.get("end_to_end_duration"), "size_bytes": latest.get("checkpointed_size"),
            "path": latest.get("external_path")},
        "checkpoints": {k: checkpoints["counts"].get(k) for k in ("completed", "failed", "restored", "in_progress")},
        "source_watermarks": source_watermarks(rest, job_id),
        "consumer_lag": {"group": env.flink.consumer_group, "topic": env.topics.raw.name,
                         "records": sum(lag.values()), "per_partition": lag},
    }


def format_status(rows: list[dict]) -> str:
    from reconcile.backfill import iso

    if not rows:
        return "no streaming job is running"
    lines = []
    for r in rows:
        cp = r["last_checkpoint"]
        lines += [f"{r['name']} ({r['job_id']}): {r['state']}, up {r['uptime_s']:.0f} s, {r['restarts']} restarts",
                  "  last checkpoint: " + ("none yet" if not cp else
                                           f"#{cp['id']}, {cp['age_s']:.1f} s ago, took {cp['duration_ms']} ms, "
                                           f"{cp['size_bytes']:,} bytes"),
                  "  checkpoints: " + ", ".join(f"{k} {v}" for k, v in r["checkpoints"].items()),
                  f"  consumer lag ({r['consumer_lag']['group']} on {r['consumer_lag']['topic']}): "
                  f"{r['consumer_lag']['records']:,} records"]
        lines += [f"  watermark after {name}: {'none yet' if mark is None else iso(mark)}"
                  for name, mark in r["source_watermarks"].items()]
    return "\n".join(lines)
