-- Tokens get a life cycle (issue 11): an optional expiry, and the time a token
-- was last used. Revocation already has `revoked_at` (migration 006).
--
-- `last_used_at` is written at most once a minute per token (the API's
-- `principal_for` updates it only when it is older than that), so a busy
-- manager's page does not turn every request into a row write.

ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;

-- `parkbazaar token list` and `GET /v1/admin/{tenant}/tokens` read a tenant's tokens.
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, id);
