"""Read every output topic of the streaming job and compare it with the oracle, exactly.

Used by the demo, the integration and e2e tests. Each output is compared on the oracle's columns,
keyed like its Pinot table. Exactly-once outputs must also hold each key once (a re-emitted
window after a restore would show up twice); the live tier is a changelog, so its last record
per key counts. Every record's Kafka key must be its row's key columns as Flink's JSON key format
writes them (adagg.record_keys), the bytes reconciliation keys its corrections with.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from adagg.kafka_io import read_topic
from adagg.oracle import QUALITY_COLUMNS, TABLE_KEYS, Oracle
from adagg.record_keys import flink_json_key
from adagg.sql import output_topic


@dataclass(frozen=True)
class Output:
    name: str  # the mart, sql/views/mart_<name>.sql
    oracle_table: str  # Oracle attribute
    topic_suffix: str
    changelog: bool = False
    # Key columns the oracle does not know (the source of a delivery: whether it came through the
    # collector is the sender's choice): the rows are summed over them before the comparison.
    summed_over: tuple[str, ...] = ()
    sums: tuple[str, ...] = ()  # the columns summed then


OUTPUTS = (
    Output("ad_minute", "minute", "ad-minute"),
    Output("ad_minute_live", "minute_live", "ad-minute-live", changelog=True),
    Output("ad_hour", "hour", "ad-hour"),
    Output("ad_day", "day", "ad-day"),
    Output("ad_sliding_5m", "sliding", "ad-sliding-5m"),
    Output("top_ads_minute", "top", "top-ads-minute"),
    Output("quality_minute", "quality", "quality-minute", summed_over=("source",), sums=QUALITY_COLUMNS),
)


def record_key_columns(out: Output) -> tuple[str, ...]:
    """The columns an output's records are keyed by: the oracle's key and those summed over."""
    return (*TABLE_KEYS[out.oracle_table], *out.summed_over)


def summed(out: Output, rows: list[dict]) -> list[dict]:
    """An output's rows as the oracle keys them: rows equal but for out.summed_over as one, with
    out.sums summed (the first row's other values kept)."""
    if not out.summed_over:
        return rows
    key_cols, by_key = TABLE_KEYS[out.oracle_table], {}
    for row in rows:
        k = tuple(row[c] for c in key_cols)
        if k not in by_key:
            by_key[k] = {c: v for c, v in row.items() if c not in out.summed_over}
        else:
            for c in out.sums:
                by_key[k][c] += row[c]
    return list(by_key.values())


@dataclass
class Comparison:
    output: str
    expected_rows: int
    actual_rows: int
    missing: list  # keys the oracle has and the topic does not
    unexpected: list  # keys the topic has and the oracle does not
    different: list  # (key, expected, actual) for keys in both
    repeated: list  # keys written more than once to an exactly-once topic
    miskeyed: list = field(default_factory=list)  # (key, Kafka record key) where the record key is not the row's

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.different or self.repeated or self.miskeyed)

    def summary(self) -> str:
        if self.exact:
            return f"{self.output}: {self.actual_rows} rows, EXACT"
        return (f"{self.output}: {self.actual_rows} rows vs {self.expected_rows} expected; "
                f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                f"{len(self.different)} different, {len(self.repeated)} repeated, {len(self.miskeyed)} miskeyed"
                + (f"; e.g. {self.different[0]}" if self.different else "")
                + (f"; e.g. missing {self.missing[0]}" if self.missing else ""))


def _compare(name: str, expected: dict, keyed: list[tuple[bytes | None, dict]], key_cols: tuple[str, ...],
             changelog: bool, out: Output | None = None) -> Comparison:
    """`keyed`: the topic's (Kafka record key, value) pairs, tombstones left out. Records are keyed
    by key_cols; with `out`, compared after summing over out.summed_over (the oracle's key is then
    key_cols without those)."""
    def key(row: dict, cols: tuple[str, ...]):
        return row[cols[0]] if len(cols) == 1 else tuple(row[c] for c in cols)

    records = [value for _, value in keyed]
    miskeyed = [(key(value, key_cols), record_key) for record_key, value in keyed
                if record_key != flink_json_key({c: value[c] for c in key_cols})]
    keys = Counter(key(r, key_cols) for r in records)
    latest = {key(r, key_cols): r for r in records}  # records are in topic order: the last one wins
    if out is not None and out.summed_over:
        oracle_cols = TABLE_KEYS[out.oracle_table]
        latest = {key(r, oracle_cols): r for r in summed(out, list(latest.values()))}
    different = []
    for k in expected.keys() & latest.keys():
        want = expected[k]
        got = {c: latest[k].get(c) for c in want}
        if got != want:
            different.append((k, want, got))
    return Comparison(
        output=name, expected_rows=len(expected), actual_rows=len(latest),
        missing=sorted(expected.keys() - latest.keys()), unexpected=sorted(latest.keys() - expected.keys()),
        different=sorted(different, key=lambda d: d[0]),
        repeated=[] if changelog else sorted(k for k, n in keys.items() if n > 1), miskeyed=miskeyed)


def _window_start(key, key_cols: tuple[str, ...]) -> int:
    return key if len(key_cols) == 1 else key[key_cols.index("window_start_ms")]


def compare_outputs(env, oracle: Oracle, since_ms: int | None = None) -> list[Comparison]:
    """One comparison per output topic, plus the enriched events and the late events.

    With since_ms, only windows starting at or after it and this run's events are compared, so
    a run can be checked on topics that also hold earlier runs; without it, whole topics.
    """
    def in_range(row: dict) -> bool:
        return since_ms is None or row["window_start_ms"] >= since_ms

    results = []
    for out in OUTPUTS:
        records = [(k, v) for k, v in read_topic(env, output_topic(env, out.topic_suffix).name)
                   if v is not None and in_range(v)]
        key_cols = TABLE_KEYS[out.oracle_table]
        expected = {k: v for k, v in getattr(oracle, out.oracle_table).items()
                    if since_ms is None or _window_start(k, key_cols) >= since_ms}
        results.append(_compare(out.name, expected, records, record_key_columns(out), out.changelog, out))
    run_ids = oracle.enriched.keys() | oracle.late_event_ids
    enriched = [(k, v) for k, v in read_topic(env, env.topics.enriched.name)
                if since_ms is None or v["event_id"] in run_ids]
    results.append(_compare("events_enriched", oracle.enriched, enriched, ("event_id",), False))
    late = [v for _, v in read_topic(env, env.topics.late.name) if since_ms is None or v["event_id"] in run_ids]
    late_ids = Counter(v["event_id"] for v in late)
    results.append(Comparison(
        output="late_events", expected_rows=oracle.stats["late_sends"], actual_rows=len(late),
        missing=sorted(oracle.late_event_ids - late_ids.keys()),
        unexpected=sorted(late_ids.keys() - oracle.late_event_ids),
        different=[] if len(late) == oracle.stats["late_sends"] else [("deliveries", oracle.stats["late_sends"], len(late))],
        repeated=[]))
    return results


def wait_for_outputs(env, oracle: Oracle, timeout_s: float = 180, since_ms: int | None = None,
                     say=print) -> list[Comparison]:
    """Compare until every output is exact or the time is up; returns the last comparisons."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        results = compare_outputs(env, oracle, since_ms)
        if all(r.exact for r in results) or time.monotonic() > deadline:
            return results
        pending = [r.output for r in results if not r.exact]
        say(f"  waiting for {', '.join(pending)}")
        time.sleep(5)
