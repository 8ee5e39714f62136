"""The query API without Pinot: parameter checks (injection included), the tier rule over a
small in-memory table set, and the HTTP layer (400s, 503s, OpenAPI)."""

from __future__ import annotations

import random
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from adagg import fuzz_ids
from serving import params, queries
from serving.api import create_app
from serving.params import BadParameter, Filters
from serving.runner import PinotUnavailable, bind, literal

M, H = 60_000, 3_600_000
T0 = 1_767_225_600_000  # an hour and day boundary
# Injection attempts. As ids they are valid (the contract accepts any text): they must travel as
# one quoted literal. In any other parameter they are refused.
INJECTIONS = ["' OR '1'='1", "ad-1' --", "ad-1; DROP TABLE ad_minute", "*", "ad_id) OR (1=1", "%(lo)s",
              "ad 1", "ad-1\n", "\u00e9t\u00e9", "x' OPTION(skipUpsert=true) --", "a\\' OR 1=1 --"]


class MemoryPinot:
    """Evaluates exactly the query shapes serving.queries sends, over in-memory rows."""

    def __init__(self, tables: dict[str, list[dict]]):
        self.tables, self.sql = tables, []

    def __call__(self, sql: str, bound: dict) -> list[dict]:
        self.sql.append((sql, bound))
        table = re.search(r" FROM (\w+)", sql)[1]
        rows = self.tables.get(table, [])
        if sql.startswith("SELECT MAX("):
            column = re.match(r"SELECT MAX\((\w+)\)", sql)[1]
            since = re.search(r"WHERE \w+ >= (\d+)$", sql)
            rows = [r for r in rows if not since or r[column] >= int(since[1])]
            return [{"newest": max((r[column] for r in rows), default=float("-inf"))}]  # Pinot: -Infinity
        if sql.startswith("SELECT COUNT(*) AS n, MAX(") and not bound:
            column = re.search(r"MAX\((\w+)\)", sql)[1]
            return [{"n": len(rows), "newest": max((r[column] for r in rows), default=float("-inf"))}]
        listed = {name for name in bound if re.fullmatch(r"m\d+", name)}  # window_start_ms IN (...)
        for column, value in bound.items():
            if column not in ("lo", "hi", *listed):
                rows = [r for r in rows if r[column] == value]
        time_col = "event_time" if table == "late_events" else "window_start_ms"
        if listed:
            rows = [r for r in rows if r[time_col] in {bound[name] for name in listed}]
        elif "lo" in bound:
            rows = [r for r in rows if bound["lo"] <= r[time_col] < bound["hi"]]
        else:
            assert "window_start_ms < 0" in sql
            rows = []
        groups = [g.strip() for g in re.match(r"SELECT (.*?), (SUM|COUNT)", sql)[1].split(",")]
        sums = re.findall(r"SUM\((\w+)\) AS \1", sql)
        counted = re.search(r"COUNT\(\*\) AS (\w+)", sql)
        out: dict = {}
        for r in rows:
            key = tuple(r[g] for g in groups)
            agg = out.setdefault(key, {**dict(zip(groups, key)), "n": 0, "version": 0, **{m: 0 for m in sums}})
            agg["n"] += 1
            if counted:
                agg[counted[1]] = agg["n"]
            agg["version"] = max(agg["version"], r.get("version", 1))
            for m in sums:
                agg[m] += r.get(m, 0)
        ranked = re.search(r"ORDER BY billable_clicks DESC, (\w+) LIMIT (\d+) OPTION\(minServerGroupTrimSize=0\)$", sql)
        if ranked:
            return sorted(out.values(), key=lambda r: (-r["billable_clicks"], r[ranked[1]]))[:int(ranked[2])]
        return list(out.values())


def row(start: int, ad: str = "ad-1", clicks: int = 1, **extra) -> dict:
    base = {m: 0 for m in queries.MEASURES}
    return {**base, "window_start_ms": start, "ad_id": ad, "campaign_id": "camp-1", "advertiser_id": "adv-1",
            "country": "US", "device_type": "mobile", "clicks": clicks, "billable_clicks": clicks,
            "impressions": 10 * clicks, "billable_impressions": 10 * clicks, **extra}


