package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
)

// verdicts are the sentinels the validator may answer; a test names the one
// it expects and checks that no other one matches too.
var verdicts = []error{bff.ErrNonAsymmetricToken, bff.ErrInvalidToken, bff.ErrTokenExpired,
	bff.ErrAccountDisabled, bff.ErrTokenRevoked, bff.ErrNoCredential}

// checkVerdict fails unless err is exactly the expected verdict (nil for a
// valid token).
func checkVerdict(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Validate() error = %v, want a valid token", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("Validate() error = %v, want %v", err, want)
	}
	for _, other := range verdicts {
		if other != want && errors.Is(err, other) {
			t.Fatalf("Validate() error = %v matches %v as well as %v", err, other, want)
		}
	}
}

func bearer(tok string) oauth.Credential {
	return oauth.Credential{Scheme: oauth.SchemeBearer, Token: tok}
}

// tokens runs a password grant and returns the access and refresh tokens.
func tokens(t *testing.T, env *testenv.Env, clientID, username string, format bff.TokenFormat, extra ...string) (access, refresh string) {
	t.Helper()
	body := env.Token(t, testenv.PasswordForm(clientID, username, append([]string{"token_type", string(format)}, extra...)...))
	// Asked for by token_type: edX's label.
	if got, want := body["token_type"], map[bff.TokenFormat]string{bff.FormatBearer: "Bearer", bff.FormatJWT: "JWT"}[format]; got != want {
		t.Fatalf("token_type = %v, want %v", got, want)
	}
	access, _ = body["access_token"].(string)
	refresh, _ = body["refresh_token"].(string)
	if access == "" {
		t.Fatalf("no access_token in %v", body)
	}
	return access, refresh
}

// claimsMap is a valid claim set of a JWT for user u and client cl, as the
// service would issue it, ready to be changed by a test.
func claimsMap(t *testing.T, u *bff.User, cl bff.Client, now time.Time) map[string]any {
	t.Helper()
	c := oauth.NewAccessClaims(oauth.ClaimsInput{
		Issuer: testenv.Issuer, Audience: testenv.Audience, User: u, ClientID: cl.ID, ClientIncarnation: cl.Incarnation,
		Scopes: []string{"read", "profile"}, GrantType: bff.GrantPassword,
		IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute), JTI: randomID(t),
	})
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// cheapHash is an argon2id hash of testenv.Password with the smallest
// parameters CheckPassword accepts, so that password grants in these tests
// cost microseconds rather than a real hash's tenth of a second.
var cheapHash = argonHash(testenv.Password, 8, 1, 1, []byte("fixed-test-salt!"), 32)

