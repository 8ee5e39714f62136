"""The immutable raw archive: partition layout, manifests (seal) and their check (verify)."""
