package handlers_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// TestRefreshPolicyUsesTheServiceClock: the reuse grace and the expiry of a
// refresh token are judged by the service's clock (oauth.Config.Now), the
// same at the refresh grant and at introspection (oauth.RefreshPolicy).
// The old code judged both with the wall clock.
func TestRefreshPolicyUsesTheServiceClock(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			c := &clock{}
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg, Config: withClock(c)})
			env.PublicClient(t, "app")
			_, secret := env.ConfidentialClient(t, "rs")
			env.User(t, "rita")

			active := func(token string) bool {
				t.Helper()
				rec := env.Post("/oauth2/introspect", url.Values{"token": {token}, "token_type_hint": {"refresh_token"}},
					"Authorization", basic("rs", secret))
				var in map[string]any
				if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &in) != nil {
					t.Fatalf("introspect: %d %s", rec.Code, rec.Body)
				}
				return in["active"] == true
			}
			refresh := func(token string) (int, map[string]any) {
				t.Helper()
				rec := env.Post("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
					"refresh_token": {token}})
				var out map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
					t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
				}
				return rec.Code, out
			}

			// Reuse after the grace (10 s), by the service's clock.
			first := env.Token(t, testenv.PasswordForm("app", "rita"))["refresh_token"].(string)
			code, body := refresh(first)
			if code != 200 {
				t.Fatalf("first refresh: %d %v", code, body)
			}
			second := body["refresh_token"].(string)
			if !active(first) {
				t.Error("a token rotated just now is active (within the grace)")
			}
			c.set(11 * time.Second)
			if active(first) {
				t.Error("a token rotated 11 s ago by the service's clock is still active at introspection")
			}
			if code, body := refresh(first); code != 400 || body["error"] != "invalid_grant" {
				t.Errorf("reuse 11 s later by the service's clock: %d %v, want 400 invalid_grant", code, body)
			}
			if active(second) {
				t.Error("the reuse did not revoke the family")
			}
			c.reset()

			// Expiry (720 h), by the service's clock; judging it does not
			// revoke the token.
			third := env.Token(t, testenv.PasswordForm("app", "rita"))["refresh_token"].(string)
			c.set(721 * time.Hour)
			if active(third) {
				t.Error("a token expired by the service's clock is active at introspection")
			}
			code, body = refresh(third)
			if desc, _ := body["error_description"].(string); code != 400 || body["error"] != "invalid_grant" || !strings.Contains(desc, "expired") {
				t.Errorf("refresh with a token expired by the service's clock: %d %v, want 400 invalid_grant (expired)", code, body)
			}
			c.reset()
			if !active(third) {
				t.Error("the expired verdict revoked the token")
			}
			if code, body := refresh(third); code != 200 {
				t.Errorf("refresh back in its lifetime: %d %v", code, body)
			}
		})
	}
}
