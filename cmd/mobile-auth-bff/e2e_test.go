package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// headerTransport adds a header to every request of the oauth2 client.
type headerTransport struct {
	name, value string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return http.DefaultTransport.RoundTrip(r)
}

// oauthCtx makes golang.org/x/oauth2 ask for a token format.
func oauthCtx(format string) context.Context {
	c := &http.Client{Timeout: 30 * time.Second}
	if format != "" {
		c.Transport = headerTransport{"X-Token-Type", format}
	}
	return context.WithValue(context.Background(), oauth2.HTTPClient, c)
}

func (s *server) oauthConfig(clientID string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, Endpoint: oauth2.Endpoint{
		TokenURL: s.public + "/oauth2/access_token", AuthStyle: oauth2.AuthStyleInParams}}
}

// createMobileClient creates the public app client through the admin API.
func (s *server) createMobileClient(id string, extra map[string]any) {
	s.t.Helper()
	body := map[string]any{"client_id": id, "name": "E2E app", "public": true,
		"grant_types": []string{"password", "refresh_token"}, "scopes": []string{"read", "email", "profile"}}
	for k, v := range extra {
		body[k] = v
	}
	s.mustAdmin("POST", "/admin/clients", body, http.StatusCreated)
}

// verifyJWT checks a JWT against the served JWKS, by kid, and returns its
// header and claims.
func (s *server) verifyJWT(token string) (jose.Header, map[string]any) {
	s.t.Helper()
	return testkit.VerifyJWT(s.t, token, s.jwks(), jose.RS256, jose.RS512, jose.ES256, jose.EdDSA)
}

// introspect asks whether a token is active, as a confidential client.
func (s *server) introspect(id, secret, token string) map[string]any {
	s.t.Helper()
	r := s.postForm("/oauth2/introspect", url.Values{"token": {token}, "client_id": {id}, "client_secret": {secret}})
	if r.status != 200 {
		s.t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return r.json(s.t)
}

// createBackend creates a confidential client and returns its secret.
func (s *server) createBackend(id string) string {
	s.t.Helper()
	c := s.mustAdmin("POST", "/admin/clients", map[string]any{"client_id": id, "grant_types": []string{"client_credentials"},
		"scopes": []string{"read"}, "token_type": "jwt"}, http.StatusCreated)
	secret, _ := c["client_secret"].(string)
	if len(secret) < 40 {
		s.t.Fatalf("confidential client secret not shown at creation: %v", c)
	}
	return secret
}

func TestE2EPasswordGrantBothFormats(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("app", nil)
		uid := s.createUser("alice")
		cfg := s.oauthConfig("app")

		bearer, err := cfg.PasswordCredentialsToken(oauthCtx(""), "alice", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		if bearer.TokenType != "Bearer" || !strings.HasPrefix(bearer.AccessToken, "ory_at_") || bearer.RefreshToken == "" {
			t.Errorf("bearer token: type %q, refresh %v", bearer.TokenType, bearer.RefreshToken != "")
		}
		if d := time.Until(bearer.Expiry); d < 59*time.Minute || d > time.Hour+time.Minute {
			t.Errorf("bearer expiry in %s", d)
		}

		jwtTok, err := cfg.PasswordCredentialsToken(oauthCtx("jwt"), "alice@EXAMPLE.com", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		if jwtTok.TokenType != "JWT" {
			t.Errorf("token_type = %q, want JWT", jwtTok.TokenType)
		}
		h, claims := s.verifyJWT(jwtTok.AccessToken)
		if h.ExtraHeaders["typ"] != "at+jwt" || h.KeyID == "" || h.Algorithm != "ES256" {
			t.Errorf("JWT header: %+v", h)
		}
		for k, want := range map[string]any{"iss": e2eIssuer, "aud": "mobile-auth-bff", "sub": itoa(uid),
			"client_id": "app", "grant_type": "password", "preferred_username": "alice", "user_id": float64(uid),
			"email": "alice@example.com", "email_verified": true, "is_restricted": false, "scope": "read email profile",
			"name": "E2E alice"} {
			if claims[k] != want {
				t.Errorf("claim %s = %v, want %v", k, claims[k], want)
			}
		}
		if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat > 3600 || exp-iat < 3500 {
			t.Errorf("exp-iat = %v", exp-iat)
		}
		if len(jwtTok.AccessToken) >= 2048 {
			t.Errorf("JWT is %d bytes", len(jwtTok.AccessToken))
		}

		// Scope narrowing, and an unknown scope.
		r := s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"app"},
			"username": {"alice"}, "password": {e2ePassword}, "scope": {"read"}, "token_type": {"jwt"}})
		if _, c := s.verifyJWT(r.json(t)["access_token"].(string)); c["scope"] != "read" || c["name"] != nil {
			t.Errorf("scoped JWT: scope %v, name %v", c["scope"], c["name"])
		}

		// Both formats introspect active, with the same identity.
		secret := s.createBackend("resource-server")
		for _, tok := range []string{bearer.AccessToken, jwtTok.AccessToken} {
			in := s.introspect("resource-server", secret, tok)
			if in["active"] != true || in["sub"] != itoa(uid) || in["username"] != "alice" || in["client_id"] != "app" {
				t.Errorf("introspection: %v", in)
			}
		}
	})
}

