package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// FuzzParseAuthorization checks the Authorization header parser: it never
// panics, a missing header and a malformed one are told apart, and what it
// accepts is one of the two schemes with a non-empty token taken from the
// header as written, which parses again to the same credential.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"Bearer ory_at_abc.def", "JWT a.b.c", "bearer  abc ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer\tabc",
		"Bearer \u00a0", "JWT\u00a0a.b.c", " Bearer abc", "Bearer a b c", "", "DPoP ory_at_abc.def", "dpop a.b.c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		c, err := oauth.ParseAuthorization(header)
		if err != nil {
			if c != (oauth.Credential{}) {
				t.Fatalf("ParseAuthorization(%q) = %+v with error %v", header, c, err)
			}
			want := bff.ErrInvalidToken
			if header == "" {
				want = bff.ErrNoCredential
			}
			if !errors.Is(err, want) || errors.Is(err, bff.ErrNoCredential) && errors.Is(err, bff.ErrInvalidToken) {
				t.Fatalf("ParseAuthorization(%q) error = %v, want %v", header, err, want)
			}
			return
		}
		scheme, _, _ := strings.Cut(header, " ")
		switch {
		case c.Scheme == oauth.SchemeBearer && strings.EqualFold(scheme, "Bearer"):
		case c.Scheme == oauth.SchemeJWT && strings.EqualFold(scheme, "JWT"):
		case c.Scheme == oauth.SchemeDPoP && strings.EqualFold(scheme, "DPoP"):
		default:
			t.Fatalf("ParseAuthorization(%q) = scheme %q", header, c.Scheme)
		}
		if c.Token == "" || c.Token != strings.TrimSpace(c.Token) || !strings.Contains(header, c.Token) {
			t.Fatalf("ParseAuthorization(%q) = token %q", header, c.Token)
		}
		again, err := oauth.ParseAuthorization(string(c.Scheme) + " " + c.Token)
		if err != nil || again != c {
			t.Fatalf("ParseAuthorization(%q) = %+v, but its canonical form parses to %+v, %v", header, c, again, err)
		}
	})
}

// fuzzKID is the kid of the key FuzzVerifyJWTClaims signs with: fixed, so
// that the seed corpus names it.
const fuzzKID = "fuzz-test-key"

// fuzzEnv is the service the JWT fuzz targets present tokens to: the
// public client "mobile", the user "alice" (id 1, its subject in the seed
// corpus), and a published ES256 key of the test's, kid fuzzKID.
type fuzzEnv struct {
	env    *testenv.Env
	v      *oauth.Validator
	key    *ecdsa.PrivateKey // published as fuzzKID
	jwt    string            // a JWT the service issued
	user   bff.User
	client bff.Client
}

func newFuzzEnv(f testing.TB) *fuzzEnv {
	f.Helper()
	ctx := context.Background()
	env := testenv.New(f, testenv.Options{})
	client := env.PublicClient(f, "mobile")
	u, err := env.Store.CreateUser(ctx, bff.User{Username: "alice", Email: "alice@example.com", Name: "Test alice",
		PasswordHash: cheapHash, EmailVerified: true})
	if err != nil {
		f.Fatal(err)
	}
	if u.ID != 1 {
		f.Fatalf("alice has id %d; the seed corpus says 1", u.ID)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := jose.JSONWebKey{Key: priv.Public(), KeyID: fuzzKID, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now().UTC()
	if err := env.Store.RotateSigningKeys(ctx, bff.SigningKey{KID: fuzzKID, Algorithm: "ES256",
		PrivateKey: []byte("never opened: next keys do not sign"), PublicJWK: pub, CreatedAt: now}, now); err != nil {
		f.Fatal(err)
	}
	if err := env.Keys.Reload(ctx); err != nil {
		f.Fatal(err)
	}
	if _, ok := env.Keys.Lookup(ctx, fuzzKID); !ok || env.Keys.CurrentKID() == fuzzKID {
		f.Fatal("the fuzz key must be published and must not sign for the service")
	}
	rec := env.Post("/oauth2/access_token", testenv.PasswordForm("mobile", "alice", "token_type", "jwt"))
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 || !oauth.IsJWT(body.AccessToken) {
		f.Fatalf("password grant: %d %s", rec.Code, rec.Body)
	}
	return &fuzzEnv{env: env, v: env.Validator, key: priv, jwt: body.AccessToken, user: u, client: client}
}

// FuzzVerifyJWT presents arbitrary tokens. Whatever the validator accepts
// must verify, by a check written here without go-jose, under one of the
// service's published keys, and carry typ at+jwt, the service's iss and
// aud, and an exp.
func FuzzVerifyJWT(f *testing.F) {
	fe := newFuzzEnv(f)
	if _, err := fe.v.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeBearer, Token: fe.jwt}); err != nil {
		f.Fatalf("Validate(the service's JWT) = %v", err)
	}
	if err := fe.independentCheck(fe.jwt); err != nil {
		f.Fatalf("independentCheck(the service's JWT): %v", err)
	}
	f.Add(fe.jwt)
	parts := strings.Split(fe.jwt, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + "." + parts[1] + "." + parts[2] + "=")
	f.Add(parts[0] + "." + parts[1] + "." + flip(parts[2], 3))
	f.Add(parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[2])
	f.Add(`{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`)
	f.Fuzz(func(t *testing.T, token string) {
		fe.check(t, token)
	})
}

