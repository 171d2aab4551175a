package handlers_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// clock is a movable validator clock.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time              { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) set(d time.Duration)         { c.offset.Store(int64(d)) }
func (c *clock) reset()                      { c.offset.Store(0) }
func withClock(c *clock) func(*oauth.Config) { return func(cfg *oauth.Config) { cfg.Now = c.now } }

// presented is one token kind of the table.
type presented struct {
	name    string
	token   string
	expired bool   // judge it with the clock two hours ahead
	login   string // expected error_code at /oauth2/login; "" = 204
	me      int    // expected status at /api/me
	meCode  string // expected problem code at /api/me; "" = 200
}

// tamper flips a character in the middle of a token.
func tamper(tok string) string {
	i := len(tok) / 2
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// forgeHS256 makes a JWT with our kid and claims, HMAC-signed with the
// public key as the secret (the classic algorithm-confusion attack).
func forgeHS256(t *testing.T, real string, env *testenv.Env) string {
	t.Helper()
	parts := strings.Split(real, ".")
	var hdr map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	_ = json.Unmarshal(raw, &hdr)
	hdr["alg"] = "HS256"
	hb, _ := json.Marshal(hdr)
	pub, _ := json.Marshal(env.Keys.Published()[0])
	signing := base64.RawURLEncoding.EncodeToString(hb) + "." + parts[1]
	mac := hmac.New(sha256.New, pub)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// TestLoginAndMeTable presents every kind of token to /oauth2/login and
// /api/me and checks the verdict, on both stores.
func TestLoginAndMeTable(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			clk := &clock{}
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg, Config: withClock(clk)})
			// Same store, so same keys: JWTs signed by our key with another iss or aud.
			otherIss := testenv.New(t, testenv.Options{Store: env.Store, Config: func(c *oauth.Config) { c.Issuer = "https://evil.example" }})
			otherAud := testenv.New(t, testenv.Options{Store: env.Store, Config: func(c *oauth.Config) { c.Audience = "ecommerce" }})
			env.PublicClient(t, "app")
			_, secret := env.ConfidentialClient(t, "svc")
			alive := env.User(t, "alive")
			gone := env.User(t, "gone")

			issue := func(e *testenv.Env, user, format string) map[string]any {
				return e.Token(t, testenv.PasswordForm("app", user, "token_type", format))
			}
			refreshed := func(user, format string) string {
				first := issue(env, user, "bearer")
				return env.Token(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
					"refresh_token": {first["refresh_token"].(string)}, "token_type": {format}})["access_token"].(string)
			}
			revoked := func(user, format string) string {
				tok := issue(env, user, format)["access_token"].(string)
				if rec := env.Post("/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {tok}}); rec.Code != 200 {
					t.Fatalf("revoke: %d", rec.Code)
				}
				return tok
			}
			var cases []presented
			for _, user := range []string{"alive", "gone"} {
				verdict, meStatus := "", 200
				if user == "gone" {
					verdict, meStatus = "account_disabled", 401
				}
				for _, format := range []string{"bearer", "jwt"} {
					k := func(s string) string { return user + "/" + format + "/" + s }
					cases = append(cases,
						presented{k("password"), issue(env, user, format)["access_token"].(string), false, verdict, meStatus, verdict},
						presented{k("refresh-issued"), refreshed(user, format), false, verdict, meStatus, verdict},
						presented{k("expired"), issue(env, user, format)["access_token"].(string), true, "token_expired", 401, "token_expired"},
						presented{k("tampered"), tamper(issue(env, user, format)["access_token"].(string)), false, "invalid_token", 401, "invalid_token"},
					)
					rv, rs, rc := "token_revoked", 401, "token_revoked"
					if user == "gone" {
						rv, rs, rc = "account_disabled", 401, "account_disabled"
					}
					cases = append(cases, presented{k("revoked"), revoked(user, format), false, rv, rs, rc})
				}
				jwt := issue(env, user, "jwt")["access_token"].(string)
				cases = append(cases,
					presented{user + "/jwt/hs256-forged", forgeHS256(t, jwt, env), false, "non_asymmetric_token", 401, "non_asymmetric_token"},
					presented{user + "/jwt/wrong-iss", issue(otherIss, user, "jwt")["access_token"].(string), false, "invalid_token", 401, "invalid_token"},
					presented{user + "/jwt/wrong-aud", issue(otherAud, user, "jwt")["access_token"].(string), false, "invalid_token", 401, "invalid_token"},
				)
			}
			for _, format := range []string{"bearer", "jwt"} {
				tok := env.Token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"},
					"client_secret": {secret}, "token_type": {format}})["access_token"].(string)
				cases = append(cases, presented{"client-credentials/" + format, tok, false, "non_supported_token", 403, "non_supported_token"})
			}
			// A client that lost the password grant: its users' tokens still
			// work at /api/me but no longer become sessions.
			env.PublicClient(t, "demoted")
			demoted := env.Token(t, testenv.PasswordForm("demoted", "alive", "token_type", "jwt"))["access_token"].(string)
			noPassword := []string{bff.GrantRefreshToken}
			if _, err := env.Admin.UpdateClient(context.Background(), "demoted", admin.ClientPatch{GrantTypes: &noPassword}); err != nil {
				t.Fatal(err)
			}
			cases = append(cases,
				presented{"client without the password grant", demoted, false, "non_supported_token", 200, ""},
				presented{"garbage", "not-a-token", false, "invalid_token", 401, "invalid_token"},
				presented{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiIxIn0.", false, "non_asymmetric_token", 401, "non_asymmetric_token"},
			)
			if _, err := env.Admin.DisableUser(context.Background(), gone.ID, "test"); err != nil {
				t.Fatal(err)
			}
			_ = alive

			for _, tc := range cases {
				for _, scheme := range []string{"Bearer", "JWT"} {
					if scheme == "JWT" && !oauth.IsJWT(tc.token) {
						continue
					}
					name := tc.name + "/" + scheme
					if tc.expired {
						clk.set(2 * time.Hour)
					}
					login := env.Post("/oauth2/login", url.Values{}, "Authorization", scheme+" "+tc.token)
					me := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
					req.Header.Set("Authorization", scheme+" "+tc.token)
					env.Public.ServeHTTP(me, req)
					clk.reset()

					if tc.login == "" {
						if login.Code != 204 || !strings.Contains(login.Header().Get("Set-Cookie"), oauth.SessionCookieName+"=") {
							t.Errorf("%s: login %d %s", name, login.Code, login.Body)
						}
					} else {
						var body map[string]string
						_ = json.Unmarshal(login.Body.Bytes(), &body)
						if login.Code != 401 || body["error_code"] != appCode(tc.login) || body["developer_message"] == "" {
							t.Errorf("%s: login %d %s, want 401 %s", name, login.Code, login.Body, appCode(tc.login))
						}
						if login.Header().Get("Set-Cookie") != "" {
							t.Errorf("%s: failed login set a cookie", name)
						}
					}
					if me.Code != tc.me {
						t.Errorf("%s: /api/me %d %s, want %d", name, me.Code, me.Body, tc.me)
						continue
					}
					if tc.meCode != "" {
						var p map[string]any
						_ = json.Unmarshal(me.Body.Bytes(), &p)
						if p["code"] != tc.meCode || me.Header().Get("Content-Type") != "application/problem+json" {
							t.Errorf("%s: /api/me code %v, want %s", name, p["code"], tc.meCode)
						}
						if me.Code == 401 && me.Header().Get("WWW-Authenticate") == "" {
							t.Errorf("%s: 401 without WWW-Authenticate", name)
						}
					}
				}
			}
		})
	}
}

