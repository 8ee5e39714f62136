"""CLI help and the stack manager's user-facing errors, without starting any service."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adagg.cli import build_parser, main
from adagg.stack import Stack, StackError, require_java

SUBCOMMANDS = ["setup", "stack", "sql", "pinot", "job", "traffic", "query", "demo"]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_explains_itself(name, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([name, "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: adagg " + name)
    assert len(out.splitlines()) > 3


def test_sql_render_prints_sql(capsys):
    assert main(["sql", "render", "--env", "local"]) == 0
    assert "CREATE TABLE src_ad_events_raw" in capsys.readouterr().out


def test_unknown_env_is_one_line_error(capsys):
    assert main(["sql", "render", "--env", "mars"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("adagg: error: unknown environment 'mars'") and "\n" not in err


def test_missing_java_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(StackError, match="Java not found"):
        require_java()


def test_port_in_use_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    kafka = next(s for s in stack.services if s.name == "kafka")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        kafka.ports = [sock.getsockname()[1]]
        with pytest.raises(StackError, match=rf"port {kafka.ports[0]} is already in use"):
            stack.start(kafka)


def test_missing_jars_point_to_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    zk = next(s for s in stack.services if s.name == "zookeeper")
    with pytest.raises(StackError, match="adagg setup"):
        zk.command()


def test_unknown_service_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    with pytest.raises(StackError, match="unknown service 'mysql'"):
        Stack("local").select(["mysql"])
    assert [s.name for s in Stack("local").select(["flink"])] == [
        "flink-jobmanager", "flink-taskmanager-1", "flink-taskmanager-2"]
    # Started with what they need: the JobManager's high availability (leader, job graphs) lives in
    # ZooKeeper. Stopped without it (`down --only flink` leaves Pinot's ZooKeeper alone).
    stack = Stack("local")
    assert [s.name for s in stack.with_dependencies(stack.select(["flink"]))] == [
        "zookeeper", "flink-jobmanager", "flink-taskmanager-1", "flink-taskmanager-2"]
    assert [s.name for s in stack.with_dependencies(stack.select(["query-api"]))] == [
        "zookeeper", "pinot-controller", "pinot-broker", "query-api"]


def test_the_jobmanager_runs_supervised_with_zookeeper_ha(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    [jm] = stack.select(["flink-jobmanager"])
    assert jm.supervised and jm.after == ["zookeeper"]
    assert not any(s.supervised for s in stack.services if s.name != "flink-jobmanager")
    args = stack.flink_ha()
    assert args[0::2] == ["-D"] * (len(args) // 2)  # jobmanager.sh reads a first argument not "-D" as its host
    ha = dict(arg.split("=", 1) for arg in args[1::2])
    assert ha["high-availability.type"] == "zookeeper"
    assert ha["high-availability.zookeeper.quorum"] == f"127.0.0.1:{stack.s.zookeeper.port}"
    assert ha["high-availability.storageDir"].startswith(f"file://{tmp_path}")


def test_the_jobmanager_is_healthy_once_it_lists_every_job_its_ha_store_holds(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    store = tmp_path / "data" / "flink" / "ha" / "adagg-local"
    assert stack.jobs_recovered({"jobs": []})  # nothing stored: a fresh cluster
    store.mkdir(parents=True)
    (store / "submittedExecutionPlan50c09e2020fc").write_text("")  # Flink 2.2's name for a stored job
    assert not stack.jobs_recovered({"jobs": []})  # REST answers, the job is not back yet
    assert not stack.jobs_recovered({"jobs": [{"jid": "a", "state": "CANCELED"}]})
    assert stack.jobs_recovered({"jobs": [{"jid": "b", "state": "INITIALIZING"}]})


def test_a_supervised_command_is_started_again_when_it_exits(tmp_path):
    """The supervising shell itself (stack.SUPERVISE): a child that exits is started again."""
    import subprocess
    import time

    from adagg.stack import SUPERVISE

    runs = tmp_path / "runs"
    proc = subprocess.Popen(["bash", "-c", SUPERVISE, "svc", "bash", "-c", f"echo run >> {runs}"],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not runs.exists() or len(runs.read_text().split()) < 2):
            time.sleep(0.1)
        assert len(runs.read_text().split()) >= 2
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    assert "svc exited with status 0; starting it again in 1 s" in proc.stderr.read()


def test_superset_is_started_only_when_named_and_runs_outside_our_venv(tmp_path, monkeypatch):
    """`stack up` leaves the optional Superset out, `superset up` names it; `stack down` stops it
    with the rest; its process gets its own config and no PYTHONPATH (ours has another numpy)."""
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    assert "superset" not in [s.name for s in stack.select(None)]
    [superset] = stack.select(["superset"])
    assert superset.optional and superset.url == "http://127.0.0.1:8088"
    assert "superset" not in [r["service"] for r in stack.status()]  # not running: not listed
    env = superset.extra_env()
    assert env["PYTHONPATH"] == "" and env["SUPERSET_CONFIG_PATH"].endswith("superset/superset_config.py")
    assert env["ADAGG_SUPERSET_SECRET_KEY"] == superset.extra_env()["ADAGG_SUPERSET_SECRET_KEY"]  # made once
    assert (tmp_path / "data" / "superset" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_each_taskmanager_is_a_service_with_its_own_identity(tmp_path, monkeypatch):
    """stack.flink_taskmanagers TaskManagers, each started with its own resource id (what its health
    check looks for in the JobManager's list) and its own temporary folder (RocksDB's files)."""
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    monkeypatch.setattr("adagg.stack.require_java", lambda: "java")
    stack = Stack("local")
    tms = [s for s in stack.services if s.name.startswith("flink-taskmanager-")]
    assert len(tms) == stack.s.flink_taskmanagers == 2
    commands = [tm.command() for tm in tms]
    assert [c[-3] for c in commands] == ["-Dtaskmanager.resource-id=taskmanager-1", "-Dtaskmanager.resource-id=taskmanager-2"]
    assert len({c[-2] for c in commands}) == 2 and all(c[-2].startswith(f"-Dio.tmp.dirs={tmp_path}") for c in commands)
    # Each serves its metrics on a port of its own, one its start checks is free.
    jm = stack.s.flink_jobmanager.metrics_port
    assert [c[-1] for c in commands] == [f"-Dmetrics.reporter.prom.port={jm + 1}", f"-Dmetrics.reporter.prom.port={jm + 2}"]
    assert [tm.ports for tm in tms] == [[jm + 1], [jm + 2]]
    assert all(tm.after == ["flink-jobmanager"] for tm in tms)


def test_stack_needs_a_stack_section():
    with pytest.raises(StackError, match="no local stack"):
        Stack("dev")


@pytest.fixture
def no_javac(monkeypatch, tmp_path):
    """The warm-up agent's jar is built by the integration tier (tests/integration/test_python_warmup.py)."""
    monkeypatch.setattr("adagg.stack.build_python_warmup", lambda home, lib: tmp_path / "python-warmup.jar")


