"""Fetch the JVM artifacts declared in infra/jvm into $ADAGG_HOME/jvm/<module>/lib (cached)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

from adagg import paths
from adagg.stack import StackError, require_java

MODULES = ("kafka", "pinot", "flink", "flink-sql-client")


def _pom_digest() -> str:
    h = hashlib.sha256()
    for pom in sorted(paths.JVM_POM.parent.rglob("pom.xml")):
        h.update(pom.read_bytes())
    return h.hexdigest()


def jvm_ready() -> bool:
    stamp = paths.home() / "jvm" / ".pom-digest"
    return stamp.exists() and stamp.read_text() == _pom_digest() and all(
        any(paths.jvm_lib(m).glob("*.jar")) for m in MODULES)


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
