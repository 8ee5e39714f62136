"""Running SQL on the Pinot broker with bound parameters, over one keep-alive HTTP session.

Parameters are bound with pinotdb's own escaping (strings quoted, quotes doubled). The broker's
JSON answer is read directly rather than through a DB-API cursor, because a cursor hides what
tells a wrong answer from a right one: with the servers of a table down, the broker answers
"no rows" without any error, only `numServersQueried: 0`. That is refused here, not served.
"""

from __future__ import annotations

import httpx
from pinotdb.db import apply_parameters


class PinotUnavailable(RuntimeError):
    """The broker did not answer, answered with an error, or no server answered: the API says 503."""


class PinotRunner:
    def __init__(self, broker_url: str, timeout_s: float = 10.0):
        self.url = broker_url.rstrip("/") + "/query/sql"
        self.session = httpx.Client(timeout=timeout_s)

    def __call__(self, sql: str, params: dict) -> list[dict]:
        """Rows as dicts."""
        statement = apply_parameters(sql, params) if params else sql
        try:
            response = self.session.post(self.url, json={"sql": statement})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise PinotUnavailable(f"Pinot broker: {str(error)[:300] or type(error).__name__}") from None
        if body.get("exceptions"):
            raise PinotUnavailable(f"Pinot: {body['exceptions'][0].get('message', '')[:300]}")
        queried, responded = body.get("numServersQueried", 0), body.get("numServersResponded", 0)
        if queried == 0 or responded < queried or "resultTable" not in body:
            raise PinotUnavailable(f"Pinot: {responded} of {queried} servers answered; the answer would be incomplete")
        table = body["resultTable"]
        columns = table["dataSchema"]["columnNames"]
        return [dict(zip(columns, row)) for row in table["rows"]]

    def close(self) -> None:
        self.session.close()


class BoundaryCache:
    """Shares the answers of the whole-table statements (newest window and row count per table:
    the tier boundaries and freshness) across requests for `ttl_s`. On an upsert table of
    millions of rows those scan every valid row, while a dashboard query itself reads a few
    thousand through the indexes. Answers therefore show boundaries and freshness up to ttl_s old."""

    def __init__(self, run, ttl_s: float = 1.0, clock=None):
        import threading
        import time

        self.run, self.ttl_s, self.clock = run, ttl_s, clock or time.monotonic
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[float, list[dict]]] = {}

    def __call__(self, sql: str, params: dict) -> list[dict]:
        if params or not sql.startswith("SELECT MAX("):
            return self.run(sql, params)
        now = self.clock()
        with self.lock:
            hit = self.cache.get(sql)
        if hit and now - hit[0] < self.ttl_s:
            return hit[1]
        rows = self.run(sql, params)
        with self.lock:
            self.cache[sql] = (now, rows)
        return rows
