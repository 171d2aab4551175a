package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/memory"
	"github.com/openedx/mobile-auth-bff/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memory.New() })
}

// cappedStore is a store of at most maxTokens tokens (0: no cap) with a
// client-credentials client, and issue, which writes an access token of a
// family of its own issued two hours ago.
func cappedStore(t *testing.T, maxTokens int) (s *memory.Store, issue func(sig string, format bff.TokenFormat, expires time.Time) error) {
	t.Helper()
	ctx := context.Background()
	s = memory.NewWith(memory.Options{MaxTokens: maxTokens})
	now := time.Now().UTC()
	if err := s.CreateClient(ctx, bff.Client{ID: "svc", Name: "svc", GrantTypes: []string{bff.GrantClientCredentials},
		TokenType: bff.FormatBearer, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return s, func(sig string, format bff.TokenFormat, expires time.Time) error {
		return s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bff.AccessToken{
			Signature: sig, FamilyID: "f-" + sig[:min(len(sig), 8)], Format: format, ClientID: "svc",
			GrantType: bff.GrantClientCredentials, IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: expires}}})
	}
}

// TestTokenCap: a store at its cap of tokens refuses a new one with
// ErrUnavailable, after pruning the expired ones; pruning makes room.
func TestTokenCap(t *testing.T) {
	ctx := context.Background()
	hour := time.Now().Add(time.Hour)
	s, issue := cappedStore(t, 2)
	for _, sig := range []string{"a", "b"} {
		if err := issue(sig, bff.FormatBearer, hour); err != nil {
			t.Fatalf("token %s under the cap: %v", sig, err)
		}
	}
	if err := issue("c", bff.FormatBearer, hour); !errors.Is(err, bff.ErrUnavailable) {
		t.Fatalf("a token past the cap: %v, want ErrUnavailable", err)
	}
	if _, err := s.GetAccessToken(ctx, "a"); err != nil {
		t.Errorf("a token under the cap is gone: %v", err)
	}

	// A full store of expired tokens makes room for a new one by itself.
	_, issue = cappedStore(t, 1)
	if err := issue("old", bff.FormatBearer, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := issue("new", bff.FormatBearer, hour); err != nil {
		t.Errorf("a token after the expired one: %v", err)
	}
	// No cap.
	_, issue = cappedStore(t, 0)
	for i := range 10 {
		if err := issue(fmt.Sprint("t", i), bff.FormatBearer, hour); err != nil {
			t.Fatalf("no cap: token %d: %v", i, err)
		}
	}
}

// TestTokenCapPrunesAsTokensExpire: a store at its cap makes room as soon
// as a token has expired, even right after a scan that found nothing
// expired (it was once refused for the next 100 ms).
func TestTokenCapPrunesAsTokensExpire(t *testing.T) {
	hour := time.Now().Add(time.Hour)
	s, issue := cappedStore(t, 2)
	soon := time.Now().Add(60 * time.Millisecond)
	if err := issue("soon", bff.FormatBearer, soon); err != nil {
		t.Fatal(err)
	}
	if err := issue("later", bff.FormatBearer, hour); err != nil {
		t.Fatal(err)
	}
	// Full, nothing expired: refused (after a scan that found nothing).
	err := issue("third", bff.FormatBearer, hour)
	if !time.Now().Before(soon) {
		t.Skip("the machine took longer than the first token's 60 ms to write three tokens")
	}
	if !errors.Is(err, bff.ErrUnavailable) {
		t.Fatalf("a token past the cap: %v, want ErrUnavailable", err)
	}
	time.Sleep(time.Until(soon) + 30*time.Millisecond)
	if err := issue("fourth", bff.FormatBearer, hour); err != nil {
		t.Errorf("a token once one expired, %s after the last scan: %v", 90*time.Millisecond, err)
	}
	if _, err := s.GetAccessToken(context.Background(), "later"); err != nil {
		t.Errorf("the live token is gone: %v", err)
	}
}

// One in-memory store is one instance; "two" on it see each other at once.
func TestConformanceInstances(t *testing.T) {
	storetest.RunInstances(t, func(*testing.T) (store.Store, store.Store) {
		s := memory.New()
		return s, s
	})
}
