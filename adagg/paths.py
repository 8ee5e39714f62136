"""Where things live: the source tree, and ADAGG_HOME for fetched jars, data and logs."""

import os
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SQL_DIR = REPO / "sql"
ENV_DIR = REPO / "infra" / "env"
PINOT_DIR = REPO / "pinot"
JVM_POM = REPO / "infra" / "jvm" / "pom.xml"


def home() -> Path:
    """State folder (jars, service data, logs, pid files); kept out of site-packages."""
    return Path(os.environ.get("ADAGG_HOME", REPO / ".adagg")).resolve()


def jvm_lib(module: str) -> Path:
    return home() / "jvm" / module / "lib"


def logs() -> Path:
    return home() / "logs"


def run() -> Path:
    return home() / "run"


def data() -> Path:
    return home() / "data"


def flink_python_path() -> str:
    """PYTHONPATH for Flink processes. Thread-mode UDFs run in a Python interpreter embedded in
    the JVM, which sees neither the venv's packages (pemja, ua-parser) nor udfs/ unless they are
    on it."""
    import sysconfig

    dirs = dict.fromkeys([str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    return os.pathsep.join(dirs)


def env_uri(value: str) -> str:
    """A location from an environment file as Flink wants it: URIs (s3://...) as they are, paths
    as file:// URIs, relative ones under ADAGG_HOME."""
    return value if "://" in value else env_dir(value).as_uri()


def env_dir(value: str) -> Path:
    """A location from an environment file as a local folder (relative: under ADAGG_HOME). The
    Python side (sealing, reconciliation, reports) reads local or mounted folders only."""
    if value.startswith("file://"):
        return Path(value.removeprefix("file://"))
    if "://" in value:
        raise ValueError(f"{value}: adagg's Python tools read local (or mounted) folders, not {value.split(':')[0]}:// "
                         f"URIs; mount the store and set the environment's path to the mount")
    return (home() / value).resolve()


def write_atomically(dest: Path, text: str) -> Path:
    """Write text aside and rename it onto dest: a reader (a service starting, Prometheus reloading)
    sees the old file or the new one, never half of it, whichever thread writes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    tmp.replace(dest)
    return dest
