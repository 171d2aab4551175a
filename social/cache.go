package social

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Provider answers are kept at most answerTTL (and never beyond the
// token's own expiry), so that an app replaying its provider token does
// not cost a call to Google each time, while a token the provider revoked
// stops working within a minute. Bad answers are not kept.
const (
	answerTTL     = 60 * time.Second
	answerEntries = 10_000
)

// answerKey identifies a provider token without holding it.
type answerKey struct {
	backend string
	sum     [sha256.Size]byte
}

type answer struct {
	id    Identity
	until time.Time
}

// Cache remembers good provider answers and makes concurrent
// verifications of one token share one provider call.
type Cache struct {
	now     func() time.Time
	observe func(backend, result string)
	calls   singleflight.Group

	mu      sync.Mutex
	entries map[answerKey]answer
	max     int
	swept   time.Time // last walk for expired answers
}

// NewCache returns an empty cache whose clock is now; observe, when not
// nil, is told the result of every verification: ok, rejected,
// unavailable, or cached.
func NewCache(now func() time.Time, observe func(backend, result string)) *Cache {
	if observe == nil {
		observe = func(string, string) {}
	}
	return &Cache{now: now, observe: observe, entries: map[answerKey]answer{}, max: answerEntries}
}

// Verify answers from the cache or asks p, backend's provider; cached
// reports which.
func (c *Cache) Verify(ctx context.Context, backend string, p Provider, token string) (Identity, bool, error) {
	k := answerKey{backend: backend, sum: sha256.Sum256([]byte(token))}
	if id, ok := c.get(k); ok {
		c.observe(backend, "cached")
		return id, true, nil
	}
	// The call outlives a caller that gives up, so that the callers sharing
	// it still get its answer; the provider client bounds its duration.
	ch := c.calls.DoChan(backend+"\x00"+string(k.sum[:]), func() (any, error) {
		id, err := p.Verify(context.WithoutCancel(ctx), token)
		switch {
		case err == nil:
			c.put(k, id)
			c.observe(backend, "ok")
		case errors.Is(err, ErrRejected):
			c.observe(backend, "rejected")
		default:
			c.observe(backend, "unavailable")
		}
		return id, err
	})
	select {
	case <-ctx.Done():
		return Identity{}, false, unavailable(backend, "%s", transportFailure(ctx.Err()))
	case r := <-ch:
		if r.Err != nil {
			return Identity{}, false, r.Err
		}
		return r.Val.(Identity), false, nil
	}
}

func (c *Cache) get(k answerKey) (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.entries[k]
	if !ok {
		return Identity{}, false
	}
	if !c.now().Before(a.until) {
		delete(c.entries, k)
		return Identity{}, false
	}
	return a.id, true
}

func (c *Cache) put(k answerKey, id Identity) {
	now := c.now()
	until := now.Add(answerTTL)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(until) {
		until = id.ExpiresAt
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Full: drop what has expired (at most once a second, as it walks
		// the whole map), then, still full of live answers, one arbitrary
		// answer (map order); it was at most a minute from expiring anyway.
		if now.Sub(c.swept) >= time.Second {
			c.swept = now
			for ek, a := range c.entries {
				if !now.Before(a.until) {
					delete(c.entries, ek)
				}
			}
		}
		for ek := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, ek)
		}
	}
	c.entries[k] = answer{id: id, until: until}
}

// len returns the number of cached answers, for tests.
func (c *Cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