// FuzzVerifyJWTClaims signs arbitrary header and payload bytes with the
// published fuzz key (foreign: with a key the service never published,
// under the same kid), so that the header and claim checks are what is
// exercised. Tokens of the foreign key are never accepted; the others only
// with typ at+jwt, the service's iss and aud, and an exp.
func FuzzVerifyJWTClaims(f *testing.F) {
	fe := newFuzzEnv(f)
	foreign, err := ecdsa.GenerateKey(fe.key.Curve, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	header := `{"alg":"ES256","kid":"` + fuzzKID + `","typ":"at+jwt"}`
	payload, err := json.Marshal(oauth.NewAccessClaims(oauth.ClaimsInput{
		Issuer: testenv.Issuer, Audience: testenv.Audience, User: &fe.user, ClientID: "mobile",
		ClientIncarnation: fe.client.Incarnation,
		Scopes:            []string{"read", "profile"}, GrantType: bff.GrantPassword,
		IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute), JTI: "fuzz-jti",
	}))
	if err != nil {
		f.Fatal(err)
	}
	// The seed is a token the service accepts: the properties are checked
	// on something that passes, not only on rejections.
	seed, err := signES256(fe.key, []byte(header), payload)
	if err != nil {
		f.Fatal(err)
	}
	if p, err := fe.v.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeJWT, Token: seed}); err != nil || p.User == nil || p.User.ID != fe.user.ID {
		f.Fatalf("Validate(seed) = %+v, %v; want alice", p, err)
	}
	if err := fe.independentCheck(seed); err != nil {
		f.Fatalf("independentCheck(seed): %v", err)
	}
	f.Add([]byte(header), payload, false)
	f.Add([]byte(header), payload, true)
	f.Fuzz(func(t *testing.T, header, payload []byte, useForeign bool) {
		key := fe.key
		if useForeign {
			key = foreign
		}
		token, err := signES256(key, header, payload)
		if err != nil {
			t.Fatal(err)
		}
		if accepted := fe.check(t, token); accepted && useForeign {
			t.Fatalf("accepted a token signed with an unpublished key: %s", token)
		}
	})
}

// signES256 builds a compact JWS of header and payload, signed with key,
// without go-jose: the header may say anything.
func signES256(key *ecdsa.PrivateKey, header, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig), nil
}

// check presents token every way a client can and reports whether the
// validator accepted it; it fails the test when an accepted token breaks
// the properties of FuzzVerifyJWT.
func (fe *fuzzEnv) check(t *testing.T, token string) bool {
	t.Helper()
	ctx := context.Background()
	claims, verr := fe.v.VerifyJWT(ctx, token)
	accepted := false
	for _, scheme := range []oauth.Scheme{oauth.SchemeBearer, oauth.SchemeJWT, oauth.SchemeCookie} {
		p, err := fe.v.Validate(ctx, oauth.Credential{Scheme: scheme, Token: token})
		if err != nil {
			continue
		}
		if scheme == oauth.SchemeCookie {
			continue // a session cookie, not a JWT: not this target's
		}
		if p.Format == bff.FormatJWT {
			accepted = true
			if verr != nil {
				t.Fatalf("Validate accepted a JWT that VerifyJWT rejects (%v): %s", verr, token)
			}
			if p.Client.ID != claims.ClientID || p.JTI != claims.JTI {
				t.Fatalf("principal %+v does not come from the claims %+v", p, claims)
			}
		}
	}
	if verr == nil {
		accepted = true
	}
	if accepted {
		if err := fe.independentCheck(token); err != nil {
			t.Fatalf("the validator accepted %s: %v", token, err)
		}
	}
	return accepted
}

