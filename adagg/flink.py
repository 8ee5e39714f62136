"""Submit, list and cancel the streaming job on the Flink session cluster."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from adagg.paths import REPO, env_dir, home, jvm_lib, write_atomically
from adagg.sql import render
from adagg.setup import connector_jars
from adagg.stack import Stack, StackError, flink_home, link_jars


def submit(env_name: str = "local", job: str = "streaming", say=print, from_savepoint: str | None = None,
           conf: list[str] = (), sql_file: Path | None = None, plan: dict | None = None) -> str:
    """Run `flink run -py` against the session cluster; returns the Flink job id.

    The job always runs from a compiled plan (EXECUTE PLAN): one given (`adagg job upgrade` and
    `resume` pass the plan to keep), else the SQL compiled now. Only a plan fixes each operator's
    uid, which is what lets a later upgrade find its state again (adagg/compiled_plan.py). The plan
    the job runs is kept as <plan_dir>/<job id>.json. from_savepoint: start from that savepoint's
    state (its offsets, dedup keys, windows and watermarks). conf: extra KEY=VALUE job settings
    (benchmarks). sql_file: a script rendered by the caller instead of `job`."""
    stack = Stack(env_name)
    work = Path(tempfile.mkdtemp(prefix="submit-", dir=home()))
    try:
        if sql_file is None:
            sql_file = work / f"{job}.{env_name}.sql"
            sql_file.write_text(render(env_name, job))
        script_text = sql_file.read_text()
        plan_file = work / "plan.json"
        if plan is not None:
            plan_file.write_text(json.dumps(plan))
        script = REPO / "pyflink_jobs" / "streaming_job.py"
        cmd = ["bash", str(flink_home() / "bin" / "flink"), "run", "-d",
               "-m", stack.env.flink.rest_url.split("://")[-1], *(["-s", from_savepoint] if from_savepoint else []),
               "-pyclientexec", sys.executable, "-pyexec", sys.executable, "-py", str(script),
               "--env", env_name, "--job", job, "--detach", *(a for c in conf for a in ("--conf", c)),
               "--sql-file", str(sql_file), "--plan", str(plan_file),
               *(["--compile-plan", str(plan_file)] if plan is None else [])]  # compiled in the same client
        for jar in connector_jars():
            cmd += ["--jar", jar]
        env = {**os.environ, **stack.flink_env()}
        proc = run_client(cmd, env, f"submitting {job}")
        if plan is None and plan_file.exists():
            plan = json.loads(plan_file.read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = re.search(r"submitted job ([0-9a-f]{32})", proc.stdout) or re.search(r"JobID ([0-9a-f]{32})", proc.stdout)
    if proc.returncode != 0 or not found:
        raise StackError(f"submitting {job} failed: {_cause(proc)}")
    job_id = found.group(1)
    if plan is None:
        raise StackError(f"job {job_id} was submitted but its compiled plan was not written")
    write_atomically(plan_path(stack.env, job_id), json.dumps({"script": script_text, "plan": plan}))
    say(f"  submitted {job} as Flink job {job_id}")
    return job_id


def _cause(proc: subprocess.CompletedProcess) -> str:
    """The line of a failed client's output that says why: a refused restore if there is one (the
    client ends with "Python process exits with code: 1"), else the last exception."""
    detail = (proc.stderr + "\n" + proc.stdout).strip().splitlines()
    cause = next((ln for ln in detail if "Cannot map checkpoint/savepoint state" in ln), None) or next(
        (ln for ln in reversed(detail) if "Exception" in ln or "Error" in ln), detail[-1] if detail else "")
    return cause.strip()[:400]


def compile_plan(env_name: str, sql_file: Path, conf: list[str] = ()) -> dict:
    """The compiled plan (COMPILE PLAN, as JSON) of a rendered script's statement set, made by a
    local table environment here: nothing is submitted."""
    out = Path(tempfile.mkdtemp(prefix="plan-", dir=home())) / "plan.json"
    try:
        cmd = [sys.executable, "-m", "pyflink_jobs.streaming_job", "--env", env_name, "--sql-file", str(sql_file),
               "--compile-plan", str(out), *(a for c in conf for a in ("--conf", c)),
               *(a for jar in connector_jars() for a in ("--jar", jar))]
        proc = run_client(cmd, dict(os.environ), f"compiling the plan of {sql_file.name}")
        if proc.returncode != 0 or not out.exists():
            raise StackError(f"compiling the plan of {sql_file} failed: {_cause(proc)}")
        return json.loads(out.read_text())
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def plan_path(env, job_id: str) -> Path:
    """Where the script and compiled plan a job runs are kept: the environment's flink.plan_dir."""
    return env_dir(env.flink.plan_dir) / f"{job_id}.json"


