package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/openedx/mobile-auth-bff/internal/fakeecommerce"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// The tests below are a DPoP client (RFC 9449) on go-jose
// (testkit.DPoPKey) against the real binary, on both stores.

// dpopClient is an app's DPoP client: one key, and the last nonce the
// server gave it. It sends a proof with every request and, as a client
// library does (RFC 9449 §8–9), retries once when the answer is
// use_dpop_nonce, with the nonce of that answer's DPoP-Nonce.
type dpopClient struct {
	t     *testing.T
	s     *server
	key   *testkit.DPoPKey
	nonce string
	// challenge is the last use_dpop_nonce answer the client retried.
	challenge *response
}

func newDPoPClient(s *server) *dpopClient {
	return &dpopClient{t: s.t, s: s, key: testkit.NewDPoPKey(s.t)}
}

// learn keeps the nonce of an answer.
func (c *dpopClient) learn(r response) {
	if n := r.header.Get("DPoP-Nonce"); n != "" {
		c.nonce = n
	}
}

// token posts a token request to path with a proof (and the extra
// headers), retrying once on use_dpop_nonce.
func (c *dpopClient) token(path string, form url.Values, header ...string) response {
	c.t.Helper()
	for attempt := 0; ; attempt++ {
		proof := c.key.Proof(c.t, http.MethodPost, e2eIssuer+path, "", c.nonce)
		r := c.s.postForm(path, form, append([]string{"DPoP", proof}, header...)...)
		c.learn(r)
		if attempt == 0 && r.status == http.StatusBadRequest && jsonField(r.body, "error") == "use_dpop_nonce" {
			c.challenge = &r
			continue
		}
		return r
	}
}

// call presents a bound token at a resource route with a proof, retrying
// once on use_dpop_nonce.
func (c *dpopClient) call(method, path, token string) response {
	c.t.Helper()
	for attempt := 0; ; attempt++ {
		r := c.callWith(method, path, token, c.key.Proof(c.t, method, e2eIssuer+path, token, c.nonce))
		c.learn(r)
		if attempt == 0 && r.status == http.StatusUnauthorized &&
			strings.Contains(r.header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
			c.challenge = &r
			continue
		}
		return r
	}
}

// callWith presents a token with the DPoP scheme and the given proof ("":
// none).
func (c *dpopClient) callWith(method, path, token, proof string) response {
	c.t.Helper()
	h := map[string]string{"Authorization": "DPoP " + token, "Accept": "application/json"}
	if proof != "" {
		h["DPoP"] = proof
	}
	var body *strings.Reader
	if method == http.MethodPost {
		h["Content-Type"] = "application/x-www-form-urlencoded"
		body = strings.NewReader("")
	}
	if body == nil {
		return do(c.t, method, c.s.public+path, nil, h)
	}
	return do(c.t, method, c.s.public+path, body, h)
}

// wantBound checks a token response: 200, token_type DPoP, the access
// token bound to key (a JWT's cnf.jkt, else the introspection's), and
// returns the response.
func wantBound(t *testing.T, s *server, what string, r response, key *testkit.DPoPKey, rsID, rsSecret string) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, r.status, r.body)
	}
	body := r.json(t)
	if body["token_type"] != "DPoP" {
		t.Errorf("%s: token_type %v, want DPoP", what, body["token_type"])
	}
	if r.header.Get("DPoP-Nonce") == "" {
		t.Errorf("%s: the answer to a DPoP request has no DPoP-Nonce", what)
	}
	access, _ := body["access_token"].(string)
	if strings.Count(access, ".") == 2 {
		_, claims := s.verifyJWT(access)
		if cnf, _ := claims["cnf"].(map[string]any); cnf["jkt"] != key.JKT {
			t.Errorf("%s: JWT cnf %v, want jkt %s", what, claims["cnf"], key.JKT)
		}
	}
	in := s.introspect(rsID, rsSecret, access)
	if cnf, _ := in["cnf"].(map[string]any); in["active"] != true || in["token_type"] != "DPoP" || cnf["jkt"] != key.JKT {
		t.Errorf("%s: introspection %v, want active, token_type DPoP, cnf.jkt %s", what, in, key.JKT)
	}
	return body
}

