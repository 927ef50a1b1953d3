-- Free-space forecasts (issue 18): each site's counts every 5 minutes, the
-- fitted forecast model of each site, and each tenant's holidays. The same
-- text on both flavors (plain tables: small, and read by primary key).
--
-- site_counts_5m is what the forecaster learns from and predicts with: a
-- site's free / occupied / total spaces at every 5-minute boundary, as
-- site_history() (migration 007) computes them from the rollup. Ingest's
-- maintenance appends the new boundaries and recomputes the last hour (late
-- events), and deletes rows older than ingest.forecast_history_days
-- (ingest/forecasting.py). Boundaries at which no space of the site was known
-- are not stored. site_counts_horizon remembers how far each site was counted,
-- so a site without any data is not recounted from the start on every run.
--
-- site_forecasts holds the last fitted model of each site (occupancy.forecast
-- SiteModel.to_json), written by maintenance and read by every API process.
-- forecast_failures holds the tenants whose last fit failed.
--
-- tenant_holidays: the local dates a tenant lists in its site file (Nowruz,
-- official holidays), written by provisioning; the forecaster treats them as
-- rest days.

CREATE TABLE site_counts_5m (
    site_id   int NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    at        timestamptz NOT NULL,   -- a 5-minute boundary: the counts as of this instant
    free      int NOT NULL CHECK (free >= 0),
    occupied  int NOT NULL CHECK (occupied >= 0),
    total     int NOT NULL CHECK (total >= free + occupied),
    PRIMARY KEY (site_id, at)
);

CREATE TABLE site_counts_horizon (
    site_id     int PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    counted_to  timestamptz NOT NULL  -- every boundary up to here is in site_counts_5m (or had no data)
);

CREATE TABLE site_forecasts (
    site_id        int PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    fitted_at      timestamptz NOT NULL,
    method         text NOT NULL CHECK (method ~ '^[a-z+-]{1,40}$'),
    model          jsonb NOT NULL,
    trained_from   timestamptz,        -- the span of the counts it learned from (NULL: none)
    trained_to     timestamptz,
    trained_rows   int NOT NULL CHECK (trained_rows >= 0)
);

-- A tenant whose last fit failed (bad data: a time zone the system does not
-- know, …): not tried again before ingest.forecast_refit_s has passed; the row
-- goes when a fit succeeds. Operators read the reason here.
CREATE TABLE forecast_failures (
    tenant_id  int PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    failed_at  timestamptz NOT NULL,
    error      text NOT NULL
);

CREATE TABLE tenant_holidays (
    tenant_id  int NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day        date NOT NULL,
    name       text,
    name_fa    text,
    PRIMARY KEY (tenant_id, day)
);
