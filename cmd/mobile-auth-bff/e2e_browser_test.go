package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// browser is a cookie-keeping client that follows no redirect: every
// authorization response is looked at, as a Custom Tab hands it to the app.
type signInBrowser struct {
	t       *testing.T
	s       *server
	cookies map[string]string
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func newSignInBrowser(s *server) *signInBrowser {
	return &signInBrowser{t: s.t, s: s, cookies: map[string]string{}}
}

func (b *signInBrowser) do(method, path string, form url.Values) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.public+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	data, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: data}
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn opens the authorize URL, fills in the form and returns the answer
// to the post.
func (b *signInBrowser) signIn(authorizePath, login, password string) response {
	b.t.Helper()
	page := b.do(http.MethodGet, authorizePath, nil)
	if page.status != 200 {
		b.t.Fatalf("authorize page: %d %s", page.status, page.body)
	}
	m := csrfRe.FindSubmatch(page.body)
	if m == nil {
		b.t.Fatalf("no CSRF token in the page: %s", page.body)
	}
	return b.do(http.MethodPost, authorizePath, url.Values{"csrf_token": {string(m[1])}, "username": {login}, "password": {password}})
}

// redirected returns the query of a 303 to the app, checking where it goes.
func redirected(t *testing.T, r response, prefix string) url.Values {
	t.Helper()
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, prefix) {
		t.Fatalf("want a 303 to %s, got %d %q %s", prefix, r.status, loc, r.body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("iss") != e2eIssuer {
		t.Errorf("authorization response without iss (RFC 9207): %s", loc)
	}
	return q
}

const androidRedirect = "org.openedx.app://oauth2Callback"

// TestE2EBrowserSignInAndroid: the Android app's BROWSER_LOGIN requests
// (SPEC §0) — no state, no PKCE, a client with pkce_required=false — then
// the code exchanged at the trailing-slash token endpoint for a JWT the
// edX way; the code works once, and its replay revokes what it gave.
func TestE2EBrowserSignInAndroid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		s := start(t, baseEnv(be.env))
		s.createMobileClient("android", map[string]any{
			"grant_types":   []string{"password", "refresh_token", "authorization_code"},
			"redirect_uris": []string{androidRedirect}, "pkce_required": false,
		})
		uid := s.createUser("lena")
		b := newSignInBrowser(s)
		authorize := "/oauth2/authorize/?" + url.Values{"client_id": {"android"}, "redirect_uri": {androidRedirect},
			"response_type": {"code"}}.Encode()

		page := b.do(http.MethodGet, authorize, nil)
		csp := page.header.Get("Content-Security-Policy")
		if page.status != 200 || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
			t.Fatalf("sign-in page: %d CSP %q %q %s", page.status, csp, page.header.Get("Location"), page.body)
		}
		if !strings.Contains(string(page.body), `<label for="username">`) || !strings.Contains(string(page.body), `name="viewport"`) {
			t.Errorf("sign-in page lacks labels or a mobile viewport: %s", page.body)
		}
		if b.do(http.MethodPost, authorize, url.Values{"username": {"lena"}, "password": {e2ePassword}}).status != http.StatusForbidden {
			t.Error("a post without a CSRF token was not refused")
		}
		// A wrong password: the form again, with a message that does not
		// say whether the account exists.
		wrong := b.signIn(authorize, "lena", "wrong password!")
		if wrong.status != http.StatusUnauthorized || !strings.Contains(string(wrong.body), "username or password is not right") {
			t.Errorf("wrong password: %d %s", wrong.status, wrong.body)
		}
		unknown := b.signIn(authorize, "nobody", "wrong password!")
		if unknown.status != wrong.status || !strings.Contains(string(unknown.body), "username or password is not right") {
			t.Errorf("unknown user answered differently: %d", unknown.status)
		}

		q := redirected(t, b.signIn(authorize, "lena", e2ePassword), androidRedirect+"?")
		code := q.Get("code")
		if code == "" || q.Has("state") {
			t.Fatalf("authorization response: %v", q)
		}
		redeem := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {androidRedirect},
			"client_id": {"android"}, "token_type": {"JWT"}, "asymmetric_jwt": {"true"}}
		r := s.postForm("/oauth2/access_token/", redeem)
		if r.status != 200 {
			t.Fatalf("code exchange: %d %s", r.status, r.body)
		}
		tok := r.json(t)
		if tok["token_type"] != "JWT" || tok["refresh_token"] == nil {
			t.Fatalf("code exchange response: %v", tok)
		}
		access := tok["access_token"].(string)
		_, claims := s.verifyJWT(access)
		if claims["grant_type"] != "authorization_code" || claims["preferred_username"] != "lena" {
			t.Errorf("JWT claims: %v", claims)
		}
		me := s.get("/api/me", "Authorization", "JWT "+access)
		if me.status != 200 || me.json(t)["id"] != float64(uid) {
			t.Fatalf("/api/me with the code's token: %d %s", me.status, me.body)
		}
		// The tokens become web sessions like password-grant tokens.
		if l := do(t, http.MethodPost, s.public+"/oauth2/login/", nil, map[string]string{"Authorization": "JWT " + access}); l.status != 204 {
			t.Errorf("/oauth2/login with the code's token: %d %s", l.status, l.body)
		}
		// The refresh token works, and keeps the grant type.
		rr := s.postForm("/oauth2/access_token/", url.Values{"grant_type": {"refresh_token"}, "client_id": {"android"},
			"refresh_token": {tok["refresh_token"].(string)}, "token_type": {"JWT"}})
		if rr.status != 200 {
			t.Fatalf("refresh: %d %s", rr.status, rr.body)
		}
		refreshed := rr.json(t)["access_token"].(string)
		if _, c := s.verifyJWT(refreshed); c["grant_type"] != "authorization_code" {
			t.Errorf("refreshed grant_type: %v", c["grant_type"])
		}

		// A replayed code: invalid_grant, and every token from it revoked.
		replay := s.postForm("/oauth2/access_token/", redeem)
		if replay.status != 400 || replay.json(t)["error"] != "invalid_grant" {
			t.Errorf("replayed code: %d %s", replay.status, replay.body)
		}
		for _, tk := range []string{access, refreshed} {
			if me := s.get("/api/me", "Authorization", "JWT "+tk); me.status != 401 {
				t.Errorf("/api/me after the replay: %d %s", me.status, me.body)
			}
		}

		// A second authorize skips the form: the sign-in session.
		again := redirected(t, b.do(http.MethodGet, authorize, nil), androidRedirect+"?")
		if again.Get("code") == "" || again.Get("code") == code {
			t.Errorf("second authorize: %v", again)
		}
		// prompt=login shows the form anyway, login_hint pre-fills it.
		forced := b.do(http.MethodGet, authorize+"&prompt=login&login_hint=lena%40example.com", nil)
		if forced.status != 200 || !strings.Contains(string(forced.body), `value="lena@example.com"`) {
			t.Errorf("prompt=login with login_hint: %d %s", forced.status, forced.body)
		}
		// The metrics count the sign-ins by grant, and the page's answers.
		metrics := string(do(t, http.MethodGet, s.admin+"/metrics", nil, nil).body)
		for _, want := range []string{
			`bff_tokens_issued_total{binding="none",client_id="android",format="jwt",grant_type="authorization_code"} 1`,
			`bff_authorize_total{result="ok"} 2`,
			`bff_authorize_total{result="invalid_credentials"} 2`,
			`bff_authorize_total{result="csrf"} 1`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		// Logging out ends the sign-in session.
		if r := b.do(http.MethodPost, "/oauth2/logout", url.Values{}); r.status != 204 {
			t.Errorf("logout: %d", r.status)
		}
		if b.cookies["bff_signin"] != "" {
			t.Error("logout left the sign-in cookie")
		}
	})
}

