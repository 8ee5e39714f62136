"""Where things live: the source tree, and ADAGG_HOME for fetched jars, data and logs."""

import os
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
