"""The local stack: Kafka (KRaft), Pinot (ZooKeeper, controller, broker, server) and a Flink
session cluster, run as plain processes on loopback from jars fetched into ADAGG_HOME.

Each service is started in its own session (process group) with its pid recorded in
$ADAGG_HOME/run/<service>.pid and its output in $ADAGG_HOME/logs/<service>.log. A process is
ours only if its environment carries our ADAGG_HOME marker and its service name; the pid file is a
cache of which one that is. `down` stops only processes of ours, and a whole-stack down also those
no pid file points at. What the bookkeeping decides on its own goes to $ADAGG_HOME/logs/stack.log.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import jinja2
import requests

from adagg import paths, procstat
from adagg.env import load

STACK_DIR = paths.REPO / "infra" / "stack"
JAVA_OPENS = " ".join(
    f"--add-opens=java.base/{p}=ALL-UNNAMED"
    for p in ("java.lang", "java.lang.reflect", "java.nio", "sun.nio.ch", "java.util", "java.util.concurrent",
              "java.io", "java.net", "java.text", "java.time", "java.util.concurrent.atomic")
)
MARKER = "ADAGG_STACK_HOME"


def link_jars(folder: Path, jars) -> Path:
    """A folder of symlinks to jars kept elsewhere (the wheel, $ADAGG_HOME/jvm): Flink's scripts
    take whole folders (FLINK_LIB_DIR, FLINK_OPT_DIR), and nothing is copied or edited in place."""
    folder.mkdir(parents=True, exist_ok=True)
    for jar in jars:
        link = folder / jar.name
        if not link.exists():
            link.symlink_to(jar)
    return folder


class StackError(RuntimeError):
    """A failure a user can act on; the CLI prints it as one line."""


@dataclass
class Service:
    name: str
    ports: list[int]
    command: Callable[[], list[str]]
    healthy: Callable[[], bool]
    url: str = ""
    timeout_s: int = 180
    after: list[str] = field(default_factory=list)   # services that must be healthy first
    extra_env: Callable[[], dict[str, str]] = dict  # evaluated when the service starts
    optional: bool = False  # started only when named (`adagg superset up`); stopped with the rest
    # Started again whenever it exits, as a Kubernetes Deployment restarts its pod: the process the
    # pid file names is a supervising shell, the service runs as its child (SUPERVISE).
    supervised: bool = False
    # How long `stack down` waits after SIGTERM before it sends SIGKILL.
    stop_grace_s: float = 20.0


# A supervised service's shell: run the command again 1 s after it exits, for as long as the shell
# lives. `stack down` stops both (SIGTERM to the process group ends the shell with its child).
SUPERVISE = 'while :; do "$@"; echo "adagg: $0 exited with status $?; starting it again in 1 s" >&2; sleep 1; done'


# ---------------------------------------------------------------- helpers

def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, check: Callable[[requests.Response], bool] = lambda r: r.ok) -> bool:
    try:
        return check(requests.get(url, timeout=2))
    except requests.RequestException:
        return False


def require_java() -> str:
    java = shutil.which("java")
    if not java:
        raise StackError("Java not found on PATH: install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    first = out.splitlines()[0] if out else ""
    try:
        major = int(first.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        major = 0
    if major < 17:
        raise StackError(f"Java 17 or newer is required, found: {first or 'unknown'}")
    return java


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _render(template: str, dest: Path, **ctx) -> Path:
    text = jinja2.Template((STACK_DIR / template).read_text(), undefined=jinja2.StrictUndefined).render(**ctx)
    return paths.write_atomically(dest, text)


def python_warmup_agent(jar: Path, modules: list[str]) -> str:
    """The TaskManager JVM option that imports `modules` into its embedded Python when it starts
    (infra/stack/flink/python-warmup). No shell metacharacters: Flink's scripts `eval` the options."""
    return f"-javaagent:{jar}={','.join(modules)}@{sys.executable}"


