"""`adagg reconcile`: compare the serving table with a batch recomputation from the raw archive,
write a mismatch report, and publish corrections into the reconciled tier.

One pass over [from, to), whole hours:
1. every archive partition (hour) of the range must be sealed: committed by the streaming job
   once its watermark passed the hour, which also closed every final window of that hour;
2. backfill (reconcile/backfill.py) checks the manifests and recomputes the minute windows;
3. the rows ad_minute shows now, and the late deliveries per ad and minute, are read from Pinot;
4. reconcile/diff.py finds the mismatches and their reasons; the report goes to
   <archive.reports>/reconcile/<from>_<to>/ (mismatches.csv, summary.json);
5. corrections go to ad_minute's own topic with tier "reconciled" and a higher version, so
   Pinot's upsert replaces the final rows (the reconciled tier: docs/archive.md). The pass waits
   until Pinot shows every correction, then records itself in the archive's reconcile ledger.
A second pass over the same range finds the corrected rows equal to the batch and publishes nothing.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from pathlib import Path

from adagg.sql import output_topic, pipeline_version
from archive.manifest import HOUR_MS
from reconcile import backfill, diff
from serving.queries import MEASURES, MINUTE_FINAL

LEDGER = "_RECONCILED.jsonl"  # at the archive root: one line per reconcile pass
_COLUMNS = (*diff.KEY, *diff.DESCRIPTIVE, *MEASURES, "version")
_LIMIT = 10_000_000


def online_rows(run, lo: int, hi: int) -> dict[tuple, dict]:
    """What ad_minute shows now for windows in [lo, hi): the final rows, or their corrections."""
    rows = run(f"SELECT {', '.join(_COLUMNS)} FROM {MINUTE_FINAL} WHERE window_start_ms >= %(lo)s "
               f"AND window_start_ms < %(hi)s LIMIT {_LIMIT}", {"lo": lo, "hi": hi})
    return {tuple(r[c] for c in diff.KEY): r for r in rows}


def late_deliveries(run, lo: int, hi: int) -> dict[tuple[int, str], int]:
    """Late deliveries the streaming job set aside, per (minute window start, ad_id). Late events
    are few, so they are counted here rather than grouped by an expression in Pinot."""
    rows = run(f"SELECT ad_id, event_time FROM late_events WHERE event_time >= %(lo)s AND event_time < %(hi)s "
               f"LIMIT {_LIMIT}", {"lo": lo, "hi": hi})
    return dict(Counter((int(r["event_time"]) - int(r["event_time"]) % 60_000, r["ad_id"]) for r in rows))


def publish(env, rows: list[dict]) -> None:
    """Corrections onto ad_minute's topic, keyed like the Flink sink (JSON of the primary key)."""
    from kafka import KafkaProducer

    from adagg.kafka_io import connection

    producer = KafkaProducer(**connection(env), acks="all", linger_ms=5)
    topic = output_topic(env, "ad-minute").name
    for row in rows:
        key = json.dumps({c: row[c] for c in diff.KEY}, separators=(",", ":")).encode()
        producer.send(topic, key=key, value=json.dumps(row, separators=(",", ":")).encode())
    producer.flush(60)
    producer.close()


def wait_visible(run, rows: list[dict], lo: int, hi: int, timeout_s: float, say) -> None:
    """Until Pinot shows every published correction (its upsert keeps the higher version)."""
    want = {tuple(r[c] for c in diff.KEY): r["version"] for r in rows}
    deadline = time.monotonic() + timeout_s
    while True:
        shown = online_rows(run, lo, hi)
        missing = [k for k, v in want.items() if k not in shown or int(shown[k]["version"]) < v]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Pinot shows {len(want) - len(missing)} of {len(want)} corrections after "
                               f"{timeout_s:.0f} s (first missing: {missing[0]})")
        say(f"  waiting for Pinot: {len(want) - len(missing):,} of {len(want):,} corrections visible")
        time.sleep(2)


def write_report(directory: Path, found: list[diff.Mismatch], summary: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "mismatches.csv").open("w", newline="") as f:
        writer = None
        for m in found:
            line = m.report_row()
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(line), lineterminator="\n")
                writer.writeheader()
            writer.writerow(line)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def reconcile(env, run, lo: int, hi: int, say=print, publish_corrections: bool = True,
              visible_timeout_s: float = 180) -> dict:
    """One pass over the whole hours of [lo, hi); returns its summary (also in the report folder)."""
    lo, hi = lo - lo % HOUR_MS, -(-hi // HOUR_MS) * HOUR_MS
    name = f"{backfill.iso(lo)}_{backfill.iso(hi)}".replace(":", "")
    directory = backfill.reports_dir(env) / "reconcile" / name
    done = backfill.run(env, lo, hi, directory / "batch", say=say)
    batch = done.windows
    online = online_rows(run, lo, hi)
    found = diff.mismatches(online, batch, late_deliveries(run, lo, hi))
    fixes = diff.corrections(found, pipeline_version(), int(time.time() * 1000))
    summary = {"from_ms": lo, "to_ms": hi, **diff.summary(online, batch, found),
               "published_corrections": len(fixes) if publish_corrections else 0,
               "archive_manifests": [{"partition": m["partition"], "sha256": m["sha256"], "rows": m["rows"]}
                                     for m in done.manifests],
               "backfill_seconds": round(done.seconds, 1), "report": str(directory)}
    write_report(directory, found, summary)
    say(f"compared {len(online):,} online rows with {len(batch):,} recomputed: {len(found):,} mismatches "
        f"{summary['mismatches_by_reason'] or ''}".rstrip())
    if not fixes:
        say("  nothing to publish: the serving table already equals the recomputation")
    elif not publish_corrections:
        say(f"  dry run: {len(fixes):,} corrections not published")
    else:
        publish(env, fixes)
        say(f"  published {len(fixes):,} corrections (tier reconciled) to {output_topic(env, 'ad-minute').name}")
        wait_visible(run, fixes, lo, hi, visible_timeout_s, say)
        say("  Pinot shows every correction")
    if publish_corrections:
        with (backfill.archive_dir(env) / LEDGER).open("a") as ledger:
            ledger.write(json.dumps({"from_ms": lo, "to_ms": hi, "archive_manifests": summary["archive_manifests"],
                                     "published_corrections": len(fixes),
                                     "at": backfill.iso(time.time() * 1000)}) + "\n")
    say(f"report: {directory}")
    return summary


def reconciled_hours(env) -> dict[str, str]:
    """partition name -> the manifest checksum it was last reconciled with."""
    path = backfill.archive_dir(env) / LEDGER
    out: dict[str, str] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        for m in json.loads(line)["archive_manifests"]:
            out[m["partition"]] = m["sha256"]
    return out