// independentCheck verifies a compact ES256 JWS and its header and claims
// against the service's published keys without go-jose or the validator.
func (fe *fuzzEnv) independentCheck(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("not three segments")
	}
	enc := base64.RawURLEncoding.Strict()
	var raw [3][]byte
	for i, p := range parts {
		b, err := enc.DecodeString(p)
		if err != nil {
			return errors.New("a segment is not canonical base64url")
		}
		raw[i] = b
	}
	var header map[string]any
	if err := json.Unmarshal(raw[0], &header); err != nil {
		return errors.New("header is not a JSON object")
	}
	if header["alg"] != "ES256" {
		return errors.New("alg is not the published keys' ES256")
	}
	if typ, _ := header["typ"].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return errors.New("typ is not at+jwt")
	}
	for _, h := range []string{"jku", "x5u", "jwk", "x5c", "crit"} {
		if _, ok := header[h]; ok {
			return errors.New("header " + h + " present")
		}
	}
	kid, hasKID := header["kid"].(string)
	if _, ok := header["kid"]; ok && !hasKID {
		return errors.New("kid is not a string")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	verified := false
	for _, k := range fe.env.Keys.Published() {
		pub, ok := k.Key.(*ecdsa.PublicKey)
		if !ok || (hasKID && k.KeyID != kid) || len(raw[2]) != 64 {
			continue
		}
		r, s := new(big.Int).SetBytes(raw[2][:32]), new(big.Int).SetBytes(raw[2][32:])
		if ecdsa.Verify(pub, sum[:], r, s) {
			verified = true
			break
		}
	}
	if !verified {
		return errors.New("no published key verifies the signature")
	}
	var claims map[string]any
	if err := json.Unmarshal(raw[1], &claims); err != nil {
		return errors.New("claims are not a JSON object")
	}
	if claims["iss"] != testenv.Issuer {
		return errors.New("iss is not the service's")
	}
	switch aud := claims["aud"].(type) {
	case string:
		if aud != testenv.Audience {
			return errors.New("aud is not the service's")
		}
	case []any:
		found := false
		for _, a := range aud {
			found = found || a == testenv.Audience
		}
		if !found {
			return errors.New("aud does not hold the service's")
		}
	default:
		return errors.New("aud is neither a string nor an array")
	}
	if exp, ok := claims["exp"].(float64); !ok || exp == 0 {
		return errors.New("no exp")
	}
	return nil
}

// TestVerifyJWTClaimNamesExact: claim names are case-sensitive and a claim
// is named once (RFC 7519 §4), as every other JWT library reads them; a
// reader that folded case or took the last of two would see claims the
// signer did not write. FuzzVerifyJWTClaims found "isS" accepted for iss.
func TestVerifyJWTClaimNamesExact(t *testing.T) {
	t.Parallel()
	fe := newFuzzEnv(t)
	header := []byte(`{"alg":"ES256","kid":"` + fuzzKID + `","typ":"at+jwt"}`)
	const rest = `"aud":"mobile-auth-bff","sub":"1","user_id":1,"client_id":"mobile","exp":4102444800,"jti":"exact-names"`
	for name, payload := range map[string]string{
		"iss folded":      `{"ISS":"https://bff.test",` + rest + `}`,
		"iss twice":       `{"iss":"https://evil.test","iss":"https://bff.test",` + rest + `}`,
		"exp folded":      `{"iss":"https://bff.test","Exp":4102444800,` + strings.Replace(rest, `,"exp":4102444800`, "", 1) + `}`,
		"client_id twice": `{"iss":"https://bff.test",` + rest + `,"client_id":"mobile"}`,
	} {
		tok, err := signES256(fe.key, header, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fe.v.VerifyJWT(context.Background(), tok); !errors.Is(err, bff.ErrInvalidToken) {
			t.Errorf("%s: VerifyJWT() error = %v, want %v", name, err, bff.ErrInvalidToken)
		}
	}
	tok, err := signES256(fe.key, header, []byte(`{"iss":"https://bff.test",`+rest+`}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fe.v.VerifyJWT(context.Background(), tok); err != nil {
		t.Errorf("the same claims named exactly: VerifyJWT() = %v", err)
	}
}
