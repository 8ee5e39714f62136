"""Rendering of the templated Flink SQL: every environment renders, the statements split, and the
logic the guide requires is present; environment values never appear in the templates."""

import re

import pytest

from adagg import env as envs
from adagg.paths import SQL_DIR
from adagg.contract import EVENT_TYPES
from adagg.sql import example_params, jobs, marts, pipeline_version, render, split_statements, topics


@pytest.mark.parametrize("env_name", envs.names())
@pytest.mark.parametrize("job", jobs())
def test_renders_and_splits(env_name, job):
    sql = render(env_name, job, **example_params(job))
    env = envs.load(env_name)
    statements = split_statements(sql)
    assert "{{" not in sql and "{%" not in sql
    if job == "backfill":  # batch over the archive: no Kafka
        assert statements[-1].startswith("INSERT INTO snk_backfill_ad_minute") and "'connector' = 'kafka'" not in sql
        return
    assert statements[-1].startswith("EXECUTE STATEMENT SET")
    assert statements[-1].rstrip().endswith("END")
    assert env.kafka.bootstrap_servers in sql
    for key, topic in env.topics.items():
        if key not in ("dlq", "reconciliations"):  # the collector's and reconciliation's; no job reads them
            assert f"'topic' = '{topic.name}'" in sql


def test_streaming_job_logic():
    sql = render("local")
    assert "WATERMARK FOR ts AS ts - INTERVAL '10' SECOND - INTERVAL '5' SECOND" in sql
    assert "CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts)" in sql
    assert "ts <= CURRENT_WATERMARK(ts)" in sql
    assert "ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC)" in sql
    assert "ROW_NUMBER() OVER (PARTITION BY billing_key ORDER BY proc_time ASC)" in sql
    assert "WHEN 'conversion' THEN 3600000" in sql and "WHEN 'click' THEN 60000" in sql
    assert "TUMBLE(TABLE int_event_measures, DESCRIPTOR(ts), INTERVAL '1' MINUTE)" in sql
    assert "HOP(TABLE int_ad_minute, DESCRIPTOR(minute_time), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)" in sql
    assert "TUMBLE(TABLE int_ad_minute, DESCRIPTOR(minute_time), INTERVAL '1' HOUR)" in sql
    assert "TUMBLE(TABLE int_ad_hour, DESCRIPTOR(hour_time), INTERVAL '1' DAY)" in sql
    assert "ORDER BY billable_clicks DESC, ad_id ASC" in sql and "WHERE ad_rank <= 100" in sql
    # every mart is written, all exactly-once except the live tier's upsert changelog
    assert sql.count("'sink.delivery-guarantee' = 'exactly-once'") == len(marts()) - 1 + 1  # + late events
    assert sql.count("'connector' = 'upsert-kafka'") == 1
    assert "SET 'table.exec.state.ttl' = '2 h';" in sql
    assert "SET 'execution.checkpointing.interval' = '5 s';" in sql
    assert "SET 'execution.checkpointing.checkpoints-after-tasks-finish' = 'false';" in sql  # stop under back-pressure
    assert "SET 'table.exec.mini-batch.enabled' = 'false';" in sql
    assert "SET 'table.optimizer.agg-phase-strategy' = 'TWO_PHASE';" in sql
    assert "SET 'python.execution-mode' = 'thread';" in sql
    assert "'properties.isolation.level' = 'read_committed'" in sql
    assert f"'{pipeline_version()}' AS pipeline_version" in sql
    for mart in marts():
        assert f"INSERT INTO snk_{mart} SELECT * FROM mart_{mart};" in sql


# ---- the job without its Python UDF: the UDF-overhead benchmark's baseline (issue 21) ----

