package testdb

import (
	"context"
	"io/fs"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openedx/mobile-auth-bff/migrations"
)

// TestURLIsMigratedAndEmptyURLIsEmpty: URL's database has every migration
// applied (copied from the template) and is a database of its own; EmptyURL's
// has no tables at all.
func TestURLIsMigratedAndEmptyURLIsEmpty(t *testing.T) {
	t.Parallel()
	ups, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil || len(ups) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	ctx := context.Background()
	query := func(dsn, q string) (n int64) {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	tables := "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	for _, dsn := range []string{a, b} {
		if n := query(dsn, "SELECT count(*) FROM schema_migrations WHERE NOT dirty"); n != 1 {
			t.Fatalf("schema_migrations rows %d, want 1 clean one", n)
		}
		var latest int64
		for _, name := range ups {
			var v int64
			for _, c := range name {
				if c < '0' || c > '9' {
					break
				}
				v = v*10 + int64(c-'0')
			}
			latest = max(latest, v)
		}
		if v := query(dsn, "SELECT version FROM schema_migrations"); v != latest {
			t.Errorf("schema at version %d, want %d", v, latest)
		}
	}
	// A row written in one copy is not in the other, nor in the template.
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE TABLE only_in_a (x int)")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if query(a, tables) != query(b, tables)+1 {
		t.Error("a table created in one test's database shows in another's")
	}
	if c := URL(t); query(c, tables) != query(b, tables) {
		t.Error("a table created in a test's database reached the template")
	}
	if n := query(EmptyURL(t), tables); n != 0 {
		t.Errorf("EmptyURL's database has %d tables, want none", n)
	}
}
