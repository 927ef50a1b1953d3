-- Camera layouts edited on the web page (issue 17): every write of a camera's
-- polygons through the operators' API is kept as a numbered version (who, when,
-- from what: the editor, a PKLot/Ultralytics/site-file import, a device PATCH),
-- and each camera may hold its latest frame, uploaded by an operator or the
-- gateway's `parkbazaar layout frame`, for the editor to draw on. The current
-- polygons stay in device_spaces: everything that reads them is unchanged.
-- (Numbered 013: 012 is kept for the forecast branch.)

CREATE TABLE device_layouts (
    device_id  int NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    version    int NOT NULL CHECK (version >= 1),
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,                   -- 'token:<id>' or 'cli', as in audit_log
    source     text NOT NULL CHECK (source ~ '^[a-z]{1,16}$'),  -- editor, pklot, ultralytics, site, api
    spaces     jsonb NOT NULL,                  -- space id → [[x, y], …] (image pixels)
    PRIMARY KEY (device_id, version)
);

CREATE TABLE device_frames (
    device_id     int PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png')),
    width         int NOT NULL CHECK (width BETWEEN 1 AND 65535),
    height        int NOT NULL CHECK (height BETWEEN 1 AND 65535),
    image         bytea NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL
);
