import pytest

from adagg import flink
from adagg.env import load
from adagg.kafka_io import ensure_topics
from adagg.pinot import apply
from tests.conftest import fresh_stack


@pytest.fixture(scope="module")
def stack(stack_lock):
    """The whole local stack, started fresh; stopped by the module's last test (which checks it)."""
    stack = fresh_stack()
    yield stack
    stack.down()


@pytest.fixture(scope="module")
def job(stack):
    """The streaming job, submitted to the module's stack with its topics and Pinot tables."""
    env = load("local")
    ensure_topics(env, say=lambda *_: None)
    apply(env, say=lambda *_: None)
    job_id = flink.submit("local", say=lambda *_: None)
    flink.wait_running(env.flink.rest_url, job_id)
    return job_id
