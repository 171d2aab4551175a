package postgres

import (
	"context"
	"errors"

	"github.com/golang-migrate/migrate/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openedx/mobile-auth-bff/store"
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

// CommitGroup commits writes the way the group writer commits writes that
// arrive together, and returns each one's answer: the group path, without
// depending on the timing that makes writes meet.
func (s *Store) CommitGroup(writes ...[]store.TokenOp) []error {
	group := make([]*tokenWrite, len(writes))
	for i, ops := range writes {
		group[i] = &tokenWrite{ctx: context.Background(), ops: ops, done: make(chan error, 1)}
	}
	s.writer.commit(group)
	errs := make([]error, len(group))
	for i, tw := range group {
		errs[i] = <-tw.done
	}
	return errs
}
