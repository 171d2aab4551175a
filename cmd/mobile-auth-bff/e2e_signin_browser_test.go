package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// signInArtifacts is where the sign-in test's screenshots go: $BFF_ARTIFACTS
// when set (CI archives it), else the test's temporary directory.
func signInArtifacts(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("BFF_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// loopbackApp is the native app's side of RFC 8252 §7.3: a loopback
// listener that receives the authorization response.
type loopbackApp struct {
	url  string
	hits chan url.Values
}

func startLoopbackApp(t *testing.T) *loopbackApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &loopbackApp{url: "http://" + ln.Addr().String(), hits: make(chan url.Values, 10)}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" && r.URL.Path != "/elsewhere" {
			http.NotFound(w, r) // the browser's /favicon.ico
			return
		}
		a.hits <- r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>App</title><h1 id="app-callback">Back in the app</h1>`))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return a
}

func (a *loopbackApp) next(t *testing.T) url.Values {
	t.Helper()
	select {
	case q := <-a.hits:
		return q
	case <-time.After(10 * time.Second):
		t.Fatal("the app's loopback redirect URI was not called")
		return nil
	}
}

// a11yScript checks the page the way an accessibility pass would: every
// visible input has a label, and every text's contrast (WCAG 2.x relative
// luminance) against its background is at least 4.5:1. It returns the
// problems found.
const a11yScript = `(() => {
  const problems = [];
  for (const i of document.querySelectorAll('input:not([type=hidden])')) {
    const l = i.id && document.querySelector('label[for="' + i.id + '"]');
    if (!l || !l.textContent.trim()) problems.push('no label for input ' + (i.name || i.id));
  }
  const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = c => {
    const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const bg = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c;
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll('h1, p, label, button, input:not([type=hidden]), strong, code, div.flash')) {
    if (!el.textContent.trim() && el.tagName !== 'INPUT') continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) problems.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' contrast ' + ratio.toFixed(2));
  }
  return problems;
})()`

// TestE2ESignInBrowser drives browser sign-in in a real headless Chromium:
// the sign-in page (accessibility pass, keyboard order, screenshots), a
// wrong password, a missing CSRF token, a disabled user, an unregistered
// redirect URI (an error page, the app never called), then a sign-in that
// lands on the app's loopback redirect URI, the code exchanged with the
// verifier (a wrong verifier refused, a replay revoking the tokens), /api/me,
// and a second authorize that skips the form.
func TestE2ESignInBrowser(t *testing.T) {
	t.Parallel()
	chromium(t)
	s := start(t, baseEnv(map[string]string{"BFF_COOKIE_SECURE": "false"}))
	s.createMobileClient("native", map[string]any{
		"name": "Open edX", "grant_types": []string{"authorization_code", "refresh_token"},
		"redirect_uris": []string{"http://127.0.0.1/callback"},
	})
	s.createUser("lena")
	dora := s.createUser("dora")
	s.mustAdmin("POST", "/admin/users/"+itoa(dora)+"/disable", nil, http.StatusOK)
	app := startLoopbackApp(t)
	conf := &oauth2.Config{ClientID: "native", RedirectURL: app.url + "/callback", Scopes: []string{"read", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: s.public + "/oauth2/authorize/", TokenURL: s.public + "/oauth2/access_token/",
			AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	authorize := conf.AuthCodeURL("state-chromium", oauth2.S256ChallengeOption(verifier))
	artifacts := signInArtifacts(t)

	ctx := newBrowser(t)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		must("screenshot", err)
		path := filepath.Join(artifacts, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		must(sel, err)
		return strings.TrimSpace(v)
	}
	active := func() string {
		t.Helper()
		id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
		must("activeElement", err)
		return id
	}
	signIn := func(login, password string) {
		t.Helper()
		must("sign in", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("password"))))
		// Clear the field, and the message of the last attempt, so that
		// waiting for a message waits for the answer to this one.
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
			document.getElementById('username').value = '';
			const e = document.getElementById('signin-error');
			if (e) e.remove();
			return true;
		})()`))
		must("clear", err)
		must("sign in", chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("username"), login),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(chromedp.ID("signin")),
		))
	}

	// The page on a phone screen: labels, contrast, keyboard order.
	must("open", chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(authorize),
		chromedp.WaitVisible(chromedp.ID("username"))))
	if got := text("#client-name"); got != "Open edX" {
		t.Errorf("the page names the app %q", got)
	}
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](a11yScript))
	must("accessibility", err)
	if len(problems) > 0 {
		t.Errorf("accessibility: %v", problems)
	}
	if got := active(); got != "username" {
		t.Errorf("focus starts on %q, want username", got)
	}
	for _, want := range []string{"password", "signin"} {
		must("tab", chromedp.Do(ctx, chromedp.KeyEvent("\t")))
		if got := active(); got != want {
			t.Errorf("tab moves to %q, want %q", got, want)
		}
	}
	shot("signin-phone")

	// A wrong password, then a disabled account: the form again, with a message.
	signIn("lena", "not the password")
	must("wrong password", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("signin-error"))))
	if got := text("#signin-error"); !strings.Contains(got, "username or password is not right") {
		t.Errorf("wrong password message: %q", got)
	}
	shot("signin-wrong-password")
	signIn("dora", e2ePassword)
	must("disabled", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("signin-error"))))
	if got := text("#signin-error"); !strings.Contains(got, "cannot sign in") {
		t.Errorf("disabled account message: %q", got)
	}
	// The CSRF token removed from the form: refused.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('input[name=csrf_token]').remove() === undefined`))
	must("no csrf", err)
	signIn("lena", e2ePassword)
	must("no csrf answer", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("signin-error"))))
	if got := text("#signin-error"); !strings.Contains(got, "expired") {
		t.Errorf("missing CSRF token message: %q", got)
	}

	// An unregistered redirect URI: an error page, the app is never called.
	bad := strings.Replace(authorize, url.QueryEscape(app.url+"/callback"), url.QueryEscape(app.url+"/elsewhere"), 1)
	must("bad redirect", chromedp.Do(ctx, chromedp.Navigate(bad), chromedp.WaitVisible(chromedp.ID("authorize-error"))))
	if got := text("#error-code"); got != "invalid_request" {
		t.Errorf("error page code %q", got)
	}
	shot("authorize-error")
	select {
	case q := <-app.hits:
		t.Fatalf("the app was called for an unregistered redirect URI: %v", q)
	default:
	}

	// Sign in: the browser lands on the app's loopback redirect URI.
	must("open", chromedp.Do(ctx, chromedp.Navigate(authorize)))
	signIn("lena", e2ePassword)
	must("callback", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("app-callback"))))
	q := app.next(t)
	if q.Get("state") != "state-chromium" || q.Get("iss") != e2eIssuer || q.Get("code") == "" {
		t.Fatalf("authorization response: %v", q)
	}
	exchange := context.Background()
	if _, err := conf.Exchange(exchange, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Error("a wrong verifier was accepted")
	}
	tok, err := conf.Exchange(exchange, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if me := s.get("/api/me", "Authorization", "Bearer "+tok.AccessToken); me.status != 200 || me.json(t)["username"] != "lena" {
		t.Fatalf("/api/me: %d %s", me.status, me.body)
	}
	if _, err := conf.Exchange(exchange, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("a replayed code was accepted")
	}
	if me := s.get("/api/me", "Authorization", "Bearer "+tok.AccessToken); me.status != 401 {
		t.Errorf("/api/me after the replay: %d", me.status)
	}

	// A second authorize skips the form: straight back to the app.
	verifier2 := oauth2.GenerateVerifier()
	must("second authorize", chromedp.Do(ctx, chromedp.Navigate(conf.AuthCodeURL("state-2", oauth2.S256ChallengeOption(verifier2))),
		chromedp.WaitVisible(chromedp.ID("app-callback"))))
	q2 := app.next(t)
	if q2.Get("state") != "state-2" || q2.Get("code") == "" {
		t.Fatalf("second authorization response: %v", q2)
	}
	if _, err := conf.Exchange(exchange, q2.Get("code"), oauth2.VerifierOption(verifier2)); err != nil {
		t.Errorf("second exchange: %v", err)
	}
}
