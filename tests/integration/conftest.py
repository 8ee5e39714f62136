import pytest

from tests.conftest import fresh_stack


@pytest.fixture(scope="session")
def kafka(stack_lock):
    """A fresh Kafka broker (only) for jobs run on the Flink mini-cluster."""
    stack = fresh_stack(["kafka"])
    yield stack
    stack.down()
