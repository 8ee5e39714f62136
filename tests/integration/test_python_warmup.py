"""The TaskManagers' Python warm-up agent (infra/stack/flink/python-warmup) in a real JVM: it imports
the configured modules into pemja's embedded interpreter, the one PyFlink's thread-mode operators
share, and a module that fails to import leaves the JVM running as it would without the agent.
Uses no port: a JVM with the agent and a main class that waits."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from adagg import paths
from adagg.stack import Stack, build_python_warmup, python_warmup_agent, require_java

WAIT = "public class Wait { public static void main(String[] a) throws Exception { Thread.sleep(120_000); } }"


@pytest.fixture(scope="module")
def jvm(tmp_path_factory):
    """Starts a JVM with the given agent option; yields a function that returns its output lines
    once one starts with 'python-warmup:'."""
    folder = tmp_path_factory.mktemp("warmup")
    lib = Stack("local").flink_lib_dir()
    (folder / "Wait.java").write_text(WAIT)
    java = Path(require_java()).resolve()
    subprocess.run([str(java.parent / "javac"), "-d", str(folder), str(folder / "Wait.java")], check=True)
    classpath = os.pathsep.join([str(folder), *map(str, lib.glob("*.jar"))])
    started: list[subprocess.Popen] = []

    def run(agent: str) -> list[str]:
        proc = subprocess.Popen([str(java), agent, "-cp", classpath, "Wait"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONPATH": paths.flink_python_path()})
        started.append(proc)
        lines, deadline = [], time.time() + 120
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("python-warmup:"):
                break
        assert proc.poll() is None, f"the JVM exited: {lines}"
        return lines

    yield run
    for proc in started:
        proc.kill()
        proc.wait()


def test_the_agent_imports_pyflinks_runtime_and_the_udfs(jvm, tmp_path):
    modules = Stack("local").s.flink_taskmanager.python_warmup
    agent = python_warmup_agent(build_python_warmup(tmp_path, Stack("local").flink_lib_dir()), modules)
    lines = jvm(agent)
    assert lines[-1].startswith(f"python-warmup: imported {', '.join(modules)} in "), lines


def test_a_module_that_fails_to_import_leaves_the_jvm_running(jvm, tmp_path):
    agent = python_warmup_agent(build_python_warmup(tmp_path, Stack("local").flink_lib_dir()),
                                ["json", "no_such_module_adagg"])
    lines = jvm(agent)
    assert lines[-1].startswith("python-warmup: failed"), lines
    assert "no_such_module_adagg" in lines[-1], lines
