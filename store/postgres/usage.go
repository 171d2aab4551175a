package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// AddUsage upserts every aggregate in one statement. Keys are summed and
// sorted first (store.SumUsage): one statement may not touch a row twice,
// and a fixed order keeps instances flushing at once from deadlocking.
func (s *Store) AddUsage(ctx context.Context, counts []bff.UsageCount) error {
	counts = store.SumUsage(counts)
	if len(counts) == 0 {
		return nil
	}
	n := len(counts)
	hours := make([]time.Time, n)
	clients, kinds, formats := make([]string, n), make([]string, n), make([]string, n)
	grants, endpoints, results, codes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	bindings, nums := make([]string, n), make([]int64, n)
	for i, c := range counts {
		if !storable(c.ClientID, c.Kind, c.Format, c.GrantType, c.Endpoint, c.Result, c.ErrorCode, c.Binding) {
			return fmt.Errorf("add usage: %w: a key is not valid UTF-8 text", bff.ErrInvalidInput)
		}
		hours[i], clients[i], kinds[i], formats[i] = c.Hour, c.ClientID, c.Kind, c.Format
		grants[i], endpoints[i], results[i], codes[i] = c.GrantType, c.Endpoint, c.Result, c.ErrorCode
		bindings[i], nums[i] = c.Binding, c.Count
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO usage_stats AS u
		(hour, client_id, kind, format, grant_type, endpoint, result, error_code, binding, count)
		SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
			$6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])
		ON CONFLICT (hour, client_id, kind, format, grant_type, endpoint, result, error_code, binding)
		DO UPDATE SET count = u.count + excluded.count`,
		hours, clients, kinds, formats, grants, endpoints, results, codes, bindings, nums)
	return dbErr("add usage", err)
}

type usageRow struct {
	Hour      time.Time `db:"hour"`
	ClientID  string    `db:"client_id"`
	Kind      string    `db:"kind"`
	Format    string    `db:"format"`
	GrantType string    `db:"grant_type"`
	Endpoint  string    `db:"endpoint"`
	Result    string    `db:"result"`
	ErrorCode string    `db:"error_code"`
	Binding   string    `db:"binding"`
	Count     int64     `db:"count"`
}

// ListUsage returns the aggregates of the hours in [from, to).
func (s *Store) ListUsage(ctx context.Context, from, to time.Time) ([]bff.UsageCount, error) {
	rows, _ := s.pool.Query(ctx, `SELECT hour, client_id, kind, format, grant_type, endpoint, result, error_code,
			binding, count
		FROM usage_stats WHERE hour >= $1 AND hour < $2
		ORDER BY hour, client_id COLLATE "C", kind COLLATE "C", format COLLATE "C", grant_type COLLATE "C",
			endpoint COLLATE "C", result COLLATE "C", error_code COLLATE "C", binding COLLATE "C"`, from, to)
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[usageRow])
	if err != nil {
		return nil, dbErr("list usage", err)
	}
	out := make([]bff.UsageCount, len(rs))
	for i, r := range rs {
		out[i] = bff.UsageCount{UsageKey: bff.UsageKey{
			Hour: r.Hour.UTC(), ClientID: r.ClientID, Kind: r.Kind, Format: r.Format, GrantType: r.GrantType,
			Endpoint: r.Endpoint, Result: r.Result, ErrorCode: r.ErrorCode, Binding: r.Binding,
		}, Count: r.Count}
	}
	return out, nil
}

// PruneUsage deletes the aggregates of hours before the given time.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM usage_stats WHERE hour < $1`, before)
	if err != nil {
		return 0, dbErr("prune usage", err)
	}
	return tag.RowsAffected(), nil
}

// CountActiveTokens counts unexpired, unrevoked access tokens per client,
// format and binding (a thumbprint recorded: dpop); the scan is bounded by
// the expiry index to the tokens of the last access-token lifetime.
func (s *Store) CountActiveTokens(ctx context.Context, now time.Time) ([]bff.ActiveTokens, error) {
	// bound DESC: dpop sorts before none, as in the memory store.
	rows, _ := s.pool.Query(ctx, `SELECT a.client_id, a.format, (a.jkt <> '') AS bound, count(*) AS count
		FROM access_tokens a JOIN token_families f ON f.id = a.family_id
		WHERE a.expires_at > $1 AND a.revoked_at IS NULL AND f.revoked_at IS NULL
		GROUP BY a.client_id, a.format, bound
		ORDER BY a.client_id COLLATE "C", a.format COLLATE "C", bound DESC`, now)
	type row struct {
		ClientID string `db:"client_id"`
		Format   string `db:"format"`
		Bound    bool   `db:"bound"`
		Count    int64  `db:"count"`
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[row])
	if err != nil {
		return nil, dbErr("count active tokens", err)
	}
	out := make([]bff.ActiveTokens, len(rs))
	for i, r := range rs {
		out[i] = bff.ActiveTokens{ClientID: r.ClientID, Format: bff.TokenFormat(r.Format), Binding: bff.BindingOf(r.Bound), Count: r.Count}
	}
	return out, nil
}
