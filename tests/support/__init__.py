"""What the tests share: paths, helpers, and real peers (Kafka, a schema registry, a webhook receiver)."""
