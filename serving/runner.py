"""Running SQL on the Pinot broker with bound parameters, over one keep-alive HTTP session.

Parameters are bound here (bind): an integer as digits, a string as one quoted literal with its
quotes doubled, whatever it holds. (pinotdb's apply_parameters, used before, passes the string '*'
through unquoted, and '*' is a valid id.) The broker's JSON answer is read directly rather than through a DB-API cursor, because a cursor hides what
tells a wrong answer from a right one: with the servers of a table down, the broker answers
"no rows" without any error, only `numServersQueried: 0`. That is refused here, not served.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import httpx

from serving.queries import finite_int

log = logging.getLogger("adagg.serving")
_NEWEST = re.compile(r"SELECT MAX\((\w+)\) AS newest FROM \w+")


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def literal(value: int | str) -> str:
    """A value as Pinot SQL: an integer as digits; a string in single quotes, each quote doubled,
    which is the only escape of Pinot's (Calcite's) string literals: a backslash, '|', CHR(31),
    a newline or any other character stands for itself."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"only integers and strings are bound, got {type(value).__name__}")
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def bind(sql: str, params: dict) -> str:
    """The statement with every %(name)s replaced by the literal of params[name], in one pass, so
    that nothing in a value is read as a placeholder or as SQL."""
    return _PLACEHOLDER.sub(lambda m: literal(params[m.group(1)]), sql)


class PinotUnavailable(RuntimeError):
    """The broker did not answer, answered with an error, or no server answered: the API says 503."""


class PinotRunner:
    def __init__(self, broker_url: str, timeout_s: float = 10.0):
        self.url = broker_url.rstrip("/") + "/query/sql"
        self.session = httpx.Client(timeout=timeout_s)

    def __call__(self, sql: str, params: dict) -> list[dict]:
        """Rows as dicts."""
        statement = bind(sql, params) if params else sql
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
    """Keeps the answers of the newest-value statements (`SELECT MAX(...)` over a table: the tier
    boundaries and freshness) so that requests do not wait for them. Over a whole upsert table of
    millions of rows such a statement scans every valid row (~100 ms on 10 M), while a dashboard
    query itself reads a few thousand rows through the indexes; the refresher asks only for rows
    at or after the last answer (see _ask_again).

    With `background` (the API), a daemon thread asks again, every `ttl_s`, each statement a request
    used in the last `keep_s`; only the first request for a statement waits for it. An answer older
    than `max_age_s` (the refresher is behind, or Pinot failed it) is asked inline instead, so no
    answer rests on an old boundary unnoticed. Without `background`, an answer is shared for `ttl_s`.
    Either way, boundaries and freshness in an answer can be up to about ttl_s old."""

    def __init__(self, run, ttl_s: float = 1.0, clock=None, background: bool = False,
                 max_age_s: float | None = None, keep_s: float = 60.0):
        self.run, self.ttl_s, self.clock = run, ttl_s, clock or time.monotonic
        self.max_age_s = max_age_s if max_age_s is not None else (5 * ttl_s if background else ttl_s)
        self.keep_s = keep_s
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[float, float, list[dict]]] = {}  # sql: (asked at, last used, rows)
        self.stopping = threading.Event()
        self.thread = None
        if background:
            self.thread = threading.Thread(target=self._refresh_loop, name="boundary-refresher", daemon=True)
            self.thread.start()

    def __call__(self, sql: str, params: dict) -> list[dict]:
        if params or not sql.startswith("SELECT MAX("):
            return self.run(sql, params)
        now = self.clock()
        with self.lock:
            hit = self.cache.get(sql)
            if hit and now - hit[0] < self.max_age_s:
                self.cache[sql] = (hit[0], now, hit[2])
                return hit[2]
        rows = self.run(sql, params)
        with self.lock:
            self.cache[sql] = (now, now, rows)
        return rows

    def refresh(self) -> None:
        """One round of the refresher: ask again every statement used in the last keep_s; forget the others."""
        with self.lock:
            entries = list(self.cache.items())
        for sql, (_, used, entry_rows) in entries:
            asked = self.clock()
            if asked - used > self.keep_s:
                with self.lock:
                    self.cache.pop(sql, None)
                continue
            try:
                rows = self._ask_again(sql, entry_rows)
            except PinotUnavailable:
                continue  # requests will ask inline once the kept answer is max_age_s old
            with self.lock:
                current = self.cache.get(sql)
                self.cache[sql] = (asked, max(used, current[1]) if current else used, rows)

    def _ask_again(self, sql: str, last: list[dict]) -> list[dict]:
        """A newest-value statement (`SELECT MAX(col) AS newest FROM table`) is asked again for rows
        at or after the last answer only, which the time column's range index finds without a
        scan; if none is there (the table was emptied or recreated), the whole table is asked."""
        shape = _NEWEST.fullmatch(sql)
        previous = finite_int(last[0].get("newest")) if last else None
        if shape and previous is not None:
            rows = self.run(f"{sql} WHERE {shape[1]} >= {previous}", {})
            if rows and finite_int(rows[0].get("newest")) is not None:
                return rows
        return self.run(sql, {})

    def _refresh_loop(self) -> None:
        while not self.stopping.wait(self.ttl_s):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the refresher must outlive any one failure
                log.exception("boundary refresh failed")

    def close(self) -> None:
        self.stopping.set()
