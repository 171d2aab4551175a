package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
)

const (
	grantExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	typeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// createExchangeClient creates a public client that may also exchange its
// opaque tokens for JWTs.
func (s *server) createExchangeClient(id string, extra map[string]any) {
	s.t.Helper()
	body := map[string]any{"grant_types": []string{"password", "refresh_token", grantExchange}}
	for k, v := range extra {
		body[k] = v
	}
	s.createMobileClient(id, body)
}

// login signs user in at client and returns the token response.
func (s *server) login(client, user string, extra ...string) map[string]any {
	s.t.Helper()
	f := url.Values{"grant_type": {"password"}, "client_id": {client}, "username": {user}, "password": {e2ePassword}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	r := s.postForm("/oauth2/access_token", f)
	if r.status != 200 {
		s.t.Fatalf("login %s at %s: %d %s", user, client, r.status, r.body)
	}
	return r.json(s.t)
}

func (s *server) exchange(client, subject string, extra ...string) response {
	s.t.Helper()
	f := url.Values{"grant_type": {grantExchange}, "client_id": {client}, "subject_token": {subject},
		"subject_token_type": {typeAccessToken}, "requested_token_type": {typeJWT}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return s.postForm("/oauth2/access_token", f)
}

func (s *server) meStatus(tok string) int {
	s.t.Helper()
	return s.get("/api/me", "Authorization", "Bearer "+tok).status
}

func wantOAuthError(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: %d, want %d: %s", what, r.status, status, r.body)
		return
	}
	if got := r.json(t)["error"]; got != code {
		t.Errorf("%s: error %v, want %s", what, got, code)
	}
}

// TestE2ETokenExchange: an app signed in with a Bearer token gets a JWT for
// the same user, scopes and grant without signing in again; revoked,
// expired and other clients' tokens are refused; the kill switch refuses
// the exchange and leaves the opaque token alone.
func TestE2ETokenExchange(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createExchangeClient("app", nil)
		s.createExchangeClient("other", nil)
		uid := s.createUser("erin")

		login := s.login("app", "erin")
		subject := login["access_token"].(string)
		r := s.exchange("app", subject)
		if r.status != 200 {
			t.Fatalf("exchange: %d %s", r.status, r.body)
		}
		got := r.json(t)
		// A JWT chosen by the exchange is a bearer token (RFC 9068).
		if got["token_type"] != "Bearer" || got["issued_token_type"] != typeJWT || got["refresh_token"] != nil ||
			got["scope"] != login["scope"] || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("exchange response: %v", got)
		}
		jwt := got["access_token"].(string)
		h, claims := s.verifyJWT(jwt)
		if h.ExtraHeaders["typ"] != "at+jwt" || claims["sub"] != itoa(uid) || claims["client_id"] != "app" ||
			claims["grant_type"] != "password" || claims["scope"] != login["scope"] {
			t.Errorf("JWT header %v, claims %v", h.ExtraHeaders, claims)
		}
		if s.meStatus(jwt) != 200 || s.meStatus(subject) != 200 {
			t.Error("the JWT or the subject token does not work after the exchange")
		}
		// The app keeps refreshing with the refresh token it has, now as JWTs.
		rt := s.postForm("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
			"refresh_token": {login["refresh_token"].(string)}, "token_type": {"jwt"}})
		if rt.status != 200 || rt.json(t)["token_type"] != "JWT" {
			t.Errorf("refresh after the exchange: %d %s", rt.status, rt.body)
		}

		revoked := s.login("app", "erin")["access_token"].(string)
		if r := s.postForm("/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {revoked}}); r.status != 200 {
			t.Fatalf("revoke: %d", r.status)
		}
		wantOAuthError(t, "revoked subject", s.exchange("app", revoked), 400, "invalid_grant")
		others := s.login("other", "erin")["access_token"].(string)
		wantOAuthError(t, "another client's subject", s.exchange("app", others, "revoke_subject_token", "true"), 400, "invalid_grant")
		if s.meStatus(others) != 200 {
			t.Error("a refused exchange revoked the other client's token")
		}

		// revoke_subject_token=true retires the opaque token.
		subject2 := s.login("app", "erin")["access_token"].(string)
		if r := s.exchange("app", subject2, "revoke_subject_token", "true"); r.status != 200 {
			t.Fatalf("revoking exchange: %d %s", r.status, r.body)
		}
		if st := s.meStatus(subject2); st != 401 {
			t.Errorf("subject after a revoking exchange: %d", st)
		}

		// Kill switch: refused, the opaque token untouched.
		s.mustAdmin("PATCH", "/admin/clients/app", map[string]any{"jwt_enabled": false}, 200)
		subject3 := s.login("app", "erin", "token_type", "jwt")
		if subject3["token_type"] != "Bearer" {
			t.Errorf("kill switch on: login asked for a JWT got %v", subject3["token_type"])
		}
		r = s.exchange("app", subject3["access_token"].(string), "revoke_subject_token", "true")
		wantOAuthError(t, "exchange with the kill switch on", r, 400, "invalid_request")
		if !strings.Contains(string(r.body), "jwt_enabled=false") {
			t.Errorf("the refusal does not say why: %s", r.body)
		}
		if s.meStatus(subject3["access_token"].(string)) != 200 {
			t.Error("the kill switch refusal revoked the opaque token")
		}
		// JWTs issued before the kill switch live on until they expire.
		if s.meStatus(jwt) != 200 {
			t.Error("the kill switch revoked a JWT already issued")
		}
	})
}