// TestSessionCookie: login sets a cookie that /api/me accepts, repeated
// logins reuse the session, logout ends it.
func TestSessionCookie(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			env.PublicClient(t, "app")
			env.PublicClient(t, "restricted", func(c *admin.NewClient) { c.Restricted = true })
			u := env.User(t, "kim")
			tok := env.Token(t, testenv.PasswordForm("app", "kim", "token_type", "jwt"))["access_token"].(string)

			login := func(tok string) *http.Cookie {
				t.Helper()
				scheme := "Bearer "
				if oauth.IsJWT(tok) {
					scheme = "JWT "
				}
				rec := env.Post("/oauth2/login/", url.Values{}, "Authorization", scheme+tok)
				if rec.Code != 204 {
					t.Fatalf("login: %d %s", rec.Code, rec.Body)
				}
				cookies := (&http.Response{Header: rec.Header()}).Cookies()
				if len(cookies) != 1 {
					t.Fatalf("cookies: %v", cookies)
				}
				c := cookies[0]
				if c.Name != oauth.SessionCookieName || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
					t.Errorf("cookie attributes: %+v", c)
				}
				if c.MaxAge < 23*3600 || c.MaxAge > 24*3600 {
					t.Errorf("cookie Max-Age = %d, want the session TTL", c.MaxAge)
				}
				return c
			}
			me := func(c *http.Cookie) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
				if c != nil {
					req.AddCookie(c)
				}
				rec := httptest.NewRecorder()
				env.Public.ServeHTTP(rec, req)
				return rec
			}
			c1 := login(tok)
			c2 := login(tok)
			if c1.Value != c2.Value {
				t.Error("a second login with the same token made another session")
			}
			rec := me(c1)
			var got map[string]any
			if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
				t.Fatalf("/api/me with the cookie: %d %s", rec.Code, rec.Body)
			}
			want := map[string]any{"id": float64(u.ID), "username": "kim", "email": "kim@example.com", "name": "Test kim", "is_staff": false}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("/api/me = %v, want %v", got, want)
			}
			// Another token of the same user makes its own session.
			other := env.Token(t, testenv.PasswordForm("app", "kim"))["access_token"].(string)
			if login(other).Value == c1.Value {
				t.Error("two tokens share a session")
			}

			// Logout ends the session and clears the cookie.
			req := httptest.NewRequest(http.MethodPost, "/oauth2/logout", nil)
			req.AddCookie(c1)
			out := httptest.NewRecorder()
			env.Public.ServeHTTP(out, req)
			if out.Code != 204 || !strings.Contains(out.Header().Get("Set-Cookie"), "Max-Age=0") {
				t.Errorf("logout: %d %v", out.Code, out.Header())
			}
			if rec := me(c1); rec.Code != 401 {
				t.Errorf("/api/me after logout: %d", rec.Code)
			}
			if rec := me(nil); rec.Code != 401 {
				t.Errorf("/api/me without credentials: %d", rec.Code)
			}
			if rec := me(&http.Cookie{Name: oauth.SessionCookieName, Value: "forged"}); rec.Code != 401 {
				t.Errorf("/api/me with a forged cookie: %d", rec.Code)
			}
			// Logging in again with the same token does not revive the
			// logged-out session (whose cookie someone may have copied): a
			// new session needs a new token.
			again := env.Post("/oauth2/login", url.Values{}, "Authorization", "JWT "+tok)
			if again.Code != 401 || !strings.Contains(again.Body.String(), "token_nonexistent") {
				t.Errorf("login after logout with the same token: %d %s", again.Code, again.Body)
			}
			if rec := me(c1); rec.Code != 401 {
				t.Errorf("the logged-out cookie came back: %d", rec.Code)
			}
			fresh := env.Token(t, testenv.PasswordForm("app", "kim", "token_type", "jwt"))["access_token"].(string)
			if login(fresh).Value == c1.Value {
				t.Error("a new token got the logged-out session's cookie")
			}
			// A restricted client's password-grant JWT becomes a session too.
			rtok := env.Token(t, testenv.PasswordForm("restricted", "kim", "token_type", "bearer"))
			if !oauth.IsJWT(rtok["access_token"].(string)) || rtok["token_type"] != "Bearer" {
				t.Fatalf("restricted client asked for bearer: JWT %v labelled %v, want a JWT labelled Bearer", oauth.IsJWT(rtok["access_token"].(string)), rtok["token_type"])
			}
			login(rtok["access_token"].(string))

			// Disabling the user ends every session at once.
			if _, err := env.Admin.DisableUser(context.Background(), u.ID, "test"); err != nil {
				t.Fatal(err)
			}
			if rec := me(c2); rec.Code != 401 {
				t.Errorf("/api/me with the session of a disabled user: %d %s", rec.Code, rec.Body)
			}
		})
	}
}

