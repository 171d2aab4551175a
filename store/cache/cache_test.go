package cache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/cache"
	"github.com/openedx/mobile-auth-bff/store/memory"
	"github.com/openedx/mobile-auth-bff/store/storetest"
)

// counting counts the reads that reach the store behind the cache, and can
// run a hook in the middle of a user read.
type counting struct {
	store.Store
	userReads, clientReads, jtiLoads atomic.Int64
	duringRead                       func()
}

func (c *counting) GetUser(ctx context.Context, id int64) (bff.User, error) {
	c.userReads.Add(1)
	u, err := c.Store.GetUser(ctx, id)
	if c.duringRead != nil {
		c.duringRead()
	}
	return u, err
}

func (c *counting) GetClient(ctx context.Context, id string) (bff.Client, error) {
	c.clientReads.Add(1)
	return c.Store.GetClient(ctx, id)
}

func (c *counting) RevokedJTIs(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	c.jtiLoads.Add(1)
	return c.Store.RevokedJTIs(ctx, now)
}

func setup(t *testing.T) (*cache.Store, *counting, bff.User) {
	t.Helper()
	inner := &counting{Store: memory.New()}
	u, err := inner.CreateUser(context.Background(), bff.User{Username: "u", Email: "u@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := inner.CreateClient(context.Background(), bff.Client{ID: "app", Public: true,
		GrantTypes: []string{bff.GrantPassword}, TokenType: bff.FormatBearer, JWTEnabled: true}); err != nil {
		t.Fatal(err)
	}
	return cache.New(inner, time.Hour), inner, u
}

// The cache is a store.Store like any other: it passes the conformance suite
// (live, so that its caching is exercised).
func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store {
		c := cache.New(memory.New(), time.Hour)
		c.SetLive(true)
		return c
	})
}

func TestBypassedUntilLive(t *testing.T) {
	t.Parallel()
	c, inner, u := setup(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.GetUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := inner.userReads.Load(); n != 3 {
		t.Errorf("before the feed is live: %d store reads for 3 lookups, want 3", n)
	}
	c.SetLive(true)
	for i := 0; i < 3; i++ {
		_, _ = c.GetUser(ctx, u.ID)
		_, _ = c.GetClient(ctx, "app")
	}
	if n := inner.userReads.Load(); n != 4 {
		t.Errorf("live: %d store reads, want 4 (one fill)", n)
	}
	if n := inner.clientReads.Load(); n != 1 {
		t.Errorf("live: %d client reads, want 1", n)
	}
	// The feed drops: everything is forgotten and bypassed.
	c.SetLive(false)
	_, _ = c.GetUser(ctx, u.ID)
	_, _ = c.GetUser(ctx, u.ID)
	if n := inner.userReads.Load(); n != 6 {
		t.Errorf("after the feed dropped: %d store reads, want 6", n)
	}
}

func TestInvalidation(t *testing.T) {
	t.Parallel()
	c, inner, u := setup(t)
	ctx := context.Background()
	c.SetLive(true)
	_, _ = c.GetUser(ctx, u.ID)

	// Another instance disables the user: the event makes this one forget.
	if _, err := inner.Store.SetUserDisabled(ctx, u.ID, true, "other instance", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetUser(ctx, u.ID); got.Disabled {
		t.Fatal("test setup: the cache should still hold the old user before the event")
	}
	c.Invalidate(store.UserEvent(u.ID))
	if got, _ := c.GetUser(ctx, u.ID); !got.Disabled {
		t.Error("a user event did not invalidate the cached user")
	}

	// A change made through the cache is visible at once.
	if _, err := c.SetUserDisabled(ctx, u.ID, false, "here", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetUser(ctx, u.ID); got.Disabled {
		t.Error("a local change is not visible through the cache")
	}
	if _, err := c.UpdateClient(ctx, "app", func(cl *bff.Client) error { cl.Restricted = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetClient(ctx, "app"); !got.Restricted {
		t.Error("a local client change is not visible through the cache")
	}
	// Unknown events forget everything.
	before := inner.userReads.Load()
	c.Invalidate("something new")
	_, _ = c.GetUser(ctx, u.ID)
	if inner.userReads.Load() != before+1 {
		t.Error("an unknown event did not empty the cache")
	}
}

// TestStaleFillDropped: a read that started before an invalidation must not
// put its (possibly stale) answer into the cache.
func TestStaleFillDropped(t *testing.T) {
	t.Parallel()
	c, inner, u := setup(t)
	ctx := context.Background()
	c.SetLive(true)
	inner.duringRead = func() {
		inner.duringRead = nil
		c.Invalidate(store.UserEvent(u.ID)) // the change lands while the read is in flight
	}
	_, _ = c.GetUser(ctx, u.ID)
	_, _ = c.GetUser(ctx, u.ID)
	if n := inner.userReads.Load(); n != 2 {
		t.Errorf("%d store reads, want 2: the racing read was cached", n)
	}
}

func TestRevokedJTIs(t *testing.T) {
	t.Parallel()
	c, inner, _ := setup(t)
	ctx := context.Background()
	c.SetLive(true)
	exp := time.Now().Add(time.Hour)
	for i := 0; i < 5; i++ {
		if r, err := c.IsJTIRevoked(ctx, "a"); err != nil || r {
			t.Fatalf("IsJTIRevoked(a) = %v, %v", r, err)
		}
	}
	if n := inner.jtiLoads.Load(); n != 1 {
		t.Errorf("%d loads of the revoked set for 5 checks, want 1", n)
	}
	// Revoked elsewhere: invisible until the event, then seen.
	if err := inner.Store.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeJTI{JTI: "a", ExpiresAt: exp}}); err != nil {
		t.Fatal(err)
	}
	c.Invalidate(store.EventJTIs)
	if r, _ := c.IsJTIRevoked(ctx, "a"); !r {
		t.Error("a revoked jti is not seen after the event")
	}
	// One id revoked elsewhere: its event adds it without a reload.
	if err := inner.Store.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeJTI{JTI: "c", ExpiresAt: exp}}); err != nil {
		t.Fatal(err)
	}
	loads := inner.jtiLoads.Load()
	c.Invalidate(store.JTIEvent("c"))
	if r, _ := c.IsJTIRevoked(ctx, "c"); !r {
		t.Error("a jti event did not add the id")
	}
	if n := inner.jtiLoads.Load(); n != loads {
		t.Errorf("a jti event reloaded the set (%d loads, want %d)", n, loads)
	}
	// Revoked through the cache: seen at once.
	if err := c.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeJTI{JTI: "b", ExpiresAt: exp}}); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.IsJTIRevoked(ctx, "b"); !r {
		t.Error("a jti revoked through the cache is not seen")
	}
}

func TestMaxAge(t *testing.T) {
	t.Parallel()
	inner := &counting{Store: memory.New()}
	u, _ := inner.CreateUser(context.Background(), bff.User{Username: "u", Email: "u@example.com"})
	c := cache.New(inner, 20*time.Millisecond)
	c.SetLive(true)
	_, _ = c.GetUser(context.Background(), u.ID)
	time.Sleep(40 * time.Millisecond)
	_, _ = c.GetUser(context.Background(), u.ID)
	if n := inner.userReads.Load(); n != 2 {
		t.Errorf("an entry older than max age was used: %d reads", n)
	}
}
