package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
)

type oauthErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func decodeOAuthErr(t *testing.T, rec *httptest.ResponseRecorder) oauthErr {
	t.Helper()
	var e oauthErr
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body is not JSON: %s", rec.Body)
	}
	if e.Error == "" {
		t.Fatalf("error body has no error code: %s", rec.Body)
	}
	return e
}

// TestTokenBadInput: every malformed token request gets a documented 4xx
// in the RFC 6749 shape; none gets a 5xx.
func TestTokenBadInput(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "mobile")
	env.PublicClient(t, "no-password", func(c *admin.NewClient) { c.GrantTypes = []string{bff.GrantRefreshToken} })
	_, secret := env.ConfidentialClient(t, "backend")
	env.ConfidentialClient(t, "backend-nocc", func(c *admin.NewClient) { c.GrantTypes = []string{bff.GrantPassword} })
	env.User(t, "alice")
	other := env.Token(t, testenv.PasswordForm("mobile", "alice"))

	pw := func(extra ...string) url.Values { return testenv.PasswordForm("mobile", "alice", extra...) }
	tests := []struct {
		name   string
		body   string
		ctype  string
		header []string
		status int
		code   string
	}{
		{"json body", `{"grant_type":"password"}`, "application/json", nil, 400, "invalid_request"},
		{"no content type", "grant_type=password", "-", nil, 400, "invalid_request"},
		{"empty body", "", "", nil, 400, "invalid_request"},
		{"bad form encoding", "grant_type=%zz", "", nil, 400, "invalid_request"},
		{"body over 64 KiB", "grant_type=password&username=" + strings.Repeat("a", 70<<10), "", nil, 413, "invalid_request"},
		{"duplicate grant_type", "grant_type=password&grant_type=password&client_id=mobile&username=alice&password=x", "", nil, 400, "invalid_request"},
		{"duplicate password", pw().Encode() + "&password=other", "", nil, 400, "invalid_request"},
		{"missing grant_type", "client_id=mobile", "", nil, 400, "invalid_request"},
		{"unknown grant_type", "grant_type=magic&client_id=mobile", "", nil, 400, "unsupported_grant_type"},
		{"authorization_code without the grant", "grant_type=authorization_code&client_id=mobile&code=x", "", nil, 400, "unauthorized_client"},
		{"missing username", "grant_type=password&client_id=mobile&password=x", "", nil, 400, "invalid_request"},
		{"wrong password", pw("password", "nope").Encode(), "", nil, 400, "invalid_grant"},
		{"unknown user", pw("username", "bob").Encode(), "", nil, 400, "invalid_grant"},
		{"NUL in username", pw("username", "al\x00ice").Encode(), "", nil, 400, "invalid_grant"},
		{"invalid UTF-8 username", pw("username", "\xff\xfe").Encode(), "", nil, 400, "invalid_grant"},
		{"huge password", pw("password", strings.Repeat("p", 40<<10)).Encode(), "", nil, 400, "invalid_grant"},
		{"no client", "grant_type=password&username=alice&password=x", "", nil, 401, "invalid_client"},
		{"unknown client", pw("client_id", "ghost").Encode(), "", nil, 401, "invalid_client"},
		{"NUL in client_id", pw("client_id", "mob\x00ile").Encode(), "", nil, 401, "invalid_client"},
		{"public client with a secret", pw("client_secret", "x").Encode(), "", nil, 401, "invalid_client"},
		{"client without password grant", pw("client_id", "no-password").Encode(), "", nil, 400, "unauthorized_client"},
		{"scope the client lacks", pw("scope", "admin").Encode(), "", nil, 400, "invalid_scope"},
		{"bad token_type", pw("token_type", "xml").Encode(), "", nil, 400, "invalid_request"},
		{"bad X-Token-Type", pw().Encode(), "", []string{"X-Token-Type", "paseto"}, 400, "invalid_request"},
		{"confidential wrong secret", "grant_type=client_credentials&client_id=backend&client_secret=wrong", "", nil, 401, "invalid_client"},
		{"confidential no secret", "grant_type=client_credentials&client_id=backend", "", nil, 401, "invalid_client"},
		{"basic and body secret", "grant_type=client_credentials&client_secret=" + url.QueryEscape(secret), "",
			[]string{"Authorization", basic("backend", secret)}, 400, "invalid_request"},
		{"malformed basic", "grant_type=client_credentials", "", []string{"Authorization", "Basic !!!"}, 401, "invalid_client"},
		{"public client_credentials", "grant_type=client_credentials&client_id=mobile", "", nil, 400, "unauthorized_client"},
		{"client_credentials not allowed", "grant_type=client_credentials&client_id=backend-nocc&client_secret=x", "", nil, 401, "invalid_client"},
		{"missing refresh_token", "grant_type=refresh_token&client_id=mobile", "", nil, 400, "invalid_grant"},
		{"garbage refresh_token", "grant_type=refresh_token&client_id=mobile&refresh_token=%00%ff", "", nil, 400, "invalid_grant"},
		{"access token as refresh token", "grant_type=refresh_token&client_id=mobile&refresh_token=" + url.QueryEscape(other["access_token"].(string)), "", nil, 400, "invalid_grant"},
		{"refresh token of another client", "grant_type=refresh_token&client_id=no-password&refresh_token=" + url.QueryEscape(other["refresh_token"].(string)), "", nil, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/oauth2/access_token", strings.NewReader(tt.body))
			ctype := tt.ctype
			if ctype == "" && tt.body != "" {
				ctype = "application/x-www-form-urlencoded"
			}
			if ctype != "" && ctype != "-" {
				req.Header.Set("Content-Type", ctype)
			}
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			rec := httptest.NewRecorder()
			env.Public.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if e := decodeOAuthErr(t, rec); e.Error != tt.code {
				t.Errorf("error = %q, want %q (%s)", e.Error, tt.code, e.Description)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			if tt.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// Nothing above may have cost the other client its session.
	if rec := env.Post("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"mobile"},
		"refresh_token": {other["refresh_token"].(string)}}); rec.Code != 200 {
		t.Errorf("refresh after bad requests: %d %s", rec.Code, rec.Body)
	}
}

func basic(id, secret string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return req.Header.Get("Authorization")
}

func TestTokenMethodNotAllowed(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/access_token?grant_type=password", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET token endpoint: %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

// TestStoreDown: a failing store answers 503 and loses nothing.
func TestStoreDown(t *testing.T) {
	t.Parallel()
	var failing *testenv.FailingStore
	env := testenv.New(t, testenv.Options{Wrap: func(s store.Store) store.Store {
		failing = &testenv.FailingStore{Store: s}
		return failing
	}})
	env.PublicClient(t, "mobile")
	_, secret := env.ConfidentialClient(t, "backend")
	env.User(t, "alice")
	tok := env.Token(t, testenv.PasswordForm("mobile", "alice", "token_type", "jwt"))
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"mobile"}, "refresh_token": {tok["refresh_token"].(string)}}
	introspect := func() *httptest.ResponseRecorder {
		return env.Post("/oauth2/introspect", url.Values{"token": {tok["access_token"].(string)}}, "Authorization", basic("backend", secret))
	}
	revoke := url.Values{"client_id": {"mobile"}, "token": {tok["access_token"].(string)}}

	want503 := func(name string, rec *httptest.ResponseRecorder) {
		t.Helper()
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503: %s", name, rec.Code, rec.Body)
			return
		}
		if rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", name)
		}
	}

	failing.All.Store(true)
	want503("password grant, store down", env.Post("/oauth2/access_token", testenv.PasswordForm("mobile", "alice")))
	want503("refresh, store down", env.Post("/oauth2/access_token", refresh))
	want503("introspect, store down", introspect())
	want503("revoke, store down", env.Post("/oauth2/revoke", revoke))
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	want503("readyz, store down", rec)
	failing.All.Store(false)

	failing.Writes.Store(true)
	want503("password grant, writes fail", env.Post("/oauth2/access_token", testenv.PasswordForm("mobile", "alice")))
	want503("refresh, writes fail", env.Post("/oauth2/access_token", refresh))
	want503("revoke, writes fail", env.Post("/oauth2/revoke", revoke))
	failing.Writes.Store(false)

	// Nothing was lost or half-done: the refresh token was not rotated, the
	// access token was not revoked.
	var in map[string]any
	if rec := introspect(); rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &in) != nil || in["active"] != true {
		t.Errorf("introspection after recovery: %d %s", rec.Code, rec.Body)
	}
	if rec := env.Post("/oauth2/access_token", refresh); rec.Code != 200 {
		t.Errorf("refresh after recovery: %d %s", rec.Code, rec.Body)
	}
	if rec := env.Post("/oauth2/revoke", revoke); rec.Code != 200 {
		t.Errorf("revoke after recovery: %d %s", rec.Code, rec.Body)
	}
}

