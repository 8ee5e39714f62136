"""Kubernetes manifests of an environment (`adagg deploy render`, docs/deploy.md).

The streaming job runs under the Flink Kubernetes Operator: a FlinkDeployment in application mode
(application/), or a FlinkSessionJob on a session cluster's FlinkDeployment (session/). The collector
and the query API are Deployments with Services and PodDisruptionBudgets (services/), beside the
headless services that the environment's monitoring.dns names. Values come from the environment's
deploy: section and the sections it deploys; versions from infra/jvm and pyproject.toml. Secrets are
referenced by name (secretKeyRef, secret volumes), never rendered.
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import jinja2
import yaml

from adagg import __version__
from adagg.env import EnvError, Namespace, load
from adagg.paths import JVM_POM, REPO

TEMPLATES = REPO / "infra" / "k8s" / "templates"
K8S_DIR = REPO / "infra" / "k8s"
# Apply services/ and one of application/ (the job's own cluster) or session/ (a shared cluster).
LAYOUT = {
    "services/serviceaccount.yaml": "serviceaccount.yaml.j2",
    "services/collector.yaml": "collector.yaml.j2",
    "services/query-api.yaml": "query-api.yaml.j2",
    "services/flink-metrics.yaml": "flink-metrics.yaml.j2",
    "application/streaming-job.yaml": "streaming-job.yaml.j2",
    "session/session-cluster.yaml": "session-cluster.yaml.j2",
    "session/streaming-session-job.yaml": "streaming-session-job.yaml.j2",
}
# Where the job image (infra/docker/Dockerfile) puts the source tree and the connector jars.
APP_DIR = PurePosixPath("/opt/adagg")
JARS_DIR = APP_DIR / "jars"
PYTHON = "/usr/bin/python3"
METRICS_PORT = 9249  # Flink's Prometheus reporter on every JobManager and TaskManager
# The operator's FlinkDeployment name; its pods carry it as app.kubernetes.io/name in both variants.
JOB_NAME = "adagg-streaming"
SESSION_CLUSTER = "adagg-session"
# The compiled plan (`adagg deploy render --with-plan`), when there is one: a ConfigMap mounted into the
# JobManager, run by streaming_job.py --plan. Kubernetes caps a ConfigMap at 1 MiB (the plan of prod:
# about 250 KB).
PLAN_MOUNT = APP_DIR / "plan"
PLAN_KEY = "plan.json"
PLAN_MAX_BYTES = 1_000_000
# Which Secret (deploy.secrets) holds the variables named under each section of the environment file.
SECRET_OF_SECTION = {"kafka": "kafka", "collector": "collector"}


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable a pod gets from a Secret: the key of the same name."""
    var: str
    secret: str
    origin: str  # where the environment file names it, e.g. kafka.sasl.username_env


@dataclass(frozen=True)
class SecretFile:
    """A file a pod gets from a Secret, mounted at the path the environment file gives."""
    path: str
    secret: str
    origin: str

    @property
    def key(self) -> str:
        return PurePosixPath(self.path).name


def jvm_properties() -> dict[str, str]:
    """The version properties of infra/jvm/pom.xml."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    props = ET.parse(JVM_POM).getroot().find("m:properties", ns)
    return {el.tag.split("}")[1]: el.text.strip() for el in props}


def project_version() -> str:
    """The project's version: the one the lineage stamps on every row (adagg.__version__, held
    equal to pyproject.toml's by a unit test)."""
    return __version__


def flink_version() -> str:
    return jvm_properties()["flink.version"]


def crd_flink_version(version: str) -> str:
    """The operator's name of a Flink version: 2.2.1 -> v2_2."""
    major, minor = version.split(".")[:2]
    return f"v{major}_{minor}"


def image(env: Namespace) -> str:
    """The job image with its tag: the project's version and the Flink it is built on, both read
    from where they are pinned, so the tag cannot disagree with what the Dockerfile builds."""
    return f"{env.deploy.image}:{project_version()}-flink{flink_version()}"


