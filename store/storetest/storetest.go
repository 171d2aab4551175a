// Package storetest is the conformance suite every store.Store passes: the
// in-memory store and the PostgreSQL store run the same tests, the way fosite
// and Dex test their storages.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// Run runs the suite; open returns a new, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Clients", testClients},
		{"ClientUpdateAbort", testClientUpdateAbort},
		{"ClientIncarnation", testClientIncarnation},
		{"ClientSecretRotation", testClientSecretRotation},
		{"TokensOfADeletedIncarnation", testTokensOfADeletedIncarnation},
		{"DeleteClientRace", testDeleteClientRace},
		{"Users", testUsers},
		{"LoginNamespace", testLoginNamespace},
		{"UserLifecycle", testUserLifecycle},
		{"Keys", testKeys},
		{"TokenRoundTrip", testTokenRoundTrip},
		{"TokenRevocation", testTokenRevocation},
		{"TokenOpsAtomic", testTokenOpsAtomic},
		{"RefreshRotation", testRefreshRotation},
		{"Prune", testPrune},
		{"LoginThrottle", testLoginThrottle},
		{"DeleteClientCascades", testDeleteClientCascades},
		{"UnstorableLookups", testUnstorableLookups},
		{"Sessions", testSessions},
		{"SessionsEndWithAccount", testSessionsEndWithAccount},
		{"EndedSessionsStayEnded", testEndedSessionsStayEnded},
		{"AdminSessions", testAdminSessions},
		{"AdminSessionsOfOtherTokens", testAdminSessionsOfOtherTokens},
		{"AdminSessionsPrune", testAdminSessionsPrune},
		{"AdminSessionsConcurrent", testAdminSessionsConcurrent},
		{"TokenGuards", testTokenGuards},
		{"TokenGuardsPrecision", testTokenGuardsPrecision},
		{"TokenGuardsRace", testTokenGuardsRace},
		{"AccessTokenByJTI", testAccessTokenByJTI},
		{"Identities", testIdentities},
		{"IdentitiesConcurrentLink", testIdentitiesConcurrentLink},
		{"DPoPProofs", testDPoPProofs},
		{"DPoPProofsConcurrent", testDPoPProofsConcurrent},
		{"IdempotencyLifecycle", testIdempotencyLifecycle},
		{"IdempotencyRelease", testIdempotencyRelease},
		{"IdempotencyExpiry", testIdempotencyExpiry},
		{"IdempotencyConcurrentClaims", testIdempotencyConcurrentClaims},
		{"IdempotencyBadInput", testIdempotencyBadInput},
		{"UsageAddsUp", testUsageAddsUp},
		{"UsageBinding", testUsageBinding},
		{"UsageConcurrentAdds", testUsageConcurrentAdds},
		{"UsagePrune", testUsagePrune},
		{"ActiveTokens", testActiveTokens},
		{"AuthorizationCodes", testAuthorizationCodes},
		{"AuthorizationCodeRace", testAuthorizationCodeRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// timeOpts compares times by instant at microsecond precision (PostgreSQL's).
var timeOpts = cmp.Options{
	cmpopts.EquateApproxTime(time.Microsecond),
	cmpopts.EquateEmpty(),
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func mustClient(t *testing.T, s store.Store, id string) bff.Client {
	t.Helper()
	c := bff.Client{
		ID: id, Name: "App " + id, Public: true, GrantTypes: []string{bff.GrantPassword, bff.GrantRefreshToken},
		Scopes: []string{"read", "email"}, TokenType: bff.FormatBearer, JWTEnabled: true,
		CreatedAt: now(), UpdatedAt: now(),
	}
	if err := s.CreateClient(context.Background(), c); err != nil {
		t.Fatalf("CreateClient(%s): %v", id, err)
	}
	return c
}

func mustUser(t *testing.T, s store.Store, username string) bff.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), bff.User{
		Username: username, Email: username + "@example.com", Name: "Some One", PasswordHash: "$argon2id$x",
		EmailVerified: true,
	})
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", username, err)
	}
	return u
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func testClients(t *testing.T, s store.Store) {
	ctx := context.Background()
	conf := bff.Client{
		ID: "backend", Name: "Backend", SecretHash: []byte{1, 2, 3}, GrantTypes: []string{bff.GrantClientCredentials},
		Scopes: []string{"read"}, TokenType: bff.FormatJWT, JWTRolloutPercent: 25, JWTEnabled: false,
		Restricted: true, JWTTokenType: bff.LabelBearer, CreatedAt: now(), UpdatedAt: now(),
		Incarnation:  "first-incarnation",
		RedirectURIs: []string{"org.openedx.app://oauth2Callback", "http://127.0.0.1/callback"}, PKCERequired: true,
		DPoPBoundAccessTokens: true,
	}
	if err := s.CreateClient(ctx, conf); err != nil {
		t.Fatal(err)
	}
	pub := mustClient(t, s, "mobile")

	got, err := s.GetClient(ctx, "backend")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(conf, got, timeOpts); diff != "" {
		t.Errorf("GetClient mismatch (-want +got):\n%s", diff)
	}
	wantErr(t, "duplicate CreateClient", s.CreateClient(ctx, conf), bff.ErrConflict)
	_, err = s.GetClient(ctx, "nope")
	wantErr(t, "GetClient(nope)", err, bff.ErrNotFound)

	list, err := s.ListClients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bff.Client{conf, pub}, list, timeOpts); diff != "" {
		t.Errorf("ListClients mismatch (-want +got):\n%s", diff)
	}

	updated, err := s.UpdateClient(ctx, "mobile", func(c *bff.Client) error {
		c.JWTRolloutPercent = 50
		c.TokenType = bff.FormatJWT
		c.JWTTokenType = bff.LabelJWT
		c.Scopes = append(c.Scopes, "payments")
		c.ID = "renamed" // ids are immutable: ignored
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetClient(ctx, "mobile")
	if got.JWTRolloutPercent != 50 || got.TokenType != bff.FormatJWT || got.JWTTokenType != bff.LabelJWT ||
		len(got.Scopes) != 3 || updated.ID != "mobile" {
		t.Errorf("after UpdateClient: %+v", got)
	}
	// Clearing jwt_token_type leaves the label to the request again.
	if _, err := s.UpdateClient(ctx, "mobile", func(c *bff.Client) error { c.JWTTokenType = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetClient(ctx, "mobile"); got.JWTTokenType != "" || got.JWTRolloutPercent != 50 {
		t.Errorf("after clearing jwt_token_type: %+v", got)
	}
	// Redirect URIs and pkce_required are kept and replaced whole.
	if _, err := s.UpdateClient(ctx, "mobile", func(c *bff.Client) error {
		c.RedirectURIs = []string{"https://app.example.com/cb"}
		c.PKCERequired = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetClient(ctx, "mobile"); !slices.Equal(got.RedirectURIs, []string{"https://app.example.com/cb"}) || got.PKCERequired {
		t.Errorf("after setting redirect_uris: %+v", got)
	}
	if _, err := s.UpdateClient(ctx, "mobile", func(c *bff.Client) error {
		c.RedirectURIs, c.PKCERequired = nil, true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetClient(ctx, "mobile"); len(got.RedirectURIs) != 0 || !got.PKCERequired {
		t.Errorf("after clearing redirect_uris: %+v", got)
	}
	// dpop_bound_access_tokens is kept when set, and turned off again.
	for _, bound := range []bool{true, false} {
		if _, err := s.UpdateClient(ctx, "mobile", func(c *bff.Client) error { c.DPoPBoundAccessTokens = bound; return nil }); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.GetClient(ctx, "mobile"); got.DPoPBoundAccessTokens != bound || !got.PKCERequired {
			t.Errorf("after setting dpop_bound_access_tokens to %v: %+v", bound, got)
		}
	}
	_, err = s.UpdateClient(ctx, "nope", func(*bff.Client) error { return nil })
	wantErr(t, "UpdateClient(nope)", err, bff.ErrNotFound)

	if err := s.DeleteClient(ctx, "mobile"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteClient twice", s.DeleteClient(ctx, "mobile"), bff.ErrNotFound)
	_, err = s.GetClient(ctx, "mobile")
	wantErr(t, "GetClient after delete", err, bff.ErrNotFound)
}

func testClientUpdateAbort(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	boom := errors.New("boom")
	_, err := s.UpdateClient(ctx, "mobile", func(c *bff.Client) error {
		c.JWTRolloutPercent = 99
		return boom
	})
	wantErr(t, "UpdateClient with failing update", err, boom)
	got, _ := s.GetClient(ctx, "mobile")
	if got.JWTRolloutPercent != 0 {
		t.Errorf("aborted update was stored: rollout = %d", got.JWTRolloutPercent)
	}
}

// testClientIncarnation: a client keeps the incarnation it was created
// with — an update cannot change it, nor the creation time — and a client
// created again under a deleted one's id has its own (ADR 0019).
func testClientIncarnation(t *testing.T, s store.Store) {
	ctx := context.Background()
	created := now().Add(-time.Hour)
	c := bff.Client{ID: "mobile", Public: true, GrantTypes: []string{bff.GrantPassword}, TokenType: bff.FormatBearer,
		CreatedAt: created, UpdatedAt: created, Incarnation: "first"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	updated, err := s.UpdateClient(ctx, "mobile", func(c *bff.Client) error {
		c.Incarnation, c.CreatedAt, c.Name = "forged", now(), "renamed"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetClient(ctx, "mobile")
	if err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]bff.Client{"UpdateClient's answer": updated, "GetClient after it": got} {
		if c.Incarnation != "first" || !c.CreatedAt.Equal(created) || c.Name != "renamed" {
			t.Errorf("%s: incarnation %q, created %v, name %q; want first, %v, renamed", what, c.Incarnation, c.CreatedAt, c.Name, created)
		}
	}

	if err := s.DeleteClient(ctx, "mobile"); err != nil {
		t.Fatal(err)
	}
	c.Incarnation, c.CreatedAt = "second", now()
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatalf("CreateClient after DeleteClient: %v", err)
	}
	if got, err := s.GetClient(ctx, "mobile"); err != nil || got.Incarnation != "second" {
		t.Errorf("the client created again: incarnation %q, %v; want second", got.Incarnation, err)
	}
	list, err := s.ListClients(ctx)
	if err != nil || len(list) != 1 || list[0].Incarnation != "second" {
		t.Errorf("ListClients after re-creation: %+v, %v", list, err)
	}
}

// testClientSecretRotation: a rotation stores the new hash and the replaced
// one with the end of its grace; the replaced secret authenticates until
// then; a rotation without grace, or a second one, forgets it.
func testClientSecretRotation(t *testing.T, s store.Store) {
	ctx := context.Background()
	oldHash, newHash, newest := []byte("old-hash-32-bytes-old-hash-32-by"), []byte("new-hash-32-bytes-new-hash-32-by"), []byte("newest-32-bytes-newest-32-bytes!")
	at := now()
	c := bff.Client{ID: "backend", SecretHash: oldHash, GrantTypes: []string{bff.GrantClientCredentials},
		TokenType: bff.FormatJWT, CreatedAt: at, UpdatedAt: at, Incarnation: "i"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateClient(ctx, "backend", func(c *bff.Client) error {
		return c.RotateSecret(newHash, at, time.Hour)
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetClient(ctx, "backend")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.SecretHash) != string(newHash) || string(got.PreviousSecretHash) != string(oldHash) ||
		!got.PreviousSecretExpiresAt.Equal(at.Add(time.Hour)) {
		t.Fatalf("after a rotation with grace: secret %q, previous %q until %v", got.SecretHash, got.PreviousSecretHash, got.PreviousSecretExpiresAt)
	}
	for _, c := range []struct {
		hash []byte
		at   time.Time
		want bool
	}{
		{newHash, at.Add(2 * time.Hour), true},
		{oldHash, at.Add(59 * time.Minute), true},
		{oldHash, at.Add(time.Hour), false},
		{newest, at, false},
	} {
		if got.AcceptsSecretHash(c.hash, c.at) != c.want {
			t.Errorf("AcceptsSecretHash(%q, +%s) = %v", c.hash, c.at.Sub(at), !c.want)
		}
	}

	// A second rotation, without grace: only the newest secret works.
	if _, err := s.UpdateClient(ctx, "backend", func(c *bff.Client) error {
		return c.RotateSecret(newest, at, 0)
	}); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetClient(ctx, "backend")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.SecretHash) != string(newest) || got.PreviousSecretHash != nil || !got.PreviousSecretExpiresAt.IsZero() {
		t.Errorf("after a rotation without grace: secret %q, previous %q until %v", got.SecretHash, got.PreviousSecretHash, got.PreviousSecretExpiresAt)
	}
	if got.AcceptsSecretHash(newHash, at) || got.AcceptsSecretHash(oldHash, at) {
		t.Error("a replaced secret still authenticates after a rotation without grace")
	}

	// A public client has no secret to rotate; nothing is stored.
	mustClient(t, s, "mobile")
	_, err = s.UpdateClient(ctx, "mobile", func(c *bff.Client) error { return c.RotateSecret(newHash, at, time.Hour) })
	wantErr(t, "rotating a public client's secret", err, bff.ErrInvalidInput)
	if got, _ := s.GetClient(ctx, "mobile"); got.SecretHash != nil || got.PreviousSecretHash != nil {
		t.Errorf("a public client after a refused rotation: %+v", got)
	}
}

// testTokensOfADeletedIncarnation: a token request that began before its
// client was deleted and created again gets nothing written — the write
// names the incarnation it was issued to — and the deleted client's tokens
// are gone; the client of the id now gets tokens as usual (ADR 0019).
func testTokensOfADeletedIncarnation(t *testing.T, s store.Store) {
	ctx := context.Background()
	client := bff.Client{ID: "mobile", Public: true, GrantTypes: []string{bff.GrantPassword}, TokenType: bff.FormatBearer,
		CreatedAt: now(), UpdatedAt: now(), Incarnation: "first"}
	if err := s.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	exp := now().Add(time.Hour)
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: accessToken("a-first", "f-first", exp), ClientIncarnation: "first"},
		store.CreateRefreshToken{Token: refreshToken("r-first", "f-first", exp), ClientIncarnation: "first"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(ctx, "mobile"); err != nil {
		t.Fatal(err)
	}
	client.Incarnation = "second"
	if err := s.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetAccessToken(ctx, "a-first")
	wantErr(t, "the deleted client's access token", err, bff.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, "r-first")
	wantErr(t, "the deleted client's refresh token", err, bff.ErrNotFound)

	wantErr(t, "an access token of the deleted incarnation, new family", s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: accessToken("a-late", "f-late", exp), ClientIncarnation: "first"},
	}), bff.ErrTokenRevoked)
	wantErr(t, "a refresh token of the deleted incarnation in a batch", s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: accessToken("a-ok", "f-ok", exp), ClientIncarnation: "second"},
		store.CreateRefreshToken{Token: refreshToken("r-late", "f-late2", exp), ClientIncarnation: "first"},
	}), bff.ErrTokenRevoked)
	for _, sig := range []string{"a-late", "a-ok"} {
		_, err := s.GetAccessToken(ctx, sig)
		wantErr(t, "GetAccessToken("+sig+") after a refused batch", err, bff.ErrNotFound)
	}
	_, err = s.GetRefreshToken(ctx, "r-late")
	wantErr(t, "GetRefreshToken(r-late) after a refused batch", err, bff.ErrNotFound)

	if err := s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: accessToken("a-second", "f-second", exp), ClientIncarnation: "second"},
	}); err != nil {
		t.Fatalf("a token of the client's incarnation: %v", err)
	}
	// Not in an existing family either.
	wantErr(t, "a token of the deleted incarnation in a live family", s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: accessToken("a-late2", "f-second", exp), ClientIncarnation: "first"},
	}), bff.ErrTokenRevoked)
}

