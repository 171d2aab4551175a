-- Which creation of a client id a client is (ADR 0019): random, set when the
-- client is created and never changed; JWTs carry it, and those of another
-- incarnation (a deleted client's, once the id is created again) are
-- refused. Clients from before this migration keep '' — as their JWTs, which
-- carry none.
ALTER TABLE clients ADD COLUMN incarnation text NOT NULL DEFAULT '';

-- The secret a rotation replaced (SHA-256, like secret_hash) and until when
-- it still authenticates the client.
ALTER TABLE clients ADD COLUMN previous_secret_hash bytea;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at timestamptz;
ALTER TABLE clients ADD CONSTRAINT clients_previous_secret_check
    CHECK ((previous_secret_hash IS NULL) = (previous_secret_expires_at IS NULL)
       AND (previous_secret_hash IS NULL OR NOT public));
