package handlers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
)

// browser is an HTTP client with a cookie jar on the admin listener, over
// TLS (the session cookie is Secure), that does not follow redirects and
// sends Origin on POSTs like a browser.
type browser struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

func newBrowser(t *testing.T, env *testenv.Env) *browser {
	t.Helper()
	srv := httptest.NewTLSServer(env.AdminH)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, srv: srv, c: c}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, body io.Reader, header ...string) page {
	b.t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", b.srv.URL)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(raw)}
}

func (b *browser) get(path string, header ...string) page {
	return b.do(http.MethodGet, path, nil, header...)
}

func (b *browser) post(path string, form url.Values, header ...string) page {
	return b.do(http.MethodPost, path, strings.NewReader(form.Encode()),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, header...)...)
}

func (b *browser) signIn(token string) page {
	return b.post("/admin/signin", url.Values{"admin_token": {token}})
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads the CSRF token from the dashboard, as the page's forms carry it.
func (b *browser) csrf() string {
	b.t.Helper()
	p := b.get("/admin/dashboard")
	m := csrfRe.FindStringSubmatch(p.body)
	if p.status != 200 || m == nil {
		b.t.Fatalf("no CSRF token on the dashboard (%d)", p.status)
	}
	return m[1]
}

// TestDashboardSignIn: the admin token typed once gives a session cookie
// that every admin route accepts; wrong tokens, other origins and tampered
// cookies get nothing.
func TestDashboardSignIn(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "app")
	b := newBrowser(t, env)

	if p := b.get("/admin/dashboard"); p.status != 303 || p.header.Get("Location") != "/admin/signin" {
		t.Fatalf("dashboard without a session: %d %s", p.status, p.header.Get("Location"))
	}
	if p := b.get("/admin/migration"); p.status != 401 || !strings.Contains(p.body, `"unauthorized"`) {
		t.Errorf("JSON view without a session: %d %s", p.status, p.body)
	}
	p := b.get("/admin/signin")
	if p.status != 200 || !strings.Contains(p.body, `name="admin_token"`) || p.header.Get("Content-Security-Policy") == "" {
		t.Fatalf("sign-in page: %d %v", p.status, p.header)
	}
	if p := b.signIn("wrong"); p.status != 401 || !strings.Contains(p.body, "not the admin token") || p.header.Get("Set-Cookie") != "" {
		t.Errorf("wrong token: %d %q", p.status, p.header.Get("Set-Cookie"))
	}
	if p := b.post("/admin/signin", url.Values{"admin_token": {testenv.AdminToken}}, "Origin", "https://evil.example"); p.status != 403 || p.header.Get("Set-Cookie") != "" {
		t.Errorf("sign-in posted from another site: %d", p.status)
	}

	p = b.signIn(testenv.AdminToken)
	if p.status != 303 || p.header.Get("Location") != "/admin/dashboard" {
		t.Fatalf("sign-in: %d %s", p.status, p.header.Get("Location"))
	}
	set := p.header.Get("Set-Cookie")
	for _, attr := range []string{"bff_admin_session=", "Path=/admin", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(set, attr) {
			t.Errorf("Set-Cookie %q lacks %s", set, attr)
		}
	}
	if strings.Contains(set, testenv.AdminToken) {
		t.Error("the cookie holds the admin token")
	}

	p = b.get("/admin/dashboard")
	if p.status != 200 || !strings.Contains(p.body, `data-client="app"`) {
		t.Fatalf("dashboard with a session: %d", p.status)
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'", "Cache-Control": "no-store", "X-Frame-Options": "DENY",
		"Content-Type": "text/html",
	} {
		if !strings.Contains(p.header.Get(h), want) {
			t.Errorf("%s = %q, want it to contain %q", h, p.header.Get(h), want)
		}
	}
	if strings.Contains(p.body, "<script") || strings.Contains(p.body, "http://") || strings.Contains(p.body, "https://") {
		t.Error("the page loads scripts or links elsewhere")
	}
	if p := b.get("/admin/migration"); p.status != 200 {
		t.Errorf("JSON view with a session: %d", p.status)
	}
	if p := b.get("/admin/clients/app"); p.status != 200 {
		t.Errorf("admin API with a session: %d", p.status)
	}
	if p := b.get("/admin/signin"); p.status != 303 {
		t.Errorf("sign-in page when signed in: %d", p.status)
	}
	// A present but wrong Authorization header is not rescued by the cookie.
	if p := b.get("/admin/clients", "Authorization", "Bearer wrong"); p.status != 401 {
		t.Errorf("wrong bearer token with a good cookie: %d", p.status)
	}

	// Sign out: the cookie is cleared and the dashboard asks to sign in.
	if p := b.post("/admin/signout", url.Values{"csrf_token": {b.csrf()}}); p.status != 303 {
		t.Fatalf("sign-out: %d %s", p.status, p.body)
	}
	if p := b.get("/admin/dashboard"); p.status != 303 {
		t.Errorf("dashboard after signing out: %d", p.status)
	}

	// A cookie value made up or altered is no session.
	u, _ := url.Parse(b.srv.URL + "/admin/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "bff_admin_session", Value: "v1.9999999999.AAAA.BBBB", Path: "/admin"}})
	if p := b.get("/admin/migration"); p.status != 401 {
		t.Errorf("forged cookie: %d", p.status)
	}
}

// TestDashboardCSRF: with the cookie, a state-changing request needs the
// session's CSRF token and this origin; with the admin token it does not.
func TestDashboardCSRF(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "app")
	b := newBrowser(t, env)
	b.signIn(testenv.AdminToken)
	token := b.csrf()
	percent := func() int {
		c, err := env.Admin.GetClient(context.Background(), "app")
		if err != nil {
			t.Fatal(err)
		}
		return c.JWTRolloutPercent
	}
	form := func(csrf string, p string) url.Values {
		return url.Values{"csrf_token": {csrf}, "jwt_rollout_percent": {p}}
	}

	for name, tc := range map[string]struct {
		form   url.Values
		header []string
	}{
		"no token":          {url.Values{"jwt_rollout_percent": {"10"}}, nil},
		"wrong token":       {form("AAAA", "10"), nil},
		"another origin":    {form(token, "10"), []string{"Origin", "https://evil.example"}},
		"cross-site fetch":  {form(token, "10"), []string{"Origin", "", "Sec-Fetch-Site", "cross-site"}},
		"another session's": {form(func() string { o := newBrowser(t, env); o.signIn(testenv.AdminToken); return o.csrf() }(), "10"), nil},
	} {
		p := b.post("/admin/dashboard/clients/app", tc.form, tc.header...)
		if p.status != 403 || !strings.Contains(p.body, "csrf_failed") {
			t.Errorf("%s: %d, want 403 csrf_failed", name, p.status)
		}
	}
	if got := percent(); got != 0 {
		t.Fatalf("a refused form changed the client: %d%%", got)
	}

	p := b.post("/admin/dashboard/clients/app", form(token, "10"))
	if p.status != 303 || !strings.HasPrefix(p.header.Get("Location"), "/admin/dashboard?") {
		t.Fatalf("form with the CSRF token: %d %s", p.status, p.body)
	}
	if got := percent(); got != 10 {
		t.Errorf("rollout after the form: %d%%, want 10", got)
	}
	if p := b.get(p.header.Get("Location")); !strings.Contains(p.body, `id="flash-updated"`) {
		t.Error("no confirmation after saving")
	}

	// The JSON API with the cookie: the header carries the CSRF token.
	patch := func(header ...string) int {
		return b.do(http.MethodPatch, "/admin/clients/app", strings.NewReader(`{"jwt_rollout_percent":20}`),
			append([]string{"Content-Type", "application/json"}, header...)...).status
	}
	if s := patch(); s != 403 {
		t.Errorf("PATCH with the cookie, no CSRF header: %d", s)
	}
	if s := patch("X-CSRF-Token", token); s != 200 {
		t.Errorf("PATCH with the cookie and the CSRF header: %d", s)
	}
	// The admin token needs no CSRF token: no ambient credential.
	anon := newBrowser(t, env)
	if s := anon.do(http.MethodPatch, "/admin/clients/app", strings.NewReader(`{"jwt_rollout_percent":30}`),
		"Authorization", "Bearer "+testenv.AdminToken, "Content-Type", "application/json").status; s != 200 {
		t.Errorf("PATCH with the admin token: %d", s)
	}
	if got := percent(); got != 30 {
		t.Errorf("rollout = %d%%, want 30", got)
	}
}