def build_java(home: Path, source: Path, classpath: list[Path], manifest: str = "",
               services: dict[str, str] | None = None) -> Path:
    """A jar of one Java source file of ours, built into home/<name> once per source change with the
    JDK's javac and jar. manifest: extra MANIFEST.MF lines; services: META-INF/services files."""
    name = source.parent.name
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    jar = home / name / f"{name}-{digest}.jar"
    if jar.exists():
        return jar
    bin_dir = Path(require_java()).resolve().parent
    if not (bin_dir / "javac").exists():
        raise StackError(f"javac not found beside {bin_dir / 'java'}: a JDK 17 (not a JRE) is needed")
    build = jar.parent / f"build-{digest}"
    shutil.rmtree(build, ignore_errors=True)
    (build / "classes").mkdir(parents=True)
    (build / "MANIFEST.MF").write_text(manifest)
    for service, implementation in (services or {}).items():
        (build / "classes" / "META-INF" / "services").mkdir(parents=True, exist_ok=True)
        (build / "classes" / "META-INF" / "services" / service).write_text(implementation + "\n")
    cp = os.pathsep.join(str(p) for p in classpath)
    for cmd in ([str(bin_dir / "javac"), "-d", str(build / "classes"), "-cp", cp, str(source)],
                [str(bin_dir / "jar"), "--create", "--file", str(jar), "--manifest", str(build / "MANIFEST.MF"),
                 "-C", str(build / "classes"), "."]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise StackError(f"building {name} failed: {(done.stderr or done.stdout)[-500:]}")
    shutil.rmtree(build, ignore_errors=True)
    return jar


def build_python_warmup(home: Path, flink_lib: Path) -> Path:
    """The warm-up agent's jar, against pemja from flink-python in flink_lib."""
    return build_java(home, STACK_DIR / "flink" / "python-warmup" / "PythonWarmup.java",
                      list(flink_lib.glob("flink-python*.jar")), manifest="Premain-Class: adagg.warmup.PythonWarmup\n")


def build_metrics_reporter(home: Path, flink_lib: Path, prometheus_plugin: Path) -> Path:
    """Flink's Prometheus reporter bound to one address (infra/stack/flink/metrics-reporter)."""
    return build_java(home, STACK_DIR / "flink" / "metrics-reporter" / "LoopbackPrometheusReporterFactory.java",
                      [*flink_lib.glob("flink-dist*.jar"), prometheus_plugin],
                      services={"org.apache.flink.metrics.reporter.MetricReporterFactory":
                                "org.apache.flink.metrics.prometheus.LoopbackPrometheusReporterFactory"})


def _cluster_id() -> str:
    """A KRaft cluster id: a random UUID, URL-safe base64 without padding (22 characters).

    Like Kafka's own Uuid.randomUuid, never one starting with '-', which a CLI would take for a flag.
    """
    while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()).startswith("-"):
        pass
    return cid


def flink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def jmx_exporter_jar() -> Path:
    jars = sorted(paths.jvm_lib("metrics").glob("jmx_prometheus_javaagent-*.jar"))
    if not jars:
        raise StackError(f"the JMX exporter agent is missing in {paths.jvm_lib('metrics')}: run `adagg setup` first")
    return jars[-1]


def _classpath(module: str) -> str:
    lib = paths.jvm_lib(module)
    if not lib.is_dir() or not any(lib.glob("*.jar")):
        raise StackError(f"JVM artifacts for {module} are missing in {lib}: run `adagg setup` first")
    return f"{lib}/*"


# ---------------------------------------------------------------- the services

