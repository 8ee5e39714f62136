"""Campaign dimension table: campaign_id -> (advertiser_id, campaign_name, vertical).

Format (CSV, UTF-8, parsed with the csv module so names may be quoted): optional '#' comment lines,
then the header `campaign_id,advertiser_id,campaign_name,vertical`, then one row per campaign,
campaign_id unique. The shipped table (udfs/data/campaigns.csv) covers camp-0001..camp-0300 and
agrees with adagg.traffic_catalog. ADAGG_CAMPAIGN_TABLE points to another file; it is read on
first lookup, once per process. A campaign that is not in the table has vertical 'unknown'.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from udfs._tables import Lazy, TableError, data_lines

ENV_VAR = "ADAGG_CAMPAIGN_TABLE"
DEFAULT_FILE = "campaigns.csv"
HEADER = ("campaign_id", "advertiser_id", "campaign_name", "vertical")
UNKNOWN_VERTICAL = "unknown"


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    advertiser_id: str
    campaign_name: str
    vertical: str


def load_table(path: str | Path) -> dict[str, Campaign]:
    path = Path(path)
    lines = list(data_lines(path))
    if not lines:
        raise TableError(f"{path}: empty table, expected header {','.join(HEADER)}")
    numbers = [n for n, _ in lines]
    rows = csv.reader([line for _, line in lines])
    header = tuple(c.strip() for c in next(rows))
    if header != HEADER:
        raise TableError(f"{path}:{numbers[0]}: expected header {','.join(HEADER)}, got {','.join(header)!r}")
    table: dict[str, Campaign] = {}
    for number, cells in zip(numbers[1:], rows):
        where = f"{path}:{number}"
        cells = [c.strip() for c in cells]
        if len(cells) != len(HEADER):
            raise TableError(f"{where}: expected {len(HEADER)} columns {','.join(HEADER)}, got {len(cells)}")
        campaign = Campaign(*cells)
        if not campaign.campaign_id or not campaign.vertical:
            raise TableError(f"{where}: campaign_id and vertical must not be empty")
        if campaign.campaign_id in table:
            raise TableError(f"{where}: duplicate campaign_id {campaign.campaign_id}")
        table[campaign.campaign_id] = campaign
    return table


TABLE: Lazy[dict[str, Campaign]] = Lazy(ENV_VAR, DEFAULT_FILE, load_table)


def campaign(campaign_id: str | None, table: dict[str, Campaign] | None = None) -> Campaign | None:
    if campaign_id is None:
        return None
    return (TABLE.get() if table is None else table).get(campaign_id)


def vertical(campaign_id: str | None, table: dict[str, Campaign] | None = None) -> str:
    """The campaign's vertical from `table` (default: the configured one); 'unknown' for NULL
    or a campaign not in the table."""
    found = campaign(campaign_id, table)
    return found.vertical if found is not None else UNKNOWN_VERTICAL
