"""Faults on the local stack, and how long the pipeline takes to get over each one: the tools of the
fault test (tests/e2e/test_faults.py) and the soak benchmark (benchmarks/soak.py).

Every fault is a real one: a kill -9 of a service's process group, or a stop and start. After
each, the time is taken from the fault to the job running again (when it failed) and to the first
live-tier row computed after the fault being visible in Pinot (the pipeline works end to end).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import asdict, dataclass

import requests

from adagg import flink
from adagg.pinot import PinotError, query
from serving.runner import PinotUnavailable

FRESHNESS_SQL = "SELECT MAX(computed_at_ms) AS newest FROM ad_minute_live"


@dataclass
class Recovery:
    fault: str
    at: float  # when it was applied, epoch s
    job_running_s: float | None  # fault -> the job running again; None if the job never failed
    visible_s: float | None  # fault -> a live row computed after it visible in Pinot; None: not seen in time

    def as_dict(self) -> dict:
        return asdict(self)


class Chaos:
    def __init__(self, stack, env, job_id: str, visible_timeout_s: float = 180):
        self.stack, self.env, self.job_id = stack, env, job_id
        self.rest = env.flink.rest_url
        self.visible_timeout_s = visible_timeout_s
        self.recoveries: list[Recovery] = []
        self._restarting: threading.Thread | None = None
        self._restart_error: Exception | None = None

    # ---- what is running

    def busy_taskmanager(self) -> str:
        """The service name of a TaskManager that runs the job's tasks (one with used slots)."""
        tms = requests.get(f"{self.rest}/taskmanagers", timeout=10).json()["taskmanagers"]
        busy = [tm["id"] for tm in tms if tm["freeSlots"] < tm["slotsNumber"]]
        if not busy:
            raise RuntimeError("no TaskManager runs the job")
        return f"flink-{sorted(busy)[0]}"

    # ---- the faults

    def kill_taskmanager(self) -> Recovery:
        """kill -9 a TaskManager that runs tasks; the job must fail over to the other's free slots.
        The killed one is started again in the background once the job runs (a supervisor's job in
        production); the next TaskManager kill waits for it."""
        self.wait_taskmanagers()
        victim = self.busy_taskmanager()
        at = self._kill(victim)
        running_at = flink.wait_recovered(self.rest, self.job_id, int(at * 1000)) / 1000
        self._restarting = threading.Thread(target=self._restart, args=(victim,), daemon=True)
        self._restarting.start()
        return self._done(f"kill -9 {victim}", at, running_at - at)

    def _restart(self, service: str) -> None:
        try:
            self.stack.up([service], say=lambda *_: None)
        except Exception as e:  # noqa: BLE001 - handed to the next fault, which must not start without it
            self._restart_error = e

    def wait_taskmanagers(self) -> None:
        """Until a killed TaskManager started in the background is back: one stack change at a time.
        A failed restart is raised here."""
        if self._restarting is not None:
            self._restarting.join()
            self._restarting = None
        if self._restart_error is not None:
            error, self._restart_error = self._restart_error, None
            raise RuntimeError(f"restarting a killed TaskManager failed: {error}") from error

    def kill_kafka(self, down_s: float = 5) -> Recovery:
        """kill -9 the broker, leave it down for down_s, start it again."""
        self.wait_taskmanagers()
        at = self._kill("kafka")
        time.sleep(down_s)
        self.stack.up(["kafka"], say=lambda *_: None)
        return self._done("kill -9 kafka", at, self._running_again(at))

    def restart_pinot_server(self) -> Recovery:
        self.wait_taskmanagers()
        at = time.time()
        self.stack.down(["pinot-server"], say=lambda *_: None)
        self.stack.up(["pinot-server"], say=lambda *_: None)
        return self._done("restart pinot-server", at, None)

    def kill_collector(self) -> Recovery:
        """kill -9 the collector (the senders resend what it did not answer) and start it again."""
        self.wait_taskmanagers()
        at = self._kill("collector")
        self.stack.up(["collector"], say=lambda *_: None)
        return self._done("kill -9 collector", at, None)

    # ---- helpers

    def _kill(self, service: str) -> float:
        pid = self.stack.pid(service)
        if pid is None:
            raise RuntimeError(f"{service} is not running; processes of this stack: {self.stack.processes()}")
        at = time.time()
        os.killpg(pid, signal.SIGKILL)
        return at

    def _running_again(self, at: float) -> float | None:
        """If the job failed after `at`, seconds until it ran again; None if it did not fail."""
        detail = flink.job_detail(self.rest, self.job_id)
        if detail["timestamps"].get("RESTARTING", 0) < at * 1000:
            return None
        return flink.wait_recovered(self.rest, self.job_id, int(at * 1000)) / 1000 - at

    def _done(self, fault: str, at: float, running_s: float | None) -> Recovery:
        recovery = Recovery(fault, at, None if running_s is None else round(running_s, 1), self._visible_after(at))
        self.recoveries.append(recovery)
        return recovery

    def _visible_after(self, at: float) -> float | None:
        """Seconds from `at` until Pinot shows a live row computed after it."""
        deadline = time.time() + self.visible_timeout_s
        while time.time() < deadline:
            try:
                rows = query(self.env, FRESHNESS_SQL)
                if rows and rows[0]["newest"] and int(rows[0]["newest"]) > at * 1000:
                    return round(time.time() - at, 1)
            except (PinotError, PinotUnavailable, requests.RequestException):
                pass
            time.sleep(0.5)
        return None
