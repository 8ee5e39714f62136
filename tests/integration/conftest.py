import pytest

from adagg.env import load, override
from tests.conftest import fresh_stack


@pytest.fixture(scope="session")
def kafka(stack_lock):
    """A fresh Kafka broker (only) for jobs run on the Flink mini-cluster."""
    stack = fresh_stack(["kafka"])
    yield stack
    stack.down()


def isolated_env(run: str, **changes):
    """The local environment with this run's own topics, consumer group and transactional ids."""
    env = load("local")
    renamed = {f"topics.{key}.name": f"{topic.name}.{run}" for key, topic in env.topics.items()}
    renamed["outputs.prefix"] = f"{env.outputs.prefix}{run}."
    renamed["flink.consumer_group"] = f"{env.flink.consumer_group}-{run}"
    renamed["flink.transactional_id_prefix"] = f"{env.flink.transactional_id_prefix}-{run}"
    renamed["archive.path"] = f"it-archive/{run}"  # under ADAGG_HOME
    return override(env, {**renamed, **changes})