@pytest.fixture
def pinot() -> MemoryPinot:
    # Final minutes up to T0+2m; live rows for every minute (stale for closed ones), newer up to T0+4m.
    final = [row(T0), row(T0 + M, clicks=2), row(T0 + 2 * M, clicks=3), row(T0 + M, ad="ad-2", clicks=5)]
    live = [row(T0, clicks=99), row(T0 + 3 * M, clicks=4), row(T0 + 4 * M, clicks=6), row(T0 + 4 * M, ad="ad-2",
                                                                                           clicks=1)]
    hour = [row(T0 - H, clicks=50)]
    late = [{"event_time": T0 + 5, "event_type": "click", "ad_id": "ad-1"},
            {"event_time": T0 + 6, "event_type": "impression", "ad_id": "ad-2"}]
    return MemoryPinot({"ad_minute": final, "ad_minute_live": live, "ad_hour": hour, "late_events": late})


# ---- the tier rule

def test_minute_series_takes_final_where_closed_and_live_after(pinot):
    answer = queries.ad_metrics(pinot, "ad-1", "minute", T0, T0 + 5 * M, Filters())
    got = [(b["window_start_ms"] - T0) // M for b in answer["buckets"]]
    assert got == [0, 1, 2, 3, 4]
    assert [b["clicks"] for b in answer["buckets"]] == [1, 2, 3, 4, 6]   # not the stale live 99
    assert [b["tier"] for b in answer["buckets"]] == ["final"] * 3 + ["live"] * 2
    assert answer["tier"] == "final+live" and answer["buckets"][0]["ctr"] == 0.1


def test_the_live_tier_names_its_minutes_so_pinot_answers_from_the_inverted_index(pinot):
    queries.ad_metrics(pinot, "ad-1", "minute", T0, T0 + 5 * M, Filters())
    sums = {re.search(r" FROM (\w+)", sql)[1]: (sql, bound) for sql, bound in pinot.sql if "SUM(" in sql}
    live_sql, live_bound = sums["ad_minute_live"]
    assert "window_start_ms IN (%(m0)s, %(m1)s)" in live_sql and "window_start_ms >=" not in live_sql
    assert (live_bound["m0"], live_bound["m1"]) == (T0 + 3 * M, T0 + 4 * M)
    assert "window_start_ms >= %(lo)s AND window_start_ms < %(hi)s" in sums["ad_minute"][0]


def test_a_listed_span_selects_the_same_minutes_as_the_range():
    # An unaligned start lists from the next whole minute, like `>= lo` over minute-aligned rows.
    condition, bound = queries._window_filter(T0 + 1, T0 + 3 * M, listed=True)
    assert condition == "window_start_ms IN (%(m0)s, %(m1)s)" and bound == {"m0": T0 + M, "m1": T0 + 2 * M}
    assert queries._window_filter(T0 + 1, T0 + M, listed=True) == ("window_start_ms < 0", {})  # no whole minute
    longest = queries.LISTED_MINUTES
    assert len(queries._window_filter(T0, T0 + longest * M, listed=True)[1]) == longest
    assert queries._window_filter(T0, T0 + (longest + 1) * M, listed=True)[1] == {"lo": T0, "hi": T0 + (longest + 1) * M}
    assert queries._window_filter(T0, T0 + M, listed=False)[1] == {"lo": T0, "hi": T0 + M}


def test_hour_series_uses_the_hour_table_where_closed_and_sums_minutes_where_open(pinot):
    answer = queries.ad_metrics(pinot, "ad-1", "hour", T0 - H, T0 + H, Filters())
    assert [(b["window_start_ms"], b["clicks"], b["tier"]) for b in answer["buckets"]] == [
        (T0 - H, 50, "final"), (T0, 1 + 2 + 3 + 4 + 6, "final+live")]


def test_filters_and_top_ads(pinot):
    assert queries.ad_metrics(pinot, "ad-1", "minute", T0, T0 + 5 * M, Filters(country="FR"))["buckets"] == []
    top = queries.top_ads(pinot, 2, 5, Filters())
    assert (top["from_ms"], top["to_ms"]) == (T0, T0 + 5 * M)
    assert [(a["ad_id"], a["billable_clicks"]) for a in top["ads"]] == [("ad-1", 16), ("ad-2", 6)]
    assert queries.top_ads(pinot, 1, 1, Filters())["ads"][0]["ad_id"] == "ad-1"   # the newest minute only


def test_top_ads_in_one_tier_are_ranked_by_pinot_and_across_tiers_merged_here(pinot):
    pinot.tables["ad_minute_live"] += [row(T0 + 4 * M, ad=f"ad-{i}", clicks=c) for i, c in ((3, 6), (4, 9), (5, 2))]
    pinot.sql.clear()
    newest = queries.top_ads(pinot, 3, 1, Filters())   # only T0+4m: live
    ranked = [sql for sql, _ in pinot.sql if "ORDER BY" in sql]
    assert len(ranked) == 1 and " FROM ad_minute_live " in ranked[0] and ranked[0].endswith(
        "ORDER BY billable_clicks DESC, ad_id LIMIT 3 OPTION(minServerGroupTrimSize=0)")
    assert [(a["ad_id"], a["billable_clicks"], a["tier"]) for a in newest["ads"]] == [
        ("ad-4", 9, "live"), ("ad-1", 6, "live"), ("ad-3", 6, "live")]   # ties by ad_id
    assert newest["tier"] == "live"
    pinot.sql.clear()
    both = queries.top_ads(pinot, 2, 5, Filters())     # T0..T0+4m: final and live
    assert not any("ORDER BY" in sql for sql, _ in pinot.sql)
    assert [(a["ad_id"], a["billable_clicks"], a["tier"]) for a in both["ads"]] == [
        ("ad-1", 16, "final+live"), ("ad-4", 9, "live")]


def test_summaries_and_late_events(pinot):
    campaign = queries.summary(pinot, "campaign", "camp-1", T0, T0 + 5 * M, Filters())
    assert campaign["total"]["clicks"] == 1 + 2 + 3 + 4 + 6 + 5 + 1
    assert [a["ad_id"] for a in campaign["by_ad"]] == ["ad-1", "ad-2"]
    late = queries.late_events(pinot, T0, T0 + M)
    assert late["late_events"] == 2 and late["by_event_type"] == {"click": 1, "impression": 1}


def test_values_only_ever_travel_as_bound_parameters(pinot):
    queries.ad_metrics(pinot, "ad-1", "hour", T0 - H, T0 + H, Filters(country="US", device_type="mobile"))
    for sql, bound in pinot.sql:
        assert "ad-1" not in sql and "'US'" not in sql and "mobile" not in sql
        assert set(re.findall(r"%\((\w+)\)s", sql)) == set(bound)


def test_empty_tables_answer_empty_not_errors():
    empty = MemoryPinot({})
    assert queries.ad_metrics(empty, "ad-1", "day", T0, T0 + 86_400_000, Filters())["buckets"] == []
    assert queries.top_ads(empty, 5, 5, Filters())["ads"] == []
    assert queries.freshness(empty, ("ad_minute",), rows=True)["ad_minute"] == {
        "rows": 0, "newest_ms": None, "time_column": "window_start_ms", "age_s": None}


# ---- parameters

@pytest.mark.parametrize("value", INJECTIONS)
def test_any_contract_valid_id_is_a_parameter_and_binds_as_one_literal(value):
    assert params.ident("ad_id", value) == value
    statement = bind("SELECT 1 FROM ad_minute WHERE ad_id = %(ad_id)s AND window_start_ms >= %(lo)s LIMIT 1",
                     {"ad_id": value, "lo": 5})
    assert statement == "SELECT 1 FROM ad_minute WHERE ad_id = " + literal(value) + " AND window_start_ms >= 5 LIMIT 1"
    assert _literals(statement) == [value]


@pytest.mark.parametrize("name, value", [("ad_id", "a" * 65), ("campaign_id", "🚀" * 65),
                                         ("advertiser_id", "x" * 65), ("ad_id", "a\ud800b")])
def test_ids_the_contract_refuses_are_refused(name, value):
    with pytest.raises(BadParameter, match=name):
        params.ident(name, value)
    if "\ud800" not in value:
        assert params.ident(name, value[:64]) == value[:64]


def _literals(statement: str) -> list[str]:
    """The string literals of a statement, read as Pinot (Calcite) reads them: quote to quote,
    a doubled quote standing for one. Nothing else in the statement may hold a quote."""
    out, i = [], 0
    while (start := statement.find("'", i)) >= 0:
        j, value = start + 1, []
        while True:
            end = statement.index("'", j)
            value.append(statement[j:end])
            if statement[end + 1:end + 2] != "'":
                break
            value.append("'")
            j = end + 2
        out.append("".join(value))
        i = end + 1
    return out


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=64))
def test_every_id_binds_as_exactly_one_literal(value):
    statement = bind("SELECT 1 FROM t WHERE a = %(a)s AND b = %(b)s LIMIT 1", {"a": value, "b": "x"})
    assert _literals(statement) == [value, "x"]
    assert statement.startswith("SELECT 1 FROM t WHERE a = '") and statement.endswith("' AND b = 'x' LIMIT 1")


