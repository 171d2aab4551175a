package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/cache"
	"github.com/openedx/mobile-auth-bff/store/postgres"
	"github.com/openedx/mobile-auth-bff/store/storetest"
)

// BenchmarkStore is the PostgreSQL store's hot paths (see storetest.Bench),
// straight and through the cache the service puts in front of it (live, as
// with its change feed up). Skipped without BFF_TEST_DATABASE_URL, even
// under CI=true: a benchmark never fails for want of a database.
func BenchmarkStore(b *testing.B) {
	if os.Getenv(testdb.EnvVar) == "" {
		b.Skipf("%s is not set", testdb.EnvVar)
	}
	openPG := func(b *testing.B) *postgres.Store {
		s, err := postgres.Open(context.Background(), testdb.URL(b), postgres.Options{Migrate: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		return s
	}
	b.Run("store=postgres", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) store.Store { return openPG(b) })
	})
	b.Run("store=postgres-cached", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) store.Store {
			c := cache.New(openPG(b), time.Hour)
			c.SetLive(true)
			return c
		})
	})
}
