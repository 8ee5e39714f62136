"""Deployment, without a cluster or a Docker engine: the Kubernetes manifests that `adagg deploy
render` writes (committed in infra/k8s/<env>/, checked against a fresh render like the golden SQL),
validated against the Flink Kubernetes Operator's CRDs and Kubernetes' OpenAPI schema; secrets
referenced and never rendered; versions, ports and paths equal between the manifests, the job
image's Dockerfile, the compose file, infra/jvm, pyproject.toml and the environment files.

After an intended change to infra/k8s/templates/ or a deploy: section, render again with
    ADAGG_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_deploy.py
(or `adagg deploy render --env ENV`) and review the diff.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib.metadata
import importlib.util
import json
import os
import re
import secrets
from pathlib import PurePosixPath

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from starlette.testclient import TestClient

from adagg import deploy, k8s_schemas
from adagg import env as envs
from adagg.cli import main
from adagg.paths import REPO, jvm_lib

DEPLOYED = [name for name in envs.names() if "deploy" in envs.load(name)]
DOCKERFILE = REPO / "infra" / "docker" / "Dockerfile"
COMPOSE = REPO / "infra" / "docker" / "compose.yaml"


def need(what: str, found: bool) -> None:
    """A prerequisite the unit tier gets from `make`: missing, CI fails and a developer skips."""
    if not found:
        message = f"not found: {what}; run `adagg setup` (or `make setup`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def operator_crds():
    try:
        k8s_schemas.operator_jar()
    except k8s_schemas.MissingSchemas:
        need("the Flink Kubernetes Operator API jar (infra/jvm/k8s-schemas)", False)


@pytest.fixture(scope="module")
def kubernetes_schemas():
    need("kubernetes-validate (the test extra of pyproject.toml)", importlib.util.find_spec("kubernetes_validate") is not None)


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, name: str) -> dict:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def containers(doc: dict) -> list[dict]:
    if doc["kind"] == "Deployment":
        return doc["spec"]["template"]["spec"]["containers"]
    if doc["kind"] == "FlinkDeployment":
        return doc["spec"]["podTemplate"]["spec"]["containers"]
    return []


# -- the committed manifests ------------------------------------------------------------------------

@pytest.mark.parametrize("env_name", DEPLOYED)
def test_committed_manifests_equal_a_fresh_render(env_name):
    folder = deploy.K8S_DIR / env_name
    if os.environ.get("ADAGG_UPDATE_GOLDEN") == "1":
        deploy.write(env_name)
    rendered = deploy.render(env_name)
    committed = {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*.yaml")}
    assert set(committed) == set(rendered), "render again with ADAGG_UPDATE_GOLDEN=1 (or adagg deploy render)"
    for rel, text in rendered.items():
        assert committed[rel] == text, f"infra/k8s/{env_name}/{rel} differs; review and render again"


def test_only_deployed_environments_have_manifests():
    assert DEPLOYED  # dev and prod
    assert {p.name for p in deploy.K8S_DIR.iterdir() if p.is_dir()} == {"templates", *DEPLOYED}
    with pytest.raises(envs.EnvError, match="no deploy: section"):
        deploy.render("local")


def test_the_cli_renders_into_a_folder(tmp_path, capsys):
    assert main(["deploy", "render", "--env", "prod", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("wrote ") == len(deploy.LAYOUT)
    for rel, text in deploy.render("prod").items():
        assert (tmp_path / rel).read_text() == text
    assert main(["deploy", "render", "--env", "local"]) == 1
    assert "has no deploy: section" in capsys.readouterr().err


# -- the schemas ------------------------------------------------------------------------------------

def test_every_kind_rendered_is_validated():
    kinds = {d["kind"] for name in DEPLOYED for d in deploy.manifests(name)}
    assert kinds == {"FlinkDeployment", "FlinkSessionJob", "Deployment", "Service", "PodDisruptionBudget",
                     "ServiceAccount"}


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_the_flink_resources_validate_against_the_operator_crds(env_name, operator_crds, kubernetes_schemas):
    version = envs.load(env_name).deploy.kubernetes_version
    docs = [d for d in deploy.manifests(env_name) if d["kind"] in k8s_schemas.CRD_FILES]
    assert len(docs) == 3
    for doc in docs:
        assert k8s_schemas.validate(doc, version) == [], (doc["kind"], doc["metadata"]["name"])


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_the_kubernetes_objects_validate_against_the_kubernetes_schema(env_name, kubernetes_schemas):
    version = envs.load(env_name).deploy.kubernetes_version
    for doc in deploy.manifests(env_name):
        if doc["kind"] not in k8s_schemas.CRD_FILES:
            assert k8s_schemas.validate(doc, version) == [], (doc["kind"], doc["metadata"]["name"])


def _differences(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}/{k}")]
    return [] if a == b else [(path, a, b)]


def test_the_only_change_to_the_operator_schemas_is_flink_2_in_the_version_enum(operator_crds):
    original = k8s_schemas.crd_schema("FlinkDeployment", extended=False)
    extended = k8s_schemas.crd_schema("FlinkDeployment")
    [(path, before, after)] = _differences(original, extended)
    assert path == "/properties/spec/properties/flinkVersion/enum"
    assert before[-1] == "v1_20" and after == before + ["v2_0", "v2_1", "v2_2"]
    assert _differences(k8s_schemas.crd_schema("FlinkSessionJob", extended=False),
                        k8s_schemas.crd_schema("FlinkSessionJob")) == []


def test_the_crds_allow_unknown_fields_so_the_strict_check_is_needed(operator_crds):
    import jsonschema

    schema = k8s_schemas.crd_schema("FlinkDeployment")

    def closed(node) -> bool:
        if isinstance(node, dict):
            return node.get("additionalProperties") is False or any(closed(v) for v in node.values())
        return isinstance(node, list) and any(closed(v) for v in node)
    assert not closed(schema) and not closed(k8s_schemas.crd_schema("FlinkSessionJob"))
    typo = copy.deepcopy(one(deploy.manifests("prod"), "FlinkDeployment", deploy.JOB_NAME))
    typo["spec"]["job"]["upgradMode"] = typo["spec"]["job"].pop("upgradeMode")
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(typo)) == []  # plain jsonschema: passes
    assert k8s_schemas.validate(typo, "1.32") == ["spec.job.upgradMode: not in the FlinkDeployment CRD"]


def _set(doc: dict, path: str, value):
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _RENAME:
        node[leaf + "x"] = node.pop(leaf)
    else:
        node[leaf] = value


_RENAME = object()
BROKEN = [  # (kind, name, path, value): each must be refused
    ("FlinkDeployment", "adagg-streaming", "spec.job.upgradeMode", _RENAME),
    ("FlinkDeployment", "adagg-streaming", "spec.job.upgradeMode", "last_state"),
    ("FlinkDeployment", "adagg-streaming", "spec.job.parallelism", "12"),
    ("FlinkDeployment", "adagg-streaming", "spec.flinkConfiguration.metrics.reporter.prom.port", 9249),
    ("FlinkDeployment", "adagg-streaming", "spec.flinkVersion", "v2_3"),
    # `resources` (requests/limits) is in no operator release up to 1.15: `resource` it is.
    ("FlinkDeployment", "adagg-streaming", "spec.jobManager.resources", {"requests": {"memory": "2g"}}),
    ("FlinkDeployment", "adagg-streaming", "spec.podTemplate.spec.containers.0.env", {"name": "x"}),
    ("FlinkDeployment", "adagg-streaming", "metadata.labels", _RENAME),
    ("FlinkSessionJob", "adagg-streaming", "spec.deploymentName", _RENAME),
    ("Deployment", "adagg-collector", "spec.replicas", "3"),
    ("Deployment", "adagg-collector", "spec.template.spec.containers.0.readinessProbe", _RENAME),
    ("Service", "adagg-collector-pods", "spec.ports.0.port", "8070"),
    ("PodDisruptionBudget", "adagg-query-api", "spec.maxUnavailable", _RENAME),
]


@pytest.mark.parametrize("kind,name,path,value", BROKEN, ids=[f"{k}:{p}" for k, _, p, _ in BROKEN])
def test_a_broken_manifest_is_refused(kind, name, path, value, kubernetes_schemas, request):
    if kind in k8s_schemas.CRD_FILES:
        request.getfixturevalue("operator_crds")
    doc = copy.deepcopy(one(deploy.manifests("prod"), kind, name))
    if path.startswith("spec.flinkConfiguration."):
        doc["spec"]["flinkConfiguration"][path.removeprefix("spec.flinkConfiguration.")] = value
    else:
        _set(doc, path, value)
    assert k8s_schemas.validate(doc, "1.32") != []


# -- secrets ----------------------------------------------------------------------------------------

def _named(env) -> set[str]:
    return {var for _, var in deploy._named_secrets({k: v for k, v in env.items() if k != "deploy"})}


def test_the_secret_scan_finds_what_prod_names():
    assert _named(envs.load("prod")) == {"ADAGG_KAFKA_USERNAME", "ADAGG_KAFKA_PASSWORD",
                                         "ADAGG_KAFKA_TRUSTSTORE_PASSWORD", "ADAGG_PIXEL_SECRET_WEB"}


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_no_secret_value_is_rendered(env_name, monkeypatch):
    values = {var: f"s3cr3t-{secrets.token_hex(8)}" for var in _named(envs.load(env_name))}
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    text = "".join(deploy.render(env_name).values())
    assert not [var for var, value in values.items() if value in text]
    docs = deploy.manifests(env_name)
    assert not by_kind(docs, "Secret") and not by_kind(docs, "ConfigMap")
    for doc in docs:
        for container in containers(doc):
            for item in container.get("env", []):
                assert set(item) == {"name", "valueFrom"} and set(item["valueFrom"]) == {"secretKeyRef"}, item


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_every_named_secret_is_referenced_where_it_is_read(env_name):
    env = envs.load(env_name)
    docs = deploy.manifests(env_name)
    refs = {}  # container -> {variable: (secret, key)}
    for doc in docs:
        for container in containers(doc):
            refs[f"{doc['metadata']['name']}/{container['name']}"] = {
                item["name"]: (item["valueFrom"]["secretKeyRef"]["name"], item["valueFrom"]["secretKeyRef"]["key"])
                for item in container.get("env", [])}
    referenced = {var for found in refs.values() for var in found}
    assert referenced == _named(env)
    for found in refs.values():
        for var, (secret, key) in found.items():
            assert key == var and secret in env.deploy.secrets.values()
    kafka = {v for o, v in deploy._named_secrets(env.kafka, "kafka")}
    assert set(refs["adagg-streaming/flink-main-container"]) == kafka
    assert set(refs["adagg-session/flink-main-container"]) == kafka
    assert set(refs["adagg-collector/collector"]) == {v for o, v in deploy._named_secrets(env, "")
                                                      if o.startswith(("kafka.sasl.", "collector."))}
    assert refs["adagg-query-api/query-api"] == {}
    # Files (the truststore for Flink, the CA for librdkafka) are mounted where the env file says.
    mounts = {c["name"]: {m["mountPath"]: m for m in c.get("volumeMounts", [])}
              for d in docs for c in containers(d)}
    ssl = env.kafka.get("ssl", {})
    assert set(mounts["flink-main-container"]) == ({ssl.truststore_location} if ssl else set())
    assert set(mounts["collector"]) == ({ssl.ca_location} if ssl else set())


# -- versions, parallelism, ports -------------------------------------------------------------------

def test_flink_versions_agree_between_infra_jvm_pyproject_and_the_venv():
    version = deploy.flink_version()
    pin = re.search(r'"apache-flink([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert version in SpecifierSet(pin)
    assert importlib.metadata.version("apache-flink") == version


def test_the_image_tags_version_is_the_installed_packages():
    """adagg.__version__ (the lineage's and the tag's) is pyproject's version, as pip installed it."""
    assert deploy.project_version() == importlib.metadata.version("adagg")


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_image_flink_version_and_parallelism_come_from_their_one_place(env_name):
    env = envs.load(env_name)
    docs = deploy.manifests(env_name)
    tag = f"{deploy.project_version()}-flink{deploy.flink_version()}"
    images = {d["spec"]["image"] for d in by_kind(docs, "FlinkDeployment")} | {
        c["image"] for d in by_kind(docs, "Deployment") for c in containers(d)}
    assert images == {f"{env.deploy.image}:{tag}"}
    major, minor = deploy.flink_version().split(".")[:2]
    for doc in by_kind(docs, "FlinkDeployment"):
        conf = doc["spec"]["flinkConfiguration"]
        assert doc["spec"]["flinkVersion"] == f"v{major}_{minor}"
        assert conf["pipeline.max-parallelism"] == str(env.flink.max_parallelism)
        assert conf["execution.checkpointing.savepoint-dir"] == env.flink.savepoint_dir
        assert conf["high-availability.type"] == "kubernetes"
        assert conf["high-availability.storageDir"].startswith("s3://")
    jobs = [d["spec"]["job"] for d in by_kind(docs, "FlinkDeployment") + by_kind(docs, "FlinkSessionJob")
            if "job" in d["spec"]]
    assert len(jobs) == 2
    for job in jobs:
        assert job["parallelism"] == env.flink.parallelism and job["upgradeMode"] == "savepoint"
        assert job["jarURI"].endswith(f"/flink-python-{deploy.flink_version()}.jar")
        args = job["args"]
        assert args[args.index("--env") + 1] == env_name
        assert [args[i + 1] for i, a in enumerate(args) if a == "--jar"] == deploy.connector_jars()
    session_job = by_kind(docs, "FlinkSessionJob")[0]["spec"]
    assert session_job["deploymentName"] == one(docs, "FlinkDeployment", deploy.SESSION_CLUSTER)["metadata"]["name"]
    assert "job" not in one(docs, "FlinkDeployment", deploy.SESSION_CLUSTER)["spec"]


