-- Authorization codes of browser sign-in (SPEC §14), keyed by the HMAC
-- signature of the code. request_id is the family id of the tokens issued
-- from the code; used_at is set by the one redemption a code allows.
CREATE TABLE authorization_codes (
    signature             text PRIMARY KEY,
    request_id            text NOT NULL,
    client_id             text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id               bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri          text NOT NULL,
    code_challenge        text NOT NULL DEFAULT '',
    code_challenge_method text NOT NULL DEFAULT '' CHECK (code_challenge_method IN ('', 'S256')),
    scopes                text[] NOT NULL DEFAULT '{}',
    authenticated_at      timestamptz NOT NULL,
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    used_at               timestamptz,
    request               jsonb NOT NULL
);
CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);
