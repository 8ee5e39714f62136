"""`adagg serve`: the query API under uvicorn."""

from __future__ import annotations

import logging

from adagg.env import load


def run(env_name: str = "local", host: str = "127.0.0.1", port: int | None = None, log_level: str = "info") -> None:
    import uvicorn

    from serving.api import create_app
    from serving.lineage import sources_of

    env = load(env_name)
    port = port or env.serving.port
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"query API on http://{host}:{port} (OpenAPI: /openapi.json, docs: /docs), Pinot broker "
          f"{env.pinot.broker_url}", flush=True)
    uvicorn.run(create_app(broker_url=env.pinot.broker_url, sources=sources_of(env)), host=host, port=port, log_level=log_level,
                access_log=False)
