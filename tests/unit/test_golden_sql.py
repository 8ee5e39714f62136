"""Golden files: the rendered SQL of every job in every environment, checked in for review.

After an intended change to sql/ or infra/env/, regenerate them with
    ADAGG_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_golden_sql.py
and read the diff: it is exactly what each environment will run.
"""

import os
from pathlib import Path

import pytest

from adagg import env as envs
from adagg.sql import example_params, jobs, render

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("env_name", envs.names())
@pytest.mark.parametrize("job", jobs())
def test_rendered_sql_matches_golden_file(job, env_name, monkeypatch):
    monkeypatch.setenv("ADAGG_HOME", "/var/lib/adagg")  # the local archive path lives under it
    path = GOLDEN / f"{job}.{env_name}.sql"
    rendered = render(env_name, job, **example_params(job))
    if os.environ.get("ADAGG_UPDATE_GOLDEN") == "1":
        path.write_text(rendered)
    assert path.exists(), f"no golden file {path.name}; create it with ADAGG_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(), f"{path.name} differs; review and regenerate with ADAGG_UPDATE_GOLDEN=1"


def test_no_stale_golden_files():
    expected = {f"{job}.{env_name}.sql" for job in jobs() for env_name in envs.names()}
    assert {p.name for p in GOLDEN.glob("*.sql")} == expected
