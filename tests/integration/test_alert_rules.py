"""The SLO alerting rules, with Prometheus's own promtool (fetched by `adagg setup`): they load for
every environment, the local rendering passes its unit tests (infra/monitoring/alerts_test.yml),
each alert with a case that must fire and one that must not, and the SLO report's queries parse."""

from __future__ import annotations

import shutil

import pytest
import yaml

from adagg.env import load, names, override
from adagg.slo import MONITORING_DIR, OBJECTIVES, check_rules, check_scrape, promtool, write_rules


@pytest.mark.parametrize("env_name", names())
def test_rules_load_for_every_environment(env_name):
    done = check_rules(env_name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 34 rules found" in done.stdout


def _unit_tests(env, folder) -> str:
    write_rules(env, folder / "alerts.yml")
    shutil.copy(MONITORING_DIR / "alerts_test.yml", folder / "alerts_test.yml")
    done = promtool("test", "rules", str(folder / "alerts_test.yml"))
    return done.stdout + done.stderr if done.returncode else ""


def test_the_rules_fire_when_they_must_and_only_then(tmp_path):
    assert _unit_tests(load("local"), tmp_path) == ""


@pytest.mark.parametrize("target, value, alert", [
    ("slo.live_table_max_age_s", 400, "AdaggLiveTierStale"),
    ("slo.job_max_pending_records", 50_000, "AdaggStreamingJobLagging"),
    ("slo.collector_max_unavailable_ratio", 0.001, "AdaggCollectorShedding"),
])
def test_the_unit_tests_catch_a_target_that_changed(target, value, alert, tmp_path):
    """The cases are tight enough to tell: a different target makes one that must fire stay quiet,
    or one that must not fire fire."""
    failures = _unit_tests(override(load("local"), {target: value}), tmp_path)
    assert alert in failures


def test_the_reports_queries_are_valid_promql(tmp_path):
    """`adagg slo report` asks Prometheus these: promtool parses each as a rule's expression."""
    rules = {"groups": [{"name": "report", "rules": [{"record": f"adagg:slo_{o.name}", "expr": o.query}
                                                    for o in OBJECTIVES]}]}
    (tmp_path / "report.yml").write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(tmp_path / "report.yml"))
    assert done.returncode == 0 and f"SUCCESS: {len(OBJECTIVES)} rules found" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_the_scrape_configs_of_dev_and_prod_are_a_valid_prometheus_configuration(env_name):
    """`adagg slo scrape`'s output with `adagg slo rules` as rule_files, as an operator merges them."""
    done = check_scrape(env_name)
    assert done.returncode == 0 and "is valid prometheus config file syntax" in done.stdout, done.stdout + done.stderr
