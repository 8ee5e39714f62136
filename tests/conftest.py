"""Test tiers by folder: unit (no JVM), integration (Kafka + Flink mini-cluster), e2e (whole stack).

Tiers that start services take a machine-wide lock, since the stack's ports are fixed.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e")
LOCK_FILE = Path("/tmp/adagg-stack.lock")


def pytest_collection_modifyitems(items):
    for item in items:
        for tier in TIERS:
            if f"/tests/{tier}/" in str(item.fspath):
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def stack_lock():
    """Held while a tier uses the fixed-port local stack; a second run waits instead of colliding."""
    with open(LOCK_FILE, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
        fcntl.flock(fh, fcntl.LOCK_UN)


def fresh_stack(only: list[str] | None = None):
    """Stop anything this checkout runs, wipe its service data (and the raw archive), and start
    `only` (or everything)."""
    from adagg.setup import fetch
    from adagg.stack import start_fresh

    fetch()
    return start_fresh(only)
