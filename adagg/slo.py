"""The service-level objectives: as Prometheus alerting rules (infra/monitoring/alerts.yml.j2
rendered with an environment's `slo:` targets, checked with promtool), and as a report of what
holds now, read from Prometheus (docs/slo.md)."""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jinja2

from adagg.env import Namespace, load
from adagg.paths import REPO, write_atomically

MONITORING_DIR = REPO / "infra" / "monitoring"


def _render(template: str, env: Namespace) -> str:
    text = (MONITORING_DIR / template).read_text()
    return jinja2.Template(text, undefined=jinja2.StrictUndefined, keep_trailing_newline=True).render(env=env)


def render_rules(env: str | Namespace) -> str:
    return _render("alerts.yml.j2", load(env) if isinstance(env, str) else env)


def render_scrape(env: str | Namespace) -> str:
    """The scrape_configs an existing Prometheus needs for this environment's services
    (infra/monitoring/scrape.yml.j2, from its monitoring: section). The local stack's Prometheus
    has its own full configuration (infra/stack/prometheus)."""
    env = load(env) if isinstance(env, str) else env
    if "monitoring" not in env:
        raise ValueError(f"environment {env.name!r} has no monitoring: section"
                         + (": the local stack's Prometheus scrapes it itself (adagg stack status)" if "stack" in env else ""))
    return _render("scrape.yml.j2", env)


def write_rules(env: str | Namespace, dest: Path) -> Path:
    return write_atomically(dest, render_rules(env))  # Prometheus may be reading the old one


def promtool(*args: str) -> subprocess.CompletedProcess:
    """promtool from the Prometheus that `adagg setup` fetched."""
    from adagg.setup import prometheus_bin
    from adagg.stack import StackError

    tool = prometheus_bin("promtool")
    if not tool.exists():
        raise StackError(f"promtool is missing in {tool.parent}: run `adagg setup` first")
    return subprocess.run([str(tool), *args], capture_output=True, text=True)


