package bff

import (
	"errors"
	"strings"
	"testing"
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
