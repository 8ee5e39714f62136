"""Kafka record keys of the output topics, byte for byte as Flink's JSON format writes them.

A Flink sink with `'key.format' = 'json'` keys each record by a JSON object of its key fields, in
their order, written by Jackson. Kafka's default partitioner picks the partition from those bytes,
and Pinot's upsert only replaces a row within one partition. So a record another producer writes
for the same key (a reconciliation correction) must carry the very same bytes, or on a topic of
several partitions it lands elsewhere and both rows stay valid. Python's json module differs from
Jackson on the ids it escapes: it writes control characters as \\u001f where Jackson writes
\\u001F, and keeps an astral character as it is (or as lowercase surrogates), where Jackson writes
uppercase surrogate escapes (\\uD83D\\uDE80). Every other character is the same: quote, backslash
and \\b \\t \\n \\f \\r escaped, the rest as UTF-8.
tests/unit/test_record_keys.py holds this to bytes Flink 2.2 wrote, and the integration tier
(tests/integration/test_views.py) to what Flink writes on the mini-cluster.
"""

from __future__ import annotations

from collections.abc import Mapping

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(value: str) -> str:
    out = []
    for ch in value:
        code = ord(ch)
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif code < 0x20:
            out.append(f"\\u{code:04X}")
        elif code > 0xFFFF:  # as Jackson writes it: the UTF-16 surrogate pair, escaped
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: int | str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"a record key holds integers and strings, got {type(value).__name__}")
    return str(value) if isinstance(value, int) else _string(value)


def flink_json_key(fields: Mapping[str, int | str]) -> bytes:
    """The key Flink's JSON key format writes for these key fields (in the sink's key order)."""
    return ("{" + ",".join(f"{_string(name)}:{_value(value)}" for name, value in fields.items()) + "}").encode()