// TestE2EBrowserSignInPKCE: a standard native client (golang.org/x/oauth2,
// S256) with a loopback redirect URI on any port; the wrong verifier, a
// missing or plain challenge, an unregistered redirect URI, a disabled
// user — before the form and between sign-in and redemption.
func TestE2EBrowserSignInPKCE(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		s := start(t, baseEnv(be.env))
		s.createMobileClient("native", map[string]any{
			"grant_types":   []string{"authorization_code", "refresh_token"},
			"redirect_uris": []string{"http://127.0.0.1/callback"},
		})
		uid := s.createUser("lena")
		conf := &oauth2.Config{ClientID: "native", RedirectURL: "http://127.0.0.1:48123/callback",
			Endpoint: oauth2.Endpoint{AuthURL: s.public + "/oauth2/authorize", TokenURL: s.public + "/oauth2/token",
				AuthStyle: oauth2.AuthStyleInParams}}
		verifier := oauth2.GenerateVerifier()
		authURL, _ := url.Parse(conf.AuthCodeURL("state-1234", oauth2.S256ChallengeOption(verifier)))
		path := authURL.Path + "?" + authURL.RawQuery
		b := newSignInBrowser(s)
		q := redirected(t, b.signIn(path, "lena@example.com", e2ePassword), "http://127.0.0.1:48123/callback?")
		if q.Get("state") != "state-1234" {
			t.Errorf("state not echoed: %v", q)
		}
		ctx := context.Background()
		if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(strings.Repeat("x", 43))); err == nil {
			t.Error("a wrong verifier was accepted")
		}
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange with the verifier: %v", err)
		}
		if tok.TokenType != "Bearer" || tok.RefreshToken == "" {
			t.Errorf("token: %+v", tok)
		}
		if me := s.get("/api/me", "Authorization", "Bearer "+tok.AccessToken); me.status != 200 {
			t.Errorf("/api/me: %d %s", me.status, me.body)
		}

		// No challenge from a client that must send one, or plain: back to
		// the app with invalid_request, state and iss.
		for name, extra := range map[string]url.Values{
			"none":  {},
			"plain": {"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}},
		} {
			p := url.Values{"client_id": {"native"}, "redirect_uri": {"http://127.0.0.1:5000/callback"},
				"response_type": {"code"}, "state": {"s-" + name}}
			for k, v := range extra {
				p[k] = v
			}
			e := redirected(t, b.do(http.MethodGet, "/oauth2/authorize?"+p.Encode(), nil), "http://127.0.0.1:5000/callback?")
			if e.Get("error") != "invalid_request" || e.Get("state") != "s-"+name || e.Get("error_description") == "" {
				t.Errorf("PKCE %s: %v", name, e)
			}
		}
		// An unregistered redirect URI or client: an error page, never a redirect.
		for _, p := range []url.Values{
			{"client_id": {"native"}, "redirect_uri": {"http://127.0.0.1:5000/elsewhere"}, "response_type": {"code"}},
			{"client_id": {"native"}, "redirect_uri": {"https://evil.example.com/callback"}, "response_type": {"code"}},
			{"client_id": {"nope"}, "redirect_uri": {"http://127.0.0.1/callback"}, "response_type": {"code"}},
			{"client_id": {"native", "native"}, "redirect_uri": {"http://127.0.0.1/callback"}, "response_type": {"code"}},
		} {
			r := b.do(http.MethodGet, "/oauth2/authorize?"+p.Encode(), nil)
			if r.status != 400 || r.header.Get("Location") != "" || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
				t.Errorf("%v: %d %q", p, r.status, r.header.Get("Location"))
			}
		}
		// Bad input is a documented error, never a 500.
		for _, raw := range []string{"", "client_id=%ff", "client_id=native&redirect_uri=%00", "response_type=token&client_id=native"} {
			if r := b.do(http.MethodGet, "/oauth2/authorize?"+raw, nil); r.status >= 500 {
				t.Errorf("authorize?%s: %d", raw, r.status)
			}
		}
		if r := s.postForm("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"native"},
			"code": {"garbage"}, "redirect_uri": {"http://127.0.0.1:48123/callback"}}); r.status != 400 || r.json(t)["error"] != "invalid_grant" {
			t.Errorf("garbage code: %d %s", r.status, r.body)
		}

		// Disabled between sign-in and redemption: 403 account_disabled.
		verifier2 := oauth2.GenerateVerifier()
		sum := sha256.Sum256([]byte(verifier2))
		authURL2, _ := url.Parse(conf.AuthCodeURL("state-5678", oauth2.SetAuthURLParam("code_challenge",
			base64.RawURLEncoding.EncodeToString(sum[:])), oauth2.SetAuthURLParam("code_challenge_method", "S256")))
		q2 := redirected(t, b.do(http.MethodGet, authURL2.Path+"?"+authURL2.RawQuery, nil), "http://127.0.0.1:48123/callback?")
		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/disable", nil, http.StatusOK)
		r := s.postForm("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"native"},
			"code": {q2.Get("code")}, "redirect_uri": {"http://127.0.0.1:48123/callback"}, "code_verifier": {verifier2}})
		if r.status != 403 || r.json(t)["error"] != "account_disabled" {
			t.Errorf("redeeming a disabled user's code: %d %s", r.status, r.body)
		}
		// Disabling ended the sign-in session: the form is back, and the
		// disabled account cannot sign in.
		if r := b.do(http.MethodGet, authURL2.Path+"?"+authURL2.RawQuery, nil); r.status != 200 {
			t.Errorf("authorize after disabling: %d %q", r.status, r.header.Get("Location"))
		}
		if r := b.signIn(authURL2.Path+"?"+authURL2.RawQuery, "lena", e2ePassword); r.status != 403 ||
			!strings.Contains(string(r.body), "cannot sign in") {
			t.Errorf("disabled user signing in: %d %s", r.status, r.body)
		}
	})
}

