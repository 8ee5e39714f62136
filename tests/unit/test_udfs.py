"""Unit tests for the enrichment UDFs (udfs/): the pure logic and shipped tables against the
traffic catalog's ground truth, table validation, the GeoIP importer and the PyFlink wrappers.
No JVM."""

from __future__ import annotations

import ast
import csv
import ipaddress
import random
import warnings
from pathlib import Path

import pytest

from adagg import traffic_catalog as cat
from udfs import _ip, dimensions, enrichment, geo, geoip_import, invalid_traffic, user_agent
from udfs._tables import DATA_DIR, TableError

UDFS_DIR = Path(user_agent.__file__).resolve().parent
TABLES = (geo.TABLE, dimensions.TABLE, invalid_traffic.BLOCKLIST)


@pytest.fixture(autouse=True)
def fresh_tables(monkeypatch):
    """No table override leaks in from the environment or from another test."""
    for lazy in TABLES:
        monkeypatch.delenv(lazy.env_var, raising=False)
        lazy.reset()
    yield
    for lazy in TABLES:
        lazy.reset()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def hosts(network: str) -> list[str]:
    """First, last and a middle address of a network."""
    net = ipaddress.ip_network(network)
    first, last = int(net.network_address), int(net.broadcast_address)
    return [str(ipaddress.ip_address(a)) for a in (first, (first + last) // 2 + 7, last)]


# --- user agents -------------------------------------------------------------------------------

@pytest.mark.parametrize("agent", cat.USER_AGENTS, ids=lambda a: f"{a.device_type}-{a.browser}")
def test_catalog_agent_labels(agent: cat.Agent) -> None:
    assert user_agent.parse(agent.user_agent) == (agent.device_type, agent.os, agent.browser)
    assert user_agent.is_bot(agent.user_agent) is agent.is_bot


@pytest.mark.parametrize("ua, expected", [
    ("Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
     ("mobile", "Android", "Firefox Mobile")),
    ("Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0",
     ("tablet", "Android", "Firefox Mobile")),
    ("Mozilla/5.0 (iPod touch; CPU iPhone OS 12_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/12.0 Mobile/15E148 Safari/604.1", ("mobile", "iOS", "Mobile Safari")),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", ("desktop", "Chrome OS", "Chrome")),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
     ("desktop", "Ubuntu", "Firefox")),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", ("bot", "Other", "YandexBot")),
    ("curl/8.4.0", ("bot", "Other", "curl")),
    ("Go-http-client/1.1", ("bot", "Other", "Go-http-client")),
    ("Mozilla/5.0 PYTHON-REQUESTS/2.0", ("bot", "Other", "Other")),  # case-insensitive list match
    ("garbage", ("other", "Other", "Other")),
    ("\x00\xff" * 5, ("other", "Other", "Other")),
])
def test_other_agents(ua: str, expected: tuple[str, str, str]) -> None:
    assert user_agent.parse(ua) == expected
    assert user_agent.is_bot(ua) is (expected[0] == "bot")


@pytest.mark.parametrize("ua", [None, "", "   "])
def test_missing_agent_is_other_and_a_bot(ua) -> None:
    assert user_agent.parse(ua) == ("other", "Other", "Other")
    assert user_agent.is_bot(ua) is True
    assert invalid_traffic.reason(ua, "23.32.0.1") == cat.REASON_BOT


def test_parse_is_cached() -> None:
    ua = cat.USER_AGENTS[0].user_agent
    user_agent.parse(ua)
    hits = user_agent.parse.cache_info().hits
    assert user_agent.parse(ua) is user_agent.parse(ua)
    assert user_agent.parse.cache_info().hits == hits + 2
    assert user_agent.parse.cache_info().maxsize == user_agent.CACHE_SIZE


def test_bot_list() -> None:
    subs = user_agent.bot_substrings()
    for needed in ("googlebot", "bingbot", "python-requests", "curl", "headlesschrome"):
        assert any(needed in s for s in subs), needed
    assert all(s == s.lower() and s.strip() == s for s in subs)
    assert "bot" not in subs, "a bare 'bot' would also match phone models (Cubot)"


# --- geo ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("country, network", sorted(cat.COUNTRY_NETWORKS.items()))
def test_country_networks(country: str, network: str) -> None:
    for host in hosts(network):
        assert geo.country(host) == country, host
    net = ipaddress.ip_network(network)
    for outside in (net.network_address - 1, net.broadcast_address + 1):
        assert geo.country(str(outside)) != country


@pytest.mark.parametrize("network", [cat.UNKNOWN_NETWORK, *cat.BLOCKED_NETWORKS])
def test_unknown_and_blocked_networks_are_zz(network: str) -> None:
    for host in hosts(network):
        assert geo.country(host) == cat.UNKNOWN_COUNTRY


@pytest.mark.parametrize("ip", [None, "", "garbage", "2001:db8::1", "::ffff:23.32.0.1", "23.32.0.256",
                                "023.32.0.1", " 23.32.0.1", "23.32.0", "23.32.0.1/32"])
def test_bad_addresses_are_zz(ip) -> None:
    assert geo.country(ip) == "ZZ"


def test_shipped_country_table_holds_the_catalog_networks() -> None:
    table = geo.load_table(DATA_DIR / "ip_country.csv")
    rows = {(s, e): c for s, e, c in zip(table.starts, table.ends, table.countries)}
    for country, network in cat.COUNTRY_NETWORKS.items():
        net = ipaddress.ip_network(network)
        assert rows.get((int(net.network_address), int(net.broadcast_address))) == country
    for network in (cat.UNKNOWN_NETWORK, *cat.BLOCKED_NETWORKS):
        net = ipaddress.ip_network(network)
        for s, e in rows:
            assert e < int(net.network_address) or s > int(net.broadcast_address), network
    assert "not real geography" in (DATA_DIR / "ip_country.csv").read_text().lower()


def test_fast_ipv4_parser_agrees_with_ipaddress() -> None:
    def reference(s):
        try:
            return int(ipaddress.IPv4Address(s))
        except ValueError:
            return None

    rng = random.Random(3)
    cases = ["1.2.3.4", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.04", "00.0.0.0", "256.1.1.1",
             "1.2.3", "1.2.3.4.5", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "1.2.3.4\x00", "１.2.3.4",
             "١.٢.٣.٤", "0x1.2.3.4", "1..3.4", "", "1.2.3.-4", "+1.2.3.4", "1.2.3.4/32", "1.2.3.4%eth0",
             "::1", "::ffff:1.2.3.4", "1.2.3.0004", "é", "1e1.2.3.4", "1_0.2.3.4", "4294967295"]
    cases += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(2000)]
    for s in cases:
        assert _ip.ipv4_int(s) == reference(s), repr(s)
    assert _ip.ipv4_int(None) is None
    assert _ip.ip_version_int("2001:db8::1") == (6, int(ipaddress.IPv6Address("2001:db8::1")))
    assert _ip.ip_version_int("1.2.3.4") == (4, 16909060)
    assert _ip.ip_version_int("nope:") is None


