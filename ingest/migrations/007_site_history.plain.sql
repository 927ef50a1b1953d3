-- Per-site occupancy history from a rollup, on plain PostgreSQL: the
-- counterpart of TimescaleDB's continuous aggregate (007_site_history.timescale.sql).
--
-- How this works. The rollup keeps, per space and 5-minute bucket, the last
-- observation in the bucket (state, instant; ties broken by seq as everywhere).
-- Buckets are (t - 5 min, t]: a bucket is labelled by its first microsecond
-- (origin 2000-01-03 00:00:00.000001 UTC, as TimescaleDB's time_bucket would
-- label it with that origin), so the row of the bucket labelled 10:00:00.000001
-- is the state as of 10:05:00 exactly. A space's state at any 5-minute boundary
-- is therefore the last row at or before it: exact, however the events
-- were spread inside the buckets.
--
-- Kept current without a race: every INSERT into occupancy_events logs the
-- buckets it touched in space_history_pending (a statement trigger over the
-- inserted rows: one or two rows a live batch, in the writer's transaction, so
-- a committed event always has a committed log row). refresh_site_history()
-- takes the logged buckets and recomputes each from all of its events, so the
-- result is idempotent and independent of arrival order; a late event from a
-- backlog logs its old bucket and the next refresh rewrites it. Maintenance
-- calls it (ingest/history.py).
--
-- space_history_5m is the view every reader uses (the continuous aggregate's
-- name on TimescaleDB): materialized rows below the horizon, and above it the
-- same aggregate computed from the events at query time (TimescaleDB's
-- real-time aggregation). Dropped event partitions never remove rollup rows.

CREATE TABLE space_history_5m_rows (
    space_id    int NOT NULL,
    bucket      timestamptz NOT NULL,
    last_state  text NOT NULL,
    last_at     timestamptz NOT NULL,
    last_seq    bigint NOT NULL,
    PRIMARY KEY (space_id, bucket)
);

-- Buckets with new events since they were last materialized (append-only, no
-- key: writers never wait on each other here).
CREATE TABLE space_history_pending (bucket timestamptz NOT NULL);

-- Rows of buckets below `materialized_to` are read from space_history_5m_rows;
-- buckets from it on are computed from the events.
CREATE TABLE space_history_horizon (
    only_row         boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    materialized_to  timestamptz NOT NULL
);
INSERT INTO space_history_horizon VALUES (true, '-infinity');

