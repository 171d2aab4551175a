package main

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

// artifactsDir keeps what the browser test saw (screenshots), for CI to
// archive; it is git-ignored.
const artifactsDir = "testdata/artifacts"

// chromium finds Debian's Chromium (or $BFF_CHROMIUM). Without one the
// browser test skips, except in CI where .ci/run installs it: there it fails.
func chromium(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("BFF_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found: .ci/run installs Debian's chromium package; the browser test must run in CI")
	}
	t.Skip("no Chromium found (apt-get install chromium, or set BFF_CHROMIUM)")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and no
// background traffic (the machines are offline).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now, to fail here if it cannot
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// hs256Token is a JWT signed with a shared secret: refused as
// non_asymmetric_token before anything in it is read.
func hs256Token() string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"at+jwt"}`)) + "." + enc([]byte(`{"sub":"1","client_id":"app"}`)) + "." + enc([]byte("sig"))
}

// TestE2EDashboardBrowser drives the dashboard in Chromium: sign in with
// the admin token, see the numbers this test generated, change a client's
// rollout percentage through the page, and find it stored. A screenshot is
// saved as a test artifact.
func TestE2EDashboardBrowser(t *testing.T) {
	t.Parallel()
	chromium(t)
	for _, b := range backends(t) {
		// One browser at a time: the machines are small.
		t.Run(b.name, func(t *testing.T) {
			s := start(t, baseEnv(b.env, map[string]string{"BFF_COOKIE_SECURE": "false"}))
			s.createExchangeClient("app", map[string]any{"name": "Mobile app", "jwt_rollout_percent": 10})
			s.createUser("hana")

			// The numbers: 2 Bearer and 1 JWT sign-ins, 1 exchange; 2 good
			// presentations, 1 revoked token, 1 forged HS256, 1 garbage.
			b1 := s.login("app", "hana", "token_type", "bearer")
			s.login("app", "hana", "token_type", "bearer")
			s.login("app", "hana", "token_type", "jwt")
			if r := s.exchange("app", b1["access_token"].(string)); r.status != 200 {
				t.Fatalf("exchange: %d %s", r.status, r.body)
			}
			revoked := s.login("app", "hana", "token_type", "jwt")["access_token"].(string)
			s.postForm("/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {revoked}})
			for tok, want := range map[string]int{b1["access_token"].(string): 200, revoked: 401, hs256Token(): 401, "garbage": 401} {
				if got := s.meStatus(tok); got != want {
					t.Fatalf("/api/me: %d, want %d", got, want)
				}
			}
			if got := s.meStatus(b1["access_token"].(string)); got != 200 {
				t.Fatalf("/api/me: %d", got)
			}

			ctx := newBrowser(t)
			app := `section[data-client="app"] `
			must := func(what string, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("browser: %s: %v", what, err)
				}
			}
			text := func(sel string) string {
				t.Helper()
				v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
				must(sel, err)
				return strings.TrimSpace(v)
			}

			must("sign in", chromedp.Do(ctx,
				chromedp.Navigate(s.admin+"/admin/dashboard"),
				chromedp.WaitVisible(chromedp.ID("admin_token")), // sent to sign in
				chromedp.SendKeys(chromedp.ID("admin_token"), e2eAdminToken),
				chromedp.Click(chromedp.ID("signin")),
				chromedp.WaitVisible(chromedp.CSS(app+`form[data-form="rollout"]`)),
			))
			// JWT: 1 sign-in + 1 exchange + the revoked one; Bearer: 2.
			for sel, want := range map[string]string{
				app + `[data-stat="issued-jwt"]`:                                   "3",
				app + `[data-stat="issued-bearer"]`:                                "2",
				app + `[data-stat="issued-jwt-share"]`:                             "60.0%",
				app + `[data-stat="active-jwt"]`:                                   "2",
				app + `tr[data-code="token_revoked"] td.num`:                       "1",
				`#client-unidentified tr[data-code="non_asymmetric_token"] td.num`: "1",
				`#client-unidentified tr[data-code="invalid_token"] td.num`:        "1",
			} {
				if got := text(sel); got != want {
					t.Errorf("dashboard shows %q at %s, want %s", got, sel, want)
				}
			}
			bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
				`Array.from(document.querySelectorAll('section[data-client="app"] svg.chart rect')).map(r => r.getAttribute('class'))`))
			must("chart", err)
			if !strings.Contains(strings.Join(bars, " "), "jwt") || !strings.Contains(strings.Join(bars, " "), "bearer") {
				t.Errorf("the chart has no JWT and Bearer bars: %v", bars)
			}
			cookieJS, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
			must("document.cookie", err)
			if cookieJS != "" {
				t.Errorf("the session cookie is readable by scripts: %q", cookieJS)
			}
			cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
			must("cookies", err)
			var session *network.Cookie
			for _, c := range cookies.Cookies {
				if c.Name == "bff_admin_session" {
					session = c
				}
			}
			if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Path != "/admin" {
				t.Errorf("session cookie: %+v", session)
			}

			// Change the rollout through the page.
			percent := chromedp.CSS(app + `form[data-form="rollout"] input[name="jwt_rollout_percent"]`)
			must("save", chromedp.Do(ctx,
				chromedp.SetValue(percent, "35"),
				chromedp.Click(chromedp.CSS(app+`form[data-form="rollout"] button[data-action="save"]`)),
				chromedp.WaitVisible(chromedp.ID("flash-updated")),
			))
			if flash := text("#flash-updated"); !strings.Contains(flash, "app") {
				t.Errorf("confirmation: %q", flash)
			}
			shown, err := chromedp.Run(ctx, chromedp.Value(percent))
			must("percent", err)
			if shown != "35" {
				t.Errorf("the form shows %q after saving, want 35", shown)
			}
			stored := s.mustAdmin("GET", "/admin/clients/app", nil, http.StatusOK)
			if stored["jwt_rollout_percent"] != float64(35) {
				t.Errorf("stored jwt_rollout_percent = %v, want 35", stored["jwt_rollout_percent"])
			}

			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			must("screenshot", err)
			if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
				t.Fatal(err)
			}
			path, _ := filepath.Abs(filepath.Join(artifactsDir, "dashboard-"+b.name+".png"))
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", path)
		})
	}
}

