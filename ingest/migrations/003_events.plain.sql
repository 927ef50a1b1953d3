-- The time series on plain PostgreSQL: native range partitions by day,
-- created ahead of time by ensure_event_partitions() (ingest calls it before
-- writing a batch that reaches a day it has not seen) and dropped past the
-- retention by drop_event_partitions().

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
) PARTITION BY RANGE (observed_at);
CREATE INDEX ON occupancy_events (space_id, observed_at DESC);

CREATE FUNCTION event_partition_name(day date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'occupancy_events_' || to_char(day, 'YYYYMMDD') $$;

-- Create the daily partitions covering [from_day, to_day]; returns how many were new.
CREATE FUNCTION ensure_event_partitions(from_day date, to_day date) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    made int := 0;
BEGIN
    FOR d IN SELECT generate_series(from_day, to_day, interval '1 day')::date LOOP
        IF to_regclass(event_partition_name(d)) IS NULL THEN
            -- two workers may race here; the loser's error is harmless
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF occupancy_events FOR VALUES FROM (%L) TO (%L)',
                    event_partition_name(d), d::timestamp AT TIME ZONE 'UTC',
                    (d + 1)::timestamp AT TIME ZONE 'UTC');
                made := made + 1;
            EXCEPTION WHEN duplicate_table OR invalid_object_definition THEN
                NULL;
            END;
        END IF;
    END LOOP;
    RETURN made;
END $$;

-- Drop the daily partitions that end before older_than; returns how many.
CREATE FUNCTION drop_event_partitions(older_than timestamptz) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped int := 0;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'occupancy_events'::regclass
          AND c.relname ~ '^occupancy_events_\d{8}$'
          AND to_date(right(c.relname, 8), 'YYYYMMDD') + 1 <= (older_than AT TIME ZONE 'UTC')::date
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

-- time_bucket() as TimescaleDB has it (origin Monday 2000-01-03), so the
-- queries read the same on both paths.
CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT date_bin(bucket_width, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') $$;

SELECT ensure_event_partitions((now() AT TIME ZONE 'UTC')::date - 2, (now() AT TIME ZONE 'UTC')::date + 7);
