package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// ApplyTokenOps applies every op in one transaction. Concurrent calls are
// committed together (groupcommit.go): it returns once the transaction
// holding its ops has committed, or with the error that applying them alone
// gives.
func (s *Store) ApplyTokenOps(ctx context.Context, ops []store.TokenOp) error {
	if len(ops) == 0 {
		return nil
	}
	return s.writer.apply(ctx, ops)
}

// applyTokenOps applies the ops of several writes in one transaction, sent
// to PostgreSQL as one pipelined batch: BEGIN, every statement of every op
// (the write guards' locking reads included), then COMMIT once the answers
// are read and judged. That is two round trips for any number of token
// writes instead of one per statement (seven for a client-credentials
// token); the statements, their order and so the locks are those of
// running them one by one, each write with guards of its own. A guard that
// refuses (a revoked family, another incarnation of the client…) is only
// seen after the statements behind it ran; they are rolled back with the
// rest, so one write alone gets exactly what a statement-by-statement
// transaction would have answered. atCommit says the error is the
// COMMIT's: whether the transaction took effect is then unknown.
func (s *Store) applyTokenOps(ctx context.Context, writes ...[]store.TokenOp) (atCommit bool, err error) {
	batch := &pgx.Batch{}
	batch.BeginTx(pgx.TxOptions{})
	ob := make([]*opBatch, len(writes))
	for i, ops := range writes {
		ob[i] = &opBatch{checked: map[string]bool{}}
		for _, op := range ops {
			if err := ob[i].queue(batch, op); err != nil {
				return false, err
			}
		}
	}
	ctx, cancel := s.pool.bound(ctx)
	defer cancel()
	br := s.pool.SendBatch(ctx, batch)
	tx := br.Tx()
	defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op
	if err := br.Close(); err != nil {
		return false, dbErr("apply token ops", err)
	}
	if err := notify(ctx, tx, ob); err != nil {
		return false, dbErr("apply token ops", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return true, dbErr("apply token ops", err)
	}
	return false, nil
}

// opBatch is the state of one ApplyTokenOps transaction. The callbacks of
// its queued statements run in the order they were queued, as the answers
// arrive; the first one to return an error stops the others.
type opBatch struct {
	checked     map[string]bool // families whose token creation is checked
	revokedJTIs []string        // JWT ids newly denied
	manyJTIs    bool            // too many to name: caches reload the set
	// tokenEvents name the access tokens and families revoked, so that
	// caches of token records forget them (store.AccessTokenEvent…).
	tokenEvents []string
}

// maxJTIEvents bounds the events one transaction sends for revoked JWT ids;
// beyond it, one "reload everything" event.
const maxJTIEvents = 20

// notify tells the other instances what a transaction revoked: the JWT
// ids only when they actually changed, so that revoking a revoked token
// costs no instance a reload of its set; each access token and family
// revoked, which costs an instance no more than forgetting a record.
func notify(ctx context.Context, tx pgx.Tx, batches []*opBatch) error {
	var jtis, tokens []string
	manyJTIs := false
	for _, b := range batches {
		manyJTIs = manyJTIs || b.manyJTIs
		jtis = append(jtis, b.revokedJTIs...)
		tokens = append(tokens, b.tokenEvents...)
	}
	var events []string
	if manyJTIs || len(jtis) > maxJTIEvents {
		events = append(events, store.EventJTIs)
	} else {
		for _, jti := range jtis {
			events = append(events, store.JTIEvent(jti))
		}
	}
	if len(tokens) > maxJTIEvents {
		events = append(events, store.EventTokens)
	} else {
		events = append(events, tokens...)
	}
	return notifyTx(ctx, tx, events...)
}

func nullUser(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// allowTokens queues what creates the family if it is new, and checks that
// it may get tokens: its client the incarnation the tokens were issued to,
// and what bff.TokenFamily.MayIssue asks of the family and its user. It
// only fetches and locks; the rule is MayIssue's. The share locks taken
// here (user, client, then family: the order the disabling and the
// client's deletion take them in) make a concurrent revocation or deletion
// wait for this transaction, or this one see it.
func (b *opBatch) allowTokens(batch *pgx.Batch, familyID, clientID, incarnation string, userID int64, grant string, auth, at time.Time) {
	if b.checked[familyID] {
		return
	}
	b.checked[familyID] = true
	var user *bff.User
	if userID != 0 {
		batch.Queue(`SELECT disabled, tokens_valid_after FROM users WHERE id = $1 FOR SHARE`, userID).
			QueryRow(func(row pgx.Row) error {
				u := bff.User{ID: userID}
				if err := row.Scan(&u.Disabled, &u.TokensValidAfter); err != nil {
					return dbErr("token user", err)
				}
				user = &u
				return nil
			})
	}
	// The key share lock on the client (taken before the family's, in the
	// order a deletion takes them: client, then its families) makes a
	// deletion of the client wait for this transaction, and then take
	// these tokens with it; or this one see the client gone, or created
	// again (ADR 0019).
	batch.Queue(`SELECT incarnation FROM clients WHERE id = $1 FOR KEY SHARE`, clientID).
		QueryRow(func(row pgx.Row) error {
			var clientIncarnation string
			if err := row.Scan(&clientIncarnation); err != nil {
				return dbErr("token client", err)
			}
			if clientIncarnation != incarnation {
				return fmt.Errorf("client %q was deleted while the request ran: %w", clientID, bff.ErrTokenRevoked)
			}
			return nil
		})
	queueExec(batch, "create token family", `INSERT INTO token_families (id, client_id, user_id, grant_type, authenticated_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		familyID, clientID, nullUser(userID), grant, auth, at)
	batch.Queue(`SELECT revoked_at, authenticated_at FROM token_families WHERE id = $1 FOR SHARE`, familyID).
		QueryRow(func(row pgx.Row) error {
			f := bff.TokenFamily{ID: familyID, ClientID: clientID, UserID: userID, GrantType: grant, AuthTime: auth}
			var familyAuth *time.Time
			if err := row.Scan(&f.RevokedAt, &familyAuth); err != nil {
				return dbErr("token family", err)
			}
			if familyAuth != nil {
				f.AuthTime = *familyAuth
			}
			return f.MayIssue(user)
		})
}

// queue queues the statements of op.
func (b *opBatch) queue(batch *pgx.Batch, op store.TokenOp) error {
	switch op := op.(type) {
	case store.CreateAccessToken:
		t := op.Token
		b.allowTokens(batch, t.FamilyID, t.ClientID, op.ClientIncarnation, t.UserID, t.GrantType, t.AuthenticatedAt(), t.IssuedAt)
		queueExec(batch, "create access token", `INSERT INTO access_tokens (signature, family_id, jti, format, client_id, user_id,
			grant_type, scopes, issued_at, expires_at, revoked_at, request, jkt)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			t.Signature, t.FamilyID, nullString(t.JTI), string(t.Format), t.ClientID, nullUser(t.UserID),
			t.GrantType, nonNil(t.Scopes), t.IssuedAt, t.ExpiresAt, t.RevokedAt, json.RawMessage(t.Request), t.JKT)
	case store.CreateRefreshToken:
		t := op.Token
		b.allowTokens(batch, t.FamilyID, t.ClientID, op.ClientIncarnation, t.UserID, t.GrantType, t.AuthenticatedAt(), t.IssuedAt)
		queueExec(batch, "create refresh token", `INSERT INTO refresh_tokens (signature, family_id, access_signature, client_id,
			user_id, grant_type, scopes, issued_at, expires_at, rotated_at, revoked_at, request, jkt)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			t.Signature, t.FamilyID, t.AccessSignature, t.ClientID, nullUser(t.UserID), t.GrantType,
			nonNil(t.Scopes), t.IssuedAt, t.ExpiresAt, t.RotatedAt, t.RevokedAt, json.RawMessage(t.Request), t.JKT)
	case store.MarkRefreshRotated:
		queueExecOne(batch, "mark refresh token rotated",
			`UPDATE refresh_tokens SET rotated_at = COALESCE(rotated_at, $2) WHERE signature = $1`, op.Signature, op.At)
	case store.RevokeRefreshToken:
		queueExecOne(batch, "revoke refresh token",
			`UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE signature = $1`, op.Signature, op.At)
	case store.RevokeAccessToken:
		queueExecOne(batch, "revoke access token",
			`UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE signature = $1`, op.Signature, op.At)
		b.tokenEvents = append(b.tokenEvents, store.AccessTokenEvent(op.Signature))
		b.denyJTIs(batch, "revoke access token jti", `INSERT INTO revoked_jtis (jti, expires_at)
			SELECT jti, expires_at FROM access_tokens WHERE signature = $1 AND jti IS NOT NULL
			ON CONFLICT (jti) DO NOTHING RETURNING jti`, op.Signature)
	case store.RevokeJTI:
		b.denyJTIs(batch, "revoke jti", `INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2)
			ON CONFLICT (jti) DO NOTHING RETURNING jti`, op.JTI, op.ExpiresAt)
	case store.RevokeFamily:
		// The family first: its row lock makes a token write in flight
		// finish before the JWT ids are collected below (or fail its check).
		queueExec(batch, "revoke family", `UPDATE token_families SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`,
			op.FamilyID, op.At)
		b.tokenEvents = append(b.tokenEvents, store.FamilyEvent(op.FamilyID))
		queueExec(batch, "end family sessions", `DELETE FROM sessions WHERE family_id = $1`, op.FamilyID)
		b.denyJTIs(batch, "revoke family jtis", `INSERT INTO revoked_jtis (jti, expires_at)
			SELECT jti, expires_at FROM access_tokens
			WHERE family_id = $1 AND jti IS NOT NULL AND expires_at > $2
			ON CONFLICT (jti) DO NOTHING RETURNING jti`, op.FamilyID, op.At)
	case store.EndSession:
		queueExec(batch, "end session", `DELETE FROM sessions WHERE id = $1`, op.ID)
	case store.RedeemAuthorizationCode:
		queueRedeemCode(batch, op.Signature, op.At)
	default:
		return fmt.Errorf("unknown token op %T: %w", op, bff.ErrInvalidInput)
	}
	return nil
}

// denyJTIs queues an INSERT … RETURNING jti into revoked_jtis that
// remembers the ids it added, for the change events.
func (b *opBatch) denyJTIs(batch *pgx.Batch, op, sql string, args ...any) {
	batch.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		jtis, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return dbErr(op, err)
		}
		if len(b.revokedJTIs)+len(jtis) > maxJTIEvents {
			b.manyJTIs = true
			return nil
		}
		b.revokedJTIs = append(b.revokedJTIs, jtis...)
		return nil
	})
}

// queueExec queues a statement whose failure is reported as op.
func queueExec(batch *pgx.Batch, op, sql string, args ...any) {
	batch.Queue(sql, args...).Fn = func(br pgx.BatchResults) error {
		_, err := br.Exec()
		return dbErr(op, err)
	}
}

// queueExecOne queues a statement that must change a row (ErrNotFound
// otherwise).
func queueExecOne(batch *pgx.Batch, op, sql string, args ...any) {
	batch.Queue(sql, args...).Fn = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err != nil {
			return dbErr(op, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%s: %w", op, bff.ErrNotFound)
		}
		return nil
	}
}

type accessRow struct {
	Signature string     `db:"signature"`
	FamilyID  string     `db:"family_id"`
	JTI       *string    `db:"jti"`
	Format    string     `db:"format"`
	ClientID  string     `db:"client_id"`
	UserID    *int64     `db:"user_id"`
	GrantType string     `db:"grant_type"`
	Scopes    []string   `db:"scopes"`
	IssuedAt  time.Time  `db:"issued_at"`
	ExpiresAt time.Time  `db:"expires_at"`
	RevokedAt *time.Time `db:"revoked_at"`
	Request   []byte     `db:"request"`
	JKT       string     `db:"jkt"`
}

// GetAccessToken returns an access token by signature.
func (s *Store) GetAccessToken(ctx context.Context, signature string) (bff.AccessToken, error) {
	if !storable(signature) {
		return bff.AccessToken{}, fmt.Errorf("get access token: %w", bff.ErrNotFound)
	}
	return s.getAccessToken(ctx, "a.signature = $1", signature)
}

// GetAccessTokenByJTI returns a JWT's record by its id.
func (s *Store) GetAccessTokenByJTI(ctx context.Context, jti string) (bff.AccessToken, error) {
	if jti == "" || !storable(jti) {
		return bff.AccessToken{}, fmt.Errorf("get access token: %w", bff.ErrNotFound)
	}
	return s.getAccessToken(ctx, "a.jti = $1", jti)
}

func (s *Store) getAccessToken(ctx context.Context, where, arg string) (bff.AccessToken, error) {
	rows, _ := s.pool.Query(ctx, `SELECT a.signature, a.family_id, a.jti, a.format, a.client_id, a.user_id,
		a.grant_type, a.scopes, a.issued_at, a.expires_at, COALESCE(a.revoked_at, f.revoked_at) AS revoked_at,
		a.request, a.jkt
		FROM access_tokens a JOIN token_families f ON f.id = a.family_id WHERE `+where, arg)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[accessRow])
	if err != nil {
		return bff.AccessToken{}, dbErr("get access token", err)
	}
	return bff.AccessToken{
		Signature: r.Signature, FamilyID: r.FamilyID, JTI: deref(r.JTI), Format: bff.TokenFormat(r.Format),
		ClientID: r.ClientID, UserID: derefID(r.UserID), GrantType: r.GrantType, Scopes: r.Scopes,
		IssuedAt: r.IssuedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt, JKT: r.JKT, Request: r.Request,
	}, nil
}

type refreshRow struct {
	Signature       string     `db:"signature"`
	FamilyID        string     `db:"family_id"`
	AccessSignature string     `db:"access_signature"`
	ClientID        string     `db:"client_id"`
	UserID          *int64     `db:"user_id"`
	GrantType       string     `db:"grant_type"`
	Scopes          []string   `db:"scopes"`
	IssuedAt        time.Time  `db:"issued_at"`
	ExpiresAt       time.Time  `db:"expires_at"`
	RotatedAt       *time.Time `db:"rotated_at"`
	RevokedAt       *time.Time `db:"revoked_at"`
	Request         []byte     `db:"request"`
	JKT             string     `db:"jkt"`
}

// GetRefreshToken returns a refresh token by signature.
func (s *Store) GetRefreshToken(ctx context.Context, signature string) (bff.RefreshToken, error) {
	if !storable(signature) {
		return bff.RefreshToken{}, fmt.Errorf("get refresh token: %w", bff.ErrNotFound)
	}
	rows, _ := s.pool.Query(ctx, `SELECT r.signature, r.family_id, r.access_signature, r.client_id, r.user_id,
		r.grant_type, r.scopes, r.issued_at, r.expires_at, r.rotated_at,
		COALESCE(r.revoked_at, f.revoked_at) AS revoked_at, r.request, r.jkt
		FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.signature = $1`, signature)
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[refreshRow])
	if err != nil {
		return bff.RefreshToken{}, dbErr("get refresh token", err)
	}
	return bff.RefreshToken{
		Signature: r.Signature, FamilyID: r.FamilyID, AccessSignature: r.AccessSignature, ClientID: r.ClientID,
		UserID: derefID(r.UserID), GrantType: r.GrantType, Scopes: r.Scopes, IssuedAt: r.IssuedAt,
		ExpiresAt: r.ExpiresAt, RotatedAt: r.RotatedAt, RevokedAt: r.RevokedAt, JKT: r.JKT, Request: r.Request,
	}, nil
}

// IsJTIRevoked reports whether jti is on the revoked list.
func (s *Store) IsJTIRevoked(ctx context.Context, jti string) (bool, error) {
	if !storable(jti) {
		return false, nil
	}
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_jtis WHERE jti = $1)`, jti).Scan(&revoked)
	if err != nil {
		return false, dbErr("is jti revoked", err)
	}
	return revoked, nil
}

// RevokedJTIs returns the unexpired revoked JWT ids.
func (s *Store) RevokedJTIs(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT jti, expires_at FROM revoked_jtis WHERE expires_at > $1`, now)
	if err != nil {
		return nil, dbErr("revoked jtis", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var jti string
		var exp time.Time
		if err := rows.Scan(&jti, &exp); err != nil {
			return nil, dbErr("revoked jtis", err)
		}
		out[jti] = exp
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("revoked jtis", err)
	}
	return out, nil
}

// PruneTokens deletes what expired before the given time.
func (s *Store) PruneTokens(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	err := s.inTx(ctx, "prune tokens", func(tx pgx.Tx) error {
		for _, q := range []string{
			`DELETE FROM access_tokens WHERE expires_at < $1`,
			`DELETE FROM refresh_tokens WHERE expires_at < $1`,
			`DELETE FROM token_families f WHERE created_at < $1
				AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = f.id)
				AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = f.id)`,
			`DELETE FROM authorization_codes WHERE expires_at < $1`,
			`DELETE FROM revoked_jtis WHERE expires_at < $1`,
			`DELETE FROM sessions WHERE expires_at < $1`,
			`DELETE FROM login_failures WHERE window_start < $1::timestamptz - interval '24 hours'`,
		} {
			tag, err := tx.Exec(ctx, q, before)
			if err != nil {
				return err
			}
			total += tag.RowsAffected()
		}
		return nil
	})
	return total, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefID(id *int64) int64 {
	if id == nil {
		return 0
	}
	return *id
}
