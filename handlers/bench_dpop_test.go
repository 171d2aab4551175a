package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// The DPoP benchmarks compare a DPoP-bound token with an unbound one on
// the same route, store and format; the names differ in token= only:
//
//	go test -run '^$' -bench 'BenchmarkMe$|BenchmarkRefreshBinding' -count 6 ./handlers/ > dpop.txt
//	benchstat -col /token dpop.txt
//
// A proof is used once, so every iteration needs its own: they are signed
// before the timer starts (b.N of them), since signing is the app's work,
// not the server's. What is left is the server's check of the proof —
// the signature, the claims, the nonce's HMAC, the replay record — which
// should cost about one ES256 verification (BenchmarkDPoPProofVerify).

// benchDPoPFormats are the token formats of the DPoP benchmarks: opaque,
// and JWTs signed with the default algorithm and with the cheap one.
var benchDPoPFormats = []struct {
	name, format, tokenType, alg string
}{
	{"format=opaque", "bearer", "Bearer", ""},
	{"format=jwt/alg=RS256", "jwt", "JWT", "RS256"},
	{"format=jwt/alg=ES256", "jwt", "JWT", "ES256"},
}

// benchProofs signs n proofs for one request: method, URL and presented
// token, with the server's current nonce.
func benchProofs(b *testing.B, env *testenv.Env, key *testkit.DPoPKey, n int, method, url, token string) []string {
	b.Helper()
	nonce := env.Validator.DPoP().Nonce()
	proofs := make([]string, n)
	for i := range proofs {
		proofs[i] = key.Proof(b, method, url, token, nonce)
	}
	return proofs
}

// benchGet sends a GET to the public handler.
func benchGet(env *testenv.Env, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = benchClientAddr
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, req)
	return rec
}

// BenchmarkMe is GET /api/me with an access token issued beforehand:
// token=bearer an unbound token (Authorization: Bearer), token=dpop a
// DPoP-bound one (Authorization: DPoP and a fresh proof with ath).
func BenchmarkMe(b *testing.B) {
	for _, f := range benchDPoPFormats {
		for _, bound := range []bool{false, true} {
			name := "store=memory/" + f.name + "/token=bearer"
			if bound {
				name = "store=memory/" + f.name + "/token=dpop"
			}
			b.Run(name, func(b *testing.B) {
				env := testenv.New(b, testenv.Options{Alg: f.alg})
				benchMobileUser(b, env)
				key := testkit.NewDPoPKey(b)
				if !bound {
					access := benchMustToken(b, benchPost(env, "/oauth2/access_token", benchPasswordBody(f.format)), f.tokenType).AccessToken
					benchMustStatus(b, benchGet(env, "/api/me", "Authorization", "Bearer "+access), http.StatusOK)
					auth := "Bearer " + access
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						benchMustStatus(b, benchGet(env, "/api/me", "Authorization", auth), http.StatusOK)
					}
					return
				}
				proof := benchProofs(b, env, key, 1, http.MethodPost, testenv.Issuer+"/oauth2/access_token", "")[0]
				access := benchMustToken(b, benchPost(env, "/oauth2/access_token", benchPasswordBody(f.format), "DPoP", proof), "DPoP").AccessToken
				auth := "DPoP " + access
				benchMustStatus(b, benchGet(env, "/api/me", "Authorization", auth, "DPoP",
					benchProofs(b, env, key, 1, http.MethodGet, meURL, access)[0]), http.StatusOK)
				proofs := benchProofs(b, env, key, b.N, http.MethodGet, meURL, access)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					benchMustStatus(b, benchGet(env, "/api/me", "Authorization", auth, "DPoP", proofs[i]), http.StatusOK)
				}
			})
		}
	}
}

// BenchmarkRefreshBinding rotates a refresh token as an app does:
// token=bearer an unbound one, token=dpop one bound to the app's key,
// refreshed with a proof by it (and bound again).
func BenchmarkRefreshBinding(b *testing.B) {
	for _, f := range benchDPoPFormats {
		for _, bound := range []bool{false, true} {
			name, want := "store=memory/"+f.name+"/token=bearer", f.tokenType
			if bound {
				name, want = "store=memory/"+f.name+"/token=dpop", "DPoP"
			}
			b.Run(name, func(b *testing.B) {
				env := testenv.New(b, testenv.Options{Alg: f.alg})
				benchMobileUser(b, env)
				key := testkit.NewDPoPKey(b)
				var header []string
				if bound {
					header = []string{"DPoP", benchProofs(b, env, key, 1, http.MethodPost, tokenURL, "")[0]}
				}
				refresh := benchMustToken(b, benchPost(env, "/oauth2/access_token", benchPasswordBody(f.format), header...), want).RefreshToken
				var proofs []string
				if bound {
					proofs = benchProofs(b, env, key, b.N, http.MethodPost, tokenURL, "")
				}
				form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"mobile"}, "token_type": {f.format}}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					form.Set("refresh_token", refresh)
					if bound {
						header = []string{"DPoP", proofs[i]}
					}
					rec := benchPost(env, "/oauth2/access_token", form.Encode(), header...)
					benchMustStatus(b, rec, http.StatusOK)
					var tr benchTokenResponse
					if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || tr.RefreshToken == "" || tr.TokenType != want {
						b.Fatalf("refresh response: %s", rec.Body)
					}
					refresh = tr.RefreshToken
				}
			})
		}
	}
}

// BenchmarkDPoPProofVerify is the yardstick: parsing a proof and verifying
// its ES256 signature with the embedded key, as the check does, and
// nothing else.
func BenchmarkDPoPProofVerify(b *testing.B) {
	key := testkit.NewDPoPKey(b)
	proof := key.Proof(b, http.MethodGet, meURL, "token", "nonce")
	b.ReportAllocs()
	for b.Loop() {
		jws, err := jose.ParseSignedCompact(proof, oauth.DPoPAlgorithms)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jws.Verify(jws.Signatures[0].Protected.JSONWebKey); err != nil {
			b.Fatal(err)
		}
	}
}
