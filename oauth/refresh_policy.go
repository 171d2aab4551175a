package oauth

import (
	"context"
	"time"

	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
)

// RefreshPolicy is the one place that judges a presented refresh token
// (as Dex's RefreshTokenPolicy): whether its text is one the service
// issued (the HMAC), and what its stored record says — live, rotated
// within the reuse grace, reused, revoked, expired — by the service's
// clock. The refresh grant asks it before fosite sees the token
// (Service.issue), in fosite's store adapter (GetRefreshTokenSession) and
// in fosite's strategy (ValidateRefreshToken); introspection asks it too.
// The stores only record the first rotation (MarkRefreshRotated keeps the
// earliest time) and refuse tokens of dead families (bff.TokenFamily.MayIssue).
type RefreshPolicy struct {
	// grace is how long a rotated refresh token may still be used: a
	// phone that lost the response of a refresh retries with the old
	// token (BFF_REFRESH_REUSE_GRACE).
	grace time.Duration
	now   func() time.Time
	// signature checks a token's HMAC and returns its signature.
	signature func(ctx context.Context, token, prefix string) (string, bool)
}

// RefreshVerdict is the policy's judgement of a stored refresh token.
type RefreshVerdict int

const (
	// RefreshLive: never used, unexpired, unrevoked.
	RefreshLive RefreshVerdict = iota
	// RefreshInGrace: rotated no longer than the grace ago; it may be used
	// again (a retried refresh gets new tokens).
	RefreshInGrace
	// RefreshReused: rotated longer than the grace ago — a replay of a
	// stolen or leaked token. Presenting it revokes its whole family.
	RefreshReused
	// RefreshRevoked: the token or its family was revoked. Presenting it
	// revokes the family again (fosite's reuse detection).
	RefreshRevoked
	// RefreshExpired: its lifetime is over.
	RefreshExpired
)

var refreshVerdictNames = [...]string{"live", "in grace", "reused", "revoked", "expired"}

func (v RefreshVerdict) String() string {
	if v < 0 || int(v) >= len(refreshVerdictNames) {
		return "unknown"
	}
	return refreshVerdictNames[v]
}

// Usable reports whether a refresh with the token may issue new tokens.
func (v RefreshVerdict) Usable() bool { return v == RefreshLive || v == RefreshInGrace }

// RevokesFamily reports whether presenting the token revokes its family.
func (v RefreshVerdict) RevokesFamily() bool { return v == RefreshReused || v == RefreshRevoked }

// newRefreshPolicy returns the policy of a reuse grace and a clock (nil
// means time.Now); signature is the HMAC check of opaque tokens.
func newRefreshPolicy(grace time.Duration, now func() time.Time, signature func(context.Context, string, string) (string, bool)) *RefreshPolicy {
	if now == nil {
		now = time.Now
	}
	return &RefreshPolicy{grace: grace, now: now, signature: signature}
}

// Signature checks that token is a refresh token the service issued (its
// prefix, canonical spelling and HMAC) and returns its stored signature.
// It is asked before any lookup: fosite looks a refresh token up by its
// signature part and, for a reused one, revokes its family before checking
// the HMAC, so someone who read the signatures in the database could
// revoke families.
func (p *RefreshPolicy) Signature(ctx context.Context, token string) (string, bool) {
	return p.signature(ctx, token, opaqueRefreshPrefix)
}

// Judge says what a stored refresh token is now. A revoked or reused
// token is judged so even when it has also expired: presenting it still
// revokes the family.
func (p *RefreshPolicy) Judge(t bff.RefreshToken) RefreshVerdict {
	now := p.now()
	switch {
	case t.RevokedAt != nil:
		return RefreshRevoked
	case t.RotatedAt != nil && now.Sub(*t.RotatedAt) > p.grace:
		return RefreshReused
	case p.expired(t.ExpiresAt, now):
		return RefreshExpired
	case t.RotatedAt != nil:
		return RefreshInGrace
	}
	return RefreshLive
}

// expired: a refresh token expires at its expiry; a zero expiry is an
// unlimited lifetime (fosite's convention).
func (p *RefreshPolicy) expired(exp, now time.Time) bool {
	return !exp.IsZero() && !now.Before(exp)
}

// validate is fosite's last check of a presented refresh token, after the
// store adapter has judged its record: its expiry (from the request's
// session) by the policy's clock, and its HMAC.
func (p *RefreshPolicy) validate(ctx context.Context, exp time.Time, token string) error {
	if p.expired(exp, p.now()) {
		return fosite.ErrTokenExpired.WithHintf("Refresh token expired at '%s'.", exp)
	}
	if _, ok := p.Signature(ctx, token); !ok {
		return fosite.ErrTokenSignatureMismatch
	}
	return nil
}
