"""IPv4 address -> ISO 3166 country code, from a table of address ranges looked up by bisect.

Table format (CSV, UTF-8): optional '#' comment lines, then the header `start_ip,end_ip,country`,
then one row per inclusive IPv4 range, sorted by start_ip, ranges not overlapping:

    # comment
    start_ip,end_ip,country
    1.128.0.0,1.128.255.255,AU

The shipped table (udfs/data/ip_country.csv) is a small made-up sample, not real geography.
ADAGG_IP_COUNTRY_TABLE points to another file (e.g. one made by udfs.geoip_import from a
GeoLite2-Country download); it is read on first lookup, once per process.

Unknown, unparsable, IPv6 and NULL addresses give 'ZZ'.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from udfs._ip import ipv4_int
from udfs._tables import Lazy, TableError, data_lines

ENV_VAR = "ADAGG_IP_COUNTRY_TABLE"
DEFAULT_FILE = "ip_country.csv"
HEADER = ("start_ip", "end_ip", "country")
UNKNOWN = "ZZ"
_COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class IpRangeTable:
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    countries: tuple[str, ...]

    def lookup_int(self, address: int) -> str:
        i = bisect.bisect_right(self.starts, address) - 1
        if i >= 0 and address <= self.ends[i]:
            return self.countries[i]
        return UNKNOWN

    def lookup(self, ip: str | None) -> str:
        address = ipv4_int(ip)
        return UNKNOWN if address is None else self.lookup_int(address)

    def __len__(self) -> int:
        return len(self.starts)


def _parse_ip(text: str, where: str, column: str) -> int:
    address = ipv4_int(text)
    if address is None:
        raise TableError(f"{where}: {column} {text!r} is not an IPv4 address")
    return address


def parse_rows(rows, source: str = "<table>") -> IpRangeTable:
    """Validate (line_number, line) rows, header first, into a table. Raises TableError."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        raise TableError(f"{source}: empty table, expected header {','.join(HEADER)}")
    number, line = first
    if tuple(c.strip() for c in line.split(",")) != HEADER:
        raise TableError(f"{source}:{number}: expected header {','.join(HEADER)}, got {line!r}")
    starts: list[int] = []
    ends: list[int] = []
    countries: list[str] = []
    previous_line = None
    for number, line in rows:
        where = f"{source}:{number}"
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 3:
            raise TableError(f"{where}: expected 3 columns start_ip,end_ip,country, got {len(cells)}")
        start = _parse_ip(cells[0], where, "start_ip")
        end = _parse_ip(cells[1], where, "end_ip")
        country = cells[2]
        if end < start:
            raise TableError(f"{where}: end_ip {cells[1]} is before start_ip {cells[0]}")
        if not _COUNTRY.fullmatch(country):
            raise TableError(f"{where}: country {country!r} is not a two-letter upper-case ISO code")
        if starts:
            if start < starts[-1]:
                raise TableError(f"{where}: not sorted: start_ip {cells[0]} comes before the previous "
                                 f"row's (line {previous_line}); sort the rows by start_ip")
            if start <= ends[-1]:
                raise TableError(f"{where}: range {cells[0]}-{cells[1]} overlaps the previous row "
                                 f"(line {previous_line}), which ends at {ipaddress.IPv4Address(ends[-1])}")
        starts.append(start)
        ends.append(end)
        countries.append(sys.intern(country))
        previous_line = number
    return IpRangeTable(tuple(starts), tuple(ends), tuple(countries))


def load_table(path: str | Path) -> IpRangeTable:
    path = Path(path)
    return parse_rows(data_lines(path), str(path))


TABLE: Lazy[IpRangeTable] = Lazy(ENV_VAR, DEFAULT_FILE, load_table)


def country(ip: str | None, table: IpRangeTable | None = None) -> str:
    """ISO country of an IPv4 address from `table` (default: the configured one); 'ZZ' when unknown."""
    return (TABLE.get() if table is None else table).lookup(ip)
