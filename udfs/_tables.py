"""Where the data tables come from, and loading each one lazily, once per process.

Each table has a shipped default under udfs/data/ and an environment variable that points a
deployment to another file. The variable is read when the table is first used, not at import.
udfs.flink can also pass an explicit path taken from a Flink job parameter.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Generic, TypeVar

DATA_DIR = Path(__file__).resolve().parent / "data"

T = TypeVar("T")


class TableError(ValueError):
    """A data table that cannot be used: names the file and line."""


def table_path(env_var: str, default_name: str) -> Path:
    """The file named by `env_var` if it is set and non-empty, else the shipped default."""
    override = os.environ.get(env_var, "").strip()
    return Path(override) if override else DATA_DIR / default_name


def data_lines(path: Path):
    """(line_number, stripped_line) of a text table, skipping blank lines and '#' comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TableError(f"{path}: cannot read table: {exc.strerror or exc}") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


class Lazy(Generic[T]):
    """A table built on first use by `load(path)`, cached for the life of the process.

    `get()` loads `table_path(env_var, default_name)`: the environment variable is read on that
    first call only. `get(path)` loads an explicit file instead (a Flink job parameter names one);
    each distinct path is loaded once. Thread-safe: PyFlink thread mode may call from several
    task threads of one interpreter. `reset()` forgets everything, so the next use re-reads the
    environment variable and the files (tests use this).
    """

    def __init__(self, env_var: str, default_name: str, load: Callable[[Path], T]):
        self.env_var = env_var
        self.default_name = default_name
        self._load = load
        self._default: T | None = None
        self._by_path: dict[Path, T] = {}
        self._lock = threading.Lock()

    def path(self) -> Path:
        return table_path(self.env_var, self.default_name)

    def get(self, path: str | Path | None = None) -> T:
        if path is not None and str(path).strip():
            return self._explicit(Path(str(path).strip()))
        value = self._default
        if value is None:
            with self._lock:
                if self._default is None:
                    self._default = self._load(self.path())
                value = self._default
        return value

    def _explicit(self, path: Path) -> T:
        value = self._by_path.get(path)
        if value is None:
            with self._lock:
                if path not in self._by_path:
                    self._by_path[path] = self._load(path)
                value = self._by_path[path]
        return value

    def reset(self) -> None:
        with self._lock:
            self._default = None
            self._by_path.clear()
