package main

// A strict standards client against the real binary. golang.org/x/oauth2
// drives the token endpoint (password, refresh, client credentials, and
// the RFC 8693 token exchange through clientcredentials' EndpointParams),
// and every token_type is held to what oauth4webapi and openid-client
// accept: a registered type (RFC 6749 §7.1), here "Bearer" in any case.
// An unknown type — edX's "JWT" — makes those libraries refuse the whole
// response, so a client whose JWTs come from its settings must answer
// "Bearer" (RFC 9068: a JWT access token is a bearer token), while the
// apps asking edX's way still get "JWT" (SPEC §5).

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/openedx/mobile-auth-bff/oauth"
)

// tokenFormat is the format of a token response, from the token's shape:
// "JWT" or "Bearer". The token_type label does not tell (SPEC §5).
func tokenFormat(body map[string]any) string {
	if at, _ := body["access_token"].(string); oauth.IsJWT(at) {
		return "JWT"
	}
	return "Bearer"
}

// wantRegisteredTokenType fails unless tokenType is one a strict standard
// client accepts.
func wantRegisteredTokenType(t *testing.T, what, tokenType string) {
	t.Helper()
	if !strings.EqualFold(tokenType, "bearer") {
		t.Errorf("%s: token_type %q is not a registered type (RFC 6749 §7.1): a standard client refuses the response", what, tokenType)
	}
}

// wantStandardToken checks a token as a strict client would, and its format.
func wantStandardToken(t *testing.T, what string, tok *oauth2.Token, jwt bool) {
	t.Helper()
	wantRegisteredTokenType(t, what, tok.TokenType)
	if tok.AccessToken == "" || tok.Expiry.IsZero() || time.Until(tok.Expiry) > time.Hour+time.Minute {
		t.Errorf("%s: access token %d bytes, expiry %s", what, len(tok.AccessToken), tok.Expiry)
	}
	if oauth.IsJWT(tok.AccessToken) != jwt {
		t.Errorf("%s: JWT = %v, want %v", what, oauth.IsJWT(tok.AccessToken), jwt)
	}
}

// standardCall posts an RFC 7662 or RFC 7009 request the way a standard
// resource server or client does: form-encoded, the confidential caller
// in HTTP Basic (RFC 6749 §2.3.1), a public one by client_id.
func (s *server) standardCall(path string, form url.Values, id, secret string) response {
	s.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
	if secret != "" {
		req, _ := http.NewRequest(http.MethodPost, "/", nil)
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		h["Authorization"] = req.Header.Get("Authorization")
	} else {
		form.Set("client_id", id)
	}
	return do(s.t, http.MethodPost, s.public+path, strings.NewReader(form.Encode()), h)
}

// introspectStrict introspects a token and checks the answer against RFC
// 7662 §2.2: JSON, active a boolean, and an active access token's
// token_type a registered type.
func (s *server) introspectStrict(what, id, secret, token string) map[string]any {
	s.t.Helper()
	r := s.standardCall("/oauth2/introspect", url.Values{"token": {token}}, id, secret)
	if ct, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); r.status != 200 || ct != "application/json" {
		s.t.Fatalf("%s: introspection %d %s: %s", what, r.status, ct, r.body)
	}
	var in map[string]any
	if err := json.Unmarshal(r.body, &in); err != nil {
		s.t.Fatalf("%s: introspection body: %v", what, err)
	}
	active, ok := in["active"].(bool)
	if !ok {
		s.t.Fatalf("%s: active is not a boolean: %s", what, r.body)
	}
	if active {
		tt, _ := in["token_type"].(string)
		wantRegisteredTokenType(s.t, what+": introspection", tt)
	}
	return in
}

// revokeStrict revokes a token as RFC 7009 §2.1 says and wants its 200.
func (s *server) revokeStrict(what, id, token, hint string) {
	s.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	if r := s.standardCall("/oauth2/revoke", form, id, ""); r.status != 200 {
		s.t.Fatalf("%s: revocation %d %s", what, r.status, r.body)
	}
}

// meWith calls /api/me through the http.Client golang.org/x/oauth2 builds
// around a token: the Authorization header is the library's own choice.
func (s *server) meWith(ctx oauth2.TokenSource) (int, string) {
	s.t.Helper()
	c := oauth2.NewClient(oauthCtx(""), ctx)
	c.Timeout = 30 * time.Second
	res, err := c.Get(s.public + "/api/me")
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var me struct {
		Username string `json:"username"`
	}
	_ = json.NewDecoder(res.Body).Decode(&me)
	return res.StatusCode, me.Username
}

