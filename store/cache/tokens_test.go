package cache_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/cache"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

// tokenCounting counts the access-token reads that reach the store.
type tokenCounting struct {
	store.Store
	reads      atomic.Int64
	duringRead func()
}

func (c *tokenCounting) GetAccessToken(ctx context.Context, sig string) (bff.AccessToken, error) {
	c.reads.Add(1)
	t, err := c.Store.GetAccessToken(ctx, sig)
	if c.duringRead != nil {
		c.duringRead()
	}
	return t, err
}

// tokenSetup stores a client, a user and two of the user's tokens in one
// family, and a client-credentials token of another family.
func tokenSetup(t *testing.T) (*cache.Store, *tokenCounting, bff.User) {
	t.Helper()
	ctx := context.Background()
	inner := &tokenCounting{Store: memory.New()}
	u, err := inner.CreateUser(ctx, bff.User{Username: "u", Email: "u@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := inner.CreateClient(ctx, bff.Client{ID: "app", Public: true, GrantTypes: []string{bff.GrantPassword},
		TokenType: bff.FormatBearer, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	tok := func(sig, fam string, user int64) store.TokenOp {
		return store.CreateAccessToken{Token: bff.AccessToken{Signature: sig, FamilyID: fam, Format: bff.FormatBearer,
			ClientID: "app", UserID: user, GrantType: bff.GrantPassword, IssuedAt: now, AuthTime: now,
			ExpiresAt: now.Add(time.Hour)}}
	}
	if err := inner.ApplyTokenOps(ctx, []store.TokenOp{tok("a1", "fa", u.ID), tok("a2", "fa", u.ID), tok("b1", "fb", 0)}); err != nil {
		t.Fatal(err)
	}
	return cache.New(inner, time.Hour), inner, u
}

// read reads a token through the cache and tells whether it is revoked.
func read(t *testing.T, c *cache.Store, sig string) bool {
	t.Helper()
	got, err := c.GetAccessToken(context.Background(), sig)
	if err != nil {
		t.Fatalf("GetAccessToken(%s): %v", sig, err)
	}
	return got.RevokedAt != nil
}

func TestTokensBypassedUntilLive(t *testing.T) {
	t.Parallel()
	c, inner, _ := tokenSetup(t)
	for range 3 {
		read(t, c, "a1")
	}
	if n := inner.reads.Load(); n != 3 {
		t.Errorf("before the feed is live: %d store reads for 3 lookups, want 3", n)
	}
	c.SetLive(true)
	for range 3 {
		read(t, c, "a1")
	}
	if n := inner.reads.Load(); n != 4 {
		t.Errorf("live: %d store reads, want 4 (one fill)", n)
	}
	c.SetLive(false)
	read(t, c, "a1")
	read(t, c, "a1")
	if n := inner.reads.Load(); n != 6 {
		t.Errorf("after the feed dropped: %d store reads, want 6", n)
	}
}

// revokeElsewhere revokes through the store behind the cache, as another
// instance does: the cache learns of it only by the event.
func revokeElsewhere(t *testing.T, inner *tokenCounting, ops ...store.TokenOp) {
	t.Helper()
	if err := inner.Store.ApplyTokenOps(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
}

func TestTokenEvents(t *testing.T) {
	t.Parallel()
	at := time.Now().UTC()
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, inner *tokenCounting, u bff.User)
		event   func(u bff.User) string
		revoked []string // of a1, a2, b1
		gone    []string
	}{
		{"access token", func(t *testing.T, inner *tokenCounting, _ bff.User) {
			revokeElsewhere(t, inner, store.RevokeAccessToken{Signature: "a1", At: at})
		}, func(bff.User) string { return store.AccessTokenEvent("a1") }, []string{"a1"}, nil},
		{"family", func(t *testing.T, inner *tokenCounting, _ bff.User) {
			revokeElsewhere(t, inner, store.RevokeFamily{FamilyID: "fa", At: at})
		}, func(bff.User) string { return store.FamilyEvent("fa") }, []string{"a1", "a2"}, nil},
		{"too many to name", func(t *testing.T, inner *tokenCounting, _ bff.User) {
			revokeElsewhere(t, inner, store.RevokeFamily{FamilyID: "fa", At: at}, store.RevokeFamily{FamilyID: "fb", At: at})
		}, func(bff.User) string { return store.EventTokens }, []string{"a1", "a2", "b1"}, nil},
		{"password changed", func(t *testing.T, inner *tokenCounting, u bff.User) {
			if err := inner.Store.SetUserPassword(context.Background(), u.ID, "x", "test", at); err != nil {
				t.Fatal(err)
			}
		}, func(u bff.User) string { return store.UserEvent(u.ID) }, []string{"a1", "a2"}, nil},
		{"client deleted", func(t *testing.T, inner *tokenCounting, _ bff.User) {
			if err := inner.Store.DeleteClient(context.Background(), "app"); err != nil {
				t.Fatal(err)
			}
		}, func(bff.User) string { return store.ClientEvent("app") }, nil, []string{"a1", "a2", "b1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, inner, u := tokenSetup(t)
			c.SetLive(true)
			sigs := []string{"a1", "a2", "b1"}
			for _, sig := range sigs {
				read(t, c, sig)
			}
			tc.change(t, inner, u)
			for _, sig := range sigs {
				if read(t, c, sig) {
					t.Fatalf("test setup: %s should still be served from the cache before the event", sig)
				}
			}
			c.Invalidate(tc.event(u))
			for _, sig := range sigs {
				got, err := c.GetAccessToken(context.Background(), sig)
				wantGone := slices.Contains(tc.gone, sig)
				switch {
				case wantGone && !errors.Is(err, bff.ErrNotFound):
					t.Errorf("%s after the event: %v, want ErrNotFound", sig, err)
				case !wantGone && err != nil:
					t.Errorf("%s after the event: %v", sig, err)
				case !wantGone && (got.RevokedAt != nil) != slices.Contains(tc.revoked, sig):
					t.Errorf("%s after the event: revoked %v, want %v", sig, got.RevokedAt != nil, slices.Contains(tc.revoked, sig))
				}
			}
		})
	}
}

// Revocations and deletions made through the cache are seen at once.
func TestTokenLocalChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _, u := tokenSetup(t)
	c.SetLive(true)
	for _, sig := range []string{"a1", "a2", "b1"} {
		read(t, c, sig)
	}
	if err := c.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeAccessToken{Signature: "b1", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if !read(t, c, "b1") {
		t.Error("an access token revoked through the cache is not seen")
	}
	if _, err := c.SetUserDisabled(ctx, u.ID, true, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if !read(t, c, "a1") || !read(t, c, "a2") {
		t.Error("the tokens of a user disabled through the cache are not seen revoked")
	}
	if _, err := c.PruneTokens(ctx, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAccessToken(ctx, "a1"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("a token pruned through the cache: %v, want ErrNotFound", err)
	}
}

// TestTokenStaleFillDropped: a read that started before an invalidation
// must not put its (possibly stale) record into the cache.
func TestTokenStaleFillDropped(t *testing.T) {
	t.Parallel()
	c, inner, _ := tokenSetup(t)
	c.SetLive(true)
	inner.duringRead = func() {
		inner.duringRead = nil
		c.Invalidate(store.AccessTokenEvent("a1"))
	}
	read(t, c, "a1")
	read(t, c, "a1")
	if n := inner.reads.Load(); n != 2 {
		t.Errorf("%d store reads, want 2: the racing read was cached", n)
	}
}

// An expired record is not served from the cache: the store decides
// (pruning may have deleted it).
func TestTokenExpiredNotServed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner := &tokenCounting{Store: memory.New()}
	now := time.Now().UTC()
	if err := inner.CreateClient(ctx, bff.Client{ID: "app", Public: true, GrantTypes: []string{bff.GrantPassword},
		TokenType: bff.FormatBearer, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := inner.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bff.AccessToken{Signature: "s",
		FamilyID: "f", Format: bff.FormatBearer, ClientID: "app", GrantType: bff.GrantClientCredentials,
		IssuedAt: now, ExpiresAt: now.Add(30 * time.Millisecond)}}}); err != nil {
		t.Fatal(err)
	}
	c := cache.New(inner, time.Hour)
	c.SetLive(true)
	_, _ = c.GetAccessToken(ctx, "s")
	_, _ = c.GetAccessToken(ctx, "s")
	time.Sleep(40 * time.Millisecond)
	_, _ = c.GetAccessToken(ctx, "s")
	if n := inner.reads.Load(); n != 2 {
		t.Errorf("%d store reads, want 2: one fill, and one after the token expired", n)
	}
}
