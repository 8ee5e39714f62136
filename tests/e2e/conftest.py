import pytest

from tests.conftest import fresh_stack


@pytest.fixture(scope="module")
def stack(stack_lock):
    """The whole local stack, started fresh; stopped by the module's last test (which checks it)."""
    stack = fresh_stack()
    yield stack
    stack.down()
