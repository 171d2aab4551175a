package social_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
	"github.com/openedx/mobile-auth-bff/social"
)

// TestVerifier is the package's API as the exchange grant uses it: which
// backends are off and why, a verification through the answer cache, a
// rejection with its reason, and a disabled backend answered with an
// error rather than a panic.
func TestVerifier(t *testing.T) {
	t.Parallel()
	g := fakesocial.NewGoogle(t)
	var mu sync.Mutex
	seen := map[string]int{}
	v, err := social.New(social.Config{GoogleUserinfoURL: g.URL(), Timeout: time.Second, Observe: func(backend, result string) {
		mu.Lock()
		defer mu.Unlock()
		seen[backend+"/"+result]++
	}}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if why, off := v.Off(bff.ProviderGoogle); off {
		t.Errorf("google off: %s", why)
	}
	if why, off := v.Off(bff.ProviderApple); !off || !strings.Contains(why, "key set URL") {
		t.Errorf("apple-id: off %v for %q", off, why)
	}
	if got := v.Disabled(); len(got) != 3 || got[bff.ProviderGoogle] != "" {
		t.Errorf("Disabled = %v, want facebook, apple-id and azuread-oauth2", got)
	}

	ctx := context.Background()
	token := g.Issue("111")
	for range 2 {
		if id, err := v.Verify(ctx, bff.ProviderGoogle, token); err != nil || id.Subject != "111" {
			t.Fatalf("Verify = %+v, %v", id, err)
		}
	}
	_, err = v.Verify(ctx, bff.ProviderGoogle, "ya29.unknown")
	var rej *social.Rejection
	if !errors.Is(err, social.ErrRejected) || !errors.As(err, &rej) || rej.Reason == "" || strings.Contains(rej.Reason, "ya29") {
		t.Errorf("unknown token: %v", err)
	}
	mu.Lock()
	want := map[string]int{"google-oauth2/ok": 1, "google-oauth2/cached": 1, "google-oauth2/rejected": 1}
	for k, n := range want {
		if seen[k] != n {
			t.Errorf("%s observed %d times, want %d (all: %v)", k, seen[k], n, seen)
		}
	}
	mu.Unlock()

	if _, err := v.Verify(ctx, bff.ProviderFacebook, "EAA"); err == nil || errors.Is(err, social.ErrRejected) {
		t.Errorf("a disabled backend: %v, want an error that is not a verdict on the token", err)
	}
	if err := social.CheckNonce("raw", "not-its-sha256"); !errors.As(err, &rej) {
		t.Errorf("CheckNonce = %v, want a *Rejection", err)
	}
}
