"""Prometheus metrics of ingest (the default registry: served by ``/metrics``
of the API when both run in one process, or on ``ingest.metrics_port``)."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("parkbazaar_ingest_messages_total", "MQTT messages processed and acknowledged")
EVENTS = Counter("parkbazaar_ingest_events_total", "Occupancy events by outcome", ["outcome"])
DEAD_LETTERS = Counter("parkbazaar_ingest_dead_letters_total", "Messages dead-lettered",
                       ["reason"])
BATCH_SECONDS = Histogram("parkbazaar_ingest_batch_seconds", "Plan + write + commit of a batch",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
DB_RETRIES = Counter("parkbazaar_ingest_db_retries_total", "Database writes retried")
SPLIT_BATCHES = Counter("parkbazaar_ingest_split_batches_total",
                        "Batches rewritten message by message after a data error")
RECONNECTS = Counter("parkbazaar_ingest_mqtt_reconnects_total", "MQTT reconnections")
QUEUE_DEPTH = Gauge("parkbazaar_ingest_queue_depth", "Messages received, not yet processed")
REGISTRY_RELOADS = Counter("parkbazaar_ingest_registry_reloads_total", "Registry reloads")
