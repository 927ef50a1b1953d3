-- Per-site occupancy history from a rollup, on TimescaleDB: a continuous
-- aggregate (the plain flavor maintains a table of the same shape, see
-- 007_site_history.plain.sql).
--
-- How this works. space_history_5m keeps, per space and 5-minute bucket, the
-- last observation in the bucket (state, instant; ties broken by seq as
-- everywhere: last() orders by a numeric key made of the instant in
-- microseconds and the seq). Buckets are (t - 5 min, t]: time_bucket with the
-- origin 2000-01-03 00:00:00.000001 labels a bucket by its first microsecond,
-- so the row of the bucket labelled 10:00:00.000001 is the state as of
-- 10:05:00 exactly, and a space's state at any 5-minute boundary is the last
-- row at or before it, however the events were spread inside the buckets.
--
-- Kept current by TimescaleDB: inserts (late ones from a backlog too) are
-- logged by its invalidation trigger; the refresh policy recomputes the
-- invalidated buckets of the last 7 days every 5 minutes; real-time
-- aggregation (materialized_only = false) computes the buckets above the
-- watermark from the events at query time. A refresh over a range whose chunks
-- were dropped (retention) deletes its rows: the policy's window (7 days) must
-- stay shorter than the event retention, and a manual refresh for a backlog
-- older than 7 days must start after the retention cut (ingest/history.py).
-- Materialized chunks are compressed after 30 days and never dropped by us.

CREATE FUNCTION space_history_bucket(ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT time_bucket(interval '5 minutes', ts, origin => TIMESTAMPTZ '2000-01-03 00:00:00.000001+00') $$;

CREATE MATERIALIZED VIEW space_history_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT space_id,
       time_bucket(interval '5 minutes', observed_at,
                   origin => TIMESTAMPTZ '2000-01-03 00:00:00.000001+00') AS bucket,
       last(state, extract(epoch FROM observed_at) * 10000000000000000000000000 + seq) AS last_state,
       max(observed_at) AS last_at
FROM occupancy_events
GROUP BY space_id, bucket
WITH NO DATA;

SELECT add_continuous_aggregate_policy('space_history_5m',
    start_offset => interval '7 days', end_offset => interval '5 minutes',
    schedule_interval => interval '5 minutes');

ALTER MATERIALIZED VIEW space_history_5m SET (
    timescaledb.compress = true,
    timescaledb.compress_segmentby = 'space_id',
    timescaledb.compress_orderby = 'bucket DESC'
);
SELECT add_compression_policy('space_history_5m', compress_after => interval '30 days');

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
