package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// maxDPoPProofs caps the proofs remembered: each is remembered for the
// acceptance window only, so the cap is reached only past tens of
// thousands of proofs a minute; beyond it a proof is answered 503 rather
// than growing the process without bound.
const maxDPoPProofs = 200_000

// dpopProofs is the memory of accepted DPoP proofs, under a lock of its
// own: a proof check never waits for token writes.
type dpopProofs struct {
	mu        sync.Mutex
	used      map[string]time.Time // key → expiry
	lastPrune time.Time
}

// UseDPoPProof records a proof's key until expiresAt; false when a record
// of it that has not expired at now exists.
func (s *Store) UseDPoPProof(_ context.Context, key string, now, expiresAt time.Time) (bool, error) {
	d := &s.dpop
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.used == nil {
		d.used = map[string]time.Time{}
	}
	if exp, ok := d.used[key]; ok && exp.After(now) {
		return false, nil
	}
	if len(d.used) >= maxDPoPProofs && now.Sub(d.lastPrune) >= time.Second {
		d.lastPrune = now
		pruneExpired(d.used, now, func(exp time.Time) time.Time { return exp })
	}
	if len(d.used) >= maxDPoPProofs {
		return false, fmt.Errorf("the in-memory store remembers its maximum of %d DPoP proofs: %w", maxDPoPProofs, bff.ErrUnavailable)
	}
	d.used[key] = expiresAt
	return true, nil
}

// PruneDPoPProofs deletes the records that expired before the given time.
func (s *Store) PruneDPoPProofs(_ context.Context, before time.Time) (int64, error) {
	d := &s.dpop
	d.mu.Lock()
	defer d.mu.Unlock()
	return pruneExpired(d.used, before, func(exp time.Time) time.Time { return exp }), nil
}