// testDeleteClientRace: token writes of a client (new families and an
// existing one) race its deletion and re-creation. Each write either
// happens before the deletion, which then takes it away, or is refused;
// no token of the deleted incarnation survives, and nothing deadlocks.
func testDeleteClientRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "rae")
	for i := range 10 {
		first, second := fmt.Sprintf("first-%d", i), fmt.Sprintf("second-%d", i)
		c := bff.Client{ID: "mobile", Public: true, GrantTypes: []string{bff.GrantPassword}, TokenType: bff.FormatBearer,
			CreatedAt: now(), UpdatedAt: now(), Incarnation: first}
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		live := fmt.Sprintf("live-%d", i)
		seed := accessToken("seed-"+live, live, now().Add(time.Hour))
		seed.UserID = u.ID
		if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: seed, ClientIncarnation: first}}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var written []string
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				family := fmt.Sprintf("f-%d-%d", i, w)
				if w%2 == 0 {
					family = live // rotation in a family that exists
				}
				a := accessToken(fmt.Sprintf("a-%d-%d", i, w), family, now().Add(time.Hour))
				a.UserID = u.ID
				r := refreshToken(fmt.Sprintf("r-%d-%d", i, w), family, now().Add(time.Hour))
				r.UserID = u.ID
				err := s.ApplyTokenOps(ctx, []store.TokenOp{
					store.CreateAccessToken{Token: a, ClientIncarnation: first},
					store.CreateRefreshToken{Token: r, ClientIncarnation: first},
				})
				switch {
				case err == nil:
					mu.Lock()
					written = append(written, a.Signature)
					mu.Unlock()
				case errors.Is(err, bff.ErrTokenRevoked), errors.Is(err, bff.ErrNotFound):
				default:
					t.Errorf("round %d: a token write racing the deletion: %v", i, err)
				}
			}()
		}
		if err := s.DeleteClient(ctx, "mobile"); err != nil {
			t.Fatal(err)
		}
		c.Incarnation = second
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for _, sig := range append(written, seed.Signature) {
			if _, err := s.GetAccessToken(ctx, sig); !errors.Is(err, bff.ErrNotFound) {
				t.Errorf("round %d: token %s of the deleted incarnation survived (%v)", i, sig, err)
			}
		}
		if err := s.DeleteClient(ctx, "mobile"); err != nil {
			t.Fatal(err)
		}
	}
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustUser(t, s, "Alice")
	b := mustUser(t, s, "bob")
	if a.ID <= 0 || b.ID <= 0 || a.ID == b.ID {
		t.Fatalf("ids not assigned: %d, %d", a.ID, b.ID)
	}
	if a.CreatedAt.IsZero() {
		t.Error("CreatedAt not set")
	}
	got, err := s.GetUser(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got, timeOpts); diff != "" {
		t.Errorf("GetUser mismatch (-want +got):\n%s", diff)
	}
	for _, login := range []string{"alice", "ALICE", "alice@EXAMPLE.com"} {
		got, err := s.GetUserByLogin(ctx, login)
		if err != nil || got.ID != a.ID {
			t.Errorf("GetUserByLogin(%q) = %d, %v; want %d", login, got.ID, err, a.ID)
		}
	}
	_, err = s.GetUserByLogin(ctx, "carol")
	wantErr(t, "GetUserByLogin(carol)", err, bff.ErrNotFound)
	_, err = s.GetUser(ctx, 999999)
	wantErr(t, "GetUser(999999)", err, bff.ErrNotFound)

	_, err = s.CreateUser(ctx, bff.User{Username: "ALICE", Email: "other@example.com"})
	wantErr(t, "duplicate username", err, bff.ErrConflict)
	_, err = s.CreateUser(ctx, bff.User{Username: "alice2", Email: "Alice@Example.com"})
	wantErr(t, "duplicate email", err, bff.ErrConflict)
}

