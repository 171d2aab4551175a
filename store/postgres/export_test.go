package postgres

import (
	"errors"

	"github.com/golang-migrate/migrate/v4"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool is the store's connection pool, for tests that put rows in by SQL.
// Only tests reach past the store (its own LISTEN uses the pool directly).
func (s *Store) Pool() *pgxpool.Pool { return s.pool.Pool }

// MigrateTo moves the schema up or down to version v, for tests that put
// rows in an older schema and migrate them.
func (s *Store) MigrateTo(v uint) error {
	m, done, err := s.migrator()
	if err != nil {
		return err
	}
	defer done()
	if err := m.Migrate(v); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return err
	}
	return nil
}
