-- The admin dashboard's sign-in sessions (ADR 20), shared by every instance:
-- signing out deletes the row, so a copied cookie dies with it. The id is the
-- SHA-256 of the cookie value (the cookie is never stored); the fingerprint
-- names the admin token the session was opened with (an HMAC under a key
-- derived from BFF_SECRET, never the token), so that a new BFF_ADMIN_TOKEN
-- ends the sessions of the old one.
CREATE TABLE admin_sessions (
    id                text PRIMARY KEY,
    token_fingerprint text NOT NULL,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL
);
CREATE INDEX admin_sessions_expires_idx ON admin_sessions (expires_at);
