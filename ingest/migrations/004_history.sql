-- Occupancy history of a site as a step function: a space keeps the state of
-- its last observation until the next one (last observation carried forward).
-- space_state_at(site, t) gives every space's state at instant t from the
-- event series; site_counts_series() samples it on a grid of steps. Both use
-- only time_bucket() and plain SQL, so they read the same on both paths.

CREATE FUNCTION site_counts_at(p_site int, p_at timestamptz, p_stale interval)
RETURNS TABLE (free int, occupied int, unknown int, total int)
LANGUAGE sql STABLE AS $$
    SELECT count(*) FILTER (WHERE e.state = 'free' AND e.observed_at > p_at - p_stale)::int,
           count(*) FILTER (WHERE e.state = 'occupied' AND e.observed_at > p_at - p_stale)::int,
           count(*) FILTER (WHERE e.state IS NULL OR e.state = 'unknown'
                                  OR e.observed_at <= p_at - p_stale)::int,
           count(*)::int
    FROM spaces s
    LEFT JOIN LATERAL (
        SELECT ev.state, ev.observed_at FROM occupancy_events ev
        WHERE ev.space_id = s.id AND ev.observed_at <= p_at
        ORDER BY ev.observed_at DESC, ev.seq DESC LIMIT 1
    ) e ON true
    WHERE s.site_id = p_site
$$;

CREATE FUNCTION site_counts_series(p_site int, p_from timestamptz, p_to timestamptz,
                                   p_step interval, p_stale interval)
RETURNS TABLE (bucket timestamptz, free int, occupied int, unknown int, total int)
LANGUAGE sql STABLE AS $$
    SELECT g.t, c.free, c.occupied, c.unknown, c.total
    FROM generate_series(time_bucket(p_step, p_from), p_to, p_step) AS g(t)
    CROSS JOIN LATERAL site_counts_at(p_site, g.t, p_stale) c
$$;