-- The bucket label of an instant (see above).
CREATE FUNCTION space_history_bucket(ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT date_bin(interval '5 minutes', ts, TIMESTAMPTZ '2000-01-03 00:00:00.000001+00') $$;

-- Refreshing reads events by time across every space: a BRIN index is tiny
-- and costs ingest next to nothing (events arrive in about time order).
CREATE INDEX occupancy_events_observed_at_brin ON occupancy_events
    USING brin (observed_at) WITH (autosummarize = on);

CREATE FUNCTION space_history_log() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO space_history_pending (bucket)
    SELECT DISTINCT space_history_bucket(observed_at) FROM new_events;
    RETURN NULL;
END $$;

CREATE TRIGGER space_history_log AFTER INSERT ON occupancy_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION space_history_log();

-- Materialize the logged buckets that lie in [p_from, p_to) (NULL: unbounded)
-- and move the horizon up to p_to (never closer than 5 minutes to now, so
-- that batches still in flight are read live). Returns the rows written.
-- Idempotent and order-independent; concurrent callers take turns.
CREATE FUNCTION refresh_site_history(p_from timestamptz, p_to timestamptz) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := coalesce(space_history_bucket(p_from), '-infinity');
    hi timestamptz := coalesce(p_to, now());
    written int;
BEGIN
    PERFORM pg_advisory_xact_lock(1889710247);  -- 0x70A2B0A7
    WITH work AS (
        DELETE FROM space_history_pending
        WHERE bucket >= lo AND bucket + interval '5 minutes' <= hi + interval '1 microsecond'
        RETURNING bucket
    ),
    buckets AS (SELECT DISTINCT bucket FROM work),
    -- consecutive buckets make one range (one scan each)
    ranges AS (
        SELECT min(bucket) AS r_lo, max(bucket) + interval '5 minutes' AS r_hi
        FROM (SELECT bucket, bucket - interval '5 minutes' * row_number() OVER (ORDER BY bucket) AS run
              FROM buckets) b
        GROUP BY run
    ),
    last_in_bucket AS (
        SELECT DISTINCT ON (e.space_id, space_history_bucket(e.observed_at))
               e.space_id, space_history_bucket(e.observed_at) AS bucket,
               e.state, e.observed_at, e.seq
        FROM ranges r JOIN occupancy_events e
          ON e.observed_at >= r.r_lo AND e.observed_at < r.r_hi
        ORDER BY e.space_id, space_history_bucket(e.observed_at), e.observed_at DESC, e.seq DESC
    )
    INSERT INTO space_history_5m_rows AS h (space_id, bucket, last_state, last_at, last_seq)
    SELECT space_id, bucket, state, observed_at, seq FROM last_in_bucket
    ON CONFLICT (space_id, bucket) DO UPDATE
        SET last_state = EXCLUDED.last_state, last_at = EXCLUDED.last_at, last_seq = EXCLUDED.last_seq
        WHERE (h.last_state, h.last_at, h.last_seq)
              IS DISTINCT FROM (EXCLUDED.last_state, EXCLUDED.last_at, EXCLUDED.last_seq);
    GET DIAGNOSTICS written = ROW_COUNT;
    UPDATE space_history_horizon
    SET materialized_to = greatest(materialized_to,
                                   space_history_bucket(least(hi, now() - interval '5 minutes')));
    RETURN written;
END $$;

CREATE VIEW space_history_5m AS
    SELECT space_id, bucket, last_state, last_at
    FROM space_history_5m_rows
    WHERE bucket < (SELECT materialized_to FROM space_history_horizon)
    UNION ALL
    (SELECT DISTINCT ON (space_id, space_history_bucket(observed_at))
            space_id, space_history_bucket(observed_at), state, observed_at
     FROM occupancy_events
     WHERE observed_at >= (SELECT materialized_to FROM space_history_horizon)
     ORDER BY space_id, space_history_bucket(observed_at), observed_at DESC, seq DESC);

-- Existing events (a database migrated before this file) are materialized by
-- the first refresh.
INSERT INTO space_history_pending (bucket)
SELECT DISTINCT space_history_bucket(observed_at) FROM occupancy_events;

-- A site's occupancy at every step from date_bin(p_step, p_from) (origin
-- 2000-01-03, like time_bucket) to p_to, as a step function: each space keeps
-- the state of its last observation at or before the step (last observation
-- carried forward, across steps with no events and into the range from before
-- p_from); it is unknown when that observation is older than p_stale or there
-- is none; a retired space counts until it was retired. The same text on both
-- flavors (a test checks it).
--
-- Steps that are multiples of 5 minutes fall on bucket ends and read only the
-- rollup: exact, and never more than the rows of the range (`scan`), or, for
-- steps much longer than p_stale, the few rows within p_stale before each step
-- (`probe`: a year by days costs steps x spaces index probes, not a year of
-- rows). Other steps (1 minute, 7 minutes) read the rollup up to the 5-minute
-- boundary before the first step and the events after it (`events`): exact
-- too, at the cost of the events of the range. Month steps are refused.
-- JIT is off: its compile time (about a second) dwarfs these queries.
CREATE FUNCTION site_history(p_site int, p_from timestamptz, p_to timestamptz,
                             p_step interval, p_stale interval)
