"""The dashboard and report queries, over Pinot, with the tier rule and freshness.

Tier rule (docs/serving.md): a window is *closed* once its final row can exist, i.e. at or before
the newest window the final table of that grain holds (the final tier is emitted for all keys
when the watermark passes a window). Closed windows are answered from the final tables
(ad_minute, ad_hour, ad_day); newer, still open ones from the live tier (ad_minute_live), an hour
or day still open being the sum of its minutes (final where closed, live where not). Every
bucket says which tier answered it. (The reconciled tier of the billing issue will take
precedence over final where it exists.)

Each function takes `run(sql, params) -> rows`, so the logic is testable without Pinot. SQL text
only ever contains fixed table and column names; every value is a bound parameter.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from serving.params import GRAINS, Filters

Run = Callable[[str, dict], list[dict]]

MEASURES = ("impressions", "clicks", "conversions", "invalid_events", "billable_impressions", "billable_clicks",
            "billable_conversions", "spend_micros", "conversion_value_micros")
MINUTE_FINAL, MINUTE_LIVE = "ad_minute", "ad_minute_live"
FINAL_BY_GRAIN = {"minute": "ad_minute", "hour": "ad_hour", "day": "ad_day"}
TIME_COLUMN = {"events_enriched": "event_time", "late_events": "event_time", "reconciliations": "run_at_ms"}  # others: window_start_ms
TABLES = ("ad_minute", "ad_minute_live", "ad_hour", "ad_day", "ad_sliding_5m", "top_ads_minute", "publisher_minute",
          "quality_minute", "events_enriched", "late_events")
MINUTE_MS = GRAINS["minute"]
FINAL_VERSION = 1  # the streaming job's rows; reconciliation publishes corrections above it
_TIERS = ThreadPoolExecutor(8, thread_name_prefix="pinot-tier")  # shared by all requests
_GROUP_LIMIT = 100_000  # Pinot returns 10 groups unless told otherwise
LISTED_MINUTES = 120  # the longest live span asked for minute by minute (_window_filter)
# Pinot 0.11 takes a statement's trailing OPTION(...) out with a regular expression before it
# parses: from the first "option(" whose next ')' ends the statement. A filter value holding
# "option(" would be cut there, inside its literal (the statement then fails to parse).
_PINOT_OPTION = re.compile(r"option\s*\(", re.IGNORECASE)


def once(run: Run) -> Run:
    """A runner that asks Pinot each distinct statement once per answer (the tier boundaries and
    the freshness of a table are the same query)."""
    cache: dict = {}

    def cached(sql: str, params: dict) -> list[dict]:
        key = (sql, tuple(sorted(params.items())))
        if key not in cache:
            cache[key] = run(sql, params)
        return cache[key]
    return cached


def finite_int(value) -> int | None:
    """A MAX over no rows is -Infinity in Pinot's answer (or null): no value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def newest(run: Run, table: str) -> int | None:
    """The newest time-column value a table holds (None when empty): a tier boundary, and freshness.
    Always this exact statement, so the API's BoundaryCache can keep it fresh in the background."""
    rows = run(f"SELECT MAX({TIME_COLUMN.get(table, 'window_start_ms')}) AS newest FROM {table}", {})
    return finite_int(rows[0]["newest"]) if rows else None


def counted(run: Run, table: str) -> tuple[int, int | None]:
    """A table's row count and newest time-column value, from one statement so that both describe
    the same moment. It does not start with `SELECT MAX(`, so the BoundaryCache never keeps it: the
    freshness endpoint answers from Pinot as it is now, not from a boundary up to a second old."""
    column = TIME_COLUMN.get(table, "window_start_ms")
    rows = run(f"SELECT COUNT(*) AS n, MAX({column}) AS newest FROM {table}", {})
    return (int(rows[0]["n"]), finite_int(rows[0]["newest"])) if rows else (0, None)


def closed_until(run: Run, table: str, step_ms: int) -> int | None:
    """The exclusive end of the windows the final table `table` has closed (None: none yet)."""
    closed = newest(run, table)
    return None if closed is None else closed + step_ms


