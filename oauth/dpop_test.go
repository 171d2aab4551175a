package oauth

import (
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/store/memory"
)

func TestDPoPNonces(t *testing.T) {
	secrets, err := NewSecrets([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSecrets([]byte("another secret of thirty-two b!!"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 1, 0, time.UTC)
	clock := func() time.Time { return now }
	d := NewDPoP(DPoPConfig{}, "https://bff.test", secrets, memory.New(), clock)
	twin := NewDPoP(DPoPConfig{}, "https://bff.test", secrets, memory.New(), clock) // another instance
	stranger := NewDPoP(DPoPConfig{}, "https://bff.test", other, memory.New(), clock)
	nonce := d.Nonce()
	life := DefaultDPoPNonceLifetime
	for _, c := range []struct {
		name string
		at   time.Time
		want bool
	}{
		{"now", now, true},
		{"next period (a client that got it just before the rotation)", now.Add(life), true},
		{"a period from an instance whose clock is ahead", now.Add(-life), true},
		{"two periods later", now.Add(2 * life), false},
		{"two periods earlier", now.Add(-2 * life), false},
	} {
		if got := twin.validNonce(nonce, c.at); got != c.want {
			t.Errorf("%s: valid = %v, want %v", c.name, got, c.want)
		}
	}
	if stranger.validNonce(nonce, now) {
		t.Error("a nonce made under another BFF_SECRET is accepted")
	}
	if d.validNonce("", now) || d.validNonce(nonce+"x", now) {
		t.Error("a malformed nonce is accepted")
	}
}

func TestDPoPSameTarget(t *testing.T) {
	secrets, _ := NewSecrets([]byte("0123456789abcdef0123456789abcdef"))
	d := NewDPoP(DPoPConfig{}, "https://bff.example.org/auth", secrets, memory.New(), nil)
	for htu, want := range map[string]bool{
		"https://bff.example.org/auth/api/me":       true,
		"HTTPS://BFF.example.org:443/auth/api/me":   true,
		"https://bff.example.org/auth/api/me?x=1#y": true,
		"https://bff.example.org/api/me":            false, // the issuer's path is part of it
		"http://bff.example.org/auth/api/me":        false,
		"https://bff.example.org:8443/auth/api/me":  false,
		"https://bff.example.org/auth/api/me/":      false,
		"https://user@bff.example.org/auth/api/me":  false,
		"/auth/api/me":                                   false,
		"https://evil.example.org/auth/api/me":           false,
		"https://bff.example.org/auth/api/%6De":          false, // spelled otherwise: not the same path
		"https://bff.example.org.evil.test/auth/api/me":  false,
		"https://bff.example.org/auth/api/me\x00":        false,
		"https://bff.example.org/auth/api/me;jsessionid": false,
	} {
		if got := d.sameTarget(htu, "/api/me"); got != want {
			t.Errorf("sameTarget(%q) = %v, want %v", htu, got, want)
		}
	}
}