// testLoginNamespace: usernames and emails are one case-insensitive
// namespace (ADR 0021), so a login names at most one user and a username
// cannot capture another account's email.
func testLoginNamespace(t *testing.T, s store.Store) {
	ctx := context.Background()
	bob := mustUser(t, s, "bob") // bob@example.com
	for _, u := range []bff.User{
		{Username: "bob@example.com", Email: "mallory@example.com"}, // username = another's email
		{Username: "BOB@Example.COM", Email: "mallory@example.com"},
		{Username: "mallory", Email: "BOB"},             // email = another's username
		{Username: "mallory", Email: "bob@EXAMPLE.com"}, // email = another's email
		{Username: "Bob", Email: "mallory@example.com"}, // username = another's username
	} {
		_, err := s.CreateUser(ctx, u)
		wantErr(t, fmt.Sprintf("CreateUser(%q, %q)", u.Username, u.Email), err, bff.ErrConflict)
		if !errors.Is(err, bff.ErrLoginTaken) {
			t.Errorf("CreateUser(%q, %q): %v, want ErrLoginTaken", u.Username, u.Email, err)
		}
	}
	// A refused user left nothing behind: its free key is still free.
	m, err := s.CreateUser(ctx, bff.User{Username: "mallory", Email: "mallory@example.com"})
	if err != nil {
		t.Fatalf("CreateUser(mallory) after refused collisions: %v", err)
	}
	for login, want := range map[string]int64{"bob": bob.ID, "BOB@example.com": bob.ID, "Mallory": m.ID, "MALLORY@example.com": m.ID} {
		if got, err := s.GetUserByLogin(ctx, login); err != nil || got.ID != want {
			t.Errorf("GetUserByLogin(%q) = %d, %v; want %d", login, got.ID, err, want)
		}
	}
	// A username may be its own email (accounts imported from edX).
	self, err := s.CreateUser(ctx, bff.User{Username: "Self@example.com", Email: "self@example.com"})
	if err != nil {
		t.Fatalf("username equal to its own email: %v", err)
	}
	if got, err := s.GetUserByLogin(ctx, "SELF@EXAMPLE.COM"); err != nil || got.ID != self.ID {
		t.Errorf("GetUserByLogin(SELF@EXAMPLE.COM) = %d, %v", got.ID, err)
	}
	// Only ASCII letters fold, the same in every store and collation: the
	// Kelvin sign is not "k", and É is not é.
	k, err := s.CreateUser(ctx, bff.User{Username: "\u212Aim", Email: "\u00c9mile@example.com"})
	if err != nil {
		t.Fatalf("non-ASCII case variant: %v", err)
	}
	e, err := s.CreateUser(ctx, bff.User{Username: "kim", Email: "\u00e9mile@example.com"})
	if err != nil {
		t.Fatalf("ASCII spelling beside a non-ASCII one: %v", err)
	}
	for login, want := range map[string]int64{"\u212Aim": k.ID, "KIM": e.ID, "\u00c9MILE@example.com": k.ID, "\u00e9mile@EXAMPLE.com": e.ID} {
		if got, err := s.GetUserByLogin(ctx, login); err != nil || got.ID != want {
			t.Errorf("GetUserByLogin(%q) = %d, %v; want %d", login, got.ID, err, want)
		}
	}
	// Concurrent creations of one key: exactly one wins.
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = s.CreateUser(ctx, bff.User{Username: fmt.Sprintf("racer%d", i), Email: "Race@example.com"})
		}()
	}
	wg.Wait()
	oneWins(t, "concurrent creations of one email", results, bff.ErrConflict)
}

func testUserLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	u := mustUser(t, s, "dave")
	other := mustUser(t, s, "erin")
	issue := func(family string, userID int64, jti string) (string, string) {
		at := now()
		a := bff.AccessToken{Signature: "a-" + family, FamilyID: family, JTI: jti, Format: bff.FormatJWT,
			ClientID: "mobile", UserID: userID, GrantType: bff.GrantPassword, IssuedAt: at,
			ExpiresAt: at.Add(time.Hour), Request: []byte(`{}`)}
		if jti == "" {
			a.Format = bff.FormatBearer
		}
		r := bff.RefreshToken{Signature: "r-" + family, FamilyID: family, AccessSignature: a.Signature,
			ClientID: "mobile", UserID: userID, GrantType: bff.GrantPassword, IssuedAt: at,
			ExpiresAt: at.Add(24 * time.Hour), Request: []byte(`{}`)}
		if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: a}, store.CreateRefreshToken{Token: r}}); err != nil {
			t.Fatal(err)
		}
		return a.Signature, r.Signature
	}
	a1, r1 := issue("f1", u.ID, "jti-1")
	a2, _ := issue("f2", u.ID, "")
	a3, r3 := issue("f3", other.ID, "jti-3")

	at := now()
	d, err := s.SetUserDisabled(ctx, u.ID, true, "admin:test", at)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Disabled || d.DisabledAt == nil {
		t.Fatalf("SetUserDisabled returned %+v", d)
	}
	for _, sig := range []string{a1, a2} {
		tok, err := s.GetAccessToken(ctx, sig)
		if err != nil || tok.RevokedAt == nil {
			t.Errorf("access token %s after disable: revoked=%v err=%v", sig, tok.RevokedAt, err)
		}
	}
	if tok, _ := s.GetRefreshToken(ctx, r1); tok.RevokedAt == nil {
		t.Error("refresh token survived disable")
	}
	if revoked, _ := s.IsJTIRevoked(ctx, "jti-1"); !revoked {
		t.Error("JWT id of disabled user not revoked")
	}
	// Another user's tokens stay.
	if tok, _ := s.GetAccessToken(ctx, a3); tok.RevokedAt != nil {
		t.Error("other user's access token revoked")
	}
	if tok, _ := s.GetRefreshToken(ctx, r3); tok.RevokedAt != nil {
		t.Error("other user's refresh token revoked")
	}
	if revoked, _ := s.IsJTIRevoked(ctx, "jti-3"); revoked {
		t.Error("other user's JWT id revoked")
	}

	e, err := s.SetUserDisabled(ctx, u.ID, false, "admin:test", at.Add(time.Second))
	if err != nil || e.Disabled || e.DisabledAt != nil {
		t.Fatalf("enable: %+v, %v", e, err)
	}
	if tok, _ := s.GetAccessToken(ctx, a1); tok.RevokedAt == nil {
		t.Error("enable brought a revoked token back")
	}

	if err := s.SetUserPassword(ctx, other.ID, "$argon2id$new", "admin:test", at); err != nil {
		t.Fatal(err)
	}
	if tok, _ := s.GetAccessToken(ctx, a3); tok.RevokedAt == nil {
		t.Error("password change left the access token active")
	}
	got, _ := s.GetUser(ctx, other.ID)
	if got.PasswordHash != "$argon2id$new" {
		t.Errorf("password hash = %q", got.PasswordHash)
	}
	wantErr(t, "SetUserPassword(unknown)", s.SetUserPassword(ctx, 999999, "x", "a", at), bff.ErrNotFound)
	_, err = s.SetUserDisabled(ctx, 999999, true, "a", at)
	wantErr(t, "SetUserDisabled(unknown)", err, bff.ErrNotFound)

	events, err := s.ListAuditEvents(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range events {
		actions = append(actions, ev.Action+"/"+ev.Actor)
	}
	if diff := cmp.Diff([]string{"disable/admin:test", "enable/admin:test"}, actions); diff != "" {
		t.Errorf("audit trail (-want +got):\n%s", diff)
	}
}

func testKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := now()
	key := func(kid string, at time.Time) bff.SigningKey {
		return bff.SigningKey{KID: kid, Algorithm: "ES256", PrivateKey: []byte("sealed-" + kid),
			PublicJWK: []byte(`{"kid":"` + kid + `","kty":"EC"}`), CreatedAt: at}
	}
	wantErr(t, "rotate without keys", s.RotateSigningKeys(ctx, key("x", t0), t0), bff.ErrNotFound)
	if err := s.InitSigningKeys(ctx, key("k1", t0), key("k2", t0.Add(time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second init", s.InitSigningKeys(ctx, key("k8", t0), key("k9", t0)), bff.ErrConflict)
	if err := s.RotateSigningKeys(ctx, key("k3", t0.Add(2*time.Millisecond)), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]bff.KeyState{}
	for _, k := range keys {
		states[k.KID] = k.State
	}
	want := map[string]bff.KeyState{"k1": bff.KeyRetired, "k2": bff.KeyCurrent, "k3": bff.KeyNext}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Fatalf("states after rotation (-want +got):\n%s", diff)
	}
	if keys[0].KID != "k3" {
		t.Errorf("keys not newest first: %s first", keys[0].KID)
	}
	for _, k := range keys {
		if string(k.PrivateKey) != "sealed-"+k.KID {
			t.Errorf("private key of %s = %q", k.KID, k.PrivateKey)
		}
		var jwk map[string]string
		if err := json.Unmarshal(k.PublicJWK, &jwk); err != nil || jwk["kid"] != k.KID {
			t.Errorf("public jwk of %s = %s (%v)", k.KID, k.PublicJWK, err)
		}
		switch k.KID {
		case "k1":
			if k.RetiredAt == nil {
				t.Error("retired key without RetiredAt")
			}
		case "k2":
			if k.ActivatedAt == nil {
				t.Error("current key without ActivatedAt")
			}
		}
	}
	wantErr(t, "rotate to an existing kid", s.RotateSigningKeys(ctx, key("k2", t0), t0), bff.ErrConflict)
	keys, _ = s.ListSigningKeys(ctx)
	if len(keys) != 3 {
		t.Errorf("failed rotation changed the keys: %d keys", len(keys))
	}
}

// namesAccessToken checks that sig, a signature the store gave back (a
// refresh token's access signature, the signature of a JWT's record found
// by its id), names the access token want: it is want's signature or a
// form of it the store takes as the same (store.Tokens).
func namesAccessToken(t *testing.T, s store.Store, what, sig string, want bff.AccessToken) {
	t.Helper()
	ctx := context.Background()
	got, err := s.GetAccessToken(ctx, sig)
	if err != nil {
		t.Fatalf("%s %q finds no access token: %v", what, sig, err)
	}
	byOwn, err := s.GetAccessToken(ctx, want.Signature)
	if err != nil {
		t.Fatal(err)
	}
	got.Signature = byOwn.Signature
	if diff := cmp.Diff(byOwn, got, timeOpts, jsonEqual); diff != "" || got.FamilyID != want.FamilyID || got.JTI != want.JTI {
		t.Errorf("%s %q finds another access token than %q (-by its own +by it):\n%s", what, sig, want.Signature, diff)
	}
}

func accessToken(sig, family string, exp time.Time) bff.AccessToken {
	return bff.AccessToken{Signature: sig, FamilyID: family, Format: bff.FormatBearer, ClientID: "mobile",
		GrantType: bff.GrantPassword, Scopes: []string{"read"}, IssuedAt: now(), ExpiresAt: exp,
		Request: []byte(`{"id":"` + family + `"}`)}
}

func refreshToken(sig, family string, exp time.Time) bff.RefreshToken {
	return bff.RefreshToken{Signature: sig, FamilyID: family, AccessSignature: "a", ClientID: "mobile",
		GrantType: bff.GrantPassword, Scopes: []string{"read"}, IssuedAt: now(), ExpiresAt: exp,
		Request: []byte(`{"id":"` + family + `"}`)}
}

// jsonEqual compares the serialized requests by meaning: PostgreSQL's jsonb
// does not keep the bytes.
var jsonEqual = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Request" },
	cmp.Comparer(func(a, b []byte) bool {
		var x, y any
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
	}))

func testTokenRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	u := mustUser(t, s, "frank")
	exp := now().Add(time.Hour)
	a := accessToken("sig-a", "fam", exp)
	a.UserID, a.JTI, a.Format = u.ID, "jti-a", bff.FormatJWT
	a.JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" // DPoP-bound (RFC 9449)
	r := refreshToken("sig-r", "fam", exp.Add(time.Hour))
	r.UserID, r.AccessSignature = u.ID, "sig-a"
	r.JKT = a.JKT
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: a}, store.CreateRefreshToken{Token: r}}); err != nil {
		t.Fatal(err)
	}
	gotA, err := s.GetAccessToken(ctx, "sig-a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, gotA, timeOpts, jsonEqual); diff != "" {
		t.Errorf("GetAccessToken (-want +got):\n%s", diff)
	}
	gotR, err := s.GetRefreshToken(ctx, "sig-r")
	if err != nil {
		t.Fatal(err)
	}
	namesAccessToken(t, s, "the refresh token's access signature", gotR.AccessSignature, a)
	r.AccessSignature = gotR.AccessSignature
	if diff := cmp.Diff(r, gotR, timeOpts, jsonEqual); diff != "" {
		t.Errorf("GetRefreshToken (-want +got):\n%s", diff)
	}
	_, err = s.GetAccessToken(ctx, "nope")
	wantErr(t, "GetAccessToken(nope)", err, bff.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, "nope")
	wantErr(t, "GetRefreshToken(nope)", err, bff.ErrNotFound)

	// Client-credentials tokens have no user.
	cc := accessToken("sig-cc", "fam-cc", exp)
	cc.GrantType = bff.GrantClientCredentials
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: cc}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAccessToken(ctx, "sig-cc"); err != nil || got.UserID != 0 {
		t.Errorf("client-credentials token: user %d, %v", got.UserID, err)
	}
}

func testTokenRevocation(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	exp := now().Add(time.Hour)
	j1 := accessToken("jwt-1", "fam", exp)
	j1.JTI, j1.Format = "jti-1", bff.FormatJWT
	j2 := accessToken("jwt-2", "fam", exp)
	j2.JTI, j2.Format = "jti-2", bff.FormatJWT
	other := accessToken("jwt-3", "other", exp)
	other.JTI, other.Format = "jti-3", bff.FormatJWT
	err := s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: j1}, store.CreateAccessToken{Token: j2},
		store.CreateRefreshToken{Token: refreshToken("rt-1", "fam", exp)},
		store.CreateAccessToken{Token: other},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Revoking one access token revokes it alone.
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeAccessToken{Signature: "jwt-1", At: now()}}); err != nil {
		t.Fatal(err)
	}
	revoked := func(jti string) bool {
		ok, err := s.IsJTIRevoked(ctx, jti)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !revoked("jti-1") || revoked("jti-2") {
		t.Errorf("after revoking jwt-1: jti-1=%v jti-2=%v", revoked("jti-1"), revoked("jti-2"))
	}
	if tok, _ := s.GetAccessToken(ctx, "jwt-2"); tok.RevokedAt != nil {
		t.Error("sibling access token revoked")
	}
	// Revoking the family revokes everything in it, and nothing else.
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeFamily{FamilyID: "fam", At: now()}}); err != nil {
		t.Fatal(err)
	}
	if !revoked("jti-2") || revoked("jti-3") {
		t.Errorf("after revoking the family: jti-2=%v jti-3=%v", revoked("jti-2"), revoked("jti-3"))
	}
	if tok, _ := s.GetRefreshToken(ctx, "rt-1"); tok.RevokedAt == nil {
		t.Error("refresh token of revoked family is active")
	}
	if tok, _ := s.GetAccessToken(ctx, "jwt-3"); tok.RevokedAt != nil {
		t.Error("other family revoked")
	}
	// A JWT id can be denied without a stored token; unknown families are a no-op.
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{
		store.RevokeJTI{JTI: "unstored", ExpiresAt: exp},
		store.RevokeFamily{FamilyID: "no-such-family", At: now()},
	}); err != nil {
		t.Fatal(err)
	}
	if !revoked("unstored") {
		t.Error("RevokeJTI had no effect")
	}
	// Revoking twice is fine.
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeAccessToken{Signature: "jwt-1", At: now()}}); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	err = s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeAccessToken{Signature: "nope", At: now()}})
	wantErr(t, "revoke unknown access token", err, bff.ErrNotFound)
	err = s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeRefreshToken{Signature: "nope", At: now()}})
	wantErr(t, "revoke unknown refresh token", err, bff.ErrNotFound)
}

func testTokenOpsAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	exp := now().Add(time.Hour)
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: accessToken("taken", "f0", exp)}}); err != nil {
		t.Fatal(err)
	}
	// The last op fails: none of the batch may be stored.
	err := s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: accessToken("new-a", "f1", exp)},
		store.CreateRefreshToken{Token: refreshToken("new-r", "f1", exp)},
		store.RevokeFamily{FamilyID: "f0", At: now()},
		store.CreateAccessToken{Token: accessToken("taken", "f1", exp)},
	})
	wantErr(t, "batch with a duplicate signature", err, bff.ErrConflict)
	if _, err := s.GetAccessToken(ctx, "new-a"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("partial batch stored an access token: %v", err)
	}
	if _, err := s.GetRefreshToken(ctx, "new-r"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("partial batch stored a refresh token: %v", err)
	}
	if tok, _ := s.GetAccessToken(ctx, "taken"); tok.RevokedAt != nil {
		t.Error("partial batch revoked a family")
	}
	// A token of an unknown client is refused.
	bad := accessToken("orphan", "f2", exp)
	bad.ClientID = "ghost"
	err = s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bad}})
	wantErr(t, "token of unknown client", err, bff.ErrNotFound)
}