def test_bind_takes_integers_and_strings_only():
    assert bind("%(a)s %(b)s", {"a": 7, "b": "*"}) == "7 '*'"  # pinotdb left '*' unquoted
    for bad in (True, 1.5, None, ["a"]):
        with pytest.raises(TypeError):
            literal(bad)


def test_parameter_shapes():
    assert params.ident("ad_id", "ad-0001") == "ad-0001" and params.ident("x", None) is None
    assert params.time_ms("from", "2026-01-01T00:00:00Z") == T0 == params.time_ms("from", str(T0))
    assert params.time_range(T0, T0 + H, H) == (T0, T0 + H)
    for bad in [(T0 + 1, T0 + H, H), (T0, T0, M), (T0, T0 + 20_000 * M, M)]:
        with pytest.raises(BadParameter):
            params.time_range(*bad)
    with pytest.raises(BadParameter, match="country"):
        params.country("us")
    with pytest.raises(BadParameter, match="device_type"):
        params.device_type("phone")
    with pytest.raises(BadParameter, match="grain"):
        params.grain("week")
    with pytest.raises(BadParameter, match="ISO 8601"):
        params.time_ms("from", "yesterday")


# ---- HTTP

@pytest.fixture
def client(pinot):
    return TestClient(create_app(run=pinot))


