"""Prometheus metrics of ingest (the default registry: served by ``/metrics``
of the API when both run in one process, or on ``ingest.metrics_port``)."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("parkbazaar_ingest_messages_total", "MQTT messages processed and acknowledged")
EVENTS = Counter("parkbazaar_ingest_events_total", "Occupancy events by outcome", ["outcome"])
DEAD_LETTERS = Counter("parkbazaar_ingest_dead_letters_total", "Messages dead-lettered",
                       ["reason"])
DEAD_LETTERS_CAPPED = Counter("parkbazaar_ingest_dead_letters_capped_total",
                              "Dead letters acknowledged but not stored (per-gateway rate cap)",
                              ["reason"])
BATCH_SECONDS = Histogram("parkbazaar_ingest_batch_seconds", "Plan + write + commit of a batch",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
DB_RETRIES = Counter("parkbazaar_ingest_db_retries_total", "Database writes retried")
SPLIT_BATCHES = Counter("parkbazaar_ingest_split_batches_total",
                        "Batches rewritten message by message after a data error")
RECONNECTS = Counter("parkbazaar_ingest_mqtt_reconnects_total", "MQTT reconnections")
BACKLOG_PAUSES = Counter("parkbazaar_ingest_backlog_pauses_total",
                         "Times reading paused: received, unacknowledged messages or bytes at the bound")
MQTT_RETRIES = Counter("parkbazaar_ingest_mqtt_retries_total",
                       "MQTT connection attempts retried (refused, unreachable, or lost)")
QUEUE_DEPTH = Gauge("parkbazaar_ingest_queue_depth", "Messages received, not yet processed")
REGISTRY_RELOADS = Counter("parkbazaar_ingest_registry_reloads_total", "Registry reloads")
EVENTS_RECEIVED = Counter("parkbazaar_ingest_events_received_total",
                          "Events in messages received (before validation and de-duplication)")
BATCH_MESSAGES = Histogram("parkbazaar_ingest_batch_messages", "Messages in a batch",
                           buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000))
COMMIT_SECONDS = Histogram("parkbazaar_ingest_commit_seconds", "Write and commit of a batch",
                           buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
LAST_COMMIT = Gauge("parkbazaar_ingest_last_commit_timestamp_seconds", "Unix time of the last commit")
MAINTENANCE = Counter("parkbazaar_ingest_maintenance_total", "Maintenance runs", ["outcome"])
FORECAST_REFITS = Counter("parkbazaar_ingest_forecast_refits_total",
                          "Site forecast models refitted by maintenance, by outcome (ok, failed)",
                          ["outcome"])
FORECAST_REFIT_SECONDS = Histogram("parkbazaar_ingest_forecast_refit_seconds",
                                   "Fitting the forecast models of one tenant (CPU in a worker thread)",
                                   buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
FORECAST_RUN_SECONDS = Histogram("parkbazaar_ingest_forecast_run_seconds",
                                 "A maintenance run of the forecasts: counts and refits",
                                 buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
FORECAST_DUE = Gauge("parkbazaar_ingest_forecast_due_sites",
                     "Sites due for a refit that the last run left for the next (its time budget ran out)")
FORECAST_COUNT_ROWS = Counter("parkbazaar_ingest_forecast_count_rows_total",
                              "Rows written to site_counts_5m (5-minute site counts the forecasts use)")
