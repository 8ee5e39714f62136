"""Contract validation at collector speed, with no Kafka and no HTTP in sight.

The contract stays the JSON Schemas under contracts/ad_event/ (adagg.contract validates with
jsonschema, the reference). jsonschema takes ~340 µs per event here, so the collector compiles
the same schemas into msgspec types (~3 µs to decode and validate). The compiler understands
exactly the keywords the contract uses and refuses any other, and a hypothesis test
(tests/unit/test_collector_validation.py) holds the two validators to the same verdicts.

Deliberately stricter than plain JSON Schema: an integer must be a JSON integer (1.0 is refused,
since the Flink source parses BIGINT) and fit in 64 bits.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union

import msgspec

from adagg import contract

# Filled in by the collector when an event lacks them, so optional on the wire.
COLLECTOR_FILLED = ("event_id", "ip", "user_agent")
_INT64_MAX = 2**63 - 1
_KNOWN_KEYWORDS = {"type", "minLength", "maxLength", "minimum", "maximum", "const", "enum", "anyOf", "format",
                   "description"}


class ContractCompileError(ValueError):
    """The contract uses a JSON Schema keyword the fast validator does not implement."""


def _field_type(name: str, spec: dict) -> tuple[Any, str | None]:
    """A msgspec annotation for one property, and the IP format to check afterwards (if any)."""
    unknown = set(spec) - _KNOWN_KEYWORDS
    if unknown:
        raise ContractCompileError(f"property {name!r}: unsupported keywords {sorted(unknown)}")
    if "enum" in spec:
        return Literal[tuple(spec["enum"])], None
    if "const" in spec:
        return Literal[spec["const"]], None
    if spec.get("type") == "integer":
        meta = msgspec.Meta(ge=spec.get("minimum"), le=spec.get("maximum", _INT64_MAX))
        return Annotated[int, meta], None
    if spec.get("type") == "string":
        meta = msgspec.Meta(min_length=spec.get("minLength"), max_length=spec.get("maxLength"))
        ip = None
        if "anyOf" in spec:
            formats = {branch.get("format") for branch in spec["anyOf"]}
            if formats != {"ipv4", "ipv6"} or any(set(b) != {"format"} for b in spec["anyOf"]):
                raise ContractCompileError(f"property {name!r}: only anyOf ipv4/ipv6 formats are supported")
            ip = "ip"
        elif "format" in spec:
            raise ContractCompileError(f"property {name!r}: unsupported format {spec['format']!r}")
        return Annotated[str, meta], ip
    raise ContractCompileError(f"property {name!r}: unsupported type {spec.get('type')!r}")


@dataclass(frozen=True)
class _Compiled:
    union: Any                 # Union of one tagged Struct per version
    decoder: msgspec.json.Decoder
    ip_fields: tuple[str, ...]


@cache
def compiled() -> _Compiled:
    structs, ip_fields = [], set()
    for version in contract.versions():
        schema = contract.schema(version)
        if schema.get("additionalProperties") is not False or schema.get("type") != "object":
            raise ContractCompileError(f"v{version}: the contract must be a closed object")
        if schema["properties"]["schema_version"] != {"const": version}:
            raise ContractCompileError(f"v{version}: schema_version must be const {version}")
        required = set(schema["required"]) - set(COLLECTOR_FILLED)
        fields = []
        for name, spec in schema["properties"].items():
            if name == "schema_version":
                continue  # the tag of the union
            annotation, ip = _field_type(name, spec)
            if ip:
                ip_fields.add(name)
            if name in required:
                fields.append((name, annotation))
            else:
                fields.append((name, Union[annotation, msgspec.UnsetType], msgspec.UNSET))
        fields.sort(key=lambda f: len(f) == 3)  # msgspec: fields with defaults come last
        structs.append(msgspec.defstruct(f"AdEventV{version}", fields, tag_field="schema_version", tag=version,
                                         forbid_unknown_fields=True, omit_defaults=True))
    union = Union[tuple(structs)]
    return _Compiled(union, msgspec.json.Decoder(union), tuple(sorted(ip_fields)))


@dataclass(frozen=True)
class Rejection:
    reason: str   # a stable code (REASONS)
    message: str  # for people


REASONS = {
    "malformed_json": "the body or event is not valid JSON",
    "invalid_utf8": "the body is not UTF-8",
    "not_an_object": "an event must be a JSON object",
    "unknown_schema_version": "schema_version is missing or not a known contract version",
    "missing_field": "a required field is missing",
    "unknown_field": "a field the event's contract version does not have",
    "wrong_type": "a field has the wrong JSON type",
    "bad_length": "a string is empty or longer than its limit",
    "out_of_range": "a number is outside its allowed range",
    "bad_value": "a value outside the allowed set",
    "bad_ip": "ip is not an IPv4 or IPv6 address",
    "timestamp_out_of_range": "event_time is too far in the past or the future",
    "event_type_not_allowed": "the API key may not send this event type",
    "invalid_event": "any other contract violation",
}

_PATTERNS = [
    (re.compile(r"^Expected `object`"), "not_an_object"),
    (re.compile(r"^Object missing required field `schema_version`"), "unknown_schema_version"),
    (re.compile(r"at `\$\.schema_version`"), "unknown_schema_version"),
    (re.compile(r"^Object missing required field"), "missing_field"),
    (re.compile(r"^Object contains unknown field"), "unknown_field"),
    (re.compile(r"^Expected `\w+` of length"), "bad_length"),
    (re.compile(r"^Expected `\w+` [<>]=?"), "out_of_range"),
    (re.compile(r"^Expected `\w+`, got"), "wrong_type"),
    (re.compile(r"^Invalid enum value"), "bad_value"),
    (re.compile(r"^Invalid value"), "bad_value"),
]


_AT = re.compile(r"^(?P<message>.*) - at `\$\.?(?P<path>.*)`$")
_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<path>.*)`$")


def _rejection(error: msgspec.ValidationError | msgspec.DecodeError) -> Rejection:
    """A reason code from msgspec's message, and the message as 'field: what is wrong'."""
    text = str(error)
    if isinstance(error, msgspec.DecodeError) and not isinstance(error, msgspec.ValidationError):
        return Rejection("malformed_json", f"malformed JSON: {text}")
    reason = next((reason for pattern, reason in _PATTERNS if pattern.search(text)), "invalid_event")
    if m := _AT.match(text):
        text = f"{m['path'] or 'event'}: {m['message'][0].lower()}{m['message'][1:]}"
    elif m := _FIELD.match(text):
        text = f"{m['path']}: {'required field is missing' if 'missing' in text else 'unknown field'}"
    else:
        text = f"event: {text[0].lower()}{text[1:]}"
    if reason == "unknown_schema_version":
        text = f"{text}; known versions: {contract.versions()}"
    return Rejection(reason, text)