def _sql_enrichment(lookup: dict, ua: str | None, ip: str | None, campaign_id: str | None) -> str:
    """What sql/macros/enrichment.sql computes for one event, read as SQL reads it (a CASE takes its
    first matching WHEN, LIKE 'p%' is "starts with p", NULL matches nothing), packed as the UDF's
    result is."""
    from udfs.enrichment import SEPARATOR

    fallback, reasons = lookup["fallback"], lookup["reasons"]
    agent = next((a for a in lookup["agents"] if ua is not None and a["user_agent"] == ua), None)
    device = (agent or fallback)["device_type"], (agent or fallback)["os"], (agent or fallback)["browser"]
    country = next((n["country"] for n in lookup["countries"] if ip is not None and ip.startswith(n["prefix"])),
                   fallback["country"])
    vertical = next((g["vertical"] for g in lookup["verticals"] if campaign_id in g["campaigns"]),
                    fallback["vertical"])
    if agent is not None and agent["bot"]:
        reason = reasons["bot"]
    elif ip is not None and any(ip.startswith(prefix) for prefix in lookup["blocked"]):
        reason = reasons["blocked"]
    else:
        reason = ""
    return SEPARATOR.join([*device, country, vertical, reason])


def test_without_python_udfs_the_view_renders_every_row_of_the_lookup_and_calls_no_udf():
    from adagg.sql import enrichment_lookup, sql_string

    lookup = enrichment_lookup()
    view = _views(render("local", python_udfs=False))["int_deliveries_enriched"]
    assert "enrich_event(" not in view and "SPLIT(CONCAT_WS(CHR(31),\n    CASE user_agent\n" in view
    for agent in lookup["agents"]:
        assert f"      WHEN {sql_string(agent['user_agent'])}\n" in view
    assert view.count("THEN CONCAT_WS(CHR(31), ") == len(lookup["agents"])
    for network in lookup["countries"]:
        assert f"WHEN ip LIKE '{network['prefix']}%' THEN '{network['country']}'" in view
    for prefix in lookup["blocked"]:
        assert f"ip LIKE '{prefix}%'" in view
    rendered_ids = re.findall(r"'(camp-\d{4})'", view)
    assert sorted(rendered_ids) == sorted(c for g in lookup["verticals"] for c in g["campaigns"])
    # The job as it runs is untouched: the lookup is rendered only without the UDF.
    assert "CASE user_agent" not in render("local") and "SPLIT(enrich_event(" in render("local")


def test_the_no_udf_lookup_gives_the_udfs_values_for_every_catalog_agent_network_and_campaign():
    import ipaddress
    import random

    from adagg import traffic_catalog as cat
    from adagg.sql import enrichment_lookup
    from udfs.enrichment import Enricher

    lookup, udf, rng = enrichment_lookup(), Enricher(), random.Random(21)
    networks = [*cat.COUNTRY_NETWORKS.values(), cat.UNKNOWN_NETWORK, *cat.BLOCKED_NETWORKS]
    assert len(lookup["agents"]) == len(cat.USER_AGENTS)
    assert {n["country"] for n in lookup["countries"]} == set(cat.COUNTRY_NETWORKS)
    assert len(lookup["blocked"]) == len(cat.BLOCKED_NETWORKS)
    for network in networks:
        net = ipaddress.ip_network(network)
        first, last = int(net.network_address), int(net.broadcast_address)
        ips = [str(ipaddress.ip_address(a)) for a in (first, last, *(rng.randint(first, last) for _ in range(300)))]
        for ip in ips:
            for agent in cat.USER_AGENTS:
                campaign = cat.campaign_id(rng.randint(1, cat.CAMPAIGNS))
                assert _sql_enrichment(lookup, agent.user_agent, ip, campaign) == \
                    udf.packed(agent.user_agent, ip, campaign), (agent.user_agent, ip, campaign)
    human = cat.USER_AGENTS[0].user_agent
    campaigns = [cat.campaign_id(n) for n in range(0, cat.CAMPAIGNS + 3)] + ["camp-1", "camp-0001 ", None]
    for campaign in campaigns:
        assert _sql_enrichment(lookup, human, "23.32.1.1", campaign) == udf.packed(human, "23.32.1.1", campaign)


