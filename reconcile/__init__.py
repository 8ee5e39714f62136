"""Reconciliation and billing: the serving tables against a batch recomputation from the raw archive."""