func TestE2ERefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env, map[string]string{"BFF_REFRESH_REUSE_GRACE": "1s"}))
		s.createMobileClient("app", nil)
		s.createUser("bob")
		secret := s.createBackend("rs")
		cfg := s.oauthConfig("app")
		first, err := cfg.PasswordCredentialsToken(oauthCtx(""), "bob", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		refresh := func(rt, format string) (*oauth2.Token, error) {
			return cfg.TokenSource(oauthCtx(format), &oauth2.Token{RefreshToken: rt}).Token()
		}

		// Migrating by refreshing with token_type=jwt: the family keeps its grant.
		second, err := refresh(first.RefreshToken, "jwt")
		if err != nil {
			t.Fatal(err)
		}
		if second.RefreshToken == first.RefreshToken || second.TokenType != "JWT" {
			t.Fatalf("refresh did not rotate or switch format: type %s", second.TokenType)
		}
		if _, c := s.verifyJWT(second.AccessToken); c["grant_type"] != "password" {
			t.Errorf("refreshed JWT grant_type = %v, want password", c["grant_type"])
		}
		// A parallel refresh with the old token inside the grace gets a fresh pair.
		parallel, err := refresh(first.RefreshToken, "")
		if err != nil {
			t.Fatalf("reuse within grace: %v", err)
		}
		if parallel.RefreshToken == second.RefreshToken {
			t.Error("reuse within grace returned the same refresh token")
		}
		if in := s.introspect("rs", secret, second.AccessToken); in["active"] != true {
			t.Error("reuse within grace revoked the family")
		}

		time.Sleep(1500 * time.Millisecond)
		_, err = refresh(first.RefreshToken, "")
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != 400 || re.ErrorCode != "invalid_grant" {
			t.Fatalf("reuse after grace: %v", err)
		}
		// The whole family is gone: both branches, access and refresh tokens.
		for _, tok := range []string{second.AccessToken, parallel.AccessToken, first.AccessToken} {
			if in := s.introspect("rs", secret, tok); in["active"] != false {
				t.Errorf("access token of the revoked family still active: %v", in)
			}
		}
		for _, rt := range []string{second.RefreshToken, parallel.RefreshToken} {
			if _, err := refresh(rt, ""); err == nil {
				t.Error("refresh token of the revoked family still works")
			}
		}
		// A new login is unaffected.
		if _, err := cfg.PasswordCredentialsToken(oauthCtx(""), "bob", e2ePassword); err != nil {
			t.Errorf("login after family revocation: %v", err)
		}
	})
}

