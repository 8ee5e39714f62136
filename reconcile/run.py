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
   until Pinot shows every correction, then records itself in the archive's reconcile ledger;
6. it reads the serving tables again and publishes its history records (reconcile/history.py):
   served against billed per measure, what changed, what is left (nothing, if it worked), its cost.
The hour roll-up (ad_hour) is compared and corrected the same way, from the batch's minutes
summed per hour; the day roll-up (ad_day) for every day the pass can recompute whole (_recomputed).
A second pass over the same range finds the corrected rows equal to the batch and publishes nothing.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from pathlib import Path

from adagg.sql import output_topic, pipeline_version
from archive.manifest import HOUR_MS, Partition, read_manifest
from reconcile import backfill, diff, history
from serving.queries import MEASURES, MINUTE_FINAL

DAY_MS = 86_400_000
# grain: (serving table, output topic name, window length)
GRAINS = {"minute": (MINUTE_FINAL, "ad-minute", 60_000), "hour": ("ad_hour", "ad-hour", HOUR_MS),
          "day": ("ad_day", "ad-day", DAY_MS)}

LEDGER = "_RECONCILED.jsonl"  # at the archive root: one line per reconcile pass
_COLUMNS = tuple(dict.fromkeys((*diff.KEY, *diff.DESCRIPTIVE, *MEASURES, "version")))  # each column once
_LIMIT = 10_000_000


def online_rows(run, lo: int, hi: int, table: str = MINUTE_FINAL) -> dict[tuple, dict]:
    """What a final table (ad_minute, ad_hour, ad_day) shows now for windows in [lo, hi): the
    final rows, or their corrections."""
    rows = run(f"SELECT {', '.join(_COLUMNS)} FROM {table} WHERE window_start_ms >= %(lo)s "
               f"AND window_start_ms < %(hi)s LIMIT {_LIMIT}", {"lo": lo, "hi": hi})
    return {tuple(r[c] for c in diff.KEY): r for r in rows}


def late_deliveries(run, lo: int, hi: int) -> dict[tuple[int, str], int]:
    """Late deliveries the streaming job set aside, per (minute window start, ad_id). Late events
    are few, so they are counted here rather than grouped by an expression in Pinot."""
    rows = run(f"SELECT ad_id, event_time FROM late_events WHERE event_time >= %(lo)s AND event_time < %(hi)s "
               f"LIMIT {_LIMIT}", {"lo": lo, "hi": hi})
    return dict(Counter((int(r["event_time"]) - int(r["event_time"]) % 60_000, r["ad_id"]) for r in rows))


def publish(env, rows: list[dict], topic_name: str = "ad-minute") -> None:
    """Corrections onto a final table's topic, keyed like the Flink sink: the JSON of the primary
    key, byte for byte as Flink writes it (adagg.record_keys), so that a correction lands in the
    partition of the row it replaces (Pinot's upsert is per partition)."""
    from kafka import KafkaProducer

    from adagg.kafka_io import connection
    from adagg.record_keys import flink_json_key

    producer = KafkaProducer(**connection(env), acks="all", linger_ms=5)
    topic = output_topic(env, topic_name).name
    for row in rows:
        key = flink_json_key({c: row[c] for c in diff.KEY})
        producer.send(topic, key=key, value=json.dumps(row, separators=(",", ":")).encode())
    producer.flush(60)
    producer.close()


def wait_visible(run, rows: list[dict], lo: int, hi: int, timeout_s: float, say, table: str = MINUTE_FINAL) -> None:
    """Until Pinot shows every published correction (its upsert keeps the higher version)."""
    want = {tuple(r[c] for c in diff.KEY): r["version"] for r in rows}
    deadline = time.monotonic() + timeout_s
    while True:
        shown = online_rows(run, lo, hi, table)
        missing = [k for k, v in want.items() if k not in shown or int(shown[k]["version"]) < v]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Pinot shows {len(want) - len(missing)} of {len(want)} corrections after "
                               f"{timeout_s:.0f} s (first missing: {missing[0]})")
        say(f"  waiting for Pinot: {len(want) - len(missing):,} of {len(want):,} corrections visible")
        time.sleep(2)


def write_mismatches(path: Path, found: list[diff.Mismatch]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = None
        for m in found:
            line = m.report_row()
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(line), lineterminator="\n")
                writer.writeheader()
            writer.writerow(line)


def _rest_of_day_reconciled(root: Path, reconciled: dict[str, str], day: int, lo: int, hi: int) -> bool:
    """Whether each hour of the day outside [lo, hi) that holds data is already reconciled with
    its current manifest (reconciled: the ledger), so that ad_hour shows its recomputed numbers."""
    outside = [Partition.of(ms) for ms in range(day, day + DAY_MS, HOUR_MS) if not lo <= ms < hi]
    manifests = {p.name: read_manifest(root / p.name) for p in outside if (root / p.name).exists()}
    return all(m is not None and reconciled.get(name) == m["sha256"] for name, m in manifests.items())


