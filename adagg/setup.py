"""Fetch what the local stack runs: the JVM artifacts declared in infra/jvm into
$ADAGG_HOME/jvm/<module>/lib, and Prometheus from Debian's package into $ADAGG_HOME/prometheus
(both cached)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from adagg import paths
from adagg.stack import StackError, require_java

# k8s-schemas: the Flink Kubernetes Operator CRDs the unit tests check rendered manifests against.
MODULES = ("kafka", "pinot", "flink", "flink-sql-client", "metrics", "k8s-schemas")


def _pom_digest() -> str:
    h = hashlib.sha256()
    for pom in sorted(paths.JVM_POM.parent.rglob("pom.xml")):
        h.update(pom.read_bytes())
    return h.hexdigest()


def jvm_ready() -> bool:
    stamp = paths.home() / "jvm" / ".pom-digest"
    return stamp.exists() and stamp.read_text() == _pom_digest() and all(
        any(paths.jvm_lib(m).glob("*.jar")) for m in MODULES)


def fetch(force: bool = False, say=print) -> None:
    """Everything the local stack runs that is not in the venv (`adagg setup`)."""
    fetch_jvm(force, say)
    fetch_prometheus(say)


def fetch_jvm(force: bool = False, say=print) -> None:
    if jvm_ready() and not force:
        say(f"JVM artifacts are up to date in {paths.home() / 'jvm'}")
        return
    require_java()
    mvn = shutil.which("mvn")
    if not mvn:
        raise StackError("Maven (mvn) not found on PATH: install it (e.g. apt-get install maven)")
    target = paths.home() / "jvm"
    shutil.rmtree(target, ignore_errors=True)
    say(f"Resolving JVM artifacts from Maven Central into {target} (first run downloads ~250 MB) ...")
    cmd = [mvn, "-B", "-ntp", "-f", str(paths.JVM_POM), "dependency:copy-dependencies",
           f"-DoutputDirectory={target}/${{project.artifactId}}/lib", "-DincludeScope=runtime"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if "Building " in line or "BUILD" in line or "ERROR" in line:
            say("  " + line.replace("[INFO] ", "").strip())
    if proc.returncode != 0:
        errors = [ln for ln in proc.stdout.splitlines() if "ERROR" in ln][:3]
        raise StackError("Maven could not resolve the JVM artifacts: " + " | ".join(errors))
    (target / ".pom-digest").write_text(_pom_digest())
    for module in MODULES:
        jars = list(paths.jvm_lib(module).glob("*.jar"))
        size = sum(j.stat().st_size for j in jars) / 2**20
        say(f"  {module:16} {len(jars):4} jars {size:7.1f} MB")


def connector_jars() -> list[str]:
    """Jars the Flink jobs need beyond the wheel's lib/ (the Kafka SQL connector)."""
    return sorted(str(j) for j in paths.jvm_lib("flink").glob("*.jar"))


PROMETHEUS_PACKAGE = "prometheus"  # Debian's: the server and promtool, one static binary each


def prometheus_bin(tool: str = "prometheus") -> Path:
    return paths.home() / "prometheus" / "bin" / tool


def fetch_prometheus(say=print) -> None:
    """Prometheus and promtool from Debian's package, unpacked under ADAGG_HOME: no service is
    installed or started on the machine, and the stack runs the binary itself. The web UI's
    JavaScript is in other Debian packages and not fetched: the API and /metrics are what is used."""
    if prometheus_bin().exists() and prometheus_bin("promtool").exists():
        return
    for tool in ("apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            raise StackError(f"{tool} not found: Prometheus is fetched from Debian's package ({PROMETHEUS_PACKAGE})")
    say(f"Fetching Prometheus (Debian package {PROMETHEUS_PACKAGE}) into {prometheus_bin().parent.parent} ...")
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", PROMETHEUS_PACKAGE], cwd=tmp, capture_output=True, text=True)
        if got.returncode != 0:  # a fresh machine may not have read the package lists yet
            subprocess.run(["apt-get", "update"], capture_output=True, text=True)
            got = subprocess.run(["apt-get", "download", PROMETHEUS_PACKAGE], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or not debs:
            raise StackError(f"apt-get download {PROMETHEUS_PACKAGE} failed: {got.stderr.strip()[-300:]}")
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), f"{tmp}/x"], check=True)
        prometheus_bin().parent.mkdir(parents=True, exist_ok=True)
        for tool in ("prometheus", "promtool"):
            shutil.copy2(Path(tmp) / "x" / "usr" / "bin" / tool, prometheus_bin(tool))
    version = subprocess.run([str(prometheus_bin()), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    say(f"  {version}")
