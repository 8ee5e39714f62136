"""Render the Jinja2-templated Flink SQL in sql/ for an environment, and split it into statements."""

from __future__ import annotations

import hashlib
import re

import jinja2

from adagg import __version__
from adagg.env import Namespace, load
from adagg.paths import SQL_DIR


def jobs() -> list[str]:
    return sorted(p.stem for p in (SQL_DIR / "jobs").glob("*.sql"))


def sql_digest() -> str:
    """Digest of every SQL template: part of each output row's lineage."""
    h = hashlib.sha256()
    for path in sorted(SQL_DIR.rglob("*.sql")):
        h.update(path.relative_to(SQL_DIR).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def pipeline_version() -> str:
    return f"{__version__}+sql.{sql_digest()}"


def render(env: str | Namespace, job: str = "streaming_clicks", sql_dir=SQL_DIR) -> str:
    """Render a job for an environment, given by name or as a loaded (possibly overridden) env."""
    if job not in jobs():
        raise ValueError(f"unknown job {job!r}; known: {', '.join(jobs())}")
    loader = jinja2.FileSystemLoader(str(sql_dir))
    jenv = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = jenv.get_template(f"jobs/{job}.sql").render(env=load(env) if isinstance(env, str) else env, pipeline_version=pipeline_version())
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def split_statements(script: str) -> list[str]:
    """Split a rendered script into statements, keeping EXECUTE STATEMENT SET ... END as one.

    Rendered SQL never puts ';' inside string literals except at a line end, so splitting at
    line-ending semicolons is enough; comment lines are dropped.
    """
    statements, current, in_set = [], [], False
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        if stripped.upper().startswith("EXECUTE STATEMENT SET"):
            in_set = True
        if stripped.endswith(";") and (not in_set or stripped.upper() == "END;"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current, in_set = [], False
    if current:
        raise ValueError("script ends inside a statement: " + " ".join(current)[:200])
    return statements