var demoURLRe = regexp.MustCompile(`(http://127\.0\.0\.1:[0-9]+/oauth2/authorize\?[^\s]+)`)

// TestE2EDemoBrowserSignIn: serve --demo prints a browser URL; signing in
// there lands on the demo's own loopback callback, which redeems the code
// with its verifier and shows the tokens.
func TestE2EDemoBrowserSignIn(t *testing.T) {
	t.Parallel()
	s := start(t, baseEnv(), "--demo")
	var authorize string
	for i := 0; i < 200 && authorize == ""; i++ {
		if m := demoURLRe.FindStringSubmatch(s.out.String()); m != nil {
			authorize = m[1]
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if authorize == "" {
		t.Fatalf("no browser sign-in URL printed:\n%s", s.out)
	}
	u, _ := url.Parse(authorize)
	b := newSignInBrowser(s)
	res := b.signIn(u.Path+"?"+u.RawQuery, demoUsername, demoPassword)
	q := redirected(t, res, "http://127.0.0.1:")
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	page := do(t, http.MethodGet, res.header.Get("Location"), nil, nil)
	if page.status != 200 || !strings.Contains(string(page.body), "Signed in") || !strings.Contains(string(page.body), "access_token") {
		t.Fatalf("demo callback: %d %s", page.status, page.body)
	}
}

// TestE2EBrowserSignInThrottleAndRace: the sign-in page shares the
// password grant's throttle (429 with a readable message and Retry-After,
// counted across the page and the token endpoint); concurrent redemptions
// of one code give tokens once, the others invalid_grant with the tokens
// revoked; introspection and the migration report say authorization_code;
// a password change ends the sign-in session.
func TestE2EBrowserSignInThrottleAndRace(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		s := start(t, baseEnv(be.env, map[string]string{"BFF_LOGIN_MAX_FAILURES_PER_USERNAME": "3"}))
		s.createMobileClient("android", map[string]any{
			"grant_types":   []string{"password", "refresh_token", "authorization_code"},
			"redirect_uris": []string{androidRedirect}, "pkce_required": false,
		})
		secret := s.createBackend("svc")
		uid := s.createUser("lena")
		s.createUser("mira")
		authorize := "/oauth2/authorize?" + url.Values{"client_id": {"android"}, "redirect_uri": {androidRedirect},
			"response_type": {"code"}}.Encode()
		b := newSignInBrowser(s)

		// Two failures on the page, one at the token endpoint: the fourth
		// attempt anywhere is throttled.
		for range 2 {
			if r := b.signIn(authorize, "mira", "wrong password!"); r.status != 401 {
				t.Fatalf("wrong password: %d", r.status)
			}
		}
		s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"android"},
			"username": {"mira"}, "password": {"wrong password!"}})
		r := b.signIn(authorize, "mira", e2ePassword)
		if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "Too many sign-in attempts") {
			t.Errorf("throttled sign-in: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
		}

		// Concurrent redemptions of one code.
		code := redirected(t, b.signIn(authorize, "lena", e2ePassword), androidRedirect).Get("code")
		redeem := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {androidRedirect},
			"client_id": {"android"}}
		const n = 8
		results := make(chan response, n)
		for range n {
			go func() { results <- s.postForm("/oauth2/access_token/", redeem) }()
		}
		var won []string
		for range n {
			r := <-results
			switch {
			case r.status == 200:
				won = append(won, r.json(t)["access_token"].(string))
			case r.status != 400 || r.json(t)["error"] != "invalid_grant":
				t.Errorf("concurrent redemption: %d %s", r.status, r.body)
			}
		}
		if len(won) != 1 {
			t.Fatalf("%d concurrent redemptions got tokens, want 1", len(won))
		}
		// Whoever lost, the winner's tokens are revoked (a replay).
		if in := s.introspect("svc", secret, won[0]); in["active"] != false {
			t.Errorf("the winner's token after the replays: %v", in)
		}

		// Introspection says authorization_code.
		code = redirected(t, b.do(http.MethodGet, authorize, nil), androidRedirect).Get("code")
		redeem.Set("code", code)
		tok := s.postForm("/oauth2/access_token/", redeem)
		if tok.status != 200 {
			t.Fatalf("redeem: %d %s", tok.status, tok.body)
		}
		if in := s.introspect("svc", secret, tok.json(t)["access_token"].(string)); in["active"] != true || in["grant_type"] != "authorization_code" {
			t.Errorf("introspection: %v", in)
		}

		// A password change ends the sign-in session: the form is back.
		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/password", map[string]any{"password": "another long password"}, http.StatusNoContent)
		if r := b.do(http.MethodGet, authorize, nil); r.status != 200 {
			t.Errorf("authorize after a password change: %d %q", r.status, r.header.Get("Location"))
		}
	})
}

