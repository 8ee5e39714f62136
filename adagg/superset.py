"""Superset, an optional part of the local stack (`adagg superset up|down|import|status`,
docs/dashboards.md): its own virtual environment under .adagg/ (its dependencies are large and
pinned whole in superset/requirements.txt), SQLite metadata under the stack's data, an admin whose
password is generated once, and the dashboards of superset/ imported through its REST API."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

import requests
from uv import find_uv_bin

from adagg import paths
from adagg.env import Namespace

REQUIREMENTS = paths.REPO / "superset" / "requirements.txt"
CONFIG = paths.REPO / "superset" / "superset_config.py"
ADMIN = "admin"


class SupersetError(RuntimeError):
    pass


def venv() -> Path:
    return paths.home() / "superset-venv"


def data_dir() -> Path:
    return paths.data() / "superset"  # wiped with the stack's data, like Pinot's metadata


def password_file() -> Path:
    return data_dir() / "admin_password"


def url(env: Namespace) -> str:
    return f"http://{env.stack.host}:{env.stack.superset.port}"


def install(say=print) -> Path:
    """The virtual environment, installed from the pinned requirements unless already done for
    exactly these pins. Returns its `superset` command."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = venv() / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return venv() / "bin" / "superset"
    say(f"Installing Superset into {venv()} (pinned in {REQUIREMENTS.relative_to(paths.REPO)}; about 800 MB, "
        "under a minute the first time) ...")
    # Without our PYTHONPATH (set for Flink's Python by the job's submission): the installer would
    # take the packages it finds there for installed and leave them out of the venv.
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv())], check=True, env=clean)
    # uv, not pip: the same pins installed in seconds instead of a minute or more.
    uv = [find_uv_bin(), "pip", "install", "-q", "-p", str(venv() / "bin" / "python")]
    done = subprocess.run([*uv, "-r", str(REQUIREMENTS)], capture_output=True, text=True, env=clean)
    if done.returncode:
        raise SupersetError(f"uv pip install -r {REQUIREMENTS} failed:\n{done.stderr[-2000:]}")
    stamp.write_text(digest)
    return venv() / "bin" / "superset"


def _secret(name: str, nbytes: int) -> str:
    """A generated secret kept in the data folder (mode 600): made once, then read."""
    path = data_dir() / name
    if not path.exists():
        data_dir().mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(nbytes))
    return path.read_text()


def process_env() -> dict[str, str]:
    # PYTHONPATH emptied: the stack sets it for Flink's Python (our venv), whose numpy is not Superset's.
    return {"PYTHONPATH": "", "SUPERSET_CONFIG_PATH": str(CONFIG), "ADAGG_SUPERSET_HOME": str(data_dir()),
            "ADAGG_SUPERSET_SECRET_KEY": _secret("secret_key", 42), "FLASK_APP": "superset.app:create_app()"}


def _superset(*args: str) -> None:
    command = [str(venv() / "bin" / "superset"), *args]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **process_env()})
    if done.returncode:
        raise SupersetError(f"superset {' '.join(args[:2])} failed:\n{(done.stdout + done.stderr)[-2000:]}")


def prepare(say=print) -> None:
    """Install, migrate the metadata database, create the roles and the admin (its password
    generated and printed once)."""
    install(say)
    fresh = not (data_dir() / "superset.db").exists()
    if fresh:
        say("  preparing Superset's metadata (superset db upgrade, superset init) ...")
    _superset("db", "upgrade")
    if not password_file().exists():
        password = _secret("admin_password", 18)
        _superset("fab", "create-admin", "--username", ADMIN, "--firstname", "adagg", "--lastname", "admin",
                  "--email", "admin@localhost", "--password", password)
        say(f"  Superset admin created: user {ADMIN}, password {password} (shown once; kept in {password_file()})")
    _superset("init")


def command(env: Namespace) -> list[str]:
    """One gunicorn worker with threads: a single-machine dashboard server, about 300 MB."""
    prepare()
    return [str(venv() / "bin" / "gunicorn"), "--bind", f"{env.stack.host}:{env.stack.superset.port}",
            "--workers", "1", "--threads", "8", "--timeout", "120", "--access-logfile", "-",
            "superset.app:create_app()"]


class Client:
    """Superset's REST API as the admin: a JWT from /security/login, plus the CSRF token that
    state-changing calls need."""

    def __init__(self, base: str, password: str | None = None):
        self.base = base
        self.http = requests.Session()
        login = self.http.post(f"{base}/api/v1/security/login", timeout=60, json={
            "username": ADMIN, "password": password or password_file().read_text(), "provider": "db", "refresh": True})
        if not login.ok:
            raise SupersetError(f"login to {base} as {ADMIN} failed: {login.status_code} {login.text[:300]}")
        self.http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = self.http.get(f"{base}/api/v1/security/csrf_token/", timeout=60)
        csrf.raise_for_status()
        self.http.headers.update({"X-CSRFToken": csrf.json()["result"], "Referer": base})

    def get(self, path: str, **params) -> dict:
        answer = self.http.get(f"{self.base}{path}", params=params, timeout=120)
        if not answer.ok:
            raise SupersetError(f"GET {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json()

    def post(self, path: str, **kwargs) -> dict:
        answer = self.http.post(f"{self.base}{path}", timeout=300, **kwargs)
        if not answer.ok:
            raise SupersetError(f"POST {path}: {answer.status_code} {answer.text[:1000]}")
        return answer.json()

    def counts(self) -> dict[str, int]:
        """How many databases, datasets, charts and dashboards Superset holds."""
        return {kind: self.get(f"/api/v1/{kind}/", q="(page_size:1)")["count"]
                for kind in ("database", "dataset", "chart", "dashboard")}


def import_bundle(env: Namespace, client: Client, say=print) -> dict[str, int]:
    """Render superset/ for the environment and import it (assets import: creates, or updates in
    place by UUID). The Pinot password, if the environment names one, is passed here, never rendered."""
    from adagg.superset_bundle import render, zipped

    files = render(env)
    form: dict[str, str] = {}
    secret_env = env.get("superset", {}).get("pinot_password_env")
    if secret_env:
        if secret_env not in os.environ:
            raise SupersetError(f"set {secret_env}: the Pinot password of environment {env.name!r}")
        import json

        form["passwords"] = json.dumps({"databases/pinot.yaml": os.environ[secret_env]})
    client.post("/api/v1/assets/import/", files={"bundle": ("adagg_dashboards.zip", zipped(files), "application/zip")},
                data=form)
    counts = client.counts()
    say(f"  imported {sum(1 for p in files if p.startswith('charts/'))} charts on "
        f"{sum(1 for p in files if p.startswith('dashboards/'))} dashboards; Superset holds {counts}")
    return counts