// TestDashboardForm: the rollout form is PATCH /admin/clients/{id}: the
// same checks, absent fields unchanged, refusals shown on the page.
func TestDashboardForm(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "app", func(c *admin.NewClient) { c.JWTRolloutPercent = 5 })
	b := newBrowser(t, env)
	b.signIn(testenv.AdminToken)
	token := b.csrf()
	client := func() bff.Client {
		c, err := env.Admin.GetClient(context.Background(), "app")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	for name, tc := range map[string]struct {
		form   url.Values
		status int
		msg    string
	}{
		"percent above 100":    {url.Values{"jwt_rollout_percent": {"150"}}, 400, "jwt_rollout_percent must be between 0 and 100"},
		"percent not a number": {url.Values{"jwt_rollout_percent": {"half"}}, 400, "whole number"},
		"bad token_type":       {url.Values{"token_type": {"paseto"}}, 400, "token_type"},
		"bad jwt_enabled":      {url.Values{"jwt_enabled": {"maybe"}}, 400, "jwt_enabled must be true or false"},
		"bad jwt_token_type":   {url.Values{"jwt_token_type": {"MAC"}}, 400, "jwt_token_type must be"},
		"unknown client":       {url.Values{"jwt_rollout_percent": {"10"}}, 404, "not_found"},
	} {
		path := "/admin/dashboard/clients/app"
		if name == "unknown client" {
			path = "/admin/dashboard/clients/ghost"
		}
		tc.form.Set("csrf_token", token)
		p := b.post(path, tc.form)
		if p.status != tc.status || !strings.Contains(p.body, tc.msg) || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d, want %d with %q", name, p.status, tc.status, tc.msg)
		}
	}
	if c := client(); c.JWTRolloutPercent != 5 || c.TokenType != bff.FormatBearer || !c.JWTEnabled {
		t.Fatalf("refused forms changed the client: %+v", c)
	}

	// The kill-switch button sends jwt_enabled=false alone.
	if p := b.post("/admin/dashboard/clients/app", url.Values{"csrf_token": {token}, "jwt_enabled": {"false"}}); p.status != 303 {
		t.Fatalf("kill switch: %d", p.status)
	}
	if c := client(); c.JWTEnabled || c.JWTRolloutPercent != 5 {
		t.Errorf("after the kill switch: %+v", c)
	}
	if !strings.Contains(b.get("/admin/dashboard").body, "kill switch on") {
		t.Error("the dashboard does not show the kill switch")
	}
	// The whole form.
	if p := b.post("/admin/dashboard/clients/app", url.Values{"csrf_token": {token}, "token_type": {"jwt"},
		"jwt_rollout_percent": {"75"}, "jwt_enabled": {"true"}, "restricted": {"true"}, "period": {"7d"}}); p.status != 303 ||
		!strings.Contains(p.header.Get("Location"), "period=7d") {
		t.Fatalf("full form: %d %s", p.status, p.header.Get("Location"))
	}
	if c := client(); c.TokenType != bff.FormatJWT || c.JWTRolloutPercent != 75 || !c.JWTEnabled || !c.Restricted {
		t.Errorf("after the full form: %+v", c)
	}

	// jwt_token_type: the page shows the setting and offers the three
	// choices; the form sets it (canonical spelling) and clears it.
	page := b.get("/admin/dashboard").body
	for _, want := range []string{`name="jwt_token_type"`, `<option value="" selected>`, `<option value="JWT">`, `<option value="Bearer">`} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard form lacks %s", want)
		}
	}
	if p := b.post("/admin/dashboard/clients/app", url.Values{"csrf_token": {token}, "jwt_token_type": {"bearer"}}); p.status != 303 {
		t.Fatalf("jwt_token_type form: %d %s", p.status, p.body)
	}
	if c := client(); c.JWTTokenType != bff.LabelBearer || c.JWTRolloutPercent != 75 || !c.Restricted {
		t.Errorf("after setting jwt_token_type: %+v", c)
	}
	page = b.get("/admin/dashboard").body
	if !strings.Contains(page, `<option value="Bearer" selected>`) || !strings.Contains(page, `data-jwt-token-type="Bearer"`) {
		t.Error("the dashboard does not show jwt_token_type Bearer")
	}
	if p := b.post("/admin/dashboard/clients/app", url.Values{"csrf_token": {token}, "jwt_token_type": {""}}); p.status != 303 {
		t.Fatalf("clearing jwt_token_type: %d %s", p.status, p.body)
	}
	if c := client(); c.JWTTokenType != "" {
		t.Errorf("jwt_token_type after clearing it: %q", c.JWTTokenType)
	}
}

// TestMigrationWindowErrors: bad report windows are 400 problems.
func TestMigrationWindowErrors(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	for _, q := range []string{
		"period=1y", "bucket=minute", "from=yesterday", "from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
		"from=2026-03-01T00:00:00Z&to=2026-03-20T00:00:00Z&bucket=hour", "period=24h&from=2026-03-01T00:00:00Z",
		"from=2025-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/admin/migration?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+testenv.AdminToken)
		env.AdminH.ServeHTTP(rec, req)
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		if rec.Code != 400 || p.Code != "invalid_request" {
			t.Errorf("%s: %d %s", q, rec.Code, rec.Body)
		}
	}
}
