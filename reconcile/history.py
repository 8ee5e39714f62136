"""The reconciliation history: after each pass, one record per grain and measure on the topic
`topics.reconciliations`, which Pinot's `reconciliations` table ingests (docs/slo.md#reconciliation).
Dashboards and the SLO report read every pass from there: what the dashboards had served against
what the recomputation (and so billing) says, how much the pass changed, what is left after it
(the target is nothing), and what the pass cost. Pure but for publish()."""

from __future__ import annotations

import json

from serving.queries import MEASURES

# Every column of a record, with its Pinot type: pinot/reconciliations/ must hold exactly these
# (tests/unit/test_reconcile.py).
COLUMNS = {
    "run_at_ms": "LONG", "from_ms": "LONG", "to_ms": "LONG", "grain": "STRING", "measure": "STRING",
    "served": "LONG",           # the serving table's total before the pass: what dashboards showed
    "billed": "LONG",           # the recomputation's total: what the billing report bills
    "served_diff": "LONG",      # billed - served
    "changed_windows": "LONG",  # windows of the grain whose measures differed (any measure)
    "changed": "LONG",          # the sum over those windows of |billed - served|, this measure
    "residual": "LONG",         # the same sum after the corrections are visible: 0 when the pass did its job
    "published_corrections": "LONG",
    "backfill_seconds": "DOUBLE", "cpu_seconds": "DOUBLE", "rows_read": "LONG",
    "archive_bytes": "LONG", "archive_files": "LONG", "data_days": "DOUBLE",
    "pipeline_version": "STRING", "report": "STRING",
}
DAY_MS = 86_400_000


def records(summary: dict, residual: dict[str, dict[str, int]], cost: dict, run_at_ms: int,
            pipeline_version: str) -> list[dict]:
    """The records of one pass. `summary`: reconcile()'s (minute figures at the top, "hour" and
    "day" under their names); `residual`: per grain, what is left per measure after the pass;
    `cost`: backfill_seconds, cpu_seconds, rows_read, archive_bytes, archive_files."""
    out = []
    data_days = (summary["to_ms"] - summary["from_ms"]) / DAY_MS
    for grain in ("minute", "hour", "day"):
        figures = summary if grain == "minute" else summary[grain]
        for m in MEASURES:
            served, billed = figures["online_totals"][m], figures["batch_totals"][m]
            out.append({
                "run_at_ms": run_at_ms, "from_ms": summary["from_ms"], "to_ms": summary["to_ms"],
                "grain": grain, "measure": m, "served": served, "billed": billed, "served_diff": billed - served,
                "changed_windows": figures["mismatched_keys"], "changed": figures["changed"][m],
                "residual": residual[grain][m], "published_corrections": figures["published_corrections"],
                **cost, "data_days": data_days, "pipeline_version": pipeline_version, "report": summary["report"]})
    return out


def archive_cost(manifests: list[dict]) -> dict:
    """Bytes and files the backfill read from the archive (its manifests list every file)."""
    files = [f for m in manifests for f in m["files"]]
    return {"archive_bytes": sum(f["bytes"] for f in files), "archive_files": len(files)}


def publish(env, rows: list[dict]) -> None:
    """The records onto topics.reconciliations, acknowledged by every replica."""
    from kafka import KafkaProducer

    from adagg.kafka_io import connection

    producer = KafkaProducer(**connection(env), acks="all", linger_ms=5)
    for row in rows:
        producer.send(env.topics.reconciliations.name, value=json.dumps(row, separators=(",", ":")).encode())
    producer.flush(60)
    producer.close()