RETURNS TABLE (bucket timestamptz, free int, occupied int, unknown int, total int)
LANGUAGE sql STABLE SET jit = off AS $$
WITH sp AS (
    SELECT s.id, coalesce(s.retired_at, 'infinity') AS gone FROM spaces s WHERE s.site_id = p_site
),
g AS (
    SELECT x.t0, date_bin(interval '5 minutes', x.t0, TIMESTAMPTZ '2000-01-03') AS b0,
           CASE WHEN extract(epoch FROM p_step) % 300 <> 0 THEN 'events'
                WHEN p_step >= p_stale + interval '30 minutes' THEN 'probe'
                ELSE 'scan' END AS how
    FROM (SELECT date_bin(p_step, p_from, TIMESTAMPTZ '2000-01-03') AS t0) x
),
grid AS (
    SELECT gr.t FROM g CROSS JOIN generate_series(g.t0, p_to, p_step) AS gr(t)
),
-- scan, events: the observations from p_stale before the first step on
obs AS (
    SELECT sp.id AS space_id, o.state, o.at, o.seq
    FROM sp CROSS JOIN g CROSS JOIN LATERAL (
        SELECT r.last_state AS state, r.last_at AS at, NULL::bigint AS seq
        FROM space_history_5m r
        WHERE g.how <> 'probe' AND r.space_id = sp.id
          AND r.bucket > g.b0 - p_stale - interval '5 minutes'
          AND r.bucket <= CASE WHEN g.how = 'scan' THEN p_to
                               ELSE g.b0 - interval '299.999999 seconds' END
        UNION ALL
        SELECT e.state, e.observed_at, e.seq
        FROM occupancy_events e
        WHERE g.how = 'events' AND e.space_id = sp.id AND e.observed_at > g.b0 AND e.observed_at <= p_to
    ) o
),
-- each observation holds until the next one, staleness, retirement or the end
iv AS (
    SELECT o.state, o.at AS a,
           least(lead(o.at, 1, 'infinity') OVER (PARTITION BY o.space_id ORDER BY o.at, o.seq NULLS FIRST),
                 o.at + p_stale, sp.gone, p_to + interval '1 microsecond') AS b
    FROM obs o JOIN sp ON sp.id = o.space_id
),
pts AS (
    SELECT p.t, iv.state FROM iv CROSS JOIN g CROSS JOIN LATERAL generate_series(
        g.t0 + p_step * greatest(0, ceil(extract(epoch FROM iv.a - g.t0) / extract(epoch FROM p_step))),
        iv.b - interval '1 microsecond', p_step) AS p(t)
    WHERE iv.state IN ('free', 'occupied') AND iv.b > iv.a
    UNION ALL
    -- probe: each step's state from the last bucket ending at or before it
    SELECT grid.t, o.state
    FROM g CROSS JOIN grid CROSS JOIN sp CROSS JOIN LATERAL (
        SELECT r.last_state AS state FROM space_history_5m r
        WHERE r.space_id = sp.id AND r.bucket > grid.t - p_stale - interval '5 minutes'
          AND r.bucket <= grid.t - interval '299.999999 seconds'
          AND r.last_at > grid.t - p_stale  -- the last row is stale: so is any before it
        ORDER BY r.bucket DESC LIMIT 1
    ) o
    WHERE g.how = 'probe' AND sp.gone > grid.t AND o.state IN ('free', 'occupied')
),
counts AS (
    SELECT pts.t,
           count(*) FILTER (WHERE pts.state = 'free')::int AS free,
           count(*) FILTER (WHERE pts.state = 'occupied')::int AS occupied
    FROM pts GROUP BY pts.t
)
SELECT grid.t, coalesce(c.free, 0), coalesce(c.occupied, 0),
       n.total - coalesce(c.free, 0) - coalesce(c.occupied, 0), n.total
FROM grid
LEFT JOIN counts c ON c.t = grid.t
CROSS JOIN LATERAL (SELECT count(*)::int AS total FROM sp WHERE sp.gone > grid.t) n
ORDER BY grid.t
$$;