def kept_plan(env, job_id: str) -> dict:
    """{"script": the rendered SQL, "plan": its compiled plan} of a job `submit` started."""
    path = plan_path(env, job_id)
    if not path.exists():
        raise StackError(f"no compiled plan is kept for job {job_id} ({path}): it was not started by "
                         f"`adagg job submit|resume|upgrade`, so its operators cannot be matched")
    return json.loads(path.read_text())


def submit_kept(env_name: str, kept: dict, from_savepoint: str, say=print) -> str:
    """Start a kept script and plan ({"script", "plan"}) from a savepoint: resume, rollback."""
    with tempfile.TemporaryDirectory(prefix="kept-", dir=home()) as work:
        script = Path(work) / "script.sql"
        script.write_text(kept["script"])
        return submit(env_name, from_savepoint=from_savepoint, sql_file=script, plan=kept["plan"], say=say)


def _savepoint_plan_path(env, location: str) -> Path:
    return env_dir(env.flink.plan_dir) / "savepoints" / f"{location.rstrip('/').rsplit('/', 1)[-1]}.json"


def keep_plan_for_savepoint(env, job_id: str, location: str) -> None:
    """Keep the job's script and plan under its savepoint's name, for resume and rollback."""
    path = plan_path(env, job_id)
    if path.exists():
        write_atomically(_savepoint_plan_path(env, location), path.read_text())


def plan_for_savepoint(env, location: str) -> dict | None:
    path = _savepoint_plan_path(env, location)
    return json.loads(path.read_text()) if path.exists() else None


def run_client(cmd: list[str], env: dict, what: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """Run a Flink client command to completion. No stdin (a client that waits for a terminal must
    not hang on CI's), and a limit: a client that never returns is an error, not a stuck run."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        tail = ((exc.stdout or b"") + (exc.stderr or b"")).decode(errors="replace").strip().splitlines()[-3:]
        raise StackError(f"{what} did not return within {timeout_s:.0f} s: {' | '.join(tail)[:400]}") from None


def mini_cluster_conf(env) -> list[str]:
    """KEY=VALUE settings for a local mini-cluster that runs the streaming job (integration tests,
    benchmarks) with the managed memory one of the stack's TaskManagers has: the mini-cluster's
    default is too small for the window buffers beside RocksDB at the job's parallelism."""
    from adagg.paths import data

    return [f"taskmanager.memory.managed.size={env.stack.flink_taskmanager.managed_memory}",
            f"state.backend.rocksdb.log.dir={data() / 'rocksdb-logs'}", "state.backend.rocksdb.log.level=HEADER_LEVEL"]


def sql_client_opt_dir() -> Path:
    """An opt/ folder for Flink's SQL client: the wheel's opt/ jars plus the SQL gateway jar."""
    return link_jars(home() / "flink-opt",
                     [*(flink_home() / "opt").glob("*.jar"), *jvm_lib("flink-sql-client").glob("*.jar")])


def submit_sql_client(env_name: str, script: Path, say=print) -> str:
    """Submit a rendered SQL script with Flink's own SQL client (bin/sql-client.sh -f), as is."""
    stack = Stack(env_name)
    # udfs/ reaches the client and the TaskManagers through PYTHONPATH (flink_env), not -pyfs.
    cmd = ["bash", str(flink_home() / "bin" / "sql-client.sh"), "-f", str(script)]
    for jar in connector_jars():
        cmd += ["-j", jar]
    env = {**os.environ, **stack.flink_env(), "FLINK_OPT_DIR": str(sql_client_opt_dir())}
    proc = run_client(cmd, env, f"the SQL client on {script}")
    found = re.search(r"Job ID: ([0-9a-f]{32})", proc.stdout)
    if proc.returncode != 0 or not found or "[ERROR]" in proc.stdout:
        detail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln or "Exception" in ln]
        raise StackError(f"the SQL client rejected {script}: {' | '.join(detail[:3])[:400]}")
    say(f"  submitted {script.name} with the SQL client as Flink job {found.group(1)}")
    return found.group(1)