def test_the_no_udf_lookup_gives_the_udfs_values_on_generated_traffic():
    """Every send of generated traffic (fuzzed ids, bots, blocked and unknown networks) gets the
    same six values from the baseline's SQL lookups as from the UDF, as the UDF gets its input
    (macros/columns.sql enrichment_input: an id holding CHR(31) goes as '')."""
    import json

    from adagg.sql import enrichment_lookup
    from adagg.traffic import generate
    from udfs.enrichment import Enricher, pack_input, unpack_input

    lookup, udf = enrichment_lookup(), Enricher()
    traffic = generate(seed=21, events=5_000, ads=300, partitions=4, start_ms=1_795_860_000_000, bound_ms=15_000)
    sends = [json.loads(send.value) for phase in traffic.phases for send in phase]
    assert len(sends) > 5_000
    for event in sends:
        ua, ip, campaign = event.get("user_agent"), event.get("ip"), event.get("campaign_id")
        assert _sql_enrichment(lookup, ua, ip, campaign) == udf.packed(*unpack_input(pack_input(ua, ip, campaign)))


def test_enrichment_fields_are_unpacked_in_the_order_the_udf_packs_them():
    from udfs.enrichment import FIELDS

    sql = render("local")
    assert "SPLIT(enrich_event(" in sql
    for index, name in enumerate(FIELDS):
        read = f"enrichment[{index + 1}]"
        expected = f"NULLIF({read}, '')" if name == "invalid_reason" else read
        assert f"  {expected} AS {name}," in sql, name


def _duration_s(text: str) -> float:
    number, unit = text.split()
    return float(number) * {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}[unit]


def test_restarts_survive_occasional_failures_and_stop_a_crash_loop():
    """Exponential delay that resets after a quiet spell (a TaskManager lost now and then never adds
    up to a FAILED job, as fixed-delay's lifetime count did), with a finite number of attempts
    between resets (a crash loop still ends), rendered into every environment's job."""
    for name in envs.names():
        env = envs.load(name)
        sql = render(name)
        restart = {k: v for k, v in re.findall(r"^SET 'restart-strategy\.([a-z.-]+)' = '([^']*)';$", sql, re.M)}
        assert restart["type"] == "exponential-delay", name
        assert 0 < int(restart["exponential-delay.attempts-before-reset-backoff"]) < 100, name
        # A crash loop's attempts fail within seconds of starting: they must not reset the count.
        assert _duration_s(restart["exponential-delay.reset-backoff-threshold"]) >= 10, name
        assert _duration_s(restart["exponential-delay.initial-backoff"]) <= 1, name
        assert env.flink.state_backend == "rocksdb" and "SET 'execution.checkpointing.incremental' = 'true';" in sql


def test_state_ttl_covers_every_billing_bucket():
    for name in envs.names():
        env = envs.load(name)
        delay = env.flink.watermark_bound_seconds + env.flink.allowed_lateness_seconds
        assert _duration_s(env.flink.state_ttl) > max(env.billing.bucket_seconds.values()) + delay, name
        assert set(env.billing.bucket_seconds) == set(EVENT_TYPES), name


def test_prod_secrets_are_referenced_by_name_and_never_rendered(monkeypatch):
    prod = envs.load("prod")
    secrets = [prod.kafka.sasl.username_env, prod.kafka.sasl.password_env, prod.kafka.ssl.truststore_password_env]
    for i, name in enumerate(secrets):
        monkeypatch.setenv(name, f"s3cret-value-{i}")
    sql = render("prod")
    assert "s3cret-value" not in sql
    for name in secrets:
        assert "${env:" + name + "}" in sql
    assert sql.count("'properties.security.protocol' = 'SASL_SSL'") == len(marts()) + 2  # + source, late
    assert sql.count("'properties.config.providers.env.class' = 'org.apache.flink.kafka.shaded.org.apache.kafka."
                     "common.config.provider.EnvVarConfigProvider'") == len(marts()) + 2
    assert "s3cret-value" not in (SQL_DIR.parent / "infra/env/prod.yaml").read_text()


def test_topics_lists_sources_and_every_sink():
    env = envs.load("dev")
    found = topics(env)
    assert found["dev.ad-events.raw"] == 12 and found["dev.ad-events.late"] == 3
    assert found["dev.ad-agg.ad-minute"] == 6 and found["dev.ad-agg.top-ads-minute"] == 6
    assert len(found) == len(marts()) + 2


