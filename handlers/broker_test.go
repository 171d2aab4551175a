package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/internal/fakeecommerce"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/store"
)

// brokerEnv is a service with the broker pointed at a recording fake
// payment service, a mobile client with the payments scope and a user.
type brokerEnv struct {
	*testenv.Env
	t    *testing.T
	up   *fakeecommerce.Server
	user bff.User
}

// newBrokerEnv builds the environment; mutate tunes the broker's config
// (fast retries and a short timeout by default).
func newBrokerEnv(t *testing.T, pg bool, mutate ...func(*testenv.Options, *broker.Config)) *brokerEnv {
	t.Helper()
	up := fakeecommerce.New(t)
	cfg := &broker.Config{URL: up.URL, Timeout: 5 * time.Second, RetryBackoff: time.Millisecond}
	opts := testenv.Options{Postgres: pg, Cache: pg, Broker: cfg}
	for _, m := range mutate {
		m(&opts, cfg)
	}
	env := testenv.New(t, opts)
	env.PublicClient(t, "app")
	return &brokerEnv{Env: env, t: t, up: up, user: env.User(t, "payer")}
}

// token logs username in through the app client and returns an access
// token of the format, with the scopes given (all of the client's without).
func (e *brokerEnv) token(username string, format bff.TokenFormat, scopes ...string) string {
	e.t.Helper()
	extra := []string{"token_type", string(format)}
	if len(scopes) > 0 {
		extra = append(extra, "scope", strings.Join(scopes, " "))
	}
	body := e.Token(e.t, testenv.PasswordForm("app", username, extra...))
	return body["access_token"].(string)
}

// call sends a request to the public handler; header is name, value pairs.
func (e *brokerEnv) call(method, target, body string, header ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.RemoteAddr = "192.0.2.1:1234"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.Public.ServeHTTP(rec, req)
	return rec
}

// problemCode returns the code of a problem+json answer.
func problemCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (status %d, body %s)", ct, rec.Code, rec.Body)
	}
	var p struct{ Code string }
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p.Code
}

// wantProblem checks a problem answer's status and code.
func wantProblem(t *testing.T, what string, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("%s: status %d, want %d: %s", what, rec.Code, status, rec.Body)
	}
	if got := problemCode(t, rec); got != code {
		t.Fatalf("%s: code %q, want %q", what, got, code)
	}
}

// upstreamJWT verifies the JWT the payment service received against the
// served JWKS, by kid, and returns its header and claims.
func (e *brokerEnv) upstreamJWT(r fakeecommerce.Request) (jose.Header, map[string]any) {
	e.t.Helper()
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if scheme != "JWT" || tok == "" {
		e.t.Fatalf("upstream Authorization = %q, want JWT <token>", r.Header.Get("Authorization"))
	}
	rec := e.call(http.MethodGet, "/.well-known/jwks.json", "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		e.t.Fatal(err)
	}
	return testkit.VerifyJWT(e.t, tok, set, jose.ES256, jose.RS256)
}

func authz(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestBrokerForwards: each credential an app may present reaches the
// payment service as a JWT minted for the user and the ecommerce audience,
// and nothing of the caller's credentials or untrusted headers goes along.
func TestBrokerForwards(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			e := newBrokerEnv(t, pg)
			opaque := e.token("payer", bff.FormatBearer)
			jwtTok := e.token("payer", bff.FormatJWT)
			rec := e.Post("/oauth2/login", nil, "Authorization", "Bearer "+opaque)
			if rec.Code != http.StatusNoContent {
				t.Fatalf("login: %d %s", rec.Code, rec.Body)
			}
			cookie := rec.Result().Cookies()[0]

			for _, tc := range []struct {
				name   string
				header []string
				secret string
			}{
				{"opaque bearer", []string{"Authorization", "Bearer " + opaque, "Cookie", "theme=dark"}, opaque},
				{"JWT as Bearer", []string{"Authorization", "Bearer " + jwtTok}, jwtTok},
				{"JWT scheme", []string{"Authorization", "JWT " + jwtTok}, jwtTok},
				{"session cookie", []string{"Cookie", cookie.Name + "=" + cookie.Value + "; theme=dark"}, cookie.Value},
			} {
				t.Run(tc.name, func(t *testing.T) {
					before := e.up.Count()
					header := append(cloneStrings(tc.header),
						"X-Request-ID", "req-"+strings.ReplaceAll(tc.name, " ", "-"),
						"Accept", "application/json", "Accept-Language", "fr",
						"X-Forwarded-For", "203.0.113.66", "X-Forwarded-Host", "evil.example", "Forwarded", "for=203.0.113.66",
						"X-Remote-User", "admin", "X-Edx-Api-Key", "guess", "Proxy-Authorization", "Basic eDp5",
						"Connection", "X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5", "Te", "trailers", "Upgrade", "h2c")
					rec := e.call(http.MethodGet, "/api/ecommerce/api/v2/orders/EDX-100001/?expand=lines&page=2", "", header...)
					if rec.Code != http.StatusOK {
						t.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
					if !strings.Contains(rec.Body.String(), `"path":"/api/v2/orders/EDX-100001/"`) {
						t.Errorf("body is not the payment service's: %s", rec.Body)
					}
					if got := rec.Header().Get("X-Request-ID"); got != "req-"+strings.ReplaceAll(tc.name, " ", "-") {
						t.Errorf("X-Request-ID = %q", got)
					}
					if e.up.Count() != before+1 {
						t.Fatalf("the payment service got %d requests, want 1", e.up.Count()-before)
					}
					got := e.up.Last(t)
					if got.Method != "GET" || got.Path != "/api/v2/orders/EDX-100001/" || got.RawQuery != "expand=lines&page=2" {
						t.Errorf("upstream request %s %s?%s", got.Method, got.Path, got.RawQuery)
					}
					want := map[string]string{
						"Accept": "application/json", "Accept-Language": "fr",
						"X-Request-Id":    "req-" + strings.ReplaceAll(tc.name, " ", "-"),
						"X-Forwarded-For": "192.0.2.1", // the caller as the BFF saw it, not what it claimed
					}
					for k, v := range want {
						if got.Header.Get(k) != v {
							t.Errorf("upstream %s = %q, want %q", k, got.Header.Get(k), v)
						}
					}
					for _, k := range []string{"Cookie", "X-Forwarded-Host", "Forwarded", "X-Remote-User", "X-Edx-Api-Key",
						"Proxy-Authorization", "X-Hop", "Keep-Alive", "Te", "Upgrade", "Idempotency-Key"} {
						if v := got.Header.Values(k); len(v) > 0 {
							t.Errorf("upstream got %s: %q", k, v)
						}
					}
					for k, vs := range got.Header {
						for _, v := range vs {
							if strings.Contains(v, tc.secret) || strings.Contains(v, opaque) || strings.Contains(v, jwtTok) {
								t.Errorf("the caller's credential leaked upstream in %s", k)
							}
						}
					}

					h, claims := e.upstreamJWT(got)
					if h.ExtraHeaders["typ"] != "JWT" || h.Algorithm != "ES256" {
						t.Errorf("upstream JWT header: %+v", h)
					}
					for k, v := range map[string]any{"iss": testenv.Issuer, "aud": testenv.EcommerceAudience,
						"sub": fmt.Sprint(e.user.ID), "user_id": float64(e.user.ID), "preferred_username": "payer",
						"email": "payer@example.com", "version": "1.2.0"} {
						if claims[k] != v {
							t.Errorf("claim %s = %v, want %v", k, claims[k], v)
						}
					}
					if !strings.Contains(fmt.Sprint(claims["scope"]), "payments") {
						t.Errorf("scope = %v, want the caller's scopes", claims["scope"])
					}
					for _, k := range []string{"client_id", "grant_type", "administrator", "is_staff", "roles"} {
						if _, ok := claims[k]; ok {
							t.Errorf("upstream JWT has %s", k)
						}
					}
					iat, exp := claims["iat"].(float64), claims["exp"].(float64)
					if exp-iat != 300 || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
						t.Errorf("iat %v exp %v: want a fresh 5-minute JWT", iat, exp)
					}
				})
			}
		})
	}
}

