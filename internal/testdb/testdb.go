// Package testdb gives each PostgreSQL test a database of its own, so that
// tests run in parallel without seeing each other's rows or notifications.
//
// Running every migration for every test is most of what a PostgreSQL test
// costs, so URL copies a template database instead: the first test of a test
// binary migrates the template once (test binaries of several packages run at
// the same time, so an advisory lock makes one of them build it and the others
// wait), and every test gets CREATE DATABASE … TEMPLATE, a file copy. The
// template's name carries a hash of the migrations, so a changed migration
// builds a new template. Tests of the migrations themselves use EmptyURL.
package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openedx/mobile-auth-bff/migrations"
)

// EnvVar names the server the tests use.
const EnvVar = "BFF_TEST_DATABASE_URL"

// lockKey is the advisory lock under which a template is built (any fixed
// number; "bfftmpl" in ASCII).
const lockKey = 0x62666674_6d706c

// URL creates a database with every migration applied and returns its
// connection string; the database is dropped when the test ends. Without
// BFF_TEST_DATABASE_URL the test is skipped, or fails when CI=true: CI must
// not silently skip them.
func URL(t testing.TB) string {
	t.Helper()
	base := baseURL(t)
	tmpl, err := template(base)
	if err != nil {
		t.Fatalf("template database: %v", err)
	}
	return create(t, base, tmpl)
}

// EmptyURL is URL without the migrations: an empty database, for tests of
// the migrations themselves.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return create(t, baseURL(t), "")
}

func baseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; PostgreSQL tests must run in CI", EnvVar)
		}
		t.Skipf("%s is not set", EnvVar)
	}
	return base
}

// create makes a database (a copy of tmpl unless it is empty) that is
// dropped when the test ends.
func create(t testing.TB, base, tmpl string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvVar, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "bfftest_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvVar, err)
	}
	defer conn.Close(ctx)
	stmt := "CREATE DATABASE " + name
	if tmpl != "" {
		stmt += " TEMPLATE " + tmpl
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

var (
	tmplOnce sync.Once
	tmplName string
	tmplErr  error
)

// template returns the name of the migrated template database, building it
// once per test binary if no other binary has.
func template(base string) (string, error) {
	tmplOnce.Do(func() { tmplName, tmplErr = buildTemplate(base) })
	return tmplName, tmplErr
}

func buildTemplate(base string) (string, error) {
	name, err := templateName()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockKey)); err != nil {
		return "", err
	}
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(lockKey)) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// Built under another name and renamed when complete, so that a binary
	// killed halfway leaves no half-migrated template behind.
	var b [6]byte
	_, _ = rand.Read(b[:])
	building := "bfftmplbuild_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + building
	if err := migrateUp(ctx, u.String()); err != nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)")
		return "", err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)")
		return "", err
	}
	return name, nil
}

// migrateUp applies every migration to the database at dsn and closes its
// connections (a template must have none when it is copied).
func migrateUp(ctx context.Context, dsn string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return err
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		return err
	}
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return err
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return ctx.Err()
}

// templateName is "bfftmpl_" and a hash of the migration files.
func templateName() (string, error) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(migrations.FS, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return "bfftmpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}
