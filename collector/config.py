"""Collector settings, read from the `collector` section of an environment file (infra/env/)."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from dataclasses import dataclass, field

from adagg import env as envs
from adagg.contract import EVENT_TYPES


class ConfigError(ValueError):
    """A setting a user must fix; the CLI prints it as one line."""


def hash_key(plaintext: str) -> str:
    """API keys are stored as SHA-256 hex digests. Keys are 32 random bytes (new_key()), so a fast
    hash is enough: there is nothing to brute-force, unlike a password."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def new_key(prefix: str = "adagg") -> tuple[str, str]:
    """A fresh API key and the digest to put in the environment file."""
    plaintext = f"{prefix}_{secrets.token_urlsafe(32)}"
    return plaintext, hash_key(plaintext)


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    event_types: frozenset[str]
    rate_per_second: float   # events per second, per collector process
    burst: int               # events a full bucket holds
    pixel_secret: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    collector_id: str
    host: str
    port: int
    workers: int
    max_body_bytes: int
    max_events_per_request: int
    max_past_ms: int
    max_future_ms: int
    buffer_events: int
    delivery_timeout_ms: int
    linger_ms: int
    retry_after_s: int
    trust_forwarded_for: bool
    pixel_max_age_s: int
    raw_topic: str
    dlq_topic: str
    heartbeat_interval_ms: int   # 0: no heartbeats (collector/heartbeat.py)
    bucket_ms: dict[str, int]
    kafka: dict[str, str] = field(repr=False)
    keys: dict[str, ApiKey] = field(repr=False)   # by sha256

    def key_named(self, name: str) -> ApiKey | None:
        return next((k for k in self.keys.values() if k.name == name), None)


def _secret(spec, what: str) -> str | None:
    """A secret given literally (local only) or named by environment variable (`*_env`)."""
    if spec.get(f"{what}_env"):
        name = spec[f"{what}_env"]
        if name not in os.environ:
            raise ConfigError(f"environment variable {name} ({what}) is not set")
        return os.environ[name]
    return spec.get(what)


def kafka_client_config(env) -> dict[str, str]:
    """librdkafka settings for the environment's brokers (security included)."""
    kafka = env.kafka
    conf = {"bootstrap.servers": kafka.bootstrap_servers, "security.protocol": kafka.security_protocol}
    if kafka.security_protocol.startswith("SASL_"):
        conf |= {"sasl.mechanism": kafka.sasl.mechanism,
                 "sasl.username": _secret(kafka.sasl, "username"),
                 "sasl.password": _secret(kafka.sasl, "password")}
    if kafka.security_protocol.endswith("SSL") and kafka.get("ssl", {}).get("ca_location"):
        conf["ssl.ca.location"] = kafka.ssl.ca_location
    return conf


def _key(spec, per_process: int) -> ApiKey:
    types = frozenset(spec.get("event_types", EVENT_TYPES))
    if not types <= set(EVENT_TYPES) or len(spec.get("sha256", "")) != 64:
        raise ConfigError(f"collector key {spec.get('name')!r}: needs a 64-hex sha256 and event types from "
                          f"{EVENT_TYPES}")
    secret = _secret(spec, "pixel_secret")
    return ApiKey(name=spec["name"], sha256=spec["sha256"].lower(), event_types=types,
                  rate_per_second=float(spec["rate_per_second"]) / per_process,
                  burst=max(1, int(spec["burst"]) // per_process),
                  pixel_secret=secret.encode() if secret else None)


def load_settings(env, workers: int | None = None, host: str | None = None, port: int | None = None) -> Settings:
    c = env.collector
    workers = workers or c.workers
    keys = [_key(spec, workers) for spec in c.api_keys]
    if len({k.name for k in keys}) != len(keys):
        raise ConfigError("collector keys must have distinct names")
    port = port or c.port
    return Settings(
        collector_id=c.get("id") or f"{socket.gethostname()}:{port}",
        host=host or c.host, port=port, workers=workers,
        max_body_bytes=c.max_body_bytes, max_events_per_request=c.max_events_per_request,
        max_past_ms=c.event_time_max_past_seconds * 1000, max_future_ms=c.event_time_max_future_seconds * 1000,
        buffer_events=c.buffer_events, delivery_timeout_ms=c.delivery_timeout_ms, linger_ms=c.linger_ms,
        retry_after_s=c.retry_after_seconds, trust_forwarded_for=c.trust_forwarded_for,
        pixel_max_age_s=c.pixel_max_age_seconds,
        raw_topic=env.topics.raw.name, dlq_topic=env.topics.dlq.name,
        heartbeat_interval_ms=c.heartbeat_interval_ms,
        bucket_ms=envs.bucket_ms(env),
        kafka=kafka_client_config(env), keys={k.sha256: k for k in keys})