func cloneStrings(s []string) []string { return append([]string(nil), s...) }

// TestBrokerJWTIsNotACredential: the JWT the payment service receives is
// worth nothing at the BFF: not at /api/me, not as a session, not at the
// broker itself.
func TestBrokerJWTIsNotACredential(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t, false)
	if rec := e.call(http.MethodGet, "/api/ecommerce/api/v2/orders/", "", authz(e.token("payer", bff.FormatJWT))...); rec.Code != 200 {
		t.Fatalf("broker: %d %s", rec.Code, rec.Body)
	}
	_, minted, _ := strings.Cut(e.up.Last(t).Header.Get("Authorization"), " ")
	for _, scheme := range []string{"Bearer ", "JWT "} {
		wantProblem(t, "/api/me", e.call(http.MethodGet, "/api/me", "", "Authorization", scheme+minted), 401, "invalid_token")
		if rec := e.Post("/oauth2/login", nil, "Authorization", scheme+minted); rec.Code != 401 || !strings.Contains(rec.Body.String(), "token_nonexistent") {
			t.Errorf("login with the upstream JWT: %d %s", rec.Code, rec.Body)
		}
		before := e.up.Count()
		wantProblem(t, "broker", e.call(http.MethodGet, "/api/ecommerce/api/v2/orders/", "", "Authorization", scheme+minted), 401, "invalid_token")
		if e.up.Count() != before {
			t.Error("the payment service was called with a rejected credential")
		}
	}
}

// TestBrokerJWTCache: one JWT serves many calls of the same user and
// scopes; other scopes, another user or a key rotation get another; a
// burst of first calls signs once.
func TestBrokerJWTCache(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t, false)
	minted := func() float64 { return testutil.ToFloat64(e.Metrics.BrokerJWTs.WithLabelValues("minted")) }
	jwtOf := func(tok string) string {
		t.Helper()
		rec := e.call(http.MethodGet, "/api/ecommerce/api/v2/orders/", "", authz(tok)...)
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return e.up.Last(t).Header.Get("Authorization")
	}
	all := e.token("payer", bff.FormatBearer)
	first := jwtOf(all)
	for range 5 {
		if jwtOf(all) != first {
			t.Fatal("the cached JWT was not reused")
		}
	}
	// Another token of the same user with the same scopes shares it.
	if jwtOf(e.token("payer", bff.FormatJWT)) != first {
		t.Error("the same user and scopes through another token got another JWT")
	}
	if minted() != 1 {
		t.Errorf("%v JWTs minted for one user and scope set, want 1", minted())
	}
	// The scopes are part of the key, and of the claims.
	narrow := jwtOf(e.token("payer", bff.FormatBearer, "payments"))
	if narrow == first {
		t.Fatal("another scope set got the same JWT")
	}
	if _, claims := e.upstreamJWT(e.up.Last(t)); claims["scope"] != "payments" {
		t.Errorf("scope = %v, want payments", claims["scope"])
	}
	e.User(t, "other")
	if jwtOf(e.token("other", bff.FormatBearer)) == first {
		t.Error("another user got the same JWT")
	}
	if minted() != 3 {
		t.Errorf("%v JWTs minted, want 3", minted())
	}

	// A burst of first calls for a new user signs once.
	e.User(t, "burst")
	burst := e.token("burst", bff.FormatBearer)
	before := minted()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			rec := e.call(http.MethodGet, "/api/ecommerce/api/v2/orders/", "", authz(burst)...)
			if rec.Code != 200 {
				t.Errorf("status %d", rec.Code)
			}
		})
	}
	wg.Wait()
	if n := minted() - before; n != 1 {
		t.Errorf("16 concurrent first calls minted %v JWTs, want 1", n)
	}

	// A rotation takes effect at once: the next call gets a JWT of the new key.
	if err := e.Keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	rotated := jwtOf(all)
	if rotated == first {
		t.Error("a JWT of the retired key was still used after the rotation")
	}
	if h, _ := e.upstreamJWT(e.up.Last(t)); h.KeyID != e.Keys.CurrentKID() {
		t.Errorf("kid %s, want the new current key %s", h.KeyID, e.Keys.CurrentKID())
	}
}