// wantTokenError checks a token endpoint error: status, error and, for a
// request with a proof, the DPoP-Nonce header.
func wantTokenError(t *testing.T, what string, r response, code string, nonce bool) {
	t.Helper()
	wantOAuthError(t, what, r, http.StatusBadRequest, code)
	if nonce && r.header.Get("DPoP-Nonce") == "" {
		t.Errorf("%s: no DPoP-Nonce on the answer to a request with a proof", what)
	}
}

// wantRejected checks a resource route's 401: DPoP's challenge with the
// RFC's error and the algorithms, and the same verdict in the body (the
// problem+json code or the edX error_code; a verdict on the token itself
// may have a finer code, with edX's error_code token_nonexistent that the
// apps act on) and, when the request used DPoP, the nonce for the next
// proof.
func wantRejected(t *testing.T, what string, r response, code string, usedDPoP bool) {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Errorf("%s: %d %s, want 401", what, r.status, r.body)
		return
	}
	wa := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(wa, `DPoP error="`+code+`"`) || !strings.Contains(wa, `algs="ES256`) {
		t.Errorf("%s: WWW-Authenticate %q, want DPoP error=%q with algs", what, wa, code)
	}
	if usedDPoP && r.header.Get("DPoP-Nonce") == "" {
		t.Errorf("%s: no DPoP-Nonce on the answer to a request that used DPoP", what)
	}
	got := jsonField(r.body, "code")
	if got == "" {
		got = jsonField(r.body, "error_code")
	}
	if got != code && (code != "invalid_token" || jsonField(r.body, "error_code") != "token_nonexistent") {
		t.Errorf("%s: code %q, want %q: %s", what, got, code, r.body)
	}
}

// dpopServer starts the binary with the app's client (every grant a public
// client has, the payments scope), a user linked to a Google account, a
// confidential client that introspects, the fake providers and a payment
// service behind the broker.
func dpopServer(t *testing.T, b backend, extra map[string]string) (s *server, googleToken string, rsSecret string) {
	t.Helper()
	fakes := newSocialFakes(t)
	up := fakeecommerce.New(t)
	s = start(t, baseEnv(b.env, fakes.env(), map[string]string{"BFF_ECOMMERCE_URL": up.URL, "BFF_COOKIE_SECURE": "false"}, extra))
	s.createMobileClient("app", map[string]any{
		"grant_types":   []string{"password", "refresh_token", "authorization_code", grantExchange},
		"redirect_uris": []string{"http://127.0.0.1/callback"},
		"scopes":        []string{"read", "email", "profile", "payments"},
	})
	uid := s.createUser("dana")
	const sub = "10769150350006150715113099999"
	s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/identities", map[string]any{"provider": "google-oauth2", "subject": sub}, http.StatusCreated)
	return s, fakes.google.Issue(sub), s.createBackend("rs")
}

func passwordForm(format string) url.Values {
	return url.Values{"grant_type": {"password"}, "client_id": {"app"}, "username": {"dana"},
		"password": {e2ePassword}, "token_type": {format}}
}

