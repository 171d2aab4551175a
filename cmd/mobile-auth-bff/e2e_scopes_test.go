package main

import (
	"net/http"
	"net/url"
	"testing"
)

// TestE2ERefreshAfterScopeRemoved: taking a scope from a client does not
// break its users' refreshes (issue 13 #2, ADR 0022). A refresh grants the
// family's scopes the client still has; scope narrows the access token
// (the new refresh token keeps the family's); a scope outside them, or
// one the client lost, is invalid_scope. JWT claims and introspection say
// the granted scopes.
func TestE2ERefreshAfterScopeRemoved(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("app", nil) // read email profile
		s.createUser("rita")
		secret := s.createBackend("rs")
		token := func(form url.Values) (int, map[string]any) {
			t.Helper()
			r := s.postForm("/oauth2/access_token", form)
			return r.status, r.json(t)
		}
		refresh := func(rt string, extra ...string) (int, map[string]any) {
			t.Helper()
			f := url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {rt}, "token_type": {"jwt"}}
			for i := 0; i+1 < len(extra); i += 2 {
				f.Set(extra[i], extra[i+1])
			}
			return token(f)
		}
		introspectScope := func(tok, hint string) any {
			t.Helper()
			r := s.postForm("/oauth2/introspect", url.Values{"token": {tok}, "token_type_hint": {hint},
				"client_id": {"rs"}, "client_secret": {secret}})
			in := r.json(t)
			if r.status != 200 || in["active"] != true {
				t.Fatalf("introspect %s: %d %v", hint, r.status, in)
			}
			return in["scope"]
		}
		// wantGrant checks a 200 refresh answer, its JWT and its
		// introspection, and returns the new refresh token.
		wantGrant := func(what string, status int, body map[string]any, scope string) string {
			t.Helper()
			if status != 200 {
				t.Fatalf("%s: %d %v", what, status, body)
			}
			if body["scope"] != scope {
				t.Errorf("%s: response scope %v, want %q", what, body["scope"], scope)
			}
			at := body["access_token"].(string)
			if _, c := s.verifyJWT(at); c["scope"] != scope {
				t.Errorf("%s: JWT scope %v, want %q", what, c["scope"], scope)
			}
			if got := introspectScope(at, "access_token"); got != scope {
				t.Errorf("%s: introspected scope %v, want %q", what, got, scope)
			}
			return body["refresh_token"].(string)
		}
		wantInvalidScope := func(what string, status int, body map[string]any) {
			t.Helper()
			if status != http.StatusBadRequest || body["error"] != "invalid_scope" {
				t.Errorf("%s: %d %v, want 400 invalid_scope", what, status, body)
			}
		}

		st, login := token(url.Values{"grant_type": {"password"}, "client_id": {"app"}, "username": {"rita"}, "password": {e2ePassword}})
		if st != 200 || login["scope"] != "read email profile" {
			t.Fatalf("login: %d %v", st, login)
		}
		s.mustAdmin("PATCH", "/admin/clients/app", map[string]any{"scopes": []string{"read", "profile"}}, 200)

		// The refresh still works, without the removed scope.
		st, body := refresh(login["refresh_token"].(string))
		rt := wantGrant("refresh after the client lost email", st, body, "read profile")
		if got := introspectScope(rt, "refresh_token"); got != "read profile" {
			t.Errorf("introspected refresh token scope %v", got)
		}

		// Narrowing: the access token gets only what scope asks; the
		// next refresh without scope gets the family's scopes again.
		st, body = refresh(rt, "scope", "read")
		rt = wantGrant("refresh narrowed to read", st, body, "read")
		st, body = refresh(rt)
		rt = wantGrant("refresh after a narrowed one", st, body, "read profile")

		// Widening is refused, and the refused request used nothing up.
		st, body = refresh(rt, "scope", "read email")
		wantInvalidScope("refresh asking for the removed scope", st, body)
		st, body = refresh(rt, "scope", "read payments")
		wantInvalidScope("refresh asking for a scope never granted", st, body)
		s.mustAdmin("PATCH", "/admin/clients/app", map[string]any{"scopes": []string{"read", "email", "profile", "payments"}}, 200)
		st, body = refresh(rt, "scope", "payments")
		wantInvalidScope("refresh asking for a scope the client has but the family never had", st, body)

		// A scope given back to the client does not come back to a family
		// that lost it: the refresh token kept only what was left.
		st, body = refresh(rt)
		wantGrant("refresh after the scope came back", st, body, "read profile")
	})
}
