package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/store"
)

// sessionCookie returns the dashboard cookie the browser holds.
func (b *browser) sessionCookie() *http.Cookie {
	b.t.Helper()
	u, _ := url.Parse(b.srv.URL + "/admin/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "bff_admin_session" {
			return c
		}
	}
	b.t.Fatal("no dashboard cookie")
	return nil
}

// withCookie is another browser on env's admin listener holding a copy of
// cookie.
func withCookie(t *testing.T, env *testenv.Env, cookie *http.Cookie) *browser {
	t.Helper()
	o := newBrowser(t, env)
	u, _ := url.Parse(o.srv.URL + "/admin/")
	o.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookie.Name, Value: cookie.Value, Path: "/admin"}})
	return o
}

// TestDashboardSignOutEndsCopies: signing out ends the session on the
// server: a copy of the cookie taken before is refused afterwards, on this
// instance and on another one on the same store, and signing in again
// gives a new session.
func TestDashboardSignOutEndsCopies(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			other := testenv.New(t, testenv.Options{Store: env.Store}) // a second instance
			env.PublicClient(t, "app")

			b := newBrowser(t, env)
			if p := b.signIn(testenv.AdminToken); p.status != 303 {
				t.Fatalf("sign-in: %d", p.status)
			}
			stolen := b.sessionCookie()
			copyHere, copyThere := withCookie(t, env, stolen), withCookie(t, other, stolen)
			for name, c := range map[string]*browser{"here": copyHere, "on another instance": copyThere} {
				if p := c.get("/admin/dashboard"); p.status != 200 {
					t.Fatalf("the copied cookie %s before signing out: %d", name, p.status)
				}
			}

			if p := b.post("/admin/signout", url.Values{"csrf_token": {b.csrf()}}); p.status != 303 ||
				!strings.Contains(p.header.Get("Set-Cookie"), "Max-Age=0") {
				t.Fatalf("sign-out: %d %q", p.status, p.header.Get("Set-Cookie"))
			}
			for name, c := range map[string]*browser{"here": copyHere, "on another instance": copyThere} {
				if p := c.get("/admin/dashboard"); p.status != 303 || p.header.Get("Location") != "/admin/signin" {
					t.Errorf("the copied cookie %s after signing out, dashboard: %d", name, p.status)
				}
				if p := c.get("/admin/migration"); p.status != 401 {
					t.Errorf("the copied cookie %s after signing out, JSON view: %d", name, p.status)
				}
				if p := c.get("/admin/clients/app"); p.status != 401 {
					t.Errorf("the copied cookie %s after signing out, admin API: %d", name, p.status)
				}
			}

			// A session opened on the other instance is valid here, and its
			// sign-out there ends it here.
			o := newBrowser(t, other)
			o.signIn(testenv.AdminToken)
			here := withCookie(t, env, o.sessionCookie())
			if p := here.get("/admin/migration"); p.status != 200 {
				t.Fatalf("a session of the other instance: %d", p.status)
			}
			if p := o.post("/admin/signout", url.Values{"csrf_token": {o.csrf()}}); p.status != 303 {
				t.Fatalf("sign-out there: %d", p.status)
			}
			if p := here.get("/admin/migration"); p.status != 401 {
				t.Errorf("signed out there, still valid here: %d", p.status)
			}

			if p := b.signIn(testenv.AdminToken); p.status != 303 || b.sessionCookie().Value == stolen.Value {
				t.Errorf("signing in again: %d", p.status)
			}
			if p := b.get("/admin/dashboard"); p.status != 200 {
				t.Errorf("dashboard after signing in again: %d", p.status)
			}
		})
	}
}

// TestDashboardSessionStoreDown: when the store cannot answer, a request
// with the cookie is 503 (not a sign-in loop, not a 500), and so is a
// sign-out that could not delete the session, which keeps the cookie.
func TestDashboardSessionStoreDown(t *testing.T) {
	t.Parallel()
	var failing *testenv.FailingStore
	env := testenv.New(t, testenv.Options{Wrap: func(s store.Store) store.Store {
		failing = &testenv.FailingStore{Store: s}
		return failing
	}})
	b := newBrowser(t, env)
	b.signIn(testenv.AdminToken)
	csrf := b.csrf()

	failing.All.Store(true)
	for _, path := range []string{"/admin/dashboard", "/admin/signin"} {
		if p := b.get(path); p.status != 503 || !strings.Contains(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s with the store down: %d %s", path, p.status, p.header.Get("Content-Type"))
		}
	}
	if p := b.get("/admin/migration"); p.status != 503 {
		t.Errorf("JSON view with the store down: %d %s", p.status, p.body)
	}
	if p := b.signIn(testenv.AdminToken); p.status != 503 || p.header.Get("Set-Cookie") != "" {
		t.Errorf("sign-in with the store down: %d %q", p.status, p.header.Get("Set-Cookie"))
	}
	failing.All.Store(false)
	failing.Writes.Store(true)
	if p := b.post("/admin/signout", url.Values{"csrf_token": {csrf}}); p.status != 503 || p.header.Get("Set-Cookie") != "" {
		t.Errorf("sign-out that could not end the session: %d %q", p.status, p.header.Get("Set-Cookie"))
	}
	failing.Writes.Store(false)
	if p := b.post("/admin/signout", url.Values{"csrf_token": {csrf}}); p.status != 303 {
		t.Errorf("sign-out once the store is back: %d", p.status)
	}
	if p := b.get("/admin/dashboard"); p.status != 303 {
		t.Errorf("signed out: %d", p.status)
	}
	// The admin token itself needs no store.
	failing.All.Store(true)
	if p := b.get("/admin/migration", "Authorization", "Bearer "+testenv.AdminToken); p.status == 401 {
		t.Errorf("bearer admin token with the store down: %d", p.status)
	}
}