// TestE2EStandardsClient: clients whose JWTs are chosen by their settings
// (token_type jwt, a 100% rollout), a backend on client credentials, and
// the RFC 8693 exchange all answer a registered token_type, and a strict
// standard client runs the whole life of their tokens: sign-in, use,
// introspection, refresh, revocation.
func TestE2EStandardsClient(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		grants := []string{"password", "refresh_token", grantExchange}
		s.createMobileClient("std-default", map[string]any{"token_type": "jwt", "grant_types": grants})
		s.createMobileClient("std-rollout", map[string]any{"jwt_rollout_percent": 100, "grant_types": grants})
		s.createMobileClient("std-exchange", map[string]any{"grant_types": grants})
		secret := s.createBackend("std-backend")
		uid := s.createUser("stan")
		ctx := oauthCtx("") // nothing asks for a format: the settings decide

		for _, id := range []string{"std-default", "std-rollout"} {
			cfg := s.oauthConfig(id)
			tok, err := cfg.PasswordCredentialsToken(ctx, "stan", e2ePassword)
			if err != nil {
				t.Fatalf("%s: password grant: %v", id, err)
			}
			wantStandardToken(t, id+": password grant", tok, true)
			if tok.RefreshToken == "" {
				t.Fatalf("%s: no refresh token", id)
			}
			if _, c := s.verifyJWT(tok.AccessToken); c["sub"] != itoa(uid) || c["client_id"] != id {
				t.Errorf("%s: claims %v", id, c)
			}
			if st, name := s.meWith(oauth2.StaticTokenSource(tok)); st != 200 || name != "stan" {
				t.Errorf("%s: /api/me with the library's header: %d %q", id, st, name)
			}
			in := s.introspectStrict(id, "std-backend", secret, tok.AccessToken)
			if in["active"] != true || in["token_type"] != "Bearer" || in["sub"] != itoa(uid) || in["client_id"] != id {
				t.Errorf("%s: introspection of the JWT: %v", id, in)
			}

			// Refresh through the library's token source.
			refreshed, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("%s: refresh: %v", id, err)
			}
			wantStandardToken(t, id+": refresh", refreshed, true)
			if refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken {
				t.Errorf("%s: the refresh did not rotate the refresh token", id)
			}

			// Revoke the new access token (a JWT), then the refresh token.
			s.revokeStrict(id+": access token", id, refreshed.AccessToken, "access_token")
			if in := s.introspectStrict(id+": revoked", "std-backend", secret, refreshed.AccessToken); in["active"] != false || len(in) != 1 {
				t.Errorf("%s: introspection of a revoked JWT: %v", id, in)
			}
			if st, _ := s.meWith(oauth2.StaticTokenSource(refreshed)); st != 401 {
				t.Errorf("%s: /api/me with a revoked JWT: %d", id, st)
			}
			s.revokeStrict(id+": refresh token", id, refreshed.RefreshToken, "refresh_token")
			_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != 400 || re.ErrorCode != "invalid_grant" {
				t.Errorf("%s: refresh with a revoked refresh token: %v", id, err)
			}
			// RFC 7009 §2.2: an unknown token is no error.
			s.revokeStrict(id+": unknown token", id, "ory_at_unknown.unknown", "")
		}

		// Client credentials for a backend whose client token_type is jwt.
		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			cc := clientcredentials.Config{ClientID: "std-backend", ClientSecret: secret, TokenURL: s.public + "/oauth2/token", AuthStyle: style}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatalf("client credentials (auth style %v): %v", style, err)
			}
			wantStandardToken(t, "client credentials", tok, true)
			in := s.introspectStrict("client credentials", "std-backend", secret, tok.AccessToken)
			if in["active"] != true || in["token_type"] != "Bearer" || in["sub"] != "client:std-backend" {
				t.Errorf("introspection of a client-credentials JWT: %v", in)
			}
		}

		// The token exchange: an opaque token becomes a JWT, labelled Bearer.
		cfg := s.oauthConfig("std-exchange")
		opaque, err := cfg.PasswordCredentialsToken(ctx, "stan", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		wantStandardToken(t, "opaque password grant", opaque, false)
		if in := s.introspectStrict("opaque", "std-backend", secret, opaque.AccessToken); in["active"] != true || in["token_type"] != "Bearer" {
			t.Errorf("introspection of an opaque token: %v", in)
		}
		xc := clientcredentials.Config{ClientID: "std-exchange", TokenURL: s.public + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams,
			EndpointParams: url.Values{"grant_type": {grantExchange}, "subject_token": {opaque.AccessToken},
				"subject_token_type": {typeAccessToken}, "requested_token_type": {typeJWT}}}
		exchanged, err := xc.Token(ctx)
		if err != nil {
			t.Fatalf("token exchange: %v", err)
		}
		wantStandardToken(t, "token exchange", exchanged, true)
		if exchanged.Extra("issued_token_type") != typeJWT || exchanged.RefreshToken != "" {
			t.Errorf("token exchange: issued_token_type %v, refresh token %v", exchanged.Extra("issued_token_type"), exchanged.RefreshToken != "")
		}
		if st, name := s.meWith(oauth2.StaticTokenSource(exchanged)); st != 200 || name != "stan" {
			t.Errorf("/api/me with the exchanged JWT: %d %q", st, name)
		}
		if in := s.introspectStrict("exchanged", "std-backend", secret, exchanged.AccessToken); in["active"] != true || in["token_type"] != "Bearer" {
			t.Errorf("introspection of the exchanged JWT: %v", in)
		}
		s.revokeStrict("exchanged", "std-exchange", exchanged.AccessToken, "")
		if in := s.introspectStrict("exchanged, revoked", "std-backend", secret, exchanged.AccessToken); in["active"] != false {
			t.Errorf("introspection of the revoked exchanged JWT: %v", in)
		}
	})
}