// TestE2EDPoPGrants: every grant the binary offers issues DPoP-bound
// tokens with a proof — password (both formats), refresh, client
// credentials, authorization code with PKCE, social exchange, token
// exchange — after the nonce challenge a client library answers; a bound
// refresh token needs its key and is not used up by a refused attempt.
func TestE2EDPoPGrants(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, googleToken, rsSecret := dpopServer(t, b, nil)
		c := newDPoPClient(s)

		// The first request has no nonce: 400 use_dpop_nonce with the
		// nonce, and the retry with it is answered.
		opaque := wantBound(t, s, "password/opaque", c.token("/oauth2/access_token", passwordForm("bearer")), c.key, "rs", rsSecret)
		if c.challenge == nil {
			t.Fatal("the first proof without a nonce was not challenged")
		}
		wantTokenError(t, "first proof without nonce", *c.challenge, "use_dpop_nonce", true)
		if !strings.HasPrefix(opaque["access_token"].(string), "ory_at_") {
			t.Errorf("opaque access token: %v", opaque["access_token"])
		}
		c.challenge = nil
		jwt := wantBound(t, s, "password/jwt", c.token("/oauth2/access_token", passwordForm("jwt")), c.key, "rs", rsSecret)
		if c.challenge != nil {
			t.Error("a client holding the current nonce was challenged again")
		}

		// Refresh: without a proof, or with another key's, refused and not
		// used up; with the key, a new pair bound to it.
		for _, tok := range []map[string]any{opaque, jwt} {
			form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {tok["refresh_token"].(string)}}
			wantTokenError(t, "bound refresh without proof", s.postForm("/oauth2/access_token", form), "invalid_dpop_proof", false)
			thief := newDPoPClient(s)
			wantTokenError(t, "bound refresh by another key", thief.token("/oauth2/access_token", form), "invalid_dpop_proof", true)
			next := wantBound(t, s, "refresh", c.token("/oauth2/access_token", form), c.key, "rs", rsSecret)
			if next["refresh_token"] == tok["refresh_token"] || next["refresh_token"] == nil {
				t.Errorf("refresh did not rotate: %v", next)
			}
			form.Set("refresh_token", next["refresh_token"].(string))
			wantTokenError(t, "rotated refresh token without proof", s.postForm("/oauth2/access_token", form), "invalid_dpop_proof", false)
			if r := c.token("/oauth2/access_token/", form); r.status != 200 {
				t.Errorf("second refresh at the trailing-slash endpoint: %d %s", r.status, r.body)
			}
		}

		// Client credentials: a confidential client's token is bound, and
		// it has no refresh token.
		svc := s.createBackend("svc")
		cc := wantBound(t, s, "client_credentials", c.token("/oauth2/access_token", url.Values{"grant_type": {"client_credentials"}},
			"Authorization", "Basic "+basicAuth("svc", svc)), c.key, "rs", rsSecret)
		if cc["refresh_token"] != nil {
			t.Errorf("client credentials gave a refresh token: %v", cc)
		}

		// Authorization code with PKCE, redeemed with a proof.
		conf := &oauth2.Config{ClientID: "app", RedirectURL: "http://127.0.0.1:48123/callback",
			Endpoint: oauth2.Endpoint{AuthURL: s.public + "/oauth2/authorize", TokenURL: s.public + "/oauth2/token"}}
		verifier := oauth2.GenerateVerifier()
		authURL, _ := url.Parse(conf.AuthCodeURL("state-dpop", oauth2.S256ChallengeOption(verifier)))
		q := redirected(t, newSignInBrowser(s).signIn(authURL.Path+"?"+authURL.RawQuery, "dana", e2ePassword), "http://127.0.0.1:48123/callback?")
		code := wantBound(t, s, "authorization_code", c.token("/oauth2/token", url.Values{"grant_type": {"authorization_code"},
			"client_id": {"app"}, "code": {q.Get("code")}, "code_verifier": {verifier}, "redirect_uri": {conf.RedirectURL},
			"token_type": {"jwt"}}), c.key, "rs", rsSecret)
		wantTokenError(t, "code's refresh token without proof", s.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"},
			"client_id": {"app"}, "refresh_token": {code["refresh_token"].(string)}}), "invalid_dpop_proof", false)

		// Social exchange: the htu is the exchange's own URL.
		social := wantBound(t, s, "social exchange", c.token("/oauth2/exchange_access_token/google-oauth2/", url.Values{
			"client_id": {"app"}, "access_token": {googleToken}, "token_type": {"jwt"}}), c.key, "rs", rsSecret)
		if _, claims := s.verifyJWT(social["access_token"].(string)); claims["grant_type"] != "social_exchange" {
			t.Errorf("social exchange grant_type %v", claims["grant_type"])
		}
		wrongHTU := c.key.Proof(t, http.MethodPost, e2eIssuer+"/oauth2/access_token", "", c.nonce)
		wantTokenError(t, "social exchange with the token endpoint's htu", s.postForm("/oauth2/exchange_access_token/google-oauth2/",
			url.Values{"client_id": {"app"}, "access_token": {googleToken}}, "DPoP", wrongHTU), "invalid_dpop_proof", true)

		// Token exchange: an unbound token's exchange with a proof is bound;
		// a bound token's needs a proof by its key.
		plain := s.login("app", "dana")["access_token"].(string)
		ex := func(subject string) url.Values {
			return url.Values{"grant_type": {grantExchange}, "client_id": {"app"}, "subject_token": {subject},
				"subject_token_type": {typeAccessToken}, "requested_token_type": {typeJWT}}
		}
		exchanged := wantBound(t, s, "exchange of an unbound token", c.token("/oauth2/access_token", ex(plain)), c.key, "rs", rsSecret)
		if exchanged["issued_token_type"] != typeJWT {
			t.Errorf("exchange: %v", exchanged)
		}
		bound := opaque["access_token"].(string)
		wantTokenError(t, "exchange of a bound token without proof", s.exchange("app", bound), "invalid_dpop_proof", false)
		wantTokenError(t, "exchange of a bound token by another key", newDPoPClient(s).token("/oauth2/access_token", ex(bound)), "invalid_dpop_proof", true)
		wantBound(t, s, "exchange of a bound token", c.token("/oauth2/access_token", ex(bound)), c.key, "rs", rsSecret)

		// A client registered with dpop_bound_access_tokens must send one.
		s.mustAdmin("PATCH", "/admin/clients/app", map[string]any{"dpop_bound_access_tokens": true}, 200)
		wantTokenError(t, "dpop_bound_access_tokens without proof", s.postForm("/oauth2/access_token", passwordForm("jwt")), "invalid_dpop_proof", false)
		wantBound(t, s, "dpop_bound_access_tokens with proof", c.token("/oauth2/access_token", passwordForm("jwt")), c.key, "rs", rsSecret)

		// The metadata lists the proof algorithms.
		meta := s.get("/.well-known/oauth-authorization-server").json(t)
		algs, _ := meta["dpop_signing_alg_values_supported"].([]any)
		if !slices.Contains(algs, any("ES256")) || slices.Contains(algs, any("HS256")) || slices.Contains(algs, any("none")) {
			t.Errorf("dpop_signing_alg_values_supported = %v", meta["dpop_signing_alg_values_supported"])
		}
	})
}

