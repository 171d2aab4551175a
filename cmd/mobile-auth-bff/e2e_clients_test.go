package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/fakeecommerce"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
)

// TestE2EDeletedClientStaysDead: deleting a client kills every token it was
// issued for good — a client created again with the same id, the same
// settings, in the same second, does not bring back the JWTs, opaque
// tokens, refresh tokens and sessions of the deleted one, on any surface
// (security review, finding 1; ADR 0019). The new client's own tokens work.
func TestE2EDeletedClientStaysDead(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		up := fakeecommerce.New(t)
		s := start(t, baseEnv(b.env, map[string]string{"BFF_ECOMMERCE_URL": up.URL, "BFF_COOKIE_SECURE": "false"}))
		appClient := map[string]any{"scopes": []string{"read", "email", "profile", "payments"}}
		s.createMobileClient("app", appClient)
		s.createUser("learner")
		backendSecret := s.createBackend("backend")

		jwtTok := s.login("app", "learner", "token_type", "jwt")
		bearerTok := s.login("app", "learner")
		jwt, opaque := jwtTok["access_token"].(string), bearerTok["access_token"].(string)
		refresh := bearerTok["refresh_token"].(string)
		// A session made from the JWT before the deletion.
		login := s.post("/oauth2/login/", appForm{"", ""}, "JWT "+jwt)
		if login.status != http.StatusNoContent {
			t.Fatalf("/oauth2/login before the deletion: %d %s", login.status, login.body)
		}
		cookie := strings.Split(login.header.Get("Set-Cookie"), ";")[0]

		for name, auth := range map[string]string{"JWT": "JWT " + jwt, "opaque": "Bearer " + opaque} {
			for route, r := range appFacing(s, auth) {
				if r.status/100 != 2 {
					t.Fatalf("%s at %s before the deletion: %d %s", name, route, r.status, r.body)
				}
			}
			if s.introspect("backend", backendSecret, strings.Fields(auth)[1])["active"] != true {
				t.Fatalf("%s not active before the deletion", name)
			}
		}

		// Deleted and created again at once: same id, same settings, the
		// same second.
		s.mustAdmin("DELETE", "/admin/clients/app", nil, http.StatusNoContent)
		s.createMobileClient("app", appClient)

		for name, auth := range map[string]string{"JWT": "JWT " + jwt, "Bearer JWT": "Bearer " + jwt, "opaque": "Bearer " + opaque} {
			got := appFacing(s, auth)
			got["/api/me"] = s.get("/api/me", "Authorization", auth)
			for route, r := range got {
				if r.status != http.StatusUnauthorized {
					t.Errorf("the deleted client's %s at %s: %d, want 401: %s", name, route, r.status, r.body)
				}
			}
			wantActions(t, "the deleted client's "+name, appFacing(s, auth), actRetry)
			if in := s.introspect("backend", backendSecret, strings.Fields(auth)[1]); in["active"] != false || len(in) != 1 {
				t.Errorf("the deleted client's %s introspects %v, want only active:false", name, in)
			}
		}
		if in := s.introspect("backend", backendSecret, refresh); in["active"] != false {
			t.Errorf("the deleted client's refresh token introspects %v", in)
		}
		r := s.postForm("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {refresh}})
		wantOAuthError(t, "refresh with the deleted client's refresh token", r, http.StatusBadRequest, "invalid_grant")
		if r := s.get("/api/me", "Cookie", cookie); r.status != http.StatusUnauthorized {
			t.Errorf("the deleted client's session at /api/me: %d %s", r.status, r.body)
		}

		// The client of that id now is a client like any other.
		fresh := s.login("app", "learner", "token_type", "jwt")["access_token"].(string)
		if _, claims := s.verifyJWT(fresh); claims["client_incarnation"] == "" || claims["client_incarnation"] == nil {
			t.Errorf("a new client's JWT carries no client_incarnation: %v", claims)
		}
		for route, r := range appFacing(s, "JWT "+fresh) {
			if r.status/100 != 2 {
				t.Errorf("the new client's JWT at %s: %d %s", route, r.status, r.body)
			}
		}
		if s.meStatus(s.login("app", "learner")["access_token"].(string)) != http.StatusOK {
			t.Error("the new client's opaque token is refused")
		}
	})
}

