"""Query parameters: every value a caller sends is checked here before it reaches a query.

Ids are data, not syntax: any id the event contract accepts (any unicode, quotes, '|', '\\',
CHR(31), up to the contract's maximum length) is a valid parameter, since the pipeline counts
events of such ids and their numbers must be readable. An id reaches Pinot only as one quoted
literal (serving.runner.bind). Every other parameter has a fixed shape (country, device type,
grain, integers, times).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from adagg.contract import max_length

COUNTRY = re.compile(r"[A-Z]{2}")
DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")   # udfs/user_agent.py
GRAINS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
MAX_BUCKETS = 10_000          # rows of one time series answer
MAX_TOP_N = 1000
MAX_MINUTES = 7 * 24 * 60


class BadParameter(ValueError):
    """A parameter a caller must fix: answered 400 with this message."""


def ident(name: str, value: str | None, required: bool = False) -> str | None:
    """An id as the contract allows it (`name` is its contract field: ad_id, campaign_id, ...):
    1 to maxLength code points of any text that UTF-8 can carry (a lone surrogate cannot)."""
    if value is None or value == "":
        if required:
            raise BadParameter(f"{name} is required")
        return None
    limit = max_length(name)
    if len(value) > limit:
        raise BadParameter(f"{name} must be at most {limit} characters, as the event contract allows; "
                           f"got {len(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadParameter(f"{name} must be text (it holds a lone surrogate); got {value[:80]!r}") from None
    return value


def country(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if not COUNTRY.fullmatch(value):
        raise BadParameter(f"country must be an ISO 3166 alpha-2 code in capitals (or ZZ); got {value[:20]!r}")
    return value


def device_type(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in DEVICE_TYPES:
        raise BadParameter(f"device_type must be one of {', '.join(DEVICE_TYPES)}; got {value[:20]!r}")
    return value


def time_ms(name: str, value: str | int) -> int:
    """Epoch milliseconds, given as an integer or as ISO 8601 (UTC when no offset is given)."""
    if isinstance(value, int) and not isinstance(value, bool):
        ms = value
    elif isinstance(value, str) and re.fullmatch(r"\d{1,16}", value):
        ms = int(value)
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise BadParameter(f"{name} must be epoch milliseconds or an ISO 8601 time; got {str(value)[:40]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        ms = int(parsed.timestamp() * 1000)
    if not 0 <= ms < 2**53:
        raise BadParameter(f"{name} is out of range")
    return ms


def grain(value: str) -> int:
    if value not in GRAINS:
        raise BadParameter(f"grain must be one of {', '.join(GRAINS)}; got {value[:20]!r}")
    return GRAINS[value]


def bounded_int(name: str, value: int, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadParameter(f"{name} must be an integer from {low} to {high}; got {value!r}")
    return value


def time_range(start: str | int, end: str | int, step_ms: int) -> tuple[int, int]:
    """[from, to), aligned to the grain, not empty, at most MAX_BUCKETS buckets."""
    lo, hi = time_ms("from", start), time_ms("to", end)
    if lo % step_ms or hi % step_ms:
        raise BadParameter(f"from and to must be aligned to the grain ({step_ms // 1000} s)")
    if hi <= lo:
        raise BadParameter("to must be after from")
    if (hi - lo) // step_ms > MAX_BUCKETS:
        raise BadParameter(f"at most {MAX_BUCKETS} buckets per answer; narrow the range or use a coarser grain")
    return lo, hi


@dataclass(frozen=True)
class Filters:
    country: str | None = None
    device_type: str | None = None
    campaign_id: str | None = None
    advertiser_id: str | None = None

    @classmethod
    def of(cls, country_: str | None = None, device_type_: str | None = None, campaign_id: str | None = None,
           advertiser_id: str | None = None) -> Filters:
        return cls(country(country_), device_type(device_type_), ident("campaign_id", campaign_id),
                   ident("advertiser_id", advertiser_id))

    def items(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}