func TestE2EClientCredentials(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		secret := s.createBackend("svc")
		// The secret is shown once; listing and reading never show it.
		for _, path := range []string{"/admin/clients/svc", "/admin/clients"} {
			if r := s.adminCall("GET", path, nil); strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), "secret") {
				t.Errorf("%s shows the secret: %s", path, r.body)
			}
		}
		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			cc := clientcredentials.Config{ClientID: "svc", ClientSecret: secret, TokenURL: s.public + "/oauth2/token", AuthStyle: style}
			tok, err := cc.Token(oauthCtx(""))
			if err != nil {
				t.Fatalf("auth style %v: %v", style, err)
			}
			// The client's token_type chose the JWT: a bearer token (RFC 9068).
			if tok.TokenType != "Bearer" || tok.RefreshToken != "" {
				t.Errorf("client credentials: type %s, refresh %q", tok.TokenType, tok.RefreshToken)
			}
			_, c := s.verifyJWT(tok.AccessToken)
			if c["sub"] != "client:svc" || c["grant_type"] != "client_credentials" || c["user_id"] != nil || c["email"] != nil {
				t.Errorf("client-credentials claims: %v", c)
			}
		}
		cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "wrong", TokenURL: s.public + "/oauth2/token"}
		_, err := cc.Token(oauthCtx(""))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != 401 || re.ErrorCode != "invalid_client" ||
			re.Response.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("wrong secret: %v", err)
		}
	})
}

func TestE2EFormatSelection(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("restricted", map[string]any{"restricted": true, "jwt_enabled": false})
		s.createMobileClient("killed", map[string]any{"token_type": "jwt", "jwt_enabled": false})
		s.createMobileClient("jwt-default", map[string]any{"token_type": "jwt"})
		s.createUser("carol")
		form := func(client string, extra ...string) url.Values {
			f := url.Values{"grant_type": {"password"}, "client_id": {client}, "username": {"carol"}, "password": {e2ePassword}}
			for i := 0; i+1 < len(extra); i += 2 {
				f.Set(extra[i], extra[i+1])
			}
			return f
		}
		// want is the format; label the token_type: "JWT" only when the
		// request asked for the JWT edX's way (SPEC §5).
		cases := []struct {
			name        string
			form        url.Values
			header      []string
			want, label string
		}{
			{"restricted ignores token_type=bearer", form("restricted", "token_type", "bearer"), nil, "JWT", "Bearer"},
			{"restricted asked token_type=JWT", form("restricted", "token_type", "JWT"), nil, "JWT", "JWT"},
			{"kill switch wins over token_type=jwt", form("killed", "token_type", "jwt"), nil, "Bearer", "Bearer"},
			{"kill switch wins over the client default", form("killed"), nil, "Bearer", "Bearer"},
			{"client default", form("jwt-default"), nil, "JWT", "Bearer"},
			{"token_type field", form("jwt-default", "token_type", "bearer"), nil, "Bearer", "Bearer"},
			{"field wins over header", form("jwt-default", "token_type", "bearer"), []string{"X-Token-Type", "jwt"}, "Bearer", "Bearer"},
			{"header", form("jwt-default"), []string{"X-Token-Type", "bearer"}, "Bearer", "Bearer"},
			{"header JWT", form("jwt-default"), []string{"X-Token-Type", "JWT"}, "JWT", "JWT"},
			{"asymmetric_jwt", form("jwt-default", "asymmetric_jwt", "true"), []string{"X-Token-Type", ""}, "JWT", "JWT"},
			{"asymmetric_jwt=1", form("jwt-default", "asymmetric_jwt", "1"), nil, "JWT", "JWT"},
		}
		for _, tc := range cases {
			r := s.postForm("/oauth2/access_token", tc.form, tc.header...)
			if r.status != 200 {
				t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
			}
			body := r.json(t)
			if got := tokenFormat(body); got != tc.want || body["token_type"] != tc.label {
				t.Errorf("%s: a %s token labelled %v, want a %s token labelled %s", tc.name, got, body["token_type"], tc.want, tc.label)
			}
		}
		r := s.postForm("/oauth2/access_token", form("restricted"))
		if _, c := s.verifyJWT(r.json(t)["access_token"].(string)); c["is_restricted"] != true {
			t.Errorf("restricted JWT: is_restricted = %v", c["is_restricted"])
		}
	})
}

