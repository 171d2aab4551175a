package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

var discard = slog.New(slog.NewJSONHandler(io.Discard, nil))

func kids(keys []jose.JSONWebKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.KeyID
	}
	return out
}

// keyStates returns kid → state as the store has them.
func keyStates(t *testing.T, ks store.Keys) map[string]bff.KeyState {
	t.Helper()
	keys, err := ks.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bff.KeyState{}
	for _, k := range keys {
		out[k.KID] = k.State
	}
	return out
}

func kidIn(states map[string]bff.KeyState, want bff.KeyState) string {
	for kid, st := range states {
		if st == want {
			return kid
		}
	}
	return ""
}

func TestRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	c := env.PublicClient(t, "mobile")
	newUser(t, env, "leo")

	states := keyStates(t, env.Store)
	cur0, next0 := kidIn(states, bff.KeyCurrent), kidIn(states, bff.KeyNext)
	if len(states) != 2 || cur0 == "" || next0 == "" {
		t.Fatalf("first keys = %v, want one current and one next", states)
	}
	if env.Keys.CurrentKID() != cur0 {
		t.Fatalf("CurrentKID() = %s, want %s", env.Keys.CurrentKID(), cur0)
	}
	// The next key is published a whole rotation before it signs.
	if got := kids(env.Keys.Published()); !slices.Equal(got, []string{cur0, next0}) {
		t.Fatalf("Published() = %v, want current then next %v", got, []string{cur0, next0})
	}
	var served jose.JSONWebKeySet
	if err := json.Unmarshal(httpGet(env, "/.well-known/jwks.json"), &served); err != nil {
		t.Fatal(err)
	}
	if len(served.Key(next0)) != 1 {
		t.Fatalf("JWKS %v does not serve the next key %s", kids(served.Keys), next0)
	}

	before, _ := tokens(t, env, c.ID, "leo", bff.FormatJWT)
	if kid := testkit.Segment(t, before, 0)["kid"]; kid != cur0 {
		t.Fatalf("kid = %v, want %s", kid, cur0)
	}

	if err := env.Keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	states = keyStates(t, env.Store)
	next1 := kidIn(states, bff.KeyNext)
	want := map[string]bff.KeyState{cur0: bff.KeyRetired, next0: bff.KeyCurrent, next1: bff.KeyNext}
	if len(states) != 3 || next1 == cur0 || next1 == next0 || !maps.Equal(states, want) {
		t.Fatalf("after rotation keys = %v, want %v", states, want)
	}
	if env.Keys.CurrentKID() != next0 {
		t.Fatalf("CurrentKID() = %s, want the former next key %s", env.Keys.CurrentKID(), next0)
	}
	if got := kids(env.Keys.Published()); got[0] != next0 || !slices.Contains(got, cur0) || !slices.Contains(got, next1) || len(got) != 3 {
		t.Fatalf("Published() = %v, want %s first, and %s (retired) and %s (next)", got, next0, cur0, next1)
	}

	after, _ := tokens(t, env, c.ID, "leo", bff.FormatJWT)
	if kid := testkit.Segment(t, after, 0)["kid"]; kid != next0 {
		t.Errorf("kid after rotation = %v, want %s", kid, next0)
	}
	for name, tok := range map[string]string{"issued before": before, "issued after": after} {
		if _, err := v.Validate(ctx, bearer(tok)); err != nil {
			t.Errorf("JWT %s the rotation: %v", name, err)
		}
	}

	// A second rotation leaves the first key retired and still published
	// (it retired less than the access-token lifetime ago).
	if err := env.Keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if env.Keys.CurrentKID() != next1 {
		t.Fatalf("CurrentKID() = %s, want %s", env.Keys.CurrentKID(), next1)
	}
	if got := kids(env.Keys.Published()); len(got) != 4 || !slices.Contains(got, cur0) {
		t.Errorf("Published() = %v, want 4 keys including %s", got, cur0)
	}
	if _, err := v.Validate(ctx, bearer(before)); err != nil {
		t.Errorf("JWT from two rotations ago: %v", err)
	}
}

// instance is one service process over a shared store.
type instance struct {
	keys *oauth.KeyManager
	svc  *oauth.Service
	v    *oauth.Validator
}

