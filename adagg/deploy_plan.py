"""The compiled plan a Kubernetes deployment runs (`adagg deploy render --with-plan`).

Under the operator, an upgrade is a new FlinkDeployment spec: the operator takes a savepoint and
starts the new spec from it. For the state to restore, the new job must run a plan whose operators
carry the running job's ids, as `adagg job upgrade` makes it on a cluster it reaches over REST:
the new SQL is compiled here and, against the plan running now (--against, the data of the
deployed plan ConfigMap), renumbered by adagg/compiled_plan.py, or refused. Needs the JVM.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from adagg import flink, paths
from adagg.compiled_plan import carry_over, explain
from adagg.job_upgrade import REFUSED
from adagg.sql import render


def read_plan(path: Path) -> dict:
    """A plan file: COMPILE PLAN's JSON, or what `adagg job submit` keeps ({"script", "plan"})."""
    doc = json.loads(path.read_text())
    return doc["plan"] if "plan" in doc and "nodes" not in doc else doc


def compile_for(env_name: str, against: Path | None = None, say=print) -> tuple[int, dict | None]:
    """(0, the plan to deploy) or (REFUSED, None) when the running plan's state could not restore."""
    with tempfile.TemporaryDirectory(prefix="deploy-plan-", dir=paths.home()) as work:
        script = Path(work) / f"streaming.{env_name}.sql"
        script.write_text(render(env_name, "streaming"))
        say(f"  compiling the plan of sql/ for {env_name} ...")
        plan = flink.compile_plan(env_name, script)
    if against is None:
        say("  no --against: a first deployment (its operators take the plan's own ids)")
        return 0, plan
    result = carry_over(read_plan(against), plan)
    say(explain(result))
    if not result.compatible:
        say("  refused: a job started from the running plan's savepoint could not restore this one")
        return REFUSED, None
    return 0, result.plan
