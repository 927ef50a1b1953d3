-- Dead letters are bounded (issue 11): the payload is stored cut to a limit
-- (ingest.dead_letter_max_payload_bytes), so the full length and a SHA-256 of
-- what arrived are kept beside it; rows older than
-- ingest.dead_letter_retention_days are deleted by maintenance (received_at is
-- indexed since 002).

ALTER TABLE dead_letters
    ADD COLUMN payload_bytes int,
    ADD COLUMN payload_sha256 bytea;
UPDATE dead_letters SET payload_bytes = length(payload), payload_sha256 = sha256(payload);
ALTER TABLE dead_letters
    ALTER COLUMN payload_bytes SET NOT NULL,
    ALTER COLUMN payload_sha256 SET NOT NULL;