// TestE2ETokenTypeLabels: the apps asking edX's way get "JWT" (Android:
// token_type=JWT and asymmetric_jwt=true; iOS: asymmetric_jwt=1, how
// Alamofire sends true), the exchange and the client's settings "Bearer",
// and a client's jwt_token_type — set through the admin API, the CLI or at
// creation, in any case — overrides both for its JWTs only.
func TestE2ETokenTypeLabels(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createExchangeClient("app", nil)
		s.createUser("lena")

		signIn := func(f appForm, header ...string) map[string]any {
			t.Helper()
			h := map[string]string{"Content-Type": f.contentType}
			for i := 0; i+1 < len(header); i += 2 {
				h[header[i]] = header[i+1]
			}
			r := do(t, http.MethodPost, s.public+"/oauth2/access_token/", strings.NewReader(f.body), h)
			if r.status != 200 {
				t.Fatalf("sign-in: %d %s", r.status, r.body)
			}
			return r.json(t)
		}
		android := func(kv ...string) map[string]any {
			t.Helper()
			return signIn(androidForm(append([]string{"grant_type", "password", "client_id", "app",
				"username", "lena", "password", e2ePassword}, kv...)...))
		}
		ios := func(extra map[string]string) map[string]any {
			t.Helper()
			p := map[string]string{"grant_type": "password", "client_id": "app", "username": "lena", "password": e2ePassword}
			for k, v := range extra {
				p[k] = v
			}
			return signIn(iosForm(p))
		}
		exchange := func() map[string]any {
			t.Helper()
			subject := s.login("app", "lena", "token_type", "bearer")["access_token"].(string)
			r := s.exchange("app", subject)
			if r.status != 200 {
				t.Fatalf("exchange: %d %s", r.status, r.body)
			}
			return r.json(t)
		}
		want := func(what string, body map[string]any, format, label string) {
			t.Helper()
			if got := tokenFormat(body); got != format || body["token_type"] != label {
				t.Errorf("%s: a %s token labelled %v, want a %s token labelled %s", what, got, body["token_type"], format, label)
			}
		}
		patch := func(v string) map[string]any {
			t.Helper()
			return s.mustAdmin("PATCH", "/admin/clients/app", map[string]any{"jwt_token_type": v}, http.StatusOK)
		}

		// The client is new: jwt_token_type is empty, the request decides.
		if c := s.mustAdmin("GET", "/admin/clients/app", nil, http.StatusOK); c["jwt_token_type"] != "" {
			t.Errorf("a new client's jwt_token_type: %v", c["jwt_token_type"])
		}
		want("Android", android("token_type", "JWT", "asymmetric_jwt", "true"), "JWT", "JWT")
		want("Android asking for Bearer", android("token_type", "BEARER", "asymmetric_jwt", "false"), "Bearer", "Bearer")
		want("iOS asymmetric_jwt=1", ios(map[string]string{"asymmetric_jwt": "1"}), "JWT", "JWT")
		want("iOS asymmetric_jwt=0", ios(map[string]string{"asymmetric_jwt": "0"}), "Bearer", "Bearer")
		want("iOS token_type=JWT", ios(map[string]string{"token_type": "JWT", "asymmetric_jwt": "1"}), "JWT", "JWT")
		want("X-Token-Type: JWT", signIn(androidForm("grant_type", "password", "client_id", "app",
			"username", "lena", "password", e2ePassword), "X-Token-Type", "JWT"), "JWT", "JWT")
		want("exchange", exchange(), "JWT", "Bearer")

		// jwt_token_type=Bearer (typed in lower case): every JWT says Bearer.
		if c := patch("bearer"); c["jwt_token_type"] != "Bearer" {
			t.Errorf("PATCH jwt_token_type bearer: %v", c["jwt_token_type"])
		}
		if c := s.mustAdmin("GET", "/admin/clients/app", nil, http.StatusOK); c["jwt_token_type"] != "Bearer" {
			t.Errorf("GET after the PATCH: jwt_token_type %v", c["jwt_token_type"])
		}
		want("Android, jwt_token_type Bearer", android("token_type", "JWT", "asymmetric_jwt", "true"), "JWT", "Bearer")
		want("iOS, jwt_token_type Bearer", ios(map[string]string{"asymmetric_jwt": "1"}), "JWT", "Bearer")

		// jwt_token_type=JWT: JWTs the settings or the exchange chose say
		// JWT too; opaque tokens stay Bearer.
		patch("JWT")
		s.mustAdmin("PATCH", "/admin/clients/app", map[string]any{"jwt_rollout_percent": 100}, http.StatusOK)
		want("rollout, jwt_token_type JWT", android(), "JWT", "JWT")
		want("exchange, jwt_token_type JWT", exchange(), "JWT", "JWT")
		want("opaque asked, jwt_token_type JWT", android("token_type", "bearer"), "Bearer", "Bearer")

		// Cleared: the rollout's JWTs are Bearer again.
		if c := patch(""); c["jwt_token_type"] != "" {
			t.Errorf("PATCH jwt_token_type \"\": %v", c["jwt_token_type"])
		}
		want("rollout", android(), "JWT", "Bearer")
		want("rollout, asked edX's way", android("token_type", "JWT", "asymmetric_jwt", "true"), "JWT", "JWT")

		// A value that is no label is refused, and nothing changes.
		if r := s.adminCall("PATCH", "/admin/clients/app", map[string]any{"jwt_token_type": "MAC"}); r.status != 400 ||
			!strings.Contains(string(r.body), "jwt_token_type") {
			t.Errorf("PATCH jwt_token_type MAC: %d %s", r.status, r.body)
		}
		// At creation.
		c := s.mustAdmin("POST", "/admin/clients", map[string]any{"client_id": "edx-app", "public": true,
			"grant_types": []string{"password"}, "token_type": "jwt", "jwt_token_type": "jwt"}, http.StatusCreated)
		if c["jwt_token_type"] != "JWT" {
			t.Errorf("created with jwt_token_type jwt: %v", c["jwt_token_type"])
		}
		r := s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"edx-app"},
			"username": {"lena"}, "password": {e2ePassword}})
		if r.status != 200 {
			t.Fatalf("edx-app sign-in: %d %s", r.status, r.body)
		}
		want("edx-app", r.json(t), "JWT", "JWT")

		// The CLI (it needs the database): the running server hears it.
		if b.name != "postgres" {
			return
		}
		cliEnv := baseEnv(b.env)
		if c := mustCLI(t, cliEnv, "admin", "update-client", "app", "--jwt-token-type", "JWT"); c["jwt_token_type"] != "JWT" {
			t.Errorf("update-client --jwt-token-type JWT: %v", c)
		}
		within(t, 2*time.Second, "the server applies the CLI's jwt_token_type", func() bool {
			return s.login("app", "lena")["token_type"] == "JWT"
		})
		if c := mustCLI(t, cliEnv, "admin", "update-client", "app", "--jwt-token-type="); c["jwt_token_type"] != "" {
			t.Errorf("update-client --jwt-token-type=: %v", c)
		}
		if c := mustCLI(t, cliEnv, "admin", "create-client", "--id", "cli-app", "--public", "--jwt-token-type", "BEARER"); c["jwt_token_type"] != "Bearer" {
			t.Errorf("create-client --jwt-token-type BEARER: %v", c)
		}
		if c := mustCLI(t, cliEnv, "admin", "get-client", "cli-app"); c["jwt_token_type"] != "Bearer" {
			t.Errorf("get-client: %v", c)
		}
		if _, err := cli(t, cliEnv, "admin", "update-client", "cli-app", "--jwt-token-type", "mac"); err == nil {
			t.Error("update-client --jwt-token-type mac succeeded")
		}
	})
}
