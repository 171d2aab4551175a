package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

func authCode(sig string, userID int64, expires time.Time) bff.AuthorizationCode {
	return bff.AuthorizationCode{
		Signature: sig, RequestID: "req-" + sig, ClientID: "mobile", UserID: userID,
		RedirectURI: "org.openedx.app://oauth2Callback", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256", Scopes: []string{"read"}, AuthTime: now().Add(-time.Second),
		CreatedAt: now(), ExpiresAt: expires, Request: []byte(`{"id":"req-` + sig + `"}`),
	}
}

// testAuthorizationCodes: a code round-trips, is redeemed once — the op
// failing the whole transaction the second time, with nothing of it
// written — and goes with its client and when pruned.
func testAuthorizationCodes(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	u := mustUser(t, s, "ada")
	c := authCode("code-1", u.ID, now().Add(time.Minute))
	if err := s.CreateAuthorizationCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "duplicate code", s.CreateAuthorizationCode(ctx, c), bff.ErrConflict)
	bad := authCode("code-x", u.ID, now().Add(time.Minute))
	bad.ClientID = "nope"
	wantErr(t, "code of an unknown client", s.CreateAuthorizationCode(ctx, bad), bff.ErrNotFound)

	got, err := s.GetAuthorizationCode(ctx, "code-1")
	if err != nil {
		t.Fatal(err)
	}
	// jsonb keeps the request's meaning, not its bytes.
	if !strings.Contains(string(got.Request), `"req-code-1"`) {
		t.Errorf("request = %s", got.Request)
	}
	if diff := cmp.Diff(c, got, timeOpts, cmpopts.IgnoreFields(bff.AuthorizationCode{}, "Request")); diff != "" {
		t.Errorf("GetAuthorizationCode mismatch (-want +got):\n%s", diff)
	}
	_, err = s.GetAuthorizationCode(ctx, "nope")
	wantErr(t, "unknown code", err, bff.ErrNotFound)
	_, err = s.GetAuthorizationCode(ctx, "bad\x00sig")
	wantErr(t, "unstorable code", err, bff.ErrNotFound)

	at := now()
	access := accessToken("at-1", c.RequestID, now().Add(time.Hour))
	access.UserID = u.ID
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{
		store.RedeemAuthorizationCode{Signature: "code-1", At: at},
		store.CreateAccessToken{Token: access},
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetAuthorizationCode(ctx, "code-1")
	if got.UsedAt == nil || !got.UsedAt.Equal(at) {
		t.Errorf("UsedAt after redemption = %v, want %v", got.UsedAt, at)
	}
	// The second redemption fails, and the token written with it is not.
	second := accessToken("at-2", c.RequestID, now().Add(time.Hour))
	err = s.ApplyTokenOps(ctx, []store.TokenOp{
		store.RedeemAuthorizationCode{Signature: "code-1", At: now()},
		store.CreateAccessToken{Token: second},
	})
	wantErr(t, "second redemption", err, bff.ErrCodeUsed)
	_, err = s.GetAccessToken(ctx, "at-2")
	wantErr(t, "token of the failed redemption", err, bff.ErrNotFound)
	wantErr(t, "redeeming an unknown code",
		s.ApplyTokenOps(ctx, []store.TokenOp{store.RedeemAuthorizationCode{Signature: "nope", At: now()}}), bff.ErrNotFound)

	// Pruning drops expired codes only.
	if err := s.CreateAuthorizationCode(ctx, authCode("code-old", u.ID, now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneTokens(ctx, now()); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetAuthorizationCode(ctx, "code-old")
	wantErr(t, "expired code after prune", err, bff.ErrNotFound)
	if _, err := s.GetAuthorizationCode(ctx, "code-1"); err != nil {
		t.Errorf("live code after prune: %v", err)
	}
	// Deleting the client deletes its codes.
	if err := s.DeleteClient(ctx, "mobile"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetAuthorizationCode(ctx, "code-1")
	wantErr(t, "code after its client was deleted", err, bff.ErrNotFound)
}

// testAuthorizationCodeRace: of concurrent redemptions of one code exactly
// one succeeds.
func testAuthorizationCodeRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	u := mustUser(t, s, "ada")
	if err := s.CreateAuthorizationCode(ctx, authCode("code-r", u.ID, now().Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.ApplyTokenOps(ctx, []store.TokenOp{store.RedeemAuthorizationCode{Signature: "code-r", At: now()}})
		}()
	}
	wg.Wait()
	oneWins(t, "concurrent redemptions of one code", errs, bff.ErrCodeUsed)
}