// noRedirect is an HTTP client that shows redirects instead of following
// them, as the dashboard's sign-in flow needs to be seen.
var noRedirect = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// dashboardCall is a browser request to an admin listener with the session
// cookie (if any) and, on POSTs, the listener's own Origin.
func dashboardCall(t *testing.T, admin, method, path, cookie string, form url.Values) response {
	t.Helper()
	req, err := http.NewRequest(method, admin+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", admin)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "bff_admin_session", Value: cookie})
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// dashboardSignIn signs in to an admin listener with token and returns the
// session cookie's value.
func dashboardSignIn(t *testing.T, admin, token string) string {
	t.Helper()
	r := dashboardCall(t, admin, http.MethodPost, "/admin/signin", "", url.Values{"admin_token": {token}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "bff_admin_session" && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("sign-in set no session cookie: %v", r.header)
	return ""
}

var csrfFieldRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// dashboardSignOut signs out with cookie, as the dashboard's button does.
func dashboardSignOut(t *testing.T, admin, cookie string) {
	t.Helper()
	page := dashboardCall(t, admin, http.MethodGet, "/admin/dashboard", cookie, nil)
	m := csrfFieldRe.FindSubmatch(page.body)
	if page.status != 200 || m == nil {
		t.Fatalf("no CSRF token on the dashboard (%d)", page.status)
	}
	r := dashboardCall(t, admin, http.MethodPost, "/admin/signout", cookie, url.Values{"csrf_token": {string(m[1])}})
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign-out: %d %q %s", r.status, r.header.Get("Set-Cookie"), r.body)
	}
}

// signedIn reports whether cookie is a live session on an admin listener:
// the dashboard renders (200) rather than sending to the sign-in page, and
// the JSON view answers 200 rather than 401.
func signedIn(t *testing.T, admin, cookie string) bool {
	t.Helper()
	page := dashboardCall(t, admin, http.MethodGet, "/admin/dashboard", cookie, nil)
	api := dashboardCall(t, admin, http.MethodGet, "/admin/migration", cookie, nil)
	switch {
	case page.status == 200 && api.status == 200:
		return true
	case page.status == http.StatusSeeOther && page.header.Get("Location") == "/admin/signin" && api.status == 401:
		return false
	}
	t.Fatalf("cookie neither signed in nor out: dashboard %d, migration %d %s", page.status, api.status, api.body)
	return false
}

// TestE2EDashboardSignOutEndsCopies: a copy of the dashboard cookie taken
// before signing out is refused afterwards (the session is ended on the
// server, not only forgotten by the browser); on PostgreSQL also by a
// second instance on the same database, which accepted it before.
func TestE2EDashboardSignOutEndsCopies(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		admins := []string{s.admin}
		if b.name == "postgres" {
			admins = append(admins, start(t, baseEnv(b.env)).admin)
		}
		cookie := dashboardSignIn(t, s.admin, e2eAdminToken)
		copied := strings.Clone(cookie)
		for _, admin := range admins {
			if !signedIn(t, admin, copied) {
				t.Fatalf("the copied cookie before signing out, on %s: refused", admin)
			}
		}
		dashboardSignOut(t, s.admin, cookie)
		for _, admin := range admins {
			if signedIn(t, admin, copied) {
				t.Errorf("the copied cookie after signing out, on %s: still signed in", admin)
			}
		}
		if len(admins) == 2 {
			// Opened on B, signed out on B: dead on A.
			other := dashboardSignIn(t, admins[1], e2eAdminToken)
			if !signedIn(t, s.admin, other) {
				t.Fatal("a session of the other instance is refused")
			}
			dashboardSignOut(t, admins[1], other)
			if signedIn(t, s.admin, other) {
				t.Error("signed out on the other instance, still signed in here")
			}
		}
		if strings.Contains(s.out.String(), copied) {
			t.Error("the session cookie is in the log")
		}
	})
}

// TestE2EDashboardAdminTokenRotation: restarting with a new
// BFF_ADMIN_TOKEN ends every dashboard session of the old one, and going
// back to the old token revives none. (On PostgreSQL, where sessions
// outlive a restart: a restart with the same token keeps them.)
func TestE2EDashboardAdminTokenRotation(t *testing.T) {
	t.Parallel()
	env := baseEnv(map[string]string{"BFF_DATABASE_URL": testdb.URL(t)})
	s := start(t, env)
	cookie := dashboardSignIn(t, s.admin, e2eAdminToken)
	s.stop()

	s = start(t, env)
	if !signedIn(t, s.admin, cookie) {
		t.Fatal("a restart with the same admin token ended the session")
	}
	s.stop()

	rotated := baseEnv(env, map[string]string{"BFF_ADMIN_TOKEN": "e2e-rotated-admin-token"})
	s = start(t, rotated)
	if signedIn(t, s.admin, cookie) {
		t.Error("a session of the old admin token is valid after the rotation")
	}
	if !strings.Contains(s.out.String(), "ended the dashboard sessions of another admin token") {
		t.Errorf("no log line for the ended sessions:\n%s", s.out)
	}
	if r := dashboardCall(t, s.admin, http.MethodPost, "/admin/signin", "", url.Values{"admin_token": {e2eAdminToken}}); r.status != 401 {
		t.Errorf("sign-in with the old admin token: %d", r.status)
	}
	fresh := dashboardSignIn(t, s.admin, "e2e-rotated-admin-token")
	if !signedIn(t, s.admin, fresh) {
		t.Error("a session of the new admin token is refused")
	}
	s.stop()

	// Back to the old token: its sessions were deleted, not merely refused.
	s = start(t, env)
	if signedIn(t, s.admin, cookie) {
		t.Error("going back to the old admin token revived its session")
	}
	if signedIn(t, s.admin, fresh) {
		t.Error("a session of the rotated-away token is valid")
	}
}

// TestPruneDashboardSessions: the periodic prune deletes expired dashboard
// sessions and keeps live ones.
func TestPruneDashboardSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memory.New()
	a := &app{store: st, log: slog.New(slog.DiscardHandler), cfg: config{UsageRetention: time.Hour}}
	now := time.Now().UTC()
	for id, exp := range map[string]time.Time{"expired": now.Add(-time.Minute), "live": now.Add(time.Hour)} {
		if err := st.CreateAdminSession(ctx, bff.AdminSession{ID: id, TokenFingerprint: "fp", CreatedAt: exp.Add(-8 * time.Hour), ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	a.prune(ctx)
	// Read with a clock from before its expiry: gone, not merely expired.
	if _, err := st.GetAdminSession(ctx, "expired", now.Add(-time.Hour)); err == nil {
		t.Error("prune kept an expired session")
	}
	if _, err := st.GetAdminSession(ctx, "live", now); err != nil {
		t.Errorf("prune deleted a live session: %v", err)
	}
}