// TestE2ETokenExchangeExpired: an expired opaque token is not exchanged.
func TestE2ETokenExchangeExpired(t *testing.T) {
	t.Parallel()
	s := start(t, baseEnv(map[string]string{"BFF_ACCESS_TOKEN_TTL": "1s"}))
	s.createExchangeClient("app", nil)
	s.createUser("fred")
	subject := s.login("app", "fred")["access_token"].(string)
	within(t, 5*time.Second, "the access token expires", func() bool { return s.meStatus(subject) == 401 })
	wantOAuthError(t, "expired subject", s.exchange("app", subject), 400, "invalid_grant")
}

// TestE2ERolloutAcrossInstances: two instances on one database. A change of
// the rollout controls through A (or the CLI) is effective on B's next token
// request (B caches clients and forgets them on the NOTIFY), and the usage
// statistics of both instances add up — B's last counts are flushed when it
// shuts down.
func TestE2ERolloutAcrossInstances(t *testing.T) {
	t.Parallel()
	dbURL := testdb.URL(t)
	// Periodic flushes so rare they never happen here: what B counted
	// reaches the store only by its shutdown flush.
	env := map[string]string{"BFF_USAGE_FLUSH_INTERVAL": "10m"}
	// Application names of their own: TestE2ETwoInstancesSeeDisable finds
	// "bff-b"'s listener in pg_stat_activity across databases.
	a := start(t, baseEnv(env, map[string]string{"BFF_DATABASE_URL": withAppName(dbURL, "bff-rollout-a")}))
	b := start(t, baseEnv(env, map[string]string{"BFF_DATABASE_URL": withAppName(dbURL, "bff-rollout-b")}))
	a.createExchangeClient("app", nil)
	a.createUser("gina")

	issuedOnB := 0
	formatOnB := func(extra ...string) string {
		issuedOnB++
		return tokenFormat(b.login("app", "gina", extra...))
	}
	if f := formatOnB("token_type", "jwt"); f != "JWT" { // B now caches the client
		t.Fatalf("B before any change: %s", f)
	}
	patchOnA := func(body map[string]any) {
		a.mustAdmin("PATCH", "/admin/clients/app", body, http.StatusOK)
	}

	patchOnA(map[string]any{"jwt_enabled": false})
	took := within(t, time.Second, "B applies A's kill switch", func() bool { return formatOnB("token_type", "jwt") == "Bearer" })
	t.Logf("B applied the kill switch after %s", took)
	subject := b.login("app", "gina")["access_token"].(string)
	issuedOnB++
	wantOAuthError(t, "exchange on B with the kill switch on", b.exchange("app", subject), 400, "invalid_request")

	patchOnA(map[string]any{"jwt_enabled": true, "jwt_rollout_percent": 100})
	within(t, time.Second, "B applies A's 100% rollout", func() bool { return formatOnB() == "JWT" })
	patchOnA(map[string]any{"jwt_rollout_percent": 0})
	within(t, time.Second, "B applies A's 0% rollout", func() bool { return formatOnB() == "Bearer" })

	// The CLI writes to the database directly; the instances hear it too.
	mustCLI(t, baseEnv(map[string]string{"BFF_DATABASE_URL": dbURL}), "admin", "update-client", "app", "--jwt-enabled", "false")
	within(t, time.Second, "B applies the CLI's kill switch", func() bool { return formatOnB("token_type", "jwt") == "Bearer" })
	mustCLI(t, baseEnv(map[string]string{"BFF_DATABASE_URL": dbURL}), "admin", "update-client", "app", "--jwt-enabled", "true")
	within(t, time.Second, "B applies the CLI's lifting of the kill switch", func() bool { return formatOnB("token_type", "jwt") == "JWT" })

	// Statistics: both instances issued tokens; stop B, read on A.
	for range 2 {
		a.login("app", "gina")
	}
	b.stop()
	rep := a.mustAdmin("GET", "/admin/migration", nil, http.StatusOK)
	issued := reportClient(t, rep, "app")["totals"].(map[string]any)["issued"].(map[string]any)
	if total := int(issued["total"].(float64)); total != 2+issuedOnB {
		t.Errorf("issued total %d, want %d: 2 on A and %d on B (flushed at its shutdown)", total, 2+issuedOnB, issuedOnB)
	}
	if !strings.Contains(b.out.String(), `"msg":"stopped"`) || strings.Contains(b.out.String(), "usage statistics of the last seconds are lost") {
		t.Error("B did not flush its statistics cleanly at shutdown")
	}
}

