"""The local environment's API keys and pixel secret, in plaintext on purpose: they exist only in
infra/env/local.yaml (as digests) and guard nothing but a developer's own loopback stack. The demo,
tests and benchmarks send with them. Real environments name their keys by digest only."""

SDK = "adagg-local-sdk-key"        # local-sdk: every event type, no practical rate limit
S2S = "adagg-local-s2s-key"        # local-s2s: conversions only
SLOW = "adagg-local-slow-key"      # local-slow: 5 events/s, burst 10 (rate-limit tests)
PIXEL_SECRET = b"adagg-local-pixel-secret"   # local-sdk's pixel signing secret