func TestE2EDisabledAccount(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("app", nil)
		uid := s.createUser("dave")
		secret := s.createBackend("rs")
		cfg := s.oauthConfig("app")
		bearer, err := cfg.PasswordCredentialsToken(oauthCtx(""), "dave", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		jwtTok, err := cfg.PasswordCredentialsToken(oauthCtx("jwt"), "dave", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}

		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/disable", nil, 200)
		wantDisabled := func(what string, r response) {
			t.Helper()
			if r.status != 403 {
				t.Fatalf("%s: %d %s", what, r.status, r.body)
			}
			if body := r.json(t); body["error"] != "account_disabled" || body["error_description"] != "user account is disabled" {
				t.Errorf("%s: %v", what, body)
			}
		}
		wantDisabled("password grant", s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"},
			"client_id": {"app"}, "username": {"dave"}, "password": {e2ePassword}}))
		// The refresh token was revoked by the disabling: still account_disabled.
		for _, rt := range []string{bearer.RefreshToken, jwtTok.RefreshToken} {
			wantDisabled("refresh grant", s.postForm("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"},
				"client_id": {"app"}, "refresh_token": {rt}}))
		}
		// A wrong password says nothing about the account.
		if r := s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"app"},
			"username": {"dave"}, "password": {"wrong-password"}}); r.status != 400 {
			t.Errorf("wrong password for a disabled account: %d", r.status)
		}
		for _, tok := range []string{bearer.AccessToken, jwtTok.AccessToken} {
			if in := s.introspect("rs", secret, tok); in["active"] != false {
				t.Errorf("token of a disabled user is active: %v", in)
			}
		}

		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/enable", nil, 200)
		for _, tok := range []string{bearer.AccessToken, jwtTok.AccessToken} {
			if in := s.introspect("rs", secret, tok); in["active"] != false {
				t.Errorf("enable brought a token back: %v", in)
			}
		}
		if _, err := cfg.PasswordCredentialsToken(oauthCtx(""), "dave", e2ePassword); err != nil {
			t.Errorf("login after enable: %v", err)
		}
	})
}

func TestE2ERevocation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("app", nil)
		s.createMobileClient("other-app", nil)
		s.createUser("erin")
		secret := s.createBackend("rs")
		cfg := s.oauthConfig("app")
		revoke := func(client, token string) response {
			return s.postForm("/oauth2/revoke", url.Values{"client_id": {client}, "token": {token}})
		}
		active := func(tok string) bool { return s.introspect("rs", secret, tok)["active"] == true }

		for _, format := range []string{"", "jwt"} {
			tok, err := cfg.PasswordCredentialsToken(oauthCtx(format), "erin", e2ePassword)
			if err != nil {
				t.Fatal(err)
			}
			if r := revoke("other-app", tok.AccessToken); r.status != 400 || r.json(t)["error"] != "unauthorized_client" {
				t.Errorf("%s: revoking another client's token: %d %s", format, r.status, r.body)
			}
			if !active(tok.AccessToken) {
				t.Fatalf("%s: another client revoked the token", format)
			}
			if r := revoke("app", tok.AccessToken); r.status != 200 {
				t.Fatalf("%s: revoke access token: %d %s", format, r.status, r.body)
			}
			if active(tok.AccessToken) {
				t.Errorf("%s: revoked access token still active", format)
			}
			// Revoking the access token leaves the refresh token; revoking
			// the refresh token ends the family.
			next, err := cfg.TokenSource(oauthCtx(format), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("%s: refresh after access-token revocation: %v", format, err)
			}
			if r := revoke("app", next.RefreshToken); r.status != 200 {
				t.Fatalf("%s: revoke refresh token: %d", format, r.status)
			}
			if active(next.AccessToken) {
				t.Errorf("%s: access token of a revoked family still active", format)
			}
		}
		// Unknown and foreign tokens: 200, nothing happens.
		for _, tok := range []string{"nonsense", "ory_at_x.y", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"} {
			if r := revoke("app", tok); r.status != 200 {
				t.Errorf("revoke %q: %d", tok, r.status)
			}
		}
		if r := revoke("app", ""); r.status != 400 {
			t.Errorf("revoke without token: %d", r.status)
		}
	})
}