def test_the_job_s_jars_are_the_ones_adagg_setup_fetches():
    fetched = sorted(p.name for p in jvm_lib("flink").glob("*.jar"))
    need("the jars of infra/jvm/flink", bool(fetched))
    assert sorted(PurePosixPath(j).name for j in deploy.connector_jars()) == fetched


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_the_services_agree_with_the_monitoring_scrape_config(env_name):
    env = envs.load(env_name)
    docs = deploy.manifests(env_name)
    assert {d["metadata"]["namespace"] for d in docs} == {env.deploy.namespace}
    workloads = by_kind(docs, "Deployment") + by_kind(docs, "FlinkDeployment")
    for job, target in env.monitoring.dns.items():
        name, namespace = target.name.split(".")[:2]
        service = one(docs, "Service", name)
        assert namespace == env.deploy.namespace and service["spec"]["clusterIP"] == "None"
        assert service["spec"]["publishNotReadyAddresses"] is True
        [port] = service["spec"]["ports"]
        assert port["port"] == target.port
        selector = service["spec"]["selector"]
        pods = [w for w in workloads
                if selector.items() <= (w["spec"]["template"]["metadata"]["labels"] if w["kind"] == "Deployment"
                                        else w["spec"]["podTemplate"]["metadata"]["labels"]).items()]
        assert pods, (job, selector)
        for workload in pods:
            if workload["kind"] == "FlinkDeployment":
                assert workload["spec"]["flinkConfiguration"]["metrics.reporter.prom.port"] == str(target.port)
            [container] = containers(workload)
            assert {(p["name"], p["containerPort"]) for p in container["ports"]} == {(port["targetPort"],
                                                                                        target.port)}
        if job == "flink":
            assert {w["metadata"]["name"] for w in pods} == {deploy.JOB_NAME, deploy.SESSION_CLUSTER}


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_probes_ports_and_budgets_of_the_collector_and_the_query_api(env_name):
    env = envs.load(env_name)
    docs = deploy.manifests(env_name)
    for name, port, ready in (("adagg-collector", env.collector.port, "/readyz"),
                              ("adagg-query-api", env.serving.port, "/healthz")):
        [container] = containers(one(docs, "Deployment", name))
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": ready, "port": "http"}
        assert container["command"][:2] == ["adagg", "collect" if "collector" in name else "serve"]
        assert container["resources"]["requests"]["memory"] == container["resources"]["limits"]["memory"]
        assert one(docs, "Service", name)["spec"]["ports"][0]["port"] == port
        assert one(docs, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": name}
    collector = one(docs, "Deployment", "adagg-collector")["spec"]["template"]["spec"]
    assert collector["terminationGracePeriodSeconds"] > max(5, env.collector.delivery_timeout_ms // 1000 + 5)


def test_the_probed_paths_answer():
    from collector.app import create_app as collector_app
    from collector.config import load_settings
    from serving.api import create_app as api_app

    collector = TestClient(collector_app(load_settings(envs.load("local"))))  # not started: no Kafka writer
    assert collector.get("/healthz").status_code == 200
    assert collector.get("/readyz").status_code == 503
    assert TestClient(api_app(run=lambda sql, params=None: [])).get("/healthz").status_code == 200


# -- the job image ----------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, blanks collapsed."""
    text = re.sub(r"\\\n", " ", "\n".join(ln for ln in DOCKERFILE.read_text().splitlines()
                                           if not ln.lstrip().startswith("#")))
    return [(ln.split(None, 1)[0].upper(), " ".join(ln.split()[1:])) for ln in text.splitlines() if ln.strip()]


def copies() -> list[tuple[list[str], str, str | None]]:
    """(sources, destination, --from stage) of each COPY/ADD."""
    out = []
    for op, args in dockerfile():
        if op in ("COPY", "ADD"):
            words = args.split()
            stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            words = [w for w in words if not w.startswith("--")]
            out.append((words[:-1], words[-1], stage))
    return out


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps path out of the build context (the last matching rule wins)."""
    ignored = False
    for rule in (REPO / ".dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate, pattern = rule.startswith("!"), rule.lstrip("!")
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/")) for p in prefixes):
            ignored = not negate
    return ignored


def test_every_file_the_dockerfile_copies_exists_and_is_in_the_build_context():
    sources = [s for srcs, _, stage in copies() if stage is None for s in srcs]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not dockerignored(source), f"{source} is excluded by .dockerignore"
    assert dockerignored(".venv") and dockerignored(".adagg") and dockerignored("tests")
    assert dockerignored("adagg/__pycache__")


def test_the_dockerfile_builds_the_pinned_flink_with_the_jars_of_infra_jvm():
    steps = dockerfile()
    assert ("ARG", f"FLINK_VERSION={deploy.flink_version()}") in steps
    assert [a for op, a in steps if op == "FROM"][-1] == "flink:${FLINK_VERSION}-scala_2.12-java17"
    pip = next(a for op, a in steps if op == "RUN" and "pip install" in a)
    assert '"apache-flink==${FLINK_VERSION}"' in pip and "/tmp/dist/*.whl" in pip
    mvn = next(a for op, a in steps if op == "RUN" and a.startswith("mvn "))
    # The goal and scope of `adagg setup` (adagg/setup.py), on the module of the job's jars.
    assert "-f /src/infra/jvm/pom.xml -pl flink dependency:copy-dependencies" in mvn
    assert "-DincludeScope=runtime" in mvn and "-DoutputDirectory=/jars" in mvn
    assert (["/jars"], str(deploy.JARS_DIR), "jars") in copies()
    assert any(a == "pip wheel --no-deps --wheel-dir /dist ." for op, a in steps if op == "RUN")


def test_the_paths_the_manifests_name_are_the_ones_the_image_has():
    steps = dockerfile()
    final = {dest: srcs for srcs, dest, stage in copies() if stage is None and dest.startswith("/opt/adagg/")}
    packages = re.search(r"packages = \[([^\]]+)\]", (REPO / "pyproject.toml").read_text()).group(1)
    for package in re.findall(r'"([^"]+)"', packages):
        assert final[f"{deploy.APP_DIR}/{package}"] == [package]
    # What adagg.paths and adagg.contract read beside the packages, at the same place under /opt/adagg.
    for tree in ("sql", "infra/env", "pinot", "contracts"):
        assert final[f"{deploy.APP_DIR}/{tree}"] == [tree]
    assert ("ENV", f"PYTHONPATH={deploy.APP_DIR} ADAGG_HOME=/var/lib/adagg") in steps
    for doc in deploy.manifests("prod"):
        for job in [doc["spec"]["job"]] if doc["kind"].startswith("Flink") and "job" in doc["spec"] else []:
            script = job["args"][job["args"].index("-py") + 1]
            assert (REPO / PurePosixPath(script).relative_to(deploy.APP_DIR)).exists()
            assert PurePosixPath(script).parent.as_posix() in final
            assert job["args"][job["args"].index("-pyexec") + 1] == deploy.PYTHON
            if job["jarURI"].startswith("local://"):
                assert job["jarURI"] == "local:///opt/flink/opt/flink-python-" + deploy.flink_version() + ".jar"
    install = " ".join(a for op, a in steps if op == "RUN")
    assert "cp /opt/flink/opt/flink-python-${FLINK_VERSION}.jar /opt/flink/lib/" in install
    assert "apt-get install -y --no-install-recommends python3 python3-pip" in install
    assert deploy.PYTHON == "/usr/bin/python3"


# -- Docker Compose ---------------------------------------------------------------------------------

def test_the_compose_file_uses_the_pinned_images_and_local_yaml_s_ports():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    props = deploy.jvm_properties()
    local = envs.load("local")
    s = local.stack
    tag = f"{deploy.project_version()}-flink{deploy.flink_version()}"
    images = {name: svc["image"] for name, svc in services.items()}
    assert images["kafka"] == f"apache/kafka:{props['kafka.version']}"
    for name in ("zookeeper", "pinot-controller", "pinot-broker", "pinot-server"):
        assert images[name] == f"apachepinot/pinot:{props['pinot.version']}"
    for name in ("net", "flink-jobmanager", "flink-taskmanager", "collector", "query-api", "job"):
        assert images[name] == f"adagg:{tag}"
        assert services[name]["build"] == {"context": "../..", "dockerfile": "infra/docker/Dockerfile"}
        assert (COMPOSE.parent / services[name]["build"]["context"] / "infra/docker/Dockerfile").resolve() == DOCKERFILE
    # One network namespace; only `net` publishes, on 127.0.0.1, exactly the ports of local.yaml.
    assert all(svc["network_mode"] == "service:net" for name, svc in services.items() if name != "net")
    published = {p.split(":")[1] for p in services["net"]["ports"]}
    assert all(p.startswith("127.0.0.1:") and p.split(":")[1] == p.split(":")[2] for p in services["net"]["ports"])
    assert published == {str(p) for p in (s.kafka.port, s.flink_jobmanager.port, s.pinot_controller.port,
                                           s.pinot_broker.port, local.collector.port, local.serving.port)}
    assert f"{s.host}:{s.kafka.port}" in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"{s.host}:{s.kafka.port}" == local.kafka.bootstrap_servers
    assert f"{s.host}:{s.kafka.controller_port}" in services["kafka"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"]

    def arg(service, flag):
        command = services[service]["command"]
        return command[command.index(flag) + 1]
    zk = f"{s.host}:{s.zookeeper.port}"
    assert arg("zookeeper", "-zkPort") == str(s.zookeeper.port)
    assert {arg(n, "-zkAddress") for n in ("pinot-controller", "pinot-broker", "pinot-server")} == {zk}
    assert arg("pinot-controller", "-controllerPort") == str(s.pinot_controller.port)
    assert local.pinot.controller_url == f"http://{s.host}:{s.pinot_controller.port}"
    assert arg("pinot-broker", "-brokerPort") == str(s.pinot_broker.port)
    assert local.pinot.broker_url == f"http://{s.host}:{s.pinot_broker.port}"
    assert (arg("pinot-server", "-serverPort"), arg("pinot-server", "-serverAdminPort"),
            arg("pinot-server", "-serverGrpcPort")) == tuple(str(p) for p in (s.pinot_server.port,
                                                                                s.pinot_server.admin_port,
                                                                                s.pinot_server.grpc_port))
    assert services["kafka"]["environment"]["KAFKA_HEAP_OPTS"] == f"-Xms{s.kafka.heap} -Xmx{s.kafka.heap}"
    for name, heap in (("zookeeper", s.zookeeper.heap), ("pinot-controller", s.pinot_controller.heap),
                       ("pinot-broker", s.pinot_broker.heap), ("pinot-server", s.pinot_server.heap)):
        assert f"-Xms{heap} -Xmx{heap}" in services[name]["environment"]["JAVA_OPTS"]
    assert arg("collector", "--port") == str(local.collector.port)
    assert arg("query-api", "--port") == str(local.serving.port)
    flink = dict(line.split(": ", 1) for line in
                 services["flink-jobmanager"]["environment"]["FLINK_PROPERTIES"].strip().splitlines())
    assert services["flink-taskmanager"]["environment"] == services["flink-jobmanager"]["environment"]
    assert flink["rest.port"] == str(s.flink_jobmanager.port)
    assert local.flink.rest_url == f"http://{s.host}:{s.flink_jobmanager.port}"
    assert flink["jobmanager.memory.process.size"] == s.flink_jobmanager.process_memory
    assert flink["taskmanager.numberOfTaskSlots"] == str(s.flink_taskmanager.slots)
    assert flink["taskmanager.memory.process.size"] == s.flink_taskmanager.process_memory
    assert flink["taskmanager.memory.managed.size"] == s.flink_taskmanager.managed_memory
    assert flink["env.java.opts.taskmanager"] == s.flink_taskmanager.jvm_opts
    assert services["flink-taskmanager"]["deploy"]["replicas"] == s.flink_taskmanagers
    # The job is submitted as the manifests submit it: the same program, environment flag and jar folder.
    script = services["job"]["command"][-1]
    assert f"-py {deploy.APP_DIR}/pyflink_jobs/streaming_job.py --env local --job streaming --detach" in script
    assert f"-pyexec {deploy.PYTHON}" in script and f"{deploy.JARS_DIR}/*.jar" in script


# ---------------------------------------------------------------- the compiled plan's ConfigMap

def _plan(node_description: str = "Deduplicate(key=[event_id])") -> dict:
    """A small plan in COMPILE PLAN's shape (the real one is compiled in the integration tier)."""
    return {"flinkVersion": "2.2", "nodes": [
        {"id": 1, "type": "stream-exec-table-source-scan_1", "description": "TableSourceScan(table=[raw])"},
        {"id": 2, "type": "stream-exec-deduplicate_1", "description": node_description}],
        "edges": [{"source": 1, "target": 2, "shuffle": {"type": "FORWARD"}, "shuffleMode": "PIPELINED"}]}


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_with_a_plan_the_application_job_runs_it_from_a_configmap_named_by_its_content(
        env_name, operator_crds, kubernetes_schemas):
    env = envs.load(env_name)
    docs = deploy.manifests(env_name, plan=_plan())
    for doc in docs:
        assert k8s_schemas.validate(doc, env.deploy.kubernetes_version) == [], doc["kind"]
    [configmap] = by_kind(docs, "ConfigMap")
    assert json.loads(configmap["data"]["plan.json"]) == _plan()
    job = one(docs, "FlinkDeployment", deploy.JOB_NAME)
    assert job["spec"]["job"]["args"][-2:] == ["--plan", "/opt/adagg/plan/plan.json"]
    [volume] = [v for v in job["spec"]["podTemplate"]["spec"]["volumes"] if v["name"] == "plan"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    [mount] = [m for m in containers(job)[0]["volumeMounts"] if m["name"] == "plan"]
    assert mount["mountPath"] == "/opt/adagg/plan"
    # Another plan, another name: the FlinkDeployment's spec changes, so the operator upgrades.
    other = by_kind(deploy.manifests(env_name, plan=_plan("Deduplicate(key=[billing_key])")), "ConfigMap")[0]
    assert other["metadata"]["name"] != configmap["metadata"]["name"]
    # Without a plan (the committed manifests) the JobManager compiles the SQL itself.
    plain = one(deploy.manifests(env_name), "FlinkDeployment", deploy.JOB_NAME)
    assert "--plan" not in plain["spec"]["job"]["args"] and not by_kind(deploy.manifests(env_name), "ConfigMap")


def test_a_plan_over_a_configmaps_size_is_refused():
    with pytest.raises(envs.EnvError, match="over a ConfigMap's"):
        deploy.manifests("prod", plan=_plan("x" * deploy.PLAN_MAX_BYTES))


def test_with_plan_needs_an_output_folder_other_than_the_committed_one(capsys):
    with pytest.raises(SystemExit, match="--with-plan needs --out"):
        main(["deploy", "render", "--env", "prod", "--with-plan"])