def test_api_answers_with_tier_and_freshness(client):
    answer = client.get("/v1/ads/ad-1/metrics", params={"from": T0, "to": T0 + 5 * M}).json()
    assert answer["tier"] == "final+live" and "tier_rule" in answer
    assert set(answer["freshness"]) == {"ad_minute", "ad_minute_live"}
    assert client.get("/v1/top-ads", params={"n": 1, "minutes": 5}).json()["ads"][0]["ad_id"] == "ad-1"
    assert client.get("/v1/campaigns/camp-1/summary", params={"from": T0, "to": T0 + 5 * M}).status_code == 200
    assert client.get("/v1/advertisers/adv-1/summary", params={"from": T0, "to": T0 + 5 * M}).status_code == 200
    assert client.get("/v1/late-events", params={"from": T0, "to": T0 + M}).json()["late_events"] == 2
    assert set(client.get("/v1/freshness").json()["tables"]) == set(queries.TABLES)


PARAMETERS = [
    ("/v1/ads/{v}/metrics", {"from": T0, "to": T0 + M}),
    ("/v1/ads/ad-1/metrics", {"from": "{v}", "to": T0 + M}),
    ("/v1/ads/ad-1/metrics", {"from": T0, "to": T0 + M, "grain": "{v}"}),
    ("/v1/ads/ad-1/metrics", {"from": T0, "to": T0 + M, "country": "{v}"}),
    ("/v1/ads/ad-1/metrics", {"from": T0, "to": T0 + M, "device_type": "{v}"}),
    ("/v1/ads/ad-1/metrics", {"from": T0, "to": T0 + M, "campaign_id": "{v}"}),
    ("/v1/ads/ad-1/metrics", {"from": T0, "to": T0 + M, "advertiser_id": "{v}"}),
    ("/v1/top-ads", {"n": "{v}"}),
    ("/v1/top-ads", {"minutes": "{v}"}),
    ("/v1/top-ads", {"country": "{v}"}),
    ("/v1/campaigns/{v}/summary", {"from": T0, "to": T0 + M}),
    ("/v1/advertisers/{v}/summary", {"from": T0, "to": T0 + M}),
    ("/v1/late-events", {"from": T0, "to": T0 + M, "ad_id": "{v}"}),
]


# The parameters that are ids: any text the contract allows, bound as one literal.
ID_PARAMETERS = {0, 5, 6, 10, 11, 12}


@pytest.mark.parametrize("index", range(len(PARAMETERS)))
@pytest.mark.parametrize("value", ["' OR '1'='1", "ad-1; DROP TABLE ad_minute", "*", "x/../y?z#w"])
def test_injection_in_every_parameter_is_refused_or_bound(client, pinot, index, value):
    """Every parameter of every endpoint: an id takes the value as data (200, the value bound as a
    parameter, never in the SQL text); any other parameter refuses it (400)."""
    path, query = PARAMETERS[index]
    url = path.replace("{v}", quote(value, safe=""))
    response = client.get(url, params={k: (value if v == "{v}" else v) for k, v in query.items()})
    assert not any(value in sql.replace("COUNT(*)", "") for sql, _ in pinot.sql)
    if index in ID_PARAMETERS:
        assert response.status_code == 200, response.text
        assert any(value in bound.values() for _, bound in pinot.sql)
    else:
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_parameter" and response.json()["message"]