// TestE2EDPoPResources: a bound token at every route that takes one —
// /api/me, my_user_info, /oauth2/login, the broker — with its proof after
// the nonce challenge, without one, by another key, replayed, for another
// route, and stolen: presented as Bearer or JWT.
func TestE2EDPoPResources(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, rsSecret := dpopServer(t, b, nil)
		c := newDPoPClient(s)
		opaque := wantBound(t, s, "password/opaque", c.token("/oauth2/access_token", passwordForm("bearer")), c.key, "rs", rsSecret)["access_token"].(string)
		jwt := wantBound(t, s, "password/jwt", c.token("/oauth2/access_token", passwordForm("jwt")), c.key, "rs", rsSecret)["access_token"].(string)

		routes := []struct {
			method, path string
			ok           int
		}{
			{http.MethodGet, "/api/me", 200},
			{http.MethodGet, "/api/mobile/v0.5/my_user_info", 200},
			{http.MethodPost, "/oauth2/login", 204},
			{http.MethodGet, "/api/ecommerce/api/v2/orders/", 200},
		}
		for _, tok := range []struct{ format, token string }{{"opaque", opaque}, {"jwt", jwt}} {
			for i, rt := range routes {
				what := tok.format + " " + rt.method + " " + rt.path
				// A client whose nonce has gone stale learns the new one
				// from the 401 and retries.
				if i == 0 {
					c.nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
					c.challenge = nil
				}
				r := c.call(rt.method, rt.path, tok.token)
				if r.status != rt.ok {
					t.Fatalf("%s with its proof: %d %s", what, r.status, r.body)
				}
				if r.header.Get("DPoP-Nonce") == "" {
					t.Errorf("%s: no DPoP-Nonce on the answer", what)
				}
				if i == 0 {
					if c.challenge == nil {
						t.Fatalf("%s: a stale nonce was not challenged", what)
					}
					wantRejected(t, what+", stale nonce", *c.challenge, "use_dpop_nonce", true)
					if c.challenge.header.Get("DPoP-Nonce") == "" {
						t.Errorf("%s: use_dpop_nonce without DPoP-Nonce", what)
					}
				}

				proof := c.key.Proof(t, rt.method, e2eIssuer+rt.path, tok.token, c.nonce)
				if r := c.callWith(rt.method, rt.path, tok.token, proof); r.status != rt.ok {
					t.Fatalf("%s, fresh proof: %d %s", what, r.status, r.body)
				}
				wantRejected(t, what+", replayed proof", c.callWith(rt.method, rt.path, tok.token, proof), "invalid_dpop_proof", true)
				wantRejected(t, what+", no proof", c.callWith(rt.method, rt.path, tok.token, ""), "invalid_dpop_proof", true)
				thief := testkit.NewDPoPKey(t)
				wantRejected(t, what+", another key's proof", c.callWith(rt.method, rt.path, tok.token,
					thief.Proof(t, rt.method, e2eIssuer+rt.path, tok.token, c.nonce)), "invalid_dpop_proof", true)
				wantRejected(t, what+", proof for another route", c.callWith(rt.method, rt.path, tok.token,
					c.key.Proof(t, rt.method, e2eIssuer+"/api/other", tok.token, c.nonce)), "invalid_dpop_proof", true)
				wantRejected(t, what+", proof for another token", c.callWith(rt.method, rt.path, tok.token,
					c.key.Proof(t, rt.method, e2eIssuer+rt.path, "another token", c.nonce)), "invalid_dpop_proof", true)

				// Stolen: the token without the key is nothing, whatever the
				// scheme, even with the owner's proof sent along.
				schemes := []string{"Bearer"}
				if tok.format == "jwt" {
					schemes = append(schemes, "JWT")
				}
				for _, scheme := range schemes {
					h := map[string]string{"Authorization": scheme + " " + tok.token}
					var r response
					if rt.method == http.MethodPost {
						h["Content-Type"] = "application/x-www-form-urlencoded"
						r = do(t, rt.method, s.public+rt.path, strings.NewReader(""), h)
					} else {
						r = do(t, rt.method, s.public+rt.path, nil, h)
					}
					wantRejected(t, what+", stolen as "+scheme, r, "invalid_token", false)
					h["DPoP"] = c.key.Proof(t, rt.method, e2eIssuer+rt.path, tok.token, c.nonce)
					if rt.method == http.MethodPost {
						r = do(t, rt.method, s.public+rt.path, strings.NewReader(""), h)
					} else {
						r = do(t, rt.method, s.public+rt.path, nil, h)
					}
					if r.status != http.StatusUnauthorized {
						t.Errorf("%s as %s with a proof: %d, want 401", what, scheme, r.status)
					}
				}
			}
		}

		// A client that never saw a nonce (its first call is to a resource
		// route) is challenged once, then answered.
		fresh := &dpopClient{t: t, s: s, key: c.key}
		if r := fresh.call(http.MethodGet, "/api/me", jwt); r.status != 200 || fresh.challenge == nil {
			t.Errorf("first resource call without nonce: %d, challenged %v", r.status, fresh.challenge != nil)
		} else {
			wantRejected(t, "resource call without nonce", *fresh.challenge, "use_dpop_nonce", true)
		}

		// The web session made from a bound token is a plain cookie.
		login := c.call(http.MethodPost, "/oauth2/login", opaque)
		var session string
		for _, ck := range (&http.Response{Header: login.header}).Cookies() {
			if ck.Value != "" {
				session = ck.Name + "=" + ck.Value
			}
		}
		if login.status != 204 || session == "" {
			t.Fatalf("login: %d, cookie %q", login.status, session)
		}
		if me := s.get("/api/me", "Cookie", session); me.status != 200 {
			t.Errorf("/api/me with the session of a bound token: %d %s", me.status, me.body)
		}

		// An unbound token with the DPoP scheme is refused; as Bearer it
		// works, with or without a proof sent along.
		plain := s.login("app", "dana")["access_token"].(string)
		wantRejected(t, "unbound token with the DPoP scheme", c.call(http.MethodGet, "/api/me", plain), "invalid_token", true)
		if me := s.get("/api/me", "Authorization", "Bearer "+plain); me.status != 200 || me.header.Get("DPoP-Nonce") != "" {
			t.Errorf("unbound Bearer token: %d, DPoP-Nonce %q", me.status, me.header.Get("DPoP-Nonce"))
		}
		if in := s.introspect("rs", rsSecret, plain); in["token_type"] != "Bearer" || in["cnf"] != nil {
			t.Errorf("introspection of an unbound token: %v", in)
		}
	})
}

