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

func issued(hour time.Time, client, format, grant string, n int64) bff.UsageCount {
	return bff.UsageCount{UsageKey: bff.UsageKey{Hour: hour, ClientID: client, Kind: bff.UsageIssued,
		Format: format, GrantType: grant}, Count: n}
}

func presented(hour time.Time, client, endpoint, format, code string, n int64) bff.UsageCount {
	result := bff.ResultOK
	if code != "" {
		result = bff.ResultError
	}
	return bff.UsageCount{UsageKey: bff.UsageKey{Hour: hour, ClientID: client, Kind: bff.UsagePresented,
		Format: format, Endpoint: endpoint, Result: result, ErrorCode: code}, Count: n}
}

// testUsageAddsUp: counts of the same key add up across calls and within
// one call, hours are truncated, other keys stay apart, and ListUsage
// returns [from, to) in key order.
func testUsageAddsUp(t *testing.T, s store.Store) {
	ctx := context.Background()
	h0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	h1 := h0.Add(time.Hour)
	if err := s.AddUsage(ctx, []bff.UsageCount{
		issued(h0.Add(12*time.Minute), "mobile", "jwt", bff.GrantPassword, 2),
		issued(h0.Add(59*time.Minute), "mobile", "jwt", bff.GrantPassword, 3), // same key, same call
		issued(h0, "mobile", "bearer", bff.GrantPassword, 1),
		issued(h0, "mobile", "jwt", bff.GrantRefreshToken, 0), // ignored
		presented(h0, "", "me", "jwt", "non_asymmetric_token", 4),
		presented(h1, "mobile", "login", "bearer", "", 7),
	}); err != nil {
		t.Fatal(err)
	}
	// A second instance flushes the same keys.
	if err := s.AddUsage(ctx, []bff.UsageCount{
		issued(h0.In(time.FixedZone("IST", 19800)), "mobile", "jwt", bff.GrantPassword, 10),
		presented(h1.Add(time.Second), "mobile", "login", "bearer", "", 1),
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUsage(ctx, nil); err != nil {
		t.Fatalf("AddUsage(nil): %v", err)
	}

	got, err := s.ListUsage(ctx, h0, h1.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []bff.UsageCount{
		presented(h0, "", "me", "jwt", "non_asymmetric_token", 4),
		issued(h0, "mobile", "bearer", bff.GrantPassword, 1),
		issued(h0, "mobile", "jwt", bff.GrantPassword, 15),
		presented(h1, "mobile", "login", "bearer", "", 8),
	}
	if diff := cmp.Diff(want, got, timeOpts); diff != "" {
		t.Errorf("ListUsage mismatch (-want +got):\n%s", diff)
	}
	for _, c := range got {
		if c.Hour.Location() != time.UTC {
			t.Errorf("hour %v is not in UTC", c.Hour)
		}
	}

	// [from, to) is half-open.
	got, err = s.ListUsage(ctx, h1, h1.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Count != 8 {
		t.Errorf("ListUsage of the second hour: %+v", got)
	}
	if got, _ := s.ListUsage(ctx, h0, h0); len(got) != 0 {
		t.Errorf("empty range: %+v", got)
	}
}

// testUsageBinding: the binding is part of the key — counts that differ
// only by it stay apart, "" (counted before the binding was) among them —
// it round-trips, and it orders last.
func testUsageBinding(t *testing.T, s store.Store) {
	ctx := context.Background()
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	bind := func(c bff.UsageCount, binding string) bff.UsageCount {
		c.Binding = binding
		return c
	}
	if err := s.AddUsage(ctx, []bff.UsageCount{
		bind(issued(h, "mobile", "jwt", bff.GrantPassword, 2), bff.BindingDPoP),
		bind(issued(h, "mobile", "jwt", bff.GrantPassword, 3), bff.BindingNone),
		issued(h, "mobile", "jwt", bff.GrantPassword, 4),
		bind(presented(h, "mobile", "me", "jwt", "", 5), bff.BindingDPoP),
		bind(presented(h, "mobile", "me", "jwt", "invalid_dpop_proof", 1), bff.BindingDPoP),
		bind(presented(h, "mobile", "me", "jwt", "", 6), bff.BindingNone),
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUsage(ctx, []bff.UsageCount{
		bind(issued(h, "mobile", "jwt", bff.GrantPassword, 10), bff.BindingDPoP),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListUsage(ctx, h, h.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []bff.UsageCount{
		issued(h, "mobile", "jwt", bff.GrantPassword, 4),
		bind(issued(h, "mobile", "jwt", bff.GrantPassword, 12), bff.BindingDPoP),
		bind(issued(h, "mobile", "jwt", bff.GrantPassword, 3), bff.BindingNone),
		bind(presented(h, "mobile", "me", "jwt", "invalid_dpop_proof", 1), bff.BindingDPoP),
		bind(presented(h, "mobile", "me", "jwt", "", 5), bff.BindingDPoP),
		bind(presented(h, "mobile", "me", "jwt", "", 6), bff.BindingNone),
	}
	if diff := cmp.Diff(want, got, timeOpts); diff != "" {
		t.Errorf("ListUsage mismatch (-want +got):\n%s", diff)
	}
}

// testUsageConcurrentAdds: instances flushing overlapping keys at the same
// time lose nothing and do not deadlock.
func testUsageConcurrentAdds(t *testing.T, s store.Store) {
	ctx := context.Background()
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	batch := func(reverse bool) []bff.UsageCount {
		var b []bff.UsageCount
		for _, c := range []string{"a", "b", "c", "d", "e", "f"} {
			b = append(b, issued(h, c, "jwt", bff.GrantPassword, 1))
		}
		if reverse {
			for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
				b[i], b[j] = b[j], b[i]
			}
		}
		return b
	}
	const workers, rounds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				errs <- s.AddUsage(ctx, batch(w%2 == 1))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListUsage(ctx, h, h.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("got %d aggregates, want 6", len(got))
	}
	for _, c := range got {
		if c.Count != workers*rounds {
			t.Errorf("client %s: count %d, want %d", c.ClientID, c.Count, workers*rounds)
		}
	}
}

func testUsagePrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	if err := s.AddUsage(ctx, []bff.UsageCount{
		issued(h.Add(-2*time.Hour), "mobile", "jwt", bff.GrantPassword, 1),
		issued(h.Add(-time.Hour), "mobile", "bearer", bff.GrantPassword, 1),
		issued(h, "mobile", "jwt", bff.GrantPassword, 1),
	}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneUsage(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("PruneUsage removed %d aggregates, want 2", n)
	}
	got, err := s.ListUsage(ctx, h.Add(-24*time.Hour), h.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Hour.Equal(h) {
		t.Errorf("after prune: %+v", got)
	}
}

// testActiveTokens: only unexpired access tokens count, neither revoked
// ones nor those of a revoked family, per client, format and binding (a
// token with a DPoP thumbprint is dpop).
func testActiveTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	mustClient(t, s, "other")
	past, future := now().Add(-time.Minute), now().Add(time.Hour)
	jwt := func(tok bff.AccessToken, jti string) bff.AccessToken {
		tok.Format, tok.JTI = bff.FormatJWT, jti
		return tok
	}
	bound := func(tok bff.AccessToken) bff.AccessToken {
		tok.JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
		return tok
	}
	otherClient := accessToken("o1", "f-o", future)
	otherClient.ClientID = "other"
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: accessToken("b1", "f1", future)},
		store.CreateAccessToken{Token: accessToken("b2", "f2", future)},
		store.CreateAccessToken{Token: accessToken("b-expired", "f3", past)},
		store.CreateAccessToken{Token: accessToken("b-revoked", "f4", future)},
		store.CreateAccessToken{Token: jwt(accessToken("j1", "f1", future), "jti-1")},
		store.CreateAccessToken{Token: jwt(accessToken("j-family", "f5", future), "jti-2")},
		store.CreateAccessToken{Token: accessToken("b-family", "f5", future)},
		store.CreateAccessToken{Token: otherClient},
		store.CreateAccessToken{Token: bound(accessToken("d1", "f6", future))},
		store.CreateAccessToken{Token: bound(jwt(accessToken("dj1", "f6", future), "jti-3"))},
		store.CreateAccessToken{Token: bound(jwt(accessToken("dj2", "f7", future), "jti-4"))},
		store.CreateAccessToken{Token: bound(accessToken("d-expired", "f6", past))},
		store.CreateAccessToken{Token: bound(accessToken("d-revoked", "f6", future))},
		store.CreateAccessToken{Token: bound(accessToken("d-family", "f5", future))},
		store.RevokeAccessToken{Signature: "b-revoked", At: now()},
		store.RevokeAccessToken{Signature: "d-revoked", At: now()},
		store.RevokeFamily{FamilyID: "f5", At: now()},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.CountActiveTokens(ctx, now())
	if err != nil {
		t.Fatal(err)
	}
	want := []bff.ActiveTokens{
		{ClientID: "mobile", Format: bff.FormatBearer, Binding: bff.BindingDPoP, Count: 1},
		{ClientID: "mobile", Format: bff.FormatBearer, Binding: bff.BindingNone, Count: 2},
		{ClientID: "mobile", Format: bff.FormatJWT, Binding: bff.BindingDPoP, Count: 2},
		{ClientID: "mobile", Format: bff.FormatJWT, Binding: bff.BindingNone, Count: 1},
		{ClientID: "other", Format: bff.FormatBearer, Binding: bff.BindingNone, Count: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CountActiveTokens mismatch (-want +got):\n%s", diff)
	}
	if got, _ := s.CountActiveTokens(ctx, future.Add(time.Second)); len(got) != 0 {
		t.Errorf("after every token expired: %+v", got)
	}
}
