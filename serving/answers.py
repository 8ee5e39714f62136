"""The answers the query API and `adagg query` give: caller values checked (serving.params),
then the query run (serving.queries). One place, so the HTTP and command-line answers agree."""

from __future__ import annotations

from serving import params, queries
from serving.params import BadParameter, Filters
from serving.queries import Run

TIER_RULE = ("Closed windows (at or before the newest window of the final table of that grain) come from the "
             "final tier; open ones from the live tier; an open hour or day sums its minutes. A closed window "
             "that reconciliation corrected (a row of version 2 or more in the final table) is the reconciled "
             "tier's. Each bucket names its tier.")


def ad_metrics(run: Run, ad_id: str, start, end, grain: str, filters: Filters) -> dict:
    lo, hi = params.time_range(start, end, params.grain(grain))
    return {**queries.ad_metrics(run, params.ident("ad_id", ad_id, required=True), grain, lo, hi, filters),
            "tier_rule": TIER_RULE}


def top_ads(run: Run, n: int, minutes: int, filters: Filters) -> dict:
    return {**queries.top_ads(run, params.bounded_int("n", n, 1, params.MAX_TOP_N),
                              params.bounded_int("minutes", minutes, 1, params.MAX_MINUTES), filters),
            "tier_rule": TIER_RULE}


def summary(run: Run, level: str, key: str, start, end, filters: Filters) -> dict:
    lo, hi = params.time_range(start, end, params.GRAINS["minute"])
    return {**queries.summary(run, level, params.ident(f"{level}_id", key, required=True), lo, hi, filters),
            "tier_rule": TIER_RULE}


def late_events(run: Run, start, end, ad_id: str | None) -> dict:
    lo, hi = params.time_ms("from", start), params.time_ms("to", end)
    if hi <= lo:
        raise BadParameter("to must be after from")
    return queries.late_events(run, lo, hi, params.ident("ad_id", ad_id))


def freshness(run: Run) -> dict:
    return {"tables": queries.freshness(run, rows=True)}
