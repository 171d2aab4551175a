-- When the token a session was made from was issued (for a browser
-- sign-in session: the sign-in time). The stores compare it with the
-- user's tokens_valid_after; without it a sign-in session read back as
-- issued at the zero time, and a user who had ever been disabled or changed
-- a password could never reuse one. NULL for sessions made before.
ALTER TABLE sessions ADD COLUMN token_issued_at timestamptz;
