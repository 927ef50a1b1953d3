-- The broker's identities come from the registry (`parkbazaar broker config|sync`):
-- gateways (username `{tenant}/{gateway}`, `gateways.secret_hash`) and the service
-- accounts below (ingest, the API, operators' tools). Secrets are stored only as
-- Mosquitto password-file hashes (`$7$` PBKDF2-SHA512), so the broker's password
-- file is generated without any secret being kept.

CREATE TABLE broker_accounts (
    id           serial PRIMARY KEY,
    -- no '/': a service account can never take a gateway's `{tenant}/{gateway}` name
    username     text NOT NULL CHECK (username ~ '^[A-Za-z0-9_-]{1,64}$'),
    role         text NOT NULL CHECK (role IN ('ingest', 'api', 'operator')),
    secret_hash  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    rotated_at   timestamptz,
    retired_at   timestamptz
);
-- A retired name may be created again; two live accounts never share one.
CREATE UNIQUE INDEX broker_accounts_live_username ON broker_accounts (username) WHERE retired_at IS NULL;

-- Tell `parkbazaar broker sync` (LISTEN parkbazaar_broker) that an identity changed,
-- whichever process wrote it: the admin API, the CLI, a site file, plain SQL.
CREATE FUNCTION broker_identities_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('parkbazaar_broker', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER broker_accounts_changed AFTER INSERT OR UPDATE OR DELETE ON broker_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION broker_identities_changed();
CREATE TRIGGER gateways_credentials_changed
    AFTER INSERT OR DELETE OR UPDATE OF secret_hash, retired_at, slug ON gateways
    FOR EACH STATEMENT EXECUTE FUNCTION broker_identities_changed();
