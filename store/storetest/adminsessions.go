package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

func adminSession(id, fingerprint string, created time.Time, ttl time.Duration) bff.AdminSession {
	return bff.AdminSession{ID: id, TokenFingerprint: fingerprint, CreatedAt: created, ExpiresAt: created.Add(ttl)}
}

func mustAdminSession(t *testing.T, s store.Store, sess bff.AdminSession) {
	t.Helper()
	if err := s.CreateAdminSession(context.Background(), sess); err != nil {
		t.Fatalf("CreateAdminSession(%s): %v", sess.ID, err)
	}
}

// testAdminSessions: a dashboard session is read back until it expires or
// is deleted; a deleted one stays gone; ids are unique.
func testAdminSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := now()
	a := adminSession("a", "fp1", t0, 8*time.Hour)
	mustAdminSession(t, s, a)
	mustAdminSession(t, s, adminSession("b", "fp1", t0, 8*time.Hour))

	got, err := s.GetAdminSession(ctx, "a", t0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(a, got, timeOpts); d != "" {
		t.Errorf("GetAdminSession (-want +got):\n%s", d)
	}
	wantErr(t, "a second session with the same id", s.CreateAdminSession(ctx, adminSession("a", "fp2", t0, time.Hour)), bff.ErrConflict)
	if got, _ := s.GetAdminSession(ctx, "a", t0); got.TokenFingerprint != "fp1" {
		t.Errorf("a conflicting create changed the session: %+v", got)
	}

	// Expiry is exclusive: at ExpiresAt the session is gone.
	if _, err := s.GetAdminSession(ctx, "a", a.ExpiresAt.Add(-time.Second)); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	_, err = s.GetAdminSession(ctx, "a", a.ExpiresAt)
	wantErr(t, "an expired session", err, bff.ErrNotFound)
	_, err = s.GetAdminSession(ctx, "missing", t0)
	wantErr(t, "an unknown session", err, bff.ErrNotFound)
	_, err = s.GetAdminSession(ctx, "bad\x00id", t0)
	wantErr(t, "an unstorable id", err, bff.ErrNotFound)

	// Signing out deletes it, for good; the other session stays.
	if err := s.DeleteAdminSession(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetAdminSession(ctx, "a", t0)
	wantErr(t, "a deleted session", err, bff.ErrNotFound)
	if _, err := s.GetAdminSession(ctx, "b", t0); err != nil {
		t.Errorf("deleting a ended another session: %v", err)
	}
	for _, id := range []string{"a", "missing", "bad\x00id"} {
		if err := s.DeleteAdminSession(ctx, id); err != nil {
			t.Errorf("DeleteAdminSession(%q) of no session: %v", id, err)
		}
	}
}

// testAdminSessionsOfOtherTokens: ending the sessions of rotated admin
// tokens keeps exactly those of the current one.
func testAdminSessionsOfOtherTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := now()
	for id, fp := range map[string]string{"old1": "fp-old", "old2": "fp-older", "cur1": "fp-new", "cur2": "fp-new"} {
		mustAdminSession(t, s, adminSession(id, fp, t0, time.Hour))
	}
	n, err := s.DeleteAdminSessionsExcept(ctx, "fp-new")
	if err != nil || n != 2 {
		t.Fatalf("DeleteAdminSessionsExcept = %d, %v; want 2", n, err)
	}
	for _, id := range []string{"old1", "old2"} {
		_, err := s.GetAdminSession(ctx, id, t0)
		wantErr(t, "a session of a rotated token", err, bff.ErrNotFound)
	}
	for _, id := range []string{"cur1", "cur2"} {
		if _, err := s.GetAdminSession(ctx, id, t0); err != nil {
			t.Errorf("a session of the current token: %v", err)
		}
	}
	if n, err := s.DeleteAdminSessionsExcept(ctx, "fp-new"); err != nil || n != 0 {
		t.Errorf("again: %d, %v", n, err)
	}
	// No admin token at all: every session ends.
	if n, err := s.DeleteAdminSessionsExcept(ctx, ""); err != nil || n != 2 {
		t.Errorf("DeleteAdminSessionsExcept(\"\") = %d, %v; want 2", n, err)
	}
}

// testAdminSessionsPrune: expired sessions are deleted, live ones kept.
func testAdminSessionsPrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := now()
	mustAdminSession(t, s, adminSession("expired", "fp", t0.Add(-9*time.Hour), 8*time.Hour))
	mustAdminSession(t, s, adminSession("live", "fp", t0, 8*time.Hour))
	n, err := s.PruneAdminSessions(ctx, t0)
	if err != nil || n != 1 {
		t.Fatalf("PruneAdminSessions = %d, %v; want 1", n, err)
	}
	if _, err := s.GetAdminSession(ctx, "live", t0); err != nil {
		t.Errorf("pruning removed a live session: %v", err)
	}
	// The expired one is gone, not merely hidden: it cannot be read even
	// with an earlier clock.
	_, err = s.GetAdminSession(ctx, "expired", t0.Add(-8*time.Hour-time.Minute))
	wantErr(t, "a pruned session", err, bff.ErrNotFound)
}

// testAdminSessionsConcurrent: sessions created, read and deleted at once
// do not disturb each other.
func testAdminSessionsConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := now()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := string(rune('a' + i))
			if err := s.CreateAdminSession(ctx, adminSession(id, "fp", t0, time.Hour)); err != nil {
				t.Errorf("create %s: %v", id, err)
				return
			}
			if _, err := s.GetAdminSession(ctx, id, t0); err != nil {
				t.Errorf("get %s: %v", id, err)
			}
			if i%2 == 0 {
				if err := s.DeleteAdminSession(ctx, id); err != nil {
					t.Errorf("delete %s: %v", id, err)
				}
			}
		}()
	}
	wg.Wait()
	for i := range 8 {
		id := string(rune('a' + i))
		_, err := s.GetAdminSession(ctx, id, t0)
		if i%2 == 0 {
			wantErr(t, "deleted "+id, err, bff.ErrNotFound)
		} else if err != nil {
			t.Errorf("kept %s: %v", id, err)
		}
	}
}