// reportClient finds a client in a decoded migration report.
func reportClient(t *testing.T, rep map[string]any, id string) map[string]any {
	t.Helper()
	for _, c := range rep["clients"].([]any) {
		if m := c.(map[string]any); m["client_id"] == id {
			return m
		}
	}
	t.Fatalf("client %q not in the report", id)
	return nil
}

// TestE2EMigrationCLI: what a server counted is in the CLI's report once
// the server has stopped (its shutdown flush), and the CLI refuses a bad
// window.
func TestE2EMigrationCLI(t *testing.T) {
	t.Parallel()
	env := baseEnv(map[string]string{"BFF_DATABASE_URL": testdb.URL(t), "BFF_USAGE_FLUSH_INTERVAL": "10m"})
	s := start(t, env)
	s.createExchangeClient("app", nil)
	s.createUser("ivy")
	subject := s.login("app", "ivy", "token_type", "bearer")["access_token"].(string)
	if r := s.exchange("app", subject); r.status != 200 {
		t.Fatalf("exchange: %d", r.status)
	}
	s.meStatus("garbage")
	s.stop()

	rep := mustCLI(t, env, "admin", "migration", "--period", "7d")
	if rep["bucket"] != "hour" || len(reportClient(t, rep, "app")["series"].([]any)) != 168 {
		t.Errorf("7d report: bucket %v", rep["bucket"])
	}
	issued := reportClient(t, rep, "app")["totals"].(map[string]any)["issued"].(map[string]any)
	byGrant := issued["by_grant"].(map[string]any)
	if issued["total"] != float64(2) || byGrant[grantExchange].(map[string]any)["jwt"] != float64(1) {
		t.Errorf("issued: %v", issued)
	}
	codes := reportClient(t, rep, "")["totals"].(map[string]any)["presented"].(map[string]any)["error_codes"].(map[string]any)
	if codes["invalid_token"] != float64(1) {
		t.Errorf("unidentified error codes: %v", codes)
	}
	if _, err := cli(t, env, "admin", "migration", "--period", "1y"); err == nil || !strings.Contains(err.Error(), "period must be one of") {
		t.Errorf("bad period: %v", err)
	}
}
