package handlers_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// TestIntrospectRefreshNeedsHint: a refresh token is active only when the
// caller asks about one (token_type_hint=refresh_token), so a backend that
// checks "active" never takes it for an access token. Access tokens are
// active with or without a hint (a wrong hint is still tried).
func TestIntrospectRefreshNeedsHint(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			env.PublicClient(t, "app")
			_, secret := env.ConfidentialClient(t, "rs")
			env.User(t, "ida")
			tok := env.Token(t, testenv.PasswordForm("app", "ida"))
			jwt := env.Token(t, testenv.PasswordForm("app", "ida", "token_type", "jwt"))
			refresh, access := tok["refresh_token"].(string), tok["access_token"].(string)

			introspect := func(token string, hint ...string) map[string]any {
				t.Helper()
				form := url.Values{"token": {token}}
				if len(hint) > 0 {
					form.Set("token_type_hint", hint[0])
				}
				rec := env.Post("/oauth2/introspect", form, "Authorization", basic("rs", secret))
				var in map[string]any
				if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &in) != nil {
					t.Fatalf("introspect: %d %s", rec.Code, rec.Body)
				}
				return in
			}

			for name, in := range map[string]map[string]any{
				"no hint":                 introspect(refresh),
				"hint access_token":       introspect(refresh, "access_token"),
				"empty hint":              introspect(refresh, ""),
				"unknown hint":            introspect(refresh, "refresh"),
				"the JWT response's one":  introspect(jwt["refresh_token"].(string), "access_token"),
				"access of another token": introspect(refresh + "x"),
			} {
				if in["active"] != false || len(in) != 1 {
					t.Errorf("refresh token, %s: %v, want only active:false", name, in)
				}
			}

			in := introspect(refresh, "refresh_token")
			if in["active"] != true || in["token_type"] != "refresh_token" || in["client_id"] != "app" ||
				in["username"] != "ida" || in["grant_type"] != "password" || in["iss"] != testenv.Issuer ||
				in["scope"] == nil || in["exp"] == nil || in["iat"] == nil || in["sub"] == nil {
				t.Errorf("refresh token with the hint: %v", in)
			}
			if _, ok := in["aud"]; ok {
				t.Errorf("refresh token with the hint has an aud: %v", in)
			}

			for name, tok := range map[string]string{"opaque": access, "jwt": jwt["access_token"].(string)} {
				for _, hint := range [][]string{nil, {"access_token"}, {"refresh_token"}} {
					if in := introspect(tok, hint...); in["active"] != true || in["token_type"] != "Bearer" {
						t.Errorf("%s access token, hint %v: %v", name, hint, in)
					}
				}
			}
		})
	}
}
