package postgres

import (
	"errors"

	"github.com/golang-migrate/migrate/v4"
)

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