func testRefreshRotation(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	exp := now().Add(time.Hour)
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateRefreshToken{Token: refreshToken("rt", "fam", exp)}}); err != nil {
		t.Fatal(err)
	}
	first := now()
	for i, at := range []time.Time{first, first.Add(5 * time.Second)} {
		if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.MarkRefreshRotated{Signature: "rt", At: at}}); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	got, _ := s.GetRefreshToken(ctx, "rt")
	if got.RotatedAt == nil || !got.RotatedAt.Equal(first) {
		t.Errorf("RotatedAt = %v, want the first rotation %v", got.RotatedAt, first)
	}
	if got.RevokedAt != nil {
		t.Error("rotation revoked the token")
	}
	err := s.ApplyTokenOps(ctx, []store.TokenOp{store.MarkRefreshRotated{Signature: "nope", At: first}})
	wantErr(t, "rotate unknown", err, bff.ErrNotFound)
}

func testPrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	past, future := now().Add(-time.Hour), now().Add(time.Hour)
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: accessToken("old", "f-old", past)},
		store.CreateAccessToken{Token: accessToken("new", "f-new", future)},
		store.CreateRefreshToken{Token: refreshToken("old-rt", "f-old", past)},
		store.RevokeJTI{JTI: "old-jti", ExpiresAt: past},
		store.RevokeJTI{JTI: "new-jti", ExpiresAt: future},
	}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneTokens(ctx, now())
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Errorf("PruneTokens removed %d rows, want at least 3", n)
	}
	if _, err := s.GetAccessToken(ctx, "old"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("expired access token kept: %v", err)
	}
	if _, err := s.GetRefreshToken(ctx, "old-rt"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("expired refresh token kept: %v", err)
	}
	if _, err := s.GetAccessToken(ctx, "new"); err != nil {
		t.Errorf("live access token pruned: %v", err)
	}
	if r, _ := s.IsJTIRevoked(ctx, "new-jti"); !r {
		t.Error("unexpired revoked jti pruned")
	}
	if r, _ := s.IsJTIRevoked(ctx, "old-jti"); r {
		t.Error("expired revoked jti kept")
	}
}

func testLoginThrottle(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := now()
	if n, _, err := s.LoginFailures(ctx, "k"); err != nil || n != 0 {
		t.Fatalf("fresh key: %d, %v", n, err)
	}
	for i := 1; i <= 3; i++ {
		n, start, err := s.RecordLoginFailure(ctx, "k", t0.Add(time.Duration(i)*time.Second), time.Minute)
		if err != nil || n != i || !start.Equal(t0.Add(time.Second)) {
			t.Fatalf("failure %d: count %d start %v err %v", i, n, start, err)
		}
	}
	n, start, _ := s.LoginFailures(ctx, "k")
	if n != 3 || !start.Equal(t0.Add(time.Second)) {
		t.Errorf("LoginFailures = %d since %v", n, start)
	}
	// A failure after the window opens a new one.
	later := t0.Add(2 * time.Minute)
	n, start, _ = s.RecordLoginFailure(ctx, "k", later, time.Minute)
	if n != 1 || !start.Equal(later) {
		t.Errorf("after the window: count %d start %v", n, start)
	}
	if err := s.ResetLoginFailures(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.LoginFailures(ctx, "k"); n != 0 {
		t.Errorf("after reset: %d", n)
	}
	// Concurrent failures all count.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.RecordLoginFailure(ctx, "busy", t0, time.Hour); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, _, _ := s.LoginFailures(ctx, "busy"); n != 20 {
		t.Errorf("20 concurrent failures counted as %d", n)
	}
	testForgiveLoginFailure(t, s)
}

// testForgiveLoginFailure: a failure is taken back only from the window
// that counted it, never below zero, and concurrent records and forgives
// all count.
func testForgiveLoginFailure(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := now()
	count := func(key string) int {
		t.Helper()
		n, _, err := s.LoginFailures(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := s.ForgiveLoginFailure(ctx, "never", t0); err != nil || count("never") != 0 {
		t.Fatalf("forgiving a key without failures: %v, count %d", err, count("never"))
	}
	var start time.Time
	for i := 0; i < 3; i++ {
		_, start, _ = s.RecordLoginFailure(ctx, "f", t0, time.Minute)
	}
	if err := s.ForgiveLoginFailure(ctx, "f", start); err != nil {
		t.Fatal(err)
	}
	if n := count("f"); n != 2 {
		t.Errorf("3 failures, 1 forgiven: %d", n)
	}
	if err := s.ForgiveLoginFailure(ctx, "f", start.Add(-time.Second)); err != nil || count("f") != 2 {
		t.Errorf("forgiving in another window changed the count: %v, %d", err, count("f"))
	}
	for i := 0; i < 5; i++ {
		if err := s.ForgiveLoginFailure(ctx, "f", start); err != nil {
			t.Fatal(err)
		}
	}
	if n := count("f"); n != 0 {
		t.Errorf("forgiving more than counted: %d, want 0", n)
	}
	// A window whose failures were all forgiven is over: the next failure
	// opens a new one at its own time, with a count of 1.
	next := t0.Add(10 * time.Second)
	if n, st, err := s.RecordLoginFailure(ctx, "f", next, time.Minute); err != nil || n != 1 || !st.Equal(next) {
		t.Errorf("failure after everything was forgiven: count %d start %v (want %v) err %v", n, st, next, err)
	}
	// A failure of an older window is not taken from a newer one.
	_, old, _ := s.RecordLoginFailure(ctx, "g", t0, time.Minute)
	later := t0.Add(2 * time.Minute)
	s.RecordLoginFailure(ctx, "g", later, time.Minute)
	if err := s.ForgiveLoginFailure(ctx, "g", old); err != nil || count("g") != 1 {
		t.Errorf("forgiving an expired window's failure: %v, count %d, want 1", err, count("g"))
	}

	// Concurrently: 20 counted, then 10 more recorded while 10 are
	// forgiven: 20. Then 40 forgives of 20 failures: 0, never below.
	var start2 time.Time
	for i := 0; i < 20; i++ {
		_, start2, _ = s.RecordLoginFailure(ctx, "c", t0, time.Hour)
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, _, err := s.RecordLoginFailure(ctx, "c", t0, time.Hour); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := s.ForgiveLoginFailure(ctx, "c", start2); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := count("c"); n != 20 {
		t.Errorf("20 failures, then 10 recorded and 10 forgiven concurrently: %d", n)
	}
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ForgiveLoginFailure(ctx, "c", start2); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := count("c"); n != 0 {
		t.Errorf("20 failures, 40 concurrent forgives: %d, want 0", n)
	}
}

func testDeleteClientCascades(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	mustClient(t, s, "keep")
	exp := now().Add(time.Hour)
	keep := accessToken("keep-a", "f-keep", exp)
	keep.ClientID = "keep"
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{
		store.CreateAccessToken{Token: accessToken("a", "f", exp)},
		store.CreateRefreshToken{Token: refreshToken("r", "f", exp)},
		store.CreateAccessToken{Token: keep},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(ctx, "mobile"); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []string{"a"} {
		if _, err := s.GetAccessToken(ctx, sig); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("access token %s of deleted client: %v", sig, err)
		}
	}
	if _, err := s.GetRefreshToken(ctx, "r"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("refresh token of deleted client: %v", err)
	}
	if _, err := s.GetAccessToken(ctx, "keep-a"); err != nil {
		t.Errorf("other client's token: %v", err)
	}
}

// testUnstorableLookups: values no row can hold (NUL, invalid UTF-8) come
// from attackers; looking them up finds nothing rather than failing.
func testUnstorableLookups(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, v := range []string{"a\x00b", "\xff\xfe", "ok\x00"} {
		if _, err := s.GetClient(ctx, v); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("GetClient(%q): %v", v, err)
		}
		if _, err := s.GetUserByLogin(ctx, v); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("GetUserByLogin(%q): %v", v, err)
		}
		if _, err := s.GetAccessToken(ctx, v); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("GetAccessToken(%q): %v", v, err)
		}
		if _, err := s.GetRefreshToken(ctx, v); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("GetRefreshToken(%q): %v", v, err)
		}
		if revoked, err := s.IsJTIRevoked(ctx, v); err != nil || revoked {
			t.Errorf("IsJTIRevoked(%q) = %v, %v", v, revoked, err)
		}
		if _, err := s.UpdateClient(ctx, v, func(*bff.Client) error { return nil }); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("UpdateClient(%q): %v", v, err)
		}
		if err := s.DeleteClient(ctx, v); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("DeleteClient(%q): %v", v, err)
		}
	}
}

