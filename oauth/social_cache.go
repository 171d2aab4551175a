package oauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Provider answers are kept at most socialAnswerTTL (and never beyond the
// token's own expiry), so that an app replaying its provider token does
// not cost a call to Google each time, while a token the provider revoked
// stops working within a minute. Bad answers are not kept.
const (
	socialAnswerTTL     = 60 * time.Second
	socialAnswerEntries = 10_000
)

// answerKey identifies a provider token without holding it.
type answerKey struct {
	backend string
	sum     [sha256.Size]byte
}

type answer struct {
	id    ProviderIdentity
	until time.Time
}

// answerCache remembers good provider answers and makes concurrent
// verifications of one token share one provider call.
type answerCache struct {
	now     func() time.Time
	observe func(backend, result string)
	calls   singleflight.Group

	mu      sync.Mutex
	entries map[answerKey]answer
	max     int
	swept   time.Time // last walk for expired answers
}

func newAnswerCache(now func() time.Time, observe func(backend, result string)) *answerCache {
	if observe == nil {
		observe = func(string, string) {}
	}
	return &answerCache{now: now, observe: observe, entries: map[answerKey]answer{}, max: socialAnswerEntries}
}

// verify answers from the cache or asks p; cached reports which.
func (c *answerCache) verify(ctx context.Context, backend string, p Provider, token string) (ProviderIdentity, bool, error) {
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
		case errors.Is(err, ErrProviderRejected):
			c.observe(backend, "rejected")
		default:
			c.observe(backend, "unavailable")
		}
		return id, err
	})
	select {
	case <-ctx.Done():
		return ProviderIdentity{}, false, unavailable(backend, "%s", transportFailure(ctx.Err()))
	case r := <-ch:
		if r.Err != nil {
			return ProviderIdentity{}, false, r.Err
		}
		return r.Val.(ProviderIdentity), false, nil
	}
}

func (c *answerCache) get(k answerKey) (ProviderIdentity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.entries[k]
	if !ok {
		return ProviderIdentity{}, false
	}
	if !c.now().Before(a.until) {
		delete(c.entries, k)
		return ProviderIdentity{}, false
	}
	return a.id, true
}

func (c *answerCache) put(k answerKey, id ProviderIdentity) {
	now := c.now()
	until := now.Add(socialAnswerTTL)
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
func (c *answerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
