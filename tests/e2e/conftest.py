"""The e2e tier's stacks. A module that kills, stops or upgrades things (test_faults.py,
test_restarts.py) gets a fresh stack of its own. test_full_stack.py and test_full_stack_superset.py
share one (pytest runs them one after the other: files in name order): every run of theirs takes
a time range of its own (adagg.demo.next_start_ms) and is compared from its start on, so the
second needs no stack, job or tables of its own."""

import pytest

from adagg import flink
from adagg.env import load
from adagg.kafka_io import ensure_topics
from adagg.pinot import apply
from tests.conftest import fresh_stack


@pytest.fixture(scope="module")
def stack(stack_lock):
    """The whole local stack, started fresh; stopped after the module's last test."""
    stack = fresh_stack()
    yield stack
    stack.down()


@pytest.fixture(scope="session")
def shared_stack(stack_lock):
    """The whole local stack, started fresh once for the modules that share it (above). Any
    module with its own `stack` fixture stops it; the last sharing module checks `stack down`."""
    stack = fresh_stack()
    yield stack
    stack.down()


@pytest.fixture(scope="module")
def job(stack):
    """The streaming job on the module's stack: the one running (a shared stack's, whose topics
    and Pinot tables the module that started it made: its tests may have changed them since), or
    one submitted with its topics and tables."""
    env = load("local")
    running = flink.running_jobs(env)
    if running:
        job_id = running[0]["jid"]
    else:
        ensure_topics(env, say=lambda *_: None)
        apply(env, say=lambda *_: None)
        job_id = flink.submit("local", say=lambda *_: None)
    flink.wait_running(env.flink.rest_url, job_id)
    return job_id
