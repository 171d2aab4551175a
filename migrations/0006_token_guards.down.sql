DROP INDEX IF EXISTS access_tokens_jti_idx;
ALTER TABLE sessions DROP COLUMN IF EXISTS ended_at;
ALTER TABLE token_families DROP COLUMN IF EXISTS authenticated_at;
ALTER TABLE users DROP COLUMN IF EXISTS tokens_valid_after;