// newUser stores a user whose password is testenv.Password.
func newUser(t *testing.T, env *testenv.Env, username string) bff.User {
	t.Helper()
	u, err := env.Store.CreateUser(context.Background(), bff.User{Username: username, Email: username + "@example.com",
		Name: "Test " + username, PasswordHash: cheapHash, EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func randomID(t *testing.T) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// signed is a JWS made by the test: alg, key (kid in the JWK, or none),
// extra protected headers, and claims.
type signed struct {
	alg     jose.SignatureAlgorithm
	key     any    // private key, or []byte for HS*
	kid     string // "" for no kid
	typ     string // "" for no typ
	headers map[jose.HeaderKey]any
	embed   bool // embed the public JWK (the jwk header)
	claims  any
}

func (s signed) object(t *testing.T) *jose.JSONWebSignature {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: s.embed}
	if s.typ != "" {
		opts = opts.WithType(jose.ContentType(s.typ))
	}
	for k, v := range s.headers {
		opts = opts.WithHeader(k, v)
	}
	var key any = s.key
	if s.kid != "" {
		key = jose.JSONWebKey{Key: s.key, KeyID: s.kid, Algorithm: string(s.alg)}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(s.claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func (s signed) compact(t *testing.T) string {
	t.Helper()
	tok, err := s.object(t).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned builds a JWS by hand, for headers go-jose refuses to sign
// (alg none, no alg).
func unsigned(t *testing.T, header, claims any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "."
}

func newES256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publishTestKey makes a key the test holds one of the service's published
// keys: it goes into the store as the next key (rotating once, which needs
// nothing of it but its public half) and the key manager reloads. Tokens
// the test signs with it then differ from the service's own only where the
// test says, so each header check can be exercised on its own.
func publishTestKey(t *testing.T, env *testenv.Env) (*ecdsa.PrivateKey, string) {
	t.Helper()
	ctx := context.Background()
	priv := newES256(t)
	kid := "test-" + randomID(t)
	pub, err := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	k := bff.SigningKey{KID: kid, Algorithm: "ES256", PrivateKey: []byte("never opened: next keys do not sign"),
		PublicJWK: pub, CreatedAt: now}
	if err := env.Store.RotateSigningKeys(ctx, k, now); err != nil {
		t.Fatal(err)
	}
	if err := env.Keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if env.Keys.CurrentKID() == kid {
		t.Fatal("the test key must not sign for the service")
	}
	return priv, kid
}

func TestParseAuthorization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header  string
		want    oauth.Credential
		wantErr error
	}{
		{"Bearer abc.def", oauth.Credential{Scheme: oauth.SchemeBearer, Token: "abc.def"}, nil},
		{"bearer abc", oauth.Credential{Scheme: oauth.SchemeBearer, Token: "abc"}, nil},
		{"BEARER abc", oauth.Credential{Scheme: oauth.SchemeBearer, Token: "abc"}, nil},
		{"Bearer   abc  ", oauth.Credential{Scheme: oauth.SchemeBearer, Token: "abc"}, nil},
		{"JWT a.b.c", oauth.Credential{Scheme: oauth.SchemeJWT, Token: "a.b.c"}, nil},
		{"jwt a.b.c", oauth.Credential{Scheme: oauth.SchemeJWT, Token: "a.b.c"}, nil},
		{"Jwt a.b.c", oauth.Credential{Scheme: oauth.SchemeJWT, Token: "a.b.c"}, nil},
		{"", oauth.Credential{}, bff.ErrNoCredential},
		{"Bearer", oauth.Credential{}, bff.ErrInvalidToken},
		{"Bearer ", oauth.Credential{}, bff.ErrInvalidToken},
		{"Bearer    ", oauth.Credential{}, bff.ErrInvalidToken},
		{"abc", oauth.Credential{}, bff.ErrInvalidToken},
		{"Basic dXNlcjpwYXNz", oauth.Credential{}, bff.ErrInvalidToken},
		{"Token abc", oauth.Credential{}, bff.ErrInvalidToken},
		{"Bearerabc", oauth.Credential{}, bff.ErrInvalidToken},
		{"Bearer\tabc", oauth.Credential{}, bff.ErrInvalidToken},
		{"\x00\xff garbage", oauth.Credential{}, bff.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.header), func(t *testing.T) {
			t.Parallel()
			got, err := oauth.ParseAuthorization(tt.header)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("ParseAuthorization() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == bff.ErrInvalidToken && errors.Is(err, bff.ErrNoCredential) {
				t.Fatalf("a malformed header is not a missing one: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseAuthorization() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// principalView is what a test compares of a principal; times are
// compared approximately, ids separately.
type principalView struct {
	UserID     int64
	Username   string
	ClientID   string
	Format     bff.TokenFormat
	Scopes     []string
	GrantType  string
	Restricted bool
	IssuedAt   time.Time
	ExpiresAt  time.Time
}

func view(p bff.Principal) principalView {
	v := principalView{ClientID: p.Client.ID, Format: p.Format, Scopes: p.Scopes, GrantType: p.GrantType,
		Restricted: p.Restricted, IssuedAt: p.IssuedAt, ExpiresAt: p.ExpiresAt}
	if p.User != nil {
		v.UserID, v.Username = p.User.ID, p.User.Username
	}
	return v
}

func TestValidateIssuedTokens(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	mobile := env.PublicClient(t, "mobile")
	restricted := env.PublicClient(t, "mobile-restricted", func(c *admin.NewClient) { c.Restricted = true })
	backend, secret := env.ConfidentialClient(t, "backend", func(c *admin.NewClient) { c.Scopes = []string{"read", "write"} })
	alice := newUser(t, env, "alice")

	allScopes := []string{"read", "email", "profile", "payments"}
	tests := []struct {
		name   string
		issue  func(t *testing.T) map[string]any
		scheme oauth.Scheme
		want   principalView
	}{
		{
			name: "opaque, password grant, every scope of the client",
			issue: func(t *testing.T) map[string]any {
				return env.Token(t, testenv.PasswordForm(mobile.ID, "alice", "token_type", "bearer"))
			},
			want: principalView{UserID: alice.ID, Username: "alice", ClientID: mobile.ID, Format: bff.FormatBearer,
				Scopes: allScopes, GrantType: bff.GrantPassword},
		},
		{
			name: "JWT, password grant, requested scopes",
			issue: func(t *testing.T) map[string]any {
				return env.Token(t, testenv.PasswordForm(mobile.ID, "alice@example.com", "token_type", "jwt", "scope", "read email"))
			},
			want: principalView{UserID: alice.ID, Username: "alice", ClientID: mobile.ID, Format: bff.FormatJWT,
				Scopes: []string{"read", "email"}, GrantType: bff.GrantPassword},
		},
		{
			name: "JWT presented with the JWT scheme",
			issue: func(t *testing.T) map[string]any {
				return env.Token(t, testenv.PasswordForm(mobile.ID, "alice", "token_type", "jwt"))
			},
			scheme: oauth.SchemeJWT,
			want: principalView{UserID: alice.ID, Username: "alice", ClientID: mobile.ID, Format: bff.FormatJWT,
				Scopes: allScopes, GrantType: bff.GrantPassword},
		},
		{
			name: "JWT of a restricted client",
			issue: func(t *testing.T) map[string]any {
				return env.Token(t, testenv.PasswordForm(restricted.ID, "alice", "token_type", "bearer"))
			},
			want: principalView{UserID: alice.ID, Username: "alice", ClientID: restricted.ID, Format: bff.FormatJWT,
				Scopes: allScopes, GrantType: bff.GrantPassword, Restricted: true},
		},
		{
			name: "opaque, client credentials",
			issue: func(t *testing.T) map[string]any {
				return env.Token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {backend.ID}, "client_secret": {secret}})
			},
			want: principalView{ClientID: backend.ID, Format: bff.FormatBearer, Scopes: []string{"read", "write"},
				GrantType: bff.GrantClientCredentials},
		},
		{
			name: "JWT, client credentials",
			issue: func(t *testing.T) map[string]any {
				return env.Token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {backend.ID},
					"client_secret": {secret}, "token_type": {"jwt"}, "scope": {"write"}})
			},
			want: principalView{ClientID: backend.ID, Format: bff.FormatJWT, Scopes: []string{"write"},
				GrantType: bff.GrantClientCredentials},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := time.Now()
			body := tt.issue(t)
			tok, _ := body["access_token"].(string)
			scheme := tt.scheme
			if scheme == "" {
				scheme = oauth.SchemeBearer
			}
			p, err := v.Validate(context.Background(), oauth.Credential{Scheme: scheme, Token: tok})
			if err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			want := tt.want
			want.IssuedAt, want.ExpiresAt = before, before.Add(time.Hour)
			if diff := cmp.Diff(want, view(p), cmpopts.EquateApproxTime(5*time.Second)); diff != "" {
				t.Errorf("principal mismatch (-want +got):\n%s", diff)
			}
			// A JWT's exp is at most iat+1h (SPEC §5.1); an opaque token's
			// expiry is fosite's, rounded to the second.
			limit := time.Hour
			if p.Format == bff.FormatBearer {
				limit += time.Second
			}
			if got := p.ExpiresAt.Sub(p.IssuedAt); got < time.Hour-2*time.Second || got > limit {
				t.Errorf("lifetime = %s, want about 1h and at most %s", got, limit)
			}
			if want.UserID != 0 {
				if diff := cmp.Diff(alice, *p.User, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
					t.Errorf("user mismatch (-want +got):\n%s", diff)
				}
			}
			switch p.Format {
			case bff.FormatJWT:
				claims := testkit.Segment(t, tok, 1)
				if p.JTI == "" || p.JTI != claims["jti"] {
					t.Errorf("JTI = %q, want the jti claim %v", p.JTI, claims["jti"])
				}
				if p.FamilyID != "" {
					t.Errorf("FamilyID = %q, want none for a JWT", p.FamilyID)
				}
			case bff.FormatBearer:
				if p.FamilyID == "" {
					t.Error("FamilyID is empty for an opaque token")
				}
				if p.JTI != "" {
					t.Errorf("JTI = %q, want none for an opaque token", p.JTI)
				}
			}
		})
	}
}

func TestValidateJWTSchemeNeedsJWT(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	c := env.PublicClient(t, "mobile")
	newUser(t, env, "bob")
	opaque, _ := tokens(t, env, c.ID, "bob", bff.FormatBearer)
	v := env.Validator
	if _, err := v.Validate(context.Background(), bearer(opaque)); err != nil {
		t.Fatalf("the opaque token is valid as Bearer: %v", err)
	}
	_, err := v.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeJWT, Token: opaque})
	checkVerdict(t, err, bff.ErrInvalidToken)
}

// TestValidateJWTClaims signs claim sets with the service's current key, so
// that each claim check is what rejects the token.
func TestValidateJWTClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	c := env.PublicClient(t, "mobile")
	u := newUser(t, env, "carol")
	off := newUser(t, env, "dave")
	if _, err := env.Admin.DisableUser(ctx, off.ID, "test"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	const revokedJTI = "revoked-jti"
	if err := env.Store.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeJTI{JTI: revokedJTI, ExpiresAt: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	past := now.Add(-time.Minute).Unix()

	tests := []struct {
		name   string
		user   *bff.User
		mutate func(m map[string]any)
		want   error
	}{
		{"valid", &u, func(map[string]any) {}, nil},
		{"aud as an array holding ours", &u, func(m map[string]any) { m["aud"] = []string{"other", testenv.Audience} }, nil},
		{"nbf in the past", &u, func(m map[string]any) { m["nbf"] = now.Add(-time.Minute).Unix() }, nil},
		{"no iat", &u, func(m map[string]any) { delete(m, "iat") }, nil},
		{"wrong iss", &u, func(m map[string]any) { m["iss"] = "https://evil.test" }, bff.ErrInvalidToken},
		{"iss with trailing slash", &u, func(m map[string]any) { m["iss"] = testenv.Issuer + "/" }, bff.ErrInvalidToken},
		{"no iss", &u, func(m map[string]any) { delete(m, "iss") }, bff.ErrInvalidToken},
		{"wrong aud", &u, func(m map[string]any) { m["aud"] = "ecommerce" }, bff.ErrInvalidToken},
		{"aud array without ours", &u, func(m map[string]any) { m["aud"] = []string{"ecommerce", "lms"} }, bff.ErrInvalidToken},
		{"aud of the wrong type", &u, func(m map[string]any) { m["aud"] = 7 }, bff.ErrInvalidToken},
		{"no aud", &u, func(m map[string]any) { delete(m, "aud") }, bff.ErrInvalidToken},
		{"no exp", &u, func(m map[string]any) { delete(m, "exp") }, bff.ErrInvalidToken},
		{"exp zero", &u, func(m map[string]any) { m["exp"] = 0 }, bff.ErrInvalidToken},
		{"exp as a string", &u, func(m map[string]any) { m["exp"] = fmt.Sprint(now.Add(time.Hour).Unix()) }, bff.ErrInvalidToken},
		{"nbf in the future", &u, func(m map[string]any) { m["nbf"] = now.Add(10 * time.Minute).Unix() }, bff.ErrInvalidToken},
		{"no jti", &u, func(m map[string]any) { delete(m, "jti") }, bff.ErrInvalidToken},
		{"empty jti", &u, func(m map[string]any) { m["jti"] = "" }, bff.ErrInvalidToken},
		{"no client_id", &u, func(m map[string]any) { delete(m, "client_id") }, bff.ErrInvalidToken},
		{"unknown client", &u, func(m map[string]any) { m["client_id"] = "nope" }, bff.ErrInvalidToken},
		{"no sub", &u, func(m map[string]any) { delete(m, "sub") }, bff.ErrInvalidToken},
		{"sub is the username", &u, func(m map[string]any) { m["sub"] = "carol" }, bff.ErrInvalidToken},
		{"sub of another user", &u, func(m map[string]any) { m["sub"] = off.Subject() }, bff.ErrInvalidToken},
		{"unknown user", &u, func(m map[string]any) { m["user_id"], m["sub"] = 999999, "999999" }, bff.ErrInvalidToken},
		{"claims not an object", &u, nil, bff.ErrInvalidToken},
		{"expired", &u, func(m map[string]any) { m["exp"] = past }, bff.ErrTokenExpired},
		{"expires now", &u, func(m map[string]any) { m["exp"] = now.Unix() }, bff.ErrTokenExpired},
		{"expired, wrong iss", &u, func(m map[string]any) { m["exp"], m["iss"] = past, "https://evil.test" }, bff.ErrInvalidToken},
		{"expired, unknown client", &u, func(m map[string]any) { m["exp"], m["client_id"] = past, "nope" }, bff.ErrInvalidToken},
		{"disabled user", &off, func(map[string]any) {}, bff.ErrAccountDisabled},
		{"disabled user, expired", &off, func(m map[string]any) { m["exp"] = past }, bff.ErrTokenExpired},
		{"disabled user, revoked", &off, func(m map[string]any) { m["jti"] = revokedJTI }, bff.ErrAccountDisabled},
		{"revoked jti", &u, func(m map[string]any) { m["jti"] = revokedJTI }, bff.ErrTokenRevoked},
		{"revoked jti, expired", &u, func(m map[string]any) { m["jti"], m["exp"] = revokedJTI, past }, bff.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var claims any = []string{"not", "claims"}
			if tt.mutate != nil {
				m := claimsMap(t, tt.user, c, now)
				tt.mutate(m)
				claims = m
			}
			tok, err := env.Keys.Sign(claims)
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Validate(ctx, bearer(tok))
			checkVerdict(t, err, tt.want)
			if tt.want == nil {
				if p.User == nil || p.User.ID != tt.user.ID || p.Client.ID != c.ID || p.Format != bff.FormatJWT ||
					!cmp.Equal(p.Scopes, []string{"read", "profile"}) || p.GrantType != bff.GrantPassword {
					t.Errorf("principal = %+v, want carol's JWT of %s", p, c.ID)
				}
			}
		})
	}
}

// TestValidateJWTHeaders signs with a key the test published, so that each
// header check is what rejects the token.
func TestValidateJWTHeaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	c := env.PublicClient(t, "mobile")
	u := newUser(t, env, "erin")
	currentKID := env.Keys.CurrentKID()
	priv, kid := publishTestKey(t, env)
	if env.Keys.CurrentKID() == currentKID {
		t.Fatal("publishing the test key rotates once")
	}
	currentKID = env.Keys.CurrentKID()
	foreign := newES256(t)
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claims := claimsMap(t, &u, c, time.Now())
	cert := base64.StdEncoding.EncodeToString([]byte("not really a certificate"))

	tests := []struct {
		name string
		jws  signed
		want error
	}{
		{"valid", signed{alg: jose.ES256, key: priv, kid: kid, typ: "at+jwt"}, nil},
		{"typ application/at+jwt", signed{alg: jose.ES256, key: priv, kid: kid, typ: "application/at+jwt"}, nil},
		{"typ in capitals", signed{alg: jose.ES256, key: priv, kid: kid, typ: "AT+JWT"}, nil},
		{"no kid: tried against every published key", signed{alg: jose.ES256, key: priv, typ: "at+jwt"}, nil},
		{"no typ", signed{alg: jose.ES256, key: priv, kid: kid}, bff.ErrInvalidToken},
		{"typ JWT", signed{alg: jose.ES256, key: priv, kid: kid, typ: "JWT"}, bff.ErrInvalidToken},
		{"typ at+jwt+extra", signed{alg: jose.ES256, key: priv, kid: kid, typ: "at+jwt2"}, bff.ErrInvalidToken},
		{"jku", signed{alg: jose.ES256, key: priv, kid: kid, typ: "at+jwt",
			headers: map[jose.HeaderKey]any{"jku": "https://evil.test/jwks.json"}}, bff.ErrInvalidToken},
		{"x5u", signed{alg: jose.ES256, key: priv, kid: kid, typ: "at+jwt",
			headers: map[jose.HeaderKey]any{"x5u": "https://evil.test/cert.pem"}}, bff.ErrInvalidToken},
		{"x5c", signed{alg: jose.ES256, key: priv, kid: kid, typ: "at+jwt",
			headers: map[jose.HeaderKey]any{"x5c": []string{cert}}}, bff.ErrInvalidToken},
		{"x5t", signed{alg: jose.ES256, key: priv, kid: kid, typ: "at+jwt",
			headers: map[jose.HeaderKey]any{"x5t": "abc"}}, bff.ErrInvalidToken},
		{"jwk of the signing key", signed{alg: jose.ES256, key: priv, typ: "at+jwt", embed: true}, bff.ErrInvalidToken},
		{"crit", signed{alg: jose.ES256, key: priv, kid: kid, typ: "at+jwt",
			headers: map[jose.HeaderKey]any{"crit": []string{"exp"}}}, bff.ErrInvalidToken},
		{"unknown kid", signed{alg: jose.ES256, key: priv, kid: "unknown-kid", typ: "at+jwt"}, bff.ErrInvalidToken},
		{"our current kid, the test key's signature", signed{alg: jose.ES256, key: priv, kid: currentKID, typ: "at+jwt"}, bff.ErrInvalidToken},
		{"foreign key, our current kid", signed{alg: jose.ES256, key: foreign, kid: currentKID, typ: "at+jwt"}, bff.ErrInvalidToken},
		{"foreign key, the test key's kid", signed{alg: jose.ES256, key: foreign, kid: kid, typ: "at+jwt"}, bff.ErrInvalidToken},
		{"foreign key, no kid", signed{alg: jose.ES256, key: foreign, typ: "at+jwt"}, bff.ErrInvalidToken},
		{"EdDSA key, the test key's kid", signed{alg: jose.EdDSA, key: edPriv, kid: kid, typ: "at+jwt"}, bff.ErrInvalidToken},
		{"EdDSA key, no kid", signed{alg: jose.EdDSA, key: edPriv, typ: "at+jwt"}, bff.ErrInvalidToken},
		{"ES384 is not accepted", signed{alg: jose.ES384, key: mustP384(t), typ: "at+jwt"}, bff.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.jws.claims = claims
			tok := tt.jws.compact(t)
			_, err := v.Validate(ctx, bearer(tok))
			checkVerdict(t, err, tt.want)
			_, err = v.Validate(ctx, oauth.Credential{Scheme: oauth.SchemeJWT, Token: tok})
			checkVerdict(t, err, tt.want)
		})
	}

	t.Run("JWS JSON serialization", func(t *testing.T) {
		t.Parallel()
		obj := signed{alg: jose.ES256, key: priv, kid: kid, typ: "at+jwt", claims: claims}.object(t)
		compact, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Validate(ctx, bearer(compact)); err != nil {
			t.Fatalf("the same JWS in compact form is valid: %v", err)
		}
		for _, scheme := range []oauth.Scheme{oauth.SchemeBearer, oauth.SchemeJWT} {
			_, err := v.Validate(ctx, oauth.Credential{Scheme: scheme, Token: obj.FullSerialize()})
			checkVerdict(t, err, bff.ErrInvalidToken)
		}
	})
}

