package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

func TestAdminSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := []byte(strings.Repeat("k", 32))
	st := memory.New()
	s := newAdminSessions("admin-token", secret, st, true)
	verifies := func(a *adminSessions, value string) bool {
		t.Helper()
		_, ok, err := a.verify(ctx, value)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	ck, err := s.issue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/admin" || ck.MaxAge <= 0 {
		t.Errorf("cookie attributes: %+v", ck)
	}
	if strings.Contains(ck.Value, "admin-token") {
		t.Error("the cookie holds the admin token")
	}
	id, ok, err := s.verify(ctx, ck.Value)
	if err != nil || !ok || id == "" {
		t.Fatalf("a fresh session does not verify: %v", err)
	}
	// The store keeps the hash of the cookie, never the cookie.
	rec, err := st.GetAdminSession(ctx, id, time.Now())
	if err != nil || id == ck.Value || strings.Contains(rec.TokenFingerprint, "admin-token") {
		t.Errorf("stored session %+v, %v", rec, err)
	}
	if _, err := st.GetAdminSession(ctx, ck.Value, time.Now()); err == nil {
		t.Error("the store is keyed by the cookie itself")
	}
	if d := rec.ExpiresAt.Sub(rec.CreatedAt); d != adminSessionTTL {
		t.Errorf("session lasts %s", d)
	}
	other, _ := s.issue(ctx)
	if other.Value == ck.Value {
		t.Error("two sign-ins got the same session")
	}

	// Another instance on the same store, secret and token accepts it.
	if !verifies(newAdminSessions("admin-token", secret, st, true), ck.Value) {
		t.Error("an instance sharing the store, BFF_SECRET and the token refuses the session")
	}
	// Rotating the admin token ends every session.
	if verifies(newAdminSessions("new-admin-token", secret, st, true), ck.Value) {
		t.Error("a session outlived the rotation of the admin token")
	}
	if verifies(newAdminSessions("admin-token", []byte(strings.Repeat("x", 32)), st, true), ck.Value) {
		t.Error("a session of another BFF_SECRET verifies")
	}
	if verifies(newAdminSessions("", secret, st, true), ck.Value) {
		t.Error("a session verifies without a configured admin token")
	}
	if verifies(newAdminSessions("admin-token", secret, memory.New(), true), ck.Value) {
		t.Error("a session verifies on another store")
	}
	if AdminTokenFingerprint("admin-token", secret) != rec.TokenFingerprint ||
		AdminTokenFingerprint("new-admin-token", secret) == rec.TokenFingerprint || AdminTokenFingerprint("", secret) != "" {
		t.Error("AdminTokenFingerprint is not the sessions' fingerprint")
	}

	// The altered cookie differs in its last character (a cookie ending in
	// "A" once made "altered" the cookie itself).
	last := "A"
	if strings.HasSuffix(ck.Value, last) {
		last = "B"
	}
	for name, v := range map[string]string{
		"empty":     "",
		"garbage":   "not-a-session",
		"altered":   ck.Value[:len(ck.Value)-1] + last,
		"v1 signed": "v1.9999999999.AAAA.BBBB",
		"too long":  ck.Value + strings.Repeat("a", 300),
	} {
		if verifies(s, v) {
			t.Errorf("%s cookie verifies", name)
		}
	}

	expired := newAdminSessions("admin-token", secret, st, true)
	expired.now = func() time.Time { return time.Now().Add(adminSessionTTL + time.Second) }
	if verifies(expired, ck.Value) {
		t.Error("an expired session verifies")
	}

	// Signing out ends the session for every copy of the cookie; the
	// other session stays.
	if err := s.end(ctx, id); err != nil {
		t.Fatal(err)
	}
	if verifies(s, ck.Value) || verifies(newAdminSessions("admin-token", secret, st, true), ck.Value) {
		t.Error("a session verifies after signing out")
	}
	if !verifies(s, other.Value) {
		t.Error("signing out ended another session")
	}

	csrf := s.csrfToken(id)
	if !s.checkCSRF(id, csrf) || s.checkCSRF(id, "") || s.checkCSRF(id, csrf+"x") || s.checkCSRF("other", csrf) {
		t.Error("the CSRF token is not tied to its session")
	}
	if newAdminSessions("new-admin-token", secret, st, true).checkCSRF(id, csrf) {
		t.Error("a CSRF token outlived the rotation of the admin token")
	}
	if !s.checkToken("admin-token") || s.checkToken("admin-token ") || s.checkToken("") {
		t.Error("checkToken")
	}
}

// downSessions is an admin session store that cannot be reached.
type downSessions struct {
	AdminSessionStore
	down bool
}

func (d *downSessions) CreateAdminSession(ctx context.Context, s bff.AdminSession) error {
	if d.down {
		return bff.ErrUnavailable
	}
	return d.AdminSessionStore.CreateAdminSession(ctx, s)
}

func (d *downSessions) GetAdminSession(ctx context.Context, id string, now time.Time) (bff.AdminSession, error) {
	if d.down {
		return bff.AdminSession{}, bff.ErrUnavailable
	}
	return d.AdminSessionStore.GetAdminSession(ctx, id, now)
}

// TestAdminSessionsStoreDown: a store that cannot answer is an error, not
// "no session" (the caller answers 503).
func TestAdminSessionsStoreDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	failing := &downSessions{AdminSessionStore: memory.New()}
	s := newAdminSessions("admin-token", []byte(strings.Repeat("k", 32)), failing, true)
	ck, err := s.issue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	failing.down = true
	if _, ok, err := s.verify(ctx, ck.Value); ok || !errors.Is(err, bff.ErrUnavailable) {
		t.Errorf("verify with the store down: %v, %v", ok, err)
	}
	if _, err := s.issue(ctx); !errors.Is(err, bff.ErrUnavailable) {
		t.Errorf("issue with the store down: %v", err)
	}
	// A value that is no session is refused without asking the store.
	if _, ok, err := s.verify(ctx, "v1.1.2.3"); ok || err != nil {
		t.Errorf("a v1 cookie with the store down: %v, %v", ok, err)
	}
}

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header map[string]string
		want   bool
	}{
		{"no browser headers", nil, true},
		{"same origin", map[string]string{"Origin": "https://admin.example:8081"}, true},
		{"same origin, other scheme (TLS ends at a proxy)", map[string]string{"Origin": "http://admin.example:8081"}, true},
		{"other host", map[string]string{"Origin": "https://evil.example"}, false},
		{"other port", map[string]string{"Origin": "https://admin.example:9999"}, false},
		{"null origin", map[string]string{"Origin": "null"}, false},
		{"fetch metadata same-origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, true},
		{"fetch metadata typed URL", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"fetch metadata cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"fetch metadata same-site", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"origin wins over fetch metadata", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "https://admin.example:8081/admin/signin", nil)
		for k, v := range tt.header {
			r.Header.Set(k, v)
		}
		if got := sameOrigin(r); got != tt.want {
			t.Errorf("%s: sameOrigin = %v, want %v", tt.name, got, tt.want)
		}
	}
}