HEADER = "start_ip,end_ip,country\n"


@pytest.mark.parametrize("body, message", [
    ("", "empty table"),
    ("start,end,cc\n", "expected header"),
    (HEADER + "1.0.0.0,1.0.0.255\n", "expected 3 columns"),
    (HEADER + "1.0.0.x,1.0.0.255,US\n", "start_ip '1.0.0.x' is not an IPv4 address"),
    (HEADER + "1.0.0.0,::1,US\n", "end_ip '::1' is not an IPv4 address"),
    (HEADER + "1.0.0.9,1.0.0.1,US\n", "end_ip 1.0.0.1 is before start_ip 1.0.0.9"),
    (HEADER + "1.0.0.0,1.0.0.255,usa\n", "not a two-letter upper-case ISO code"),
    (HEADER + "2.0.0.0,2.0.0.255,US\n1.0.0.0,1.0.0.255,DE\n", "not sorted"),
    (HEADER + "1.0.0.0,1.0.1.255,US\n1.0.1.0,1.0.2.255,DE\n", "overlaps the previous row"),
    (HEADER + "1.0.0.0,1.0.0.255,US\n1.0.0.255,1.0.0.255,US\n", "overlaps the previous row"),
])
def test_country_table_validation(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path / "t.csv", "# comment\n\n" + body)
    with pytest.raises(TableError, match=message) as err:
        geo.load_table(path)
    assert str(path) in str(err.value)


def test_country_table_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "# c\n" + HEADER + "1.0.0.0,1.0.0.255,US\n\n1.0.0.200,1.0.1.0,DE\n")
    with pytest.raises(TableError, match=rf"{path}:5: range 1\.0\.0\.200-1\.0\.1\.0 overlaps .*line 3"):
        geo.load_table(path)


