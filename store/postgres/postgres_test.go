package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bff "github.com/openedx/mobile-auth-bff"

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
	// From an empty database, as a first start migrates.
	s, err := postgres.Open(ctx, testdb.EmptyURL(t), postgres.Options{Migrate: true, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
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

// TestMigrateLoginNamespace: accounts that collided before migration 0010
// (a username with @ equal to another account's email) keep their rows;
// the shared key is reserved and names nobody, so neither account can take
// the other's logins (ADR 0021), and each still signs in by its own key.
func TestMigrateLoginNamespace(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, testdb.EmptyURL(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	before := uint(0)
	ups, _ := fs.Glob(migrations.FS, "*.up.sql")
	for _, name := range ups {
		var v uint
		if _, err := fmt.Sscanf(name, "%d_", &v); err == nil && v < 10 && v > before {
			before = v
		}
	}
	if err := s.MigrateTo(before); err != nil {
		t.Fatalf("migrate to %d: %v", before, err)
	}
	ids := map[string]int64{}
	for _, u := range [][2]string{
		{"ann", "Bob@Example.com"},               // the victim's email…
		{"bob@example.com", "bob2@example.com"},  // …taken as another's username
		{"Carl@example.com", "carl@example.com"}, // a username equal to its own email
		{"dora", "dora@example.com"},
	} {
		var id int64
		if err := s.Pool().QueryRow(ctx, `INSERT INTO users (username, email, created_at, updated_at)
			VALUES ($1, $2, now(), now()) RETURNING id`, u[0], u[1]).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[u[0]] = id
	}
	if err := s.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUserByLogin(ctx, "BOB@example.com"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("an ambiguous key names nobody: %v", err)
	}
	for login, want := range map[string]int64{"ann": ids["ann"], "bob2@example.com": ids["bob@example.com"],
		"carl@example.com": ids["Carl@example.com"], "Dora@example.com": ids["dora"]} {
		if got, err := s.GetUserByLogin(ctx, login); err != nil || got.ID != want {
			t.Errorf("GetUserByLogin(%q) = %d, %v; want %d", login, got.ID, err, want)
		}
	}
	// The reserved key cannot be taken by a new account either.
	if _, err := s.CreateUser(ctx, bff.User{Username: "eve", Email: "bob@example.com"}); !errors.Is(err, bff.ErrLoginTaken) {
		t.Errorf("CreateUser with the reserved key: %v", err)
	}
	// Rows inserted by SQL after the migration (an import) are keyed too.
	if _, err := s.Pool().Exec(ctx, `INSERT INTO users (username, email, created_at, updated_at)
		VALUES ('dora@example.com', 'x@example.com', now(), now())`); err == nil {
		t.Error("an SQL insert of another account's email as username succeeded")
	}
}

// TestMigrateUsageBinding: the aggregates counted before migration 0016
// keep their counts with binding ""; new counts by binding stay apart from
// them; going down sums the aggregates that differ only by binding.
func TestMigrateUsageBinding(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, testdb.EmptyURL(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.MigrateTo(15); err != nil {
		t.Fatal(err)
	}
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	if _, err := s.Pool().Exec(ctx, `INSERT INTO usage_stats
		(hour, client_id, kind, format, grant_type, endpoint, result, error_code, count)
		VALUES ($1, 'mobile', 'issued', 'jwt', 'password', '', '', '', 7)`, h); err != nil {
		t.Fatal(err)
	}
	if err := s.MigrateTo(16); err != nil {
		t.Fatal(err)
	}
	old := bff.UsageKey{Hour: h, ClientID: "mobile", Kind: bff.UsageIssued, Format: "jwt", GrantType: bff.GrantPassword}
	dpop, none := old, old
	dpop.Binding, none.Binding = bff.BindingDPoP, bff.BindingNone
	if err := s.AddUsage(ctx, []bff.UsageCount{{UsageKey: dpop, Count: 2}, {UsageKey: none, Count: 3}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListUsage(ctx, h, h.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []bff.UsageCount{{UsageKey: old, Count: 7}, {UsageKey: dpop, Count: 2}, {UsageKey: none, Count: 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after up (-want +got):\n%s", diff)
	}
	if err := s.MigrateTo(15); err != nil {
		t.Fatal(err)
	}
	var rows, sum int64
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), sum(count) FROM usage_stats`).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || sum != 12 {
		t.Errorf("after down: %d rows summing to %d, want 1 row of 12", rows, sum)
	}
}
