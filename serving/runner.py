"""Running SQL on the Pinot broker with bound parameters, over one keep-alive HTTP session."""

from __future__ import annotations

import httpx
from pinotdb import connect
from pinotdb import exceptions as pinot_errors


class PinotUnavailable(RuntimeError):
    """The broker did not answer, or answered with an error: the API says 503."""


class PinotRunner:
    def __init__(self, broker_url: str, timeout_s: float = 10.0):
        scheme, _, address = broker_url.rstrip("/").partition("://")
        host, _, port = address.partition(":")
        self.session = httpx.Client(timeout=timeout_s)
        self.connection = connect(host=host, port=int(port or 8099), path="/query/sql", scheme=scheme or "http",
                                  session=self.session)

    def __call__(self, sql: str, params: dict) -> list[dict]:
        """Rows as dicts. Values are bound by pinotdb (strings quoted and escaped)."""
        try:
            cursor = self.connection.cursor()
            cursor.execute(sql, params)
            columns = [d[0] for d in cursor.description or []]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]
        except (pinot_errors.Error, httpx.HTTPError) as error:
            raise PinotUnavailable(f"Pinot query failed: {str(error)[:300]}") from None

    def close(self) -> None:
        self.session.close()