def _recomputed(env, run, lo: int, hi: int, minutes: dict) -> tuple[dict, dict, list[int]]:
    """(batch rows, online rows) per grain, and the days whose day rows are compared: those the
    pass can recompute whole. The streaming job closed the day (ad_day shows it: its windows fire
    once the watermark passes the day's end), and the rest of the day is reconciled; the day row
    is then the batch's minutes of the day in [lo, hi) plus what ad_hour shows for its other hours."""
    batch = {"minute": minutes, "hour": diff.roll_up(minutes.values(), HOUR_MS), "day": {}}
    online = {"minute": online_rows(run, lo, hi), "hour": online_rows(run, lo, hi, "ad_hour"), "day": {}}
    days, root, reconciled = [], backfill.archive_dir(env), reconciled_hours(env)
    for day in range(lo - lo % DAY_MS, hi, DAY_MS):
        # The ledger (local) first: Pinot is asked only for a day that could be compared.
        if not _rest_of_day_reconciled(root, reconciled, day, lo, hi):
            continue
        shown = online_rows(run, day, day + DAY_MS, "ad_day")
        if not shown:
            continue
        around = [r for span in ((day, lo), (hi, day + DAY_MS)) if span[0] < span[1]
                  for r in online_rows(run, *span, "ad_hour").values()]
        inside = [r for r in batch["hour"].values() if day <= r["window_start_ms"] < day + DAY_MS]
        batch["day"] |= diff.roll_up([*inside, *around], DAY_MS)
        online["day"] |= shown
        days.append(day)
    return batch, online, days


def reconcile(env, run, lo: int, hi: int, say=print, publish_corrections: bool = True,
              visible_timeout_s: float = 180) -> dict:
    """One pass over the whole hours of [lo, hi); returns its summary (also in the report folder):
    the minute grain's figures at the top, the hour's and day's under "hour" and "day"."""
    lo, hi = lo - lo % HOUR_MS, -(-hi // HOUR_MS) * HOUR_MS
    name = f"{backfill.iso(lo)}_{backfill.iso(hi)}".replace(":", "")
    directory = backfill.reports_dir(env) / "reconcile" / name
    done = backfill.run(env, lo, hi, directory / "batch", say=say)
    batch, online, days = _recomputed(env, run, lo, hi, done.windows)
    late = late_deliveries(run, lo - lo % DAY_MS, -(-hi // DAY_MS) * DAY_MS)
    now_ms, version = int(time.time() * 1000), pipeline_version()
    found, fixes, summaries = {}, {}, {}
    for grain, (_, _, step) in GRAINS.items():
        found[grain] = diff.mismatches(online[grain], batch[grain], diff.late_per_window(late, step))
        fixes[grain] = diff.corrections(found[grain], version, now_ms)
        summaries[grain] = {**diff.summary(online[grain], batch[grain], found[grain]),
                            "published_corrections": len(fixes[grain]) if publish_corrections else 0}
        write_mismatches(directory / ("mismatches.csv" if grain == "minute" else f"mismatches_{grain}.csv"),
                         found[grain])
    summary = {"from_ms": lo, "to_ms": hi, **summaries["minute"],
               "hour": summaries["hour"], "day": {**summaries["day"], "days": [backfill.iso(d)[:10] for d in days]},
               "archive_manifests": [{"partition": m["partition"], "sha256": m["sha256"], "rows": m["rows"]}
                                     for m in done.manifests],
               "backfill_seconds": round(done.seconds, 1), "backfill_cpu_seconds": done.cpu_seconds,
               "report": str(directory)}
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for grain, (table, topic, _) in GRAINS.items():
        say(f"{grain}: compared {len(online[grain]):,} rows of {table} with {len(batch[grain]):,} recomputed: "
            f"{len(found[grain]):,} mismatches {summaries[grain]['mismatches_by_reason'] or ''}".rstrip())
        if not fixes[grain]:
            continue
        if not publish_corrections:
            say(f"  dry run: {len(fixes[grain]):,} corrections not published")
            continue
        publish(env, fixes[grain], topic)
        say(f"  published {len(fixes[grain]):,} corrections (tier reconciled) to {output_topic(env, topic).name}")
        span = (min(days), max(days) + DAY_MS) if grain == "day" else (lo, hi)
        wait_visible(run, fixes[grain], *span, visible_timeout_s, say, table)
        say("  Pinot shows every correction")
    if not any(fixes.values()):
        say("nothing to publish: the serving tables already equal the recomputation")
    if publish_corrections:
        left = _residual(run, lo, hi, days, batch)
        history.publish(env, history.records(summary, left, {
            "backfill_seconds": round(done.seconds, 3), "cpu_seconds": done.cpu_seconds or 0.0,
            "rows_read": done.rows_read, **history.archive_cost(done.manifests)}, now_ms, version))
        summary |= {"residual": left, "run_at_ms": now_ms}
        (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        with (backfill.archive_dir(env) / LEDGER).open("a") as ledger:
            ledger.write(json.dumps({"from_ms": lo, "to_ms": hi, "archive_manifests": summary["archive_manifests"],
                                     "published_corrections": sum(map(len, fixes.values())),
                                     "at": backfill.iso(time.time() * 1000)}) + "\n")
    say(f"report: {directory}")
    return summary


def _residual(run, lo: int, hi: int, days: list[int], batch: dict) -> dict[str, dict[str, int]]:
    """Per grain and measure, how much the serving tables still differ from the recomputation,
    read again once the corrections are visible: zeros when the pass did its job."""
    now = {"minute": online_rows(run, lo, hi), "hour": online_rows(run, lo, hi, "ad_hour"), "day": {}}
    for day in days:
        now["day"] |= online_rows(run, day, day + DAY_MS, "ad_day")
    return {grain: diff.changed(diff.mismatches(now[grain], batch[grain], {})) for grain in GRAINS}


def reconciled_hours(env) -> dict[str, str]:
    """partition name -> the manifest checksum it was last reconciled with."""
    path = backfill.archive_dir(env) / LEDGER
    out: dict[str, str] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        for m in json.loads(line)["archive_manifests"]:
            out[m["partition"]] = m["sha256"]
    return out
