package handlers_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
)

const benchRedirect = "org.openedx.app://oauth2Callback"

// signInCookie signs alice in on the sign-in page once (one argon2id check)
// and returns the browser sign-in session cookie, so that each iteration
// measures what a returning user's browser sign-in costs: the authorize
// request skipping the form, the code written, the code redeemed with its
// PKCE verifier, the tokens issued.
func signInCookie(b testing.TB, env *testenv.Env, query string) *http.Cookie {
	b.Helper()
	page := httptest.NewRecorder()
	env.Public.ServeHTTP(page, httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+query, nil))
	var seed *http.Cookie
	for _, c := range page.Result().Cookies() {
		if c.Name == "bff_signin_csrf" {
			seed = c
		}
	}
	m := csrfField.FindStringSubmatch(page.Body.String())
	if seed == nil || m == nil {
		b.Fatalf("sign-in page without CSRF cookie or field: %d", page.Code)
	}
	form := url.Values{"csrf_token": {m[1]}, "username": {"alice"}, "password": {testenv.Password}}
	req := httptest.NewRequest(http.MethodPost, "/oauth2/authorize?"+query, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = benchClientAddr
	req.AddCookie(seed)
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		b.Fatalf("sign-in: %d %s", rec.Code, rec.Body)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == "bff_signin" {
			return c
		}
	}
	b.Fatal("sign-in set no bff_signin cookie")
	return nil
}

// benchAuthorizationCode measures one browser sign-in of a signed-in user:
// GET /oauth2/authorize with the session cookie (303 with a code), then the
// authorization_code grant with the PKCE verifier.
func benchAuthorizationCode(format, responseType string) func(*testing.B, *testenv.Env) {
	return func(b *testing.B, env *testenv.Env) {
		env.PublicClient(b, "mobile", func(c *admin.NewClient) {
			c.GrantTypes = []string{bff.GrantAuthorizationCode, bff.GrantRefreshToken}
			c.RedirectURIs = []string{benchRedirect}
		})
		env.User(b, "alice")
		const verifier = "bench-verifier-0123456789-0123456789-0123456789"
		sum := sha256.Sum256([]byte(verifier))
		query := url.Values{"client_id": {"mobile"}, "redirect_uri": {benchRedirect}, "response_type": {"code"},
			"state": {"bench-state-1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
			"code_challenge_method": {"S256"}}.Encode()
		cookie := signInCookie(b, env, query)
		token := url.Values{"grant_type": {"authorization_code"}, "client_id": {"mobile"}, "redirect_uri": {benchRedirect},
			"code_verifier": {verifier}, "token_type": {format}}
		signIn := func() *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+query, nil)
			req.RemoteAddr = benchClientAddr
			req.AddCookie(cookie)
			rec := httptest.NewRecorder()
			env.Public.ServeHTTP(rec, req)
			benchMustStatus(b, rec, http.StatusSeeOther)
			loc, err := url.Parse(rec.Header().Get("Location"))
			if err != nil || loc.Query().Get("code") == "" {
				b.Fatalf("authorize redirected to %q", rec.Header().Get("Location"))
			}
			token.Set("code", loc.Query().Get("code"))
			return benchPost(env, "/oauth2/access_token", token.Encode())
		}
		benchMustToken(b, signIn(), responseType)
		b.ReportAllocs()
		for b.Loop() {
			benchMustStatus(b, signIn(), http.StatusOK)
		}
	}
}

// BenchmarkAuthorizationCodeJWT is a returning user's browser sign-in
// issuing a JWT.
func BenchmarkAuthorizationCodeJWT(b *testing.B) {
	benchEachSetup(b, benchJWTSetups, benchAuthorizationCode("jwt", "JWT"))
}

// BenchmarkAuthorizationCodeOpaque is a returning user's browser sign-in
// issuing a Bearer token.
func BenchmarkAuthorizationCodeOpaque(b *testing.B) {
	benchEachSetup(b, benchOpaqueSetups, benchAuthorizationCode("bearer", "Bearer"))
}
