"""Run the six SQL functions on a local PyFlink mini-cluster: a correctness smoke test, and an
optional throughput comparison against the same job without UDFs.

    .venv/bin/python -m udfs.flink_check                          # thread mode smoke test
    .venv/bin/python -m udfs.flink_check --mode process
    .venv/bin/python -m udfs.flink_check --bench 200000           # + datagen -> UDFs -> blackhole

Starts an in-process mini-cluster (no REST port is bound: rest.bind-port 0, loopback only), not
the project's stack. The functions are registered with `CREATE TEMPORARY SYSTEM FUNCTION ...
LANGUAGE PYTHON` exactly as a job would. The smoke test also names its own country table through
the `adagg.ip-country-table` job parameter, to check that open() sees job parameters.

Thread mode needs the venv's site-packages and the repository root on PYTHONPATH of the Flink
processes; this script sets it (before the JVM starts) unless it is already there.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = ("ua_device_type", "ua_os", "ua_browser", "ip_country", "campaign_vertical",
             "invalid_traffic_reason")
JOB_PARAM_NET = ("240.0.0.0", "240.0.0.255", "AQ")  # reserved range, only in the job's own table


def python_path() -> str:
    """site-packages of this interpreter + repository root, then whatever PYTHONPATH held."""
    parts = [sysconfig.get_paths()["purelib"], str(REPO)]
    parts += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in parts]
    return os.pathsep.join(parts)


def flink_config(mode: str) -> dict[str, str]:
    return {
        "python.execution-mode": mode,
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "parallelism.default": "1",
        "rest.bind-port": "0",
        "rest.bind-address": "127.0.0.1",
        "rest.address": "127.0.0.1",
    }


def table_env(mode: str, extra: dict[str, str] | None = None):
    os.environ["PYTHONPATH"] = python_path()  # inherited by the JVM the gateway starts
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in {**flink_config(mode), **(extra or {})}.items():
        t_env.get_config().set(key, value)
    for name in FUNCTIONS:
        t_env.execute_sql(registration(name))
    return t_env


def registration(name: str) -> str:
    return f"CREATE TEMPORARY SYSTEM FUNCTION {name} AS 'udfs.flink.{name}' LANGUAGE PYTHON"


def _sql_str(value: str | None) -> str:
    return "CAST(NULL AS STRING)" if value is None else "'" + value.replace("'", "''") + "'"


def smoke_rows() -> list[tuple[str | None, str | None, str | None]]:
    from adagg import traffic_catalog as cat

    agents = [a.user_agent for a in cat.USER_AGENTS] + [None, "", "garbage"]
    ips = ["23.32.7.9", "185.220.101.7", "45.155.205.1", "10.20.3.4", "240.0.0.5", None,
           "2001:db8::1", "not-an-ip", "46.114.255.255"]
    camps = ["camp-0001", "camp-0300", "camp-0301", None, "x"]
    n = max(len(agents), len(ips), len(camps))
    return [(agents[i % len(agents)], ips[i % len(ips)], camps[i % len(camps)]) for i in range(n)]


def smoke(mode: str) -> bool:
    from udfs import dimensions, geo, invalid_traffic, user_agent

    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "ip_country.csv"
        shipped = (geo.TABLE.path()).read_text()
        table.write_text(shipped.rstrip("\n") + "\n" + ",".join(JOB_PARAM_NET) + "\n")
        t_env = table_env(mode, {"pipeline.global-job-parameters": f"adagg.ip-country-table:{table}"})
        rows = smoke_rows()
        values = ",\n".join(f"({', '.join(_sql_str(v) for v in row)})" for row in rows)
        query = (f"SELECT ua, ip, camp, ua_device_type(ua), ua_os(ua), ua_browser(ua), ip_country(ip), "
                 f"campaign_vertical(camp), invalid_traffic_reason(ua, ip) "
                 f"FROM (VALUES {values}) AS v(ua, ip, camp)")
        started = time.monotonic()
        with t_env.execute_sql(query).collect() as results:
            got = [tuple(r) for r in results]
        elapsed = time.monotonic() - started
        country_table = geo.load_table(table)
    expected = []
    for ua, ip, camp in rows:
        parsed = user_agent.parse(ua)
        expected.append((ua, ip, camp, parsed.device_type, parsed.os, parsed.browser,
                         geo.country(ip, country_table), dimensions.vertical(camp),
                         invalid_traffic.reason(ua, ip)))
    ok = sorted(got, key=repr) == sorted(expected, key=repr)
    print(f"[{mode}] smoke: {len(got)} rows in {elapsed:.1f} s, "
          f"{'all equal to the pure functions' if ok else 'MISMATCH'}")
    for row in got:
        print("   ", (str(row[0])[:40],) + row[1:])
    if not ok:
        for row in sorted(set(expected) - set(got), key=repr):
            print("  expected, missing:", row)
    return ok


BENCH_IPS = ("23.32", "46.114", "51.140", "90.84", "126.0", "177.32", "49.36", "1.128", "10.20",
             "185.220", "45.155")


def bench_sql(rows: int, with_udfs: bool) -> list[str]:
    from adagg import traffic_catalog as cat

    agents = [a.user_agent for a in cat.USER_AGENTS]
    ua_case = " ".join(f"WHEN {i} THEN {_sql_str(a)}" for i, a in enumerate(agents))
    ip_case = " ".join(f"WHEN {i} THEN '{p}.'" for i, p in enumerate(BENCH_IPS))
    if with_udfs:
        select = ("ua_device_type(ua), ua_os(ua), ua_browser(ua), ip_country(ip), "
                  "campaign_vertical(camp), invalid_traffic_reason(ua, ip)")
    else:
        select = "ua, ua, ua, ip, camp, ip"
    return [
        f"""CREATE TEMPORARY TABLE gen (a INT, p INT, h1 INT, h2 INT, c INT) WITH (
            'connector' = 'datagen', 'rows-per-second' = '100000000', 'number-of-rows' = '{rows}',
            'fields.a.min' = '0', 'fields.a.max' = '{len(agents)}',
            'fields.p.min' = '0', 'fields.p.max' = '{len(BENCH_IPS) - 1}',
            'fields.h1.min' = '0', 'fields.h1.max' = '255', 'fields.h2.min' = '0', 'fields.h2.max' = '255',
            'fields.c.min' = '1', 'fields.c.max' = '320')""",
        f"""CREATE TEMPORARY VIEW events AS SELECT
            CASE a {ua_case} ELSE CAST(NULL AS STRING) END AS ua,
            CONCAT(CASE p {ip_case} END, CAST(h1 AS STRING), '.', CAST(h2 AS STRING)) AS ip,
            CONCAT('camp-', LPAD(CAST(c AS STRING), 4, '0')) AS camp
            FROM gen""",
        """CREATE TEMPORARY TABLE sink (d STRING, o STRING, b STRING, country STRING, vertical STRING,
            reason STRING) WITH ('connector' = 'blackhole')""",
        f"INSERT INTO sink SELECT {select} FROM events",
    ]


def bench(mode: str, rows: int, with_udfs: bool) -> float:
    t_env = table_env(mode)
    *ddl, insert = bench_sql(rows, with_udfs)
    for statement in ddl:
        t_env.execute_sql(statement)
    started = time.monotonic()
    result = t_env.execute_sql(insert)
    job = result.get_job_client().get_job_execution_result().result()
    wall = time.monotonic() - started
    runtime_s = job.get_net_runtime() / 1000
    rate = rows / runtime_s
    print(f"[{mode}] {'six UDFs' if with_udfs else 'no UDFs '}: {rows} rows, job runtime {runtime_s:.1f} s "
          f"(wall {wall:.1f} s) -> {rate:,.0f} rows/s", flush=True)
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m udfs.flink_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("thread", "process"), default="thread")
    parser.add_argument("--bench", type=int, metavar="ROWS", help="also run the throughput comparison")
    parser.add_argument("--bench-only", choices=("udfs", "baseline"),
                        help="run one benchmark job and nothing else (used for one job per process)")
    args = parser.parse_args(argv)
    print(f"PYTHONPATH={python_path()}")
    print("config:", " ".join(f"{k}={v}" for k, v in flink_config(args.mode).items()), flush=True)
    if args.bench_only:
        bench(args.mode, args.bench or 200_000, args.bench_only == "udfs")
        return 0
    ok = smoke(args.mode)
    if args.bench:
        base = bench(args.mode, args.bench, with_udfs=False)
        with_udfs = bench(args.mode, args.bench, with_udfs=True)
        print(f"[{args.mode}] ratio with/without UDFs: {with_udfs / base:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
