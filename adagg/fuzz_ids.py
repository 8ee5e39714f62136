"""Contract-valid ids that break naive code: key separators, the escape character, CHR(31),
quotes, non-ASCII text (accents, CJK, an astral-plane emoji, right-to-left scripts) and the
contract's maximum lengths.

fuzz_id() turns an ordinary id into such an id. The generator (adagg/traffic.py) calls it for a
small seeded share of its events, and any other generator may: it draws only from the Random it
is given. The ordinary id stays the result's prefix, so distinct ids stay distinct (event ids stay
unique) and an ordinary id still sorts first among its variants.

Left out on purpose: '/', '?', '#' and '%', which an id only meets in a URL path, where the caller
must percent-encode them anyway; NUL, which Pinot pads its string dictionaries with (a trailing
NUL would be trimmed there); and U+E000..U+FFFF, which Java's String.compareTo (Pinot's ORDER BY)
sorts after astral characters while Flink and Python sort them before. docs/pipeline.md has the
list of what the pipeline guarantees for any id.
"""

from __future__ import annotations

import random

from adagg.contract import max_length

# The id fields of the contract, and their maximum lengths in code points (its maxLength).
ID_FIELDS = ("event_id", "ad_id", "campaign_id", "advertiser_id", "user_id")
MAX_LENGTH = {name: max_length(name) for name in ID_FIELDS}

SEPARATOR = "|"  # of the billing key (adagg.contract.key_part)
ESCAPE = "\\"
UNIT_SEPARATOR = "\x1f"  # CHR(31): the enrichment UDF's packing (udfs/enrichment.py)
QUOTES = "'\""
TEXTS = ("café", "Ærø-ñ", "广告系列", "🚀", "إعلان", "פרסומת")  # accents, CJK, astral, Arabic, Hebrew
# Every tricky character at least once, cycled to fill an id up to its maximum length.
FILLER = SEPARATOR + ESCAPE + UNIT_SEPARATOR + QUOTES + "".join(TEXTS)

FLAVOURS = ("separator", "escape", "unit_separator", "quotes", "unicode", "max_length")


def fuzz_id(rng: random.Random, base: str, max_length: int, flavour: str | None = None) -> str:
    """`base` followed by tricky characters of one flavour (drawn when not given), at most
    max_length code points; flavour 'max_length' fills it to exactly max_length."""
    flavour = flavour or rng.choice(FLAVOURS)
    if flavour == "separator":
        tail = rng.choice([SEPARATOR, SEPARATOR + "x", SEPARATOR * 2 + "y" + SEPARATOR])
    elif flavour == "escape":
        tail = rng.choice([ESCAPE, ESCAPE + SEPARATOR, ESCAPE * 2, ESCAPE + "n"])
    elif flavour == "unit_separator":
        tail = rng.choice([UNIT_SEPARATOR, UNIT_SEPARATOR + "z", UNIT_SEPARATOR * 2])
    elif flavour == "quotes":
        tail = rng.choice(["'", '"', "' OR '1'='1", "\"'\""])
    elif flavour == "unicode":
        tail = "-" + rng.choice(TEXTS)
    elif flavour == "max_length":
        start = rng.randrange(len(FILLER))
        tail = "".join(FILLER[(start + i) % len(FILLER)] for i in range(max(0, max_length - len(base))))
    else:
        raise ValueError(f"unknown flavour {flavour!r}; known: {', '.join(FLAVOURS)}")
    if len(base) >= max_length:
        raise ValueError(f"base id {base[:80]!r} leaves no room below {max_length} code points")
    return (base + tail)[:max_length]


def fuzz_fields(rng: random.Random, event: dict) -> dict:
    """A copy of `event` with a random non-empty subset of its ids fuzzed, each up to its
    contract maximum. The event stays contract-valid."""
    chosen = [name for name in ID_FIELDS if rng.random() < 0.5] or [rng.choice(ID_FIELDS)]
    return {**event, **{name: fuzz_id(rng, event[name], MAX_LENGTH[name]) for name in chosen}}


def separator_twins(ad_id: str, user_id: str, tail: str = "t") -> tuple[tuple[str, str], tuple[str, str]]:
    """Two different (ad_id, user_id) pairs that a plain '|' join of the billing key would merge:
    (ad, 'user|tail') and ('ad|user', tail) both join to 'ad|user|tail'."""
    return (ad_id, f"{user_id}{SEPARATOR}{tail}"), (f"{ad_id}{SEPARATOR}{user_id}", tail)
