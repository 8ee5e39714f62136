"""Invalid-traffic reason of an event: 'bot_user_agent', else 'blocked_ip', else None (valid).

A bot agent takes precedence over a blocked IP (a bot on a blocked IP is a bot). NULL/empty
agents are bots (udfs.user_agent.is_bot). The IP blocklist is a CSV of networks:

    # comment
    network,label
    185.220.101.0/24,tor-exit-sample

IPv4 and IPv6 networks are accepted (strict CIDR: no host bits set); labels are free text for
people and may be empty. The shipped list (udfs/data/ip_blocklist.csv) holds
adagg.traffic_catalog.BLOCKED_NETWORKS. ADAGG_IP_BLOCKLIST points to another file; it is read on
first lookup, once per process. A NULL or unparsable IP is not blocked.
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from udfs import user_agent
from udfs._ip import ip_version_int
from udfs._tables import Lazy, TableError, data_lines

ENV_VAR = "ADAGG_IP_BLOCKLIST"
DEFAULT_FILE = "ip_blocklist.csv"
HEADER = ("network", "label")
BOT_USER_AGENT = "bot_user_agent"
BLOCKED_IP = "blocked_ip"


@dataclass(frozen=True)
class Blocklist:
    """Per IP version: sorted, disjoint (start, end) int ranges of the collapsed networks."""
    starts: dict[int, tuple[int, ...]]
    ends: dict[int, tuple[int, ...]]

    @classmethod
    def of(cls, networks) -> "Blocklist":
        starts: dict[int, tuple[int, ...]] = {}
        ends: dict[int, tuple[int, ...]] = {}
        for version in (4, 6):
            nets = list(ipaddress.collapse_addresses(n for n in networks if n.version == version))
            starts[version] = tuple(int(n.network_address) for n in nets)
            ends[version] = tuple(int(n.broadcast_address) for n in nets)
        return cls(starts, ends)

    def contains(self, ip: str | None) -> bool:
        parsed = ip_version_int(ip)
        if parsed is None:
            return False
        version, value = parsed
        i = bisect.bisect_right(self.starts[version], value) - 1
        return i >= 0 and value <= self.ends[version][i]


def load_blocklist(path: str | Path) -> Blocklist:
    path = Path(path)
    lines = list(data_lines(path))
    if not lines:
        raise TableError(f"{path}: empty blocklist, expected header {','.join(HEADER)}")
    numbers = [n for n, _ in lines]
    rows = csv.reader([line for _, line in lines])
    header = tuple(c.strip() for c in next(rows))
    if header != HEADER:
        raise TableError(f"{path}:{numbers[0]}: expected header {','.join(HEADER)}, got {','.join(header)!r}")
    networks = []
    for number, cells in zip(numbers[1:], rows):
        if len(cells) != len(HEADER):
            raise TableError(f"{path}:{number}: expected 2 columns network,label, got {len(cells)}")
        try:
            networks.append(ipaddress.ip_network(cells[0].strip(), strict=True))
        except ValueError as exc:
            raise TableError(f"{path}:{number}: bad network {cells[0].strip()!r}: {exc}") from None
    return Blocklist.of(networks)


BLOCKLIST: Lazy[Blocklist] = Lazy(ENV_VAR, DEFAULT_FILE, load_blocklist)


def is_blocked_ip(ip: str | None, blocklist: Blocklist | None = None) -> bool:
    return (BLOCKLIST.get() if blocklist is None else blocklist).contains(ip)


def reason(ua: str | None, ip: str | None, blocklist: Blocklist | None = None) -> str | None:
    """'bot_user_agent' if the agent is a bot, else 'blocked_ip' if the IP is in `blocklist`
    (default: the configured one), else None."""
    return reason_for(user_agent.is_bot(ua), ip, blocklist)


def reason_for(bot: bool, ip: str | None, blocklist: Blocklist | None = None) -> str | None:
    """reason() for an agent already known to be a bot or not (udfs.enrichment.Enricher knows it
    per agent): a bot takes precedence over a blocked IP."""
    if bot:
        return BOT_USER_AGENT
    if is_blocked_ip(ip, blocklist):
        return BLOCKED_IP
    return None
