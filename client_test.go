package bff

import (
	"errors"
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
