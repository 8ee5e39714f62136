"""The service-level objectives as Prometheus alerting rules: infra/monitoring/alerts.yml.j2
rendered with an environment's `slo:` targets, and checked with promtool (docs/slo.md)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jinja2

from adagg.env import Namespace, load
from adagg.paths import REPO

MONITORING_DIR = REPO / "infra" / "monitoring"


def render_rules(env: str | Namespace) -> str:
    env = load(env) if isinstance(env, str) else env
    template = (MONITORING_DIR / "alerts.yml.j2").read_text()
    return jinja2.Template(template, undefined=jinja2.StrictUndefined, keep_trailing_newline=True).render(env=env)


def write_rules(env: str | Namespace, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(render_rules(env))
    tmp.replace(dest)  # Prometheus may be reading the old one
    return dest


def promtool(*args: str) -> subprocess.CompletedProcess:
    """promtool from the Prometheus that `adagg setup` fetched."""
    from adagg.setup import prometheus_bin
    from adagg.stack import StackError

    tool = prometheus_bin("promtool")
    if not tool.exists():
        raise StackError(f"promtool is missing in {tool.parent}: run `adagg setup` first")
    return subprocess.run([str(tool), *args], capture_output=True, text=True)
