package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/store"
)

var errReplayed = errors.New("replayed")

func useProof(t *testing.T, s store.Store, key string, at, exp time.Time, want bool) {
	t.Helper()
	got, err := s.UseDPoPProof(context.Background(), key, at, exp)
	if err != nil {
		t.Fatalf("UseDPoPProof(%s): %v", key, err)
	}
	if got != want {
		t.Fatalf("UseDPoPProof(%s) at %s = %v, want %v", key, at.Format(time.TimeOnly), got, want)
	}
}

func testDPoPProofs(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := now()
	exp := t0.Add(2 * time.Minute)
	useProof(t, s, "proof-a", t0, exp, true)
	// A second use, at any time before it expires, is a replay.
	useProof(t, s, "proof-a", t0, exp, false)
	useProof(t, s, "proof-a", exp.Add(-time.Millisecond), exp, false)
	useProof(t, s, "proof-b", t0, exp, true)
	// Once expired the record is no more: the key is taken over (the
	// proof itself is refused by its iat long before).
	useProof(t, s, "proof-a", exp, exp.Add(time.Minute), true)
	useProof(t, s, "proof-a", exp, exp.Add(time.Minute), false)

	n, err := s.PruneDPoPProofs(ctx, exp.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 { // proof-b
		t.Errorf("PruneDPoPProofs removed %d, want 1", n)
	}
	useProof(t, s, "proof-a", exp.Add(time.Second), exp.Add(time.Minute), false)
}

func testDPoPProofsConcurrent(t *testing.T, s store.Store) {
	t0 := now()
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			fresh, err := s.UseDPoPProof(context.Background(), "race", t0, t0.Add(time.Minute))
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("use %d: %w", i, err)
			case !fresh:
				errs[i] = errReplayed
			}
		})
	}
	wg.Wait()
	oneWins(t, "concurrent uses of one proof", errs, errReplayed)
}
