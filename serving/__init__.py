"""Serving: the query API over Pinot for dashboards and reports (docs/serving.md)."""