func newSession(id string, userID int64, created time.Time, ttl time.Duration) bff.Session {
	return bff.Session{ID: id, UserID: userID, ClientID: "mobile", GrantType: bff.GrantPassword,
		Format: bff.FormatJWT, Scopes: []string{"read", "payments"}, CreatedAt: created, ExpiresAt: created.Add(ttl)}
}

func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	u := mustUser(t, s, "sam")
	t0 := now()
	first := newSession("sess-1", u.ID, t0, time.Hour)
	first.TokenIssuedAt = t0.Add(-time.Minute) // kept: a browser sign-in session's sign-in time
	got, err := s.EnsureSession(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, got, timeOpts); diff != "" {
		t.Errorf("EnsureSession (-want +got):\n%s", diff)
	}
	if got, err := s.GetSession(ctx, "sess-1"); err != nil {
		t.Fatal(err)
	} else if diff := cmp.Diff(first, got, timeOpts); diff != "" {
		t.Errorf("GetSession (-want +got):\n%s", diff)
	}
	// The same id again, while live: the stored session is kept.
	again, err := s.EnsureSession(ctx, newSession("sess-1", u.ID, t0.Add(time.Minute), time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !again.CreatedAt.Equal(t0) {
		t.Errorf("a live session was replaced: created %v, want %v", again.CreatedAt, t0)
	}
	// Concurrent logins with the same token end with the one session.
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.EnsureSession(ctx, newSession("sess-1", u.ID, t0.Add(2*time.Minute), time.Hour))
			if err != nil || !got.CreatedAt.Equal(t0) {
				t.Errorf("concurrent EnsureSession: %v, %v", got.CreatedAt, err)
			}
		}()
	}
	wg.Wait()
	// After expiry, the id starts a new session.
	later := t0.Add(2 * time.Hour)
	renewed, err := s.EnsureSession(ctx, newSession("sess-1", u.ID, later, time.Hour))
	if err != nil || !renewed.CreatedAt.Equal(later) {
		t.Errorf("EnsureSession after expiry: created %v, %v", renewed.CreatedAt, err)
	}
	if got, err := s.GetSession(ctx, "sess-1"); err != nil || !got.ExpiresAt.Equal(later.Add(time.Hour)) {
		t.Errorf("GetSession: %+v, %v", got, err)
	}
	_, err = s.GetSession(ctx, "nope")
	wantErr(t, "GetSession(nope)", err, bff.ErrNotFound)
	_, err = s.EnsureSession(ctx, newSession("sess-x", 999999, t0, time.Hour))
	wantErr(t, "session of an unknown user", err, bff.ErrNotFound)

	if err := s.DeleteSession(ctx, "sess-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, "sess-1"); err != nil {
		t.Errorf("deleting a missing session: %v", err)
	}
	_, err = s.GetSession(ctx, "sess-1")
	wantErr(t, "GetSession after delete", err, bff.ErrNotFound)

	// Expired sessions are pruned.
	if _, err := s.EnsureSession(ctx, newSession("old", u.ID, t0.Add(-2*time.Hour), time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureSession(ctx, newSession("live", u.ID, t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneTokens(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "old"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("expired session kept: %v", err)
	}
	if _, err := s.GetSession(ctx, "live"); err != nil {
		t.Errorf("live session pruned: %v", err)
	}
	// Revoking a token family ends the sessions made from it, and no other.
	fromFamily := newSession("from-family", u.ID, t0, time.Hour)
	fromFamily.FamilyID = "fam-s"
	if _, err := s.EnsureSession(ctx, fromFamily); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSession(ctx, "from-family"); got.FamilyID != "fam-s" {
		t.Errorf("FamilyID = %q", got.FamilyID)
	}
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeFamily{FamilyID: "fam-s", At: t0}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "from-family"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("session of a revoked family: %v", err)
	}
	if _, err := s.GetSession(ctx, "live"); err != nil {
		t.Errorf("session of another family: %v", err)
	}
	// Ending one session (its token was revoked) ends that one, in the
	// batch of the revocation; an unknown id is no error.
	if _, err := s.EnsureSession(ctx, newSession("from-token", u.ID, t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.EndSession{ID: "from-token"}, store.EndSession{ID: "nope"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "from-token"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("session of a revoked token: %v", err)
	}
	if _, err := s.GetSession(ctx, "live"); err != nil {
		t.Errorf("another session after EndSession: %v", err)
	}
	// Deleting the client ends its sessions.
	if err := s.DeleteClient(ctx, "mobile"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "live"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("session of a deleted client: %v", err)
	}
}

func testSessionsEndWithAccount(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	a, b := mustUser(t, s, "tina"), mustUser(t, s, "uma")
	for _, sess := range []bff.Session{newSession("a1", a.ID, now(), time.Hour), newSession("a2", a.ID, now(), time.Hour),
		newSession("b1", b.ID, now(), time.Hour)} {
		if _, err := s.EnsureSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetUserDisabled(ctx, a.ID, true, "test", now()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2"} {
		if _, err := s.GetSession(ctx, id); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("session %s of a disabled user: %v", id, err)
		}
	}
	if _, err := s.GetSession(ctx, "b1"); err != nil {
		t.Errorf("another user's session: %v", err)
	}
	if err := s.SetUserPassword(ctx, b.ID, "$argon2id$z", "test", now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "b1"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("session after a password change: %v", err)
	}
}

func testEndedSessionsStayEnded(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	u := mustUser(t, s, "yara")
	t0 := now()
	if _, err := s.EnsureSession(ctx, newSession("s1", u.ID, t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetSession(ctx, "s1")
	wantErr(t, "GetSession of an ended session", err, bff.ErrNotFound)
	_, err = s.EnsureSession(ctx, newSession("s1", u.ID, t0.Add(time.Minute), time.Hour))
	wantErr(t, "EnsureSession of an ended live session", err, bff.ErrTokenRevoked)
	// Once it has expired, the id may start a new session.
	if _, err := s.EnsureSession(ctx, newSession("s1", u.ID, t0.Add(2*time.Hour), time.Hour)); err != nil {
		t.Errorf("EnsureSession after the ended session expired: %v", err)
	}
}

// testTokenGuards: no token or session is created for a revoked family, a
// disabled user, or a family authenticated before the user's last password
// change.
func testTokenGuards(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	u := mustUser(t, s, "zoe")
	t0 := now().Add(-time.Minute)
	tok := func(sig, family string, auth time.Time) bff.AccessToken {
		a := accessToken(sig, family, now().Add(time.Hour))
		a.UserID, a.AuthTime = u.ID, auth
		return a
	}
	create := func(t bff.AccessToken) error {
		return s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: t}})
	}
	if err := create(tok("a1", "f1", t0)); err != nil {
		t.Fatal(err)
	}
	reset := now()
	if err := s.SetUserPassword(ctx, u.ID, "$argon2id$new", "test", reset); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetUser(ctx, u.ID)
	if got.TokensValidAfter == nil || !got.TokensValidAfter.Equal(reset) {
		t.Errorf("TokensValidAfter = %v, want %v", got.TokensValidAfter, reset)
	}
	wantErr(t, "a token in a family the reset revoked", create(tok("a2", "f1", t0)), bff.ErrTokenRevoked)
	wantErr(t, "a new family authenticated before the reset", create(tok("a3", "f2", t0)), bff.ErrTokenRevoked)
	if err := create(tok("a4", "f3", reset.Add(time.Second))); err != nil {
		t.Errorf("a new family authenticated after the reset: %v", err)
	}
	sess := newSession("s-old", u.ID, now(), time.Hour)
	sess.TokenIssuedAt = t0
	_, err := s.EnsureSession(ctx, sess)
	wantErr(t, "a session for a token issued before the reset", err, bff.ErrTokenRevoked)
	sess = newSession("s-new", u.ID, now(), time.Hour)
	sess.TokenIssuedAt, sess.FamilyID = reset.Add(time.Second), "f3"
	if _, err := s.EnsureSession(ctx, sess); err != nil {
		t.Errorf("a session for a token issued after the reset: %v", err)
	}
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeFamily{FamilyID: "f3", At: now()}}); err != nil {
		t.Fatal(err)
	}
	sess = newSession("s-rev", u.ID, now(), time.Hour)
	sess.TokenIssuedAt, sess.FamilyID = reset.Add(time.Second), "f3"
	_, err = s.EnsureSession(ctx, sess)
	wantErr(t, "a session for a token of a revoked family", err, bff.ErrTokenRevoked)

	if _, err := s.SetUserDisabled(ctx, u.ID, true, "test", now()); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "a token of a disabled user", create(tok("a5", "f4", now().Add(time.Minute))), bff.ErrAccountDisabled)
	sess = newSession("s-dis", u.ID, now(), time.Hour)
	sess.TokenIssuedAt = now().Add(time.Minute)
	_, err = s.EnsureSession(ctx, sess)
	wantErr(t, "a session of a disabled user", err, bff.ErrAccountDisabled)
	// Client-credentials families have no user to check.
	cc := accessToken("cc", "f-cc", now().Add(time.Hour))
	if err := create(cc); err != nil {
		t.Errorf("client-credentials token: %v", err)
	}
}

