package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/cache"
	"github.com/openedx/mobile-auth-bff/store/postgres"
	"github.com/openedx/mobile-auth-bff/store/storetest"
)

// openURL opens a store on an existing database.
func openURL(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{Migrate: true, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// cachedInstance is a store as a serving instance has it: the cache in
// front of PostgreSQL, kept honest by the change feed, which is up when
// this returns.
func cachedInstance(t *testing.T, url string) (*cache.Store, *postgres.Store) {
	t.Helper()
	pg := openURL(t, url)
	c := cache.New(pg, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { pg.Listen(ctx, c.Invalidate, c.SetLive) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for !c.Live() {
		if time.Now().After(deadline) {
			t.Fatal("the change feed did not come up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c, pg
}

// TestConformanceInstances: two instances on one database see each
// other's revocations, straight and through their caches.
func TestConformanceInstances(t *testing.T) {
	t.Run("store=postgres", func(t *testing.T) {
		storetest.RunInstances(t, func(t *testing.T) (store.Store, store.Store) {
			url := testdb.URL(t)
			return openURL(t, url), openURL(t, url)
		})
	})
	t.Run("store=postgres-cached", func(t *testing.T) {
		storetest.RunInstances(t, func(t *testing.T) (store.Store, store.Store) {
			url := testdb.URL(t)
			a, _ := cachedInstance(t, url)
			b, _ := cachedInstance(t, url)
			return a, b
		})
	})
}

// TestCachedTokensFeedDown: a cached token record is used only while the
// change feed is up. A revocation whose event never comes (written by SQL,
// as by a tool, without NOTIFY) stays unseen while the feed is up — the
// record is served from memory — and is seen as soon as the feed drops:
// the cache is emptied and the read goes to PostgreSQL.
func TestCachedTokensFeedDown(t *testing.T) {
	ctx := context.Background()
	url := testdb.URL(t)
	c, pg := cachedInstance(t, url)
	b := openURL(t, url)
	now := time.Now().UTC()
	if err := b.CreateClient(ctx, bff.Client{ID: "svc", Name: "svc", GrantTypes: []string{bff.GrantClientCredentials},
		TokenType: bff.FormatBearer, SecretHash: []byte("x"), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	tok := bff.AccessToken{Signature: "sig-feed", FamilyID: "fam-feed", Format: bff.FormatBearer, ClientID: "svc",
		GrantType: bff.GrantClientCredentials, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Request: []byte(`{}`)}
	if err := b.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: tok}}); err != nil {
		t.Fatal(err)
	}
	revoked := func() bool {
		got, err := c.GetAccessToken(ctx, tok.Signature)
		if err != nil {
			t.Fatal(err)
		}
		return got.RevokedAt != nil
	}
	if revoked() {
		t.Fatal("a new token reads as revoked")
	}
	if _, err := pg.Pool().Exec(ctx, `UPDATE access_tokens SET revoked_at = now() WHERE signature = $1`, tok.Signature); err != nil {
		t.Fatal(err)
	}
	if revoked() {
		t.Fatal("test setup: the record should be served from the cache while the feed is up")
	}
	// The feed's connection dies (a restarted PostgreSQL, a killed backend).
	if _, err := pg.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE '%`+postgres.ListenerName+`'`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(storetest.SeenWithin)
	for !revoked() {
		if time.Now().After(deadline) {
			t.Fatal("the revocation is still unseen after the change feed dropped")
		}
		time.Sleep(time.Millisecond)
	}
}