def check_rules(env: str | Namespace) -> subprocess.CompletedProcess:
    """`promtool check rules` over the environment's rendered rules."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return promtool("check", "rules", str(write_rules(env, Path(tmp) / "alerts.yml")))


def check_scrape(env: str | Namespace) -> subprocess.CompletedProcess:
    """`promtool check config` over a Prometheus configuration made of the environment's scrape
    configs and rules, as an operator would merge them."""
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        rules = write_rules(env, Path(tmp) / "alerts.yml")
        config = {"rule_files": [str(rules)], **yaml.safe_load(render_scrape(env))}
        path = write_atomically(Path(tmp) / "prometheus.yml", yaml.safe_dump(config, sort_keys=False))
        return promtool("check", "config", str(path))


@dataclass(frozen=True)
class Objective:
    """One SLO as the report shows it: a PromQL giving its current value, and the target (a key of
    the environment's slo: section, or a fixed number) it must stay at or under (or over)."""
    name: str
    query: str
    target: str | float
    at_least: bool = False  # met when value >= target (else when value <= target)
    unit: str = ""

    def target_value(self, env: Namespace) -> float:
        return float(env.slo[self.target]) if isinstance(self.target, str) else float(self.target)

    def met(self, value: float | None, env: Namespace) -> bool | None:
        if value is None or math.isnan(value):
            return None
        target = self.target_value(env)
        return value >= target if self.at_least else value <= target


ADAGG_JOBS = 'job=~"collector|query-api|flink|kafka|pinot"'
# The same objectives as the alerting rules (alerts.yml.j2), without their "for" durations: what
# holds now. A unit test keeps the two lists in step.
OBJECTIVES = [
    Objective("targets_down", f"count(up{{{ADAGG_JOBS}}} == 0) or vector(0)", 0),
    Objective("streaming_jobs_running", "max(flink_jobmanager_numRunningJobs)", 1, at_least=True),
    Objective("collector_kafka_up", "min(adagg_collector_kafka_up)", 1, at_least=True),
    Objective("live_tier_age", 'max(adagg_table_age_seconds{table="ad_minute_live"})', "live_table_max_age_s", unit="s"),
    Objective("live_freshness_p95", 'max(quantile_over_time(0.95, adagg_freshness_seconds{tier="live"}[1h]))',
              "live_p95_s", unit="s"),
    Objective("final_freshness_p95", 'max(quantile_over_time(0.95, adagg_freshness_seconds{tier="final"}[1h]))',
              "final_p95_s", unit="s"),
    Objective("job_pending_records", "sum(flink_taskmanager_job_task_operator_pendingRecords)", "job_max_pending_records"),
    Objective("job_restarts_last_hour", "max(increase(flink_jobmanager_job_numRestarts[1h]))", "job_max_restarts_per_hour"),
    Objective("checkpoint_age", "time() - max(flink_jobmanager_job_lastCheckpointCompletedTimestamp) / 1000",
              "checkpoint_max_age_s", unit="s"),
    Objective("collector_unavailable_ratio", "sum(rate(adagg_collector_events_unavailable_total[5m])) / "
              "sum(rate(adagg_collector_events_received_total[5m]))", "collector_max_unavailable_ratio"),
    Objective("collector_rejected_ratio", "sum(rate(adagg_collector_events_rejected_total[5m])) / "
              "sum(rate(adagg_collector_events_received_total[5m]))", "collector_max_rejected_ratio"),
    Objective("query_api_p95", "histogram_quantile(0.95, sum by (le) (rate(adagg_query_api_request_seconds_bucket"
              '{route!~"/metrics|/healthz"}[5m])))', "query_api_p95_s", unit="s"),
    Objective("query_api_error_ratio", 'sum(rate(adagg_query_api_requests_total{status=~"5.."}[5m])) / '
              "sum(rate(adagg_query_api_requests_total[5m]))", "query_api_max_error_ratio"),
    # Data quality: every source together here; the alerts watch each source.
    Objective("deliveries_per_event", "sum(adagg_quality_deliveries) / sum(adagg_quality_unique_events)",
              "max_deliveries_per_event"),
    Objective("billing_repeat_ratio", "sum(adagg_quality_billing_repeats) / sum(adagg_quality_valid_events)",
              "max_billing_repeat_ratio"),
    Objective("late_ratio", "sum(adagg_quality_late_deliveries) / "
              "(sum(adagg_quality_deliveries) + sum(adagg_quality_late_deliveries))", "max_late_ratio"),
    # The newest reconcile pass, over every grain and measure.
    Objective("reconcile_residual", "max(adagg_reconcile_residual)", "reconcile_max_residual"),
    Objective("served_vs_billed", "max(abs(adagg_reconcile_served_diff) / (adagg_reconcile_billed > 0))",
              "max_served_vs_billed_ratio"),
]


def report(env: Namespace, prometheus_url: str, ask=None) -> list[dict]:
    """Each objective's current value (None: no data, e.g. a ratio with no traffic), target and
    whether it is met, from the Prometheus at prometheus_url."""
    ask = ask or (lambda q: _instant(prometheus_url, q))
    rows = []
    for objective in OBJECTIVES:
        value = ask(objective.query)
        met = objective.met(value, env)
        rows.append({"slo": objective.name, "value": None if met is None else value, "unit": objective.unit,
                     "target": objective.target_value(env), "at_least": objective.at_least, "met": met})
    return rows


def _instant(prometheus_url: str, query: str) -> float | None:
    import requests

    from adagg.stack import StackError

    try:
        r = requests.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=10)
    except requests.ConnectionError as e:
        raise StackError(f"Prometheus at {prometheus_url} does not answer (is the stack up?): {e}") from e
    r.raise_for_status()
    result = r.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def format_report(rows: list[dict]) -> str:
    mark = {True: "✓", False: "✗", None: "–"}
    lines = [f"{'SLO':30} {'value':>12}  {'target':>14}  met"]
    for row in rows:
        value = "no data" if row["value"] is None else f"{row['value']:.4g}{row['unit']}"
        target = f"{'>=' if row['at_least'] else '<='} {row['target']:g}{row['unit']}"
        lines.append(f"{row['slo']:30} {value:>12}  {target:>14}  {mark[row['met']]}")
    return "\n".join(lines)
