"""Ground truth for generated traffic: user agents, networks and campaigns with their expected labels.

The generator draws from these, and the oracle takes each event's expected enrichment from here,
never from the UDF code. Unit tests hold the UDFs and their shipped data files (udfs/data/) to
these labels, so a UDF bug shows up as a mismatch instead of being copied into the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Agent:
    user_agent: str
    device_type: str  # desktop | mobile | tablet | bot | other
    os: str
    browser: str
    is_bot: bool
    weight: float


USER_AGENTS: tuple[Agent, ...] = (
    Agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36", "desktop", "Windows", "Chrome", False, 30),
    Agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91", "desktop", "Windows", "Edge", False, 8),
    Agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Safari/605.1.15", "desktop", "Mac OS X", "Safari", False, 10),
    Agent("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
          "desktop", "Linux", "Firefox", False, 4),
    Agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1", "mobile", "iOS", "Mobile Safari", False, 20),
    Agent("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.6099.144 Mobile Safari/537.36", "mobile", "Android", "Chrome Mobile", False, 18),
    Agent("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1", "tablet", "iOS", "Mobile Safari", False, 4),
    Agent("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36", "tablet", "Android", "Chrome", False, 2),
    # Invalid traffic: known crawlers, scripts and headless browsers.
    Agent("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
          "bot", "Other", "Googlebot", True, 1.5),
    Agent("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
          "bot", "Other", "bingbot", True, 1),
    Agent("python-requests/2.31.0", "bot", "Other", "Python Requests", True, 1),
    Agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "HeadlessChrome/120.0.0.0 Safari/537.36", "bot", "Linux", "HeadlessChrome", True, 0.5),
)

# Networks of the shipped IP-to-country sample table (udfs/data/ip_country.csv): one /16 each.
COUNTRY_NETWORKS: dict[str, str] = {
    "US": "23.32.0.0/16",
    "DE": "46.114.0.0/16",
    "GB": "51.140.0.0/16",
    "FR": "90.84.0.0/16",
    "JP": "126.0.0.0/16",
    "BR": "177.32.0.0/16",
    "IN": "49.36.0.0/16",
    "AU": "1.128.0.0/16",
}
COUNTRY_WEIGHTS: dict[str, float] = {"US": 35, "DE": 12, "GB": 12, "FR": 9, "JP": 10, "BR": 8, "IN": 9, "AU": 5}
UNKNOWN_COUNTRY = "ZZ"
# Not in the country table: a private range (country ZZ, valid traffic).
UNKNOWN_NETWORK = "10.20.0.0/16"
# The shipped blocklist (udfs/data/ip_blocklist.csv): datacenter/anonymizer ranges, invalid
# traffic. Not in the country table either, so their country is ZZ.
BLOCKED_NETWORKS: tuple[str, ...] = ("185.220.101.0/24", "45.155.205.0/24")

# Invalid-traffic reasons, in precedence order (a bot on a blocked IP is a bot).
REASON_BOT = "bot_user_agent"
REASON_BLOCKED_IP = "blocked_ip"

# The campaign dimension table (udfs/data/campaigns.csv) covers camp-0001 .. camp-0300.
CAMPAIGNS = 300
VERTICALS = ("retail", "travel", "finance", "gaming", "auto")
UNKNOWN_VERTICAL = "unknown"


def campaign_id(n: int) -> str:
    return f"camp-{n:04d}"


def advertiser_id(campaign_number: int) -> str:
    """Four campaigns per advertiser."""
    return f"adv-{(campaign_number - 1) // 4 + 1:03d}"


def switched_campaign(campaign_number: int, rng) -> int:
    """The campaign an ad shows up with in a campaign switch: the next one (the same advertiser
    but for every fourth) or the one four on (another advertiser), wrapping inside the table, so
    that the vertical changes too."""
    return (campaign_number - 1 + rng.choice((1, 4))) % CAMPAIGNS + 1


# Every id of the shipped campaign table, and its number.
_CAMPAIGN_NUMBERS = {campaign_id(n): n for n in range(1, CAMPAIGNS + 1)}


def campaign_vertical(campaign: str) -> str:
    """The vertical the shipped dimension table gives a campaign id; 'unknown' for any id that is
    not exactly one of the table's. A lookup, as the UDF does: int() would read a number out of
    'camp-1', 'camp-0001 ' or 'camp-\u0661' (an Arabic digit), which the table does not hold."""
    n = _CAMPAIGN_NUMBERS.get(campaign)
    return UNKNOWN_VERTICAL if n is None else VERTICALS[(n - 1) % len(VERTICALS)]