func mustP384(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestValidateNonAsymmetric: a JWT naming an HS* algorithm, none, or no
// algorithm is refused as such before anything else is looked at.
func TestValidateNonAsymmetric(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	c := env.PublicClient(t, "mobile")
	u := newUser(t, env, "frank")
	kid := env.Keys.CurrentKID()
	claims := claimsMap(t, &u, c, time.Now())

	pub, ok := env.Keys.Lookup(ctx, kid)
	if !ok {
		t.Fatal("current key not found")
	}
	der, err := x509.MarshalPKIXPublicKey(pub.Key)
	if err != nil {
		t.Fatal(err)
	}
	jwkJSON, err := pub.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 64)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	bad := claimsMap(t, &u, bff.Client{ID: "nope"}, time.Now())
	bad["iss"], bad["exp"] = "https://evil.test", time.Now().Add(-time.Hour).Unix()

	hs := func(alg jose.SignatureAlgorithm, key []byte) signed {
		return signed{alg: alg, key: key, kid: kid, typ: "at+jwt", claims: claims}
	}
	tests := []struct {
		name  string
		token string
	}{
		{"HS256, random secret", hs(jose.HS256, random[:32]).compact(t)},
		{"HS384, random secret", hs(jose.HS384, random[:48]).compact(t)},
		{"HS512, random secret", hs(jose.HS512, random).compact(t)},
		{"HS256, the public key's DER as secret", hs(jose.HS256, der).compact(t)},
		{"HS256, the public JWK as secret", hs(jose.HS256, jwkJSON).compact(t)},
		{"HS256, no kid, no typ, jku, bad claims", signed{alg: jose.HS256, key: random[:32], claims: bad,
			headers: map[jose.HeaderKey]any{"jku": "https://evil.test/jwks.json"}}.compact(t)},
		{"HS256 by hand, unknown kid", unsigned(t, map[string]any{"alg": "HS256", "kid": "nope"}, claims) + "c2ln"},
		{"hs256 in lower case", unsigned(t, map[string]any{"alg": "hs256", "typ": "at+jwt", "kid": kid}, claims) + "c2ln"},
		{"alg none", unsigned(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, claims)},
		{"alg None", unsigned(t, map[string]any{"alg": "None", "typ": "at+jwt"}, claims)},
		{"alg NONE with a signature", unsigned(t, map[string]any{"alg": "NONE", "typ": "at+jwt"}, claims) + "c2ln"},
		{"no alg", unsigned(t, map[string]any{"typ": "at+jwt", "kid": kid}, claims)},
		{"empty alg", unsigned(t, map[string]any{"alg": "", "typ": "at+jwt", "kid": kid}, claims)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, scheme := range []oauth.Scheme{oauth.SchemeBearer, oauth.SchemeJWT} {
				_, err := v.Validate(ctx, oauth.Credential{Scheme: scheme, Token: tt.token})
				checkVerdict(t, err, bff.ErrNonAsymmetricToken)
			}
			_, err := v.VerifyJWT(ctx, tt.token)
			checkVerdict(t, err, bff.ErrNonAsymmetricToken)
		})
	}
}