// clientCredentials asks for a client_credentials token with HTTP Basic.
func (s *server) clientCredentials(id, secret string) response {
	s.t.Helper()
	return s.postForm("/oauth2/access_token", url.Values{"grant_type": {"client_credentials"}},
		"Authorization", "Basic "+basicAuth(id, secret))
}

func basicAuth(id, secret string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// rotateSecret rotates the secret of client id through the admin API and
// returns the new one.
func (s *server) rotateSecret(id string, body any) string {
	s.t.Helper()
	r := s.adminCall("POST", "/admin/clients/"+id+"/secret", body)
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		s.t.Fatalf("rotate the secret of %s: %d (Cache-Control %q) %s", id, r.status, r.header.Get("Cache-Control"), r.body)
	}
	secret, _ := r.json(s.t)["client_secret"].(string)
	if secret == "" {
		s.t.Fatalf("rotation answered no secret: %s", r.body)
	}
	return secret
}

// TestE2ERotateClientSecret: a confidential client's secret is rotated
// without deleting the client: the replaced secret stops at once, or keeps
// working for the grace and then stops; the client's tokens live on; a
// public client has no secret to rotate; other instances (PostgreSQL) see
// the rotation at once.
func TestE2ERotateClientSecret(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("app", nil)
		first := s.createBackend("backend")
		r := s.clientCredentials("backend", first)
		if r.status != http.StatusOK {
			t.Fatalf("client_credentials with the first secret: %d %s", r.status, r.body)
		}
		tok := r.json(t)["access_token"].(string)

		// Without a grace the replaced secret stops at once, at the token
		// endpoint and at introspection alike; tokens stay valid.
		second := s.rotateSecret("backend", nil)
		if second == first || len(second) < 40 {
			t.Fatalf("rotated secret %q", second)
		}
		wantOAuthError(t, "the replaced secret, no grace", s.clientCredentials("backend", first), http.StatusUnauthorized, "invalid_client")
		if r := s.postForm("/oauth2/introspect", url.Values{"token": {tok}}, "Authorization", "Basic "+basicAuth("backend", first)); r.status != http.StatusUnauthorized {
			t.Errorf("introspection with the replaced secret: %d %s", r.status, r.body)
		}
		if s.clientCredentials("backend", second).status != http.StatusOK {
			t.Error("the new secret is refused")
		}
		if s.introspect("backend", second, tok)["active"] != true {
			t.Error("a rotation ended a token of the client")
		}

		// With a grace both work until it ends; then only the new one.
		const grace = 2 * time.Second
		// The grace starts at the server's clock during the call: no
		// earlier than this.
		rotated := time.Now()
		third := s.rotateSecret("backend", map[string]any{"grace": grace.String()})
		got := s.mustAdmin("GET", "/admin/clients/backend", nil, http.StatusOK)
		if _, ok := got["previous_secret_expires_at"].(string); !ok || got["client_secret"] != nil {
			t.Errorf("GET after a rotation with grace: %v", got)
		}
		for name, secret := range map[string]string{"replaced": second, "new": third} {
			if r := s.clientCredentials("backend", secret); r.status != http.StatusOK && time.Since(rotated) < grace {
				t.Errorf("the %s secret within the grace: %d %s", name, r.status, r.body)
			}
		}
		within(t, grace+3*time.Second, "the replaced secret stops when the grace ends", func() bool {
			return s.clientCredentials("backend", second).status == http.StatusUnauthorized
		})
		if time.Since(rotated) < grace {
			t.Errorf("the replaced secret stopped %s after the rotation, before the grace of %s", time.Since(rotated), grace)
		}
		if s.clientCredentials("backend", third).status != http.StatusOK {
			t.Error("the new secret stopped with the grace")
		}

		// An operator's own secret; a second rotation ends the grace of
		// the first at once (at most two secrets work).
		own := strings.Repeat("s3cr3t-", 6)
		s.rotateSecret("backend", map[string]any{"secret": own, "grace": "1h"})
		s.rotateSecret("backend", map[string]any{"grace": "1h"})
		wantOAuthError(t, "a secret two rotations old", s.clientCredentials("backend", third), http.StatusUnauthorized, "invalid_client")
		if s.clientCredentials("backend", own).status != http.StatusOK {
			t.Error("the secret of the last rotation does not work within its grace")
		}

		for name, c := range map[string]struct {
			id, body string
			status   int
		}{
			"public client":  {"app", ``, http.StatusBadRequest},
			"unknown client": {"nobody", ``, http.StatusNotFound},
			"bad grace":      {"backend", `{"grace":"an hour"}`, http.StatusBadRequest},
			"negative grace": {"backend", `{"grace":"-1h"}`, http.StatusBadRequest},
			"grace too long": {"backend", `{"grace":"169h"}`, http.StatusBadRequest},
			"short secret":   {"backend", `{"secret":"short"}`, http.StatusBadRequest},
			"unknown field":  {"backend", `{"secrett":"x"}`, http.StatusBadRequest},
			"not JSON":       {"backend", `grace=1h`, http.StatusBadRequest},
		} {
			r := do(t, "POST", s.admin+"/admin/clients/"+c.id+"/secret", strings.NewReader(c.body),
				map[string]string{"Authorization": "Bearer " + e2eAdminToken, "Content-Type": "application/json"})
			if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %d %s, want %d problem+json", name, r.status, r.body, c.status)
			}
		}
		if strings.Contains(s.out.String(), own) {
			t.Error("a client secret is in the log")
		}
	})
}