def running_jobs(env) -> list[dict]:
    resp = requests.get(f"{env.flink.rest_url}/jobs/overview", timeout=10)
    resp.raise_for_status()
    return [j for j in resp.json()["jobs"] if j["state"] in ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING")]


def job_detail(rest_url: str, job_id: str) -> dict:
    resp = requests.get(f"{rest_url}/jobs/{job_id}", timeout=10)
    resp.raise_for_status()
    return resp.json()


def _live_detail(rest_url: str, job_id: str) -> dict | None:
    """The job's detail; None while the REST API cannot say (the JobManager is down or still
    recovering its jobs); StackError once the job has ended."""
    try:
        detail = job_detail(rest_url, job_id)
    except requests.RequestException:
        return None
    if detail.get("state") in ("FAILED", "CANCELED", "FINISHED"):
        raise StackError(f"Flink job {job_id} is {detail['state']}")
    return detail


def wait_running(rest_url: str, job_id: str, timeout_s: float = 120) -> None:
    """Wait until every task of the job runs (so its Kafka source has started reading)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        detail = _live_detail(rest_url, job_id)
        if detail is None:
            time.sleep(0.5)
            continue
        vertices = detail.get("vertices", [])
        if vertices and all(v["status"] == "RUNNING" for v in vertices):
            return
        time.sleep(1)
    raise StackError(f"Flink job {job_id} did not reach RUNNING within {timeout_s} s")


def _await_savepoint(rest_url: str, job_id: str, trigger: str, what: str, timeout_s: float) -> str:
    """Poll a savepoint operation until it completes; its location."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = requests.get(f"{rest_url}/jobs/{job_id}/savepoints/{trigger}", timeout=30).json()
        if status["status"]["id"] == "COMPLETED":
            operation = status["operation"]
            if "failure-cause" in operation:
                raise StackError(f"{what} of job {job_id} failed: "
                                 f"{operation['failure-cause'].get('class', '')}: "
                                 f"{operation['failure-cause'].get('stack-trace', '').splitlines()[0][:300]}")
            return operation["location"]
        time.sleep(1)
    raise StackError(f"{what} of job {job_id} did not complete within {timeout_s:.0f} s")


def trigger_savepoint(rest_url: str, job_id: str, target: str | None = None, timeout_s: float = 180) -> str:
    """Take a savepoint of a running job, which keeps running; the savepoint's location. target:
    the folder (a URI) to write it to, else the cluster's savepoint folder."""
    body = {"cancel-job": False, **({"target-directory": target} if target else {})}
    resp = requests.post(f"{rest_url}/jobs/{job_id}/savepoints", json=body, timeout=30)
    resp.raise_for_status()
    return _await_savepoint(rest_url, job_id, resp.json()["request-id"], "the savepoint", timeout_s)


def stop_with_savepoint(rest_url: str, job_id: str, target: str | None = None, timeout_s: float = 180) -> str:
    """Stop a job with a savepoint and return the savepoint's location.

    No drain: the sources stop without emitting the final watermark, so no window fires early and
    the job resumed from the savepoint goes on exactly where it stopped. (A drain would close every
    open window as if the stream had ended, and the resumed job would then drop those windows'
    remaining events as late.) target: as for trigger_savepoint."""
    body = {"drain": False, **({"targetDirectory": target} if target else {})}
    resp = requests.post(f"{rest_url}/jobs/{job_id}/stop", json=body, timeout=30)
    resp.raise_for_status()
    return _await_savepoint(rest_url, job_id, resp.json()["request-id"], "stopping with a savepoint", timeout_s)


def wait_recovered(rest_url: str, job_id: str, since_ms: int, timeout_s: float = 180) -> int:
    """Wait until a job that failed at or after since_ms (epoch ms) runs again with every task
    RUNNING; returns when it switched back to RUNNING (epoch ms, the JobManager's clock). The
    REST API may be gone meanwhile (a JobManager failover): it is asked again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        detail = _live_detail(rest_url, job_id)
        if detail is None:
            time.sleep(0.5)
            continue
        running_at = detail["timestamps"].get("RUNNING", 0)
        # A vertex counts as RUNNING once one subtask runs: wait for all (the others may still be
        # restoring their state), and take the time from here, not from the job's RUNNING switch.
        if (detail["state"] == "RUNNING" and running_at >= since_ms
                and all(v["tasks"].get("RUNNING", 0) == v["parallelism"] for v in detail["vertices"])):
            return max(running_at, int(time.time() * 1000))
        time.sleep(0.25)
    raise StackError(f"Flink job {job_id} did not run again within {timeout_s:.0f} s of a failure")


def cancel_all(env, say=print, timeout_s: float = 60) -> None:
    """Cancel every running job and wait until none is left running."""
    jobs = running_jobs(env)
    for job in jobs:
        requests.patch(f"{env.flink.rest_url}/jobs/{job['jid']}", params={"mode": "cancel"}, timeout=10)
    ids, deadline = {j["jid"] for j in jobs}, time.monotonic() + timeout_s
    while True:
        overview = requests.get(f"{env.flink.rest_url}/jobs/overview", timeout=10).json()["jobs"]
        left = [j["jid"] for j in overview if j["jid"] in ids and j["state"] not in ("CANCELED", "FAILED", "FINISHED")]
        if not left:
            break
        if time.monotonic() > deadline:
            raise StackError(f"jobs still not cancelled {timeout_s:.0f} s after cancel: {', '.join(left)}")
        time.sleep(1)
    for job in jobs:
        say(f"  cancelled Flink job {job['jid']} ({job['name']})")