// TestBrokerAllowlist: only allowlisted routes reach the payment service;
// everything else is a 404 after the credential check, traversal and
// escapes included.
func TestBrokerAllowlist(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t, false)
	tok := e.token("payer", bff.FormatBearer)
	key := []string{"Idempotency-Key", "key-allowlist-0001"}
	allowed := []struct{ method, path string }{
		{"GET", "/api/v2/orders/"},
		{"GET", "/api/v2/orders/EDX-1/"},
		{"GET", "/api/v2/baskets/42/"},
		{"POST", "/api/v2/baskets/"},
		{"POST", "/api/v2/checkout/"},
		{"POST", "/api/v2/payment/cybersource/"},
	}
	for i, a := range allowed {
		h := append(authz(tok), "Idempotency-Key", fmt.Sprintf("key-allowlist-%04d", i+1))
		if rec := e.call(a.method, "/api/ecommerce"+a.path, "{}", h...); rec.Code != 200 && rec.Code != 201 {
			t.Errorf("%s %s: %d %s", a.method, a.path, rec.Code, rec.Body)
		}
	}
	if e.up.Count() != len(allowed) {
		t.Fatalf("the payment service got %d requests, want %d", e.up.Count(), len(allowed))
	}
	denied := []struct{ method, target string }{
		{"GET", "/api/ecommerce/api/v2/orders"},
		{"GET", "/api/ecommerce/api/v2/orders/EDX-1"},
		{"GET", "/api/ecommerce/api/v2/orders/EDX-1/lines/"},
		{"DELETE", "/api/ecommerce/api/v2/orders/EDX-1/"},
		{"PUT", "/api/ecommerce/api/v2/baskets/42/"},
		{"PATCH", "/api/ecommerce/api/v2/baskets/42/"},
		{"POST", "/api/ecommerce/api/v2/orders/"},
		{"HEAD", "/api/ecommerce/api/v2/orders/"},
		{"OPTIONS", "/api/ecommerce/api/v2/orders/"},
		{"TRACE", "/api/ecommerce/api/v2/orders/"},
		{"GET", "/api/ecommerce/"},
		{"GET", "/api/ecommerce/api/v2/users/"},
		{"GET", "/api/ecommerce/api/v2/orders/../../../admin/"},
		{"GET", "/api/ecommerce/api/v2/baskets/../orders/"},
		{"GET", "/api/ecommerce/api/v2/orders/./"},
		{"GET", "/api/ecommerce/api/v2/orders/../"},
		{"GET", "/api/ecommerce/api/v2/orders//"},
		{"GET", "/api/ecommerce//api/v2/orders/"},
		{"GET", "/api/ecommerce/api/v2/orders/%2e%2e/"},
		{"GET", "/api/ecommerce/api/v2/orders/..%2f..%2fadmin/"},
		{"GET", "/api/ecommerce/api/v2/orders/a%2Fb/"},
		{"GET", "/api/ecommerce/api/v2/orders/%45DX-1/"},
		{"GET", "/api/ecommerce/api/v2/orders/a%5cb/"},
		{"GET", "/api/ecommerce/api%2fv2/orders/"},
	}
	for _, d := range denied {
		rec := e.call(d.method, d.target, "{}", append(authz(tok), key...)...)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404", d.method, d.target, rec.Code)
			continue
		}
		if d.method != "HEAD" && problemCode(t, rec) != "not_found" {
			t.Errorf("%s %s: %s", d.method, d.target, rec.Body)
		}
	}
	if e.up.Count() != len(allowed) {
		t.Errorf("a denied route reached the payment service (%d requests)", e.up.Count()-len(allowed))
	}
	// The credential is checked before the route: a stranger learns nothing.
	wantProblem(t, "no credential, denied route", e.call("GET", "/api/ecommerce/api/v2/users/", ""), 401, "invalid_token")

	// A configured allowlist replaces the default.
	custom := newBrokerEnv(t, false, func(_ *testenv.Options, c *broker.Config) {
		c.Routes = broker.MustParseRoutes("GET /api/v3/receipts/{id}, DELETE /api/v2/baskets/{id}/")
	})
	ctok := custom.token("payer", bff.FormatBearer)
	if rec := custom.call("GET", "/api/ecommerce/api/v3/receipts/7?format=pdf", "", authz(ctok)...); rec.Code != 200 {
		t.Errorf("custom route: %d %s", rec.Code, rec.Body)
	}
	if rec := custom.call("DELETE", "/api/ecommerce/api/v2/baskets/7/", "", authz(ctok)...); rec.Code != 200 {
		t.Errorf("custom DELETE without a key: %d %s", rec.Code, rec.Body)
	}
	if rec := custom.call("GET", "/api/ecommerce/api/v2/orders/", "", authz(ctok)...); rec.Code != 404 {
		t.Errorf("default route under a custom allowlist: %d", rec.Code)
	}
}

