-- DPoP (RFC 9449, ADR 0028). The thumbprint of the key a token is bound
-- to; '' for a bearer token (every token issued before this migration).
ALTER TABLE access_tokens ADD COLUMN jkt text NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN jkt text NOT NULL DEFAULT '';

-- The DPoP proofs accepted, for as long as each could be accepted, so that
-- a proof is used once across every instance. key is the SHA-256 of the
-- proof's key thumbprint and jti (the jti is the client's choice, and
-- unique only per key).
CREATE TABLE dpop_proofs (
    key        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX dpop_proofs_expires_at ON dpop_proofs (expires_at);