// TestThrottle: failed passwords are limited per username and per address,
// whatever the password of the next attempt (on both stores).
func TestThrottle(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			testThrottle(t, pg)
		})
	}
}

func testThrottle(t *testing.T, pg bool) {
	env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg, Config: func(c *oauth.Config) {
		c.Throttle = oauth.ThrottleConfig{PerUsername: 3, PerAddress: 5, Window: time.Minute}
	}})
	env.PublicClient(t, "mobile")
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		env.User(t, u)
	}
	const home, away = "198.51.100.1:1000", "203.0.113.9:2000"
	attempt := func(from, user, password string) *httptest.ResponseRecorder {
		return env.PostFrom(from, "/oauth2/access_token", testenv.PasswordForm("mobile", user, "password", password))
	}
	wantStatus := func(rec *httptest.ResponseRecorder, status int, what string) {
		t.Helper()
		if rec.Code != status {
			t.Fatalf("%s: status %d, want %d: %s", what, rec.Code, status, rec.Body)
		}
	}

	// A successful login resets the username's count.
	wantStatus(attempt(away, "dave", "wrong"), 400, "dave wrong 1")
	wantStatus(attempt(away, "dave", "wrong"), 400, "dave wrong 2")
	wantStatus(attempt(away, "dave", testenv.Password), 200, "dave right")
	wantStatus(attempt(away, "dave", "wrong"), 400, "dave wrong after reset")
	wantStatus(attempt(away, "dave", testenv.Password), 200, "dave right again")

	for i := 0; i < 3; i++ {
		wantStatus(attempt(home, "alice", "wrong"), 400, "alice wrong")
	}
	rec := attempt(away, "alice", testenv.Password) // from elsewhere, with the right password
	wantStatus(rec, http.StatusTooManyRequests, "alice after 3 failures")
	if e := decodeOAuthErr(t, rec); e.Error != "too_many_attempts" {
		t.Errorf("error = %q", e.Error)
	}
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
	}
	// An unknown username counts like a known one.
	wantStatus(attempt(home, "nobody", "x"), 400, "unknown user")
	wantStatus(attempt(home, "bob", "wrong"), 400, "bob wrong") // the address's 5th failure
	wantStatus(attempt(home, "carol", testenv.Password), http.StatusTooManyRequests, "carol from a throttled address")
	wantStatus(attempt(away, "carol", testenv.Password), 200, "carol from elsewhere")
}