// TestE2EBrowserSignInOmittedRedirectURI: a client with one redirect URI
// may omit it at the authorize endpoint (RFC 6749 §3.1.2.3); the code is
// then redeemed without it (§4.1.3), and a code bound to a redirect URI
// is not redeemed with another.
func TestE2EBrowserSignInOmittedRedirectURI(t *testing.T) {
	t.Parallel()
	s := start(t, baseEnv())
	s.createMobileClient("android", map[string]any{
		"grant_types": []string{"authorization_code"}, "redirect_uris": []string{androidRedirect}, "pkce_required": false,
	})
	s.createMobileClient("other", map[string]any{
		"grant_types": []string{"authorization_code"}, "redirect_uris": []string{"org.example.other://cb"}, "pkce_required": false,
	})
	s.createUser("lena")
	b := newSignInBrowser(s)
	code := redirected(t, b.signIn("/oauth2/authorize?client_id=android&response_type=code", "lena", e2ePassword), androidRedirect+"?").Get("code")
	if r := s.postForm("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"android"}, "code": {code}}); r.status != 200 {
		t.Errorf("redeeming without redirect_uri: %d %s", r.status, r.body)
	}
	bound := redirected(t, b.do(http.MethodGet, "/oauth2/authorize?client_id=android&response_type=code&redirect_uri="+
		url.QueryEscape(androidRedirect), nil), androidRedirect+"?").Get("code")
	for name, f := range map[string]url.Values{
		"no redirect_uri":    {"client_id": {"android"}},
		"another client":     {"client_id": {"other"}, "redirect_uri": {androidRedirect}},
		"other redirect_uri": {"client_id": {"android"}, "redirect_uri": {"org.openedx.app://elsewhere"}},
	} {
		f.Set("grant_type", "authorization_code")
		f.Set("code", bound)
		if r := s.postForm("/oauth2/token", f); r.status != 400 || r.json(t)["error"] != "invalid_grant" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}