def test_fuzzed_ids_are_answered_through_the_api(pinot):
    """Ads, campaigns and advertisers with the generator's fuzzed ids (the separator, backslashes,
    CHR(31), quotes, unicode, maximum lengths, '/' too) are found by every endpoint."""
    rng = random.Random(3)
    ids = [fuzz_ids.fuzz_id(rng, "ad-7", 64, flavour) for flavour in fuzz_ids.FLAVOURS] + ["ad/7", "ad-7/metrics"]
    for ad in ids:
        pinot.tables["ad_minute"].append(row(T0, ad, clicks=3, campaign_id=ad, advertiser_id=ad))
    client = TestClient(create_app(run=pinot))
    window = {"from": T0, "to": T0 + M}
    for ad in ids:
        answer = client.get(f"/v1/ads/{quote(ad, safe='')}/metrics", params=window).json()
        assert answer["ad_id"] == ad and answer["buckets"][0]["clicks"] == 3, ad
        campaign = client.get(f"/v1/campaigns/{quote(ad, safe='')}/summary", params=window).json()
        assert campaign["campaign_id"] == ad and campaign["total"]["clicks"] == 3, ad
        advertiser = client.get(f"/v1/advertisers/{quote(ad, safe='')}/summary", params=window).json()
        assert advertiser["total"]["clicks"] == 3, ad
        top = client.get("/v1/top-ads", params={"n": 3, "minutes": 5, "campaign_id": ad}).json()
        assert [a["ad_id"] for a in top["ads"]] == [ad], ad


def test_a_filter_holding_option_is_ranked_here_not_by_pinot(pinot):
    """Pinot 0.11 cuts a trailing OPTION(...) out of the statement text from the first 'option('
    on, even inside a literal: with such a filter value top_ads leaves the ranked statement (which
    ends with OPTION) and ranks the sums itself."""
    pinot.tables["ad_minute_live"].append(row(T0 + 4 * M, "ad-9", clicks=7, campaign_id="c option(x"))
    assert queries.top_ads(pinot, 5, 1, Filters())["ads"][0]["ad_id"] == "ad-9"
    assert any("OPTION(" in sql for sql, _ in pinot.sql)  # one tier: Pinot ranks
    pinot.sql.clear()
    answer = queries.top_ads(pinot, 5, 1, Filters(campaign_id="c option(x"))
    assert [a["ad_id"] for a in answer["ads"]] == ["ad-9"]
    assert not any("OPTION(" in sql for sql, _ in pinot.sql)


def test_pinot_failures_are_503_and_openapi_is_served():
    def broken(sql, bound):
        raise PinotUnavailable("Pinot query failed: connection refused")
    client = TestClient(create_app(run=broken))
    response = client.get("/v1/freshness")
    assert response.status_code == 503 and response.json()["error"] == "pinot_unavailable"
    spec = TestClient(create_app(run=MemoryPinot({}))).get("/openapi.json").json()
    assert {"/v1/ads/{ad_id}/metrics", "/v1/top-ads", "/v1/campaigns/{campaign_id}/summary",
            "/v1/advertisers/{advertiser_id}/summary", "/v1/late-events", "/v1/freshness"} <= set(spec["paths"])


def test_boundary_cache_shares_whole_table_statements_for_its_ttl():
    from serving.runner import BoundaryCache

    calls, now = [], [0.0]

    def run(sql, bound):
        calls.append(sql)
        return [{"newest": len(calls)}]
    cached = BoundaryCache(run, ttl_s=1.0, clock=lambda: now[0])
    newest_sql = "SELECT MAX(window_start_ms) AS newest FROM ad_minute"
    assert cached(newest_sql, {}) == cached(newest_sql, {}) and len(calls) == 1
    cached("SELECT ad_id, SUM(clicks) FROM ad_minute WHERE ad_id = %(ad_id)s", {"ad_id": "a"})
    cached("SELECT ad_id, SUM(clicks) FROM ad_minute WHERE ad_id = %(ad_id)s", {"ad_id": "a"})
    assert len(calls) == 3  # filtered statements are never shared
    now[0] = 1.5
    assert cached(newest_sql, {})[0]["newest"] == 4  # expired: asked again


