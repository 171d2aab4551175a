package oauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
)

func TestRefreshPolicyJudge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newRefreshPolicy(10*time.Second, func() time.Time { return now }, nil)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	exp := now.Add(time.Hour)
	for _, c := range []struct {
		name string
		tok  bff.RefreshToken
		want RefreshVerdict
	}{
		{"live", bff.RefreshToken{ExpiresAt: exp}, RefreshLive},
		{"rotated just now", bff.RefreshToken{ExpiresAt: exp, RotatedAt: at(0)}, RefreshInGrace},
		{"rotated the grace ago", bff.RefreshToken{ExpiresAt: exp, RotatedAt: at(-10 * time.Second)}, RefreshInGrace},
		{"rotated longer ago", bff.RefreshToken{ExpiresAt: exp, RotatedAt: at(-10*time.Second - time.Nanosecond)}, RefreshReused},
		{"revoked", bff.RefreshToken{ExpiresAt: exp, RevokedAt: at(-time.Minute)}, RefreshRevoked},
		{"revoked in grace", bff.RefreshToken{ExpiresAt: exp, RotatedAt: at(0), RevokedAt: at(0)}, RefreshRevoked},
		{"expired", bff.RefreshToken{ExpiresAt: now}, RefreshExpired},
		{"expired in grace", bff.RefreshToken{ExpiresAt: now, RotatedAt: at(0)}, RefreshExpired},
		{"reused, also expired", bff.RefreshToken{ExpiresAt: now, RotatedAt: at(-time.Hour)}, RefreshReused},
		{"revoked, also expired", bff.RefreshToken{ExpiresAt: now, RevokedAt: at(-time.Hour)}, RefreshRevoked},
		{"no expiry", bff.RefreshToken{}, RefreshLive},
	} {
		if got := p.Judge(c.tok); got != c.want {
			t.Errorf("%s: Judge = %v, want %v", c.name, got, c.want)
		}
	}
	for v, want := range map[RefreshVerdict][2]bool{
		RefreshLive: {true, false}, RefreshInGrace: {true, false}, RefreshReused: {false, true},
		RefreshRevoked: {false, true}, RefreshExpired: {false, false},
	} {
		if v.Usable() != want[0] || v.RevokesFamily() != want[1] {
			t.Errorf("%v: Usable %v RevokesFamily %v, want %v", v, v.Usable(), v.RevokesFamily(), want)
		}
	}
}

// TestRefreshPolicyValidate: fosite's last check uses the policy's clock
// for the expiry, and the HMAC check.
func TestRefreshPolicyValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	valid := func(_ context.Context, token, prefix string) (string, bool) { return "sig", token == prefix+"good" }
	p := newRefreshPolicy(0, func() time.Time { return now }, valid)
	if err := p.validate(context.Background(), now.Add(time.Second), opaqueRefreshPrefix+"good"); err != nil {
		t.Errorf("live: %v", err)
	}
	if err := p.validate(context.Background(), now, opaqueRefreshPrefix+"good"); !errors.Is(err, fosite.ErrTokenExpired) {
		t.Errorf("expired by the policy's clock: %v, want ErrTokenExpired", err)
	}
	if err := p.validate(context.Background(), now.Add(time.Second), opaqueRefreshPrefix+"bad"); !errors.Is(err, fosite.ErrTokenSignatureMismatch) {
		t.Errorf("bad HMAC: %v, want ErrTokenSignatureMismatch", err)
	}
}
