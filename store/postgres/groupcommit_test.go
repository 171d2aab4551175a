package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/postgres"
)

// TestGroupCommitIsolatesRefusedWrites: writes committed together, one of
// which a guard refuses (its family is revoked) or that fails in
// PostgreSQL (a duplicate signature): every other write of the group is
// stored and answered nil, the refused ones get their own errors and leave
// nothing behind.
func TestGroupCommitIsolatesRefusedWrites(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	c := bff.Client{ID: "backend", SecretHash: []byte{1, 2, 3}, GrantTypes: []string{bff.GrantClientCredentials}, TokenType: bff.FormatBearer,
		CreatedAt: time.Now(), UpdatedAt: time.Now(), Incarnation: "one"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	token := func(sig, family string) store.TokenOp {
		return store.CreateAccessToken{ClientIncarnation: "one", Token: bff.AccessToken{
			Signature: sig, FamilyID: family, Format: bff.FormatBearer, ClientID: "backend",
			GrantType: bff.GrantClientCredentials, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Request: []byte(`{}`)}}
	}
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{token("dup", "f-dup"), token("in-revoked", "f-revoked")}); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeFamily{FamilyID: "f-revoked", At: now}}); err != nil {
		t.Fatal(err)
	}

	errs := s.CommitGroup(
		[]store.TokenOp{token("g1", "f-g1")},
		[]store.TokenOp{token("g2", "f-revoked")}, // refused by the guard
		[]store.TokenOp{token("g3", "f-g3")},
		[]store.TokenOp{token("dup", "f-dup2")}, // a unique violation
		[]store.TokenOp{token("g5", "f-g5"), store.RevokeAccessToken{Signature: "g5", At: now}},
	)
	want := []error{nil, bff.ErrTokenRevoked, nil, bff.ErrConflict, nil}
	for i, err := range errs {
		if want[i] == nil && err != nil || want[i] != nil && !errors.Is(err, want[i]) {
			t.Errorf("write %d: got %v, want %v", i+1, err, want[i])
		}
	}
	for sig, stored := range map[string]bool{"g1": true, "g2": false, "g3": true, "g5": true} {
		tok, err := s.GetAccessToken(ctx, sig)
		switch {
		case stored && err != nil:
			t.Errorf("%s: %v, want it stored", sig, err)
		case !stored && !errors.Is(err, bff.ErrNotFound):
			t.Errorf("%s: %v, want ErrNotFound", sig, err)
		case sig == "g5" && tok.RevokedAt == nil:
			t.Errorf("g5 is not revoked")
		}
	}
	if tok, err := s.GetAccessToken(ctx, "dup"); err != nil || tok.FamilyID != "f-dup" {
		t.Errorf("dup: %+v, %v; want the first one, of f-dup", tok, err)
	}
}

// TestConcurrentTokenWrites: many concurrent writers, some refused, each
// answered for its own write only, and every write answered nil readable.
func TestConcurrentTokenWrites(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	c := bff.Client{ID: "backend", SecretHash: []byte{1, 2, 3}, GrantTypes: []string{bff.GrantClientCredentials}, TokenType: bff.FormatBearer,
		CreatedAt: time.Now(), UpdatedAt: time.Now(), Incarnation: "one"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	token := func(sig, family, incarnation string) store.TokenOp {
		return store.CreateAccessToken{ClientIncarnation: incarnation, Token: bff.AccessToken{
			Signature: sig, FamilyID: family, Format: bff.FormatBearer, ClientID: "backend",
			GrantType: bff.GrantClientCredentials, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Request: []byte(`{}`)}}
	}
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			incarnation := "one"
			if i%7 == 3 {
				incarnation = "gone" // refused: another incarnation of the client
			}
			sig := fmt.Sprintf("t%d", i)
			errs[i] = s.ApplyTokenOps(ctx, []store.TokenOp{token(sig, "f"+sig, incarnation)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		sig := fmt.Sprintf("t%d", i)
		_, gerr := s.GetAccessToken(ctx, sig)
		if i%7 == 3 {
			if !errors.Is(err, bff.ErrTokenRevoked) || !errors.Is(gerr, bff.ErrNotFound) {
				t.Errorf("%s: %v, then %v; want ErrTokenRevoked and nothing stored", sig, err, gerr)
			}
			continue
		}
		if err != nil || gerr != nil {
			t.Errorf("%s: %v, then %v; want it stored", sig, err, gerr)
		}
	}
}

// TestStuckGroupRetriesNoStaleWrites: while the database keeps a group
// waiting (a lock here) past the store's timeout, every caller answers
// ErrUnavailable, and the writes of those callers are not retried
// afterwards, once the database moves again: the writer does not spend
// the timeout again on each write of a caller that is gone, nor commit
// it behind its caller's 503.
func TestStuckGroupRetriesNoStaleWrites(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, testdb.URL(t), postgres.Options{Migrate: true, MaxConns: 2, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := bff.Client{ID: "backend", SecretHash: []byte{1, 2, 3}, GrantTypes: []string{bff.GrantClientCredentials},
		TokenType: bff.FormatBearer, CreatedAt: time.Now(), UpdatedAt: time.Now(), Incarnation: "one"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	token := func(sig string) []store.TokenOp {
		return []store.TokenOp{store.CreateAccessToken{ClientIncarnation: "one", Token: bff.AccessToken{
			Signature: sig, FamilyID: "f" + sig, Format: bff.FormatBearer, ClientID: "backend",
			GrantType: bff.GrantClientCredentials, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Request: []byte(`{}`)}}}
	}
	// The client's row locked: every token write of it waits.
	lock, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT 1 FROM clients WHERE id = 'backend' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.ApplyTokenOps(ctx, token(fmt.Sprintf("stuck%d", i))) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, bff.ErrUnavailable) {
			t.Errorf("write %d while stuck: %v, want ErrUnavailable", i, err)
		}
	}
	// Long enough for the stuck group to fail and the writer to retry
	// what it would retry, while the lock still holds.
	time.Sleep(time.Second)
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyTokenOps(ctx, token("after")); err != nil {
		t.Fatalf("a write once the database moves: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // any stale retry would have run by now
	var stale int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM access_tokens WHERE signature LIKE 'stuck%'`).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Errorf("%d writes answered ErrUnavailable were applied afterwards", stale)
	}
}