// TestBrokerRefuses: who may not call never reaches the payment service.
func TestBrokerRefuses(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			e := newBrokerEnv(t, pg)
			ctx := context.Background()
			noPayments := e.token("payer", bff.FormatJWT, "read", "email")
			_, secret := e.ConfidentialClient(t, "worker", func(c *admin.NewClient) { c.Scopes = []string{"read", "payments"} })
			rec := e.Post("/oauth2/access_token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"worker"}, "client_secret": {secret}})
			var cc map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &cc)
			machine, _ := cc["access_token"].(string)
			if machine == "" {
				t.Fatalf("client credentials: %s", rec.Body)
			}

			e.User(t, "gone")
			goneJWT := e.token("gone", bff.FormatJWT)
			goneOpaque := e.token("gone", bff.FormatBearer)
			gone, err := e.Store.GetUserByLogin(ctx, "gone")
			if err != nil {
				t.Fatal(err)
			}
			// Warm the JWT cache, then disable the user.
			if rec := e.call("GET", "/api/ecommerce/api/v2/orders/", "", authz(goneJWT)...); rec.Code != 200 {
				t.Fatalf("before disabling: %d", rec.Code)
			}
			if _, err := e.Admin.DisableUser(ctx, gone.ID, "test"); err != nil {
				t.Fatal(err)
			}
			before := e.up.Count()

			key := []string{"Idempotency-Key", "refused-key-0001"}
			for _, tc := range []struct {
				name, method, path string
				header             []string
				status             int
				code               string
			}{
				{"no credential", "GET", "/api/v2/orders/", nil, 401, "invalid_token"},
				{"garbage token", "GET", "/api/v2/orders/", authz("ory_at_nope.nope"), 401, "invalid_token"},
				{"basic auth", "GET", "/api/v2/orders/", []string{"Authorization", "Basic YTpi"}, 401, "invalid_token"},
				{"disabled user, JWT", "GET", "/api/v2/orders/", authz(goneJWT), 401, "account_disabled"},
				{"disabled user, POST", "POST", "/api/v2/baskets/", append(authz(goneJWT), key...), 401, "account_disabled"},
				{"disabled user, opaque", "GET", "/api/v2/orders/", authz(goneOpaque), 401, "account_disabled"},
				{"no payments scope", "GET", "/api/v2/orders/", authz(noPayments), 403, "insufficient_scope"},
				{"no payments scope, POST", "POST", "/api/v2/baskets/", append(authz(noPayments), key...), 403, "insufficient_scope"},
				{"client credentials", "GET", "/api/v2/orders/", authz(machine), 403, "non_supported_token"},
			} {
				rec := e.call(tc.method, "/api/ecommerce"+tc.path, "{}", tc.header...)
				wantProblem(t, tc.name, rec, tc.status, tc.code)
				if tc.code == "insufficient_scope" && !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("%s: WWW-Authenticate = %q", tc.name, rec.Header().Get("WWW-Authenticate"))
				}
			}
			if n := e.up.Count() - before; n != 0 {
				t.Errorf("refused calls reached the payment service %d times", n)
			}
		})
	}
}

// TestBrokerNotConfigured: without BFF_ECOMMERCE_URL the routes exist and
// say why they cannot work.
func TestBrokerNotConfigured(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, httptest.NewRequest("GET", "/api/ecommerce/api/v2/orders/", nil))
	wantProblem(t, "not configured", rec, 503, "broker_not_configured")
}

// postKeyed POSTs a body with an idempotency key.
func (e *brokerEnv) postKeyed(tok, path, key, body string) *httptest.ResponseRecorder {
	return e.call("POST", "/api/ecommerce"+path, body, "Authorization", "Bearer "+tok, "Idempotency-Key", key,
		"Content-Type", "application/json")
}

