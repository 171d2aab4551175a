package postgres_test

import (
	"context"
	"io/fs"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/migrations"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/postgres"
	"github.com/openedx/mobile-auth-bff/store/storetest"
)

func open(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), testdb.URL(t), postgres.Options{Migrate: true, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestMigrateDownAndUp(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	st, err := s.MigrateStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version == 0 || st.Version != st.Latest || st.Dirty {
		t.Fatalf("after up: %+v", st)
	}
	// Down by the number of migrations, not the latest version: the
	// numbers may have gaps (they are handed out per branch).
	ups, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil || len(ups) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	if err := s.MigrateDown(ctx, len(ups)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.MigrateStatus(ctx); st.Version != 0 {
		t.Fatalf("after down: %+v", st)
	}
	if err := s.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListClients(ctx); err != nil {
		t.Fatalf("schema unusable after down+up: %v", err)
	}
}