def _window_filter(lo: int, hi: int, listed: bool) -> tuple[str, dict]:
    """Windows [lo, hi) as a condition and its parameters. `listed` names the minute starts one by
    one (the live tier, for a short span): its consuming segment has no range index, so a range
    scans every row it holds, while `IN` is answered by the inverted index on window_start_ms.
    Both select the same rows, since every window starts on a whole minute."""
    first = -(-lo // MINUTE_MS) * MINUTE_MS
    if listed and (hi - first) // MINUTE_MS <= LISTED_MINUTES:
        starts = {f"m{i}": start for i, start in enumerate(range(first, hi, MINUTE_MS))}
        if not starts:
            return "window_start_ms < 0", {}  # no minute starts in the span: nothing matches
        return f"window_start_ms IN ({', '.join(f'%({name})s' for name in starts)})", starts
    return "window_start_ms >= %(lo)s AND window_start_ms < %(hi)s", {"lo": lo, "hi": hi}


def _sums(run: Run, table: str, group_by: tuple[str, ...], keys: dict[str, str], filters: Filters,
          lo: int, hi: int, top: int | None = None) -> list[dict]:
    """SUM of every measure per group over windows [lo, hi), with equality filters; with `top`,
    only the `top` groups with the most billable clicks (ties: the group columns), ranked."""
    if hi <= lo:
        return []
    window, params = _window_filter(lo, hi, listed=table == MINUTE_LIVE)
    conditions = [window]
    for column, value in {**keys, **filters.items()}.items():
        conditions.append(f"{column} = %({column})s")
        params[column] = value
    groups = ", ".join(group_by)
    sums = ", ".join(f"SUM({m}) AS {m}" for m in MEASURES)
    # The highest row version tells whether a reconciliation corrected any row of the group.
    sql = f"SELECT {groups}, {sums}, MAX(version) AS version FROM {table} WHERE {' AND '.join(conditions)} GROUP BY {groups}"
    if top is None:
        sql += f" LIMIT {_GROUP_LIMIT}"
    else:
        # Ranked by Pinot, so only `top` groups travel back. A server trims a ranked GROUP BY to its
        # max(5 * LIMIT, 5000) best groups, which is exact only if it holds every row of a group:
        # trim size 0 turns that off, for any number of servers.
        sql += f" ORDER BY billable_clicks DESC, {groups} LIMIT {int(top)} OPTION(minServerGroupTrimSize=0)"
    rows = run(sql, params)
    for r in rows:  # in place: an answer can hold thousands of groups, and each copy costs
        for m in (*MEASURES, "version"):
            r[m] = int(r[m])
    return rows


def _tier_of(row: dict, tier: str) -> str:
    """A final-tier group with a corrected row (version above 1) is the reconciled tier's."""
    return "reconciled" if tier == "final" and row["version"] > FINAL_VERSION else tier


def _add(into: dict, row: dict) -> None:
    for m in MEASURES:
        into[m] = into.get(m, 0) + row[m]


def with_rates(row: dict) -> dict:
    """CTR = clicks / impressions, raw and billable; None without impressions."""
    out = dict(row)
    out["ctr"] = round(row["clicks"] / row["impressions"], 6) if row["impressions"] else None
    out["billable_ctr"] = (round(row["billable_clicks"] / row["billable_impressions"], 6)
                           if row["billable_impressions"] else None)
    return out


def _minute_tiers(lo: int, hi: int, closed_until: int | None) -> tuple[tuple[str, str, int, int], ...]:
    """(table, tier, from, to) for minute windows [lo, hi): final up to closed_until (exclusive),
    live after. A part may be empty."""
    cut = lo if closed_until is None else max(lo, min(hi, closed_until))
    return (MINUTE_FINAL, "final", lo, cut), (MINUTE_LIVE, "live", cut, hi)


def minutes(run: Run, group_by: tuple[str, ...], keys: dict[str, str], filters: Filters, lo: int, hi: int,
            closed_until: int | None) -> dict[tuple, tuple[dict, set]]:
    """Minute windows in [lo, hi), final up to closed_until (exclusive), live after, summed per
    group: {group values: (measures, tiers used)}."""
    parts = _minute_tiers(lo, hi, closed_until)
    # The two tiers' statements are independent and mostly wait on Pinot: ask both at once.
    answers = _TIERS.map(lambda part: _sums(run, part[0], group_by, keys, filters, part[2], part[3]), parts)
    out: dict[tuple, tuple[dict, set]] = {}
    for (_, tier, _, _), rows in zip(parts, answers):
        for row in rows:
            key = tuple(row[g] for g in group_by)
            measures, tiers = out.setdefault(key, ({}, set()))
            _add(measures, row)
            tiers.add(_tier_of(row, tier))
    return out


def _tier(tiers: set) -> str:
    return "+".join(t for t in ("reconciled", "final", "live") if t in tiers) or "none"


def freshness(run: Run, tables: tuple[str, ...] = TABLES, now_ms: int | None = None, rows: bool = False) -> dict[str, dict]:
    """Per table: the newest event time it shows and how far behind now that is; with `rows`, also
    its row count (a whole-table count: the freshness endpoint asks for it, dashboards do not)."""
    now_ms = now_ms or int(time.time() * 1000)
    out = {}
    for table in tables:
        count, newest_ms = counted(run, table) if rows else (None, newest(run, table))
        out[table] = {**({"rows": count} if rows else {}), "newest_ms": newest_ms,
                      "time_column": TIME_COLUMN.get(table, "window_start_ms"),
                      "age_s": round((now_ms - newest_ms) / 1000, 1) if newest_ms is not None else None}
    return out


def ad_metrics(run: Run, ad_id: str, grain: str, lo: int, hi: int, filters: Filters) -> dict:
    """One ad's measures per minute, hour or day bucket over [lo, hi)."""
    run = once(run)
    step = GRAINS[grain]
    minute_closed_until = closed_until(run, MINUTE_FINAL, MINUTE_MS)
    buckets: dict[int, tuple[dict, set]] = {}
    if grain == "minute":
        for (start,), value in minutes(run, ("window_start_ms",), {"ad_id": ad_id}, filters, lo, hi,
                                       minute_closed_until).items():
            buckets[int(start)] = value
    else:
        table = FINAL_BY_GRAIN[grain]
        table_closed_until = closed_until(run, table, step)
        open_from = lo if table_closed_until is None else max(lo, min(hi, table_closed_until))
        for row in _sums(run, table, ("window_start_ms",), {"ad_id": ad_id}, filters, lo, open_from):
            buckets[int(row["window_start_ms"])] = ({m: row[m] for m in MEASURES}, {_tier_of(row, "final")})
        for (start,), (measures, tiers) in minutes(run, ("window_start_ms",), {"ad_id": ad_id}, filters, open_from,
                                                   hi, minute_closed_until).items():
            bucket = int(start) - int(start) % step
            into, used = buckets.setdefault(bucket, ({}, set()))
            _add(into, measures)
            # A period whose last minute is not closed yet is provisional, whichever tier its minutes came from.
            still_open = minute_closed_until is None or bucket + step > minute_closed_until
            used |= tiers | ({"live"} if still_open else set())
    series = [{"window_start_ms": start, "window_end_ms": start + step, "tier": _tier(tiers), **with_rates(m)}
              for start, (m, tiers) in sorted(buckets.items())]
    used = set().union(*(t for _, t in buckets.values())) if buckets else set()
    return {"ad_id": ad_id, "grain": grain, "from_ms": lo, "to_ms": hi, "filters": filters.items(),
            "tier": _tier(used), "buckets": series,
            "freshness": freshness(run, (FINAL_BY_GRAIN[grain], MINUTE_LIVE))}


def top_ads(run: Run, n: int, last_minutes: int, filters: Filters) -> dict:
    """The n ads with the most billable clicks over the last `last_minutes` minute windows of event
    time, ending with the newest window any tier shows (ties: ad_id)."""
    run = once(run)
    closed = newest(run, MINUTE_FINAL)
    live = newest(run, MINUTE_LIVE)
    ends = [t for t in (closed, live) if t is not None]
    if not ends:
        return {"n": n, "last_minutes": last_minutes, "filters": filters.items(), "tier": "none", "ads": [],
                "freshness": freshness(run, (MINUTE_FINAL, MINUTE_LIVE))}
    hi = max(ends) + MINUTE_MS
    lo = hi - last_minutes * MINUTE_MS
    closed_end = closed_until(run, MINUTE_FINAL, MINUTE_MS)  # `once`: the statement above, not a new one
    parts = [part for part in _minute_tiers(lo, hi, closed_end) if part[2] < part[3]]
    option_free = not any(_PINOT_OPTION.search(v) for v in filters.items().values())
    if len(parts) == 1 and option_free:
        # One tier holds the whole span: Pinot ranks, and n ads come back instead of every ad.
        table, tier, _, _ = parts[0]
        ranked = [((r["ad_id"],), ({m: r[m] for m in MEASURES}, {_tier_of(r, tier)}))
                  for r in _sums(run, table, ("ad_id",), {}, filters, lo, hi, top=n)]
    else:
        # An ad's rank depends on its sum over both tiers, so every ad's sums are merged here.
        # (So does a filter value that the ranked statement's OPTION clause would trip over.)
        groups = minutes(run, ("ad_id",), {}, filters, lo, hi, closed_end)
        ranked = sorted(groups.items(), key=lambda kv: (-kv[1][0]["billable_clicks"], kv[0][0]))[:n]
    used = set().union(*(t for _, (_, t) in ranked))
    return {"n": n, "last_minutes": last_minutes, "from_ms": lo, "to_ms": hi, "filters": filters.items(),
            "tier": _tier(used),
            "ads": [{"rank": i + 1, "ad_id": ad, **with_rates(m), "tier": _tier(t)}
                    for i, ((ad,), (m, t)) in enumerate(ranked)],
            "freshness": freshness(run, (MINUTE_FINAL, MINUTE_LIVE))}


def summary(run: Run, level: str, key: str, lo: int, hi: int, filters: Filters) -> dict:
    """Totals of a campaign (broken down by ad) or an advertiser (by campaign) over [lo, hi)."""
    run = once(run)
    column, child = {"campaign": ("campaign_id", "ad_id"), "advertiser": ("advertiser_id", "campaign_id")}[level]
    groups = minutes(run, (child,), {column: key}, filters, lo, hi, closed_until(run, MINUTE_FINAL, MINUTE_MS))
    total: dict = {m: 0 for m in MEASURES}
    for measures, _ in groups.values():
        _add(total, measures)
    used = set().union(*(t for _, t in groups.values())) if groups else set()
    return {level + "_id": key, "from_ms": lo, "to_ms": hi, "filters": filters.items(), "tier": _tier(used),
            "total": with_rates(total),
            "by_" + child.removesuffix("_id"): [{child: k[0], **with_rates(m), "tier": _tier(t)}
                                                for k, (m, t) in sorted(groups.items())],
            "freshness": freshness(run, (MINUTE_FINAL, MINUTE_LIVE))}


def late_events(run: Run, lo: int, hi: int, ad_id: str | None = None) -> dict:
    """Late event deliveries (by event time in [lo, hi)) per event type: what reconciliation folds in."""
    conditions, params = ["event_time >= %(lo)s", "event_time < %(hi)s"], {"lo": lo, "hi": hi}
    if ad_id:
        conditions.append("ad_id = %(ad_id)s")
        params["ad_id"] = ad_id
    rows = run(f"SELECT event_type, COUNT(*) AS n FROM late_events WHERE {' AND '.join(conditions)} "
               f"GROUP BY event_type LIMIT 100", params)
    by_type = defaultdict(int, {r["event_type"]: int(r["n"]) for r in rows})
    return {"from_ms": lo, "to_ms": hi, "ad_id": ad_id, "late_events": sum(by_type.values()),
            "by_event_type": dict(sorted(by_type.items())), "freshness": freshness(run, ("late_events",))}


QUALITY_TABLE = "quality_minute"
QUALITY_COUNTS = ("deliveries", "unique_events", "duplicate_deliveries", "valid_events", "billable_events",
                  "billing_repeats")
QUALITY_MINUTES = 60  # the span the data-quality SLOs are measured over (docs/slo.md)


def quality(run: Run, minutes: int = QUALITY_MINUTES) -> dict:
    """Per source, the data-quality counts over the newest `minutes` minutes of event time the
    quality table holds (its windows are final: each is written once, when it closes), and the late
    deliveries of the same minutes from the late events, whenever they arrived.
    {"from_ms", "to_ms", "sources": {source: {count: n}}}; no span while the table is empty."""
    newest_start = newest(run, QUALITY_TABLE)
    if newest_start is None:
        return {"from_ms": None, "to_ms": None, "sources": {}}
    hi = newest_start + MINUTE_MS
    lo = hi - minutes * MINUTE_MS
    sums = ", ".join(f"SUM({c}) AS {c}" for c in QUALITY_COUNTS)
    sources: dict[str, dict] = {}
    for row in run(f"SELECT source, {sums} FROM {QUALITY_TABLE} WHERE window_start_ms >= %(lo)s "
                   f"AND window_start_ms < %(hi)s GROUP BY source LIMIT {_GROUP_LIMIT}", {"lo": lo, "hi": hi}):
        sources[row["source"]] = {**{c: int(row[c]) for c in QUALITY_COUNTS}, "late_deliveries": 0}
    for row in run(f"SELECT source, COUNT(*) AS late_deliveries FROM late_events WHERE event_time >= %(lo)s "
                   f"AND event_time < %(hi)s GROUP BY source LIMIT {_GROUP_LIMIT}", {"lo": lo, "hi": hi}):
        counts = sources.setdefault(row["source"], {**dict.fromkeys(QUALITY_COUNTS, 0), "late_deliveries": 0})
        counts["late_deliveries"] = int(row["late_deliveries"])
    return {"from_ms": lo, "to_ms": hi, "sources": sources}


def newest_reconciliation(run: Run) -> list[dict]:
    """The records of the newest reconcile pass (reconcile/history.py: one per grain and measure),
    or [] before the first."""
    newest_run = newest(run, "reconciliations")
    if newest_run is None:
        return []
    return run("SELECT * FROM reconciliations WHERE run_at_ms = %(run_at_ms)s LIMIT 1000", {"run_at_ms": newest_run})


# Per tier, the table whose rows carry the newest collector acceptance among their events
# (max_received_at_ms): the live tier's own, and for the final tier the quality table, whose
# windows close and commit with the final tier's (docs/slo.md#freshness).
FRESHNESS_TABLES = {"live": MINUTE_LIVE, "final": QUALITY_TABLE}
FRESHNESS_SPAN_MINUTES = 60  # the newest windows searched: an event is accepted near its event time


def received_lags(run: Run, now_ms: int | None = None) -> dict[str, float | None]:
    """Per tier, now minus the newest collector acceptance its table shows, in seconds: with traffic
    flowing, how long an accepted event takes to become visible there. None: no row carries one
    (an empty table, or traffic that did not come through the collector)."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    out: dict[str, float | None] = {}
    for tier, table in FRESHNESS_TABLES.items():
        newest_window = newest(run, table)
        received = None
        if newest_window is not None:
            rows = run(f"SELECT MAX(max_received_at_ms) AS received FROM {table} WHERE window_start_ms >= %(lo)s",
                       {"lo": newest_window - FRESHNESS_SPAN_MINUTES * MINUTE_MS})
            received = finite_int(rows[0]["received"]) if rows else None
        out[tier] = None if received is None or received <= 0 else (now - received) / 1000
    return out