func TestValidateTampered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	c := env.PublicClient(t, "mobile")
	newUser(t, env, "grace")
	jwt, refresh := tokens(t, env, c.ID, "grace", bff.FormatJWT)
	opaque, _ := tokens(t, env, c.ID, "grace", bff.FormatBearer)
	for _, tok := range []string{jwt, opaque} {
		if _, err := v.Validate(ctx, bearer(tok)); err != nil {
			t.Fatalf("untouched token: %v", err)
		}
	}
	other := testenv.New(t, testenv.Options{})
	oc := other.PublicClient(t, "mobile")
	newUser(t, other, "grace")
	otherJWT, _ := tokens(t, other, oc.ID, "grace", bff.FormatJWT)
	otherOpaque, _ := tokens(t, other, oc.ID, "grace", bff.FormatBearer)

	parts := strings.Split(jwt, ".")
	payload := testkit.Segment(t, jwt, 1)
	payload["scope"], payload["scopes"] = "read admin", []string{"read", "admin"}
	forged, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	header := testkit.Segment(t, jwt, 0)
	header["typ"] = "application/at+jwt"
	reheader, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding

	tests := []struct {
		name  string
		token string
	}{
		{"JWT payload changed", parts[0] + "." + enc.EncodeToString(forged) + "." + parts[2]},
		{"JWT header changed", enc.EncodeToString(reheader) + "." + parts[1] + "." + parts[2]},
		{"JWT signature changed", parts[0] + "." + parts[1] + "." + flip(parts[2], len(parts[2])/2)},
		{"JWT signature cut", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4]},
		{"JWT without signature", parts[0] + "." + parts[1] + "."},
		{"JWT signature swapped from another token", parts[0] + "." + parts[1] + "." + strings.Split(otherJWT, ".")[2]},
		{"JWT of another deployment", otherJWT},
		{"JWT header not base64", "!!!." + parts[1] + "." + parts[2]},
		{"JWT header not JSON", enc.EncodeToString([]byte("alg")) + "." + parts[1] + "." + parts[2]},
		{"JWT payload not base64", parts[0] + ".!!!." + parts[2]},
		{"opaque key changed", flip(opaque, len("ory_at_")+3)},
		{"opaque signature changed", flip(opaque, len(opaque)-5)},
		{"opaque cut", opaque[:len(opaque)-3]},
		{"opaque without prefix", strings.TrimPrefix(opaque, "ory_at_")},
		{"opaque with the refresh prefix", "ory_rt_" + strings.TrimPrefix(opaque, "ory_at_")},
		{"refresh token as access token", refresh},
		{"opaque of another deployment", otherOpaque},
		{"prefix only", "ory_at_"},
		{"random", "not-a-token"},
		{"dots only", ".."},
		{"four segments", jwt + ".x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.token == jwt || tt.token == opaque {
				t.Fatal("the tampered token equals the original")
			}
			_, err := v.Validate(ctx, bearer(tt.token))
			checkVerdict(t, err, bff.ErrInvalidToken)
		})
	}
}

