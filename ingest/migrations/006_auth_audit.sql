-- The API's own tables and columns (owned by dashboard_api; no change to ingest):
-- API tokens (only their SHA-256 is stored), the audit log of every write made
-- through the API, `retired_at` on registry rows (retiring keeps history), a
-- change cursor on space_state for the live stream, and device health.

CREATE TABLE api_tokens (
    id          serial PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,           -- hex SHA-256 of the 256-bit random token
    tenant_id   int NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('manager', 'admin')),
    sites       text[] NOT NULL DEFAULT '{}',   -- manager: these site slugs only; empty: every site
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,                   -- 'token:<id>' or 'cli'
    tenant     text NOT NULL,
    action     text NOT NULL,                   -- e.g. 'site.create', 'gateway.credentials'
    target     text NOT NULL,                   -- e.g. 'central-lot/A-013'
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON audit_log (tenant, at DESC);

ALTER TABLE sites    ADD COLUMN retired_at timestamptz;
ALTER TABLE zones    ADD COLUMN retired_at timestamptz;
ALTER TABLE spaces   ADD COLUMN retired_at timestamptz;
ALTER TABLE gateways ADD COLUMN retired_at timestamptz;
ALTER TABLE devices  ADD COLUMN retired_at timestamptz;

-- The live stream's cursor. Every insert or update of a space_state row takes a
-- new change_id and records its transaction id; a reader that remembers the
-- xmin of the snapshot it read with re-reads every row written by a
-- transaction at or after it, so a transaction that commits late (an older
-- xid) is never skipped. Filled by this trigger: ingest needs no change.
CREATE SEQUENCE space_state_change_seq;
ALTER TABLE space_state ADD COLUMN change_id bigint NOT NULL DEFAULT nextval('space_state_change_seq');
ALTER TABLE space_state ADD COLUMN change_xid xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE FUNCTION space_state_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_id := nextval('space_state_change_seq');
    NEW.change_xid := pg_current_xact_id();
    RETURN NEW;
END $$;
CREATE TRIGGER space_state_stamp BEFORE INSERT OR UPDATE ON space_state
    FOR EACH ROW EXECUTE FUNCTION space_state_stamp();

-- Latest health report of a device (battery, temperature, signal). Ingest may
-- fill it from the `health` channel; alerts read it.
CREATE TABLE IF NOT EXISTS device_health (
    device_id    int PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    reported_at  timestamptz NOT NULL,
    battery_pct  real,
    temperature  real,
    rssi         real
);
