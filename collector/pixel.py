"""Signed impression pixel URLs: an ad server signs the URL it renders, the collector checks it.

The query holds contract fields by name (event_type is always impression and event_time is when
the pixel loads), plus `key` (the signing key's name), `exp` (expiry, epoch seconds) and `sig`:
hex HMAC-SHA256, with the key's pixel secret, of the other parameters sorted by name and
URL-encoded. Editing any parameter breaks the signature; `event_id` is required, so replaying a
URL can only repeat an event the pipeline's exact dedup drops.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

RESERVED = ("key", "exp", "sig")
REQUIRED = ("event_id", "key", "exp", "sig")


def canonical(params: dict[str, str]) -> bytes:
    return "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}"
                    for k, v in sorted(params.items()) if k != "sig").encode()


def signature(params: dict[str, str], secret: bytes) -> str:
    return hmac.new(secret, canonical(params), hashlib.sha256).hexdigest()


def signed_url(base_url: str, event: dict, key_name: str, secret: bytes, ttl_s: int = 3600,
               now_s: float | None = None) -> str:
    """The pixel URL for one impression (what an ad server puts in its markup)."""
    params = {k: str(v) for k, v in event.items() if k not in ("event_type", "event_time")}
    params |= {"key": key_name, "exp": str(int((now_s or time.time()) + ttl_s))}
    params["sig"] = signature(params, secret)
    return f"{base_url}?{urlencode(params)}"


def verify(params: dict[str, str], secret: bytes, now_s: float, max_age_s: int) -> str | None:
    """None when the signature is good and current, else why not."""
    expected = signature(params, secret)
    if not hmac.compare_digest(expected, params.get("sig", "")):
        return "bad_signature"
    try:
        exp = int(params["exp"])
    except ValueError:
        return "bad_signature"
    if exp < now_s:
        return "expired_signature"
    if exp > now_s + max_age_s:
        return "bad_signature"  # a URL valid for longer than the collector allows
    return None


def event_fields(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in RESERVED}
