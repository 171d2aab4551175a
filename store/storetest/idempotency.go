package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

func claimRecord(userID int64, key, claim, fingerprint string, created time.Time) bff.IdempotencyRecord {
	return bff.IdempotencyRecord{UserID: userID, Key: key, ClaimID: claim, Fingerprint: fingerprint,
		State: bff.IdempotencyInFlight, CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour)}
}

func mustClaim(t *testing.T, s store.Store, rec bff.IdempotencyRecord, wantWon bool) bff.IdempotencyRecord {
	t.Helper()
	got, won, err := s.ClaimIdempotencyKey(context.Background(), rec)
	if err != nil {
		t.Fatalf("ClaimIdempotencyKey(%s/%s): %v", rec.Key, rec.ClaimID, err)
	}
	if won != wantWon {
		t.Fatalf("ClaimIdempotencyKey(%s/%s) won = %v, want %v", rec.Key, rec.ClaimID, won, wantWon)
	}
	return got
}

func testIdempotencyLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "payer")
	other := mustUser(t, s, "other")
	t0 := now()

	first := claimRecord(u.ID, "key-1", "claim-a", "fp-1", t0)
	got := mustClaim(t, s, first, true)
	if diff := cmp.Diff(first, got, timeOpts); diff != "" {
		t.Errorf("claimed record (-want +got):\n%s", diff)
	}
	// A second claim of the live key, whatever its request, gets the first.
	got = mustClaim(t, s, claimRecord(u.ID, "key-1", "claim-b", "fp-2", t0.Add(time.Second)), false)
	if diff := cmp.Diff(first, got, timeOpts); diff != "" {
		t.Errorf("losing claim sees (-want +got):\n%s", diff)
	}
	// Keys are per user.
	mustClaim(t, s, claimRecord(other.ID, "key-1", "claim-c", "fp-1", t0), true)

	// Only the claim's holder finishes it.
	done := t0.Add(2 * time.Second)
	finished := first
	finished.State, finished.Status, finished.FinishedAt = bff.IdempotencyCompleted, 201, &done
	finished.Header = map[string][]string{"Content-Type": {"application/json"}, "Link": {"<a>", "<b>"}}
	finished.Body = []byte("{\"number\":\"EDX-1\"}\x00\xff binary is kept")
	wrong := finished
	wrong.ClaimID = "claim-b"
	if err := s.FinishIdempotencyKey(ctx, wrong); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("finish by another claim: %v, want ErrNotFound", err)
	}
	if err := s.FinishIdempotencyKey(ctx, finished); err != nil {
		t.Fatal(err)
	}
	got = mustClaim(t, s, claimRecord(u.ID, "key-1", "claim-d", "fp-1", t0.Add(3*time.Second)), false)
	if diff := cmp.Diff(finished, got, timeOpts); diff != "" {
		t.Errorf("completed record (-want +got):\n%s", diff)
	}
	// A finished record is final: not finished again, not released.
	again := finished
	again.State, again.Status = bff.IdempotencyUnknown, 0
	if err := s.FinishIdempotencyKey(ctx, again); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("second finish: %v, want ErrNotFound", err)
	}
	if err := s.ReleaseIdempotencyKey(ctx, u.ID, "key-1", "claim-a"); err != nil {
		t.Fatal(err)
	}
	got = mustClaim(t, s, claimRecord(u.ID, "key-1", "claim-e", "fp-1", t0.Add(4*time.Second)), false)
	if got.State != bff.IdempotencyCompleted || got.Status != 201 {
		t.Errorf("release removed a completed record: %+v", got)
	}

	// The unknown outcome is kept the same way, without a response.
	unknown := claimRecord(u.ID, "key-2", "claim-f", "fp-3", t0)
	mustClaim(t, s, unknown, true)
	unknown.State, unknown.FinishedAt = bff.IdempotencyUnknown, &done
	if err := s.FinishIdempotencyKey(ctx, unknown); err != nil {
		t.Fatal(err)
	}
	got = mustClaim(t, s, claimRecord(u.ID, "key-2", "claim-g", "fp-3", t0.Add(time.Minute)), false)
	if diff := cmp.Diff(unknown, got, timeOpts); diff != "" {
		t.Errorf("unknown record (-want +got):\n%s", diff)
	}
}

