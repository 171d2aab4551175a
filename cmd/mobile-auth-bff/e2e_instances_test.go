package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/store/postgres"
)

// withAppName names an instance's connections, to find them in pg_stat_activity.
func withAppName(dbURL, name string) string {
	u, _ := url.Parse(dbURL)
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// within polls check until it is true, failing after d.
func within(t *testing.T, d time.Duration, what string, check func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if check() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestE2ETwoInstancesSeeDisable: two instances on one database. Disabling a
// user (or revoking a JWT) through A makes B reject the user's JWT within a
// second, although B caches accounts — also after B's notification
// connection was killed.
func TestE2ETwoInstancesSeeDisable(t *testing.T) {
	t.Parallel()
	dbURL := testdb.URL(t)
	a := start(t, baseEnv(map[string]string{"BFF_DATABASE_URL": withAppName(dbURL, "bff-a")}))
	b := start(t, baseEnv(map[string]string{"BFF_DATABASE_URL": withAppName(dbURL, "bff-b")}))
	a.createMobileClient("app", nil)
	secret := a.createBackend("rs")
	_ = secret

	meOnB := func(tok string) int {
		return do(t, "GET", b.public+"/api/me", nil, map[string]string{"Authorization": "Bearer " + tok}).status
	}
	// disabledOnB: B answers the apps' "disabled" verdict (a 401 like any
	// other bad token, told apart by its code).
	disabledOnB := func(tok string) bool {
		r := do(t, "GET", b.public+"/api/me", nil, map[string]string{"Authorization": "Bearer " + tok})
		return r.status == 401 && r.json(t)["error_code"] == "user_is_disabled"
	}
	login := func(user string) string {
		tok, err := a.oauthConfig("app").PasswordCredentialsToken(oauthCtx("jwt"), user, e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		// B answers, and so caches the account.
		within(t, 5*time.Second, "B accepts a fresh JWT", func() bool { return meOnB(tok.AccessToken) == 200 })
		for i := 0; i < 3; i++ {
			if s := meOnB(tok.AccessToken); s != 200 {
				t.Fatalf("B /api/me: %d", s)
			}
		}
		return tok.AccessToken
	}
	disableOnA := func(id int64) {
		a.mustAdmin("POST", "/admin/users/"+itoa(id)+"/disable", nil, 200)
	}

	// 1. Disable through A; B sees it within a second.
	u1 := a.createUser("nina")
	tok1 := login("nina")
	disableOnA(u1)
	took := within(t, time.Second, "B rejects the disabled user's JWT", func() bool { return disabledOnB(tok1) })
	t.Logf("B rejected the disabled user after %s", took)

	// 2. Revoke a JWT through A; B sees it within a second.
	a.createUser("olga")
	tok2 := login("olga")
	if r := a.postForm("/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {tok2}}); r.status != 200 {
		t.Fatalf("revoke: %d", r.status)
	}
	within(t, time.Second, "B rejects the revoked JWT", func() bool { return meOnB(tok2) == 401 })

	// 3. Kill B's notification connection, then disable through A at once:
	// B must not trust its cache while it cannot hear events.
	u3 := a.createUser("paul")
	tok3 := login("paul")
	killed := terminateListener(t, dbURL, "bff-b")
	if killed != 1 {
		t.Fatalf("terminated %d listener connections of B, want 1", killed)
	}
	disableOnA(u3)
	within(t, time.Second, "B rejects a user disabled while its feed was down", func() bool { return disabledOnB(tok3) })

	// 4. B reconnects and caches again; events flow again.
	within(t, 10*time.Second, "B's listener reconnects", func() bool { return countListeners(t, dbURL, "bff-b") == 1 })
	u4 := a.createUser("quinn")
	tok4 := login("quinn")
	disableOnA(u4)
	within(t, time.Second, "B rejects the disabled user after reconnecting", func() bool { return disabledOnB(tok4) })
	if !strings.Contains(b.out.String(), "change feed lost") || !strings.Contains(b.out.String(), "change feed connected") {
		t.Error("B did not log losing and regaining its change feed")
	}
}

func adminConn(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// listenerQuery finds an instance's notification connection by its name.
const listenerQuery = `FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 || ' ' || '` + postgres.ListenerName + `'`

func countListeners(t *testing.T, dbURL, app string) int {
	var n int
	if err := adminConn(t, dbURL).QueryRow(context.Background(), `SELECT count(*) `+listenerQuery, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func terminateListener(t *testing.T, dbURL, app string) int {
	t.Helper()
	within(t, 10*time.Second, "listener connected", func() bool { return countListeners(t, dbURL, app) == 1 })
	var n int
	if err := adminConn(t, dbURL).QueryRow(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) `+listenerQuery, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