// testTokenGuardsPrecision: the precision of the reset rules, the same in
// every store (bff.User.AcceptsAuthenticatedAt, AcceptsTokenIssuedAt): a
// family's auth time is compared exactly, a session's token issue time
// (a JWT's iat) at whole seconds.
func testTokenGuardsPrecision(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	u := mustUser(t, s, "ugo")
	reset := now().Truncate(time.Second).Add(500 * time.Millisecond)
	if err := s.SetUserPassword(ctx, u.ID, "$argon2id$new", "test", reset); err != nil {
		t.Fatal(err)
	}
	create := func(sig, family string, auth time.Time) error {
		a := accessToken(sig, family, now().Add(time.Hour))
		a.UserID, a.AuthTime = u.ID, auth
		return s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: a}})
	}
	wantErr(t, "a family authenticated a millisecond before the reset, in its second",
		create("p1", "pf1", reset.Add(-time.Millisecond)), bff.ErrTokenRevoked)
	if err := create("p2", "pf2", reset); err != nil {
		t.Errorf("a family authenticated at the reset: %v", err)
	}
	sess := newSession("s-iat", u.ID, now(), time.Hour)
	sess.TokenIssuedAt = reset.Truncate(time.Second) // an iat in the reset's second
	if _, err := s.EnsureSession(ctx, sess); err != nil {
		t.Errorf("a session for a token whose iat is the reset's second: %v", err)
	}
	sess = newSession("s-iat-old", u.ID, now(), time.Hour)
	sess.TokenIssuedAt = reset.Truncate(time.Second).Add(-time.Second)
	_, err := s.EnsureSession(ctx, sess)
	wantErr(t, "a session for a token whose iat is the second before the reset's", err, bff.ErrTokenRevoked)
}

// testTokenGuardsRace: token writes racing a password reset never leave a
// live token authenticated before the reset.
func testTokenGuardsRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	u := mustUser(t, s, "ada")
	for i := 0; i < 20; i++ {
		auth := now()
		family := fmt.Sprintf("race-%d", i)
		var wg sync.WaitGroup
		var createErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			a := accessToken("race-a-"+family, family, now().Add(time.Hour))
			a.UserID, a.AuthTime = u.ID, auth
			r := refreshToken("race-r-"+family, family, now().Add(time.Hour))
			r.UserID, r.AuthTime = u.ID, auth
			createErr = s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: a}, store.CreateRefreshToken{Token: r}})
		}()
		go func() {
			defer wg.Done()
			if err := s.SetUserPassword(ctx, u.ID, "$argon2id$x", "test", now().Add(time.Millisecond)); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if createErr != nil {
			if !errors.Is(createErr, bff.ErrTokenRevoked) {
				t.Fatalf("round %d: create: %v", i, createErr)
			}
			continue
		}
		for _, get := range []func() (*time.Time, error){
			func() (*time.Time, error) { t, err := s.GetAccessToken(ctx, "race-a-"+family); return t.RevokedAt, err },
			func() (*time.Time, error) {
				t, err := s.GetRefreshToken(ctx, "race-r-"+family)
				return t.RevokedAt, err
			},
		} {
			revoked, err := get()
			if err != nil || revoked == nil {
				t.Fatalf("round %d: a token created around a password reset is live (%v)", i, err)
			}
		}
	}
}

func testAccessTokenByJTI(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustClient(t, s, "mobile")
	a := accessToken("sig-j", "fam-j", now().Add(time.Hour))
	a.JTI, a.Format = "the-jti", bff.FormatJWT
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: a}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAccessTokenByJTI(ctx, "the-jti")
	if err != nil || got.FamilyID != "fam-j" || got.JTI != "the-jti" {
		t.Errorf("GetAccessTokenByJTI = %+v, %v", got, err)
	}
	namesAccessToken(t, s, "the signature of the record found by its JTI", got.Signature, a)
	// It revokes the token it names.
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeAccessToken{Signature: got.Signature, At: now()}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAccessToken(ctx, "sig-j"); err != nil || got.RevokedAt == nil {
		t.Errorf("revoked through the signature the store gave back: %+v, %v", got.RevokedAt, err)
	}
	for _, jti := range []string{"other", "", "bad\x00"} {
		if _, err := s.GetAccessTokenByJTI(ctx, jti); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("GetAccessTokenByJTI(%q): %v", jti, err)
		}
	}
}

// oneWins checks the results of concurrent calls of which exactly one may
// succeed: one nil, every other one lost with loser.
func oneWins(t *testing.T, what string, errs []error, loser error) {
	t.Helper()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, loser):
			t.Errorf("%s: %v, want %v", what, err, loser)
		}
	}
	if won != 1 {
		t.Errorf("%s: %d of %d succeeded, want 1", what, won, len(errs))
	}
}
