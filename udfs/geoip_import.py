"""Convert a MaxMind GeoLite2-Country CSV download into our IP-to-country table (udfs.geo format).

    python -m udfs.geoip_import \\
        --blocks GeoLite2-Country-Blocks-IPv4.csv \\
        --locations GeoLite2-Country-Locations-en.csv \\
        --out /srv/adagg/ip_country.csv

then point the job at it with ADAGG_IP_COUNTRY_TABLE=/srv/adagg/ip_country.csv.

A block's country is its `geoname_id` (where MaxMind located it); blocks without one (anonymous
proxies, satellite providers) fall back to `registered_country_geoname_id`. A geoname without a
`country_iso_code` (a continent-only entry) and a block with no usable geoname are left out, so
they look up as 'ZZ'. Adjacent ranges of the same country are merged into one row. The output is
validated with the same loader the UDF uses before this command reports success.
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import sys
from pathlib import Path

from udfs import geo
from udfs._tables import TableError

BLOCK_COLUMNS = ("network", "geoname_id", "registered_country_geoname_id")
LOCATION_COLUMNS = ("geoname_id", "country_iso_code")


def _reader(path: Path, required: tuple[str, ...]):
    fh = open(path, newline="", encoding="utf-8-sig")
    reader = csv.DictReader(fh)
    missing = [c for c in required if c not in (reader.fieldnames or ())]
    if missing:
        fh.close()
        raise TableError(f"{path}: missing column(s) {', '.join(missing)}; is this the right GeoLite2 file?")
    return fh, reader


def read_locations(path: Path) -> dict[str, str]:
    """geoname_id -> ISO country code, for the geonames that have one."""
    fh, reader = _reader(path, LOCATION_COLUMNS)
    with fh:
        return {row["geoname_id"]: row["country_iso_code"].strip().upper()
                for row in reader if row["geoname_id"] and row["country_iso_code"].strip()}


def read_blocks(path: Path, countries: dict[str, str]) -> list[tuple[int, int, str]]:
    """(start, end, country) per block with a known country, sorted by start."""
    fh, reader = _reader(path, BLOCK_COLUMNS)
    ranges = []
    with fh:
        for line, row in enumerate(reader, start=2):
            try:
                net = ipaddress.ip_network(row["network"].strip(), strict=True)
            except ValueError:
                raise TableError(f"{path}:{line}: network {row['network']!r} is not a CIDR network") from None
            if net.version != 4:
                raise TableError(f"{path}:{line}: {net} is IPv6; pass the Blocks-IPv4 file")
            country = countries.get(row["geoname_id"]) or countries.get(row["registered_country_geoname_id"])
            if country:
                ranges.append((int(net.network_address), int(net.broadcast_address), country))
    ranges.sort()
    return ranges


def merge(ranges: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Join ranges that touch (end + 1 == next start) and share a country; reject overlaps."""
    merged: list[tuple[int, int, str]] = []
    for start, end, country in ranges:
        if merged:
            p_start, p_end, p_country = merged[-1]
            if start <= p_end:
                raise TableError(f"overlapping blocks: {ipaddress.IPv4Address(start)} starts inside "
                                 f"{ipaddress.IPv4Address(p_start)}-{ipaddress.IPv4Address(p_end)}")
            if start == p_end + 1 and country == p_country:
                merged[-1] = (p_start, end, country)
                continue
        merged.append((start, end, country))
    return merged


def write_table(ranges: list[tuple[int, int, str]], out: Path, source: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(f"# IPv4-to-country table converted by udfs.geoip_import from {source}.\n")
        fh.write("# This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com.\n")
        fh.write(",".join(geo.HEADER) + "\n")
        for start, end, country in ranges:
            fh.write(f"{ipaddress.IPv4Address(start)},{ipaddress.IPv4Address(end)},{country}\n")
    geo.load_table(tmp)  # the UDF's own validation: sorted, non-overlapping, well-formed
    tmp.replace(out)


def convert(blocks: Path, locations: Path, out: Path) -> int:
    """Write the table; returns its number of rows."""
    ranges = merge(read_blocks(Path(blocks), read_locations(Path(locations))))
    write_table(ranges, Path(out), f"{Path(blocks).name} + {Path(locations).name}")
    return len(ranges)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m udfs.geoip_import", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", required=True, type=Path, help="GeoLite2-Country-Blocks-IPv4.csv")
    parser.add_argument("--locations", required=True, type=Path, help="GeoLite2-Country-Locations-<lang>.csv")
    parser.add_argument("--out", required=True, type=Path, help="table to write (start_ip,end_ip,country)")
    args = parser.parse_args(argv)
    try:
        rows = convert(args.blocks, args.locations, args.out)
    except (TableError, OSError) as exc:
        print(f"geoip_import: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {rows} ranges to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
