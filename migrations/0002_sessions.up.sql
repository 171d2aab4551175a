-- Web sessions from /oauth2/login. id is the SHA-256 of the cookie value.
CREATE TABLE sessions (
    id         text PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    grant_type text NOT NULL,
    format     text NOT NULL CHECK (format IN ('bearer', 'jwt')),
    scopes     text[] NOT NULL DEFAULT '{}',
    family_id  text,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_family_idx ON sessions (family_id) WHERE family_id IS NOT NULL;
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