def test_streaming_taskmanager_runs_on_g1(tmp_path, monkeypatch, no_javac):
    # ParallelGC's full collections stopped a dedup job with heap state for seconds
    # (infra/env/local.yaml). The option must reach Flink's own config under its key.
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    conf = yaml.safe_load((stack.flink_conf_dir() / "config.yaml").read_text())
    opts = conf["env"]["java"]["opts"]["taskmanager"].split()
    assert stack.s.flink_taskmanager.jvm_opts == "-XX:+UseG1GC" and opts[0] == "-XX:+UseG1GC"


def test_rest_metrics_are_fresh_enough_for_a_reading_window(tmp_path, monkeypatch, no_javac):
    """The benchmarks time a source's reading window by the records read that the REST API reports
    (benchmarks/common.py reading_window). By default it answers from metrics up to 10 s old: a
    blackhole run reads its whole topic in about that."""
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    conf = yaml.safe_load((Stack("local").flink_conf_dir() / "config.yaml").read_text())
    assert conf["metrics"]["fetcher"]["update-interval"] <= 1000


def test_taskmanager_options_survive_flinks_scripts(tmp_path, monkeypatch, no_javac):
    """flink-console.sh runs `eval echo` over the JVM options: a shell metacharacter in them (the
    warm-up agent's argument once held a '|') emptied them all, G1 and the agent with them."""
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    conf = yaml.safe_load((stack.flink_conf_dir() / "config.yaml").read_text())
    opts = conf["env"]["java"]["opts"]["taskmanager"]
    echoed = subprocess.run(["bash", "-c", 'eval echo ${OPTS}'], env={"OPTS": opts, "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True)
    assert echoed.stdout.split() == opts.split() and not echoed.stderr
    [agent] = [o for o in opts.split() if o.startswith("-javaagent:")]
    modules = ",".join(stack.s.flink_taskmanager.python_warmup)
    assert agent.endswith(f"={modules}@{sys.executable}") and "pyflink.fn_execution.embedded" in modules


def _started_with_marker(stack: Stack, service: str) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", "ADAGG_STACK_HOME": str(stack.home), "ADAGG_SERVICE": service}
    return subprocess.Popen(["sleep", "600"], env=env, start_new_session=True)


def test_a_service_whose_pid_file_was_lost_is_found_and_stopped(tmp_path, monkeypatch):
    """The pid file is a cache: a running service whose file was lost is found by its environment
    (a CI run once found a TaskManager alive after down, untracked)."""
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    tm = _started_with_marker(stack, "flink-taskmanager-1")
    try:
        assert stack.pid("flink-taskmanager-1") == tm.pid
        assert stack.pid_file("flink-taskmanager-1").read_text() == str(tm.pid)
        stack.down(say=lambda *_: None)
        assert stack.processes() == {} and not Path(f"/proc/{tm.pid}").exists()
    finally:
        tm.kill()


def test_down_stops_a_process_of_ours_that_is_no_service_any_more(tmp_path, monkeypatch, capsys):
    """A whole-stack down leaves nothing this checkout started, even a service the configuration
    no longer has (three TaskManagers scaled down to two while the third ran); it names it."""
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    stray = _started_with_marker(stack, "flink-taskmanager-3")
    try:
        assert stack.processes() == {stray.pid: "flink-taskmanager-3"}
        stack.down()
        assert stack.processes() == {} and not Path(f"/proc/{stray.pid}").exists()
        assert f"stopping stray flink-taskmanager-3 (pid {stray.pid}" in capsys.readouterr().out
    finally:
        stray.kill()


def test_a_pid_file_of_a_live_process_of_ours_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    stack = Stack("local")
    proc = _started_with_marker(stack, "collector")
    try:
        stack.pid_file("collector").parent.mkdir(parents=True, exist_ok=True)
        stack.pid_file("collector").write_text(str(proc.pid))
        assert stack.pid("collector") == proc.pid
        proc.kill()
        proc.wait()
        assert stack.pid("collector") is None and not stack.pid_file("collector").exists()
        assert "collector: pid" in (tmp_path / "logs" / "stack.log").read_text()
    finally:
        proc.kill()


def test_prometheus_scrapes_every_service_on_loopback(tmp_path, monkeypatch):
    """One target per service that serves metrics, named as `adagg stack status` names it, each at
    the port its service is started with."""
    monkeypatch.setenv("ADAGG_HOME", str(tmp_path))
    monkeypatch.setattr("adagg.stack.require_java", lambda: "java")
    monkeypatch.setattr("adagg.stack.jmx_exporter_jar", lambda: tmp_path / "agent.jar")
    monkeypatch.setattr("adagg.stack._classpath", lambda module: f"{module}/*")
    monkeypatch.setattr("adagg.stack.Stack._kafka_cmd", lambda self: self._java("kafka", "1g", [],
                                                                              metrics_port=self.s.kafka.metrics_port))
    stack = Stack("local")
    conf = yaml.safe_load(stack.prometheus_config().read_text())
    targets = {sc["labels"]["instance"]: (job["job_name"], t)
               for job in conf["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert set(targets) == {"prometheus", "collector", "query-api", "flink-jobmanager", "flink-taskmanager-1",
                            "flink-taskmanager-2", "kafka", "pinot-controller", "pinot-broker", "pinot-server"}
    assert all(t.startswith("127.0.0.1:") for _, t in targets.values())
    # The ports are the ones the services are started with.
    commands = {svc.name: " ".join(svc.command()) for svc in stack.services
                if svc.name in ("kafka", "pinot-controller", "pinot-broker", "pinot-server")
                or svc.name.startswith("flink-taskmanager")}
    for name, command in commands.items():
        port = targets[name][1].rsplit(":", 1)[1]
        assert f"127.0.0.1:{port}:" in command or f"-Dmetrics.reporter.prom.port={port}" in command, name
    assert targets["collector"][1] == f"127.0.0.1:{stack.env.collector.port}"
    assert targets["query-api"][1] == f"127.0.0.1:{stack.env.serving.port}"


def test_procstat_reads_this_process_as_the_os_sees_it():
    """adagg.procstat: the fields the stack, the backfill's CPU count and the benchmarks read."""
    import os

    from adagg import procstat

    me = procstat.read(os.getpid())
    assert (me.state, me.ppid, me.session) == ("R", os.getppid(), os.getsid(0))
    assert me.cpu_seconds > 0 and me.start_ticks > 0
    assert any((s.pid, s.start_ticks) == (me.pid, me.start_ticks) for s in procstat.every())


def test_job_status_reads_as_an_operator_needs_it():
    from adagg.job_status import format_status

    row = {"job_id": "j1", "name": "adagg-streaming", "state": "RUNNING", "uptime_s": 93.4, "restarts": 1,
           "last_checkpoint": {"id": 7, "age_s": 2.5, "duration_ms": 812, "size_bytes": 1_234_567, "path": "file:/x"},
           "checkpoints": {"completed": 7, "failed": 0, "restored": 1, "in_progress": 0},
           "source_watermarks": {"Source: src_ad_events_raw": 1_796_000_000_000, "Source: other": None},
           "consumer_lag": {"group": "adagg-streaming", "topic": "ad-events.raw", "records": 1200, "per_partition": {}}}
    text = format_status([row])
    assert "RUNNING, up 93 s, 1 restarts" in text and "#7, 2.5 s ago, took 812 ms, 1,234,567 bytes" in text
    assert "watermark after Source: src_ad_events_raw: 2026-11-30T00:53:20Z" in text and "Source: other: none yet" in text
    assert "1,200 records" in text and format_status([]) == "no streaming job is running"


def test_stop_kills_a_group_that_ignores_sigterm_after_its_own_grace():
    """`stack down` gives each service its own grace (the Pinot server 5 s): a group that ignores
    SIGTERM is killed once its grace is over, without waiting for another group's longer one."""
    import time

    from adagg.stack import group_alive, kill_groups

    deaf = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, "
                             "signal.SIG_IGN); print(flush=True); time.sleep(60)"], stdout=subprocess.PIPE,
                            start_new_session=True)
    polite = subprocess.Popen(["sleep", "60"], start_new_session=True)
    deaf.stdout.readline()  # SIGTERM is ignored from here on
    t0 = time.monotonic()
    kill_groups([deaf.pid, polite.pid], {deaf.pid: 0.5, polite.pid: 60})
    elapsed = time.monotonic() - t0
    # (group_alive reaps them, so Popen cannot tell how they ended.)
    assert not group_alive(deaf.pid) and not group_alive(polite.pid)
    assert 0.5 <= elapsed < 30  # the deaf one's grace, not the polite one's 60 s


def test_stack_down_stops_dependents_first_and_kafka_and_zookeeper_last():
    stack = Stack("local")
    waves = [{s.name for s in wave} for wave in stack._stop_waves(stack.services)]
    at = {name: i for i, wave in enumerate(waves) for name in wave}
    for svc in stack.services:
        assert all(at[svc.name] < at[dep] for dep in svc.after), svc.name
    assert waves[-1] == {"kafka", "zookeeper"}
    assert at["flink-taskmanager-1"] < at["flink-jobmanager"] < at["kafka"]