// TestBrokerIdempotency: the first answer for a key is replayed for the
// same request, refused for another, and concurrent duplicates never reach
// the payment service twice.
func TestBrokerIdempotency(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			e := newBrokerEnv(t, pg)
			tok := e.token("payer", bff.FormatBearer)
			const basket = `{"products":[{"sku":"8CF08E5"}]}`

			wantProblem(t, "no key", e.call("POST", "/api/ecommerce/api/v2/baskets/", basket, authz(tok)...), 400, "idempotency_key_missing")
			for _, bad := range []string{"short", strings.Repeat("k", 256), "has space inside", "comma,inside-key", `"quoted"inner"`} {
				wantProblem(t, "key "+bad, e.postKeyed(tok, "/api/v2/baskets/", bad, basket), 400, "invalid_idempotency_key")
			}
			twice := e.call("POST", "/api/ecommerce/api/v2/baskets/", basket, append(authz(tok),
				"Idempotency-Key", "first-key-0001", "Idempotency-Key", "other-key-0002")...)
			wantProblem(t, "two keys", twice, 400, "invalid_idempotency_key")
			if e.up.Count() != 0 {
				t.Fatalf("refused POSTs reached the payment service")
			}

			first := e.postKeyed(tok, "/api/v2/baskets/", "3f0a5b8e-basket-1", basket)
			if first.Code != 201 || first.Header().Get("Idempotent-Replayed") != "" {
				t.Fatalf("first: %d %v %s", first.Code, first.Header(), first.Body)
			}
			got := e.up.Last(t)
			if got.Header.Get("Idempotency-Key") != "3f0a5b8e-basket-1" || string(got.Body) != basket ||
				got.Header.Get("Content-Type") != "application/json" {
				t.Errorf("upstream got key %q body %q", got.Header.Get("Idempotency-Key"), got.Body)
			}
			// The quoted form of the IETF draft is the same key.
			for _, k := range []string{"3f0a5b8e-basket-1", `"3f0a5b8e-basket-1"`} {
				again := e.postKeyed(tok, "/api/v2/baskets/", k, basket)
				if again.Code != 201 || again.Body.String() != first.Body.String() || again.Header().Get("Idempotent-Replayed") != "true" {
					t.Errorf("replay with %s: %d %q %s", k, again.Code, again.Header().Get("Idempotent-Replayed"), again.Body)
				}
				if again.Header().Get("Location") != first.Header().Get("Location") || again.Header().Get("Content-Type") != "application/json" {
					t.Errorf("replay headers %v, want those of the first answer %v", again.Header(), first.Header())
				}
			}
			if e.up.Count() != 1 {
				t.Errorf("the payment service got %d requests for one key, want 1", e.up.Count())
			}
			for _, tc := range []struct{ name, path, body string }{
				{"other body", "/api/v2/baskets/", `{"products":[{"sku":"OTHER"}]}`},
				{"other route", "/api/v2/checkout/", basket},
			} {
				wantProblem(t, tc.name, e.postKeyed(tok, tc.path, "3f0a5b8e-basket-1", tc.body), 422, "idempotency_key_reused")
			}
			// Keys are per user.
			e.User(t, "someone")
			if rec := e.postKeyed(e.token("someone", bff.FormatJWT), "/api/v2/baskets/", "3f0a5b8e-basket-1", basket); rec.Code != 201 ||
				rec.Header().Get("Idempotent-Replayed") != "" || rec.Body.String() == first.Body.String() {
				t.Errorf("another user's key: %d %s", rec.Code, rec.Body)
			}
			if e.up.Count() != 2 {
				t.Errorf("the payment service got %d requests, want 2", e.up.Count())
			}

			// Concurrent duplicates while the first is in flight.
			release := make(chan struct{})
			arrived := make(chan struct{}, 16)
			e.up.Handle(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				<-release
				fakeecommerce.JSON(201, map[string]string{"number": "EDX-SLOW"})(w, r)
			})
			const n = 8
			results := make(chan *httptest.ResponseRecorder, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() { results <- e.postKeyed(tok, "/api/v2/checkout/", "checkout-key-0001", basket) })
			}
			<-arrived
			// While it is in flight: another body is still refused as such.
			wantProblem(t, "other body in flight", e.postKeyed(tok, "/api/v2/checkout/", "checkout-key-0001", "{}"), 422, "idempotency_key_reused")
			codes := map[int]int{}
			for range n - 1 {
				rec := <-results
				codes[rec.Code]++
				if rec.Code == 409 {
					if problemCode(t, rec) != "idempotency_key_in_use" || rec.Header().Get("Retry-After") != "1" {
						t.Errorf("in flight: %s Retry-After %q", rec.Body, rec.Header().Get("Retry-After"))
					}
				}
			}
			close(release)
			wg.Wait()
			close(results)
			for rec := range results {
				codes[rec.Code]++
			}
			if codes[201] != 1 || codes[409] != n-1 {
				t.Errorf("%d concurrent requests with one key: %v, want one 201 and %d 409", n, codes, n-1)
			}
			if e.up.Count() != 3 {
				t.Errorf("the payment service got %d requests, want 3", e.up.Count())
			}
			after := e.postKeyed(tok, "/api/v2/checkout/", "checkout-key-0001", basket)
			if after.Code != 201 || !strings.Contains(after.Body.String(), "EDX-SLOW") || after.Header().Get("Idempotent-Replayed") != "true" {
				t.Errorf("after the first finished: %d %s", after.Code, after.Body)
			}
		})
	}
}