// flip changes the character at i to another base64url character.
func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestValidateTokenLength(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	c := env.PublicClient(t, "mobile")
	u := newUser(t, env, "heidi")
	sign := func(pad int) string {
		m := claimsMap(t, &u, c, time.Now())
		m["padding"] = strings.Repeat("x", pad)
		tok, err := env.Keys.Sign(m)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The longest token within the limit and the shortest beyond it.
	var longest, tooLong string
	for pad := 5300; pad < 6500 && tooLong == ""; pad++ {
		switch tok := sign(pad); {
		case len(tok) <= oauth.MaxTokenLength:
			longest = tok
		default:
			tooLong = tok
		}
	}
	if longest == "" || tooLong == "" || len(longest) < oauth.MaxTokenLength-4 {
		t.Fatalf("padding search failed: %d, %d", len(longest), len(tooLong))
	}
	if _, err := v.Validate(ctx, bearer(longest)); err != nil {
		t.Errorf("a %d-byte JWT: %v, want valid", len(longest), err)
	}
	_, err := v.Validate(ctx, bearer(tooLong))
	checkVerdict(t, err, bff.ErrInvalidToken)

	hs := signed{alg: jose.HS256, key: make([]byte, 32), typ: "at+jwt",
		claims: map[string]any{"padding": strings.Repeat("x", 7000)}}.compact(t)
	_, err = v.Validate(ctx, bearer(hs))
	checkVerdict(t, err, bff.ErrInvalidToken)
	_, err = v.Validate(ctx, bearer("ory_at_"+strings.Repeat("A", oauth.MaxTokenLength)))
	checkVerdict(t, err, bff.ErrInvalidToken)
}

// TestValidateExpired lets real tokens of both formats run out.
func TestValidateExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{Config: func(c *oauth.Config) { c.AccessTokenTTL = 2 * time.Second }})
	v := env.Validator
	c := env.PublicClient(t, "mobile")
	u := newUser(t, env, "ivan")
	jwt, _ := tokens(t, env, c.ID, "ivan", bff.FormatJWT)
	opaque, _ := tokens(t, env, c.ID, "ivan", bff.FormatBearer)
	var last time.Time
	for _, tok := range []string{jwt, opaque} {
		p, err := v.Validate(ctx, bearer(tok))
		if err != nil {
			t.Fatalf("fresh token: %v", err)
		}
		if life := p.ExpiresAt.Sub(p.IssuedAt); life > 3*time.Second {
			t.Fatalf("lifetime %s, want the configured 2s", life)
		}
		if p.ExpiresAt.After(last) {
			last = p.ExpiresAt
		}
	}
	time.Sleep(time.Until(last) + 100*time.Millisecond)

	for name, tok := range map[string]string{"jwt": jwt, "opaque": opaque} {
		_, err := v.Validate(ctx, bearer(tok))
		if !errors.Is(err, bff.ErrTokenExpired) {
			t.Errorf("%s: Validate() = %v, want %v", name, err, bff.ErrTokenExpired)
		}
	}
	// Expiry is decided before the account state (SPEC §6).
	if _, err := env.Admin.DisableUser(ctx, u.ID, "test"); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"jwt": jwt, "opaque": opaque} {
		_, err := v.Validate(ctx, bearer(tok))
		if !errors.Is(err, bff.ErrTokenExpired) {
			t.Errorf("%s of a disabled user: Validate() = %v, want %v", name, err, bff.ErrTokenExpired)
		}
	}
}

