"""adagg: exact ad click event aggregation on Kafka, Flink SQL and Pinot."""

__version__ = "0.1.0"
