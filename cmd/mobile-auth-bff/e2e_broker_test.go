package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/fakeecommerce"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// brokerCall calls the payment broker of s with a token.
func (s *server) brokerCall(method, path, token, body string, header ...string) response {
	s.t.Helper()
	h := map[string]string{"Authorization": "Bearer " + token}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	var r *strings.Reader
	if body != "" {
		r = strings.NewReader(body)
		h["Content-Type"] = "application/json"
	}
	if r == nil {
		return do(s.t, method, s.public+"/api/ecommerce"+path, nil, h)
	}
	return do(s.t, method, s.public+"/api/ecommerce"+path, r, h)
}

func problem(t *testing.T, r response) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q (status %d): %s", ct, r.status, r.body)
	}
	return fmt.Sprint(r.json(t)["code"])
}

// TestE2EBroker: the payment broker through the real binary, on both
// stores: minted JWTs that verify against the served JWKS, idempotent
// POSTs (across a restart on PostgreSQL), the live account check, the
// circuit breaker, metrics and the request log.
func TestE2EBroker(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		up := fakeecommerce.New(t)
		env := baseEnv(b.env, map[string]string{
			"BFF_ECOMMERCE_URL":              up.URL + "/ecommerce",
			"BFF_ECOMMERCE_AUDIENCE":         "ecommerce-e2e",
			"BFF_ECOMMERCE_TIMEOUT":          "2s",
			"BFF_ECOMMERCE_BREAKER_FAILURES": "2",
			"BFF_ECOMMERCE_BREAKER_COOLDOWN": "500ms",
		})
		s := start(t, env)
		s.createMobileClient("app", map[string]any{"scopes": []string{"read", "email", "profile", "payments"}})
		uid := s.createUser("paula")
		cfg := s.oauthConfig("app")
		jwtTok, err := cfg.PasswordCredentialsToken(oauthCtx("jwt"), "paula", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		opaque, err := cfg.PasswordCredentialsToken(oauthCtx(""), "paula", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}

		// A GET with each format; the payment service sees one minted JWT.
		for _, tok := range []string{jwtTok.AccessToken, opaque.AccessToken} {
			r := s.brokerCall("GET", "/api/v2/orders/?page=1", tok, "", "Cookie", "sessionid=nope", "X-Request-ID", "e2e-broker-get")
			if r.status != 200 || !strings.Contains(string(r.body), `"path":"/ecommerce/api/v2/orders/"`) {
				t.Fatalf("GET: %d %s", r.status, r.body)
			}
		}
		reqs := up.Requests()
		if len(reqs) != 2 || reqs[0].Header.Get("Authorization") != reqs[1].Header.Get("Authorization") {
			t.Fatalf("the payment service got %d requests, or two JWTs for one user and scope set", len(reqs))
		}
		got := reqs[0]
		if got.Path != "/ecommerce/api/v2/orders/" || got.RawQuery != "page=1" || got.Header.Get("Cookie") != "" ||
			got.Header.Get("X-Request-Id") != "e2e-broker-get" {
			t.Errorf("upstream request %s?%s %v", got.Path, got.RawQuery, got.Header)
		}
		minted := strings.TrimPrefix(got.Header.Get("Authorization"), "JWT ")
		if minted == jwtTok.AccessToken || strings.Contains(minted, opaque.AccessToken) {
			t.Fatal("the app's token went upstream")
		}
		h, claims := s.verifyJWT(minted)
		if h.ExtraHeaders["typ"] != "JWT" {
			t.Errorf("typ %v", h.ExtraHeaders["typ"])
		}
		for k, v := range map[string]any{"iss": e2eIssuer, "aud": "ecommerce-e2e", "sub": itoa(uid), "user_id": float64(uid),
			"preferred_username": "paula", "email": "paula@example.com", "name": "E2E paula"} {
			if claims[k] != v {
				t.Errorf("claim %s = %v, want %v", k, claims[k], v)
			}
		}
		if d := claims["exp"].(float64) - claims["iat"].(float64); d != 300 {
			t.Errorf("lifetime %v s, want 300", d)
		}
		// It opens nothing at the BFF.
		if r := do(t, "GET", s.public+"/api/me", nil, map[string]string{"Authorization": "JWT " + minted}); r.status != 401 {
			t.Errorf("/api/me with the upstream JWT: %d", r.status)
		}

		// Idempotent POST.
		basket := `{"products":[{"sku":"8CF08E5"}]}`
		first := s.brokerCall("POST", "/api/v2/baskets/", opaque.AccessToken, basket, "Idempotency-Key", "e2e-basket-0001")
		if first.status != 201 {
			t.Fatalf("POST: %d %s", first.status, first.body)
		}
		replay := s.brokerCall("POST", "/api/v2/baskets/", jwtTok.AccessToken, basket, "Idempotency-Key", "e2e-basket-0001")
		if replay.status != 201 || string(replay.body) != string(first.body) || replay.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay: %d %s %v", replay.status, replay.body, replay.header)
		}
		if r := s.brokerCall("POST", "/api/v2/baskets/", jwtTok.AccessToken, `{}`, "Idempotency-Key", "e2e-basket-0001"); r.status != 422 || problem(t, r) != "idempotency_key_reused" {
			t.Errorf("other body: %d %s", r.status, r.body)
		}
		if r := s.brokerCall("POST", "/api/v2/baskets/", jwtTok.AccessToken, basket); r.status != 400 || problem(t, r) != "idempotency_key_missing" {
			t.Errorf("no key: %d %s", r.status, r.body)
		}
		if r := s.brokerCall("GET", "/api/v2/orders/../../admin/", jwtTok.AccessToken, ""); r.status != 404 {
			t.Errorf("traversal: %d", r.status)
		}
		if up.Count() != 3 {
			t.Errorf("the payment service got %d requests, want 3", up.Count())
		}

		// One log line per request, with the upstream latency; no token in
		// the output.
		out := s.out.String()
		if !regexp.MustCompile(`"request_id":"e2e-broker-get".*"broker_route":"GET /api/v2/orders/".*"upstream_ms":[0-9.]+`).MatchString(out) {
			t.Error("no request log line with the broker route and upstream latency")
		}
		for _, secret := range []string{jwtTok.AccessToken, opaque.AccessToken, minted} {
			if strings.Contains(out, secret) {
				t.Error("a token is in the log")
			}
		}
		var lines int
		for _, l := range strings.Split(out, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["request_id"] == "e2e-broker-get" && m["msg"] == "request" {
				lines++
			}
		}
		if lines != 2 {
			t.Errorf("%d log lines for 2 requests with one id", lines)
		}

		if b.name == "postgres" {
			// The stored answer outlives the process.
			s.stop()
			s = start(t, env)
			again := s.brokerCall("POST", "/api/v2/baskets/", opaque.AccessToken, basket, "Idempotency-Key", "e2e-basket-0001")
			if again.status != 201 || string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("replay after a restart: %d %s", again.status, again.body)
			}
			if up.Count() != 3 {
				t.Errorf("a replay after a restart reached the payment service")
			}
		}

		// The circuit: 503s open it after two failures, then it answers
		// alone; after the cooldown the payment service is asked again.
		up.Handle(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
		r := s.brokerCall("GET", "/api/v2/orders/", jwtTok.AccessToken, "")
		if r.status != 503 || problem(t, r) != "upstream_unavailable" || r.header.Get("Retry-After") == "" {
			t.Errorf("failing payment service: %d %s %v", r.status, r.body, r.header)
		}
		before := up.Count()
		if r := s.brokerCall("GET", "/api/v2/orders/", jwtTok.AccessToken, ""); r.status != 503 || up.Count() != before {
			t.Errorf("open circuit: %d, %d requests went through", r.status, up.Count()-before)
		}
		up.Handle(fakeecommerce.Handler(0).ServeHTTP)
		time.Sleep(700 * time.Millisecond)
		if r := s.brokerCall("GET", "/api/v2/orders/", jwtTok.AccessToken, ""); r.status != 200 {
			t.Errorf("after the cooldown: %d %s", r.status, r.body)
		}

		// Disabled: 401 user_is_disabled at once, nothing upstream.
		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/disable", nil, 200)
		before = up.Count()
		for _, tok := range []string{jwtTok.AccessToken, opaque.AccessToken} {
			if r := s.brokerCall("GET", "/api/v2/orders/", tok, ""); r.status != 401 || problem(t, r) != "account_disabled" || r.json(t)["error_code"] != "user_is_disabled" {
				t.Errorf("disabled: %d %s", r.status, r.body)
			}
		}
		if up.Count() != before {
			t.Error("a disabled user's call reached the payment service")
		}

		// Metrics per route and status.
		m := s.adminCall("GET", "/metrics", nil)
		for _, want := range []string{
			`bff_broker_requests_total{route="GET /api/v2/orders/",source="upstream",status="200"}`,
			`bff_broker_requests_total{route="POST /api/v2/baskets/",source="replay",status="201"}`,
			`bff_broker_upstream_requests_total{result="503",route="GET /api/v2/orders/"}`,
			`bff_broker_upstream_duration_seconds_count{route="GET /api/v2/orders/"}`,
			`bff_broker_circuit_state 0`,
		} {
			if !strings.Contains(string(m.body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// TestE2EBrokerConfiguration: without BFF_ECOMMERCE_URL the routes say so;
// BFF_ECOMMERCE_ROUTES replaces the allowlist.
func TestE2EBrokerConfiguration(t *testing.T) {
	t.Parallel()
	s := start(t, baseEnv())
	if r := s.get("/api/ecommerce/api/v2/orders/"); r.status != 503 || problem(t, r) != "broker_not_configured" {
		t.Errorf("not configured: %d %s", r.status, r.body)
	}

	up := fakeecommerce.New(t)
	s = start(t, baseEnv(map[string]string{"BFF_ECOMMERCE_URL": up.URL,
		"BFF_ECOMMERCE_ROUTES": "GET /api/v3/receipts/{id}/, PUT /api/v3/baskets/{id}/"}))
	s.createMobileClient("app", map[string]any{"scopes": []string{"payments"}})
	s.createUser("rita")
	tok, err := s.oauthConfig("app").PasswordCredentialsToken(oauthCtx(""), "rita", e2ePassword)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.brokerCall("GET", "/api/v3/receipts/9/", tok.AccessToken, ""); r.status != 200 {
		t.Errorf("configured route: %d %s", r.status, r.body)
	}
	if r := s.brokerCall("PUT", "/api/v3/baskets/9/", tok.AccessToken, `{"x":1}`); r.status != 201 {
		t.Errorf("configured PUT: %d %s", r.status, r.body)
	}
	if r := s.brokerCall("GET", "/api/v2/orders/", tok.AccessToken, ""); r.status != 404 {
		t.Errorf("default route with a configured allowlist: %d", r.status)
	}
	if up.Count() != 2 {
		t.Errorf("the payment service got %d requests, want 2", up.Count())
	}

	// A bad allowlist stops start-up, naming the variable.
	bad := baseEnv(map[string]string{"BFF_ECOMMERCE_URL": up.URL, "BFF_ECOMMERCE_ROUTES": "GET /api/../admin/"})
	err = run(t.Context(), []string{"mobile-auth-bff", "serve"}, func(k string) string { return bad[k] }, &testkit.Buffer{})
	if err == nil || !strings.HasPrefix(err.Error(), "BFF_ECOMMERCE_ROUTES:") {
		t.Errorf("bad allowlist: %v", err)
	}
}