class Stack:
    def __init__(self, env_name: str = "local", env=None):
        self.env = env or load(env_name)  # env: an already loaded (e.g. overridden) environment
        if "stack" not in self.env:
            raise StackError(f"environment {env_name!r} has no local stack section")
        self.s = self.env.stack
        self.home = paths.home()
        self.services = self._services()

    def _java(self, module: str, heap: str, main: list[str], opts: str = "", metrics_port: int | None = None) -> list[str]:
        """A JVM service; with metrics_port, its MBeans served for Prometheus there (JMX exporter agent,
        rules in infra/stack/prometheus/jmx-<module>.yaml)."""
        agent = [f"-javaagent:{jmx_exporter_jar()}={self.s.host}:{metrics_port}:"
                 f"{STACK_DIR / 'prometheus' / f'jmx-{module}.yaml'}"] if metrics_port else []
        return [
            require_java(), f"-Xms{heap}", f"-Xmx{heap}", *opts.split(), *agent, *JAVA_OPENS.split(),
            f"-Dlog4j2.configurationFile={STACK_DIR / 'log4j2.properties'}",
            "-cp", _classpath(module), *main,
        ]

    def _kafka_cmd(self) -> list[str]:
        data = paths.data() / "kafka"
        props = _render("kafka/server.properties.j2", self.home / "conf" / "kafka.properties", s=self.s, data_dir=data)
        if not (data / "meta.properties").exists():
            fmt = self._java("kafka", "256m", ["kafka.tools.StorageTool", "format", "--standalone",
                                               "-t", _cluster_id(), "-c", str(props)])
            done = subprocess.run(fmt, capture_output=True, text=True)
            if done.returncode != 0:
                raise StackError(f"formatting Kafka storage failed: {done.stderr.strip()[-500:]}")
        return self._java("kafka", self.s.kafka.heap, ["kafka.Kafka", str(props)], metrics_port=self.s.kafka.metrics_port)

    def _pinot_cmd(self, role: str, heap: str, opts: str = "") -> list[str]:
        admin = "org.apache.pinot.tools.admin.PinotAdministrator"
        zk = f"{self.s.host}:{self.s.zookeeper.port}"
        if role == "zookeeper":  # run ZooKeeper itself: Pinot's StartZookeeper cannot bind to loopback only
            cfg = _render("pinot/zoo.cfg.j2", self.home / "conf" / "zoo.cfg", s=self.s, data_dir=paths.data() / "zookeeper")
            return self._java("pinot", heap, ["org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)])
        conf = _render(f"pinot/{role}.conf.j2", self.home / "conf" / f"pinot-{role}.conf",
                       s=self.s, data_dir=paths.data() / "pinot")
        start = {"controller": "StartController", "broker": "StartBroker", "server": "StartServer"}[role]
        args = [start, "-zkAddress", zk, "-clusterName", "adagg", "-configFileName", str(conf)]
        return self._java("pinot", heap, [admin, *args], opts, metrics_port=self.s[f"pinot_{role}"].metrics_port)

    def _prometheus_cmd(self) -> list[str]:
        from adagg.setup import prometheus_bin

        if not prometheus_bin().exists():
            raise StackError(f"Prometheus is missing in {prometheus_bin().parent}: run `adagg setup` first")
        return [str(prometheus_bin()), f"--config.file={self.prometheus_config()}",
                f"--storage.tsdb.path={paths.data() / 'prometheus'}",
                f"--web.listen-address={self.s.host}:{self.s.prometheus.port}",
                f"--storage.tsdb.retention.time={self.s.prometheus.retention}"]

    def prometheus_config(self) -> Path:
        """The scrape configuration (every service of the stack, infra/stack/prometheus) and the SLO
        alerting rules it loads (infra/monitoring)."""
        from adagg.slo import write_rules

        taskmanagers = {name: self.taskmanager_metrics_port(name) for name in self.taskmanager_names()}
        rules = write_rules(self.env, self.home / "conf" / "alerts.yml")
        return _render("prometheus/prometheus.yml.j2", self.home / "conf" / "prometheus.yml", s=self.s, env=self.env,
                       taskmanagers=taskmanagers, rules=rules)

    def flink_conf_dir(self) -> Path:
        conf = self.home / "flink-conf"
        modules = self.s.flink_taskmanager.get("python_warmup", [])
        warmup = python_warmup_agent(build_python_warmup(self.home, self.flink_lib_dir()), modules) if modules else ""
        _render("flink/config.yaml.j2", conf / "config.yaml", s=self.s, data_dir=paths.data() / "flink",
                java_opts=JAVA_OPENS, python=sys.executable,
                taskmanager_opts=" ".join(filter(None, [self.s.flink_taskmanager.jvm_opts, warmup])))
        for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties"):
            text = (flink_home() / "conf" / name).read_text()
            # The connector's shaded Kafka client logs every reconnect at INFO: gigabytes when Kafka is down.
            text += ("\nlogger.adaggkafka.name = org.apache.flink.kafka.shaded.org.apache.kafka\n"
                     "logger.adaggkafka.level = WARN\n")
            (conf / name).write_text(text)
        return conf

    def flink_lib_dir(self) -> Path:
        """The wheel's lib/ plus flink-python from its opt/. Thread-mode UDFs load pemja's native
        library once per JVM: loaded from a job's classloader, the next job on the TaskManager
        fails ("NoSuchFieldException: loadedLibraryNames" on Java 17). From lib/, and parent-first
        (config.yaml.j2), it is loaded once for every job."""
        return link_jars(self.home / "flink-lib",
                         [*(flink_home() / "lib").glob("*.jar"), *(flink_home() / "opt").glob("flink-python*.jar")])

    def flink_plugins_dir(self) -> Path:
        """Flink's plugins: the wheel's Prometheus reporter with our reporter factory beside it, in
        one plugin folder (one class loader: the factory reuses the reporter's package)."""
        wheel = flink_home() / "plugins" / "metrics-prometheus"
        [reporter] = wheel.glob("flink-metrics-prometheus-*.jar")
        ours = build_metrics_reporter(self.home, self.flink_lib_dir(), reporter)
        plugins = self.home / "flink-plugins"
        folder = plugins / "metrics-prometheus"
        link_jars(folder, [reporter, ours])
        for stale in set(folder.iterdir()) - {folder / reporter.name, folder / ours.name}:
            stale.unlink()  # an older build of ours: two classes of one name in one plugin
        return plugins

    def flink_env(self) -> dict[str, str]:
        return {"FLINK_CONF_DIR": str(self.flink_conf_dir()), "FLINK_LOG_DIR": str(paths.logs()),
                "FLINK_HOME": str(flink_home()), "FLINK_LIB_DIR": str(self.flink_lib_dir()),
                "FLINK_PLUGINS_DIR": str(self.flink_plugins_dir()), "PYTHONPATH": paths.flink_python_path()}

    def _flink_cmd(self, role: str, *dynamic: str) -> list[str]:
        require_java()
        return ["bash", str(flink_home() / "bin" / f"{role}.sh"), "start-foreground", *self.flink_ha(), *dynamic]

    def flink_ha(self) -> list[str]:
        """JobManager high availability through the stack's ZooKeeper, for the cluster's processes
        only (the JobManager and the TaskManagers, which find their leader there): the leader's
        address, the job graphs and the completed checkpoints' pointers live in ZooKeeper, their
        files under data/flink/ha. A JobManager that dies (the stack starts it supervised) comes
        back, finds its jobs there and restores each from its newest checkpoint. Clients (`flink
        run`, the tests' mini-clusters) use the same config.yaml without it and reach the REST port."""
        # "-D key=value" as two arguments: jobmanager.sh takes a first argument not "-D" for a host.
        ha = {"high-availability.type": "zookeeper",
              "high-availability.zookeeper.quorum": f"{self.s.host}:{self.s.zookeeper.port}",
              "high-availability.storageDir": f"file://{self.flink_ha_dir().parent}",
              "high-availability.cluster-id": f"/{self.flink_ha_dir().name}",
              # A killed JobManager's leadership and job locks are ZooKeeper nodes of its session: they
              # go when the session expires (default 60 s), and only then does its successor take over.
              "high-availability.zookeeper.client.session-timeout": "10000"}
        return [arg for key, value in ha.items() for arg in ("-D", f"{key}={value}")]

    def flink_ha_dir(self) -> Path:
        """The cluster's HA files (job graphs, blobs, checkpoint pointers): <storageDir>/<cluster-id>."""
        return paths.data() / "flink" / "ha" / f"adagg-{self.env.name}"

    def jobs_recovered(self, overview: dict) -> bool:
        """Does the JobManager list (again) every job its HA store holds? After a restart it
        recovers them a moment after its REST API answers: a caller looking in between would take
        the cluster for empty and submit the job a second time (the demo reuses a running job)."""
        stored = list(self.flink_ha_dir().glob("submitted*"))
        live = [j for j in overview.get("jobs", []) if j["state"] not in ("FINISHED", "CANCELED", "FAILED")]
        return len(live) >= len(stored)

    def taskmanager_names(self) -> list[str]:
        """flink-taskmanager-1 .. -N (stack.flink_taskmanagers): each one is a service of its own,
        so a test or an operator can kill and restart one while the job fails over to the others."""
        return [f"flink-taskmanager-{i}" for i in range(1, self.s.flink_taskmanagers + 1)]

    def _taskmanager(self, name: str, rest: str) -> Service:
        resource_id = name.removeprefix("flink-")  # taskmanager-1: how the JobManager lists it
        tmp = paths.data() / "flink" / resource_id / "tmp"  # RocksDB working dirs and spills, wiped with the data
        metrics_port = self.taskmanager_metrics_port(name)

        def registered() -> bool:
            return http_ok(f"{rest}/taskmanagers",
                           lambda r: r.ok and any(tm["id"] == resource_id for tm in r.json().get("taskmanagers", [])))

        def command() -> list[str]:
            tmp.mkdir(parents=True, exist_ok=True)
            return self._flink_cmd("taskmanager", f"-Dtaskmanager.resource-id={resource_id}", f"-Dio.tmp.dirs={tmp}",
                                   f"-Dmetrics.reporter.prom.port={metrics_port}")
        return Service(name, [metrics_port], command, registered, after=["flink-jobmanager"])

    def taskmanager_metrics_port(self, name: str) -> int:
        """TaskManager i serves its metrics at the JobManager's metrics port + i."""
        return self.s.flink_jobmanager.metrics_port + int(name.rsplit("-", 1)[1])

    def _services(self) -> list[Service]:
        s, h = self.s, self.s.host
        ctl = f"http://{h}:{s.pinot_controller.port}"
        rest = f"http://{h}:{s.flink_jobmanager.port}"
        prom = f"http://{h}:{s.prometheus.port}"
        api_port = self.env.serving.port

        def kafka_ready() -> bool:
            if not port_open(s.kafka.port, h):
                return False
            from kafka import KafkaAdminClient

            try:
                KafkaAdminClient(bootstrap_servers=f"{h}:{s.kafka.port}", request_timeout_ms=3000).close()
                return True
            except Exception:  # noqa: BLE001 - any client failure means "not ready yet"
                return False

        return [
            Service("kafka", [s.kafka.port, s.kafka.controller_port, s.kafka.metrics_port], self._kafka_cmd, kafka_ready,
                    url=f"{h}:{s.kafka.port}"),
            Service("collector", [self.env.collector.port],
                    lambda: [sys.executable, "-m", "adagg.cli", "collect", "--env", self.env.name],
                    lambda: http_ok(f"http://{h}:{self.env.collector.port}/healthz"),
                    url=f"http://{h}:{self.env.collector.port}", after=["kafka"]),
            Service("zookeeper", [s.zookeeper.port], lambda: self._pinot_cmd("zookeeper", s.zookeeper.heap),
                    lambda: port_open(s.zookeeper.port, h), url=f"{h}:{s.zookeeper.port}"),
            Service("flink-jobmanager", [s.flink_jobmanager.port, s.flink_jobmanager.rpc_port, s.flink_jobmanager.metrics_port],
                    lambda: self._flink_cmd("jobmanager"),
                    lambda: http_ok(f"{rest}/jobs/overview", lambda r: r.ok and self.jobs_recovered(r.json())),
                    url=rest, after=["zookeeper"], supervised=True),
            *(self._taskmanager(name, rest) for name in self.taskmanager_names()),
            Service("pinot-controller", [s.pinot_controller.port, s.pinot_controller.metrics_port],
                    lambda: self._pinot_cmd("controller", s.pinot_controller.heap),
                    lambda: http_ok(f"{ctl}/health"), url=ctl, after=["zookeeper"]),
            Service("pinot-broker", [s.pinot_broker.port, s.pinot_broker.metrics_port], lambda: self._pinot_cmd("broker", s.pinot_broker.heap),
                    lambda: http_ok(f"http://{h}:{s.pinot_broker.port}/health"),
                    url=f"http://{h}:{s.pinot_broker.port}", after=["pinot-controller"]),
            Service("pinot-server", [s.pinot_server.port, s.pinot_server.admin_port, s.pinot_server.metrics_port],
                    lambda: self._pinot_cmd("server", s.pinot_server.heap, s.pinot_server.get("jvm_opts", "")),
                    lambda: http_ok(f"http://{h}:{s.pinot_server.admin_port}/health"),
                    # It stops its realtime tables one by one, each once its consumer's Kafka poll
                    # (up to 5 s) returns: ~50 s for twelve tables. A kill loses nothing: consuming
                    # segments are consumed again from their start offsets, as after a crash.
                    after=["pinot-controller"], stop_grace_s=5.0),
            Service("query-api", [api_port],
                    lambda: [sys.executable, "-m", "adagg.cli", "serve", "--env", self.env.name],
                    lambda: http_ok(f"http://{h}:{api_port}/healthz"), url=f"http://{h}:{api_port}", after=["pinot-broker"]),
            Service("prometheus", [s.prometheus.port], self._prometheus_cmd, lambda: http_ok(f"{prom}/-/ready"), url=prom),
            self._superset(),
        ]

    def _superset(self) -> Service:
        from adagg import superset

        base = superset.url(self.env)
        return Service("superset", [self.s.superset.port], lambda: superset.command(self.env),
                       lambda: http_ok(f"{base}/health"), url=base, timeout_s=300, optional=True,
                       extra_env=superset.process_env)

    def select(self, only: list[str] | None) -> list[Service]:
        """The services named (groups expanded), or all but the optional ones."""
        if not only:
            return [svc for svc in self.services if not svc.optional]
        known = {svc.name for svc in self.services}
        groups = {"pinot": ["zookeeper", "pinot-controller", "pinot-broker", "pinot-server"],
                  "flink": ["flink-jobmanager", *self.taskmanager_names()],
                  "flink-taskmanagers": self.taskmanager_names()}
        wanted: list[str] = []
        for name in only:
            names = groups.get(name, [name])
            for n in names:
                if n not in known:
                    raise StackError(f"unknown service {n!r}; known: {', '.join(sorted(known | set(groups)))}")
            wanted += names
        return [svc for svc in self.services if svc.name in wanted]

    def with_dependencies(self, selected: list[Service]) -> list[Service]:
        """The services and every service they need (`after`, transitively), in stack order: `up
        --only flink` starts the ZooKeeper the JobManager keeps its leadership in."""
        names, todo = set(), [svc.name for svc in selected]
        while todo:
            name = todo.pop()
            if name not in names:
                names.add(name)
                todo += next(svc.after for svc in self.services if svc.name == name)
        return [svc for svc in self.services if svc.name in names]

    # ------------------------------------------------------------ process bookkeeping

    def pid_file(self, name: str) -> Path:
        return paths.run() / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return paths.logs() / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The pid of our running process for this service, or None (stale pid files are removed).

        The pid file is a cache: when the process it names is gone or does not read as ours, the
        service's process is looked for by what it was started with (our marker and its name, as a
        session leader) before it is taken for stopped, so a lost or stale file never leaves a
        running service untracked."""
        pf = self.pid_file(name)
        recorded = int(pf.read_text().strip() or 0) if pf.exists() else None
        # None: the process exists but its environment could not be read (it is mid-exec, e.g.
        # bash -> java under load); the file is ours, so it stays.
        if recorded and _ours(recorded, self._marker(), name) is not False:
            return recorded
        found = self._session_leader(name)
        if found is not None:
            _note(f"{name}: pid file named {recorded}, the service runs as pid {found}; pid file rewritten")
            pf.parent.mkdir(parents=True, exist_ok=True)
            pf.write_text(str(found))
            return found
        if recorded is not None:
            _note(f"{name}: pid {recorded} is not ours any more ({_describe(recorded)}); pid file removed")
            pf.unlink(missing_ok=True)
        return None

    def _marker(self) -> bytes:
        return f"{MARKER}={self.home}".encode()

    def _session_leader(self, name: str) -> int | None:
        """The live process started as this service: it leads its own process group (start) and
        its environment carries our marker and the service's name."""
        for pid, service in self.processes().items():
            if service == name and _pgid(pid) == pid:
                return pid
        return None

    def start(self, svc: Service) -> None:
        for port in svc.ports:
            if port_open(port, self.s.host):
                raise StackError(f"{svc.name}: port {port} is already in use by another process "
                                 f"(see `ss -ltnp | grep :{port}`); stop it or change infra/env/local.yaml")
        log = self.log_file(svc.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        paths.run().mkdir(parents=True, exist_ok=True)
        # The marker first: /proc/<pid>/environ is read in pages, and it is how the process is known.
        env = {MARKER: str(self.home), "ADAGG_SERVICE": svc.name,
               **{k: v for k, v in os.environ.items() if k not in (MARKER, "ADAGG_SERVICE")},
               **self.flink_env(), **svc.extra_env()}
        command = ["bash", "-c", SUPERVISE, svc.name, *svc.command()] if svc.supervised else svc.command()
        with open(log, "ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=self.home, start_new_session=True)
        self.pid_file(svc.name).write_text(str(proc.pid))
        _note(f"{svc.name}: started pid {proc.pid}")

    def wait_healthy(self, svc: Service) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < svc.timeout_s:
            if self.pid(svc.name) is None:
                raise StackError(f"{svc.name} exited during start-up; last lines of {self.log_file(svc.name)}:\n"
                                 + tail(self.log_file(svc.name)))
            if svc.healthy():
                return time.monotonic() - t0
            time.sleep(0.5)
        raise StackError(f"{svc.name} did not become healthy within {svc.timeout_s} s; last lines of "
                         f"{self.log_file(svc.name)}:\n" + tail(self.log_file(svc.name)))

    # ------------------------------------------------------------ commands

    def up(self, only: list[str] | None = None, say=print) -> dict[str, float]:
        """Start what is not running, in dependency order, and wait for health. Idempotent."""
        t0 = time.monotonic()
        todo = self.with_dependencies(self.select(only))
        started: dict[str, float] = {}
        pending = list(todo)
        healthy: set[str] = {svc.name for svc in self.services if self.pid(svc.name) and svc.healthy()}
        while pending:
            ready = [svc for svc in pending if all(dep in healthy for dep in svc.after)]
            if not ready:
                missing = {dep for svc in pending for dep in svc.after if dep not in healthy}
                raise StackError(f"cannot start {', '.join(s.name for s in pending)}: "
                                 f"needs {', '.join(sorted(missing))} (start them too)")
            launched = []
            for svc in ready:
                if self.pid(svc.name) is None:
                    say(f"  starting {svc.name} ...")
                    self.start(svc)
                    launched.append(svc.name)
            for svc in ready:
                self.wait_healthy(svc)
                started[svc.name] = round(time.monotonic() - t0, 1)
                how = f"healthy after {started[svc.name]:5.1f} s" if svc.name in launched else "already running    "
                say(f"  {svc.name:18} {how}  {svc.url}")
                healthy.add(svc.name)
                pending.remove(svc)
        return started

    def down(self, only: list[str] | None = None, say=print) -> None:
        """Stop in waves, dependents before what they depend on (TaskManagers before the JobManager,
        the Pinot broker and server before the controller), Kafka and ZooKeeper last: Flink and
        Pinot talk to them while they stop, and a Pinot role or a JobManager whose ZooKeeper is
        gone retries until it is killed."""
        for wave in self._stop_waves(self.select(only) if only else self.services):
            running = {svc.name: pid for svc in wave if (pid := self.pid(svc.name)) is not None}
            for name, pid in running.items():
                say(f"  stopping {name} (pid {pid})")
            grace = {svc.name: svc.stop_grace_s for svc in wave}
            kill_groups(list(running.values()), {pid: grace[name] for name, pid in running.items()})
            for name in running:
                self.pid_file(name).unlink(missing_ok=True)
        if not only:
            self._stop_strays(say)

    @staticmethod
    def _stop_waves(selected: list[Service]) -> list[list[Service]]:
        last = {"kafka", "zookeeper"}
        waves, left = [], list(selected)
        while left:
            wave = [s for s in left if s.name not in last and not any(s.name in o.after for o in left)] or left
            waves.append(wave)
            left = [s for s in left if s not in wave]
        return waves

    def _stop_strays(self, say) -> None:
        """A whole-stack down also stops what no pid file points at any more (a service whose file
        was lost): nothing this checkout started may outlive `down`."""
        strays = self.processes()
        for pid, service in strays.items():
            say(f"  stopping stray {service} (pid {pid}, no pid file points at it)")
            _note(f"{service}: stray pid {pid} stopped by down")
        groups = {_pgid(pid) for pid in strays} - {None, os.getpgrp()}
        kill_groups(sorted(groups))

    def processes(self) -> dict[int, str]:
        """Every live process whose environment carries this stack's marker, with the service it
        was started as (ADAGG_SERVICE): a pid file points at one of them, or it is a stray."""
        marker, found = self._marker(), {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker in environ:
                found[int(proc.name)] = _service_of(environ) or "?"
        return found

    def urls(self) -> list[str]:
        s = self.s
        return [f"  Flink web UI:    http://{s.host}:{s.flink_jobmanager.port}",
                f"  Pinot console:   http://{s.host}:{s.pinot_controller.port}",
                f"  Pinot broker:    http://{s.host}:{s.pinot_broker.port}",
                f"  Kafka bootstrap: {s.host}:{s.kafka.port}",
                f"  Collector:       http://{s.host}:{self.env.collector.port}/v1/events",
                f"  Query API:       http://{s.host}:{self.env.serving.port}/docs",
                f"  Prometheus:      http://{s.host}:{s.prometheus.port} (targets: /targets, API: /api/v1/query)",
                f"  Superset:        http://{s.host}:{s.superset.port} "
                + ("(user admin, password in .adagg/data/superset/admin_password)" if self.pid("superset")
                   else "(not running: `adagg superset up` starts it with the dashboards)")]

    def status(self) -> list[dict]:
        """Every service, and the optional ones that run."""
        rows = []
        for svc in self.services:
            pid = self.pid(svc.name)
            if svc.optional and pid is None:
                continue
            rows.append({"service": svc.name, "pid": pid, "running": pid is not None,
                         "healthy": bool(pid) and svc.healthy(), "rss_mb": rss_mb(pid) if pid else None,
                         "url": svc.url})
        return rows


def start_fresh(only: list[str] | None = None, say=print) -> Stack:
    """Stop anything this checkout runs, wipe its service data, the raw archive and the reports
    (they describe the data wiped: offsets, reconciled hours), and start `only` (or everything).
    For tests and benchmarks that must not see an earlier run's topics or state."""
    stack = Stack("local")
    stack.down(say=say)
    shutil.rmtree(paths.data(), ignore_errors=True)
    for folder in (stack.env.archive.path, stack.env.archive.reports, "it-archive"):
        shutil.rmtree(paths.env_dir(folder), ignore_errors=True)
    stack.up(only, say=say)
    return stack


def _ours(pid: int, marker: bytes, service: str) -> bool | None:
    """Is pid a live (not zombie) process that leads its group and whose environment carries our
    marker and the service's name? None: it lives but its environment stayed unreadable.

    /proc/<pid>/environ reads empty for a moment while a process execs (bash -> java), so an
    empty read is retried rather than taken for "someone else's process". A recycled pid can be a
    thread of another process (/proc/<tid> reads like a process): the group check rules it out.
    """
    for _ in range(20):
        try:
            state = procstat.read(pid).state
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (OSError, IndexError, ValueError):
            return False
        if state == "Z":
            _reap(pid)
            return False
        if environ:
            values = environ.split(b"\0")
            return marker in values and _service_of(values) == service and _pgid(pid) == pid
        time.sleep(0.05)
    return None


def _describe(pid: int) -> str:
    """What /proc says of pid, for the stack log."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()[:80]
        service = _service_of(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
        return f"stat {stat!r}, service {service or 'none'}"
    except OSError as e:
        return f"no process: {e.strerror}"


def _service_of(environ: list[bytes]) -> str | None:
    """The service a process was started as (ADAGG_SERVICE in its environment, split at NULs)."""
    return next((v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"ADAGG_SERVICE=")), None)


def _note(line: str) -> None:
    """One line in logs/stack.log: what the bookkeeping decided on its own, for post-mortems."""
    paths.logs().mkdir(parents=True, exist_ok=True)
    with open(paths.logs() / "stack.log", "a") as out:
        out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _reap(pid: int) -> None:
    """Collect a process that was our own child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def group_alive(pgid: int) -> bool:
    _reap(pgid)  # a zombie leader still "exists" for killpg until it is collected
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def kill_groups(pgids: list[int], grace_s: float | dict[int, float] = 20.0) -> None:
    """SIGTERM process groups (services, a backfill job), then SIGKILL each one still alive after
    its grace period (grace_s: one for all, or by process group)."""
    grace = grace_s if isinstance(grace_s, dict) else dict.fromkeys(pgids, grace_s)
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    t0, pending = time.monotonic(), set(pgids)
    while pending:
        for pgid in list(pending):
            if not group_alive(pgid):
                pending.discard(pgid)
            elif time.monotonic() - t0 >= grace[pgid]:
                with contextlib.suppress(ProcessLookupError):  # it may end in between
                    os.killpg(pgid, signal.SIGKILL)
                pending.discard(pgid)
        if pending:
            time.sleep(0.2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(group_alive(p) for p in pgids):
        time.sleep(0.1)


def live_heap_mb(pid: int) -> float:
    """The live data on a JVM's heap: its used heap right after a full collection (jcmd GC.run)."""
    subprocess.run(["jcmd", str(pid), "GC.run"], capture_output=True, text=True, check=True, timeout=60)
    info = subprocess.run(["jcmd", str(pid), "GC.heap_info"], capture_output=True, text=True, check=True,
                          timeout=60).stdout
    used = re.search(r"heap\s+total \d+K, used (\d+)K", info)
    if not used:
        raise StackError(f"no heap figures from jcmd {pid} GC.heap_info: {info[:200]}")
    return round(int(used[1]) / 1024, 1)


def rss_mb(pid: int) -> float | None:
    """Resident memory of the service: the process and its children in the same group."""
    total_kb = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pid:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return round(total_kb / 1024, 1) if total_kb else None
