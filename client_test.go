package bff

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestClientJWTTokenType: operators may type jwt_token_type in any case;
// the stored value is the canonical spelling responses carry, and Validate
// accepts only that (or "").
func TestClientJWTTokenType(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in, canonical string
		valid         bool
	}{
		{"", "", true},
		{"JWT", "JWT", true},
		{"jwt", "JWT", true},
		{"Jwt", "JWT", true},
		{"Bearer", "Bearer", true},
		{"bearer", "Bearer", true},
		{"BEARER", "Bearer", true},
		{"MAC", "MAC", false},
		{" JWT", " JWT", false},
		{"DPoP", "DPoP", false},
	} {
		got := CanonicalJWTTokenType(tt.in)
		if got != tt.canonical {
			t.Errorf("CanonicalJWTTokenType(%q) = %q, want %q", tt.in, got, tt.canonical)
		}
		c := Client{ID: "app", TokenType: FormatBearer, GrantTypes: []string{GrantPassword}, JWTTokenType: got}
		if err := c.Validate(); (err == nil) != tt.valid || (err != nil && !errors.Is(err, ErrInvalidInput)) {
			t.Errorf("Validate() with jwt_token_type %q = %v, want valid %v", got, err, tt.valid)
		}
	}
	// Validate itself takes only the canonical spelling: what reaches the
	// store is what clients will read.
	c := Client{ID: "app", TokenType: FormatBearer, GrantTypes: []string{GrantPassword}, JWTTokenType: "jwt"}
	if err := c.Validate(); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Validate() with jwt_token_type \"jwt\" = %v, want ErrInvalidInput", err)
	}
}

// TestClientRotateSecret: the rules of a secret rotation (ADR 0019): the
// replaced secret works until the grace ends, not at its end; a second
// rotation drops the secret the first replaced; refused rotations change
// nothing.
func TestClientRotateSecret(t *testing.T) {
	t.Parallel()
	a, b, c := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	cl := Client{ID: "backend", SecretHash: a}
	for _, tt := range []struct {
		name  string
		c     Client
		hash  []byte
		grace time.Duration
	}{
		{"public client", Client{ID: "app", Public: true}, b, 0},
		{"negative grace", cl, b, -time.Second},
		{"grace over the limit", cl, b, MaxSecretGrace + time.Second},
		{"the current secret", cl, a, time.Hour},
	} {
		before := tt.c
		if err := tt.c.RotateSecret(tt.hash, t0, tt.grace); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", tt.name, err)
		}
		if !bytes.Equal(tt.c.SecretHash, before.SecretHash) || tt.c.PreviousSecretHash != nil {
			t.Errorf("%s: a refused rotation changed the client: %+v", tt.name, tt.c)
		}
	}

	if err := cl.RotateSecret(b, t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !cl.UpdatedAt.Equal(t0) {
		t.Errorf("UpdatedAt = %v", cl.UpdatedAt)
	}
	for _, tt := range []struct {
		hash []byte
		at   time.Duration
		want bool
	}{
		{b, 0, true}, {b, 48 * time.Hour, true},
		{a, 0, true}, {a, time.Hour - time.Nanosecond, true}, {a, time.Hour, false},
		{c, 0, false}, {nil, 0, false}, {a[:31], 0, false},
	} {
		if got := cl.AcceptsSecretHash(tt.hash, t0.Add(tt.at)); got != tt.want {
			t.Errorf("after a rotation with 1h grace: AcceptsSecretHash(%x, +%s) = %v", tt.hash, tt.at, got)
		}
	}
	if err := cl.RotateSecret(c, t0.Add(time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	if cl.AcceptsSecretHash(a, t0.Add(2*time.Minute)) || !cl.AcceptsSecretHash(b, t0.Add(2*time.Minute)) || !cl.AcceptsSecretHash(c, t0) {
		t.Error("a second rotation must drop the first replaced secret and keep the second in its grace")
	}
	if err := cl.RotateSecret(a, t0.Add(2*time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if cl.PreviousSecretHash != nil || !cl.PreviousSecretExpiresAt.IsZero() || cl.AcceptsSecretHash(c, t0.Add(2*time.Minute)) {
		t.Errorf("a rotation without grace kept the replaced secret: %+v", cl)
	}
}

// TestValidateRedirectURI: the redirect URIs browser sign-in accepts (RFC
// 8252 §7): private-use reverse-domain schemes, https, loopback http by IP.
func TestValidateRedirectURI(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		uri   string
		valid bool
	}{
		{"org.openedx.app://oauth2Callback", true},
		{"com.example.app:/callback", true},
		{"https://app.example.com/callback", true},
		{"https://app.example.com/callback?x=1", true},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:8765/callback", true},
		{"http://[::1]:8765/cb", true},
		{"http://localhost/callback", false},
		{"http://app.example.com/callback", false},
		{"https://app.example.com/callback#frag", false},
		{"https://app.example.com/cb#", false},
		{"https:///nohost", false},
		{"myapp://callback", false},
		{"javascript:alert(1)", false},
		{"data:text/html,hi", false},
		{"https://user:pw@app.example.com/cb", false},
		{"/relative", false},
		{"", false},
		{"https://app.example.com/a b", false},
		{"https://app.example.com/\u00e9", false},
		{"https://app.example.com/" + strings.Repeat("a", MaxRedirectURILength), false},
	} {
		err := ValidateRedirectURI(tt.uri)
		if (err == nil) != tt.valid || (err != nil && !errors.Is(err, ErrInvalidInput)) {
			t.Errorf("ValidateRedirectURI(%q) = %v, want valid %v", tt.uri, err, tt.valid)
		}
	}
	// The authorization_code grant needs a redirect URI.
	c := Client{ID: "app", Public: true, TokenType: FormatBearer, GrantTypes: []string{GrantAuthorizationCode}}
	if err := c.Validate(); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("authorization_code without redirect_uris: %v", err)
	}
	c.RedirectURIs = []string{"org.openedx.app://oauth2Callback"}
	if err := c.Validate(); err != nil {
		t.Errorf("authorization_code with a redirect URI: %v", err)
	}
	c.RedirectURIs = make([]string, MaxRedirectURIs+1)
	for i := range c.RedirectURIs {
		c.RedirectURIs[i] = "https://app.example.com/" + strings.Repeat("x", i+1)
	}
	if err := c.Validate(); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("too many redirect URIs: %v", err)
	}
}