// TestE2EDPoPClockSkew: with BFF_DPOP_PROOF_WINDOW=10s, a proof whose iat
// is 3 s inside the window on either side is accepted, and one 5 s outside
// refused, at the token endpoint and at /api/me.
func TestE2EDPoPClockSkew(t *testing.T) {
	t.Parallel()
	const window = 10 * time.Second
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, rsSecret := dpopServer(t, b, map[string]string{"BFF_DPOP_PROOF_WINDOW": "10s"})
		c := newDPoPClient(s)
		access := wantBound(t, s, "password", c.token("/oauth2/access_token", passwordForm("bearer")), c.key, "rs", rsSecret)["access_token"].(string)
		for _, tc := range []struct {
			name string
			skew time.Duration
			ok   bool
		}{
			{"iat now-(window-3s)", -(window - 3*time.Second), true},
			{"iat now+(window-3s)", window - 3*time.Second, true},
			{"iat now-(window+5s)", -(window + 5*time.Second), false},
			{"iat now+(window+5s)", window + 5*time.Second, false},
		} {
			claims := c.key.Claims(http.MethodPost, e2eIssuer+"/oauth2/access_token", "", c.nonce)
			claims.IAT = time.Now().Add(tc.skew).Unix()
			r := s.postForm("/oauth2/access_token", passwordForm("bearer"), "DPoP", c.key.Sign(t, claims))
			if tc.ok {
				wantBound(t, s, "token, "+tc.name, r, c.key, "rs", rsSecret)
			} else {
				wantTokenError(t, "token, "+tc.name, r, "invalid_dpop_proof", true)
			}
			claims = c.key.Claims(http.MethodGet, e2eIssuer+"/api/me", access, c.nonce)
			claims.IAT = time.Now().Add(tc.skew).Unix()
			r = c.callWith(http.MethodGet, "/api/me", access, c.key.Sign(t, claims))
			if tc.ok && r.status != 200 {
				t.Errorf("/api/me, %s: %d %s", tc.name, r.status, r.body)
			} else if !tc.ok {
				wantRejected(t, "/api/me, "+tc.name, r, "invalid_dpop_proof", true)
			}
		}
	})
}

