"""adagg/fuzz_ids.py, the id fuzzing any generator may call: contract-valid, deterministic, and
the ordinary id kept as the prefix."""

from __future__ import annotations

import random

import pytest

from adagg import fuzz_ids
from adagg.contract import validate

EVENT = {"schema_version": 1, "event_id": "0123456789abcdef0123456789abcdef", "event_type": "click",
         "event_time": 1_767_225_601_234, "ad_id": "ad-0001", "campaign_id": "camp-0001", "advertiser_id": "adv-001",
         "user_id": "user-00001", "ip": "23.32.0.5", "user_agent": "Mozilla/5.0", "placement_id": "plc-001",
         "publisher_id": "pub-01", "cost_micros": 250_000}


def test_the_maximum_lengths_are_the_contracts():
    assert fuzz_ids.MAX_LENGTH == {"event_id": 64, "ad_id": 64, "campaign_id": 64, "advertiser_id": 64, "user_id": 128}


@pytest.mark.parametrize("flavour", fuzz_ids.FLAVOURS)
def test_every_flavour_keeps_the_base_and_the_limit(flavour):
    rng = random.Random(flavour)
    for name, limit in fuzz_ids.MAX_LENGTH.items():
        for _ in range(30):
            value = fuzz_ids.fuzz_id(rng, EVENT[name], limit, flavour)
            assert value.startswith(EVENT[name]) and len(EVENT[name]) < len(value) <= limit
            assert "\x00" not in value and not any("\ue000" <= ch <= "\uffff" for ch in value)
            if flavour == "max_length":
                assert len(value) == limit


def test_fuzzed_events_stay_contract_valid_and_repeat_with_the_seed():
    first = [fuzz_ids.fuzz_fields(random.Random(s), EVENT) for s in range(200)]
    assert first == [fuzz_ids.fuzz_fields(random.Random(s), EVENT) for s in range(200)]
    for event in first:
        assert validate(event) == [] and event != EVENT
    text = "".join(e[name] for e in first for name in fuzz_ids.ID_FIELDS)
    for needle in ("|", "\\", "\x1f", "'", '"', "é", "广", "🚀", "إ", "פ"):
        assert needle in text, needle


def test_separator_twins_share_a_plain_join_only():
    (ad1, user1), (ad2, user2) = fuzz_ids.separator_twins("ad-1", "user-2", "t3")
    assert (ad1, user1) != (ad2, user2) and f"{ad1}|{user1}" == f"{ad2}|{user2}" == "ad-1|user-2|t3"
