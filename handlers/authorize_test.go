package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/store"
)

// flakyCodes is a store whose client reads or code writes fail on demand.
type flakyCodes struct {
	store.Store
	clientsDown, codesDown atomic.Bool
}

func (f *flakyCodes) GetClient(ctx context.Context, id string) (bff.Client, error) {
	if f.clientsDown.Load() {
		return bff.Client{}, fmt.Errorf("get client: %w", bff.ErrUnavailable)
	}
	return f.Store.GetClient(ctx, id)
}

func (f *flakyCodes) CreateAuthorizationCode(ctx context.Context, c bff.AuthorizationCode) error {
	if f.codesDown.Load() {
		return fmt.Errorf("create code: %w", bff.ErrUnavailable)
	}
	return f.Store.CreateAuthorizationCode(ctx, c)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// TestAuthorizeBadInputAndFailingStore: bad input on the authorize
// endpoint is a documented 4xx (an error page or a redirect with an
// error), never a 500; a failing store is a 503 page, never a redirect
// that would tell the app the user refused.
func TestAuthorizeBadInputAndFailingStore(t *testing.T) {
	t.Parallel()
	var flaky *flakyCodes
	env := testenv.New(t, testenv.Options{Wrap: func(s store.Store) store.Store { flaky = &flakyCodes{Store: s}; return flaky }})
	env.PublicClient(t, "app", func(c *admin.NewClient) {
		c.GrantTypes = []string{bff.GrantAuthorizationCode, bff.GrantRefreshToken}
		c.RedirectURIs = []string{"org.openedx.app://oauth2Callback"}
		no := false
		c.PKCERequired = &no
	})
	env.User(t, "alice")
	get := func(query string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		env.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+query, nil))
		return rec
	}
	good := "client_id=app&redirect_uri=" + url.QueryEscape("org.openedx.app://oauth2Callback") + "&response_type=code"
	for _, tt := range []struct {
		query    string
		status   int
		redirect string // the error code of a redirect, "" for a page
	}{
		{"", 400, ""},
		{"client_id=app&response_type=code", 200, ""}, // the one registered redirect URI is assumed (RFC 6749 §3.1.2.3)
		{"client_id=app", 303, "unsupported_response_type"},
		{"client_id=%zz", 400, ""},
		{"client_id=app&redirect_uri=%00", 400, ""},
		{"client_id=app&redirect_uri=org.openedx.app%3A%2F%2Fother", 400, ""},
		{good + "&client_id=app", 400, ""},
		{good + "&response_type=code", 303, "invalid_request"},
		{strings.Replace(good, "response_type=code", "response_type=token", 1), 303, "unsupported_response_type"},
		{good + "&scope=admin", 303, "invalid_scope"},
		{good + "&prompt=sideways", 303, "invalid_request"},
		{good + "&prompt=none", 303, "login_required"},
		{good + "&code_challenge=abc&code_challenge_method=S256", 303, "invalid_request"},
		{good + "&code_challenge_method=S256", 303, "invalid_request"},
		{good + "&code_challenge=" + strings.Repeat("a", 43), 303, "invalid_request"}, // no method is plain
		{good + "&login_hint=" + strings.Repeat("x", 5000), 200, ""},
	} {
		rec := get(tt.query)
		loc := rec.Header().Get("Location")
		if rec.Code != tt.status {
			t.Errorf("authorize?%.80s: %d, want %d (%s)", tt.query, rec.Code, tt.status, loc)
			continue
		}
		if tt.redirect == "" && loc != "" {
			t.Errorf("authorize?%.80s redirected to %s", tt.query, loc)
		}
		if tt.redirect != "" {
			u, _ := url.Parse(loc)
			if !strings.HasPrefix(loc, "org.openedx.app://oauth2Callback?") || u.Query().Get("error") != tt.redirect ||
				u.Query().Get("iss") != testenv.Issuer {
				t.Errorf("authorize?%.80s: redirect %s, want error %s with iss", tt.query, loc, tt.redirect)
			}
		}
		if rec.Code >= 200 && rec.Code < 300 || rec.Code == 400 {
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("authorize?%.80s: CSP %q", tt.query, csp)
			}
		}
	}

	// The form: bad bodies show the form again with a 4xx, never a 500.
	page := get(good)
	seed := ""
	for _, c := range page.Result().Cookies() {
		if c.Name == "bff_signin_csrf" {
			seed = c.Value
		}
	}
	m := csrfField.FindStringSubmatch(page.Body.String())
	if seed == "" || m == nil {
		t.Fatalf("no CSRF cookie or field: %v", page.Result().Cookies())
	}
	post := func(body, contentType string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/authorize/?"+good, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.AddCookie(&http.Cookie{Name: "bff_signin_csrf", Value: seed})
		rec := httptest.NewRecorder()
		env.Public.ServeHTTP(rec, req)
		return rec
	}
	form := func(kv ...string) string {
		v := url.Values{"csrf_token": {m[1]}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const formType = "application/x-www-form-urlencoded"
	for name, tt := range map[string]struct {
		body, contentType string
		status            int
	}{
		"json body":          {`{"username":"alice"}`, "application/json", 400},
		"bad form encoding":  {"username=%zz", formType, 400},
		"duplicate password": {form("username", "alice", "password", "a", "password", "b"), formType, 400},
		"empty password":     {form("username", "alice"), formType, 400},
		"wrong csrf":         {strings.Replace(form("username", "alice", "password", "x"), "csrf_token=", "csrf_token=x", 1), formType, 403},
		"huge body":          {form("username", strings.Repeat("a", 200<<10), "password", "x"), formType, 413},
		"wrong password":     {form("username", "alice", "password", "not it"), formType, 401},
	} {
		if rec := post(tt.body, tt.contentType); rec.Code != tt.status || rec.Header().Get("Location") != "" {
			t.Errorf("%s: %d %q, want %d", name, rec.Code, rec.Header().Get("Location"), tt.status)
		}
	}

	// The dashboard shows the client's browser sign-in and its redirect URIs.
	dreq := httptest.NewRequest(http.MethodGet, "/admin/dashboard", nil)
	dreq.Header.Set("Authorization", "Bearer "+testenv.AdminToken)
	drec := httptest.NewRecorder()
	env.AdminH.ServeHTTP(drec, dreq)
	if d := drec.Body.String(); drec.Code != 200 || !strings.Contains(d, `data-browser-sign-in="no-pkce"`) ||
		!strings.Contains(d, "<code>org.openedx.app://oauth2Callback</code>") {
		t.Errorf("dashboard: %d, no browser sign-in badge or redirect URIs", drec.Code)
	}

	// The store fails writing the code: 503, no redirect.
	flaky.codesDown.Store(true)
	if rec := post(form("username", "alice", "password", testenv.Password), formType); rec.Code != 503 || rec.Header().Get("Location") != "" {
		t.Errorf("code write failing: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	flaky.codesDown.Store(false)
	// The store fails reading the client: 503 page with Retry-After.
	flaky.clientsDown.Store(true)
	if rec := get(good); rec.Code != 503 || rec.Header().Get("Retry-After") == "" || rec.Header().Get("Location") != "" {
		t.Errorf("client read failing: %d %v", rec.Code, rec.Header())
	}
}

// FuzzAuthorize sends arbitrary queries and form bodies to the authorize
// endpoint. Whatever the input, the answer is never a 500, and a redirect
// goes only to the registered redirect URI (any port for loopback), with
// iss.
func FuzzAuthorize(f *testing.F) {
	env := testenv.New(f, testenv.Options{})
	env.PublicClient(f, "app", func(c *admin.NewClient) {
		c.GrantTypes = []string{bff.GrantAuthorizationCode}
		c.RedirectURIs = []string{"org.openedx.app://oauth2Callback", "http://127.0.0.1/cb"}
	})
	env.User(f, "alice")
	for _, s := range [][2]string{
		{"client_id=app&redirect_uri=org.openedx.app%3A%2F%2Foauth2Callback&response_type=code", ""},
		{"client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", "username=alice&password=x&csrf_token=y"},
		{"client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1.evil.example%2Fcb&response_type=code", ""},
		{"client_id=app&response_type=code&prompt=none&state=%00", ""},
		{"client_id=app&client_id=app", "username=a&username=b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, query, body string) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req := httptest.NewRequest(method, "/oauth2/authorize", strings.NewReader(body))
			req.URL.RawQuery = query
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			env.Public.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s ?%q body %q: %d %s", method, query, body, rec.Code, rec.Body)
			}
			if loc := rec.Header().Get("Location"); loc != "" {
				u, err := url.Parse(loc)
				if err != nil || u.Query().Get("iss") != testenv.Issuer {
					t.Fatalf("redirect without iss: %q", loc)
				}
				u.RawQuery = ""
				if s := u.String(); s != "org.openedx.app://oauth2Callback" && !(u.Scheme == "http" && u.Hostname() == "127.0.0.1" && u.Path == "/cb") {
					t.Fatalf("redirect to an unregistered URI: %q", loc)
				}
			}
		}
	})
}

// TestSignInSessionAfterAnEarlierReset: a user whose password was changed
// (or who was disabled and enabled again) before signing in gets a
// browser sign-in session that skips the form next time, on every store.
// PostgreSQL once read a sign-in session back without its sign-in time, so
// every such user saw the form again each time.
func TestSignInSessionAfterAnEarlierReset(t *testing.T) {
	t.Parallel()
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := testenv.New(t, testenv.Options{Postgres: pg})
		env.PublicClient(t, "mobile", func(c *admin.NewClient) {
			c.GrantTypes = []string{bff.GrantAuthorizationCode, bff.GrantRefreshToken}
			c.RedirectURIs = []string{benchRedirect}
			no := false
			c.PKCERequired = &no
		})
		u := env.User(t, "alice")
		ctx := context.Background()
		if err := env.Store.SetUserPassword(ctx, u.ID, u.PasswordHash, "test", time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		query := url.Values{"client_id": {"mobile"}, "redirect_uri": {benchRedirect}, "response_type": {"code"}}.Encode()
		cookie := signInCookie(t, env, query)
		req := httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+query, nil)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		env.Public.ServeHTTP(rec, req)
		loc, _ := url.Parse(rec.Header().Get("Location"))
		if rec.Code != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
			t.Fatalf("second authorize: %d %q, want a redirect with a code (the form skipped)", rec.Code, rec.Header().Get("Location"))
		}
	})
}