def _valid_ip(text: str) -> bool:
    """The verdict of jsonschema's ipv4/ipv6 format checkers (Python's ipaddress), 20x faster:
    inet_pton takes the same strict forms (dotted quad without leading zeros; RFC 4291 IPv6
    without a scope). The differential test in tests/unit holds the two to the same answers."""
    try:
        socket.inet_pton(socket.AF_INET, text)
        return True
    except (OSError, ValueError):
        pass
    try:
        socket.inet_pton(socket.AF_INET6, text)
        return True
    except (OSError, ValueError):
        return False


def decode(raw: bytes) -> Any:
    """One wire event (JSON bytes) as a contract struct, or a Rejection. Fields the collector
    fills in (COLLECTOR_FILLED) may be UNSET; finish() fills and checks them."""
    try:
        return compiled().decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        return _rejection(error)


def convert(obj: Any, strict: bool = True) -> Any:
    """Like decode() for an already parsed object; strict=False converts strings (query params)."""
    try:
        return msgspec.convert(obj, compiled().union, strict=strict)
    except msgspec.ValidationError as error:
        return _rejection(error)


def check_time(event: Any, now_ms: int, max_past_ms: int, max_future_ms: int) -> Rejection | None:
    if event.event_time < now_ms - max_past_ms or event.event_time > now_ms + max_future_ms:
        return Rejection("timestamp_out_of_range",
                         f"event_time {event.event_time} is outside [now - {max_past_ms // 1000} s, "
                         f"now + {max_future_ms // 1000} s] (now = {now_ms})")
    return None


def check_ips(event: Any) -> Rejection | None:
    for name in compiled().ip_fields:
        value = getattr(event, name)
        if value is not msgspec.UNSET and not _valid_ip(value):
            return Rejection("bad_ip", f"{name}: {value[:64]!r} is not an IPv4 or IPv6 address")
    return None


encode = msgspec.json.Encoder().encode