// TestE2EDPoPTwoInstances: two binaries on one PostgreSQL database. A
// nonce one gave out is good on the other, a token bound at one works on
// the other with its proof, and a proof used at one is a replay at the
// other — at the token endpoint and at /api/me.
func TestE2EDPoPTwoInstances(t *testing.T) {
	t.Parallel()
	dbURL := testdb.URL(t)
	a := start(t, baseEnv(map[string]string{"BFF_DATABASE_URL": withAppName(dbURL, "bff-dpop-a")}))
	b := start(t, baseEnv(map[string]string{"BFF_DATABASE_URL": withAppName(dbURL, "bff-dpop-b")}))
	a.createMobileClient("app", nil)
	a.createUser("dana")
	rsSecret := a.createBackend("rs")

	onA := newDPoPClient(a)
	access := wantBound(t, a, "password at A", onA.token("/oauth2/access_token", passwordForm("bearer")), onA.key, "rs", rsSecret)
	// B, with A's nonce: no challenge.
	onB := &dpopClient{t: t, s: b, key: onA.key, nonce: onA.nonce}
	r := onB.call(http.MethodGet, "/api/me", access["access_token"].(string))
	if r.status != 200 || onB.challenge != nil {
		t.Fatalf("B, with A's nonce: %d %s (challenged: %v)", r.status, r.body, onB.challenge != nil)
	}
	// A proof used at A is a replay at B, and the other way round.
	tok := access["access_token"].(string)
	proof := onA.key.Proof(t, http.MethodGet, e2eIssuer+"/api/me", tok, onA.nonce)
	if r := onA.callWith(http.MethodGet, "/api/me", tok, proof); r.status != 200 {
		t.Fatalf("A: %d %s", r.status, r.body)
	}
	wantRejected(t, "A's proof replayed at B", onB.callWith(http.MethodGet, "/api/me", tok, proof), "invalid_dpop_proof", true)
	proof = onA.key.Proof(t, http.MethodGet, e2eIssuer+"/api/me", tok, onB.nonce)
	if r := onB.callWith(http.MethodGet, "/api/me", tok, proof); r.status != 200 {
		t.Fatalf("B: %d %s", r.status, r.body)
	}
	wantRejected(t, "B's proof replayed at A", onA.callWith(http.MethodGet, "/api/me", tok, proof), "invalid_dpop_proof", true)

	// At the token endpoint: the refresh of A's token at B, with a proof
	// used at A first.
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {access["refresh_token"].(string)}}
	proof = onA.key.Proof(t, http.MethodPost, e2eIssuer+"/oauth2/access_token", "", onA.nonce)
	first := a.postForm("/oauth2/access_token", passwordForm("bearer"), "DPoP", proof)
	wantBound(t, a, "password at A", first, onA.key, "rs", rsSecret)
	wantTokenError(t, "A's token proof replayed at B", b.postForm("/oauth2/access_token", form, "DPoP", proof), "invalid_dpop_proof", true)
	wantBound(t, b, "refresh at B", onB.token("/oauth2/access_token", form), onA.key, "rs", rsSecret)
	if onB.challenge != nil {
		t.Error("B challenged a nonce of A")
	}
}