def test_boundary_refresher_answers_requests_from_its_last_round():
    from serving.runner import BoundaryCache, PinotUnavailable

    calls, now, failing = [], [0.0], [False]

    def run(sql, bound):
        if failing[0]:
            raise PinotUnavailable("down")
        calls.append(sql)
        return [{"newest": len(calls)}]
    cached = BoundaryCache(run, ttl_s=1.0, clock=lambda: now[0], max_age_s=5.0, keep_s=60.0)
    newest_sql = "SELECT MAX(window_start_ms) AS newest FROM ad_minute"
    assert cached(newest_sql, {})[0]["newest"] == 1  # the first request asks
    now[0] = 1.0
    cached.refresh()
    now[0] = 4.0
    assert cached(newest_sql, {})[0]["newest"] == 2 and len(calls) == 2  # from the refresher, not asked inline
    failing[0] = True
    now[0] = 5.5
    cached.refresh()  # a failed round keeps the last answer ...
    assert cached(newest_sql, {})[0]["newest"] == 2
    failing[0] = False
    now[0] = 6.5
    assert cached(newest_sql, {})[0]["newest"] == 3  # ... until it is max_age_s old: then asked inline
    now[0] = 70.0
    cached.refresh()  # unused for keep_s: forgotten, not refreshed
    assert len(calls) == 3 and cached.cache == {}


def test_boundary_refresher_thread_refreshes_and_stops():
    import time as real_time

    from serving.runner import BoundaryCache

    calls = []
    cached = BoundaryCache(lambda sql, bound: calls.append(sql) or [{"newest": len(calls)}],
                           ttl_s=0.05, background=True)
    newest_sql = "SELECT MAX(window_start_ms) AS newest FROM ad_minute"
    cached(newest_sql, {})
    deadline = real_time.monotonic() + 5
    while len(calls) < 3 and real_time.monotonic() < deadline:
        real_time.sleep(0.01)
    cached.close()
    cached.thread.join(timeout=2)
    assert len(calls) >= 3 and not cached.thread.is_alive()


def test_boundary_refresher_asks_only_for_rows_at_or_after_the_last_answer():
    from serving.runner import BoundaryCache

    pinot = MemoryPinot({"ad_minute": [row(T0), row(T0 + M)]})
    cached = BoundaryCache(pinot, ttl_s=1.0, max_age_s=5.0)
    newest_sql = "SELECT MAX(window_start_ms) AS newest FROM ad_minute"
    assert queries.newest(cached, "ad_minute") == T0 + M
    pinot.tables["ad_minute"].append(row(T0 + 2 * M))
    cached.refresh()
    assert pinot.sql[-1][0] == f"{newest_sql} WHERE window_start_ms >= {T0 + M}"
    assert queries.newest(cached, "ad_minute") == T0 + 2 * M
    pinot.tables["ad_minute"] = [row(T0)]  # recreated with older rows: nothing at or after the last answer
    cached.refresh()
    assert pinot.sql[-1][0] == newest_sql and queries.newest(cached, "ad_minute") == T0


def test_a_window_with_a_reconciled_row_says_so(pinot):
    pinot.tables["ad_minute"].append(row(T0 + 2 * M, ad="ad-3", clicks=7, version=2))  # a correction
    answer = queries.ad_metrics(pinot, "ad-3", "minute", T0, T0 + 5 * M, Filters())
    assert [(b["clicks"], b["tier"]) for b in answer["buckets"]] == [(7, "reconciled")]
    campaign = queries.summary(pinot, "campaign", "camp-1", T0, T0 + 5 * M, Filters())
    assert campaign["tier"] == "reconciled+final+live"


def test_the_freshness_endpoint_reads_count_and_newest_together_past_the_cache():
    """Rows and newest time in one statement: they describe one moment, never a cached boundary
    beside a fresh count (after a Pinot server restart the two disagreed for a second)."""
    from serving.runner import BoundaryCache

    pinot = MemoryPinot({"ad_minute": [row(T0)]})
    cached = BoundaryCache(pinot, ttl_s=60.0, max_age_s=60.0)
    assert queries.freshness(cached, ("ad_minute",))["ad_minute"]["newest_ms"] == T0  # now cached
    pinot.tables["ad_minute"].append(row(T0 + M))
    assert queries.freshness(cached, ("ad_minute",))["ad_minute"]["newest_ms"] == T0  # dashboards: the cache
    fresh = queries.freshness(cached, ("ad_minute",), rows=True)["ad_minute"]
    assert (fresh["rows"], fresh["newest_ms"]) == (2, T0 + M)


