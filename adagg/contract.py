"""The event contract: versioned JSON Schemas under contracts/ad_event/, and the billing key.

Evolution rule (tested in tests/unit/test_contract.py): a new version may only add optional
properties. Nothing is removed, renamed, retyped or made required, and schema_version is the one
field whose allowed value changes. The Flink source declares the union of every version's fields,
so older producers keep working (new fields read as NULL) and a newer producer's extra fields are
ignored by an older pipeline (Flink's JSON format skips unknown fields) until it is redeployed.
"""

from __future__ import annotations

import json
from functools import cache

import jsonschema

from adagg.paths import REPO

CONTRACT_DIR = REPO / "contracts" / "ad_event"
EVENT_TYPES = ("impression", "click", "conversion")


def versions() -> list[int]:
    return sorted(int(p.name.split(".")[0][1:]) for p in CONTRACT_DIR.glob("v*.schema.json"))


@cache
def schema(version: int) -> dict:
    path = CONTRACT_DIR / f"v{version}.schema.json"
    if not path.exists():
        raise KeyError(f"unknown schema version {version}; known: {versions()}")
    return json.loads(path.read_text())


@cache
def _validator(version: int) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema(version))
    return cls(schema(version), format_checker=cls.FORMAT_CHECKER)


def validate(event: object) -> list[str]:
    """Every contract violation of one event, as 'field: message' strings; [] when valid."""
    if not isinstance(event, dict):
        return ["event: must be a JSON object"]
    version = event.get("schema_version")
    if type(version) is not int or version not in versions():
        return [f"schema_version: unknown version {version!r}; known: {versions()}"]
    errors = sorted(_validator(version).iter_errors(event), key=lambda e: list(e.path))
    return [f"{'.'.join(map(str, e.path)) or 'event'}: {e.message}" for e in errors]


def max_length(field: str) -> int:
    """A string field's maximum length in code points, in the newest contract version (a new version
    may not change it: the evolution rule)."""
    return schema(max(versions()))["properties"][field]["maxLength"]


def bucket_start(event_time_ms: int, bucket_ms: int) -> int:
    return event_time_ms - event_time_ms % bucket_ms


def billing_key(event: dict, bucket_ms_by_type: dict[str, int]) -> str:
    """ad_id|user_id|event_type|bucket start ms: a user's repeats on an ad in one bucket bill once.

    The streaming SQL computes the same string (sql/macros/keys.sql billing_key, used by
    sql/views/int_events_enriched.sql); the raw topic is keyed by it, so every event of one billing
    key lands in one partition, in order.
    """
    return billing_key_of(event["ad_id"], event["user_id"], event["event_type"], event["event_time"],
                          bucket_ms_by_type)


def billing_key_of(ad_id: str, user_id: str, event_type: str, event_time: int, bucket_ms_by_type: dict[str, int]) -> str:
    # event_type is one of EVENT_TYPES and the bucket is digits: neither can hold '|' or '\'.
    return (f"{key_part(ad_id)}|{key_part(user_id)}|{event_type}|"
            f"{bucket_start(event_time, bucket_ms_by_type[event_type])}")


def key_part(value: str) -> str:
    r"""One id inside a '|'-joined key: '\' becomes '\\', then '|' becomes '\|'.

    Every '|' left unescaped is then a separator, so the key reads back into its parts and two
    different id tuples never share a key, whatever the ids hold (a plain join gave ('a|b', 'c')
    and ('a', 'b|c') one key). Ordinary ids, with neither character, are unchanged.
    sql/macros/keys.sql key_part is the same in SQL.
    """
    return value.replace("\\", "\\\\").replace("|", "\\|")
