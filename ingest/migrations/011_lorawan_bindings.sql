-- LoRaWAN bindings (issue 15): a lorawan device names how its frames are read,
-- either a built-in decoder (`model`, a name of occupancy.lorawan.models) or a
-- field path into the `object` that the network server's own decoder filled
-- (`occupied_path`, e.g. `object.occupied`). The site file and the admin API
-- check the model names and that a live lorawan device has exactly one of the
-- two and one space; the database keeps what needs no code to check.
--
-- The checks are NOT VALID: rows written before this migration (a lorawan device
-- without a DevEUI) do not stop it from applying, but every row inserted or
-- updated from now on must pass them. A retired device has released its
-- DevEUI (`retired_at` set, `dev_eui` NULL), so the DevEUI rule is for live rows.

ALTER TABLE devices ADD COLUMN model text;
ALTER TABLE devices ADD COLUMN occupied_path text;

ALTER TABLE devices ADD CONSTRAINT devices_lorawan_dev_eui
    CHECK (kind <> 'lorawan' OR dev_eui IS NOT NULL OR retired_at IS NOT NULL) NOT VALID;
ALTER TABLE devices ADD CONSTRAINT devices_dev_eui_form
    CHECK (dev_eui ~ '^[0-9a-f]{16}$') NOT VALID;
ALTER TABLE devices ADD CONSTRAINT devices_lorawan_only
    CHECK (kind = 'lorawan' OR (model IS NULL AND occupied_path IS NULL));
ALTER TABLE devices ADD CONSTRAINT devices_model_or_path
    CHECK (model IS NULL OR occupied_path IS NULL);
ALTER TABLE devices ADD CONSTRAINT devices_model_form
    CHECK (model ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$');
ALTER TABLE devices ADD CONSTRAINT devices_occupied_path_form
    CHECK (occupied_path ~ '^object(\.[A-Za-z0-9_-]{1,64}){1,8}$');

-- `GET /v1/admin/{tenant}/gateways/{gw}/lorawan` walks device_spaces from the space side.
CREATE INDEX IF NOT EXISTS device_spaces_space ON device_spaces (space_id);