// TestE2EDPoPDatabaseCut: with PostgreSQL gone, a proof cannot be
// recorded against replay: the token endpoint and /api/me answer 503 (with
// the nonce), never 500 and never without the replay check; when it is
// back, the client's next proof is answered.
func TestE2EDPoPDatabaseCut(t *testing.T) {
	t.Parallel()
	dbURL := testdb.URL(t)
	proxy := newPGProxy(t, dbTarget(t, dbURL))
	s := start(t, baseEnv(map[string]string{"BFF_DATABASE_URL": proxy.url(dbURL)}))
	s.createMobileClient("app", nil)
	s.createUser("dana")
	rsSecret := s.createBackend("rs")
	c := newDPoPClient(s)
	tok := wantBound(t, s, "password", c.token("/oauth2/access_token", passwordForm("jwt")), c.key, "rs", rsSecret)
	access := tok["access_token"].(string)
	if r := c.call(http.MethodGet, "/api/me", access); r.status != 200 {
		t.Fatalf("/api/me: %d %s", r.status, r.body)
	}

	proxy.cut()
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {tok["refresh_token"].(string)}}
	for name, r := range map[string]response{
		"token endpoint": s.postForm("/oauth2/access_token", refresh, "DPoP",
			c.key.Proof(t, http.MethodPost, e2eIssuer+"/oauth2/access_token", "", c.nonce)),
		"/api/me": c.callWith(http.MethodGet, "/api/me", access, c.key.Proof(t, http.MethodGet, e2eIssuer+"/api/me", access, c.nonce)),
	} {
		if r.status != http.StatusServiceUnavailable || r.header.Get("DPoP-Nonce") == "" {
			t.Errorf("%s with the database gone: %d, DPoP-Nonce %q: %s", name, r.status, r.header.Get("DPoP-Nonce"), r.body)
		}
	}
	proxy.restore()
	within(t, 15*time.Second, "the database back", func() bool {
		return c.callWith(http.MethodGet, "/api/me", access, c.key.Proof(t, http.MethodGet, e2eIssuer+"/api/me", access, c.nonce)).status == 200
	})
	wantBound(t, s, "refresh after the cut", c.token("/oauth2/access_token", refresh), c.key, "rs", rsSecret)
}

// TestE2EDPoPNonces: with BFF_DPOP_NONCE_LIFETIME=10s the nonce rotates;
// the one before stays good for a period, the one before that is answered
// use_dpop_nonce with the current one, and the client's retry succeeds.
// With BFF_DPOP_NONCE=false a proof needs no nonce and none is given out.
func TestE2EDPoPNonces(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, rsSecret := dpopServer(t, b, map[string]string{"BFF_DPOP_NONCE_LIFETIME": "10s"})
		c := newDPoPClient(s)
		access := wantBound(t, s, "password", c.token("/oauth2/access_token", passwordForm("bearer")), c.key, "rs", rsSecret)["access_token"].(string)
		// currentNonce is what the server gives out now.
		currentNonce := func() string {
			return do(t, http.MethodGet, s.public+"/api/me", nil, map[string]string{"Authorization": "DPoP x"}).header.Get("DPoP-Nonce")
		}
		first := c.nonce
		within(t, 15*time.Second, "the nonce rotates", func() bool { return currentNonce() != first })
		if r := c.callWith(http.MethodGet, "/api/me", access, c.key.Proof(t, http.MethodGet, e2eIssuer+"/api/me", access, first)); r.status != 200 {
			t.Errorf("the previous period's nonce: %d %s", r.status, r.body)
		}
		second := currentNonce()
		within(t, 15*time.Second, "the nonce rotates again", func() bool { return currentNonce() != second })
		r := c.callWith(http.MethodGet, "/api/me", access, c.key.Proof(t, http.MethodGet, e2eIssuer+"/api/me", access, first))
		wantRejected(t, "a nonce two periods old", r, "use_dpop_nonce", true)
		if n := r.header.Get("DPoP-Nonce"); n == first || n == "" {
			t.Errorf("use_dpop_nonce gave %q", n)
		}
		c.nonce = first
		c.challenge = nil
		if r := c.call(http.MethodGet, "/api/me", access); r.status != 200 || c.challenge == nil {
			t.Errorf("the client's retry after use_dpop_nonce: %d (challenged %v)", r.status, c.challenge != nil)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		s, _, rsSecret := dpopServer(t, backendOf(t, false), map[string]string{"BFF_DPOP_NONCE": "false"})
		key := testkit.NewDPoPKey(t)
		r := s.postForm("/oauth2/access_token", passwordForm("jwt"), "DPoP", key.Proof(t, http.MethodPost, e2eIssuer+"/oauth2/access_token", "", ""))
		access := wantBoundNoNonce(t, s, r, key, rsSecret)
		me := do(t, http.MethodGet, s.public+"/api/me", nil, map[string]string{"Authorization": "DPoP " + access,
			"DPoP": key.Proof(t, http.MethodGet, e2eIssuer+"/api/me", access, "")})
		if me.status != 200 || me.header.Get("DPoP-Nonce") != "" {
			t.Errorf("/api/me without nonces: %d, DPoP-Nonce %q", me.status, me.header.Get("DPoP-Nonce"))
		}
	})
}