// TestAppLogoutEndsWebSessions: revoking the refresh token (the app logging
// out) ends the web sessions made from tokens of that family; revoking an
// access token ends its own session only.
func TestAppLogoutEndsWebSessions(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			env.PublicClient(t, "app")
			env.User(t, "vera")
			for _, format := range []string{"bearer", "jwt"} {
				tok := env.Token(t, testenv.PasswordForm("app", "vera", "token_type", format))
				at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
				cookie := loginCookie(t, env, at)
				// Revoking the refresh token ends the session made from an
				// access token of its family (and revoking an access token
				// ends its own: TestRevokingATokenEndsItsSession).
				env.Post("/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {rt}})
				if code := meWithCookie(env, cookie); code != 401 {
					t.Errorf("%s: the session outlived the app's logout: %d", format, code)
				}
			}
		})
	}
}

// TestRevokingATokenEndsItsSession: revoking an access token (either
// format) ends the web session made from it (RFC 7009 §2.1), and no other.
func TestRevokingATokenEndsItsSession(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			env.PublicClient(t, "app")
			env.User(t, "rev")
			for _, format := range []string{"bearer", "jwt"} {
				revoked := env.Token(t, testenv.PasswordForm("app", "rev", "token_type", format))["access_token"].(string)
				kept := env.Token(t, testenv.PasswordForm("app", "rev", "token_type", format))["access_token"].(string)
				gone, stays := loginCookie(t, env, revoked), loginCookie(t, env, kept)
				if rec := env.Post("/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {revoked}}); rec.Code != http.StatusOK {
					t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
				}
				if code := meWithCookie(env, gone); code != http.StatusUnauthorized {
					t.Errorf("%s: the session of the revoked token answered %d", format, code)
				}
				if code := meWithCookie(env, stays); code != http.StatusOK {
					t.Errorf("%s: another session answered %d", format, code)
				}
			}
		})
	}
}

