package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// respell writes an opaque token ("prefix_key.signature") another way that a
// lenient base64 decoder reads as the same bytes: the last character of one
// part with its unused low bit flipped (32 bytes in 43 characters leave two
// such bits).
func respell(t *testing.T, token string, part int) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.LastIndexByte(token, '.')
	end := []int{i - 1, len(token) - 1}[part]
	k := strings.IndexByte(alphabet, token[end])
	if k < 0 {
		t.Fatalf("not a base64url token")
	}
	return token[:end] + string(alphabet[k^1]) + token[end+1:]
}

// TestRespelledOpaqueTokens: a second spelling of an opaque token is no
// token at all — it opens no session (in particular none after the first
// spelling's session was logged out), reads no API, introspects inactive and
// refreshes nothing.
func TestRespelledOpaqueTokens(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			env.PublicClient(t, "app")
			_, secret := env.ConfidentialClient(t, "rs")
			env.User(t, "speller")
			tok := env.Token(t, testenv.PasswordForm("app", "speller", "token_type", "bearer"))

			access := tok["access_token"].(string)
			login := env.Post("/oauth2/login", url.Values{}, "Authorization", "Bearer "+access)
			if login.Code != http.StatusNoContent {
				t.Fatalf("login: %d %s", login.Code, login.Body)
			}
			cookie := login.Result().Cookies()[0]
			logout := httptest.NewRequest(http.MethodPost, "/oauth2/logout", nil)
			logout.AddCookie(cookie)
			env.Public.ServeHTTP(httptest.NewRecorder(), logout)

			for part, name := range []string{"key", "signature"} {
				other := respell(t, access, part)
				if other == access {
					t.Fatal("respell changed nothing")
				}
				if rec := env.Post("/oauth2/login", url.Values{}, "Authorization", "Bearer "+other); rec.Code != http.StatusUnauthorized {
					t.Errorf("login with the %s respelled after logout: %d %s", name, rec.Code, rec.Body)
				}
				me := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
				req.Header.Set("Authorization", "Bearer "+other)
				env.Public.ServeHTTP(me, req)
				if me.Code != http.StatusUnauthorized {
					t.Errorf("/api/me with the %s respelled: %d", name, me.Code)
				}
				in := env.Post("/oauth2/introspect", url.Values{"token": {other}, "client_id": {"rs"}, "client_secret": {secret}})
				if !strings.Contains(in.Body.String(), `"active":false`) {
					t.Errorf("introspection of the %s respelled: %s", name, in.Body)
				}
				rt := respell(t, tok["refresh_token"].(string), part)
				if rec := env.Post("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
					"refresh_token": {rt}}); rec.Code != http.StatusBadRequest {
					t.Errorf("refresh with the %s respelled: %d %s", name, rec.Code, rec.Body)
				}
			}
			// The canonical tokens still work.
			if rec := env.Post("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
				"refresh_token": {tok["refresh_token"].(string)}}); rec.Code != http.StatusOK {
				t.Errorf("refresh with the token itself: %d %s", rec.Code, rec.Body)
			}
		})
	}
}
