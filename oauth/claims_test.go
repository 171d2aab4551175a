package oauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// claimsUser is a fixture whose username, id and name all differ, so that a
// claim taking the wrong one shows.
var claimsUser = bff.User{ID: 4217, Username: "jdoe", Email: "jane.doe@example.com", Name: "Jane Q. Doe",
	EmailVerified: true, IsStaff: true, IsSuperuser: false}

// authorizationClaims would carry authorization data, which JWTs never do
// (SPEC §1, edX "JWT usage").
var authorizationClaims = []string{"roles", "role", "permissions", "groups", "entitlements", "authorities",
	"authorization_details", "is_staff", "is_superuser", "grants", "acl"}

func TestAccessClaimsGolden(t *testing.T) {
	t.Parallel()
	iat := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	base := oauth.ClaimsInput{
		Issuer: "https://bff.example.org", Audience: "mobile-auth-bff", ClientID: "mobile-ios",
		GrantType: bff.GrantPassword, IssuedAt: iat, ExpiresAt: iat.Add(time.Hour), JTI: "0123456789abcdef",
	}
	unverified := claimsUser
	unverified.EmailVerified, unverified.IsStaff = false, false
	tests := []struct {
		golden string
		in     func(in *oauth.ClaimsInput)
		// present and absent are claims a case must and must not have,
		// beyond the golden file.
		present, absent []string
	}{
		{
			golden: "access_claims_user",
			in: func(in *oauth.ClaimsInput) {
				u := claimsUser
				in.User, in.Scopes = &u, []string{"read", "email"}
			},
			present: []string{"preferred_username", "user_id", "email", "email_verified"},
			absent:  []string{"name", "given_name", "family_name", "administrator", "superuser", "nbf", "client_incarnation"},
		},
		{
			golden: "access_claims_user_profile",
			in: func(in *oauth.ClaimsInput) {
				u := claimsUser
				in.User, in.Scopes = &u, []string{"read", "email", "profile"}
			},
			present: []string{"email", "email_verified", "name", "given_name", "family_name", "administrator", "superuser"},
		},
		{
			golden: "access_claims_user_unverified",
			in: func(in *oauth.ClaimsInput) {
				in.User, in.Scopes = &unverified, []string{"profile"}
			},
			present: []string{"email", "email_verified", "administrator", "superuser"},
		},
		{
			golden: "access_claims_client_credentials",
			in: func(in *oauth.ClaimsInput) {
				in.ClientID, in.GrantType, in.Scopes = "ecommerce-worker", bff.GrantClientCredentials, []string{"read"}
			},
			absent: []string{"preferred_username", "user_id", "email", "email_verified", "name", "administrator", "superuser"},
		},
		{
			golden: "access_claims_restricted",
			in: func(in *oauth.ClaimsInput) {
				u := claimsUser
				in.User, in.Scopes, in.Restricted = &u, []string{"read", "payments"}, true
			},
			present: []string{"email", "email_verified"},
			absent:  []string{"name", "administrator", "superuser"},
		},
		{
			// A client created since incarnations exist (ADR 0019); a
			// client from before has none, and neither have its JWTs.
			golden: "access_claims_client_incarnation",
			in: func(in *oauth.ClaimsInput) {
				u := claimsUser
				in.User, in.Scopes, in.ClientIncarnation = &u, []string{"read"}, "3q2-7wA_incarn"
			},
			present: []string{"client_incarnation"},
		},
		{
			golden: "access_claims_no_scopes",
			in: func(in *oauth.ClaimsInput) {
				u := claimsUser
				in.User = &u
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			in := base
			tt.in(&in)
			claims := oauth.NewAccessClaims(in)
			got, err := json.MarshalIndent(claims, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, tt.golden, got)

			var m map[string]any
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"iss", "aud", "sub", "client_id", "iat", "exp", "jti", "scope", "scopes",
				"grant_type", "is_restricted", "version"} {
				if _, ok := m[k]; !ok {
					t.Errorf("claim %q missing", k)
				}
			}
			for _, k := range tt.present {
				if _, ok := m[k]; !ok {
					t.Errorf("claim %q missing", k)
				}
			}
			for _, k := range append(slices.Clone(tt.absent), authorizationClaims...) {
				if _, ok := m[k]; ok {
					t.Errorf("claim %q present, want it absent", k)
				}
			}
			if _, ok := m["aud"].(string); !ok {
				t.Errorf("aud = %#v, want a single string", m["aud"])
			}
			if got, want := m["scope"], strings.Join(in.Scopes, " "); got != want {
				t.Errorf("scope = %q, want %q", got, want)
			}
			if scopes, ok := m["scopes"].([]any); !ok || len(scopes) != len(in.Scopes) {
				t.Errorf("scopes = %#v, want an array of %d", m["scopes"], len(in.Scopes))
			}
			if m["exp"].(float64)-m["iat"].(float64) > 3600 {
				t.Errorf("exp-iat = %v, want at most 3600", m["exp"].(float64)-m["iat"].(float64))
			}
			if m["is_restricted"] != in.Restricted {
				t.Errorf("is_restricted = %v, want %v", m["is_restricted"], in.Restricted)
			}
			if in.User != nil {
				// RFC 9068 §2.2 and edX: sub is the stable id, not the username.
				if m["sub"] != "4217" || m["sub"] == m["preferred_username"] {
					t.Errorf("sub = %v, want the user id 4217", m["sub"])
				}
				if m["email"] != in.User.Email || m["email_verified"] != in.User.EmailVerified {
					t.Errorf("email = %v/%v, want %v/%v", m["email"], m["email_verified"], in.User.Email, in.User.EmailVerified)
				}
			} else if m["sub"] != "client:"+in.ClientID {
				t.Errorf("sub = %v, want client:%s when no user is involved", m["sub"], in.ClientID)
			}
			if slices.Contains(in.Scopes, oauth.ScopeProfile) && in.User != nil {
				given, family := in.User.GivenAndFamilyName()
				if m["given_name"] != given || m["family_name"] != family || m["administrator"] != in.User.IsStaff {
					t.Errorf("profile claims = %v %v %v", m["given_name"], m["family_name"], m["administrator"])
				}
			}

			// The claims decode back into the same claim set.
			var back oauth.AccessClaims
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(claims, back); diff != "" {
				t.Errorf("roundtrip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewAccessClaimsDoesNotAlias(t *testing.T) {
	t.Parallel()
	scopes := []string{"read", "profile"}
	u := claimsUser
	c := oauth.NewAccessClaims(oauth.ClaimsInput{User: &u, Scopes: scopes})
	scopes[0] = "admin"
	if c.Scopes[0] != "read" || c.Scope != "read profile" {
		t.Errorf("claims follow the caller's slice: %v", c.Scopes)
	}
}

func TestAudienceJSON(t *testing.T) {
	t.Parallel()
	marshal := []struct {
		aud  oauth.Audience
		want string
	}{
		{oauth.Audience{"mobile-auth-bff"}, `"mobile-auth-bff"`},
		{oauth.Audience{"a", "b"}, `["a","b"]`},
	}
	for _, tt := range marshal {
		got, err := json.Marshal(tt.aud)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("Marshal(%v) = %s, want %s", tt.aud, got, tt.want)
		}
	}
	unmarshal := []struct {
		in      string
		want    oauth.Audience
		wantErr bool
	}{
		{`"mobile-auth-bff"`, oauth.Audience{"mobile-auth-bff"}, false},
		{`["mobile-auth-bff"]`, oauth.Audience{"mobile-auth-bff"}, false},
		{`["ecommerce","mobile-auth-bff"]`, oauth.Audience{"ecommerce", "mobile-auth-bff"}, false},
		{`[]`, oauth.Audience{}, false},
		{`7`, nil, true},
		{`{"aud":"x"}`, nil, true},
		{`[1,2]`, nil, true},
	}
	for _, tt := range unmarshal {
		var got oauth.Audience
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr {
			t.Errorf("Unmarshal(%s) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); !tt.wantErr && diff != "" {
			t.Errorf("Unmarshal(%s) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
	if !(oauth.Audience{"a", "b"}).Contains("b") || (oauth.Audience{"a"}).Contains("b") {
		t.Error("Contains is wrong")
	}
}

// TestIssuedJWT decodes JWTs from the real token endpoint.
func TestIssuedJWT(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	c := env.PublicClient(t, "mobile")
	backend, secret := env.ConfidentialClient(t, "backend", func(c *admin.NewClient) { c.Scopes = []string{"read", "write"} })
	u := newUser(t, env, "kate")

	tok, _ := tokens(t, env, c.ID, "kate", bff.FormatJWT)
	header := testkit.Segment(t, tok, 0)
	if diff := cmp.Diff(map[string]any{"alg": "ES256", "kid": env.Keys.CurrentKID(), "typ": "at+jwt"}, header); diff != "" {
		t.Errorf("header mismatch (-want +got):\n%s", diff)
	}
	claims := testkit.Segment(t, tok, 1)
	if claims["sub"] != u.Subject() || claims["sub"] == "kate" || claims["preferred_username"] != "kate" {
		t.Errorf("sub = %v, preferred_username = %v; want the id %s and the username", claims["sub"], claims["preferred_username"], u.Subject())
	}
	if claims["iss"] != testenv.Issuer || claims["aud"] != testenv.Audience || claims["client_id"] != c.ID {
		t.Errorf("iss/aud/client_id = %v/%v/%v", claims["iss"], claims["aud"], claims["client_id"])
	}
	if claims["email"] != u.Email || claims["email_verified"] != true || claims["grant_type"] != bff.GrantPassword {
		t.Errorf("email/email_verified/grant_type = %v/%v/%v", claims["email"], claims["email_verified"], claims["grant_type"])
	}
	if claims["version"] != oauth.ClaimsVersion || claims["is_restricted"] != false {
		t.Errorf("version/is_restricted = %v/%v", claims["version"], claims["is_restricted"])
	}
	iat, exp := claims["iat"].(float64), claims["exp"].(float64)
	if now := float64(time.Now().Unix()); iat > now || iat < now-60 {
		t.Errorf("iat = %v, want about now (%v)", iat, now)
	}
	if exp-iat > 3600 || exp-iat < 3590 {
		t.Errorf("exp-iat = %v, want 3600 at most (and about that)", exp-iat)
	}
	for _, k := range authorizationClaims {
		if _, ok := claims[k]; ok {
			t.Errorf("claim %q present: JWTs carry no authorization data", k)
		}
	}

	// Many JWTs: every jti is new, every token valid and within the limits.
	seen := map[string]bool{}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {backend.ID}, "client_secret": {secret}, "token_type": {"jwt"}}
	for range 50 {
		body := env.Token(t, form)
		tok := body["access_token"].(string)
		cl := testkit.Segment(t, tok, 1)
		jti, _ := cl["jti"].(string)
		if jti == "" || seen[jti] {
			t.Fatalf("jti %q is empty or repeated after %d tokens", jti, len(seen))
		}
		seen[jti] = true
		if cl["exp"].(float64)-cl["iat"].(float64) > 3600 {
			t.Fatalf("exp-iat = %v", cl["exp"].(float64)-cl["iat"].(float64))
		}
		if cl["sub"] != "client:"+backend.ID {
			t.Fatalf("sub = %v, want client:<client id>", cl["sub"])
		}
	}
}

// TestJWTPerAlgorithm issues a JWT with a key of each algorithm (SPEC §3):
// the key is generated, published and signs; the token verifies against the
// JWKS as a resource server would, and stays under 2 KB with every claim.
func TestJWTPerAlgorithm(t *testing.T) {
	t.Parallel()
	for _, alg := range oauth.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := testenv.New(t, testenv.Options{Alg: string(alg)})
			c := env.PublicClient(t, "mobile")
			u, err := env.Store.CreateUser(ctx, bff.User{Username: "a-rather-long-username-of-forty-chars-xx",
				Email: "a.rather.long.address.for.testing@university.example.edu", Name: "Maximiliana Wilhelmina von Testington-Smythe",
				PasswordHash: cheapHash, EmailVerified: true, IsStaff: true, IsSuperuser: true})
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := tokens(t, env, c.ID, u.Username, bff.FormatJWT)
			if len(tok) >= 2048 {
				t.Errorf("JWT is %d bytes, want under 2048", len(tok))
			}
			header := testkit.Segment(t, tok, 0)
			if header["alg"] != string(alg) || header["typ"] != "at+jwt" || header["kid"] != env.Keys.CurrentKID() {
				t.Errorf("header = %v, want alg %s, typ at+jwt, kid %s", header, alg, env.Keys.CurrentKID())
			}
			claims := testkit.Segment(t, tok, 1)
			if claims["name"] == nil || claims["superuser"] != true {
				t.Errorf("claims = %v, want the profile claims (the largest claim set)", claims)
			}

			// The JWKS as served, then verification the way a resource server does it.
			rec := httpGet(env, "/.well-known/jwks.json")
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(rec, &set); err != nil {
				t.Fatal(err)
			}
			keys := set.Key(header["kid"].(string))
			if len(keys) != 1 || keys[0].Algorithm != string(alg) || !keys[0].IsPublic() || keys[0].Use != "sig" {
				t.Fatalf("JWKS entry for the kid = %+v, want one public %s key", keys, alg)
			}
			switch k := keys[0].Key.(type) {
			case *rsa.PublicKey:
				if alg != jose.RS256 && alg != jose.RS512 || k.N.BitLen() != 2048 {
					t.Errorf("%s key is RSA-%d", alg, k.N.BitLen())
				}
			case *ecdsa.PublicKey:
				if alg != jose.ES256 || k.Curve != elliptic.P256() {
					t.Errorf("%s key is ECDSA on %s", alg, k.Curve.Params().Name)
				}
			case ed25519.PublicKey:
				if alg != jose.EdDSA {
					t.Errorf("%s key is Ed25519", alg)
				}
			default:
				t.Errorf("%s key is a %T", alg, k)
			}
			// The kid is the RFC 7638 thumbprint: stable and derived from the key.
			thumb, err := keys[0].Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if kid := base64.RawURLEncoding.EncodeToString(thumb); kid != keys[0].KeyID {
				t.Errorf("kid = %s, want the thumbprint %s", keys[0].KeyID, kid)
			}
			for _, k := range set.Keys {
				if !k.IsPublic() {
					t.Errorf("JWKS publishes a private key: %s", k.KeyID)
				}
			}
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{alg})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify(keys[0]); err != nil {
				t.Errorf("verify against the JWKS: %v", err)
			}
			p, err := env.Validator.Validate(ctx, bearer(tok))
			if err != nil || p.User == nil || p.User.ID != u.ID {
				t.Errorf("Validate() = %+v, %v", p, err)
			}
		})
	}
}

func httpGet(env *testenv.Env, path string) []byte {
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Body.Bytes()
}