def connector_jars() -> list[str]:
    """Paths in the image of the jars of infra/jvm/flink (what `adagg setup` puts in
    .adagg/jvm/flink/lib), named as Maven's copy-dependencies names them: artifactId-version.jar."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    props = jvm_properties()
    deps = ET.parse(JVM_POM.parent / "flink" / "pom.xml").getroot().find("m:dependencies", ns)
    names = []
    for dep in deps:
        artifact, version = dep.find("m:artifactId", ns).text, dep.find("m:version", ns).text
        version = re.sub(r"\$\{([^}]+)\}", lambda m: props[m.group(1)], version)
        names.append(str(JARS_DIR / f"{artifact}-{version}.jar"))
    return names


def _named_secrets(node, path: str = ""):
    """(dotted path, variable) of every *_env key of the environment file."""
    if isinstance(node, dict):
        for key, value in node.items():
            dotted = f"{path}.{key}" if path else key
            if key.endswith("_env") and isinstance(value, str):
                yield dotted, value
            else:
                yield from _named_secrets(value, dotted)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _named_secrets(value, f"{path}[{i}]")


def secret_env(env: Namespace) -> list[SecretEnv]:
    """Every secret the environment file names by variable, with the Secret that holds it."""
    out = []
    for origin, var in _named_secrets({k: v for k, v in env.items() if k != "deploy"}):
        section = origin.split(".")[0].split("[")[0]
        if section not in SECRET_OF_SECTION or SECRET_OF_SECTION[section] not in env.deploy.get("secrets", {}):
            raise EnvError(f"{env.name}: {origin} names a secret, but no Secret in deploy.secrets holds "
                           f"{section}'s secrets")
        out.append(SecretEnv(var, env.deploy.secrets[SECRET_OF_SECTION[section]], origin))
    return out


def flink_secret_env(env: Namespace) -> list[SecretEnv]:
    """The Kafka client of each JobManager and TaskManager reads these (EnvVarConfigProvider)."""
    return [s for s in secret_env(env) if s.origin.startswith("kafka.")]


def collector_secret_env(env: Namespace) -> list[SecretEnv]:
    """librdkafka's SASL login and the pixel secrets; the JKS truststore is Flink's, not the collector's."""
    return [s for s in secret_env(env) if s.origin.startswith(("kafka.sasl.", "collector."))]


def _secret_file(env: Namespace, key: str) -> list[SecretFile]:
    location = env.kafka.get("ssl", {}).get(key)
    if not location:
        return []
    if "kafka_files" not in env.deploy.get("secrets", {}):
        raise EnvError(f"{env.name}: kafka.ssl.{key} names a file, but deploy.secrets has no kafka_files Secret")
    return [SecretFile(location, env.deploy.secrets.kafka_files, f"kafka.ssl.{key}")]


def flink_secret_files(env: Namespace) -> list[SecretFile]:
    return _secret_file(env, "truststore_location")


def collector_secret_files(env: Namespace) -> list[SecretFile]:
    return _secret_file(env, "ca_location")


def flink_configuration(env: Namespace) -> dict[str, str]:
    """The cluster's configuration, shared by the application and the session cluster. The job's
    own settings (checkpoint interval, state backend, restarts, ...) are SET by its SQL."""
    f, d = env.flink, env.deploy.flink
    conf = {
        "taskmanager.numberOfTaskSlots": d.taskmanager.slots,
        "pipeline.max-parallelism": f.max_parallelism,
        "execution.checkpointing.dir": d.checkpoint_dir,
        "execution.checkpointing.savepoint-dir": f.savepoint_dir,
        "high-availability.type": "kubernetes",
        "high-availability.storageDir": d.ha_dir,
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.port": METRICS_PORT,
        "env.java.opts.taskmanager": d.taskmanager.jvm_opts,
        # pemja (thread-mode Python UDFs) from lib/ only: loaded by a job's class loader, its native
        # library breaks the next job on the TaskManager (the local stack's config.yaml.j2 says more).
        "classloader.parent-first-patterns.additional": "pemja.",
        # Stop with a savepoint without draining, as `adagg job stop` does: a drain would fire every
        # open window as if the stream had ended.
        "kubernetes.operator.job.drain-on-savepoint-deletion": "false",
        # A job that cannot take a savepoint (failing) is upgraded from its last checkpoint (HA metadata).
        "kubernetes.operator.job.upgrade.last-state-fallback.enabled": "true",
        "kubernetes.operator.periodic.savepoint.interval": d.periodic_savepoint_interval,
        "kubernetes.operator.savepoint.history.max.count": d.savepoint_history.max_count,
        "kubernetes.operator.savepoint.history.max.age": d.savepoint_history.max_age,
    }
    return {key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in conf.items()}


def python_jar_url(env: Namespace, version: str) -> str:
    """flink-python in the Maven repository layout: what a session job's jarURI fetches."""
    base = env.deploy.flink.maven_repository.rstrip("/")
    return f"{base}/org/apache/flink/flink-python/{version}/flink-python-{version}.jar"


def job_args(env: Namespace, plan: bool = False) -> list[str]:
    """PythonDriver's arguments: its own options first, then streaming_job.py's (as `adagg job
    submit` passes them to `flink run`). plan: run the compiled plan mounted from the plan
    ConfigMap instead of compiling the SQL afresh."""
    args = ["-pyclientexec", PYTHON, "-pyexec", PYTHON, "-py", str(APP_DIR / "pyflink_jobs" / "streaming_job.py"),
            "--env", env.name, "--job", "streaming", "--detach"]
    for jar in connector_jars():
        args += ["--jar", jar]
    return args + (["--plan", str(PLAN_MOUNT / PLAN_KEY)] if plan else [])


