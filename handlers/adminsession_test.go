package handlers

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAdminSessions(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("k", 32))
	s := newAdminSessions("admin-token", secret, true)
	ck := s.issue()
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/admin" || ck.MaxAge <= 0 {
		t.Errorf("cookie attributes: %+v", ck)
	}
	if strings.Contains(ck.Value, "admin-token") {
		t.Error("the cookie holds the admin token")
	}
	id, ok := s.verify(ck.Value)
	if !ok || id == "" {
		t.Fatalf("a fresh session does not verify")
	}
	if other := s.issue(); other.Value == ck.Value {
		t.Error("two sign-ins got the same session")
	}

	// Another instance with the same secret and token accepts it.
	if _, ok := newAdminSessions("admin-token", secret, true).verify(ck.Value); !ok {
		t.Error("an instance sharing BFF_SECRET and the token refuses the session")
	}
	// Rotating the admin token ends every session.
	if _, ok := newAdminSessions("new-admin-token", secret, true).verify(ck.Value); ok {
		t.Error("a session outlived the rotation of the admin token")
	}
	if _, ok := newAdminSessions("admin-token", []byte(strings.Repeat("x", 32)), true).verify(ck.Value); ok {
		t.Error("a session of another BFF_SECRET verifies")
	}
	if _, ok := newAdminSessions("", secret, true).verify(ck.Value); ok {
		t.Error("a session verifies without a configured admin token")
	}

	parts := strings.Split(ck.Value, ".")
	later := time.Now().Add(adminSessionTTL + time.Minute).Unix()
	for name, v := range map[string]string{
		"empty":           "",
		"garbage":         "not-a-session",
		"tampered mac":    parts[0] + "." + parts[1] + "." + parts[2] + "." + strings.Repeat("A", len(parts[3])),
		"extended expiry": parts[0] + "." + strconv.FormatInt(later, 10) + "." + parts[2] + "." + parts[3],
		"other id":        parts[0] + "." + parts[1] + ".AAAA." + parts[3],
		"v2":              "v2." + parts[1] + "." + parts[2] + "." + parts[3],
		"too long":        ck.Value + strings.Repeat("a", 300),
	} {
		if _, ok := s.verify(v); ok {
			t.Errorf("%s cookie verifies", name)
		}
	}

	expired := newAdminSessions("admin-token", secret, true)
	expired.now = func() time.Time { return time.Now().Add(adminSessionTTL + time.Second) }
	if _, ok := expired.verify(ck.Value); ok {
		t.Error("an expired session verifies")
	}

	csrf := s.csrfToken(id)
	if !s.checkCSRF(id, csrf) || s.checkCSRF(id, "") || s.checkCSRF(id, csrf+"x") || s.checkCSRF("other", csrf) {
		t.Error("the CSRF token is not tied to its session")
	}
	if !s.checkToken("admin-token") || s.checkToken("admin-token ") || s.checkToken("") {
		t.Error("checkToken")
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
