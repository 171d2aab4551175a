// Package postgres is the PostgreSQL store: pgx, SQL written by hand, one
// transaction per store method, schema from package migrations.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

var _ store.Store = (*Store)(nil)

// Store is a PostgreSQL store.Store.
type Store struct {
	pool   *boundedPool
	writer *groupWriter
}

// Options tune Open.
type Options struct {
	// Migrate runs the migrations up before the store is used.
	Migrate bool
	// MaxConns caps the pool (half of it commits token writes); zero
	// keeps pgx's default (or the URL's pool_max_conns).
	MaxConns int32
	// Timeout bounds each statement and each transaction (waiting for a
	// connection included); zero means DefaultTimeout. Migrations are not
	// bounded.
	Timeout time.Duration
}

// DefaultMaxConns is the pool size the service uses unless told otherwise:
// two connections per core the Go runtime may use (GOMAXPROCS, which
// follows a container's CPU limit), at least 4. A request waits on
// PostgreSQL's answer more than it computes, so one connection per core
// leaves cores idle; more than a few per core gains nothing, since token
// writes are committed in groups and a larger pool only makes the groups
// smaller. Measured on 2 cores (cc -> opaque, 50 connections, group
// commit): 4 connections 4745 req/s, 8: 4822 (refresh: 2455 and 1796).
func DefaultMaxConns() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// Open connects to the database at url and, if asked, migrates it.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redactURLError(err))
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	s := &Store{pool: &boundedPool{Pool: pool, timeout: timeout}}
	if opts.Migrate {
		if err := s.MigrateUp(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	// Committers for half the connections: the other half serve the reads
	// a request makes before its write (a refresh token's lookup, say),
	// and fewer committers make larger groups. Measured on 2 cores, pool 4
	// (refresh -> opaque, 50 connections, interleaved): 4 committers 952
	// and 1101 req/s, 2 committers 1241 and 1347.
	s.writer = newGroupWriter(s, max(1, int(cfg.MaxConns)/2))
	return s, nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return dbErr("ping", err)
	}
	return nil
}

// Close stops the token committers and closes the pool.
func (s *Store) Close() {
	s.writer.close()
	s.pool.Close()
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	err := s.pool.beginFunc(ctx, fn)
	if err != nil {
		return dbErr(op, err)
	}
	return nil
}

// dbErr maps a database error onto the domain sentinels. Anything that is
// not a known condition means the store failed: ErrUnavailable.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, bff.ErrNotFound) || errors.Is(err, bff.ErrConflict) ||
		errors.Is(err, bff.ErrInvalidInput) || errors.Is(err, bff.ErrUnavailable) || errors.Is(err, bff.ErrCodeUsed) {
		return err // already mapped, by a callback inside a transaction
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, bff.ErrNotFound)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w (%s)", op, bff.ErrConflict, pgErr.ConstraintName)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %w (%s)", op, bff.ErrNotFound, pgErr.ConstraintName)
		case "23514", "22001", "22P02", "22021", "22P05":
			// check_violation, string too long, bad text representation,
			// invalid byte sequence (NUL, bad UTF-8), untranslatable character
			return fmt.Errorf("%s: %w (%s)", op, bff.ErrInvalidInput, pgErr.Message)
		}
	}
	return fmt.Errorf("%s: %w: %w", op, bff.ErrUnavailable, err)
}

// Channel is the NOTIFY channel of change events (see store.EventJTIs…).
const Channel = "bff_changes"

// notifyTx queues change events, sent by PostgreSQL when tx commits: one
// round trip however many there are.
func notifyTx(ctx context.Context, tx pgx.Tx, events ...string) error {
	switch len(events) {
	case 0:
		return nil
	case 1:
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, events[0])
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, ev) FROM unnest($2::text[]) WITH ORDINALITY AS e(ev, n) ORDER BY n`,
		Channel, events)
	return err
}

// storable reports whether PostgreSQL can hold s as text: valid UTF-8
// without NUL. A lookup of anything else cannot match a row, so lookups
// answer ErrNotFound instead of sending it (which would fail as an error).
func storable(values ...string) bool {
	for _, s := range values {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}

// redactURLError keeps a password in a malformed URL out of error messages.
func redactURLError(err error) error {
	return errors.New("malformed connection string (" + fmt.Sprintf("%T", err) + ")")
}
