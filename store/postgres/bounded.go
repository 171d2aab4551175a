package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultTimeout bounds one store operation when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// boundedPool is the pool with a deadline on every statement and
// transaction. A server that stops answering without closing its
// connections (paused, a network path that drops packets, a proxy that
// holds them) would otherwise hold each request until the kernel gives up
// on the connection, many seconds later; with the deadline the operation
// fails with context.DeadlineExceeded, which dbErr maps to ErrUnavailable
// (503). The caller's own deadline still applies when it is earlier.
type boundedPool struct {
	*pgxpool.Pool
	timeout time.Duration
}

func (p *boundedPool) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.timeout)
}

func (p *boundedPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	return p.Pool.Exec(ctx, sql, args...)
}

// Query bounds the query and the reading of its rows: the deadline is
// released when the rows are closed (pgx.CollectRows and friends close
// them).
func (p *boundedPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	ctx, cancel := p.bound(ctx)
	rows, err := p.Pool.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		return rows, err
	}
	return &boundedRows{Rows: rows, cancel: cancel}, nil
}

func (p *boundedPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	ctx, cancel := p.bound(ctx)
	rows, err := p.Pool.Query(ctx, sql, args...)
	return &boundedRow{rows: rows, err: err, cancel: cancel}
}

func (p *boundedPool) Ping(ctx context.Context) error {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	return p.Pool.Ping(ctx)
}

// beginFunc runs fn in a transaction bounded as a whole.
func (p *boundedPool) beginFunc(ctx context.Context, fn func(pgx.Tx) error) error {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, p.Pool, fn)
}

type boundedRows struct {
	pgx.Rows
	cancel context.CancelFunc
}

func (r *boundedRows) Close() {
	r.Rows.Close()
	r.cancel()
}

// boundedRow is pgx's QueryRow on a bounded context: Scan reads the first
// row, closes the rows and releases the deadline.
type boundedRow struct {
	rows   pgx.Rows
	err    error
	cancel context.CancelFunc
}

func (r *boundedRow) Scan(dest ...any) error {
	defer r.cancel()
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