def test_missing_table_file(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="cannot read table"):
        geo.load_table(tmp_path / "nope.csv")


def test_country_table_env_override_read_once(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "t.csv", HEADER + "23.32.0.0,23.32.0.255,CA\n")
    monkeypatch.setenv(geo.ENV_VAR, str(path))
    assert geo.country("23.32.0.1") == "CA"
    assert geo.country("46.114.0.1") == "ZZ"
    monkeypatch.delenv(geo.ENV_VAR)
    assert geo.country("23.32.0.1") == "CA", "the variable is read once per process"
    geo.TABLE.reset()
    assert geo.country("23.32.0.1") == "US"


# --- campaigns ---------------------------------------------------------------------------------

def test_campaign_table_agrees_with_catalog() -> None:
    with open(DATA_DIR / "campaigns.csv", newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    assert [r["campaign_id"] for r in rows] == [cat.campaign_id(n) for n in range(1, cat.CAMPAIGNS + 1)]
    for n, row in enumerate(rows, start=1):
        cid = cat.campaign_id(n)
        assert row["advertiser_id"] == cat.advertiser_id(n), cid
        assert row["vertical"] == cat.campaign_vertical(cid), cid
        assert row["campaign_name"], cid
        assert dimensions.vertical(cid) == cat.campaign_vertical(cid)
        assert dimensions.campaign(cid).advertiser_id == cat.advertiser_id(n)


ODD_CAMPAIGNS = ["", "camp-0000", "camp-0301", "camp-1", "CAMP-0001", "x", " camp-0001", "camp-0001 ",
                 "camp-0001\x1f", "\x1fcamp-0001", "camp-\u0661\u0662", "camp-0001|x", "camp-0001\\", "camp-0001'"]


@pytest.mark.parametrize("cid", [None, *ODD_CAMPAIGNS])
def test_unknown_campaigns(cid) -> None:
    # Only ids in the table are known, to the UDF and to the catalog alike.
    assert dimensions.vertical(cid) == cat.UNKNOWN_VERTICAL
    if cid is not None:
        assert cat.campaign_vertical(cid) == cat.UNKNOWN_VERTICAL


def test_fuzzed_campaigns_get_the_oracles_vertical_through_the_sql_packing() -> None:
    """What the job computes for a campaign id (enrichment_input's packing, which sends an id holding
    CHR(31) as '', then the UDF) equals what the oracle expects, for the table's ids and for fuzzed,
    unknown and odd ones."""
    from adagg import fuzz_ids
    from adagg.oracle import enrich as oracle_enrich

    rng = random.Random(20)
    ids = [cat.campaign_id(n) for n in range(1, cat.CAMPAIGNS + 1)] + ODD_CAMPAIGNS
    ids += [fuzz_ids.fuzz_id(rng, cat.campaign_id(rng.randint(1, cat.CAMPAIGNS)), fuzz_ids.MAX_LENGTH["campaign_id"],
                             flavour) for flavour in fuzz_ids.FLAVOURS for _ in range(20)]
    assert any(enrichment.SEPARATOR in cid for cid in ids)
    enricher = enrichment.Enricher()
    agent = cat.USER_AGENTS[0].user_agent
    for cid in ids:
        packed = enricher.packed(*enrichment.unpack_input(enrichment.pack_input(agent, "23.32.1.1", cid)))
        event = {"event_id": "e", "event_type": "click", "event_time": 0, "ad_id": "a", "user_id": "u",
                 "user_agent": agent, "ip": "23.32.1.1", "campaign_id": cid}
        assert enrichment.unpack(packed).vertical == oracle_enrich(event)["vertical"], repr(cid)


CAMP_HEADER = "campaign_id,advertiser_id,campaign_name,vertical\n"


@pytest.mark.parametrize("body, message", [
    ("", "empty table"),
    ("campaign_id,vertical\n", "expected header"),
    (CAMP_HEADER + "c1,a1,name\n", "expected 4 columns"),
    (CAMP_HEADER + "c1,a1,name,\n", "must not be empty"),
    (CAMP_HEADER + "c1,a1,name,retail\nc1,a1,other,travel\n", "duplicate campaign_id c1"),
])
def test_campaign_table_validation(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(TableError, match=message):
        dimensions.load_table(write(tmp_path / "c.csv", body))


def test_campaign_table_env_override(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "c.csv", CAMP_HEADER + 'camp-0001,adv-001,"Sale, big",food\n')
    monkeypatch.setenv(dimensions.ENV_VAR, str(path))
    assert dimensions.vertical("camp-0001") == "food"
    assert dimensions.campaign("camp-0001").campaign_name == "Sale, big"
    assert dimensions.vertical("camp-0002") == "unknown"


# --- invalid traffic ---------------------------------------------------------------------------

HUMAN = cat.USER_AGENTS[0].user_agent
BOT = next(a.user_agent for a in cat.USER_AGENTS if a.is_bot)


@pytest.mark.parametrize("network", cat.BLOCKED_NETWORKS)
def test_blocked_networks(network: str) -> None:
    for host in hosts(network):
        assert invalid_traffic.reason(HUMAN, host) == cat.REASON_BLOCKED_IP
        assert invalid_traffic.reason(BOT, host) == cat.REASON_BOT, "a bot on a blocked ip is a bot"
    net = ipaddress.ip_network(network)
    for outside in (net.network_address - 1, net.broadcast_address + 1):
        assert invalid_traffic.reason(HUMAN, str(outside)) is None


def test_reasons_for_every_catalog_agent_and_network() -> None:
    ips = [hosts(n)[1] for n in (*cat.COUNTRY_NETWORKS.values(), cat.UNKNOWN_NETWORK, *cat.BLOCKED_NETWORKS)]
    for agent in cat.USER_AGENTS:
        for ip in ips:
            blocked = any(ipaddress.ip_address(ip) in ipaddress.ip_network(n) for n in cat.BLOCKED_NETWORKS)
            expected = cat.REASON_BOT if agent.is_bot else (cat.REASON_BLOCKED_IP if blocked else None)
            assert invalid_traffic.reason(agent.user_agent, ip) == expected, (agent.user_agent, ip)


@pytest.mark.parametrize("ip", [None, "", "garbage", "185.220.101", "::1", "::ffff:185.220.101.7"])
def test_unparsable_or_unlisted_ips_are_not_blocked(ip) -> None:
    assert invalid_traffic.reason(HUMAN, ip) is None


def test_shipped_blocklist_is_the_catalog() -> None:
    with open(DATA_DIR / "ip_blocklist.csv", newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    assert sorted(r["network"] for r in rows) == sorted(cat.BLOCKED_NETWORKS)


BLOCK_HEADER = "network,label\n"


def test_blocklist_ipv6_overlaps_and_env(tmp_path: Path, monkeypatch) -> None:
    body = BLOCK_HEADER + "2001:db8::/32,v6\n10.0.0.0/8,a\n10.1.0.0/16,inside a\n11.0.0.0/8,\n"
    monkeypatch.setenv(invalid_traffic.ENV_VAR, str(write(tmp_path / "b.csv", body)))
    assert invalid_traffic.reason(HUMAN, "2001:db8::42") == "blocked_ip"
    assert invalid_traffic.reason(HUMAN, "2001:db9::1") is None
    assert invalid_traffic.reason(HUMAN, "10.1.2.3") == "blocked_ip"
    assert invalid_traffic.reason(HUMAN, "11.255.255.255") == "blocked_ip"
    assert invalid_traffic.reason(HUMAN, "185.220.101.7") is None  # not in this list


@pytest.mark.parametrize("body, message", [
    ("", "empty blocklist"),
    ("net,label\n", "expected header"),
    (BLOCK_HEADER + "10.0.0.0/8\n", "expected 2 columns"),
    (BLOCK_HEADER + "10.0.0.1/8,x\n", "has host bits set"),
    (BLOCK_HEADER + "nope,x\n", "bad network 'nope'"),
])
def test_blocklist_validation(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(TableError, match=message):
        invalid_traffic.load_blocklist(write(tmp_path / "b.csv", body))


# --- GeoIP import ------------------------------------------------------------------------------

BLOCKS = """network,geoname_id,registered_country_geoname_id,represented_country_geoname_id,is_anonymous_proxy,is_satellite_provider
1.0.0.0/24,2077456,2077456,,0,0
1.0.1.0/24,1814991,1814991,,0,0
1.0.2.0/23,1814991,1814991,,0,0
1.0.4.0/22,2077456,2077456,,0,0
1.0.16.0/24,1814991,1814991,,0,0
2.0.0.0/16,,3017382,,1,0
3.0.0.0/24,6255148,6255148,,0,0
4.0.0.0/24,,,,0,1
"""
LOCATIONS = """geoname_id,locale_code,continent_code,continent_name,country_iso_code,country_name,is_in_european_union
2077456,en,OC,Oceania,AU,Australia,0
1814991,en,AS,Asia,CN,China,0
3017382,en,EU,Europe,FR,France,1
6255148,en,EU,Europe,,,0
"""


def test_geoip_import(tmp_path: Path) -> None:
    blocks = write(tmp_path / "GeoLite2-Country-Blocks-IPv4.csv", BLOCKS)
    locations = write(tmp_path / "GeoLite2-Country-Locations-en.csv", LOCATIONS)
    out = tmp_path / "out" / "ip_country.csv"
    assert geoip_import.main(["--blocks", str(blocks), "--locations", str(locations), "--out", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    assert rows == [
        "start_ip,end_ip,country",
        "1.0.0.0,1.0.0.255,AU",
        "1.0.1.0,1.0.3.255,CN",   # two adjacent CN blocks merged
        "1.0.4.0,1.0.7.255,AU",
        "1.0.16.0,1.0.16.255,CN",  # not adjacent to the previous CN: kept apart
        "2.0.0.0,2.0.255.255,FR",  # no geoname_id: registered country
    ]                              # 3.0.0.0 (continent only) and 4.0.0.0 (no geoname) left out
    table = geo.load_table(out)
    assert table.lookup("1.0.2.9") == "CN"
    assert table.lookup("3.0.0.1") == "ZZ"
    assert table.lookup("1.0.8.0") == "ZZ"


def test_geoip_import_errors(tmp_path: Path, capsys) -> None:
    locations = write(tmp_path / "loc.csv", LOCATIONS)
    v6 = write(tmp_path / "v6.csv", BLOCKS.splitlines()[0] + "\n2001:db8::/32,2077456,2077456,,0,0\n")
    assert geoip_import.main(["--blocks", str(v6), "--locations", str(locations),
                              "--out", str(tmp_path / "o.csv")]) == 1
    assert "is IPv6; pass the Blocks-IPv4 file" in capsys.readouterr().err
    with pytest.raises(TableError, match="missing column"):
        geoip_import.read_locations(write(tmp_path / "bad.csv", "geoname_id,name\n1,x\n"))
    overlap = write(tmp_path / "o.csv", BLOCKS.splitlines()[0] + "\n1.0.0.0/16,2077456,,,0,0\n1.0.1.0/24,2077456,,,0,0\n")
    with pytest.raises(TableError, match="overlapping blocks"):
        geoip_import.convert(overlap, locations, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


# --- PyFlink wrappers --------------------------------------------------------------------------

def flink_modules():
    """udfs.flink and pyflink.table.udf, without the deprecation warnings pyflink emits on import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyflink.table import udf as pyflink_udf

        from udfs import flink
    return flink, pyflink_udf


SQL_FUNCTIONS = ("ua_device_type", "ua_os", "ua_browser", "ip_country", "campaign_vertical",
                 "invalid_traffic_reason")


def test_flink_module_exports_only_udf_wrappers() -> None:
    flink, pyflink_udf = flink_modules()
    UserDefinedScalarFunctionWrapper = pyflink_udf.UserDefinedScalarFunctionWrapper
    assert tuple(flink.__all__) == ("enrich_event", *SQL_FUNCTIONS)
    wrappers = {n for n, v in vars(flink).items() if isinstance(v, UserDefinedScalarFunctionWrapper)}
    assert wrappers == set(flink.__all__), "every wrapper is exported, and only wrappers are"
    for name in ("enrich_event", *SQL_FUNCTIONS):
        wrapper = getattr(flink, name)
        assert isinstance(wrapper, UserDefinedScalarFunctionWrapper), name
        assert wrapper._name == name
        assert wrapper._deterministic is True
        assert str(wrapper._result_type) == "VARCHAR", name  # DataTypes.STRING()


def test_enrich_event_equals_the_six_functions_and_the_catalog() -> None:
    flink, pyflink_udf = flink_modules()
    function = flink.enrich_event._func
    function.open(pyflink_udf.FunctionContext(None, {}))

    def enrich_event(ua, ip, campaign_id):
        return enrichment.unpack(function.eval(enrichment.pack_input(ua, ip, campaign_id)))

    for agent in cat.USER_AGENTS:
        for country, network in cat.COUNTRY_NETWORKS.items():
            ip = str(ipaddress.ip_network(network)[7])
            assert tuple(enrich_event(agent.user_agent, ip, "camp-0002")) == (
                agent.device_type, agent.os, agent.browser, country, "travel",
                cat.REASON_BOT if agent.is_bot else None)
    blocked = str(ipaddress.ip_network(cat.BLOCKED_NETWORKS[0])[3])
    assert tuple(enrich_event(cat.USER_AGENTS[0].user_agent, blocked, None)) == (
        "desktop", "Windows", "Chrome", "ZZ", "unknown", cat.REASON_BLOCKED_IP)
    assert tuple(enrichment.enrich(None, None, None)) == ("other", "Other", "Other", "ZZ", "unknown", cat.REASON_BOT)


SEP = enrichment.SEPARATOR
# Inputs where a shortcut could go wrong: NULL against '', the separator in every field, IPv6,
# blocked and unparsable addresses, bots, unknown campaigns.
ODD_INPUTS = [
    (None, None, None), ("", "", ""), ("   ", "10.0.0.1", "camp-0002"),
    (cat.USER_AGENTS[0].user_agent, None, "camp-0002"),
    (cat.USER_AGENTS[0].user_agent, "", ""),
    (f"Mozilla/5.0 {SEP} (Windows NT 10.0) Chrome/120.0", "23.32.1.1", "camp-0002"),
    (f"{SEP}{SEP}", "23.32.1.1", f"camp{SEP}0002"),
    (cat.USER_AGENTS[1].user_agent, f"23.32.1.1{SEP}", "camp-0002"),
    (cat.USER_AGENTS[1].user_agent, SEP, SEP),
    (cat.USER_AGENTS[2].user_agent, "2001:db8::1", "camp-9999"),
    (cat.USER_AGENTS[2].user_agent, "not an ip", "camp-0001"),
    (cat.USER_AGENTS[3].user_agent, str(ipaddress.ip_network(cat.BLOCKED_NETWORKS[0])[3]), "camp-0003"),
    # Fuzzed ids (adagg/fuzz_ids.py): astral, CJK, right-to-left text and quotes, in the campaign and the agent.
    (cat.USER_AGENTS[0].user_agent, "23.32.0.5", "camp-0001\U0001F680"),
    (cat.USER_AGENTS[0].user_agent + " \U0001F680\u5e7f'\"", "23.32.0.5", "\U0001F680" * 64),
    ("\U0001F680" * 300, "23.32.0.5", "\u00e9\u5e7f-\u05e2\u05d1|\\"),
    *[(agent.user_agent, str(ipaddress.ip_network(network)[9]), f"camp-{i:04d}")
      for i, (agent, network) in enumerate(zip(cat.USER_AGENTS, list(cat.COUNTRY_NETWORKS.values()) * 9))],
]


@pytest.mark.parametrize("ua,ip,campaign_id", ODD_INPUTS)
def test_enricher_packs_what_enrich_and_pack_do(ua, ip, campaign_id) -> None:
    expected = enrichment.pack(enrichment.enrich(ua, ip, campaign_id))
    enricher = enrichment.Enricher()
    assert enricher.packed(ua, ip, campaign_id) == expected
    # Through the UDF's one argument, as the SQL builds it: the same result.
    assert enricher.packed(*enrichment.unpack_input(enrichment.pack_input(ua, ip, campaign_id))) == expected


def test_enricher_agrees_with_enrich_on_random_catalog_events() -> None:
    rng = random.Random(7)
    enricher = enrichment.Enricher()
    networks = [*cat.COUNTRY_NETWORKS.values(), *cat.BLOCKED_NETWORKS]
    for _ in range(2000):
        ua = rng.choice(cat.USER_AGENTS).user_agent
        ip = rng.choice(hosts(rng.choice(networks)))
        campaign_id = f"camp-{rng.randrange(0, 40):04d}"
        assert enricher.packed(ua, ip, campaign_id) == enrichment.pack(enrichment.enrich(ua, ip, campaign_id))


def test_packed_input_reads_back_and_refuses_a_malformed_argument() -> None:
    assert enrichment.pack_input("UA", "10.0.0.1", "camp-0001") == f"10.0.0.1{SEP}camp-0001{SEP}UA"
    assert enrichment.unpack_input(enrichment.pack_input(f"U{SEP}A", "10.0.0.1", "c")) == (f"U{SEP}A", "10.0.0.1", "c")
    assert enrichment.unpack_input(enrichment.pack_input(None, None, None)) == (None, None, None)
    assert enrichment.unpack_input(None) == (None, None, None)
    with pytest.raises(ValueError, match="enrichment_input"):
        enrichment.unpack_input("Mozilla/5.0")


def test_enricher_refuses_a_campaign_id_holding_the_separator() -> None:
    campaigns = {f"camp{SEP}1": dimensions.Campaign(f"camp{SEP}1", "adv-1", "n", "food")}
    with pytest.raises(TableError, match="separator"):
        enrichment.Enricher(campaigns=campaigns)


def test_pack_puts_the_six_values_in_one_string_and_unpack_reads_them_back() -> None:
    valid = enrichment.Enrichment("mobile", "iOS", "Mobile Safari", "DE", "travel", None)
    assert enrichment.pack(valid) == "mobile\x1fiOS\x1fMobile Safari\x1fDE\x1ftravel\x1f"
    assert enrichment.unpack(enrichment.pack(valid)) == valid
    flagged = valid._replace(device_type="bot", invalid_reason=cat.REASON_BOT)
    assert enrichment.unpack(enrichment.pack(flagged)) == flagged
    # A separator inside a value (a family parsed out of a hostile agent) cannot shift the fields.
    odd = valid._replace(browser="Evil\x1fBrowser")
    assert enrichment.unpack(enrichment.pack(odd)) == odd._replace(browser="Evil Browser")


def test_flink_functions_evaluate_like_the_pure_modules(tmp_path: Path) -> None:
    flink, pyflink_udf = flink_modules()

    def opened(name: str, params: dict[str, str]):
        function = getattr(flink, name)._func
        if hasattr(function, "open"):
            function.open(pyflink_udf.FunctionContext(None, params))
        return function

    ua = cat.USER_AGENTS[4]
    assert opened("ua_device_type", {}).eval(ua.user_agent) == ua.device_type
    assert opened("ua_os", {}).eval(ua.user_agent) == ua.os
    assert opened("ua_browser", {}).eval(None) == "Other"
    assert opened("ip_country", {}).eval("23.32.1.1") == "US"
    assert opened("campaign_vertical", {}).eval("camp-0002") == "travel"
    assert opened("invalid_traffic_reason", {}).eval(ua.user_agent, "45.155.205.3") == "blocked_ip"
    assert opened("invalid_traffic_reason", {}).eval(ua.user_agent, None) is None

    # Job parameters name other tables, over the defaults.
    country = write(tmp_path / "geo.csv", HEADER + "23.32.0.0,23.32.255.255,CA\n")
    blocks = write(tmp_path / "b.csv", BLOCK_HEADER + "23.32.0.0/16,x\n")
    camps = write(tmp_path / "c.csv", CAMP_HEADER + "camp-0002,adv-1,n,food\n")
    assert set(flink.JOB_PARAMETERS) == {flink.IP_COUNTRY_TABLE, flink.IP_BLOCKLIST, flink.CAMPAIGN_TABLE}
    assert opened("ip_country", {flink.IP_COUNTRY_TABLE: str(country)}).eval("23.32.1.1") == "CA"
    assert opened("campaign_vertical", {flink.CAMPAIGN_TABLE: str(camps)}).eval("camp-0002") == "food"
    reason = opened("invalid_traffic_reason", {flink.IP_BLOCKLIST: str(blocks)})
    assert reason.eval(ua.user_agent, "23.32.1.1") == "blocked_ip"
    assert reason.eval(ua.user_agent, "45.155.205.3") is None
    enrich_event = opened("enrich_event", {flink.IP_COUNTRY_TABLE: str(country), flink.IP_BLOCKLIST: str(blocks),
                                           flink.CAMPAIGN_TABLE: str(camps)})
    assert enrichment.unpack(enrich_event.eval(enrichment.pack_input(ua.user_agent, "23.32.1.1", "camp-0002"))) == (
        ua.device_type, ua.os, ua.browser, "CA", "food", "blocked_ip")
    assert geo.country("23.32.1.1") == "US", "a job's table does not replace the process default"


def test_pure_modules_do_not_import_pyflink() -> None:
    for path in sorted(UDFS_DIR.glob("*.py")):
        if path.name in ("flink.py", "flink_check.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "pyflink" for n in names), path.name
