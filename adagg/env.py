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
