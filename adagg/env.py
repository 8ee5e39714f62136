"""Environment files (infra/env/<name>.yaml): the one place environment values live."""

from __future__ import annotations

from typing import Any

import yaml

from adagg.paths import ENV_DIR


class EnvError(ValueError):
    pass


class Namespace(dict):
    """A dict whose keys also read as attributes, so templates can say env.kafka.bootstrap_servers."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Namespace({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def names() -> list[str]:
    return sorted(p.stem for p in ENV_DIR.glob("*.yaml"))


def load(name: str) -> Namespace:
    path = ENV_DIR / f"{name}.yaml"
    if not path.exists():
        raise EnvError(f"unknown environment {name!r}; known: {', '.join(names())}")
    env = _wrap(yaml.safe_load(path.read_text()))
    if env.get("name") != name:
        raise EnvError(f"{path}: 'name' must be {name!r}")
    return env


def override(env: Namespace, changes: dict[str, Any]) -> Namespace:
    """A copy of env with dotted keys replaced, e.g. {"topics.raw.name": "x"}; keys must exist."""
    import copy

    out = copy.deepcopy(env)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = out
        for key in parents:
            node = node[key]
        if leaf not in node:
            raise EnvError(f"override of unknown key {dotted!r}")
        node[leaf] = _wrap(value)
    return out


def late_delay_ms(env: Namespace) -> int:
    """How far behind its newest event time a watermark trails: bound plus allowed lateness."""
    return (env.flink.watermark_bound_seconds + env.flink.allowed_lateness_seconds) * 1000


def bucket_ms(env: Namespace) -> dict[str, int]:
    """The billing buckets per event type, in milliseconds."""
    return {t: s * 1000 for t, s in env.billing.bucket_seconds.items()}
