package oauth_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// These benchmarks put a number on what the validator adds to a JWT's
// signature check (header rules, claims, client, live user, revoked jti),
// for the ratio "validator rate vs raw signature rate":
//
//	BenchmarkVerifyJWTSignatureOnly  go-jose parse + verify with the public key
//	BenchmarkVerifyJWT               Validator.VerifyJWT: the above + header and claim rules
//	BenchmarkValidateJWT             Validator.Validate: the above + store lookups (the
//	                                 same token each time: its signature is checked once)
//	BenchmarkValidateJWTCold         the same, its signature checked every time
//
// Sub-benchmarks are named key=value for benchstat projections.

// benchAlgs are the default signing algorithm and the cheap one.
var benchAlgs = []string{"RS256", "ES256"}

// benchStores are the stores a validator benchmark runs on. PostgreSQL is
// skipped without BFF_TEST_DATABASE_URL, even under CI=true: a benchmark
// never fails for want of a database.
var benchStores = []struct {
	name     string
	postgres bool
}{{"memory", false}, {"postgres", true}}

// benchEnv builds a service with a public client "mobile" and a user
// "alice", and issues alice a token of the given format.
func benchEnv(b *testing.B, opts testenv.Options, format string) (*testenv.Env, string) {
	b.Helper()
	if opts.Postgres && os.Getenv(testdb.EnvVar) == "" {
		b.Skipf("%s is not set", testdb.EnvVar)
	}
	env := testenv.New(b, opts)
	env.PublicClient(b, "mobile")
	env.User(b, "alice")
	body := env.Token(b, testenv.PasswordForm("mobile", "alice", "token_type", format))
	token, _ := body["access_token"].(string)
	if token == "" {
		b.Fatalf("no access_token in %v", body)
	}
	return env, token
}

// benchValidate measures Validate on one token, failing on any verdict
// other than valid so that the benchmark cannot get fast by rejecting.
func benchValidate(b *testing.B, env *testenv.Env, token string) {
	ctx := context.Background()
	v := env.Validator
	cred := oauth.Credential{Scheme: oauth.SchemeBearer, Token: token}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, cred); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateJWT is the full validation of a JWT access token.
func BenchmarkValidateJWT(b *testing.B) {
	for _, st := range benchStores {
		for _, alg := range benchAlgs {
			b.Run("store="+st.name+"/alg="+alg, func(b *testing.B) {
				env, token := benchEnv(b, testenv.Options{Alg: alg, Postgres: st.postgres}, "jwt")
				benchValidate(b, env, token)
			})
		}
	}
}

// BenchmarkValidateJWTCold is BenchmarkValidateJWT on a token presented
// for the first time: the validator's cache of verified JWTs is emptied
// before each validation, so that the signature is checked every time (as
// every validation did before the cache).
func BenchmarkValidateJWTCold(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run("store=memory/alg="+alg, func(b *testing.B) {
			env, token := benchEnv(b, testenv.Options{Alg: alg}, "jwt")
			ctx := context.Background()
			v := env.Validator
			cred := oauth.Credential{Scheme: oauth.SchemeBearer, Token: token}
			b.ReportAllocs()
			for b.Loop() {
				v.ForgetVerifiedJWTs()
				if _, err := v.Validate(ctx, cred); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidateOpaque is the full validation of an opaque access token:
// HMAC check, then the token, client and user rows — on PostgreSQL also
// through the cache the service puts in front of it (live, as with its
// change feed up).
func BenchmarkValidateOpaque(b *testing.B) {
	for _, st := range benchStores {
		b.Run("store="+st.name, func(b *testing.B) {
			env, token := benchEnv(b, testenv.Options{Postgres: st.postgres}, "bearer")
			benchValidate(b, env, token)
		})
	}
	b.Run("store=postgres-cached", func(b *testing.B) {
		env, token := benchEnv(b, testenv.Options{Postgres: true, Cache: true}, "bearer")
		benchValidate(b, env, token)
	})
}

// BenchmarkSignJWT is the issuance of a JWT access token's signature:
// KeyManager.Sign of a user's claims (JSON and the signature).
func BenchmarkSignJWT(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run("alg="+alg, func(b *testing.B) {
			env := testenv.New(b, testenv.Options{Alg: alg})
			now := time.Now()
			claims := oauth.AccessClaims{
				Issuer: testenv.Issuer, Audience: oauth.Audience{testenv.Audience}, Subject: "user:42",
				ClientID: "mobile", IssuedAt: now.Unix(), Expiry: now.Add(time.Hour).Unix(), JTI: "bench-jti",
				Scope: "read email", Scopes: []string{"read", "email"}, GrantType: "password",
				PreferredUsername: "alice", UserID: 42, Email: "alice@example.com", Version: "1.0.0",
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := env.Keys.Sign(claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyJWT is Validator.VerifyJWT: signature, header and claim
// rules, no store access (the key set is in memory).
func BenchmarkVerifyJWT(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run("alg="+alg, func(b *testing.B) {
			env, token := benchEnv(b, testenv.Options{Alg: alg}, "jwt")
			ctx := context.Background()
			v := env.Validator
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyJWT(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyJWTSignatureOnly is the floor any JWT validation pays:
// go-jose parsing the compact JWS and verifying it with the public key,
// nothing else. The token is the one BenchmarkValidateJWT validates.
func BenchmarkVerifyJWTSignatureOnly(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run("alg="+alg, func(b *testing.B) {
			env, token := benchEnv(b, testenv.Options{Alg: alg}, "jwt")
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}
			key := benchPublicKey(b, env, token, algs)
			b.ReportAllocs()
			for b.Loop() {
				jws, err := jose.ParseSignedCompact(token, algs)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := jws.Verify(key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchPublicKey returns the published key that signed token.
func benchPublicKey(b *testing.B, env *testenv.Env, token string, algs []jose.SignatureAlgorithm) jose.JSONWebKey {
	b.Helper()
	jws, err := jose.ParseSignedCompact(token, algs)
	if err != nil {
		b.Fatal(err)
	}
	key, ok := env.Keys.Lookup(context.Background(), jws.Signatures[0].Header.KeyID)
	if !ok {
		b.Fatal("the token's kid is not published")
	}
	return key
}
