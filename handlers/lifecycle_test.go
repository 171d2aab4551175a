package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// credentials is everything a user can hold.
type credentials struct {
	opaque, jwt, refresh, cookie string
}

func holdEverything(t *testing.T, env *testenv.Env, user string) credentials {
	t.Helper()
	bearer := env.Token(t, testenv.PasswordForm("app", user))
	jwt := env.Token(t, testenv.PasswordForm("app", user, "token_type", "jwt"))
	rec := env.Post("/oauth2/login", url.Values{}, "Authorization", "JWT "+jwt["access_token"].(string))
	if rec.Code != 204 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	cookies := (&http.Response{Header: rec.Header()}).Cookies()
	return credentials{
		opaque: bearer["access_token"].(string), jwt: jwt["access_token"].(string),
		refresh: bearer["refresh_token"].(string), cookie: cookies[0].Value,
	}
}

// verdicts presents every credential at every endpoint and returns
// "endpoint/credential" → "status code".
func verdicts(t *testing.T, env *testenv.Env, secret string, c credentials) map[string]string {
	t.Helper()
	out := map[string]string{}
	body := func(rec *httptest.ResponseRecorder, field string) string {
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		v, _ := m[field].(string)
		if field == "active" {
			b, _ := m[field].(bool)
			if b {
				return "true"
			}
			return "false"
		}
		return v
	}
	for name, tok := range map[string]string{"opaque": c.opaque, "jwt": c.jwt} {
		rec := env.Post("/oauth2/login", url.Values{}, "Authorization", "Bearer "+tok)
		out["login/"+name] = itoa(rec.Code) + " " + body(rec, "error_code")
		me := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		env.Public.ServeHTTP(me, req)
		out["me/"+name] = itoa(me.Code) + " " + body(me, "code")
		in := env.Post("/oauth2/introspect", url.Values{"token": {tok}}, "Authorization", basic("rs", secret))
		out["introspect/"+name] = itoa(in.Code) + " " + body(in, "active")
	}
	me := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
	req.AddCookie(&http.Cookie{Name: "sessionid", Value: c.cookie})
	env.Public.ServeHTTP(me, req)
	out["me/session"] = itoa(me.Code) + " " + body(me, "code")
	in := env.Post("/oauth2/introspect", url.Values{"token": {c.refresh}, "token_type_hint": {"refresh_token"}},
		"Authorization", basic("rs", secret))
	out["introspect/refresh"] = itoa(in.Code) + " " + body(in, "active")
	// The refresh grant last: when it works, it rotates the token.
	rec := env.Post("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
		"refresh_token": {c.refresh}})
	out["refresh/refresh"] = itoa(rec.Code) + " " + body(rec, "error")
	return out
}

// TestAccountLifecycleMatrix: disabling a user (or resetting the password)
// cuts off every credential at every endpoint; enabling brings none back.
func TestAccountLifecycleMatrix(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			env.PublicClient(t, "app")
			_, secret := env.ConfidentialClient(t, "rs")
			ctx := context.Background()

			u := env.User(t, "rita")
			before := verdicts(t, env, secret, holdEverything(t, env, "rita"))
			for k, v := range before {
				if v != "204 " && v != "200 " && v != "200 true" {
					t.Errorf("before disabling, %s = %q", k, v)
				}
			}

			held := holdEverything(t, env, "rita")
			if _, err := env.Admin.DisableUser(ctx, u.ID, "test"); err != nil {
				t.Fatal(err)
			}
			disabled := map[string]string{
				"login/opaque": "401 user_is_disabled", "login/jwt": "401 user_is_disabled",
				"me/opaque": "401 account_disabled", "me/jwt": "401 account_disabled",
				"introspect/opaque": "200 false", "introspect/jwt": "200 false", "introspect/refresh": "200 false",
				"me/session":      "401 invalid_token", // the session is gone
				"refresh/refresh": "403 account_disabled",
			}
			assertVerdicts(t, "disabled", disabled, verdicts(t, env, secret, held))
			if rec := env.Post("/oauth2/access_token", testenv.PasswordForm("app", "rita")); rec.Code != 403 {
				t.Errorf("password grant of a disabled user: %d", rec.Code)
			}

			if _, err := env.Admin.EnableUser(ctx, u.ID, "test"); err != nil {
				t.Fatal(err)
			}
			dead := map[string]string{
				"login/opaque": "401 token_nonexistent", "login/jwt": "401 token_nonexistent",
				"me/opaque": "401 token_revoked", "me/jwt": "401 token_revoked",
				"introspect/opaque": "200 false", "introspect/jwt": "200 false", "introspect/refresh": "200 false",
				"me/session": "401 invalid_token", "refresh/refresh": "400 invalid_grant",
			}
			assertVerdicts(t, "re-enabled", dead, verdicts(t, env, secret, held))
			fresh := verdicts(t, env, secret, holdEverything(t, env, "rita"))
			assertVerdicts(t, "new login after enabling", before, fresh)

			// A password reset does the same as disabling, without disabling.
			held = holdEverything(t, env, "rita")
			if err := env.Admin.SetPassword(ctx, u.ID, "another good password", "test"); err != nil {
				t.Fatal(err)
			}
			assertVerdicts(t, "after a password reset", dead, verdicts(t, env, secret, held))
		})
	}
}

func assertVerdicts(t *testing.T, when string, want, got map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s = %q, want %q", when, k, got[k], w)
		}
	}
}
