"""A small client for the collector's batch endpoint: what the demo, tests and benchmarks send with."""

from __future__ import annotations

import time

import httpx


class CollectorError(RuntimeError):
    pass


def wait_ready(base_url: str, timeout_s: float = 60.0) -> None:
    """Until the collector's /readyz says Kafka is ready; raises CollectorError with its reason."""
    deadline, last = time.monotonic() + timeout_s, "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = f"kafka {response.json().get('kafka')}"
        except httpx.HTTPError as error:
            last = str(error) or type(error).__name__
        time.sleep(0.5)
    raise CollectorError(f"the collector at {base_url} is not ready after {timeout_s:.0f} s ({last})")


def collector_url(env) -> str:
    """The local stack's collector."""
    return f"http://{env.stack.host}:{env.collector.port}"


class CollectorClient:
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 60.0, retry_for_s: float = 120.0):
        self.http = httpx.Client(base_url=base_url, timeout=timeout_s,
                                 headers={"Authorization": f"Bearer {api_key}"})
        self.retry_for_s = retry_for_s

    def post(self, values: list[bytes], path: str = "/v1/events") -> httpx.Response:
        return self.http.post(path, content=b"\n".join(values), headers={"Content-Type": "application/x-ndjson"})

    def send(self, values: list[bytes], batch_size: int = 1000) -> int:
        """Send JSON events in order, batch after batch; events answered 'retry' (503) or refused
        whole (429/503) are sent again after Retry-After, up to retry_for_s. Returns the accepted
        number of accepted events; raises if the collector rejects any event."""
        accepted = 0
        for start in range(0, len(values), batch_size):
            pending = values[start:start + batch_size]
            deadline = time.monotonic() + self.retry_for_s
            while pending:
                response = self.post(pending)
                if response.status_code in (429, 503) and "results" not in response.json():
                    retry = pending
                elif response.status_code in (200, 503):
                    results = response.json()["results"]
                    rejected = [(i, r) for i, r in enumerate(results) if r["status"] == "rejected"]
                    if rejected:
                        i, r = rejected[0]
                        raise CollectorError(f"{len(rejected)} events rejected, e.g. {r['reason']}: {r['message']} "
                                             f"({pending[i][:200]!r})")
                    accepted += sum(r["status"] == "accepted" for r in results)
                    retry = [v for v, r in zip(pending, results) if r["status"] == "retry"]
                else:
                    raise CollectorError(f"collector answered {response.status_code}: {response.text[:500]}")
                if retry and time.monotonic() > deadline:
                    raise CollectorError(f"{len(retry)} events still not accepted after {self.retry_for_s:.0f} s")
                if retry:
                    time.sleep(float(response.headers.get("retry-after", "1")))
                pending = retry
        return accepted

    def close(self) -> None:
        self.http.close()
