"""The SLO report's arithmetic and its agreement with the alerting rules, without Prometheus."""

import math
import re

from adagg.env import load, names
from adagg.slo import OBJECTIVES, format_report, render_rules, report


def test_every_slo_target_of_every_environment_is_reported_and_alerted_on():
    for name in names():
        env = load(name)
        reported = {o.target for o in OBJECTIVES if isinstance(o.target, str)}
        assert reported == set(env.slo), name
        rules = render_rules(env)
        for key, value in env.slo.items():
            assert f"> {value}" in rules, (name, key)  # each target is an alert's threshold


def test_the_report_compares_each_value_with_its_target():
    env = load("local")
    values = {"targets_down": 0.0, "streaming_jobs_running": 0.0, "collector_kafka_up": 1.0,
              "live_tier_age": 200.0, "job_pending_records": 10.0, "job_restarts_last_hour": 3.0,
              "checkpoint_age": 4.0, "collector_unavailable_ratio": math.nan,
              "query_api_p95": 0.1, "query_api_error_ratio": 0.0}
    by_query = {o.query: values.get(o.name) for o in OBJECTIVES}  # collector_rejected_ratio: no series
    rows = {r["slo"]: r for r in report(env, "unused", ask=by_query.get)}
    assert rows["targets_down"]["met"] is True
    assert rows["streaming_jobs_running"]["met"] is False  # at least one must run
    assert rows["live_tier_age"] == {"slo": "live_tier_age", "value": 200.0, "unit": "s", "target": 180.0,
                                     "at_least": False, "met": False}
    assert rows["job_restarts_last_hour"]["met"] is True  # at the target is within it
    # No traffic: a ratio of nothing is no data, neither met nor missed.
    assert rows["collector_unavailable_ratio"]["met"] is None and rows["collector_unavailable_ratio"]["value"] is None
    assert rows["collector_rejected_ratio"]["met"] is None
    text = format_report(list(rows.values()))
    assert re.search(r"live_tier_age\s+200s\s+<= 180s\s+✗", text)
    assert re.search(r"streaming_jobs_running\s+0\s+>= 1\s+✗", text)
    assert re.search(r"collector_unavailable_ratio\s+no data\s+<= 0.01\s+–", text)


def test_the_final_tiers_freshness_target_is_what_its_windows_allow():
    """window + watermark bound + allowed lateness + two checkpoints: an event accepted just after a
    minute starts is visible in the final tier once the minute is over, the watermark has passed it
    and a checkpoint has committed it; the second checkpoint is slack."""
    for name in names():
        env = load(name)
        checkpoint_s = int(env.flink.checkpoint_interval.removesuffix(" s"))
        assert env.slo.final_p95_s == (60 + env.flink.watermark_bound_seconds + env.flink.allowed_lateness_seconds
                                       + 2 * checkpoint_s), name


def test_dev_and_prod_scrape_the_jobs_the_local_stack_scrapes_on_their_own_ports():
    """The rules select targets by job: an environment's scrape configs must name the same jobs as
    the local stack's Prometheus, and scrape the collector and the query API on the ports their
    own sections give."""
    import pytest
    import yaml

    from adagg.paths import REPO
    from adagg.slo import render_scrape

    local = (REPO / "infra" / "stack" / "prometheus" / "prometheus.yml.j2").read_text()
    local_jobs = set(re.findall(r"job_name: ([\w-]+)", local)) - {"prometheus"}
    for name in ("dev", "prod"):
        env = load(name)
        jobs = {j["job_name"]: j for j in yaml.safe_load(render_scrape(env))["scrape_configs"]}
        assert jobs.keys() == local_jobs, name
        for job, port in (("collector", env.collector.port), ("query-api", env.serving.port)):
            assert jobs[job]["dns_sd_configs"][0]["port"] == port, (name, job)
        assert all(j["scrape_interval"] == env.monitoring.scrape_interval for j in jobs.values())
    with pytest.raises(ValueError, match="the local stack's Prometheus scrapes it itself"):
        render_scrape(load("local"))
