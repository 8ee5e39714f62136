"""`adagg deploy render --with-plan [--against]`: prod's SQL compiled by a local table environment
(nothing is submitted), rendered into a plan ConfigMap the operator's job runs, the manifests still
valid against the operator's CRDs and Kubernetes' schemas, and the running plan's ids kept."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

from adagg import k8s_schemas
from adagg.compiled_plan import kind
from adagg.env import load
from adagg.paths import REPO

pytestmark = pytest.mark.integration


def render(out, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adagg.cli", "deploy", "render", "--env", "prod", "--out", str(out),
                           "--with-plan", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def plan_of(out) -> dict:
    [configmap] = [d for d in yaml.safe_load_all((out / "application" / "streaming-plan.yaml").read_text()) if d]
    return json.loads(configmap["data"]["plan.json"])


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A first deployment: the plan as compiled."""
    out = tmp_path_factory.mktemp("first")
    done = render(out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_plan_of_prod_is_rendered_into_valid_manifests(first):
    plan = plan_of(first)
    assert plan["flinkVersion"] == "2.2"
    assert {kind(n) for n in plan["nodes"]} >= {"table-source-scan", "deduplicate", "global-window-aggregate", "sink"}
    assert len((first / "application" / "streaming-plan.yaml").read_bytes()) < 1_000_000  # a ConfigMap's cap
    version = load("prod").deploy.kubernetes_version
    for path in sorted(first.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert k8s_schemas.validate(doc, version) == [], path
    job = (first / "application" / "streaming-job.yaml").read_text()
    assert '"--plan"' in job and "adagg-streaming-plan-" in job


def test_against_the_running_plan_the_new_one_keeps_its_operator_ids(first, tmp_path):
    """The running plan's nodes under other ids (as if compiled by an earlier version of the SQL that
    numbered them differently): the new plan takes those ids, node for node."""
    running = copy.deepcopy(plan_of(first))
    for node in running["nodes"]:
        node["id"] += 1000
    for edge in running["edges"]:
        edge["source"] += 1000
        edge["target"] += 1000
    (tmp_path / "running.json").write_text(json.dumps(running))
    out = tmp_path / "next"
    done = render(out, "--against", str(tmp_path / "running.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "compatible: the state of all" in done.stdout
    assert plan_of(out) == running


def test_against_a_running_plan_with_another_dedup_the_render_is_refused(first, tmp_path):
    running = copy.deepcopy(plan_of(first))
    [dedup] = [n for n in running["nodes"] if kind(n) == "deduplicate" and "key=[event_id]" in n["description"]]
    dedup["description"] = dedup["description"].replace("key=[event_id]", "key=[event_id, event_type]")
    (tmp_path / "running.json").write_text(json.dumps(running))
    out = tmp_path / "refused"
    done = render(out, "--against", str(tmp_path / "running.json"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "incompatible:" in done.stdout and f"node {dedup['id']} Deduplicate" in done.stdout
    assert not out.exists()  # nothing written