def _metric(client, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_route_template_and_status(client):
    """Per route template (an id in the path must not make a series of its own), per status."""
    ok = 'adagg_query_api_requests_total{route="/v1/ads/{ad_id:path}/metrics",status="200"}'
    bad = 'adagg_query_api_requests_total{route="/v1/ads/{ad_id:path}/metrics",status="400"}'
    before_ok, before_bad = _metric(client, ok), _metric(client, bad)
    client.get("/v1/ads/ad-1/metrics", params={"from": T0, "to": T0 + 5 * M})
    client.get("/v1/ads/ad-2%2Fx/metrics", params={"from": T0, "to": T0 + 5 * M})
    client.get("/v1/ads/ad-1/metrics", params={"from": "yesterday", "to": T0})
    assert _metric(client, ok) == before_ok + 2 and _metric(client, bad) == before_bad + 1
    text = client.get("/metrics").text
    assert "ad-2" not in text and 'adagg_query_api_request_seconds_count{route="/v1/ads/{ad_id:path}/metrics"}' in text


def test_metrics_export_each_tables_age_as_the_freshness_endpoint_gives_it(client):
    """adagg_table_age_seconds per table that holds rows: now minus its newest time (an alert
    watches the live tier's). Tables with no rows have no sample."""
    ages = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("adagg_table_age_seconds{"):
            ages[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    fresh = client.get("/v1/freshness").json()["tables"]
    assert set(ages) == {t for t, f in fresh.items() if f["age_s"] is not None} >= {"ad_minute", "ad_minute_live"}
    for table, age in ages.items():
        assert abs(age - fresh[table]["age_s"]) < 5, table


def quality_row(start: int, source: str, deliveries: int, unique: int, valid: int, billable: int) -> dict:
    return {"window_start_ms": start, "source": source, "deliveries": deliveries, "unique_events": unique,
            "duplicate_deliveries": deliveries - unique, "valid_events": valid, "billable_events": billable,
            "billing_repeats": valid - billable}


def test_quality_sums_the_newest_hour_per_source_with_its_late_deliveries():
    """The newest QUALITY_MINUTES minutes the quality table holds, per source; late deliveries of
    the same event-time span counted from the late events, a source with only late ones included;
    older minutes and later late events left out."""
    newest = T0 + 100 * M
    first = newest - (queries.QUALITY_MINUTES - 1) * M  # the span's first minute
    rows = [quality_row(first - M, "sdk", 50, 40, 40, 40),  # one minute too old
            quality_row(first, "sdk", 10, 8, 7, 5), quality_row(newest, "sdk", 5, 5, 5, 5),
            quality_row(newest, "s2s \u00fc|1", 3, 2, 2, 1)]
    late = [{"event_time": first - 1, "source": "sdk"}, {"event_time": first, "source": "sdk"},
            {"event_time": newest + M - 1, "source": "pixel"}, {"event_time": newest + M, "source": "sdk"}]
    q = queries.quality(MemoryPinot({"quality_minute": rows, "late_events": late}))
    assert (q["from_ms"], q["to_ms"]) == (first, newest + M)
    assert q["sources"] == {
        "sdk": {"deliveries": 15, "unique_events": 13, "duplicate_deliveries": 2, "valid_events": 12,
                "billable_events": 10, "billing_repeats": 2, "late_deliveries": 1},
        "s2s \u00fc|1": {"deliveries": 3, "unique_events": 2, "duplicate_deliveries": 1, "valid_events": 2,
                          "billable_events": 1, "billing_repeats": 1, "late_deliveries": 0},
        "pixel": {**dict.fromkeys(queries.QUALITY_COUNTS, 0), "late_deliveries": 1}}
    assert queries.quality(MemoryPinot({})) == {"from_ms": None, "to_ms": None, "sources": {}}


def test_metrics_export_the_quality_counts_per_source():
    """adagg_quality_<count>{source} and the span, as queries.quality gives them, at scrape time."""
    from prometheus_client import generate_latest
    from prometheus_client.core import CollectorRegistry

    from serving.metrics import DataQuality

    newest = T0 + 10 * M
    collector = DataQuality()
    collector.run = MemoryPinot({"quality_minute": [quality_row(newest, "sdk", 7, 5, 4, 3)],
                                 "late_events": [{"event_time": newest, "source": "sdk"}]})
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    for line in ('adagg_quality_deliveries{source="sdk"} 7.0', 'adagg_quality_duplicate_deliveries{source="sdk"} 2.0',
                 'adagg_quality_billing_repeats{source="sdk"} 1.0', 'adagg_quality_late_deliveries{source="sdk"} 1.0',
                 f"adagg_quality_window_end_ms {float(newest + M):.8e}"):
        assert line in text.splitlines(), line
    collector.run = MemoryPinot({})
    assert "adagg_quality_deliveries{" not in generate_latest(registry).decode()


def test_metrics_export_the_newest_reconcile_pass():
    """adagg_reconcile_*: the newest pass's records only (an older pass left a residual that the
    newer one cleared), per grain and measure, per grain, and per pass; nothing before a pass."""
    from prometheus_client import generate_latest
    from prometheus_client.core import CollectorRegistry

    from reconcile.history import COLUMNS
    from serving.metrics import Reconciliation

    def record(run_at_ms: int, grain: str, measure: str, residual: int) -> dict:
        return {**{c: 0 for c in COLUMNS}, "run_at_ms": run_at_ms, "grain": grain, "measure": measure,
                "served": 5, "billed": 8, "served_diff": 3, "changed": 3, "residual": residual,
                "changed_windows": 2, "cpu_seconds": 1.5, "archive_bytes": 157}

    history = [record(1, "minute", "clicks", 4), record(2, "minute", "clicks", 0), record(2, "hour", "clicks", 0)]
    asked = []

    def run(sql: str, bound: dict) -> list[dict]:  # the two statements queries.newest_reconciliation sends
        asked.append(sql)
        if sql.startswith("SELECT MAX(run_at_ms)"):
            return [{"newest": max((r["run_at_ms"] for r in history), default=float("-inf"))}]
        return [r for r in history if r["run_at_ms"] == bound["run_at_ms"]]

    collector = Reconciliation()
    collector.run = run
    registry = CollectorRegistry()
    registry.register(collector)
    lines = generate_latest(registry).decode().splitlines()
    for line in ('adagg_reconcile_residual{grain="minute",measure="clicks"} 0.0',
                 'adagg_reconcile_served_diff{grain="hour",measure="clicks"} 3.0',
                 'adagg_reconcile_changed_windows{grain="minute"} 2.0', "adagg_reconcile_run_at_ms 2.0",
                 "adagg_reconcile_cpu_seconds 1.5", "adagg_reconcile_archive_bytes 157.0"):
        assert line in lines, line
    assert len([x for x in lines if x.startswith("adagg_reconcile_residual{")]) == 2
    history.clear()
    assert not [x for x in generate_latest(registry).decode().splitlines() if not x.startswith("#")]


def test_received_lags_per_tier_from_the_newest_collector_acceptance():
    """Now minus the newest max_received_at_ms of each tier's table (over its newest windows); a
    table whose rows carry none (Pinot's null for a LONG is its minimum) or no table: no lag."""
    from prometheus_client import generate_latest
    from prometheus_client.core import CollectorRegistry

    from serving.metrics import Freshness

    null = -(2 ** 63)
    live = [row(T0, max_received_at_ms=T0 + 5_000), row(T0 + M, max_received_at_ms=T0 + 62_000),
            row(T0 + M, ad="ad-2", max_received_at_ms=null)]
    quality = [quality_row(T0, "sdk", 1, 1, 1, 1) | {"max_received_at_ms": T0 + 50_000}]

    def run(sql: str, bound: dict) -> list[dict]:
        table = re.search(r" FROM (\w+)", sql)[1]
        rows = {"ad_minute_live": live, "quality_minute": quality}.get(table, [])
        if sql.startswith("SELECT MAX(window_start_ms)"):
            return [{"newest": max((r["window_start_ms"] for r in rows), default=float("-inf"))}]
        assert "window_start_ms >= %(lo)s" in sql
        rows = [r for r in rows if r["window_start_ms"] >= bound["lo"]]
        return [{"received": max((r["max_received_at_ms"] for r in rows), default=float("-inf"))}]

    assert queries.received_lags(run, now_ms=T0 + 64_500) == {"live": 2.5, "final": 14.5}
    quality[0]["max_received_at_ms"] = null  # direct traffic only
    assert queries.received_lags(run, now_ms=T0 + 64_500) == {"live": 2.5, "final": None}
    collector = Freshness()
    collector.run = run
    registry = CollectorRegistry()
    registry.register(collector)
    lines = generate_latest(registry).decode().splitlines()
    assert [x.split(" ")[0] for x in lines if x.startswith("adagg_freshness_seconds{")] == [
        'adagg_freshness_seconds{tier="live"}']