var jwtShape = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)

// TestTokenResponseGolden pins the shape of a token response of each format.
func TestTokenResponseGolden(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "mobile")
	env.User(t, "alice")
	for _, format := range []string{"bearer", "jwt"} {
		rec := env.Post("/oauth2/access_token", testenv.PasswordForm("mobile", "alice", "token_type", format))
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", format, rec.Code, rec.Body)
		}
		for h, want := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache", "Content-Type": "application/json"} {
			if got := rec.Header().Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", format, h, got, want)
			}
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		at, rt := body["access_token"].(string), body["refresh_token"].(string)
		if (format == "jwt") != jwtShape.MatchString(at) {
			t.Errorf("%s access token has the wrong shape", format)
		}
		if !strings.HasPrefix(rt, "ory_rt_") {
			t.Errorf("refresh token is not opaque")
		}
		if exp := body["expires_in"].(float64); exp < 3590 || exp > 3600 {
			t.Errorf("expires_in = %v", exp)
		}
		body["access_token"], body["refresh_token"], body["expires_in"] = "<"+format+">", "<opaque>", "<~3600>"
		out, _ := json.Marshal(body)
		testenv.Golden(t, "token_response_"+format, out)
	}
}

// TestErrorBodiesGolden pins what clients see for the common failures.
func TestErrorBodiesGolden(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "mobile")
	u := env.User(t, "alice")
	env.User(t, "dora")
	if _, err := env.Admin.DisableUser(context.Background(), u.ID, "test"); err != nil {
		t.Fatal(err)
	}
	cases := map[string]url.Values{
		"error_invalid_grant":          testenv.PasswordForm("mobile", "dora", "password", "wrong"),
		"error_account_disabled":       testenv.PasswordForm("mobile", "alice"),
		"error_invalid_client":         testenv.PasswordForm("ghost", "dora"),
		"error_unsupported_grant_type": {"grant_type": {"magic"}, "client_id": {"mobile"}},
		"error_invalid_scope":          testenv.PasswordForm("mobile", "dora", "scope", "admin"),
	}
	for name, form := range cases {
		rec := env.Post("/oauth2/access_token", form)
		testenv.Golden(t, name, append([]byte(`{"status":`+itoa(rec.Code)+`,"body":`), append(rec.Body.Bytes(), '}')...))
	}
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nope", nil))
	var p map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	delete(p, "request_id")
	out, _ := json.Marshal(p)
	testenv.Golden(t, "error_problem_not_found", out)

	rec = httptest.NewRecorder()
	env.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil))
	testenv.Golden(t, "metadata", rec.Body.Bytes())
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestNoRefreshTokenWithoutTheGrant: a client that may not use the refresh
// grant gets no refresh token, and none is stored.
func TestNoRefreshTokenWithoutTheGrant(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "kiosk", func(c *admin.NewClient) { c.GrantTypes = []string{bff.GrantPassword} })
	env.PublicClient(t, "app")
	env.User(t, "xena")
	for _, format := range []string{"bearer", "jwt"} {
		if body := env.Token(t, testenv.PasswordForm("kiosk", "xena", "token_type", format)); body["refresh_token"] != nil {
			t.Errorf("%s: a client without the refresh grant got a refresh token", format)
		}
		if body := env.Token(t, testenv.PasswordForm("app", "xena", "token_type", format)); body["refresh_token"] == nil {
			t.Errorf("%s: a client with the refresh grant got no refresh token", format)
		}
	}
}

// TestMetricLabelsBounded: attacker-chosen request methods do not create
// metric series.
func TestMetricLabelsBounded(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	for i := 0; i < 20; i++ {
		req := httptest.NewRequest("X"+strconv.Itoa(i)+strings.Repeat("Y", 1000), "/healthz", nil)
		env.Public.ServeHTTP(httptest.NewRecorder(), req)
	}
	if n := testutil.CollectAndCount(env.Metrics.HTTPRequests); n != 1 {
		t.Errorf("20 made-up methods made %d series, want 1 (method=other)", n)
	}
}
