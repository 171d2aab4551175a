-- Outcomes of keyed payment requests made through the broker (SPEC §10), per
-- user and Idempotency-Key. A row is claimed in flight before the payment
-- service is called and then completed (the response is replayed) or marked
-- unknown; it is never claimed again before it expires (24 h).
CREATE TABLE idempotency_keys (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 255),
    claim_id    text NOT NULL,
    fingerprint text NOT NULL,
    state       text NOT NULL CHECK (state IN ('in_flight', 'completed', 'unknown')),
    status      integer NOT NULL DEFAULT 0,
    header      jsonb,
    body        bytea,
    created_at  timestamptz NOT NULL,
    finished_at timestamptz,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