func testIdempotencyRelease(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "payer")
	t0 := now()
	mustClaim(t, s, claimRecord(u.ID, "key", "claim-a", "fp", t0), true)
	// Another claim's release changes nothing.
	if err := s.ReleaseIdempotencyKey(ctx, u.ID, "key", "claim-b"); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, s, claimRecord(u.ID, "key", "claim-c", "fp", t0), false)
	// The holder's release frees the key.
	if err := s.ReleaseIdempotencyKey(ctx, u.ID, "key", "claim-a"); err != nil {
		t.Fatal(err)
	}
	got := mustClaim(t, s, claimRecord(u.ID, "key", "claim-d", "fp-new", t0.Add(time.Second)), true)
	if got.ClaimID != "claim-d" || got.Fingerprint != "fp-new" {
		t.Errorf("reclaimed record: %+v", got)
	}
	// The released claim can no longer finish.
	done := t0
	if err := s.FinishIdempotencyKey(ctx, bff.IdempotencyRecord{UserID: u.ID, Key: "key", ClaimID: "claim-a",
		State: bff.IdempotencyCompleted, Status: 200, FinishedAt: &done}); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("finish of a released claim: %v, want ErrNotFound", err)
	}
	// Releasing what does not exist is not an error.
	if err := s.ReleaseIdempotencyKey(ctx, u.ID, "nope", "claim-x"); err != nil {
		t.Errorf("release of a missing key: %v", err)
	}
}

func testIdempotencyExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "payer")
	t0 := now()
	old := claimRecord(u.ID, "old", "claim-a", "fp", t0)
	old.ExpiresAt = t0.Add(time.Hour)
	mustClaim(t, s, old, true)
	live := claimRecord(u.ID, "live", "claim-b", "fp", t0)
	mustClaim(t, s, live, true)

	// Once expired, a record no longer holds its key: a new claim replaces it.
	later := t0.Add(2 * time.Hour)
	got := mustClaim(t, s, claimRecord(u.ID, "old", "claim-c", "fp-2", later), true)
	if got.ClaimID != "claim-c" || !got.CreatedAt.Equal(later) || got.State != bff.IdempotencyInFlight {
		t.Errorf("replaced record: %+v", got)
	}

	expiring := claimRecord(u.ID, "expiring", "claim-d", "fp", t0)
	expiring.ExpiresAt = t0.Add(time.Minute)
	mustClaim(t, s, expiring, true)
	n, err := s.PruneIdempotencyKeys(ctx, t0.Add(25*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// "expiring" and "live" (24 h) are gone, the reclaimed "old" (26 h) stays.
	if n != 2 {
		t.Errorf("pruned %d records, want 2", n)
	}
	mustClaim(t, s, claimRecord(u.ID, "live", "claim-e", "fp", t0), true)
	mustClaim(t, s, claimRecord(u.ID, "old", "claim-f", "fp", t0.Add(3*time.Hour)), false)
}

// testIdempotencyConcurrentClaims: of many simultaneous claims of one key,
// exactly one wins and every other sees the winner.
func testIdempotencyConcurrentClaims(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "payer")
	t0 := now()
	const n = 16
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		winner []string
		seen   = map[string]int{}
	)
	for i := range n {
		wg.Go(func() {
			claim := fmt.Sprintf("claim-%d", i)
			got, won, err := s.ClaimIdempotencyKey(ctx, claimRecord(u.ID, "contended", claim, "fp", t0))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if won {
				winner = append(winner, claim)
			}
			seen[got.ClaimID]++
		})
	}
	wg.Wait()
	if len(winner) != 1 {
		t.Fatalf("%d claims won (%v), want exactly 1", len(winner), winner)
	}
	if seen[winner[0]] != n {
		t.Errorf("claims saw %v, want all %d to see the winner %s", seen, n, winner[0])
	}
}

func testIdempotencyBadInput(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "payer")
	t0 := now()
	for _, key := range []string{"", strings.Repeat("k", store.MaxIdempotencyKeyLength+1)} {
		if _, _, err := s.ClaimIdempotencyKey(ctx, claimRecord(u.ID, key, "c", "fp", t0)); !errors.Is(err, bff.ErrInvalidInput) {
			t.Errorf("claim of a %d-byte key: %v, want ErrInvalidInput", len(key), err)
		}
	}
	mustClaim(t, s, claimRecord(u.ID, strings.Repeat("k", store.MaxIdempotencyKeyLength), "c", "fp", t0), true)
	if _, _, err := s.ClaimIdempotencyKey(ctx, claimRecord(u.ID+1000, "key", "c", "fp", t0)); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("claim for an unknown user: %v, want ErrNotFound", err)
	}
	mustClaim(t, s, claimRecord(u.ID, "key", "c", "fp", t0), true)
	if err := s.FinishIdempotencyKey(ctx, bff.IdempotencyRecord{UserID: u.ID, Key: "key", ClaimID: "c",
		State: bff.IdempotencyInFlight}); !errors.Is(err, bff.ErrInvalidInput) {
		t.Errorf("finish to in_flight: %v, want ErrInvalidInput", err)
	}
	if err := s.FinishIdempotencyKey(ctx, bff.IdempotencyRecord{UserID: u.ID, Key: "a\x00b", ClaimID: "c",
		State: bff.IdempotencyCompleted}); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("finish of an unstorable key: %v, want ErrNotFound", err)
	}
}
