package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// ThrottleConfig limits failed password attempts.
type ThrottleConfig struct {
	PerUsername int           // failures per account (or login typed) per window
	PerAddress  int           // failures per client address per window
	Window      time.Duration // how long failures count
}

// DefaultThrottle is 10 failures per username and 100 per address in 15 minutes.
// The address limit is loose because mobile carriers put many users
// behind one address.
var DefaultThrottle = ThrottleConfig{PerUsername: 10, PerAddress: 100, Window: 15 * time.Minute}

// Throttle counts password attempts in the store, so that every instance
// sees the same counts (ADR 5). An attempt is counted before its password
// is checked (Reserve): the count is the store's atomic increment, so
// however many attempts arrive at once, on however many instances, at most
// the limit of them get a password check in a window. An attempt that did
// not fail gives its count back (Settle).
type Throttle struct {
	store store.LoginThrottle
	cfg   ThrottleConfig
	now   func() time.Time
}

// NewThrottle returns a throttle over s.
func NewThrottle(s store.LoginThrottle, cfg ThrottleConfig) *Throttle {
	return &Throttle{store: s, cfg: cfg, now: func() time.Time { return time.Now().UTC() }}
}

// Keys of typed text are hashed: people type passwords into username
// fields, and what they typed must not sit in a table in clear.
func throttleKey(kind, value string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + strings.ToLower(strings.TrimSpace(value))))
	return kind + ":" + hex.EncodeToString(sum[:16])
}

// UserKey is the per-username bucket of a login: the account's when the
// login (username or email) names one, so that both ways of naming an
// account share one allowance; otherwise the normalized text typed.
func UserKey(u *bff.User, login string) string {
	if u != nil {
		return "user:" + strconv.FormatInt(u.ID, 10)
	}
	return throttleKey("u", login)
}

// AddressKey is the per-address bucket of a client address.
func AddressKey(addr string) string { return throttleKey("a", addr) }

// bucket is one counter an attempt is counted in.
type bucket struct {
	key   string
	limit int
	user  bool      // the per-username bucket (a success resets it)
	start time.Time // the window the attempt was counted in
	held  bool      // counted, not yet given back
}

// Attempt is a password attempt counted in its buckets.
type Attempt struct {
	t       *Throttle
	buckets []bucket
}

// Outcome is how a counted attempt ended.
type Outcome int

const (
	// Failed means the password was checked and was wrong: the attempt
	// stays counted.
	Failed Outcome = iota
	// Succeeded means the password was right and tokens were issued: the
	// user's failures are forgotten and the address's count given back.
	Succeeded
	// Unchecked means no password was refuted (the request was refused
	// before the check, the check could not run, or the password was
	// right but the request failed later): both counts are given back.
	Unchecked
)

// Reserve counts an attempt for userKey and the address before its
// password is checked. When either count goes over its limit the attempt
// is refused with a *bff.ThrottledError and leaves the counts as they
// were; a store failure refuses it too (fail closed). Limits of 0 are off.
func (t *Throttle) Reserve(ctx context.Context, userKey, addr string) (*Attempt, error) {
	a := &Attempt{t: t}
	for _, b := range []bucket{{key: userKey, limit: t.cfg.PerUsername, user: true}, {key: AddressKey(addr), limit: t.cfg.PerAddress}} {
		if b.limit > 0 {
			a.buckets = append(a.buckets, b)
		}
	}
	now := t.now()
	// A bucket already full refuses with a read, so that a flood against
	// a locked account or address does not write.
	for _, b := range a.buckets {
		n, start, err := t.store.LoginFailures(ctx, b.key)
		if err != nil {
			return nil, fmt.Errorf("login throttle: %w", err)
		}
		if n >= b.limit {
			if wait := start.Add(t.cfg.Window).Sub(now); wait > 0 {
				return nil, t.throttled(wait)
			}
		}
	}
	// The count the increment returns decides: of concurrent attempts,
	// only those that made a count up to the limit go on.
	for i := range a.buckets {
		b := &a.buckets[i]
		n, start, err := t.store.RecordLoginFailure(ctx, b.key, now, t.cfg.Window)
		if err != nil {
			_ = a.Settle(ctx, Unchecked)
			return nil, fmt.Errorf("login throttle: %w", err)
		}
		b.start, b.held = start, true
		if n > b.limit {
			_ = a.Settle(ctx, Unchecked)
			return nil, t.throttled(start.Add(t.cfg.Window).Sub(now))
		}
	}
	return a, nil
}

// throttled is the refusal with Retry-After in whole seconds, rounded up
// and never more than the window: a window started by a concurrent
// attempt whose clock read a little later than ours must not add a second.
func (t *Throttle) throttled(wait time.Duration) error {
	wait = min(wait, t.cfg.Window)
	return &bff.ThrottledError{RetryAfterSeconds: max(int((wait+time.Second-1)/time.Second), 1)}
}

// Settle ends a counted attempt. It is made to run when the request's
// context may be over (the client hung up): its store calls do not depend
// on ctx's cancellation. An error means a count could not be given back;
// it stays, which only errs on the side of refusing.
func (a *Attempt) Settle(ctx context.Context, o Outcome) error {
	if a == nil || o == Failed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	var first error
	for i := range a.buckets {
		b := &a.buckets[i]
		var err error
		switch {
		case o == Succeeded && b.user:
			b.held = false
			err = a.t.store.ResetLoginFailures(ctx, b.key)
		case b.held:
			b.held = false
			err = a.t.store.ForgiveLoginFailure(ctx, b.key, b.start)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("login throttle: %w", err)
		}
	}
	return first
}

// settleTimeout bounds the store calls that give counts back.
const settleTimeout = 5 * time.Second