// TestValidateAccountAndRevocation covers the account state and revocation
// for both formats. Each case has its own user, as disabling is per user.
func TestValidateAccountAndRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	c := env.PublicClient(t, "mobile")

	revoke := func(t *testing.T, tok string) {
		t.Helper()
		rec := env.Post("/oauth2/revoke", url.Values{"client_id": {c.ID}, "token": {tok}})
		if rec.Code != http.StatusOK {
			t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
		}
	}
	disable := func(t *testing.T, u bff.User) {
		t.Helper()
		if _, err := env.Admin.DisableUser(ctx, u.ID, "test"); err != nil {
			t.Fatal(err)
		}
	}
	enable := func(t *testing.T, u bff.User) {
		t.Helper()
		if _, err := env.Admin.EnableUser(ctx, u.ID, "test"); err != nil {
			t.Fatal(err)
		}
	}
	type step struct {
		name string
		do   func(t *testing.T, u bff.User, access, refresh string, p bff.Principal)
		want error
	}
	scenarios := []struct {
		name string
		// oneFamily: the first step revokes one token family, not the user's.
		oneFamily bool
		steps     []step
	}{
		{"disable, then enable", false, []step{
			{"disabled", func(t *testing.T, u bff.User, _, _ string, _ bff.Principal) { disable(t, u) }, bff.ErrAccountDisabled},
			{"enabled again: the disabling revoked it", func(t *testing.T, u bff.User, _, _ string, _ bff.Principal) { enable(t, u) }, bff.ErrTokenRevoked},
		}},
		{"revoke the access token, then disable", true, []step{
			{"revoked", func(t *testing.T, _ bff.User, access, _ string, _ bff.Principal) { revoke(t, access) }, bff.ErrTokenRevoked},
			{"disabled wins over revoked", func(t *testing.T, u bff.User, _, _ string, _ bff.Principal) { disable(t, u) }, bff.ErrAccountDisabled},
		}},
		{"revoke the refresh token: the family goes", true, []step{
			{"revoked", func(t *testing.T, _ bff.User, _, refresh string, _ bff.Principal) { revoke(t, refresh) }, bff.ErrTokenRevoked},
		}},
		{"revoke in the store", true, []step{
			{"revoked", func(t *testing.T, _ bff.User, access, _ string, p bff.Principal) {
				op := store.TokenOp(store.RevokeFamily{FamilyID: p.FamilyID, At: time.Now()})
				if p.Format == bff.FormatJWT {
					op = store.RevokeJTI{JTI: p.JTI, ExpiresAt: p.ExpiresAt}
				}
				if err := env.Store.ApplyTokenOps(ctx, []store.TokenOp{op}); err != nil {
					t.Fatal(err)
				}
			}, bff.ErrTokenRevoked},
		}},
		{"password change", false, []step{
			{"revoked", func(t *testing.T, u bff.User, _, _ string, _ bff.Principal) {
				if err := env.Store.SetUserPassword(ctx, u.ID, cheapHash, "test", time.Now()); err != nil {
					t.Fatal(err)
				}
			}, bff.ErrTokenRevoked},
		}},
	}
	n := 0
	for _, sc := range scenarios {
		for _, format := range []bff.TokenFormat{bff.FormatBearer, bff.FormatJWT} {
			n++
			username := fmt.Sprintf("user%d", n)
			t.Run(sc.name+"/"+string(format), func(t *testing.T) {
				t.Parallel()
				u := newUser(t, env, username)
				access, refresh := tokens(t, env, c.ID, username, format)
				bystander, _ := tokens(t, env, c.ID, username, format)
				p, err := v.Validate(ctx, bearer(access))
				if err != nil {
					t.Fatalf("fresh token: %v", err)
				}
				for i, s := range sc.steps {
					s.do(t, u, access, refresh, p)
					_, err := v.Validate(ctx, bearer(access))
					if !errors.Is(err, s.want) {
						t.Fatalf("after %q: Validate() = %v, want %v", s.name, err, s.want)
					}
					if i == 0 && sc.oneFamily {
						// Revoking one token family leaves the user's others alone.
						if _, err := v.Validate(ctx, bearer(bystander)); err != nil {
							t.Fatalf("after %q, another token of the user: %v", s.name, err)
						}
					}
				}
			})
		}
	}
}

func TestValidateDeletedClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t, testenv.Options{})
	v := env.Validator
	c := env.PublicClient(t, "doomed")
	keep := env.PublicClient(t, "kept")
	newUser(t, env, "judy")
	jwt, _ := tokens(t, env, c.ID, "judy", bff.FormatJWT)
	opaque, _ := tokens(t, env, c.ID, "judy", bff.FormatBearer)
	kept, _ := tokens(t, env, keep.ID, "judy", bff.FormatJWT)
	for _, tok := range []string{jwt, opaque} {
		if _, err := v.Validate(ctx, bearer(tok)); err != nil {
			t.Fatalf("before deletion: %v", err)
		}
	}
	if err := env.Admin.DeleteClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"jwt": jwt, "opaque": opaque} {
		_, err := v.Validate(ctx, bearer(tok))
		if !errors.Is(err, bff.ErrInvalidToken) {
			t.Errorf("%s: Validate() = %v, want %v", name, err, bff.ErrInvalidToken)
		}
	}
	if _, err := v.Validate(ctx, bearer(kept)); err != nil {
		t.Errorf("token of another client: %v", err)
	}
}
