package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
)

// The benchmarks go through the real Echo handler (routing, middleware,
// access log, metrics) in-process, so that they measure what one request
// costs the service without the noise of a network stack.
//
// Sub-benchmarks are named key=value (store=memory/alg=RS256) so that
// benchstat can project them: benchstat -col /store old.txt new.txt.

// benchSetup is one way to build the service for a benchmark.
type benchSetup struct {
	name string
	opts testenv.Options
}

// benchJWTSetups cover the default signing algorithm (RS256) and the cheap
// one (ES256) on both stores: signing dominates JWT issuance, so the
// JWT-vs-opaque ratio depends on the algorithm.
var benchJWTSetups = []benchSetup{
	{"store=memory/alg=RS256", testenv.Options{Alg: "RS256"}},
	{"store=memory/alg=ES256", testenv.Options{Alg: "ES256"}},
	{"store=postgres/alg=RS256", testenv.Options{Alg: "RS256", Postgres: true}},
	{"store=postgres/alg=ES256", testenv.Options{Alg: "ES256", Postgres: true}},
}

// benchOpaqueSetups: opaque tokens are HMACs, the algorithm does not matter.
var benchOpaqueSetups = []benchSetup{
	{"store=memory", testenv.Options{}},
	{"store=postgres", testenv.Options{Postgres: true}},
}

// benchEachSetup runs bench once per setup, on a fresh environment. A
// PostgreSQL setup without BFF_TEST_DATABASE_URL is skipped: a benchmark
// never fails for want of a database, even under CI=true (where testdb
// would fail it).
func benchEachSetup(b *testing.B, setups []benchSetup, bench func(b *testing.B, env *testenv.Env)) {
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			if s.opts.Postgres && os.Getenv(testdb.EnvVar) == "" {
				b.Skipf("%s is not set", testdb.EnvVar)
			}
			bench(b, testenv.New(b, s.opts))
		})
	}
}

// benchClientAddr is the caller's address; one address, as from one device.
const benchClientAddr = "192.0.2.1:1234"

// benchPost sends a pre-encoded form to the public handler. Building the body
// once keeps form encoding out of the measurement.
func benchPost(env *testenv.Env, path, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = benchClientAddr
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, req)
	return rec
}

// benchTokenResponse is the part of a token response the benchmarks read.
type benchTokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

// benchMustToken checks that a token request succeeded in the wanted
// format.
func benchMustToken(b *testing.B, rec *httptest.ResponseRecorder, wantType string) benchTokenResponse {
	b.Helper()
	if rec.Code != http.StatusOK {
		b.Fatalf("token request: %d %s", rec.Code, rec.Body)
	}
	var tr benchTokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		b.Fatal(err)
	}
	if tr.TokenType != wantType || tr.AccessToken == "" {
		b.Fatalf("token_type = %q, want %q (body %s)", tr.TokenType, wantType, rec.Body)
	}
	return tr
}

// benchMustStatus fails the benchmark on an unexpected status; checked on
// every iteration so that a benchmark cannot get fast by failing.
func benchMustStatus(b *testing.B, rec *httptest.ResponseRecorder, want int) {
	if rec.Code != want {
		b.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
	}
}

// benchPasswordBody is a password grant of user alice through the public
// client "mobile", asking for the given token format.
func benchPasswordBody(format string) string {
	return testenv.PasswordForm("mobile", "alice", "token_type", format).Encode()
}

// benchMobileUser creates the public client "mobile" and the user "alice".
func benchMobileUser(b *testing.B, env *testenv.Env) {
	b.Helper()
	env.PublicClient(b, "mobile")
	env.User(b, "alice")
}

// benchPassword measures a password grant: mostly argon2id (19 MiB, t=2),
// which is the point of a password hash, so compare formats with the
// refresh and client-credentials benchmarks instead.
func benchPassword(format, responseType string) func(*testing.B, *testenv.Env) {
	return func(b *testing.B, env *testenv.Env) {
		benchMobileUser(b, env)
		body := benchPasswordBody(format)
		benchMustToken(b, benchPost(env, "/oauth2/access_token", body), responseType)
		b.ReportAllocs()
		for b.Loop() {
			benchMustStatus(b, benchPost(env, "/oauth2/access_token", body), http.StatusOK)
		}
	}
}

// BenchmarkTokenJWT is a password grant issuing a JWT.
func BenchmarkTokenJWT(b *testing.B) {
	benchEachSetup(b, benchJWTSetups, benchPassword("jwt", "JWT"))
}

// BenchmarkTokenOpaque is a password grant issuing an opaque Bearer token.
func BenchmarkTokenOpaque(b *testing.B) {
	benchEachSetup(b, benchOpaqueSetups, benchPassword("bearer", "Bearer"))
}