def plan_configmap_name(plan_json: str) -> str:
    """Named by its content: a new plan changes the FlinkDeployment's spec, which is what makes the
    operator run an upgrade (savepoint, then the new plan from it). An edited ConfigMap would not."""
    return f"{JOB_NAME}-plan-{hashlib.sha256(plan_json.encode()).hexdigest()[:10]}"


def plan_json(plan: dict) -> str:
    text = json.dumps(plan, separators=(",", ":"))  # in the order compiled: Flink reads it back
    if len(text) > PLAN_MAX_BYTES:
        raise EnvError(f"the compiled plan is {len(text):,} bytes, over a ConfigMap's {PLAN_MAX_BYTES:,}")
    return text


def pods_services(env: Namespace) -> dict[str, str]:
    """The headless service of each monitoring.dns entry (<service>.<namespace>.svc.cluster.local)."""
    out = {}
    for job, service in env.monitoring.dns.items():
        name, namespace, *rest = service.name.split(".")
        if namespace != env.deploy.namespace or rest != ["svc", "cluster", "local"]:
            raise EnvError(f"{env.name}: monitoring.dns.{job} ({service.name}) is not a service of namespace "
                           f"{env.deploy.namespace} (deploy.namespace)")
        out[job] = name
    return out


def _templates() -> jinja2.Environment:
    jenv = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    jenv.filters["q"] = lambda value: json.dumps(str(value))  # a double-quoted YAML string
    return jenv


def render(env_name: str, plan: dict | None = None) -> dict[str, str]:
    """Relative path -> text of every manifest of the environment. plan: the compiled plan the
    application-mode job runs (application/streaming-plan.yaml, a ConfigMap); without it the
    JobManager compiles the image's SQL when the job starts."""
    env = load(env_name)
    if "deploy" not in env:
        raise EnvError(f"environment {env_name!r} has no deploy: section: it is not deployed to Kubernetes"
                       + (" (the local stack runs it: adagg stack up)" if "stack" in env else ""))
    version = flink_version()
    context = {
        "env": env, "d": env.deploy, "image": image(env), "flink_version": version,
        "crd_flink_version": crd_flink_version(version), "flink_conf": flink_configuration(env),
        "job_args": job_args(env), "job_name": JOB_NAME, "session_cluster": SESSION_CLUSTER,
        "plan_job_args": job_args(env, plan=True), "plan_json": plan_json(plan) if plan else None,
        "plan_configmap": plan_configmap_name(plan_json(plan)) if plan else None,
        "plan_mount": str(PLAN_MOUNT), "plan_key": PLAN_KEY,
        "metrics_port": METRICS_PORT, "python_jar": f"flink-python-{version}.jar",
        "python_jar_url": python_jar_url(env, version),
        "flink_secret_env": flink_secret_env(env), "flink_secret_files": flink_secret_files(env),
        "collector_secret_env": collector_secret_env(env), "collector_secret_files": collector_secret_files(env),
        # The collector's graceful shutdown waits up to delivery_timeout + 5 s (collector/server.py):
        # Kubernetes must not kill it sooner.
        "collector_grace_s": env.collector.delivery_timeout_ms // 1000 + 15,
        "dns": pods_services(env),
    }
    jenv = _templates()
    out = {}
    layout = {**LAYOUT, **({"application/streaming-plan.yaml": "streaming-plan.yaml.j2"} if plan else {})}
    for rel, template in layout.items():
        text = (f"# Rendered by `adagg deploy render --env {env_name}` from infra/k8s/templates/{template}\n"
                f"# and infra/env/{env_name}.yaml. Do not edit: change those and render again.\n"
                + jenv.get_template(template).render(**context))
        for doc in yaml.safe_load_all(text):  # each file must parse: a template error shows here
            if doc is not None and doc.get("metadata", {}).get("namespace") not in (None, env.deploy.namespace):
                raise EnvError(f"{rel}: {doc['kind']} outside namespace {env.deploy.namespace}")
        out[rel] = text
    return out


def manifests(env_name: str, plan: dict | None = None) -> list[dict]:
    """The rendered objects, parsed."""
    return [doc for text in render(env_name, plan).values() for doc in yaml.safe_load_all(text) if doc]


def write(env_name: str, out: Path | None = None, plan: dict | None = None) -> list[Path]:
    """Render into out (default infra/k8s/<env>/), replacing what an earlier render wrote there."""
    out = out or K8S_DIR / env_name
    rendered = render(env_name, plan)
    for folder in {Path(rel).parent for rel in LAYOUT}:
        for stale in (out / folder).glob("*.yaml"):
            if str(stale.relative_to(out)) not in rendered:
                stale.unlink()
    written = []
    for rel, text in rendered.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