def test_a_mart_without_a_sink_is_a_clear_error(tmp_path):
    import shutil

    shutil.copytree(SQL_DIR, tmp_path / "sql")
    (tmp_path / "sql/views/mart_orphan.sql").write_text("-- mart_orphan: nothing\n")
    with pytest.raises(ValueError, match="snk_orphan.sql"):
        marts(tmp_path / "sql")


def test_watermark_bound_fits_the_interval_precision():
    for name in envs.names():
        flink = envs.load(name).flink  # INTERVAL 'n' SECOND holds 2 digits
        assert 1 <= flink.watermark_bound_seconds <= 99 and 1 <= flink.allowed_lateness_seconds <= 99


def test_transaction_timeout_below_broker_maximum():
    broker = (SQL_DIR.parent / "infra/stack/kafka/server.properties.j2").read_text()
    broker_max = int(re.search(r"^transaction.max.timeout.ms=(\d+)", broker, re.M).group(1))
    for name in envs.names():
        assert envs.load(name).flink.transaction_timeout_ms < broker_max


def test_templates_hold_no_environment_values():
    values = set()
    for name in envs.names():
        env = envs.load(name)
        values |= {env.kafka.bootstrap_servers, env.flink.consumer_group}
        values |= {t.name for t in env.topics.values()}
    for path in SQL_DIR.rglob("*.sql"):
        text = path.read_text()
        for value in values:
            assert f"'{value}'" not in text and f"{value}:" not in text, f"{path} hard-codes {value!r}; take it from the environment file"


def test_sql_style_header_and_uppercase_keywords():
    for path in (SQL_DIR / "sources").glob("*.sql"), (SQL_DIR / "views").rglob("*.sql"), (SQL_DIR / "sinks").glob("*.sql"):
        for p in path:
            text = p.read_text()
            assert text.startswith(f"-- {p.stem}:"), f"{p} needs a header comment naming what it produces"
            assert "Grain:" in text and "Input" in text, f"{p} header must give its grain and inputs"
            body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(("--", "{")))
            for kw in ("select", "from", "where", "create table", "group by"):
                assert not re.search(rf"\b{kw}\b", body), f"{p}: keyword {kw!r} must be uppercase"


def test_split_statements_handles_statement_set_and_rejects_truncation():
    script = "SET 'a' = 'b';\n-- note\nCREATE VIEW v AS\nSELECT 1;\nEXECUTE STATEMENT SET\nBEGIN\nINSERT INTO t SELECT 1;\nEND;\n"
    parts = split_statements(script)
    assert parts == ["SET 'a' = 'b'", "CREATE VIEW v AS\nSELECT 1", "EXECUTE STATEMENT SET\nBEGIN\nINSERT INTO t SELECT 1;\nEND"]
    with pytest.raises(ValueError):
        split_statements("SELECT 1")


def test_unknown_environment_and_job_are_clear_errors():
    with pytest.raises(envs.EnvError, match="unknown environment 'nope'"):
        render("nope")
    with pytest.raises(ValueError, match="unknown job"):
        render("local", "nope")


def test_env_override_renders_without_touching_the_file_env():
    env = envs.load("local")
    other = envs.override(env, {"topics.raw.name": "ad-events.raw.run1", "flink.consumer_group": "g-run1"})
    sql = render(other)
    assert "'topic' = 'ad-events.raw.run1'" in sql and "'properties.group.id' = 'g-run1'" in sql
    assert env.topics.raw.name == "ad-events.raw"
    with pytest.raises(envs.EnvError, match="unknown key"):
        envs.override(env, {"topics.raw.nmae": "x"})


def _views(sql: str) -> dict[str, str]:
    return {re.match(r"CREATE TEMPORARY VIEW (\w+)", st)[1]: st for st in split_statements(sql)
            if st.startswith("CREATE TEMPORARY VIEW")}


# The columns of macros/modes.sql streaming_only(): only mart_events_enriched and (source) the
# quality mart read them.
STREAMING_ONLY = {"schema_version", "ip", "user_agent", "placement_id", "referrer_domain", "os", "browser", "source",
                  "received_at_ms"}


