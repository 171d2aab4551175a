package main

import (
	"bytes"
	"context"

	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestE2EAdminAPI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))

		// Without the admin token, nothing (but /metrics).
		for _, h := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + e2eAdminToken}} {
			r := do(t, "GET", s.admin+"/admin/clients", nil, h)
			if r.status != 401 || r.header.Get("Content-Type") != "application/problem+json" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("admin call with %v: %d %s", h, r.status, r.header)
			}
		}
		// The service's own, and the live heap (what the memory readings of
		// bench/loadgen divide).
		if r := do(t, "GET", s.admin+"/metrics", nil, nil); r.status != 200 || !strings.Contains(string(r.body), "bff_http_requests_total") ||
			!strings.Contains(string(r.body), "\ngo_gc_heap_live_bytes ") || !strings.Contains(string(r.body), "\nprocess_resident_memory_bytes ") {
			t.Errorf("metrics: %d", r.status)
		}
		// The admin API is not on the public listener.
		if r := do(t, "GET", s.public+"/admin/clients", nil, map[string]string{"Authorization": "Bearer " + e2eAdminToken}); r.status != 404 {
			t.Errorf("admin route on the public listener: %d", r.status)
		}

		// Clients: create, read, patch, list, delete.
		c := s.mustAdmin("POST", "/admin/clients", map[string]any{"client_id": "app", "public": true, "scopes": []string{"read"}}, 201)
		if c["token_type"] != "bearer" || c["jwt_enabled"] != true || c["client_secret"] != nil {
			t.Errorf("created public client: %v", c)
		}
		p := s.mustAdmin("PATCH", "/admin/clients/app", map[string]any{"jwt_rollout_percent": 30, "token_type": "jwt"}, 200)
		if p["jwt_rollout_percent"] != float64(30) || p["token_type"] != "jwt" || p["scopes"].([]any)[0] != "read" {
			t.Errorf("patched client: %v", p)
		}
		if got := s.mustAdmin("GET", "/admin/clients/app", nil, 200); got["jwt_rollout_percent"] != float64(30) {
			t.Errorf("patch not stored: %v", got)
		}
		if list := s.mustAdmin("GET", "/admin/clients", nil, 200)["clients"].([]any); len(list) != 1 {
			t.Errorf("list: %v", list)
		}

		// Users.
		uid := s.createUser("hana")
		u := s.mustAdmin("GET", "/admin/users/"+itoa(uid), nil, 200)
		if u["username"] != "hana" || u["has_password"] != true || strings.Contains(string(mustJSON(u)), "argon2") {
			t.Errorf("user: %v", u)
		}
		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/password", map[string]any{"password": "a brand new password"}, 204)
		if r := s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"app"},
			"username": {"hana"}, "password": {"a brand new password"}}); r.status != 200 {
			t.Errorf("login with the new password: %d %s", r.status, r.body)
		}

		// Bad input: documented 4xx problems, never 5xx.
		bad := []struct {
			method, path, body string
			status             int
			code               string
		}{
			{"POST", "/admin/clients", `{`, 400, "invalid_request"},
			{"POST", "/admin/clients", ``, 400, "invalid_request"},
			{"POST", "/admin/clients", `[]`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"x","bogus":1}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"x"} {}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"has space"}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"x","token_type":"paseto"}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"x","jwt_rollout_percent":101}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"x","public":true,"grant_types":["client_credentials"]}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"x","grant_types":["implicit"]}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"x","scopes":["a b"]}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"x","name":"bad\u0000name"}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"app","public":true}`, 409, "conflict"},
			{"POST", "/admin/clients", `{"client_id":"x","jwt_rollout_percent":"fifty"}`, 400, "invalid_request"},
			{"POST", "/admin/clients", `{"client_id":"` + strings.Repeat("x", 70000) + `"}`, 413, "body_too_large"},
			{"GET", "/admin/clients/nope", ``, 404, "not_found"},
			{"GET", "/admin/clients/%00", ``, 404, "not_found"},
			{"PATCH", "/admin/clients/nope", `{}`, 404, "not_found"},
			{"PATCH", "/admin/clients/app", `{"jwt_rollout_percent":-1}`, 400, "invalid_request"},
			{"PATCH", "/admin/clients/app", `{"client_id":"renamed"}`, 400, "invalid_request"},
			{"DELETE", "/admin/clients/nope", ``, 404, "not_found"},
			{"POST", "/admin/users", `{"username":"x"}`, 400, "invalid_request"},
			{"POST", "/admin/users", `{"username":"bad name","email":"a@b.c"}`, 400, "invalid_request"},
			{"POST", "/admin/users", `{"username":"ok","email":"not-an-email"}`, 400, "invalid_request"},
			{"POST", "/admin/users", `{"username":"ok","email":"a@b.c","password":"short"}`, 400, "invalid_request"},
			{"POST", "/admin/users", `{"username":"HANA","email":"other@example.com"}`, 409, "conflict"},
			{"GET", "/admin/users/abc", ``, 400, "invalid_request"},
			{"GET", "/admin/users/-1", ``, 400, "invalid_request"},
			{"GET", "/admin/users/99999999999999999999", ``, 400, "invalid_request"},
			{"GET", "/admin/users/424242", ``, 404, "not_found"},
			{"POST", "/admin/users/424242/disable", ``, 404, "not_found"},
			{"POST", "/admin/users/" + itoa(uid) + "/password", `{"password":""}`, 400, "invalid_request"},
			{"PUT", "/admin/clients/app", `{}`, 405, "method_not_allowed"},
			{"GET", "/admin/nothing", ``, 404, "not_found"},
		}
		for _, tc := range bad {
			r := do(t, tc.method, s.admin+tc.path, strings.NewReader(tc.body), map[string]string{
				"Authorization": "Bearer " + e2eAdminToken, "Content-Type": "application/json"})
			if r.status != tc.status {
				t.Errorf("%s %s %.40q: %d, want %d: %s", tc.method, tc.path, tc.body, r.status, tc.status, r.body)
				continue
			}
			if r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, r.header.Get("Content-Type"))
			}
			if code := r.json(t)["code"]; code != tc.code {
				t.Errorf("%s %s %.40q: code %v, want %s", tc.method, tc.path, tc.body, code, tc.code)
			}
		}

		s.mustAdmin("DELETE", "/admin/clients/app", nil, 204)
		s.mustAdmin("GET", "/admin/clients/app", nil, 404)
	})
}

// TestE2EPublicBadInput drives malformed requests at every public endpoint
// of the real binary: each gets a 4xx, none a 5xx.
func TestE2EPublicBadInput(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("app", nil)
		secret := s.createBackend("rs")
		form := "application/x-www-form-urlencoded"
		huge := strings.Repeat("a", 70<<10)
		cases := []struct {
			method, path, ctype, body string
			header                    map[string]string
			status                    int
		}{
			{"POST", "/oauth2/access_token", form, "grant_type=password&grant_type=refresh_token", nil, 400},
			{"POST", "/oauth2/access_token", form, "username=" + huge, nil, 413},
			{"POST", "/oauth2/access_token", "text/plain", "grant_type=password", nil, 400},
			{"POST", "/oauth2/token", form, "grant_type=password&client_id=app&username=%00&password=%ff", nil, 400},
			{"GET", "/oauth2/token", "", "", nil, 405},
			{"POST", "/oauth2/introspect", form, "token=x", nil, 401},
			{"POST", "/oauth2/introspect", form, "token=x&client_id=app", nil, 401},
			{"POST", "/oauth2/introspect", form, "client_id=rs&client_secret=" + url.QueryEscape(secret), nil, 400},
			{"POST", "/oauth2/introspect", form, "token=" + huge, nil, 413},
			{"POST", "/oauth2/revoke", form, "token=x", nil, 401},
			{"POST", "/oauth2/revoke", form, "client_id=app&token=a&token=b", nil, 400},
			{"POST", "/oauth2/revoke", "application/json", `{"token":"x"}`, nil, 400},
			{"DELETE", "/.well-known/jwks.json", "", "", nil, 405},
			{"GET", "/oauth2/../admin/clients", "", "", nil, 404},
		}
		for _, tc := range cases {
			h := map[string]string{}
			if tc.ctype != "" {
				h["Content-Type"] = tc.ctype
			}
			r := do(t, tc.method, s.public+tc.path, strings.NewReader(tc.body), h)
			if r.status != tc.status {
				t.Errorf("%s %s %.50q: %d, want %d: %s", tc.method, tc.path, tc.body, r.status, tc.status, r.body)
			}
		}
		// Introspecting garbage as a confidential client: inactive, not an error.
		for _, tok := range []string{"x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("z", 9000), "ory_at_\x00.\xff"} {
			if in := s.introspect("rs", secret, tok); in["active"] != false || len(in) != 1 {
				t.Errorf("introspect %.20q: %v", tok, in)
			}
		}
		// Request ids: a sane incoming one is echoed, a bad one replaced.
		r := do(t, "GET", s.public+"/healthz", nil, map[string]string{"X-Request-ID": "abc-123"})
		if r.header.Get("X-Request-ID") != "abc-123" {
			t.Errorf("X-Request-ID = %q", r.header.Get("X-Request-ID"))
		}
		r = do(t, "GET", s.public+"/healthz", nil, map[string]string{"X-Request-ID": strings.Repeat("x", 500)})
		if id := r.header.Get("X-Request-ID"); len(id) > 128 || id == "" {
			t.Errorf("oversized X-Request-ID kept: %d bytes", len(id))
		}
		if strings.Contains(s.out.String(), secret) || strings.Contains(s.out.String(), e2ePassword) {
			t.Error("a secret or password reached the log")
		}
	})
}

// TestE2EReadyz: /readyz reports the store; with PostgreSQL gone it is 503
// and token requests are 503 too, not 500.
func TestE2EReadyz(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("app", nil)
		if r := s.get("/readyz"); r.status != 200 {
			t.Fatalf("readyz: %d", r.status)
		}
		if r := s.get("/healthz"); r.status != 200 {
			t.Fatalf("healthz: %d", r.status)
		}
		if b.name != "postgres" {
			return
		}
		dropDatabase(t, b.env["BFF_DATABASE_URL"])
		r := s.get("/readyz")
		if r.status != 503 || r.json(t)["code"] != "temporarily_unavailable" {
			t.Errorf("readyz without database: %d %s", r.status, r.body)
		}
		r = s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"app"},
			"username": {"x"}, "password": {"y"}})
		if r.status != 503 || r.json(t)["error"] != "temporarily_unavailable" {
			t.Errorf("token request without database: %d %s", r.status, r.body)
		}
		if r := s.get("/healthz"); r.status != 200 {
			t.Errorf("healthz without database: %d", r.status)
		}
	})
}

// dropDatabase removes the test's database under the running server.
func dropDatabase(t *testing.T, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	conn, err := pgx.Connect(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(v any) []byte {
	var buf bytes.Buffer
	_ = jsonEncode(&buf, v)
	return buf.Bytes()
}
