-- The registry: tenants, sites, zones, spaces, gateways, devices and bindings.
-- Surrogate integer keys keep the event rows narrow; the text ids (slugs) are
-- what the wire and the API speak.

CREATE TABLE tenants (
    id        serial PRIMARY KEY,
    slug      text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]{1,40}$'),
    name      text NOT NULL,
    name_fa   text,
    timezone  text NOT NULL DEFAULT 'Asia/Tehran'
);

CREATE TABLE sites (
    id             serial PRIMARY KEY,
    tenant_id      int NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    slug           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('parking', 'market')),
    name           text NOT NULL,
    name_fa        text,
    address        text,
    lat            double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon            double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    opening_hours  jsonb,
    stale_after_s  int NOT NULL DEFAULT 900 CHECK (stale_after_s > 0),
    UNIQUE (tenant_id, slug)
);

CREATE TABLE zones (
    id       serial PRIMARY KEY,
    site_id  int NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    slug     text NOT NULL,
    name     text,
    name_fa  text,
    UNIQUE (site_id, slug)
);

CREATE TABLE spaces (
    id          serial PRIMARY KEY,
    site_id     int NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    zone_id     int REFERENCES zones(id) ON DELETE SET NULL,
    slug        text NOT NULL,
    attributes  jsonb NOT NULL DEFAULT '{}',
    UNIQUE (site_id, slug)
);

CREATE TABLE gateways (
    id             serial PRIMARY KEY,
    tenant_id      int NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    slug           text NOT NULL CHECK (slug ~ '^[A-Za-z0-9_-]{1,64}$'),
    name           text,
    secret_hash    text,
    online         boolean NOT NULL DEFAULT false,
    boot           bigint NOT NULL DEFAULT -1,
    status_at      timestamptz,
    UNIQUE (tenant_id, slug)
);

-- A gateway may report exactly the spaces bound to it.
CREATE TABLE gateway_spaces (
    gateway_id  int NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    space_id    int NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    PRIMARY KEY (gateway_id, space_id)
);
CREATE INDEX ON gateway_spaces (space_id);

CREATE TABLE devices (
    id          serial PRIMARY KEY,
    gateway_id  int REFERENCES gateways(id) ON DELETE SET NULL,
    site_id     int NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    slug        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('sensor', 'camera', 'lorawan')),
    dev_eui     text UNIQUE,
    UNIQUE (site_id, slug)
);

-- A sensor watches one space; a camera many, each with its polygon.
CREATE TABLE device_spaces (
    device_id  int NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    space_id   int NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    polygon    jsonb,
    PRIMARY KEY (device_id, space_id)
);