def _without_streaming_only(view: str) -> str:
    """The statement without its lines that select only streaming-only columns (a list of them,
    or one expression named as one)."""
    def streaming_only(line: str) -> bool:
        alias = re.fullmatch(r"\s+.* AS (\w+),", line)
        names = [alias[1]] if alias else re.fullmatch(r"\s+[\w, ]+,", line) and re.findall(r"\w+", line)
        return bool(names) and set(names) <= STREAMING_ONLY
    return "\n".join(line for line in view.split("\n") if not streaming_only(line))


def test_backfill_runs_the_streaming_jobs_own_sql_files():
    """Shared, not copied: the backfill includes the very view files of the streaming job; its
    own files are only the source layer (archive table, its staging view) and its output."""
    def includes(job: str) -> set[str]:
        text = (SQL_DIR / "jobs" / f"{job}.sql").read_text()
        return set(re.findall(r'\{% include "([^"]+)" %\}', text))
    streaming = includes("streaming") | {f"views/mart_{m}.sql" for m in marts()}  # marts: included by a loop
    backfill = includes("backfill")
    assert backfill - streaming == {"sources/src_ad_events_archive.sql", "views/batch/stg_events_on_time.sql",
                                    "sinks/snk_backfill_ad_minute.sql"}
    assert {"views/int_deliveries_enriched.sql", "views/int_events_deduped.sql", "views/int_events_enriched.sql",
            "views/int_events_billable.sql", "views/int_event_measures.sql", "views/int_ad_minute.sql",
            "views/mart_ad_minute.sql"} <= backfill & streaming
    assert "CREATE" not in re.sub(r"--.*", "", (SQL_DIR / "jobs" / "backfill.sql").read_text())
    # Rendered, the shared views are the same statements, but for the arrival order of the dedups
    # and the event detail only the streaming job's event sink reads (macros/modes.sql).
    online, batch = _views(render("local")), _views(render("local", "backfill", **example_params("backfill")))
    for name in ("int_deliveries_enriched", "int_events_deduped", "int_events_billable", "int_event_measures",
                 "int_ad_minute"):
        assert batch[name] == _without_streaming_only(online[name]), name
    assert batch["mart_ad_minute"].split("UNIX_TIMESTAMP() * 1000")[0] == online["mart_ad_minute"].split(
        "UNIX_TIMESTAMP() * 1000")[0]
    assert batch["int_events_enriched"].replace("TO_TIMESTAMP_LTZ(kafka_offset, 3) AS proc_time",
                                                "PROCTIME() AS proc_time") == _without_streaming_only(
        online["int_events_enriched"])
    # What the backfill leaves out is the event sink's detail, and the streaming job does select it.
    for name in ("int_deliveries_enriched", "int_events_deduped", "int_events_enriched"):
        assert online[name] != batch[name], name
    assert STREAMING_ONLY - {"source", "received_at_ms"} <= set(re.findall(r"\w+", online["mart_events_enriched"]))
    assert {"source", "received_at_ms"} <= set(re.findall(r"\w+", online["mart_quality_minute"]))
    # In batch there is no watermark: the archive's staging view replaces the late split.
    assert "CURRENT_WATERMARK" not in batch["stg_events_on_time"] and "CURRENT_WATERMARK" in online["stg_events_on_time"]


def test_every_window_is_whole_minutes():
    # macros/columns.sql epoch_ms() counts whole minutes: exact only for minute-aligned bounds.
    for path in sorted((SQL_DIR / "views").rglob("*.sql")):
        for unit in re.findall(r"INTERVAL '\d+' (\w+)", path.read_text()):
            assert unit in ("MINUTE", "HOUR", "DAY"), f"{path.name}: a window in {unit}s"


def test_only_an_unbounded_job_disables_checkpoints_after_finished_tasks():
    """A bounded run (benchmarks, view tests) keeps them: its exactly-once sinks commit their last
    records in the final checkpoint, taken after its tasks have finished."""
    setting = "SET 'execution.checkpointing.checkpoints-after-tasks-finish' = 'false';"
    env = envs.load("local")
    assert setting in render(env)
    env.flink["raw_source_options"] = envs.Namespace({"scan.bounded.mode": "latest-offset"})
    assert setting not in render(env)
