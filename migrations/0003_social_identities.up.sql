-- Social identities: a provider account (Google, Facebook, Apple) linked to a
-- user, found by (provider, subject) on every social token exchange. One
-- provider account belongs to at most one user; a user may link several.
CREATE TABLE social_identities (
    provider   text NOT NULL CHECK (provider <> ''),
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX social_identities_user_idx ON social_identities (user_id);