// TestBrokerIdempotencyUnknownOutcome: when the payment service may have
// acted without the answer being kept, the request is never sent again.
func TestBrokerIdempotencyUnknownOutcome(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			var failing *testenv.FailingStore
			e := newBrokerEnv(t, pg, func(o *testenv.Options, c *broker.Config) {
				c.Timeout = 300 * time.Millisecond
				c.MaxBodyBytes = 1 << 10
				o.Wrap = func(s store.Store) store.Store { failing = &testenv.FailingStore{Store: s}; return failing }
			})
			tok := e.token("payer", bff.FormatBearer)
			ctx := context.Background()

			// Timeout: 504, then 409 unavailable, and one request upstream.
			e.up.Handle(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
				}
			})
			wantProblem(t, "slow", e.postKeyed(tok, "/api/v2/checkout/", "timeout-key-01", "{}"), 504, "upstream_timeout")
			wantProblem(t, "retry after a timeout", e.postKeyed(tok, "/api/v2/checkout/", "timeout-key-01", "{}"), 409, "idempotency_response_unavailable")
			if e.up.Count() != 1 {
				t.Fatalf("the payment service got %d requests, want 1", e.up.Count())
			}

			// Connection broken after the request was sent: 502, not retried.
			e.up.Handle(func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
			})
			wantProblem(t, "reset", e.postKeyed(tok, "/api/v2/checkout/", "reset-key-0001", "{}"), 502, "upstream_error")
			if e.up.Count() != 2 {
				t.Fatalf("a POST whose connection broke was sent %d times, want once", e.up.Count()-1)
			}
			wantProblem(t, "retry after a reset", e.postKeyed(tok, "/api/v2/checkout/", "reset-key-0001", "{}"), 409, "idempotency_response_unavailable")

			// An answer too large to keep is relayed once, not replayed.
			big := strings.Repeat("x", 3<<10)
			e.up.Handle(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201); io.WriteString(w, big) })
			if rec := e.postKeyed(tok, "/api/v2/checkout/", "big-answer-001", "{}"); rec.Code != 201 || rec.Body.String() != big {
				t.Fatalf("large answer: %d, %d bytes", rec.Code, rec.Body.Len())
			}
			wantProblem(t, "replay of a large answer", e.postKeyed(tok, "/api/v2/checkout/", "big-answer-001", "{}"), 409, "idempotency_response_unavailable")

			// 503 and 429 say nothing was done: the key is free again.
			for _, status := range []int{503, 429} {
				e.up.Handle(fakeecommerce.JSON(status, map[string]string{"detail": "busy"}))
				key := fmt.Sprintf("busy-key-%d", status)
				if rec := e.postKeyed(tok, "/api/v2/checkout/", key, "{}"); rec.Code != status || !strings.Contains(rec.Body.String(), "busy") {
					t.Fatalf("%d: relayed %d %s", status, rec.Code, rec.Body)
				}
				e.up.Handle(fakeecommerce.Handler(0).ServeHTTP)
				if rec := e.postKeyed(tok, "/api/v2/checkout/", key, "{}"); rec.Code != 201 || rec.Header().Get("Idempotent-Replayed") != "" {
					t.Errorf("after a %d the key was not free: %d %s", status, rec.Code, rec.Body)
				}
			}

			// A claim left behind by an instance that died: in flight while
			// it could still be running, then never resent.
			now := time.Now()
			body := []byte("{}")
			for _, tc := range []struct {
				key  string
				age  time.Duration
				code string
			}{
				{"crashed-fresh-1", time.Second, "idempotency_key_in_use"},
				{"crashed-stale-1", time.Hour, "idempotency_response_unavailable"},
			} {
				fp := fingerprintOf("POST", "/api/v2/checkout/", "", body)
				if _, won, err := e.Store.ClaimIdempotencyKey(ctx, bff.IdempotencyRecord{UserID: e.user.ID, Key: tc.key, ClaimID: "dead",
					Fingerprint: fp, State: bff.IdempotencyInFlight, CreatedAt: now.Add(-tc.age), ExpiresAt: now.Add(time.Hour)}); err != nil || !won {
					t.Fatalf("claim: %v %v", won, err)
				}
				before := e.up.Count()
				wantProblem(t, tc.key, e.postKeyed(tok, "/api/v2/checkout/", tc.key, string(body)), 409, tc.code)
				if e.up.Count() != before {
					t.Errorf("%s: the payment service was called", tc.key)
				}
			}

			// The store cannot claim: 503, and nothing is sent.
			failing.Writes.Store(true)
			before := e.up.Count()
			wantProblem(t, "store down", e.postKeyed(tok, "/api/v2/checkout/", "store-down-001", "{}"), 503, "temporarily_unavailable")
			failing.Writes.Store(false)
			if e.up.Count() != before {
				t.Error("a POST whose key could not be claimed reached the payment service")
			}
			// The store fails while the call is under way: the app still
			// gets the answer, and the key stays in flight (never resent).
			e.up.Handle(func(w http.ResponseWriter, r *http.Request) {
				failing.Writes.Store(true)
				fakeecommerce.JSON(201, map[string]string{"number": "EDX-LOST"})(w, r)
			})
			if rec := e.postKeyed(tok, "/api/v2/checkout/", "store-lost-001", "{}"); rec.Code != 201 || !strings.Contains(rec.Body.String(), "EDX-LOST") {
				t.Errorf("answer while the store fails: %d %s", rec.Code, rec.Body)
			}
			failing.Writes.Store(false)
			e.up.Handle(fakeecommerce.Handler(0).ServeHTTP)
			before = e.up.Count()
			wantProblem(t, "after the store failed", e.postKeyed(tok, "/api/v2/checkout/", "store-lost-001", "{}"), 409, "idempotency_key_in_use")
			if e.up.Count() != before {
				t.Error("a POST whose outcome was not stored was sent again")
			}
		})
	}
}

// fingerprintOf mirrors the broker's request fingerprint, for tests that
// plant records.
func fingerprintOf(method, path, query string, body []byte) string {
	return broker.Fingerprint(method, path, query, body)
}