// TestCLIRotateClientSecret: the CLI rotates a secret on the database a
// running server uses, which sees it within a second; the secret comes
// from a file, never from the command line.
func TestCLIRotateClientSecret(t *testing.T) {
	t.Parallel()
	env := baseEnv(map[string]string{"BFF_DATABASE_URL": testdb.URL(t)})
	s := start(t, env)
	first := s.createBackend("backend")
	s.createMobileClient("app", nil)

	out := mustCLI(t, env, "admin", "rotate-client-secret", "backend", "--grace", "1h")
	second, _ := out["client_secret"].(string)
	if len(second) < 40 || out["previous_secret_expires_at"] == nil {
		t.Fatalf("rotate-client-secret: %v", out)
	}
	within(t, 2*time.Second, "the server takes the secret the CLI made", func() bool {
		return s.clientCredentials("backend", second).status == http.StatusOK
	})
	for name, secret := range map[string]string{"replaced (in its grace)": first, "new": second} {
		if r := s.clientCredentials("backend", secret); r.status != http.StatusOK {
			t.Errorf("the %s secret after the CLI rotation: %d %s", name, r.status, r.body)
		}
	}

	file := filepath.Join(t.TempDir(), "secret")
	own := strings.Repeat("from-a-file-", 4)
	if err := os.WriteFile(file, []byte(own+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustCLI(t, env, "admin", "rotate-client-secret", "backend", "--secret-file", file); out["client_secret"] != own || out["previous_secret_expires_at"] != nil {
		t.Errorf("rotate-client-secret --secret-file: %v", out)
	}
	// The server hears of the change (LISTEN/NOTIFY) and forgets the
	// client it cached.
	within(t, 2*time.Second, "the server takes the secret the CLI set", func() bool {
		return s.clientCredentials("backend", own).status == http.StatusOK
	})
	for name, c := range map[string]struct {
		secret string
		status int
	}{"own": {own, http.StatusOK}, "replaced without grace": {second, http.StatusUnauthorized}, "first": {first, http.StatusUnauthorized}} {
		if r := s.clientCredentials("backend", c.secret); r.status != c.status {
			t.Errorf("the %s secret: %d, want %d", name, r.status, c.status)
		}
	}
	if _, err := cli(t, env, "admin", "rotate-client-secret", "app"); err == nil {
		t.Error("rotate-client-secret of a public client succeeded")
	}
	if _, err := cli(t, env, "admin", "rotate-client-secret"); err == nil {
		t.Error("rotate-client-secret without an id succeeded")
	}
	if _, err := cli(t, env, "admin", "rotate-client-secret", "backend", "--grace", "soon"); err == nil {
		t.Error("rotate-client-secret accepted --grace soon")
	}
}
