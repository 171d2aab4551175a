package main

import (
	"net/url"
	"testing"
)

// TestE2EIntrospectRefreshNeedsHint: through the binary, a backend that
// introspects a refresh token without token_type_hint=refresh_token (or
// with access_token) is told it is inactive; with the hint it is active
// and says token_type refresh_token. Access tokens are active either way.
func TestE2EIntrospectRefreshNeedsHint(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("app", nil)
		s.createUser("ivy")
		secret := s.createBackend("rs")
		tok, err := s.oauthConfig("app").PasswordCredentialsToken(oauthCtx(""), "ivy", e2ePassword)
		if err != nil {
			t.Fatal(err)
		}
		introspect := func(token, hint string) map[string]any {
			t.Helper()
			form := url.Values{"token": {token}, "client_id": {"rs"}, "client_secret": {secret}}
			if hint != "" {
				form.Set("token_type_hint", hint)
			}
			r := s.postForm("/oauth2/introspect", form)
			if r.status != 200 {
				t.Fatalf("introspect: %d %s", r.status, r.body)
			}
			return r.json(t)
		}
		for _, hint := range []string{"", "access_token"} {
			if in := introspect(tok.RefreshToken, hint); in["active"] != false || len(in) != 1 {
				t.Errorf("refresh token, hint %q: %v, want only active:false", hint, in)
			}
			if in := introspect(tok.AccessToken, hint); in["active"] != true || in["token_type"] != "Bearer" {
				t.Errorf("access token, hint %q: %v", hint, in)
			}
		}
		if in := introspect(tok.RefreshToken, "refresh_token"); in["active"] != true || in["token_type"] != "refresh_token" ||
			in["username"] != "ivy" || in["client_id"] != "app" {
			t.Errorf("refresh token with the hint: %v", in)
		}
	})
}