// loginCookie exchanges an access token for a web session and returns its
// cookie.
func loginCookie(t *testing.T, env *testenv.Env, token string) *http.Cookie {
	t.Helper()
	rec := env.Post("/oauth2/login", url.Values{}, "Authorization", "Bearer "+token)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	return rec.Result().Cookies()[0]
}

// meWithCookie calls /api/me with a session cookie and returns the status.
func meWithCookie(env *testenv.Env, c *http.Cookie) int {
	req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, req)
	return rec.Code
}

// TestSessionErrorBodiesGolden pins the edX error bodies of /oauth2/login and
// the problem bodies of /api/me.
func TestSessionErrorBodiesGolden(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "app")
	_, secret := env.ConfidentialClient(t, "svc")
	env.User(t, "wes")
	jwt := env.Token(t, testenv.PasswordForm("app", "wes", "token_type", "jwt"))["access_token"].(string)
	cc := env.Token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}})["access_token"].(string)
	cases := []struct{ name, header string }{
		{"invalid_token", "Bearer nonsense"},
		{"non_asymmetric_token", "JWT " + forgeHS256(t, jwt, env)},
		{"non_supported_token", "Bearer " + cc},
		{"missing", ""},
	}
	for _, tc := range cases {
		login := env.Post("/oauth2/login", url.Values{}, "Authorization", tc.header)
		testenv.Golden(t, "login_"+tc.name, []byte(`{"status":`+itoa(login.Code)+`,"body":`+login.Body.String()+`}`))
		req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		me := httptest.NewRecorder()
		env.Public.ServeHTTP(me, req)
		var p map[string]any
		_ = json.Unmarshal(me.Body.Bytes(), &p)
		delete(p, "request_id")
		out, _ := json.Marshal(map[string]any{"status": me.Code, "body": p, "www_authenticate": me.Header().Get("WWW-Authenticate")})
		testenv.Golden(t, "me_"+tc.name, out)
	}
}

// appCode is the apps' error_code (SPEC §0) for the service's verdict code.
func appCode(code string) string {
	switch code {
	case "invalid_token", "token_revoked":
		return "token_nonexistent"
	case "account_disabled":
		return "user_is_disabled"
	}
	return code
}
