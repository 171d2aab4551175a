package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"
)

// TestE2ESessionExchange: password grant → login with each format →
// cookie → /api/me → logout → /api/me 401, through the real binary.
func TestE2ESessionExchange(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env, map[string]string{"BFF_COOKIE_SECURE": "false", "BFF_SESSION_TTL": "2h"}))
		s.createMobileClient("app", nil)
		uid := s.createUser("lena")
		cfg := s.oauthConfig("app")
		for _, tc := range []struct{ format, scheme string }{{"", "Bearer"}, {"jwt", "Bearer"}, {"jwt", "JWT"}} {
			tok, err := cfg.PasswordCredentialsToken(oauthCtx(tc.format), "lena", e2ePassword)
			if err != nil {
				t.Fatal(err)
			}
			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
			call := func(method, path string, header map[string]string) *http.Response {
				req, _ := http.NewRequest(method, s.public+path, nil)
				for k, v := range header {
					req.Header.Set(k, v)
				}
				res, err := browser.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res
			}
			name := tc.format + "/" + tc.scheme
			if res := call("POST", "/oauth2/login", map[string]string{"Authorization": tc.scheme + " " + tok.AccessToken}); res.StatusCode != 204 {
				t.Fatalf("%s: login %d", name, res.StatusCode)
			}
			u, _ := url.Parse(s.public)
			if len(jar.Cookies(u)) != 1 {
				t.Fatalf("%s: no session cookie", name)
			}
			// The web view has only the cookie now.
			r := do(t, "GET", s.public+"/api/me", nil, map[string]string{"Cookie": jar.Cookies(u)[0].String()})
			if r.status != 200 || r.json(t)["id"] != float64(uid) || r.json(t)["username"] != "lena" {
				t.Fatalf("%s: /api/me with the cookie: %d %s", name, r.status, r.body)
			}
			// The token works at /api/me directly as well.
			if r := do(t, "GET", s.public+"/api/me", nil, map[string]string{"Authorization": tc.scheme + " " + tok.AccessToken}); r.status != 200 {
				t.Errorf("%s: /api/me with the token: %d", name, r.status)
			}
			cookie := jar.Cookies(u)[0].String()
			if res := call("POST", "/oauth2/logout", nil); res.StatusCode != 204 {
				t.Fatalf("%s: logout %d", name, res.StatusCode)
			}
			if len(jar.Cookies(u)) != 0 {
				t.Errorf("%s: logout left the cookie", name)
			}
			r = do(t, "GET", s.public+"/api/me", nil, map[string]string{"Cookie": cookie})
			if r.status != 401 || r.json(t)["code"] != "invalid_token" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: /api/me after logout: %d %s", name, r.status, r.body)
			}
		}
		// Without credentials.
		if r := s.get("/api/me"); r.status != 401 {
			t.Errorf("/api/me without credentials: %d", r.status)
		}
		if r := s.postForm("/oauth2/login", url.Values{}); r.status != 401 || r.json(t)["error_code"] != "token_nonexistent" {
			t.Errorf("login without credentials: %d %s", r.status, r.body)
		}
	})
}