// benchRefresh measures issuance without a password hash: each iteration
// rotates the refresh token the previous one returned, as an app does.
// Encoding the form and decoding the response are part of the loop (a
// few µs, a handful of allocations): each request depends on the last.
func benchRefresh(format, responseType string) func(*testing.B, *testenv.Env) {
	return func(b *testing.B, env *testenv.Env) {
		benchMobileUser(b, env)
		refresh := benchMustToken(b, benchPost(env, "/oauth2/access_token", benchPasswordBody(format)), responseType).RefreshToken
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"mobile"}, "token_type": {format}}
		b.ReportAllocs()
		for b.Loop() {
			form.Set("refresh_token", refresh)
			rec := benchPost(env, "/oauth2/access_token", form.Encode())
			benchMustStatus(b, rec, http.StatusOK)
			var tr benchTokenResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || tr.RefreshToken == "" {
				b.Fatalf("refresh response without refresh_token: %s", rec.Body)
			}
			refresh = tr.RefreshToken
		}
	}
}

// BenchmarkRefreshJWT rotates a refresh token and issues a JWT.
func BenchmarkRefreshJWT(b *testing.B) {
	benchEachSetup(b, benchJWTSetups, benchRefresh("jwt", "JWT"))
}

// BenchmarkRefreshOpaque rotates a refresh token and issues a Bearer token.
func BenchmarkRefreshOpaque(b *testing.B) {
	benchEachSetup(b, benchOpaqueSetups, benchRefresh("bearer", "Bearer"))
}

// benchBackend creates the confidential client "backend" and returns the
// Authorization header value that authenticates it.
func benchBackend(b *testing.B, env *testenv.Env) string {
	b.Helper()
	_, secret := env.ConfidentialClient(b, "backend")
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.SetBasicAuth("backend", secret)
	return req.Header.Get("Authorization")
}

// benchClientCredentials measures issuance to a confidential client: a
// SHA-256 secret check, no user, no password hash.
func benchClientCredentials(format, responseType string) func(*testing.B, *testenv.Env) {
	return func(b *testing.B, env *testenv.Env) {
		auth := benchBackend(b, env)
		body := url.Values{"grant_type": {"client_credentials"}, "token_type": {format}}.Encode()
		benchMustToken(b, benchPost(env, "/oauth2/access_token", body, "Authorization", auth), responseType)
		b.ReportAllocs()
		for b.Loop() {
			benchMustStatus(b, benchPost(env, "/oauth2/access_token", body, "Authorization", auth), http.StatusOK)
		}
	}
}

// BenchmarkClientCredentialsJWT issues a JWT to a confidential client.
func BenchmarkClientCredentialsJWT(b *testing.B) {
	benchEachSetup(b, benchJWTSetups, benchClientCredentials("jwt", "JWT"))
}

// BenchmarkClientCredentialsOpaque issues a Bearer token to a confidential
// client.
func BenchmarkClientCredentialsOpaque(b *testing.B) {
	benchEachSetup(b, benchOpaqueSetups, benchClientCredentials("bearer", "Bearer"))
}

// benchIntrospect measures a confidential client introspecting a user's
// token issued beforehand: client authentication, the validator (signature
// or HMAC, client, live user, revocation), and the RFC 7662 response.
func benchIntrospect(format, responseType string) func(*testing.B, *testenv.Env) {
	return func(b *testing.B, env *testenv.Env) {
		benchMobileUser(b, env)
		auth := benchBackend(b, env)
		access := benchMustToken(b, benchPost(env, "/oauth2/access_token", benchPasswordBody(format)), responseType).AccessToken
		body := url.Values{"token": {access}}.Encode()
		rec := benchPost(env, "/oauth2/introspect", body, "Authorization", auth)
		benchMustStatus(b, rec, http.StatusOK)
		if !strings.Contains(rec.Body.String(), `"active":true`) {
			b.Fatalf("the token is not active: %s", rec.Body)
		}
		b.ReportAllocs()
		for b.Loop() {
			benchMustStatus(b, benchPost(env, "/oauth2/introspect", body, "Authorization", auth), http.StatusOK)
		}
	}
}

// BenchmarkIntrospectJWT introspects a JWT access token.
func BenchmarkIntrospectJWT(b *testing.B) {
	benchEachSetup(b, benchJWTSetups, benchIntrospect("jwt", "JWT"))
}

// BenchmarkIntrospectOpaque introspects an opaque access token.
func BenchmarkIntrospectOpaque(b *testing.B) {
	benchEachSetup(b, benchOpaqueSetups, benchIntrospect("bearer", "Bearer"))
}