// TestBrokerUpstreamFailures: slow, down and failing payment services get
// the documented answers, with retries only where they are safe.
func TestBrokerUpstreamFailures(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t, false, func(_ *testenv.Options, c *broker.Config) {
		c.Timeout = 300 * time.Millisecond
		c.BreakerFailures = 1000 // this test is not about the breaker
	})
	tok := e.token("payer", bff.FormatBearer)
	get := func() *httptest.ResponseRecorder {
		return e.call("GET", "/api/ecommerce/api/v2/orders/", "", authz(tok)...)
	}

	// 503 twice, then an answer: the GET is retried and succeeds.
	var mu sync.Mutex
	fails := 2
	e.up.Handle(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			w.WriteHeader(503)
			return
		}
		fakeecommerce.Handler(0).ServeHTTP(w, r)
	})
	before := e.up.Count()
	if rec := get(); rec.Code != 200 {
		t.Errorf("GET after two 503s: %d %s", rec.Code, rec.Body)
	}
	if n := e.up.Count() - before; n != 3 {
		t.Errorf("GET took %d attempts, want 3", n)
	}

	// Always 503: relayed as it is after 3 attempts.
	e.up.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(503)
		io.WriteString(w, "maintenance")
	})
	before = e.up.Count()
	if rec := get(); rec.Code != 503 || rec.Body.String() != "maintenance" || rec.Header().Get("Retry-After") != "7" {
		t.Errorf("persistent 503: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if n := e.up.Count() - before; n != 3 {
		t.Errorf("GET took %d attempts, want 3", n)
	}
	// A keyed POST is retried on 503 too (it was certainly not acted upon).
	before = e.up.Count()
	if rec := e.postKeyed(tok, "/api/v2/checkout/", "retry-503-key", "{}"); rec.Code != 503 {
		t.Errorf("POST on 503: %d", rec.Code)
	}
	if n := e.up.Count() - before; n != 3 {
		t.Errorf("POST on 503 took %d attempts, want 3", n)
	}

	// 500 and other answers are relayed unchanged, never retried.
	e.up.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Set-Cookie", "sessionid=upstream; Path=/")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("X-Upstream-Secret", "internal")
		w.Header().Set("Cache-Control", "private, max-age=10")
		w.WriteHeader(500)
		io.WriteString(w, "boom")
	})
	before = e.up.Count()
	rec := get()
	if rec.Code != 500 || rec.Body.String() != "boom" || rec.Header().Get("Content-Type") != "text/plain" ||
		rec.Header().Get("Cache-Control") != "private, max-age=10" {
		t.Errorf("500: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	for _, h := range []string{"Set-Cookie", "Access-Control-Allow-Origin", "X-Upstream-Secret"} {
		if rec.Header().Get(h) != "" {
			t.Errorf("the payment service's %s reached the app", h)
		}
	}
	if n := e.up.Count() - before; n != 1 {
		t.Errorf("a 500 was retried: %d attempts", n)
	}

	// Its 401 is about the broker's JWT, not the app's token.
	e.up.Handle(fakeecommerce.JSON(401, map[string]string{"detail": "bad token"}))
	wantProblem(t, "upstream 401", get(), 502, "upstream_error")

	// A slow payment service: 504 within the timeout.
	e.up.Handle(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(20 * time.Second):
		case <-r.Context().Done():
		}
	})
	start := time.Now()
	wantProblem(t, "slow GET", get(), 504, "upstream_timeout")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the call waited for the payment service (%s) instead of timing out", d)
	}

	// Broken connections: a GET is retried, a POST not.
	e.up.Handle(func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
	before = e.up.Count()
	wantProblem(t, "reset GET", get(), 502, "upstream_error")
	if n := e.up.Count() - before; n != 3 {
		t.Errorf("reset GET took %d attempts, want 3", n)
	}

	// Down: nothing listens. Every attempt fails before sending.
	down := newBrokerEnv(t, false, func(_ *testenv.Options, c *broker.Config) {
		c.URL = closedURL(t)
		c.BreakerFailures = 1000
	})
	dtok := down.token("payer", bff.FormatBearer)
	rec = down.call("GET", "/api/ecommerce/api/v2/orders/", "", authz(dtok)...)
	wantProblem(t, "down", rec, 503, "upstream_unavailable")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if n := testutil.ToFloat64(down.Metrics.BrokerUpstream.WithLabelValues("GET /api/v2/orders/", "error")); n != 3 {
		t.Errorf("%v attempts on a payment service that is down, want 3", n)
	}
	// A keyed POST that never left is retried too, and frees its key.
	wantProblem(t, "down POST", down.postKeyed(dtok, "/api/v2/checkout/", "down-key-0001", "{}"), 503, "upstream_unavailable")
	var claimed bool
	_, claimed, _ = down.Store.ClaimIdempotencyKey(context.Background(), bff.IdempotencyRecord{UserID: down.user.ID, Key: "down-key-0001",
		ClaimID: "probe", Fingerprint: "x", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	if !claimed {
		t.Error("a POST that never reached the payment service kept its key")
	}
}

// closedURL is the address of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestBrokerCircuitBreaker: repeated failures open the circuit (503 with
// Retry-After, the payment service left alone); after the cooldown one
// probe closes it again.
func TestBrokerCircuitBreaker(t *testing.T) {
	t.Parallel()
	const cooldown = 400 * time.Millisecond
	e := newBrokerEnv(t, false, func(_ *testenv.Options, c *broker.Config) {
		c.BreakerFailures = 3
		c.BreakerCooldown = cooldown
		c.MaxAttempts = 1
	})
	tok := e.token("payer", bff.FormatBearer)
	get := func() *httptest.ResponseRecorder {
		return e.call("GET", "/api/ecommerce/api/v2/orders/", "", authz(tok)...)
	}
	state := func() float64 { return testutil.ToFloat64(e.Metrics.BrokerCircuitState) }

	e.up.Handle(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) })
	for i := range 3 {
		if rec := get(); rec.Code != 502 {
			t.Fatalf("failure %d: %d", i, rec.Code)
		}
	}
	if state() != 2 {
		t.Fatalf("circuit state %v after 3 failures, want 2 (open)", state())
	}
	before := e.up.Count()
	rec := get()
	wantProblem(t, "open circuit", rec, 503, "upstream_unavailable")
	if ra := rec.Header().Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want the rest of the cooldown, rounded up to 1", ra)
	}
	wantProblem(t, "open circuit, POST", e.postKeyed(tok, "/api/v2/checkout/", "open-circuit-1", "{}"), 503, "upstream_unavailable")
	if e.up.Count() != before {
		t.Errorf("the open circuit let %d requests through", e.up.Count()-before)
	}

	// After the cooldown the payment service is back: the probe closes it.
	e.up.Handle(fakeecommerce.Handler(0).ServeHTTP)
	time.Sleep(cooldown + 100*time.Millisecond)
	for i := range 3 {
		if rec := get(); rec.Code != 200 {
			t.Fatalf("after the cooldown, call %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if state() != 0 {
		t.Errorf("circuit state %v, want 0 (closed)", state())
	}
	// The key refused while open was never used: it works now.
	if rec := e.postKeyed(tok, "/api/v2/checkout/", "open-circuit-1", "{}"); rec.Code != 201 {
		t.Errorf("key refused while open: %d %s", rec.Code, rec.Body)
	}
}

// TestBrokerBodyLimit: a body above the cap is refused before anything
// else happens.
func TestBrokerBodyLimit(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t, false)
	tok := e.token("payer", bff.FormatBearer)
	big := strings.Repeat("x", broker.DefaultMaxBodyBytes+1)
	wantProblem(t, "large body", e.postKeyed(tok, "/api/v2/baskets/", "large-body-key", big), 413, "body_too_large")
	// Without Content-Length (chunked), the cap holds as it is read.
	req := httptest.NewRequest("POST", "/api/ecommerce/api/v2/baskets/", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Idempotency-Key", "large-body-key-2")
	rec := httptest.NewRecorder()
	e.Public.ServeHTTP(rec, req)
	wantProblem(t, "large chunked body", rec, 413, "body_too_large")
	if e.up.Count() != 0 {
		t.Error("a body above the cap reached the payment service")
	}
	ok := strings.Repeat("x", broker.DefaultMaxBodyBytes)
	if rec := e.postKeyed(tok, "/api/v2/baskets/", "large-body-key-3", ok); rec.Code != 201 || len(e.up.Last(t).Body) != len(ok) {
		t.Errorf("a body at the cap: %d", rec.Code)
	}
}

// TestBrokerLogAndMetrics: one log line per request, with the route
// pattern and the upstream latency and no token; metrics per route and
// status.
func TestBrokerLogAndMetrics(t *testing.T) {
	t.Parallel()
	var logs testkit.Buffer
	e := newBrokerEnv(t, false, func(o *testenv.Options, _ *broker.Config) { o.Log = &logs })
	tok := e.token("payer", bff.FormatBearer)
	for range 3 {
		if rec := e.call("GET", "/api/ecommerce/api/v2/orders/EDX-1/", "", append(authz(tok), "X-Request-ID", "log-test-get")...); rec.Code != 200 {
			t.Fatal(rec.Code)
		}
	}
	e.postKeyed(tok, "/api/v2/baskets/", "log-test-key-1", "{}")
	e.postKeyed(tok, "/api/v2/baskets/", "log-test-key-1", "{}")
	e.call("GET", "/api/ecommerce/api/v2/users/", "", authz(tok)...)

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" && m["route"] == "/api/ecommerce/*" {
			lines = append(lines, m)
		}
		if strings.Contains(l, tok) || strings.Contains(l, "JWT ey") {
			t.Errorf("a token in the log: %s", l)
		}
	}
	if len(lines) != 6 {
		t.Fatalf("%d request lines for 6 broker requests", len(lines))
	}
	first := lines[0]
	if first["request_id"] != "log-test-get" || first["broker_route"] != "GET /api/v2/orders/{number}/" ||
		first["upstream_status"] != float64(200) || first["upstream_attempts"] != float64(1) {
		t.Errorf("log line: %v", first)
	}
	if ms, ok := first["upstream_ms"].(float64); !ok || ms <= 0 || ms > first["latency_ms"].(float64) {
		t.Errorf("upstream_ms = %v (latency_ms %v)", first["upstream_ms"], first["latency_ms"])
	}
	if lines[4]["idempotency"] != "replayed" || lines[3]["idempotency"] != "claimed" || lines[5]["broker_route"] != "unmatched" {
		t.Errorf("idempotency / unmatched lines: %v / %v / %v", lines[3], lines[4], lines[5])
	}

	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"GET /api/v2/orders/{number}/", "200", "upstream"}, 3},
		{[]string{"POST /api/v2/baskets/", "201", "upstream"}, 1},
		{[]string{"POST /api/v2/baskets/", "201", "replay"}, 1},
		{[]string{"unmatched", "404", "broker"}, 1},
	} {
		if got := testutil.ToFloat64(e.Metrics.BrokerRequests.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("bff_broker_requests_total%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(e.Metrics.BrokerUpstream.WithLabelValues("GET /api/v2/orders/{number}/", "200")); got != 3 {
		t.Errorf("upstream 200s = %v, want 3", got)
	}
	if n := testutil.CollectAndCount(e.Metrics.BrokerUpstreamDuration); n != 2 {
		t.Errorf("%d latency histograms, want one per route called (2)", n)
	}
}

// TestBrokerErrorBodiesGolden pins the problem bodies and the headers an
// app branches on for the broker's own answers.
func TestBrokerErrorBodiesGolden(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t, false, func(_ *testenv.Options, c *broker.Config) {
		c.URL = closedURL(t)
		c.MaxAttempts = 1
	})
	tok := e.token("payer", bff.FormatBearer)
	narrow := e.token("payer", bff.FormatBearer, "read")
	if _, _, err := e.Store.ClaimIdempotencyKey(context.Background(), bff.IdempotencyRecord{UserID: e.user.ID,
		Key: "lost-outcome-1", ClaimID: "dead", Fingerprint: fingerprintOf("POST", "/api/v2/checkout/", "", []byte("{}")),
		CreatedAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	notConfigured := testenv.New(t, testenv.Options{})
	for _, tc := range []struct {
		name, method, path string
		header             []string
		env                *testenv.Env
	}{
		{"broker_not_configured", "GET", "/api/v2/orders/", nil, notConfigured},
		{"broker_insufficient_scope", "GET", "/api/v2/orders/", authz(narrow), nil},
		{"broker_route_not_allowed", "GET", "/api/v2/users/", authz(tok), nil},
		{"broker_idempotency_key_missing", "POST", "/api/v2/checkout/", authz(tok), nil},
		{"broker_idempotency_response_unavailable", "POST", "/api/v2/checkout/", append(authz(tok), "Idempotency-Key", "lost-outcome-1"), nil},
		{"broker_upstream_unavailable", "GET", "/api/v2/orders/", authz(tok), nil},
	} {
		env := tc.env
		if env == nil {
			env = e.Env
		}
		req := httptest.NewRequest(tc.method, "/api/ecommerce"+tc.path, strings.NewReader("{}"))
		for i := 0; i+1 < len(tc.header); i += 2 {
			req.Header.Set(tc.header[i], tc.header[i+1])
		}
		req.Header.Set("X-Request-ID", "golden-"+tc.name)
		rec := httptest.NewRecorder()
		env.Public.ServeHTTP(rec, req)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v: %s", tc.name, err, rec.Body)
		}
		out, _ := json.Marshal(map[string]any{"status": rec.Code, "body": body,
			"retry_after": rec.Header().Get("Retry-After"), "www_authenticate": rec.Header().Get("WWW-Authenticate")})
		testenv.Golden(t, "error_"+tc.name, out)
	}
}