// wantBoundNoNonce checks a bound token response of a server without
// nonces and returns the access token.
func wantBoundNoNonce(t *testing.T, s *server, r response, key *testkit.DPoPKey, rsSecret string) string {
	t.Helper()
	if r.status != 200 || r.header.Get("DPoP-Nonce") != "" {
		t.Fatalf("token without nonces: %d, DPoP-Nonce %q: %s", r.status, r.header.Get("DPoP-Nonce"), r.body)
	}
	body := r.json(t)
	access, _ := body["access_token"].(string)
	in := s.introspect("rs", rsSecret, access)
	if cnf, _ := in["cnf"].(map[string]any); body["token_type"] != "DPoP" || cnf["jkt"] != key.JKT {
		t.Errorf("token without nonces: %v, introspection %v", body, in)
	}
	return access
}

// TestE2EDPoPRefreshGrace: a bound refresh token reused within the reuse
// grace (an app's parallel refresh) is held to its key like a live one,
// and the pair it gives is bound again; a bound token is revoked without
// a proof (RFC 7009), and is dead with one; the scheme is matched without
// regard to case, an oversized proof refused.
func TestE2EDPoPRefreshGrace(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, rsSecret := dpopServer(t, b, map[string]string{"BFF_REFRESH_REUSE_GRACE": "30s"})
		c := newDPoPClient(s)
		tok := wantBound(t, s, "password", c.token("/oauth2/access_token", passwordForm("bearer")), c.key, "rs", rsSecret)
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {tok["refresh_token"].(string)},
			"token_type": {"jwt"}}
		next := wantBound(t, s, "refresh, opaque to JWT", c.token("/oauth2/access_token", form), c.key, "rs", rsSecret)

		wantTokenError(t, "in grace, no proof", s.postForm("/oauth2/access_token", form), "invalid_dpop_proof", false)
		wantTokenError(t, "in grace, another key", newDPoPClient(s).token("/oauth2/access_token", form), "invalid_dpop_proof", true)
		parallel := wantBound(t, s, "in grace, its key", c.token("/oauth2/access_token", form), c.key, "rs", rsSecret)
		wantTokenError(t, "the grace pair's refresh token without proof", s.postForm("/oauth2/access_token", url.Values{
			"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {parallel["refresh_token"].(string)}}), "invalid_dpop_proof", false)

		access := next["access_token"].(string)
		if r := do(t, http.MethodGet, s.public+"/api/me", nil, map[string]string{"Authorization": "dpop " + access,
			"DPoP": c.key.Proof(t, http.MethodGet, e2eIssuer+"/api/me", access, c.nonce)}); r.status != 200 {
			t.Errorf("lower-case dpop scheme: %d %s", r.status, r.body)
		}
		big := strings.Repeat("a", 5000)
		wantTokenError(t, "oversized proof", s.postForm("/oauth2/access_token", passwordForm("jwt"), "DPoP", big), "invalid_dpop_proof", true)
		wantRejected(t, "oversized proof at /api/me", c.callWith(http.MethodGet, "/api/me", access, big), "invalid_dpop_proof", true)

		if r := s.postForm("/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {access}}); r.status != 200 {
			t.Fatalf("revoke a bound token: %d %s", r.status, r.body)
		}
		r := c.call(http.MethodGet, "/api/me", access)
		wantRejected(t, "revoked bound token with its proof", r, "invalid_token", true)
		if code := jsonField(r.body, "code"); code != "token_revoked" {
			t.Errorf("revoked bound token: code %q", code)
		}
	})
}
