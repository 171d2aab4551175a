package oauth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
)

// respell rewrites the last character of a JWT's signature into another
// spelling of the same bytes (different unused low bits), which lenient
// base64 decoders accept.
func respell(t *testing.T, jwt string) string {
	t.Helper()
	i := strings.LastIndexByte(jwt, '.')
	sig := jwt[i+1:]
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	unused := map[int]int{1: 4, 2: 2}[len(raw)%3] // low bits of the last character that carry nothing
	if unused == 0 {
		t.Skip("this signature length has no spare bits")
	}
	other := sig[:len(sig)-1] + string(alphabet[last|1])
	if other == sig {
		other = sig[:len(sig)-1] + string(alphabet[last&^1])
	}
	if b, err := base64.RawURLEncoding.DecodeString(other); err != nil || string(b) != string(raw) {
		t.Fatalf("respelling changed the bytes: %v", err)
	}
	return jwt[:i+1] + other
}

// TestNonCanonicalJWTRejected: a JWT whose signature is spelled another way
// is not accepted (it would be another token to every lookup by text).
func TestNonCanonicalJWTRejected(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Alg: "RS256"})
	env.PublicClient(t, "app")
	env.User(t, "ivy")
	jwt := env.Token(t, testenv.PasswordForm("app", "ivy", "token_type", "jwt"))["access_token"].(string)
	v := env.Validator
	if _, err := v.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeJWT, Token: jwt}); err != nil {
		t.Fatalf("the canonical JWT: %v", err)
	}
	_, err := v.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeJWT, Token: respell(t, jwt)})
	if !errors.Is(err, bff.ErrInvalidToken) {
		t.Errorf("a respelled JWT: %v, want ErrInvalidToken", err)
	}
}

// forgetsRevokedJTIs hides the revoked JWT ids, to show that a JWT issued
// before a password change is refused even if its id missed the list.
type forgetsRevokedJTIs struct{ store.Store }

func (forgetsRevokedJTIs) IsJTIRevoked(context.Context, string) (bool, error) { return false, nil }

func TestJWTIssuedBeforePasswordChangeRejected(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Wrap: func(s store.Store) store.Store { return forgetsRevokedJTIs{s} }})
	env.PublicClient(t, "app")
	u := env.User(t, "jon")
	jwt := env.Token(t, testenv.PasswordForm("app", "jon", "token_type", "jwt"))["access_token"].(string)
	// The change must fall in a later second than the JWT's iat.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	if err := env.Admin.SetPassword(context.Background(), u.ID, "a different password", "test"); err != nil {
		t.Fatal(err)
	}
	_, err := env.Validator.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeBearer, Token: jwt})
	if !errors.Is(err, bff.ErrTokenRevoked) {
		t.Errorf("a JWT from before the password change: %v, want ErrTokenRevoked", err)
	}
	// A JWT issued afterwards, in the same second as the change, is fine.
	form := testenv.PasswordForm("app", "jon", "token_type", "jwt", "password", "a different password")
	fresh := env.Token(t, form)["access_token"].(string)
	if _, err := env.Validator.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeBearer, Token: fresh}); err != nil {
		t.Errorf("a JWT from after the password change: %v", err)
	}
}

// TestClientChangesReachLiveTokens: taking a scope from a client takes it
// from its live tokens and sessions; a client that loses the password grant
// loses its sessions.
func TestClientChangesReachLiveTokens(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "app")
	env.User(t, "kay")
	ctx := context.Background()
	v := env.Validator
	body := env.Token(t, testenv.PasswordForm("app", "kay", "token_type", "jwt"))
	jwt := body["access_token"].(string)
	opaque := env.Token(t, testenv.PasswordForm("app", "kay"))["access_token"].(string)
	rec := env.Post("/oauth2/login", url.Values{}, "Authorization", "Bearer "+jwt)
	if rec.Code != 204 {
		t.Fatalf("login: %d", rec.Code)
	}
	cookie := (&http.Response{Header: rec.Header()}).Cookies()[0].Value
	creds := map[string]oauth.Credential{
		"jwt": {Scheme: oauth.SchemeBearer, Token: jwt}, "opaque": {Scheme: oauth.SchemeBearer, Token: opaque},
		"session": {Scheme: oauth.SchemeCookie, Token: cookie},
	}
	scopes := []string{"read", "email", "profile"} // payments taken away
	if _, err := env.Admin.UpdateClient(ctx, "app", admin.ClientPatch{Scopes: &scopes}); err != nil {
		t.Fatal(err)
	}
	for name, c := range creds {
		p, err := v.Validate(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.HasScope("payments") || !p.HasScope("read") {
			t.Errorf("%s: scopes after the client lost payments: %v", name, p.Scopes)
		}
	}
	grants := []string{bff.GrantRefreshToken}
	if _, err := env.Admin.UpdateClient(ctx, "app", admin.ClientPatch{GrantTypes: &grants}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(ctx, creds["session"]); !errors.Is(err, bff.ErrTokenRevoked) {
		t.Errorf("a session of a client without the password grant: %v", err)
	}
}

// TestForgedRefreshTokenRevokesNothing: a refresh token with a valid
// signature part but a wrong secret part is refused before anything is
// looked up, so it cannot set off the reuse detection.
func TestForgedRefreshTokenRevokesNothing(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Config: func(c *oauth.Config) { c.RefreshReuseGrace = 0 }})
	env.PublicClient(t, "app")
	env.User(t, "lou")
	first := env.Token(t, testenv.PasswordForm("app", "lou"))
	rt := first["refresh_token"].(string)
	second := env.Token(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {rt}})
	// Forge: the old (rotated) token's signature part with another key part.
	dot := strings.LastIndexByte(rt, '.')
	forged := "ory_rt_" + strings.Repeat("A", dot-len("ory_rt_")) + rt[dot:]
	rec := env.Post("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {forged}})
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "invalid_grant") {
		t.Fatalf("forged refresh token: %d %s", rec.Code, rec.Body)
	}
	// The family is intact: the current refresh token still works.
	if rec := env.Post("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
		"refresh_token": {second["refresh_token"].(string)}}); rec.Code != 200 {
		t.Errorf("the family was revoked by a forged token: %d %s", rec.Code, rec.Body)
	}
}
