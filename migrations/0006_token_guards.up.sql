-- Tokens issued after a password change or disabling never outlive it:
-- every token write checks, under a share lock, that the account and the
-- token family still allow it (ADR 14).
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;
ALTER TABLE token_families ADD COLUMN authenticated_at timestamptz;

-- A logged-out session is kept (ended) until it expires, so that logging in
-- again with the same token cannot bring its cookie back.
ALTER TABLE sessions ADD COLUMN ended_at timestamptz;

-- JWT records are found by jti (a JWT's signature has several encodings).
CREATE INDEX access_tokens_jti_idx ON access_tokens (jti) WHERE jti IS NOT NULL;
