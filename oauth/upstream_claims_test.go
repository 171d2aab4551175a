package oauth_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

func TestUpstreamClaimsGolden(t *testing.T) {
	t.Parallel()
	iat := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	tests := []struct {
		golden          string
		scopes          []string
		present, absent []string
	}{
		{golden: "upstream_claims", scopes: []string{"read", "payments", "email", "payments"},
			absent: []string{"name", "given_name", "family_name"}},
		{golden: "upstream_claims_profile", scopes: []string{"profile", "payments"},
			present: []string{"name", "given_name", "family_name"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			claims := oauth.NewUpstreamClaims(oauth.UpstreamClaimsInput{
				Issuer: "https://bff.example.org", Audience: "ecommerce", User: claimsUser, Scopes: tt.scopes,
				IssuedAt: iat, ExpiresAt: iat.Add(oauth.UpstreamTokenTTL), JTI: "0123456789abcdef",
			})
			got, err := json.MarshalIndent(claims, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, tt.golden, got)

			var m map[string]any
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range append([]string{"iss", "aud", "sub", "iat", "exp", "jti", "scope", "scopes",
				"preferred_username", "user_id", "email", "email_verified", "version"}, tt.present...) {
				if _, ok := m[k]; !ok {
					t.Errorf("claim %q missing", k)
				}
			}
			// Identity only: no client, no grant, no authorization data.
			for _, k := range append([]string{"client_id", "grant_type", "is_restricted", "administrator", "superuser"},
				append(tt.absent, authorizationClaims...)...) {
				if _, ok := m[k]; ok {
					t.Errorf("claim %q present, want it absent", k)
				}
			}
			if m["sub"] != "4217" || m["aud"] != "ecommerce" {
				t.Errorf("sub, aud = %v, %v", m["sub"], m["aud"])
			}
			if d := m["exp"].(float64) - m["iat"].(float64); d != 300 {
				t.Errorf("exp-iat = %v, want 300", d)
			}
			// Scopes are sorted and unique, so that equal sets give equal claims.
			want := slices.Clone(tt.scopes)
			slices.Sort(want)
			want = slices.Compact(want)
			if diff := cmp.Diff(want, claims.Scopes); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUpstreamJWTIsNotAnAccessToken: a JWT minted for the payment service is
// refused by the validator even when it names the service's own audience
// (a misconfiguration config.go refuses anyway): its typ is JWT and it
// names no client.
func TestUpstreamJWTIsNotAnAccessToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _, u := sharedStore(t)
	inst, err := newInstance(t, st, st, secretA)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, aud := range []string{"ecommerce", testenv.Audience} {
		tok, err := inst.keys.SignJWT(oauth.NewUpstreamClaims(oauth.UpstreamClaimsInput{
			Issuer: testenv.Issuer, Audience: aud, User: u, Scopes: []string{"payments"},
			IssuedAt: now, ExpiresAt: now.Add(oauth.UpstreamTokenTTL), JTI: randomID(t),
		}))
		if err != nil {
			t.Fatal(err)
		}
		for _, cred := range []oauth.Credential{bearer(tok), {Scheme: oauth.SchemeJWT, Token: tok}} {
			_, err = inst.v.Validate(ctx, cred)
			checkVerdict(t, err, bff.ErrInvalidToken)
		}
	}
}

// TestRetiredKeysOutliveUpstreamJWTs: with access tokens shorter than the
// upstream JWTs, a retired key stays published as long as an upstream JWT
// it signed may live.
func TestRetiredKeysOutliveUpstreamJWTs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secrets, err := oauth.NewSecrets([]byte(secretA))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		retiredAgo time.Duration
		published  bool
	}{
		{4 * time.Minute, true},                      // within the upstream JWT lifetime
		{oauth.UpstreamTokenTTL + time.Minute, true}, // within the grace after it
		{10 * time.Minute, false},
	} {
		st := memory.New()
		keys, err := oauth.NewKeyManager(ctx, st, secrets, "ES256", time.Minute, discard)
		if err != nil {
			t.Fatal(err)
		}
		old := keys.CurrentKID()
		pub, err := jose.JSONWebKey{Key: newES256(t).Public(), KeyID: "later", Algorithm: "ES256", Use: "sig"}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-tc.retiredAgo)
		if err := st.RotateSigningKeys(ctx, bff.SigningKey{KID: "later", Algorithm: "ES256", PrivateKey: []byte("x"),
			PublicJWK: pub, CreatedAt: at}, at); err != nil {
			t.Fatal(err)
		}
		if err := keys.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(kids(keys.Published()), old); got != tc.published {
			t.Errorf("key retired %s ago (access tokens 1m): published = %v, want %v", tc.retiredAgo, got, tc.published)
		}
	}
}
