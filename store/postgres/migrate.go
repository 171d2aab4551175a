package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openedx/mobile-auth-bff/migrations"
)

// MigrationStatus is where the schema stands.
type MigrationStatus struct {
	Version uint // 0 when no migration ran
	Dirty   bool // a migration failed halfway; fix by hand, then force
	Latest  uint // newest migration in this binary
}

func (s *Store) migrator() (*migrate.Migrate, func(), error) {
	db := stdlib.OpenDBFromPool(s.pool.Pool)
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	// Closing m would close the pool's *sql.DB wrapper only; the pool stays.
	return m, func() { _, _ = m.Close() }, nil
}

// MigrateUp applies every migration not yet applied. Concurrent callers
// (several instances starting at once) serialize on an advisory lock.
func (s *Store) MigrateUp(ctx context.Context) error {
	m, done, err := s.migrator()
	if err != nil {
		return err
	}
	defer done()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// MigrateDown rolls back the given number of migrations.
func (s *Store) MigrateDown(ctx context.Context, steps int) error {
	m, done, err := s.migrator()
	if err != nil {
		return err
	}
	defer done()
	if err := m.Steps(-steps); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// MigrateStatus reports the applied version and the newest available one.
func (s *Store) MigrateStatus(ctx context.Context) (MigrationStatus, error) {
	m, done, err := s.migrator()
	if err != nil {
		return MigrationStatus{}, err
	}
	defer done()
	var st MigrationStatus
	v, dirty, err := m.Version()
	if err != nil && !errors.Is(err, migrate.ErrNilVersion) {
		return st, fmt.Errorf("migrate status: %w", err)
	}
	st.Version, st.Dirty = v, dirty
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return st, err
	}
	defer src.Close()
	latest, err := src.First()
	for err == nil {
		st.Latest = latest
		latest, err = src.Next(latest)
	}
	return st, nil
}
