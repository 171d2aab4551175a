package oauth_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
)

// TestVerifiedJWTs: a JWT presented again skips its signature check, and
// only that: a token differing in any byte is verified from scratch, and
// revocation, the account and expiry are decided on every presentation.
func TestVerifiedJWTs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	env := testenv.New(t, testenv.Options{Config: func(c *oauth.Config) {
		c.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	}})
	v := env.Validator
	c := env.PublicClient(t, "mobile")
	newUser(t, env, "vera")
	u2 := newUser(t, env, "walt")
	jwt, _ := tokens(t, env, c.ID, "vera", bff.FormatJWT)
	other, _ := tokens(t, env, c.ID, "walt", bff.FormatJWT)

	for range 2 {
		if _, err := v.Validate(ctx, bearer(jwt)); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.VerifiedJWTs(); n != 1 {
		t.Fatalf("%d JWTs remembered after two presentations of one, want 1", n)
	}
	// The same token with one byte changed (the signature's first) is
	// another token: checked, and refused.
	tampered := []byte(jwt)
	sig := len(tampered) - 86 // an ES256 signature is 86 characters
	tampered[sig] ^= 'A' ^ 'B'
	if tampered[sig] == jwt[sig] {
		t.Fatal("test setup: the token was not changed")
	}
	if _, err := v.Validate(ctx, bearer(string(tampered))); !errors.Is(err, bff.ErrInvalidToken) {
		t.Errorf("a tampered copy of a remembered JWT: %v, want %v", err, bff.ErrInvalidToken)
	}
	// Revoked after it was remembered: refused.
	p, err := v.Validate(ctx, bearer(jwt))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Store.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeJTI{JTI: p.JTI, ExpiresAt: p.ExpiresAt}}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(ctx, bearer(jwt)); !errors.Is(err, bff.ErrTokenRevoked) {
		t.Errorf("a remembered JWT revoked: %v, want %v", err, bff.ErrTokenRevoked)
	}
	// The account is read on every presentation.
	if _, err := v.Validate(ctx, bearer(other)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Admin.DisableUser(ctx, u2.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(ctx, bearer(other)); !errors.Is(err, bff.ErrAccountDisabled) {
		t.Errorf("a remembered JWT of a disabled user: %v, want %v", err, bff.ErrAccountDisabled)
	}
	// Expired: refused, and forgotten.
	clock.Add(int64(2 * time.Hour))
	if _, err := v.Validate(ctx, bearer(jwt)); !errors.Is(err, bff.ErrTokenExpired) {
		t.Errorf("a remembered JWT past its exp: %v, want %v", err, bff.ErrTokenExpired)
	}
	if _, err := v.Validate(ctx, bearer(other)); !errors.Is(err, bff.ErrTokenExpired) {
		t.Errorf("a remembered JWT past its exp: %v, want %v", err, bff.ErrTokenExpired)
	}
	if n := v.VerifiedJWTs(); n != 0 {
		t.Errorf("%d expired JWTs still remembered, want 0", n)
	}
}
