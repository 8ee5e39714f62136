"""`adagg collect`: run the collector under uvicorn (uvloop + httptools), one or more workers."""

from __future__ import annotations

import json
import logging
import os
import tempfile

from adagg.env import load, override
from collector.config import load_settings

_ENV_VAR, _SET_VAR, _WORKERS_VAR = "ADAGG_COLLECTOR_ENV", "ADAGG_COLLECTOR_SET", "ADAGG_COLLECTOR_WORKERS"


def parse_sets(pairs: list[str]) -> dict:
    """--set collector.port=8071 style overrides; values are YAML scalars (8071 is an int)."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set wants KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def settings_from_environ():
    env = override(load(os.environ.get(_ENV_VAR, "local")), json.loads(os.environ.get(_SET_VAR, "{}")))
    return load_settings(env, workers=int(os.environ.get(_WORKERS_VAR, "0")) or None)


def app_from_environ():
    """uvicorn factory: each worker process builds its app from the environment variables run() set."""
    from collector.app import create_app

    return create_app(settings_from_environ())


def run(env_name: str = "local", sets: dict | None = None, host: str | None = None, port: int | None = None,
        workers: int | None = None, log_level: str = "info") -> None:
    import uvicorn

    sets = dict(sets or {})
    if host:
        sets["collector.host"] = host
    if port:
        sets["collector.port"] = port
    os.environ[_ENV_VAR], os.environ[_SET_VAR] = env_name, json.dumps(sets)
    if workers:
        os.environ[_WORKERS_VAR] = str(workers)
    settings = settings_from_environ()  # fail here, once, on a bad configuration
    if settings.workers > 1:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="adagg-collector-metrics-"))
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"collector {settings.collector_id}: http://{settings.host}:{settings.port} "
          f"({settings.workers} worker{'s' * (settings.workers > 1)}), raw topic {settings.raw_topic}, "
          f"dead letters {settings.dlq_topic}, {len(settings.keys)} API keys", flush=True)
    uvicorn.run("collector.server:app_from_environ", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, loop="uvloop", http="httptools", access_log=False,
                log_level=log_level, timeout_graceful_shutdown=max(5, settings.delivery_timeout_ms // 1000 + 5))
