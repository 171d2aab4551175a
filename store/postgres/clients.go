package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

type clientRow struct {
	ID                string    `db:"id"`
	Name              string    `db:"name"`
	Public            bool      `db:"public"`
	SecretHash        []byte    `db:"secret_hash"`
	GrantTypes        []string  `db:"grant_types"`
	Scopes            []string  `db:"scopes"`
	TokenType         string    `db:"token_type"`
	JWTRolloutPercent int       `db:"jwt_rollout_percent"`
	JWTEnabled        bool      `db:"jwt_enabled"`
	Restricted        bool      `db:"restricted"`
	JWTTokenType      string    `db:"jwt_token_type"`
	RedirectURIs      []string  `db:"redirect_uris"`
	PKCERequired      bool      `db:"pkce_required"`
	DPoPBound         bool      `db:"dpop_bound_access_tokens"`
	CreatedAt         time.Time `db:"created_at"`
	UpdatedAt         time.Time `db:"updated_at"`
	Incarnation       string    `db:"incarnation"`
	// PreviousSecretHash and PreviousSecretExpiresAt are both set or both
	// NULL (a CHECK says so).
	PreviousSecretHash      []byte     `db:"previous_secret_hash"`
	PreviousSecretExpiresAt *time.Time `db:"previous_secret_expires_at"`
}

const clientColumns = `id, name, public, secret_hash, grant_types, scopes, token_type,
	jwt_rollout_percent, jwt_enabled, restricted, created_at, updated_at, jwt_token_type,
	incarnation, previous_secret_hash, previous_secret_expires_at, redirect_uris, pkce_required,
	dpop_bound_access_tokens`

func (r clientRow) client() bff.Client {
	c := bff.Client{
		ID: r.ID, Name: r.Name, Public: r.Public, SecretHash: r.SecretHash,
		GrantTypes: r.GrantTypes, Scopes: r.Scopes, TokenType: bff.TokenFormat(r.TokenType),
		JWTRolloutPercent: r.JWTRolloutPercent, JWTEnabled: r.JWTEnabled, Restricted: r.Restricted,
		JWTTokenType: r.JWTTokenType, RedirectURIs: r.RedirectURIs, PKCERequired: r.PKCERequired, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Incarnation: r.Incarnation, DPoPBoundAccessTokens: r.DPoPBound,
	}
	if r.PreviousSecretHash != nil && r.PreviousSecretExpiresAt != nil {
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = r.PreviousSecretHash, *r.PreviousSecretExpiresAt
	}
	return c
}

// previousSecret is what the previous_secret_* columns hold for c: both
// NULL when it has no previous secret.
func previousSecret(c bff.Client) ([]byte, *time.Time) {
	if c.PreviousSecretHash == nil {
		return nil, nil
	}
	return c.PreviousSecretHash, &c.PreviousSecretExpiresAt
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CreateClient stores a new client.
func (s *Store) CreateClient(ctx context.Context, c bff.Client) error {
	prevHash, prevExp := previousSecret(c)
	_, err := s.pool.Exec(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		c.ID, c.Name, c.Public, c.SecretHash, nonNil(c.GrantTypes), nonNil(c.Scopes), string(c.TokenType),
		c.JWTRolloutPercent, c.JWTEnabled, c.Restricted, c.CreatedAt, c.UpdatedAt, c.JWTTokenType,
		c.Incarnation, prevHash, prevExp, nonNil(c.RedirectURIs), c.PKCERequired, c.DPoPBoundAccessTokens)
	return dbErr("create client", err)
}

// GetClient returns a client by id.
func (s *Store) GetClient(ctx context.Context, id string) (bff.Client, error) {
	if !storable(id) {
		return bff.Client{}, fmt.Errorf("get client: %w", bff.ErrNotFound)
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[clientRow])
	if err != nil {
		return bff.Client{}, dbErr(fmt.Sprintf("get client %q", id), err)
	}
	return r.client(), nil
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]bff.Client, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[clientRow])
	if err != nil {
		return nil, dbErr("list clients", err)
	}
	out := make([]bff.Client, len(rs))
	for i, r := range rs {
		out[i] = r.client()
	}
	return out, nil
}

// UpdateClient changes a client with update under a row lock.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(*bff.Client) error) (bff.Client, error) {
	if !storable(id) {
		return bff.Client{}, fmt.Errorf("update client: %w", bff.ErrNotFound)
	}
	var out bff.Client
	err := s.inTx(ctx, "update client", func(tx pgx.Tx) error {
		// NO KEY UPDATE: concurrent updates wait for each other, token
		// writes (which key-share lock the client) do not.
		rows, _ := tx.Query(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1 FOR NO KEY UPDATE`, id)
		r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[clientRow])
		if err != nil {
			return dbErr(fmt.Sprintf("client %q", id), err)
		}
		c := r.client()
		if err := update(&c); err != nil {
			return err
		}
		c.ID, c.Incarnation, c.CreatedAt = id, r.Incarnation, r.CreatedAt // never changed
		prevHash, prevExp := previousSecret(c)
		_, err = tx.Exec(ctx, `UPDATE clients SET name = $2, public = $3, secret_hash = $4, grant_types = $5,
			scopes = $6, token_type = $7, jwt_rollout_percent = $8, jwt_enabled = $9, restricted = $10,
			updated_at = $11, jwt_token_type = $12, previous_secret_hash = $13,
			previous_secret_expires_at = $14, redirect_uris = $15, pkce_required = $16,
			dpop_bound_access_tokens = $17 WHERE id = $1`,
			c.ID, c.Name, c.Public, c.SecretHash, nonNil(c.GrantTypes), nonNil(c.Scopes), string(c.TokenType),
			c.JWTRolloutPercent, c.JWTEnabled, c.Restricted, c.UpdatedAt, c.JWTTokenType, prevHash, prevExp,
			nonNil(c.RedirectURIs), c.PKCERequired, c.DPoPBoundAccessTokens)
		if err != nil {
			return err
		}
		out = c
		return notifyTx(ctx, tx, store.ClientEvent(id))
	})
	return out, err
}

// DeleteClient removes a client; its token families go with it (cascade).
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if !storable(id) {
		return fmt.Errorf("delete client: %w", bff.ErrNotFound)
	}
	return s.inTx(ctx, "delete client", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("client %q: %w", id, bff.ErrNotFound)
		}
		return notifyTx(ctx, tx, store.ClientEvent(id))
	})
}
