-- The token_type a client's JWT responses carry (SPEC §5): '' leaves it to
-- the request (edX's "JWT" when it asked for one, "Bearer" otherwise).
ALTER TABLE clients ADD COLUMN jwt_token_type text NOT NULL DEFAULT ''
    CHECK (jwt_token_type IN ('', 'JWT', 'Bearer'));
