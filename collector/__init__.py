"""The collector: the HTTP front door and the only writer of the raw topic (docs/collector.md)."""
