-- Current state, one row per space that has ever been observed, and the
-- dead letters: everything ingest could not accept, with why.

CREATE TABLE space_state (
    space_id     int PRIMARY KEY REFERENCES spaces(id) ON DELETE CASCADE,
    state        text NOT NULL CHECK (state IN ('free', 'occupied', 'unknown')),
    observed_at  timestamptz NOT NULL,
    source       text NOT NULL,
    confidence   real,
    gateway_id   int NOT NULL,
    seq          bigint NOT NULL,
    changed_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    payload      bytea NOT NULL,
    reason       text NOT NULL,
    detail       jsonb,
    tenant       text,
    gateway      text
);
CREATE INDEX ON dead_letters (received_at);
CREATE INDEX ON dead_letters (reason);
