package oauth_test

import (
	"context"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// TestValidateClientIncarnation: a JWT is good only for the incarnation of
// its client it was issued to (ADR 0019). One issued to a deleted client is
// invalid_token — before expiry and revocation, as for an unknown client —
// once the id is created again, even with the same settings in the same
// second; so is one that names no incarnation, for a client that has one.
// A client from before incarnations (none) keeps its JWTs, which name none.
func TestValidateClientIncarnation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	u := newUser(t, env, "ivy")
	old := env.PublicClient(t, "mobile")
	if old.Incarnation == "" {
		t.Fatal("a new client has no incarnation")
	}
	sign := func(c bff.Client, change func(m map[string]any)) string {
		t.Helper()
		m := claimsMap(t, &u, c, time.Now())
		if change != nil {
			change(m)
		}
		tok, err := env.Keys.Sign(m)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	before := sign(old, nil)
	expired := sign(old, func(m map[string]any) { m["exp"] = time.Now().Add(-time.Minute).Unix() })
	if _, err := v.Validate(ctx, bearer(before)); err != nil {
		t.Fatalf("a JWT of the client: %v", err)
	}

	if err := env.Store.DeleteClient(ctx, "mobile"); err != nil {
		t.Fatal(err)
	}
	again := env.PublicClient(t, "mobile")
	if again.Incarnation == old.Incarnation {
		t.Fatal("the client created again has the deleted one's incarnation")
	}
	for name, tok := range map[string]string{
		"the deleted client's JWT":             before,
		"the deleted client's expired JWT":     expired,
		"a JWT naming no incarnation":          sign(again, func(m map[string]any) { delete(m, "client_incarnation") }),
		"a JWT naming an empty incarnation":    sign(again, func(m map[string]any) { m["client_incarnation"] = "" }),
		"a JWT naming a forged incarnation":    sign(again, func(m map[string]any) { m["client_incarnation"] = "forged" }),
		"a JWT naming the incarnation in case": sign(again, func(m map[string]any) { m["Client_Incarnation"] = again.Incarnation; delete(m, "client_incarnation") }),
	} {
		_, err := v.Validate(ctx, bearer(tok))
		checkVerdict(t, err, bff.ErrInvalidToken)
		if err != nil && oauth.VerdictClient(err) != "" {
			t.Errorf("%s: counted for client %q, which it does not belong to", name, oauth.VerdictClient(err))
		}
	}
	if p, err := v.Validate(ctx, bearer(sign(again, nil))); err != nil || p.Client.Incarnation != again.Incarnation {
		t.Errorf("a JWT of the client created again: %+v, %v", p.Client, err)
	}

	// A client stored before incarnations existed (migration 0008 gives it
	// ""): its JWTs name none, and stay good.
	legacy := bff.Client{ID: "legacy", Public: true, GrantTypes: []string{bff.GrantPassword}, Scopes: []string{"read", "profile"},
		TokenType: bff.FormatJWT, JWTEnabled: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := env.Store.CreateClient(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	tok := sign(legacy, nil)
	if m := testkit.Segment(t, tok, 1); m["client_incarnation"] != nil {
		t.Fatalf("a legacy client's JWT names an incarnation: %v", m)
	}
	if _, err := v.Validate(ctx, bearer(tok)); err != nil {
		t.Errorf("a legacy client's JWT: %v", err)
	}
}