func TestE2EKeyRotation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env, map[string]string{"BFF_JWT_ALG": "RS256"}))
		s.createMobileClient("app", map[string]any{"token_type": "jwt"})
		s.createUser("frank")
		secret := s.createBackend("rs")
		cfg := s.oauthConfig("app")
		before, err := cfg.PasswordCredentialsToken(oauthCtx(""), "frank", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		oldHeader, _ := s.verifyJWT(before.AccessToken)
		if oldHeader.Algorithm != "RS256" {
			t.Errorf("alg = %s", oldHeader.Algorithm)
		}
		keysBefore := s.mustAdmin("GET", "/admin/keys", nil, 200)["keys"].([]any)
		var next string
		for _, k := range keysBefore {
			if k := k.(map[string]any); k["state"] == "next" {
				next = k["kid"].(string)
			}
		}
		if set := s.jwks(); len(set.Key(next)) != 1 {
			t.Errorf("the next key %q is not published ahead of use", next)
		}

		s.mustAdmin("POST", "/admin/keys/rotate", nil, 200)
		after, err := cfg.PasswordCredentialsToken(oauthCtx(""), "frank", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		newHeader, _ := s.verifyJWT(after.AccessToken)
		if newHeader.KeyID != next || newHeader.KeyID == oldHeader.KeyID {
			t.Errorf("after rotation kid = %s, want the former next key %s", newHeader.KeyID, next)
		}
		// The old JWT still verifies by kid and is still active.
		s.verifyJWT(before.AccessToken)
		if in := s.introspect("rs", secret, before.AccessToken); in["active"] != true {
			t.Errorf("JWT issued before the rotation: %v", in)
		}
		if n := len(s.jwks().Keys); n != 3 {
			t.Errorf("JWKS has %d keys after one rotation, want 3 (retired, current, next)", n)
		}
		// No private material in the JWKS.
		for _, k := range s.jwks().Keys {
			if !k.IsPublic() {
				t.Errorf("JWKS publishes a private key: %s", k.KeyID)
			}
		}
	})
}

// TestE2ERestartKeepsState: on PostgreSQL, tokens and keys outlive the process.
func TestE2ERestartKeepsState(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		if b.name != "postgres" {
			continue
		}
		env := baseEnv(b.env)
		s := start(t, env)
		s.createMobileClient("app", nil)
		s.createUser("gina")
		secret := s.createBackend("rs")
		cfg := s.oauthConfig("app")
		opaque, err := cfg.PasswordCredentialsToken(oauthCtx(""), "gina", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		jwtTok, err := cfg.PasswordCredentialsToken(oauthCtx("jwt"), "gina", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		kids := s.jwks()
		s.stop()

		s2 := start(t, env)
		if len(s2.jwks().Keys) != len(kids.Keys) || s2.jwks().Keys[0].KeyID != kids.Keys[0].KeyID {
			t.Error("signing keys changed across a restart")
		}
		for _, tok := range []string{opaque.AccessToken, jwtTok.AccessToken} {
			if in := s2.introspect("rs", secret, tok); in["active"] != true {
				t.Errorf("token lost in a restart: %v", in)
			}
		}
		if _, err := s2.oauthConfig("app").TokenSource(oauthCtx(""), &oauth2.Token{RefreshToken: opaque.RefreshToken}).Token(); err != nil {
			t.Errorf("refresh after restart: %v", err)
		}
		// A different BFF_SECRET cannot open the stored keys: start-up fails.
		bad := baseEnv(b.env, map[string]string{"BFF_SECRET": strings.Repeat("x", 40)})
		err = run(context.Background(), []string{"mobile-auth-bff", "serve"}, func(k string) string { return bad[k] }, &testkit.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "BFF_SECRET") {
			t.Errorf("start with another secret: %v", err)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
