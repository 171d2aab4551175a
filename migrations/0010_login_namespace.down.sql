-- Back to per-column uniqueness. The indexes below fold case by the database
-- collation, so recreating them fails if accounts created since 0010 differ
-- only in the case of a non-ASCII letter (ADR 0021); rename one first.
DROP TRIGGER IF EXISTS users_login_keys ON users;
DROP FUNCTION IF EXISTS user_logins_sync();
DROP TABLE IF EXISTS user_logins;
CREATE UNIQUE INDEX IF NOT EXISTS users_username_key ON users (lower(username));
CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (lower(email));
