"""Rendering of the templated Flink SQL: every environment renders, the statements split, and the
logic the guide requires is present; environment values never appear in the templates."""

import re

import pytest

from adagg import env as envs
from adagg.paths import SQL_DIR
from adagg.sql import jobs, pipeline_version, render, split_statements


@pytest.mark.parametrize("env_name", envs.names())
@pytest.mark.parametrize("job", jobs())
def test_renders_and_splits(env_name, job):
    sql = render(env_name, job)
    env = envs.load(env_name)
    statements = split_statements(sql)
    assert statements[-1].startswith("EXECUTE STATEMENT SET")
    assert statements[-1].rstrip().endswith("END")
    assert "{{" not in sql and "{%" not in sql
    assert env.kafka.bootstrap_servers in sql
    for topic in env.topics.values():
        assert f"'topic' = '{topic.name}'" in sql


def test_streaming_job_logic():
    sql = render("local")
    assert "WATERMARK FOR ts AS ts - INTERVAL '10' SECOND" in sql
    assert "CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts)" in sql
    assert "ts <= CURRENT_WATERMARK(ts)" in sql
    assert "ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC)" in sql
    assert "TUMBLE(TABLE int_events_deduped, DESCRIPTOR(ts), INTERVAL '1' MINUTE)" in sql
    assert sql.count("'sink.delivery-guarantee' = 'exactly-once'") == 2
    assert "SET 'table.exec.state.ttl' = '1 h';" in sql
    assert "SET 'execution.checkpointing.interval' = '5 s';" in sql
    assert "'properties.isolation.level' = 'read_committed'" in sql
    assert f"'{pipeline_version()}' AS pipeline_version" in sql


def test_watermark_bound_fits_the_interval_precision():
    for name in envs.names():
        assert 1 <= envs.load(name).flink.watermark_bound_seconds <= 99  # INTERVAL 'n' SECOND holds 2 digits


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
    for path in (SQL_DIR / "sources").glob("*.sql"), (SQL_DIR / "views").glob("*.sql"), (SQL_DIR / "sinks").glob("*.sql"):
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