func newInstance(t *testing.T, st store.Store, ks store.Keys, secret string) (instance, error) {
	t.Helper()
	secrets, err := oauth.NewSecrets([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := oauth.NewKeyManager(context.Background(), ks, secrets, "ES256", time.Hour, discard)
	if err != nil {
		return instance{}, err
	}
	cfg := oauth.Config{Issuer: testenv.Issuer, Audience: testenv.Audience,
		AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, Throttle: oauth.DefaultThrottle}
	v := oauth.NewValidator(st, keys, secrets, cfg)
	svc, err := oauth.NewService(st, keys, secrets, v, cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	return instance{keys, svc, v}, nil
}

// sharedStore is a memory store with a client and a user, as two
// instances of the service would share it.
func sharedStore(t *testing.T) (*memory.Store, bff.Client, bff.User) {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	t.Cleanup(st.Close)
	c := bff.Client{ID: "mobile", Public: true, GrantTypes: []string{bff.GrantPassword}, Scopes: []string{"read"},
		TokenType: bff.FormatJWT, JWTEnabled: true}
	if err := st.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(ctx, bff.User{Username: "mallory", Email: "mallory@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return st, c, u
}

func signFor(t *testing.T, km *oauth.KeyManager, u bff.User, c bff.Client) string {
	t.Helper()
	tok, err := km.Sign(claimsMap(t, &u, c, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const secretA = "0123456789abcdef0123456789abcdef-A"

func TestKeysAcrossInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, c, u := sharedStore(t)
	a, err := newInstance(t, st, st, secretA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newInstance(t, st, st, secretA)
	if err != nil {
		t.Fatal(err)
	}
	if states := keyStates(t, st); len(states) != 2 || b.keys.CurrentKID() != a.keys.CurrentKID() {
		t.Fatalf("the second instance made its own keys: %v", states)
	}

	// A rotates twice: its current key was created by the first rotation,
	// after B loaded the keys.
	for range 2 {
		if err := a.keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	kid := a.keys.CurrentKID()
	if slices.Contains(kids(b.keys.Published()), kid) {
		t.Fatalf("B knows %s before looking it up; the test proves nothing", kid)
	}
	tok := signFor(t, a.keys, u, c)
	p, err := b.v.Validate(ctx, bearer(tok))
	if err != nil {
		t.Fatalf("B validating A's JWT with a kid new to B: %v", err)
	}
	if p.User == nil || p.User.ID != u.ID {
		t.Errorf("principal = %+v", p)
	}
	if b.keys.CurrentKID() != kid {
		t.Errorf("B's current kid = %s after reloading, want %s", b.keys.CurrentKID(), kid)
	}
	if _, ok := b.keys.Lookup(ctx, kid); !ok {
		t.Error("Lookup() of the reloaded kid fails")
	}
}

// countingKeys counts the reads of the key table.
type countingKeys struct {
	store.Keys
	lists atomic.Int64
}

func (c *countingKeys) ListSigningKeys(ctx context.Context) ([]bff.SigningKey, error) {
	c.lists.Add(1)
	return c.Keys.ListSigningKeys(ctx)
}

func TestLookupUnknownKIDIsRateLimited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _, _ := sharedStore(t)
	ks := &countingKeys{Keys: st}
	inst, err := newInstance(t, st, ks, secretA)
	if err != nil {
		t.Fatal(err)
	}
	start := ks.lists.Load()
	for i := range 100 {
		if _, ok := inst.keys.Lookup(ctx, "made-up-"+strings.Repeat("x", i)); ok {
			t.Fatal("a made-up kid was found")
		}
	}
	if n := ks.lists.Load() - start; n != 1 {
		t.Errorf("100 unknown kids read the keys %d times, want once", n)
	}
	if _, ok := inst.keys.Lookup(ctx, inst.keys.CurrentKID()); !ok {
		t.Error("the current kid is not found")
	}
}

func TestRetiredKeysLeaveTheJWKS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, c, u := sharedStore(t)
	inst, err := newInstance(t, st, st, secretA)
	if err != nil {
		t.Fatal(err)
	}
	old := inst.keys.CurrentKID()
	tok := signFor(t, inst.keys, u, c)

	// Rotate in the store as if it had happened long ago: the key that was
	// current retired beyond the access-token lifetime (and the grace).
	pub, err := jose.JSONWebKey{Key: newES256(t).Public(), KeyID: "later", Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	longAgo := time.Now().Add(-2 * time.Hour)
	if err := st.RotateSigningKeys(ctx, bff.SigningKey{KID: "later", Algorithm: "ES256", PrivateKey: []byte("x"),
		PublicJWK: pub, CreatedAt: longAgo}, longAgo); err != nil {
		t.Fatal(err)
	}
	if err := inst.keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kids(inst.keys.Published()); slices.Contains(got, old) || len(got) != 2 {
		t.Errorf("Published() = %v, want the key retired 2h ago gone", got)
	}
	_, err = inst.v.Validate(ctx, bearer(tok))
	checkVerdict(t, err, bff.ErrInvalidToken)
}

func TestNewKeyManagerErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _, _ := sharedStore(t)
	if _, err := newInstance(t, st, st, secretA); err != nil {
		t.Fatal(err)
	}
	before := keyStates(t, st)

	t.Run("wrong secret", func(t *testing.T) {
		t.Parallel()
		_, err := newInstance(t, st, st, strings.Replace(secretA, "-A", "-B", 1))
		if err == nil {
			t.Fatal("NewKeyManager() opened keys sealed with another secret")
		}
		if !strings.Contains(err.Error(), "BFF_SECRET") {
			t.Errorf("error %q does not say that BFF_SECRET changed", err)
		}
		if strings.Contains(err.Error(), secretA) {
			t.Errorf("error %q shows the secret", err)
		}
		if after := keyStates(t, st); !maps.Equal(before, after) {
			t.Errorf("keys changed from %v to %v", before, after)
		}
	})
	for _, alg := range []string{"", "HS256", "none", "rs256", "PS256", "ES384"} {
		t.Run("algorithm "+alg, func(t *testing.T) {
			t.Parallel()
			secrets, err := oauth.NewSecrets([]byte(secretA))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := oauth.NewKeyManager(ctx, memory.New(), secrets, alg, time.Hour, discard); err == nil {
				t.Errorf("NewKeyManager(%q) succeeded", alg)
			}
			if oauth.ValidAlgorithm(alg) {
				t.Errorf("ValidAlgorithm(%q) = true", alg)
			}
		})
	}
	t.Run("store down", func(t *testing.T) {
		t.Parallel()
		secrets, err := oauth.NewSecrets([]byte(secretA))
		if err != nil {
			t.Fatal(err)
		}
		_, err = oauth.NewKeyManager(ctx, failingKeys{}, secrets, "ES256", time.Hour, discard)
		if !errors.Is(err, bff.ErrUnavailable) {
			t.Errorf("NewKeyManager() error = %v, want %v", err, bff.ErrUnavailable)
		}
	})
}

type failingKeys struct{ store.Keys }

func (failingKeys) ListSigningKeys(context.Context) ([]bff.SigningKey, error) {
	return nil, bff.ErrUnavailable
}

// TestServiceJWTIsNotAnAccessToken: JWTs the service mints for other
// services (typ JWT) never pass as its own access tokens.
func TestServiceJWTIsNotAnAccessToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, c, u := sharedStore(t)
	inst, err := newInstance(t, st, st, secretA)
	if err != nil {
		t.Fatal(err)
	}
	claims := claimsMap(t, &u, c, time.Now())
	access, err := inst.keys.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inst.v.Validate(ctx, bearer(access)); err != nil {
		t.Fatalf("the same claims as an access token: %v", err)
	}
	other, err := inst.keys.SignJWT(claims)
	if err != nil {
		t.Fatal(err)
	}
	if h := testkit.Segment(t, other, 0); h["typ"] != "JWT" || h["kid"] != inst.keys.CurrentKID() {
		t.Errorf("SignJWT header = %v, want typ JWT and the current kid", h)
	}
	_, err = inst.v.Validate(ctx, bearer(other))
	checkVerdict(t, err, bff.ErrInvalidToken)
}
