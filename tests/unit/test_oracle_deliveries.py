"""The oracle from the raw topic's content (oracle.derive_from_deliveries) against the oracle from
the generator's phases (oracle.derive_oracle): on phase traffic, where every send is clearly on time
or clearly late, both must give every table the same rows. The first is what continuous traffic is
checked with: it needs no phases, only each partition's order."""

from __future__ import annotations

import json

import pytest

from adagg.oracle import Delivery, derive_from_deliveries
from adagg.traffic import generate, key_partition

PARTITIONS = 4
BOUND_MS = 15_000
TABLES = ("minute", "minute_live", "hour", "day", "sliding", "top", "enriched", "reconciled", "late_event_ids",
          "quality", "late_minute")


def deliveries_of(traffic, heartbeat_every: int = 0) -> list[Delivery]:
    """The sends as the raw topic holds them: keyed ones in their billing key's partition (as the
    collector and kafka-python place them), fences in theirs, each partition in send order; with
    heartbeat_every, a heartbeat carrying the highest event time so far to every partition that often."""
    out, offsets, high = [], [0] * PARTITIONS, 0
    for i, send in enumerate(s for phase in traffic.phases for s in phase):
        record = json.loads(send.value)
        high = max(high, record["event_time"])
        p = send.partition if send.partition is not None else key_partition(send.key, PARTITIONS)
        out.append(Delivery(p, offsets[p], record))
        offsets[p] += 1
        if heartbeat_every and i % heartbeat_every == 0:
            for q in range(PARTITIONS):
                out.append(Delivery(q, offsets[q], {"heartbeat": "c", "event_time": high}))
                offsets[q] += 1
    return out


@pytest.mark.parametrize("heartbeat_every", [0, 50])
def test_the_delivery_oracle_agrees_with_the_phase_oracle(heartbeat_every):
    traffic = generate(seed=7, events=4_000, ads=12, partitions=PARTITIONS, start_ms=1_800_000_000_000,
                       bound_ms=BOUND_MS, close_day=True)
    expected = traffic.oracle
    got = derive_from_deliveries(deliveries_of(traffic, heartbeat_every), PARTITIONS, BOUND_MS)
    assert expected.late_event_ids and expected.minute and expected.day
    for table in TABLES:
        assert getattr(got, table) == getattr(expected, table), table
    assert got.final_watermark_ms == expected.final_watermark_ms
    assert got.stats["late_sends"] == expected.stats["late_sends"]
    lean = derive_from_deliveries(deliveries_of(traffic, heartbeat_every), PARTITIONS, BOUND_MS, mix_stats=False)
    assert all(getattr(lean, table) == getattr(got, table) for table in TABLES)
    assert lean.stats["late_sends"] == got.stats["late_sends"] and "retries" in got.stats and "retries" not in lean.stats


def test_a_delivery_behind_its_partitions_high_by_more_than_the_delay_is_late():
    """Per partition: the same event time is on time in a partition that has not gone past it."""
    t = 1_800_000_000_000
    event = {"schema_version": 1, "event_type": "click", "ad_id": "ad-1", "campaign_id": "camp-0001",
             "advertiser_id": "adv-001", "user_id": "u", "ip": "23.32.0.5", "placement_id": "p", "publisher_id": "x",
             "cost_micros": 1, "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"}
    deliveries = [
        Delivery(0, 0, {"heartbeat": "c", "event_time": t + 60_000}),
        Delivery(0, 1, {**event, "event_id": "a", "event_time": t + 45_000}),   # exactly high - delay: late
        Delivery(1, 0, {**event, "event_id": "b", "event_time": t + 45_000, "user_id": "v"}),  # partition 1: on time
        Delivery(0, 2, {**event, "event_id": "c", "event_time": t + 45_001, "user_id": "w"}),  # on time
    ]
    oracle = derive_from_deliveries(deliveries, 2, BOUND_MS)
    assert oracle.late_event_ids == {"a"} and set(oracle.enriched) == {"b", "c"}


def test_ip_labels_read_addresses_as_the_catalog_networks_say():
    """The oracle's fast IPv4 path gives what ipaddress's network membership gives, IPv6 included."""
    import ipaddress
    import random

    from adagg import traffic_catalog as cat
    from adagg.oracle import ip_labels

    countries = [(c, ipaddress.ip_network(n)) for c, n in cat.COUNTRY_NETWORKS.items()]
    blocked = [ipaddress.ip_network(n) for n in cat.BLOCKED_NETWORKS]

    def reference(ip: str) -> tuple[str, bool]:
        addr = ipaddress.ip_address(ip)
        return (next((c for c, net in countries if addr in net), cat.UNKNOWN_COUNTRY),
                any(addr in net for net in blocked))

    rng = random.Random(1)
    ips = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(5000)]
    ips += [str(net.network_address + 5) for _, net in countries] + [str(net.broadcast_address) for net in blocked]
    ips += ["::1", "::17.0.0.1", "::ffff:23.32.0.5", "2001:db8::1"]
    assert [ip_labels(ip) for ip in ips] == [reference(ip) for ip in ips]
