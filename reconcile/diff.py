"""The comparison at the heart of reconciliation: online rows against the batch recomputation.

Pure functions over plain dicts, so the rules are testable without Pinot or Flink:
- a *mismatch* is a window key whose measures differ between what the serving table shows and
  what the batch job recomputed from the raw archive (a key missing on one side counts as zeros);
- its *reason* is "late_events" when late deliveries were recorded for that ad and window (the
  streaming job kept them out of the window; the batch job, having no lateness, counted them),
  otherwise "unexplained";
- the hour and day roll-ups (ad_hour, ad_day) are compared the same way, with the batch's
  minutes summed into hours and days (roll_up);
- a *correction* is the batch row for a mismatched key, with tier "reconciled" and a version
  above the online one, so Pinot's upsert replaces the online row. Once published, the online
  row equals the batch row: reconciling again finds no mismatch and publishes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from serving.queries import MEASURES

# The grain of ad_minute, ad_hour and ad_day (their Pinot primary key; adagg.oracle.AGG_KEY): an
# ad seen with two campaigns in a window has two rows. key[0] and key[1] are window and ad.
KEY = ("window_start_ms", "ad_id", "country", "device_type", "campaign_id", "advertiser_id", "vertical")
DESCRIPTIVE = ("window_end_ms", "campaign_id", "advertiser_id", "vertical")
LATE, UNEXPLAINED = "late_events", "unexplained"

Key = tuple[int, str, str, str, str, str, str]
Row = Mapping[str, object]


@dataclass(frozen=True)
class Mismatch:
    key: Key
    online: Row | None
    batch: Row | None
    late_deliveries: int

    @property
    def reason(self) -> str:
        return LATE if self.late_deliveries else UNEXPLAINED

    def report_row(self) -> dict:
        """One line of the mismatch report: online, batch and difference per measure."""
        row: dict = dict(zip(KEY, self.key))
        for m in MEASURES:
            online, batch = _value(self.online, m), _value(self.batch, m)
            row |= {f"online_{m}": online, f"batch_{m}": batch, f"diff_{m}": batch - online}
        return row | {"late_deliveries": self.late_deliveries, "reason": self.reason}


def _value(row: Row | None, measure: str) -> int:
    return int(row[measure]) if row is not None else 0


def same_measures(a: Row | None, b: Row | None) -> bool:
    return all(_value(a, m) == _value(b, m) for m in MEASURES)


def mismatches(online: Mapping[Key, Row], batch: Mapping[Key, Row],
               late: Mapping[tuple[int, str], int]) -> list[Mismatch]:
    """Every key (of either side) whose measures differ, in key order. `late` counts late
    deliveries per (window_start_ms, ad_id)."""
    out = []
    for key in sorted(online.keys() | batch.keys()):
        a, b = online.get(key), batch.get(key)
        if not same_measures(a, b):
            out.append(Mismatch(key, a, b, int(late.get((key[0], key[1]), 0))))
    return out


def corrections(found: list[Mismatch], pipeline_version: str, computed_at_ms: int) -> list[dict]:
    """The rows to publish: each mismatched key's batch row (zeros if the batch has none, so a
    row the archive does not support is withdrawn), tier "reconciled", version above the online
    row's, so the serving table's upsert keeps it."""
    out = []
    for m in found:
        source = m.batch if m.batch is not None else m.online
        row = dict(zip(KEY, m.key))
        row |= {c: source[c] for c in DESCRIPTIVE}
        row |= {c: _value(m.batch, c) for c in MEASURES}
        online_version = int(m.online["version"]) if m.online is not None else 0
        row |= {"tier": "reconciled", "version": max(online_version, 1) + 1, "pipeline_version": pipeline_version,
                "computed_at_ms": computed_at_ms}
        out.append(row)
    return out


def roll_up(rows: Iterable[Row], step_ms: int) -> dict[Key, dict]:
    """Rows of a finer grain (minutes, or hours) summed into windows of step_ms (an hour, a day),
    keyed like them: what ad_hour and ad_day hold, whose Flink windows cascade from the minutes."""
    out: dict[Key, dict] = {}
    for r in rows:
        start = int(r["window_start_ms"]) - int(r["window_start_ms"]) % step_ms
        key = (start, *(r[c] for c in KEY[1:]))
        into = out.get(key)
        if into is None:
            out[key] = {**dict(zip(KEY, key)), "window_end_ms": start + step_ms,
                        **{c: r[c] for c in DESCRIPTIVE if c != "window_end_ms"}, **{m: _value(r, m) for m in MEASURES}}
        else:
            for m in MEASURES:
                into[m] += _value(r, m)
    return out


def late_per_window(late: Mapping[tuple[int, str], int], step_ms: int) -> dict[tuple[int, str], int]:
    """Late deliveries per (minute, ad_id) counted per (window of step_ms, ad_id)."""
    out: dict[tuple[int, str], int] = {}
    for (start, ad), n in late.items():
        window = (start - start % step_ms, ad)
        out[window] = out.get(window, 0) + n
    return out


def changed(found: list[Mismatch]) -> dict[str, int]:
    """Per measure, how much the mismatched windows differ in all: the sum of |batch - online|."""
    return {m: sum(abs(_value(f.batch, m) - _value(f.online, m)) for f in found) for m in MEASURES}


def summary(online: Mapping[Key, Row], batch: Mapping[Key, Row], found: list[Mismatch]) -> dict:
    """Totals of the comparison: keys and measure sums on each side, mismatches by reason, and
    how much the mismatched windows differ per measure (changed)."""
    def total(rows: Mapping[Key, Row]) -> dict:
        return {m: sum(_value(r, m) for r in rows.values()) for m in MEASURES}
    reasons: dict[str, int] = {}
    for m in found:
        reasons[m.reason] = reasons.get(m.reason, 0) + 1
    return {"online_keys": len(online), "batch_keys": len(batch), "mismatched_keys": len(found),
            "mismatches_by_reason": dict(sorted(reasons.items())), "online_totals": total(online),
            "batch_totals": total(batch), "changed": changed(found)}
