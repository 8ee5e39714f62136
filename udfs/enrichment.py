"""Every enrichment of one event in one call: what the streaming job's single Python UDF runs.

One call per event instead of six keeps the Python overhead (about 10 µs per call in thread mode,
measured in docs/enrichment.md) to one crossing per event. Both ways, one STRING crosses:
- in: ip, campaign_id and user_agent packed by the SQL (macros/columns.sql enrichment_input(),
  read by unpack_input): one argument crosses into Python about 1.3 µs cheaper per row than three;
- out: the six values packed (pack): a STRING crosses back about 4 µs cheaper per row than a ROW,
  which the SQL splits into an array, read after the dedup (int_events_enriched, the
  enrichment_field macro).
enrich() is the reference; Enricher computes pack(enrich(...)) the way the UDF needs it, per row.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from udfs import dimensions, geo, invalid_traffic, user_agent
from udfs._tables import TableError

FIELDS = ("device_type", "os", "browser", "country", "vertical", "invalid_reason")
# ASCII unit separator (CHR(31) in SQL): no value holds it, pack() makes sure.
SEPARATOR = "\x1f"


class Enrichment(NamedTuple):
    device_type: str
    os: str
    browser: str
    country: str
    vertical: str
    invalid_reason: str | None  # None: valid traffic


def enrich(ua: str | None, ip: str | None, campaign_id: str | None,
           country_table: geo.IpRangeTable | None = None,
           blocklist: invalid_traffic.Blocklist | None = None,
           campaigns: dict[str, dimensions.Campaign] | None = None) -> Enrichment:
    agent = user_agent.parse(ua)
    return Enrichment(agent.device_type, agent.os, agent.browser, geo.country(ip, country_table),
                      dimensions.vertical(campaign_id, campaigns), invalid_traffic.reason(ua, ip, blocklist))


def _clean(value: str) -> str:
    return value.replace(SEPARATOR, " ")


def pack(values: Enrichment) -> str:
    """The six values in FIELDS order, SEPARATOR between; a valid event's NULL reason packs as ''."""
    return SEPARATOR.join(_clean(value or "") for value in values)


def unpack(packed: str) -> Enrichment:
    """pack's inverse, as the SQL reads it: split at SEPARATOR, '' reason = NULL."""
    *values, reason = packed.split(SEPARATOR)
    return Enrichment(*values, reason or None)


def pack_input(ua: str | None, ip: str | None, campaign_id: str | None) -> str:
    """What macros/columns.sql enrichment_input() builds in SQL: ip, campaign_id, user_agent with
    SEPARATOR between, NULL as ''. An ip or campaign_id holding SEPARATOR goes as '': neither can
    mean anything then (no IP has one, and Enricher refuses a campaign table id with one), and the
    agent, last, may hold any character."""
    def clean(value: str | None) -> str:
        return "" if value is None or SEPARATOR in value else value
    return SEPARATOR.join((clean(ip), clean(campaign_id), ua or ""))


def unpack_input(value: str | None) -> tuple[str | None, str | None, str | None]:
    """(ua, ip, campaign_id) from enrich_event's argument, '' read as NULL (enrich() treats the two
    alike)."""
    parts = (value or SEPARATOR * 2).split(SEPARATOR, 2)
    if len(parts) != 3:
        raise ValueError("enrich_event takes one STRING, ip, campaign_id and user_agent joined by CHR(31) "
                         f"(macros/columns.sql enrichment_input()); got {value[:80]!r}")
    ip, campaign_id, ua = parts
    return ua or None, ip or None, campaign_id or None


@functools.lru_cache(maxsize=user_agent.CACHE_SIZE)
def _agent_part(ua: str | None) -> tuple[str, bool]:
    """The packed device_type, os and browser with a trailing SEPARATOR, and whether it is a bot."""
    return "".join(_clean(value) + SEPARATOR for value in user_agent.parse(ua)), user_agent.is_bot(ua)


class Enricher:
    """pack(enrich(ua, ip, campaign_id, tables...)), about 1.4 µs per event against 2.7 µs: the agent's
    part is packed once per agent (a day has a few dozen agents, and millions of events), and no
    Enrichment tuple is built. tests/unit/test_udfs.py holds the two equal."""

    def __init__(self, country_table: geo.IpRangeTable | None = None,
                 blocklist: invalid_traffic.Blocklist | None = None,
                 campaigns: dict[str, dimensions.Campaign] | None = None):
        self._countries = geo.TABLE.get() if country_table is None else country_table
        self._blocklist = invalid_traffic.BLOCKLIST.get() if blocklist is None else blocklist
        self._campaigns = dimensions.TABLE.get() if campaigns is None else campaigns
        odd = next((c for c in self._campaigns if SEPARATOR in c), None)
        if odd is not None:  # pack_input() sends such an id as '': it could never match
            raise TableError(f"campaign table: campaign_id {odd!r} holds the separator CHR(31)")

    def packed(self, ua: str | None, ip: str | None, campaign_id: str | None) -> str:
        agent, bot = _agent_part(ua)
        return (agent + _clean(self._countries.lookup(ip)) + SEPARATOR
                + _clean(dimensions.vertical(campaign_id, self._campaigns)) + SEPARATOR
                + (invalid_traffic.reason_for(bot, ip, self._blocklist) or ""))
