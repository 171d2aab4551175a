-- Usernames and emails share one case-insensitive namespace (ADR 0021): a
-- login typed at sign-in names at most one account, so a username can no
-- longer be another account's email and capture its logins and throttle.
-- Every username and email has a row keyed by lower(x COLLATE "C") (ASCII
-- letters folded, as bff.LoginKey); the primary key makes a collision fail
-- atomically, whichever path (API, CLI, SQL import) inserts the user.
CREATE TABLE user_logins (
    login   text PRIMARY KEY,
    -- NULL: the key was held by two accounts when this migration ran; it is
    -- reserved and names nobody (sign-in with it is refused), see ADR 0021.
    user_id bigint REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX user_logins_user_idx ON user_logins (user_id);

-- Existing accounts: a key held by one account is that account's; a key
-- held by two (before, a username with @ could equal another account's
-- email) is kept reserved and ambiguous.
INSERT INTO user_logins (login, user_id)
SELECT login, CASE WHEN min(user_id) = max(user_id) THEN min(user_id) END
FROM (
    SELECT lower(username COLLATE "C") AS login, id AS user_id FROM users
    UNION ALL
    SELECT lower(email COLLATE "C"), id FROM users
) AS keys
GROUP BY login;

CREATE FUNCTION user_logins_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM user_logins WHERE user_id = OLD.id;
    END IF;
    INSERT INTO user_logins (login, user_id)
    SELECT DISTINCT k, NEW.id
    FROM (VALUES (lower(NEW.username COLLATE "C")), (lower(NEW.email COLLATE "C"))) AS v (k);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_login_keys AFTER INSERT OR UPDATE OF username, email ON users
    FOR EACH ROW EXECUTE FUNCTION user_logins_sync();

-- The namespace replaces the per-column indexes (whose lower() followed the
-- database collation, unlike the memory store).
DROP INDEX IF EXISTS users_username_key;
DROP INDEX IF EXISTS users_email_key;
