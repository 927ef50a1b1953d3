-- The time series on TimescaleDB: a hypertable with daily chunks, compressed
-- after a week; the partition functions exist too (as no-ops or as wrappers
-- over chunk management), so ingest and maintenance call the same names.

CREATE TABLE occupancy_events (
    observed_at  timestamptz NOT NULL,
    gateway_id   int NOT NULL,
    seq          bigint NOT NULL,
    space_id     int NOT NULL,
    state        text NOT NULL,
    source       text NOT NULL,
    kind         text NOT NULL DEFAULT 'change',
    confidence   real,
    device       text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, seq, observed_at)
);
SELECT create_hypertable('occupancy_events', 'observed_at', chunk_time_interval => interval '1 day');
CREATE INDEX ON occupancy_events (space_id, observed_at DESC);

-- Compressed per space (the history queries read one space's newest events
-- before an instant). The key columns are in the order too: a resent event
-- that lands in a compressed chunk is checked by ON CONFLICT DO NOTHING
-- against few batches (TimescaleDB warns when a key column is in neither).
ALTER TABLE occupancy_events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'space_id',
    timescaledb.compress_orderby = 'observed_at DESC, gateway_id, seq'
);
SELECT add_compression_policy('occupancy_events', compress_after => interval '7 days');

-- Chunks are made on insert: nothing to create ahead.
CREATE FUNCTION ensure_event_partitions(from_day date, to_day date) RETURNS int
LANGUAGE sql AS $$ SELECT 0 $$;

CREATE FUNCTION drop_event_partitions(older_than timestamptz) RETURNS int
LANGUAGE sql AS $$ SELECT count(*)::int FROM drop_chunks('occupancy_events', older_than) $$;
