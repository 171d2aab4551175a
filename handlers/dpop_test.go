package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// The tests below are a DPoP client (RFC 9449) written on go-jose
// (testkit.DPoPKey), run against the handlers on both stores.

const (
	tokenURL = testenv.Issuer + "/oauth2/access_token"
	meURL    = testenv.Issuer + "/api/me"
)

// dpopEnv is an environment with a public mobile client, a user and a
// confidential client that may introspect.
type dpopEnv struct {
	*testenv.Env
	introspector, secret string
}

func newDPoPEnv(t *testing.T, pg bool, opts ...func(*testenv.Options)) dpopEnv {
	t.Helper()
	o := testenv.Options{Postgres: pg}
	for _, f := range opts {
		f(&o)
	}
	env := testenv.New(t, o)
	env.PublicClient(t, "mobile")
	env.PublicClient(t, "mobile-jwt", func(c *admin.NewClient) { c.TokenType = bff.FormatJWT })
	env.User(t, "dora")
	_, secret := env.ConfidentialClient(t, "backend")
	return dpopEnv{Env: env, introspector: "backend", secret: secret}
}

// send makes a request to the public handler.
func (e dpopEnv) send(method, path string, form url.Values, header ...string) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.RemoteAddr = "192.0.2.7:1234"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.Public.ServeHTTP(rec, req)
	return rec
}

// nonce asks the server for its DPoP nonce the way a client learns it: a
// token request whose proof has none is answered use_dpop_nonce with the
// nonce in DPoP-Nonce.
func (e dpopEnv) nonce(t *testing.T, key *testkit.DPoPKey) string {
	t.Helper()
	rec := e.send(http.MethodPost, "/oauth2/access_token", testenv.PasswordForm("mobile", "dora"),
		"DPoP", key.Proof(t, http.MethodPost, tokenURL, "", ""))
	if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "use_dpop_nonce" {
		t.Fatalf("proof without nonce: %d %s, want 400 use_dpop_nonce", rec.Code, rec.Body)
	}
	n := rec.Header().Get("DPoP-Nonce")
	if n == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	return n
}

// boundToken runs form through the token endpoint with a proof by key and
// returns the response, which must be a DPoP-bound token.
func (e dpopEnv) boundToken(t *testing.T, key *testkit.DPoPKey, form url.Values, header ...string) map[string]any {
	t.Helper()
	rec := e.send(http.MethodPost, "/oauth2/access_token", form,
		append([]string{"DPoP", key.Proof(t, http.MethodPost, tokenURL, "", e.nonce(t, key))}, header...)...)
	if rec.Code != http.StatusOK {
		t.Fatalf("bound token request: %d %s", rec.Code, rec.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out["token_type"] != "DPoP" {
		t.Fatalf("token_type = %v, want DPoP", out["token_type"])
	}
	return out
}

// me calls /api/me with the given headers.
func (e dpopEnv) me(headers ...string) *httptest.ResponseRecorder {
	return e.send(http.MethodGet, "/api/me", nil, headers...)
}

// dpopMe is /api/me with a bound token and a fresh proof by key.
func (e dpopEnv) dpopMe(t *testing.T, key *testkit.DPoPKey, token string) *httptest.ResponseRecorder {
	t.Helper()
	nonce := e.Validator.DPoP().Nonce()
	return e.me("Authorization", "DPoP "+token, "DPoP", key.Proof(t, http.MethodGet, meURL, token, nonce))
}

func (e dpopEnv) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	rec := e.send(http.MethodPost, "/oauth2/introspect", url.Values{"token": {token}},
		"Authorization", basic(e.introspector, e.secret))
	if rec.Code != http.StatusOK {
		t.Fatalf("introspect: %d %s", rec.Code, rec.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantDPoPRejection checks a 401 of a resource route: the problem code
// and DPoP's challenge with the RFC's error.
func wantDPoPRejection(t *testing.T, what string, rec *httptest.ResponseRecorder, code, challengeError string) {
	t.Helper()
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("%s: %d %s, want 401", what, rec.Code, rec.Body)
	}
	if got := problemCode(t, rec); got != code {
		t.Errorf("%s: code %q, want %q", what, got, code)
	}
	ch := rec.Header().Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, `DPoP error="`+challengeError+`"`) || !strings.Contains(ch, `algs="ES256`) {
		t.Errorf("%s: WWW-Authenticate %q, want DPoP error=%q with algs", what, ch, challengeError)
	}
}

func TestDPoPBoundTokens(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := newDPoPEnv(t, pg)
		key := testkit.NewDPoPKey(t)

		for _, client := range []string{"mobile", "mobile-jwt"} {
			t.Run(client, func(t *testing.T) {
				res := env.boundToken(t, key, testenv.PasswordForm(client, "dora"))
				access := res["access_token"].(string)
				if client == "mobile-jwt" {
					_, claims := testkit.VerifyJWT(t, access, env.Keys.JWKS(), "ES256")
					cnf, _ := claims["cnf"].(map[string]any)
					if cnf["jkt"] != key.JKT {
						t.Errorf("JWT cnf = %v, want jkt %s", claims["cnf"], key.JKT)
					}
				}
				in := env.introspect(t, access)
				cnf, _ := in["cnf"].(map[string]any)
				if in["active"] != true || in["token_type"] != "DPoP" || cnf["jkt"] != key.JKT {
					t.Errorf("introspection = %v, want active DPoP with cnf.jkt %s", in, key.JKT)
				}

				// With its proof the token works, once per proof.
				nonce := env.Validator.DPoP().Nonce()
				proof := key.Proof(t, http.MethodGet, meURL, access, nonce)
				rec := env.me("Authorization", "DPoP "+access, "DPoP", proof)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"username":"dora"`) {
					t.Fatalf("/api/me with DPoP: %d %s", rec.Code, rec.Body)
				}
				if rec.Header().Get("DPoP-Nonce") == "" {
					t.Error("a DPoP request's answer has no DPoP-Nonce")
				}
				wantDPoPRejection(t, "replayed proof", env.me("Authorization", "DPoP "+access, "DPoP", proof),
					"invalid_dpop_proof", "invalid_dpop_proof")

				// Stolen: the token without the key is nothing.
				wantDPoPRejection(t, "bound token as Bearer", env.me("Authorization", "Bearer "+access),
					"invalid_token", "invalid_token")
				if client == "mobile-jwt" {
					wantDPoPRejection(t, "bound token as JWT", env.me("Authorization", "JWT "+access),
						"invalid_token", "invalid_token")
				}
				thief := testkit.NewDPoPKey(t)
				wantDPoPRejection(t, "proof by another key",
					env.me("Authorization", "DPoP "+access, "DPoP", thief.Proof(t, http.MethodGet, meURL, access, nonce)),
					"invalid_dpop_proof", "invalid_dpop_proof")
				wantDPoPRejection(t, "no proof", env.me("Authorization", "DPoP "+access),
					"invalid_dpop_proof", "invalid_dpop_proof")

				// Each rule of the proof (RFC 9449 §4.3).
				bad := map[string]func(c *testkit.ProofClaims){
					"wrong htm":         func(c *testkit.ProofClaims) { c.HTM = http.MethodPost },
					"wrong htu":         func(c *testkit.ProofClaims) { c.HTU = testenv.Issuer + "/api/mobile/v0.5/my_user_info" },
					"other host":        func(c *testkit.ProofClaims) { c.HTU = "https://evil.test/api/me" },
					"ath of another":    func(c *testkit.ProofClaims) { c.ATH = otherFirst(c.ATH) },
					"no ath":            func(c *testkit.ProofClaims) { c.ATH = "" },
					"no jti":            func(c *testkit.ProofClaims) { c.JTI = "" },
					"iat too old":       func(c *testkit.ProofClaims) { c.IAT = time.Now().Add(-oauth.DefaultDPoPWindow - 5*time.Second).Unix() },
					"iat too far ahead": func(c *testkit.ProofClaims) { c.IAT = time.Now().Add(oauth.DefaultDPoPWindow + 5*time.Second).Unix() },
					"no iat":            func(c *testkit.ProofClaims) { c.IAT = 0 },
					"nonce of another":  func(c *testkit.ProofClaims) { c.Nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
					"no nonce":          func(c *testkit.ProofClaims) { c.Nonce = "" },
				}
				for name, mutate := range bad {
					c := key.Claims(http.MethodGet, meURL, access, nonce)
					mutate(&c)
					code := "invalid_dpop_proof"
					if strings.Contains(name, "nonce") {
						code = "use_dpop_nonce"
					}
					rec := env.me("Authorization", "DPoP "+access, "DPoP", key.Sign(t, c))
					wantDPoPRejection(t, name, rec, code, code)
					if code == "use_dpop_nonce" && rec.Header().Get("DPoP-Nonce") != nonce {
						t.Errorf("%s: DPoP-Nonce %q, want the current nonce", name, rec.Header().Get("DPoP-Nonce"))
					}
				}
				// The edges of the window, and the RFC's leniency on htu.
				for name, mutate := range map[string]func(c *testkit.ProofClaims){
					"iat at the window's far edge":  func(c *testkit.ProofClaims) { c.IAT = time.Now().Add(-oauth.DefaultDPoPWindow + 3*time.Second).Unix() },
					"iat at the window's near edge": func(c *testkit.ProofClaims) { c.IAT = time.Now().Add(oauth.DefaultDPoPWindow - 3*time.Second).Unix() },
					"htu with query and fragment":   func(c *testkit.ProofClaims) { c.HTU = meURL + "?x=1#f" },
					"htu with default port":         func(c *testkit.ProofClaims) { c.HTU = "https://BFF.test:443/api/me" },
				} {
					c := key.Claims(http.MethodGet, meURL, access, nonce)
					mutate(&c)
					if rec := env.me("Authorization", "DPoP "+access, "DPoP", key.Sign(t, c)); rec.Code != http.StatusOK {
						t.Errorf("%s: %d %s, want 200", name, rec.Code, rec.Body)
					}
				}
				for name, proof := range map[string]string{
					"typ JWT":            key.SignWith(t, key.Claims(http.MethodGet, meURL, access, nonce), "JWT", true),
					"no jwk":             key.SignWith(t, key.Claims(http.MethodGet, meURL, access, nonce), "dpop+jwt", false),
					"not a JWS":          "not.a.jws",
					"the token as proof": access,
				} {
					wantDPoPRejection(t, name, env.me("Authorization", "DPoP "+access, "DPoP", proof),
						"invalid_dpop_proof", "invalid_dpop_proof")
				}
				two := env.me("Authorization", "DPoP "+access, "DPoP", key.Proof(t, http.MethodGet, meURL, access, nonce),
					"DPoP", key.Proof(t, http.MethodGet, meURL, access, nonce))
				wantDPoPRejection(t, "two DPoP headers", two, "invalid_dpop_proof", "invalid_dpop_proof")
			})
		}

		// An unbound token is a Bearer token: the DPoP scheme is refused,
		// and a proof sent along with Bearer changes nothing.
		plain := env.Token(t, testenv.PasswordForm("mobile", "dora"))["access_token"].(string)
		nonce := env.Validator.DPoP().Nonce()
		wantDPoPRejection(t, "unbound token with the DPoP scheme",
			env.me("Authorization", "DPoP "+plain, "DPoP", key.Proof(t, http.MethodGet, meURL, plain, nonce)),
			"invalid_token", "invalid_token")
		if rec := env.me("Authorization", "Bearer "+plain); rec.Code != http.StatusOK {
			t.Errorf("unbound Bearer token: %d %s", rec.Code, rec.Body)
		}
		if in := env.introspect(t, plain); in["token_type"] != "Bearer" || in["cnf"] != nil {
			t.Errorf("introspection of an unbound token = %v", in)
		}
	})
}

func TestDPoPRefresh(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := newDPoPEnv(t, pg)
		key := testkit.NewDPoPKey(t)
		res := env.boundToken(t, key, testenv.PasswordForm("mobile", "dora"))
		refresh := res["refresh_token"].(string)
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"mobile"}, "refresh_token": {refresh}}

		// Without a proof, or with another key's, the bound refresh token
		// is refused — and not used up.
		rec := env.send(http.MethodPost, "/oauth2/access_token", form)
		if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "invalid_dpop_proof" {
			t.Fatalf("bound refresh without proof: %d %s, want 400 invalid_dpop_proof", rec.Code, rec.Body)
		}
		thief := testkit.NewDPoPKey(t)
		rec = env.send(http.MethodPost, "/oauth2/access_token", form,
			"DPoP", thief.Proof(t, http.MethodPost, tokenURL, "", env.Validator.DPoP().Nonce()))
		if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "invalid_dpop_proof" {
			t.Fatalf("bound refresh with another key: %d %s, want 400 invalid_dpop_proof", rec.Code, rec.Body)
		}

		// With its key: a new pair, bound to the same key.
		next := env.boundToken(t, key, form)
		if rec := env.dpopMe(t, key, next["access_token"].(string)); rec.Code != http.StatusOK {
			t.Fatalf("refreshed bound token: %d %s", rec.Code, rec.Body)
		}
		form.Set("refresh_token", next["refresh_token"].(string))
		rec = env.send(http.MethodPost, "/oauth2/access_token", form)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("the rotated refresh token is bound too: %d %s", rec.Code, rec.Body)
		}
		if in := env.Token(t, form, "DPoP", key.Proof(t, http.MethodPost, tokenURL, "", env.Validator.DPoP().Nonce())); in["token_type"] != "DPoP" {
			t.Errorf("second refresh: %v", in)
		}
	})
}

func TestDPoPOtherGrants(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := newDPoPEnv(t, pg)
		key := testkit.NewDPoPKey(t)
		ctx := context.Background()

		// Client credentials: the access token is bound; a confidential
		// client has no refresh token to bind.
		cc := url.Values{"grant_type": {"client_credentials"}}
		res := env.boundToken(t, key, cc, "Authorization", basic(env.introspector, env.secret))
		if in := env.introspect(t, res["access_token"].(string)); in["token_type"] != "DPoP" {
			t.Errorf("client credentials token: %v", in)
		}

		// A client registered with dpop_bound_access_tokens must send a proof.
		if _, err := env.Store.UpdateClient(ctx, "mobile", func(c *bff.Client) error {
			c.DPoPBoundAccessTokens = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		rec := env.send(http.MethodPost, "/oauth2/access_token", testenv.PasswordForm("mobile", "dora"))
		if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "invalid_dpop_proof" {
			t.Fatalf("dpop_bound_access_tokens client without proof: %d %s", rec.Code, rec.Body)
		}
		env.boundToken(t, key, testenv.PasswordForm("mobile", "dora"))

		// The token exchange of a bound token needs a proof by its key,
		// and gives a JWT bound to it.
		if _, err := env.Store.UpdateClient(ctx, "mobile", func(c *bff.Client) error {
			c.GrantTypes = append(c.GrantTypes, bff.GrantTokenExchange)
			c.JWTEnabled = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		subject := env.boundToken(t, key, testenv.PasswordForm("mobile", "dora"))["access_token"].(string)
		ex := tokenExchangeForm("mobile", subject)
		rec = env.send(http.MethodPost, "/oauth2/access_token", ex)
		if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "invalid_dpop_proof" {
			t.Fatalf("exchange of a bound token without proof: %d %s", rec.Code, rec.Body)
		}
		rec = env.send(http.MethodPost, "/oauth2/access_token", ex,
			"DPoP", testkit.NewDPoPKey(t).Proof(t, http.MethodPost, tokenURL, "", env.Validator.DPoP().Nonce()))
		if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "invalid_dpop_proof" {
			t.Fatalf("exchange of a bound token with another key: %d %s", rec.Code, rec.Body)
		}
		jwt := env.boundToken(t, key, ex)["access_token"].(string)
		_, claims := testkit.VerifyJWT(t, jwt, env.Keys.JWKS(), "ES256")
		if cnf, _ := claims["cnf"].(map[string]any); cnf["jkt"] != key.JKT {
			t.Errorf("exchanged JWT cnf = %v", claims["cnf"])
		}
	})
}

func TestDPoPWebSession(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := newDPoPEnv(t, pg)
		key := testkit.NewDPoPKey(t)
		access := env.boundToken(t, key, testenv.PasswordForm("mobile", "dora"))["access_token"].(string)
		loginURL := testenv.Issuer + "/oauth2/login"

		rec := env.send(http.MethodPost, "/oauth2/login", nil, "Authorization", "Bearer "+access)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), `"error_code":"token_nonexistent"`) ||
			!strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), `DPoP error="invalid_token"`) {
			t.Fatalf("login with a bound token as Bearer: %d %s %v", rec.Code, rec.Body, rec.Header())
		}
		rec = env.send(http.MethodPost, "/oauth2/login", nil, "Authorization", "DPoP "+access,
			"DPoP", key.Proof(t, http.MethodPost, loginURL, access, env.Validator.DPoP().Nonce()))
		if rec.Code != http.StatusNoContent {
			t.Fatalf("login with a bound token and its proof: %d %s", rec.Code, rec.Body)
		}
		// The session is a cookie, bound to nothing (ADR 0028).
		cookie := rec.Result().Cookies()[0]
		if got := meWithCookie(env.Env, cookie); got != http.StatusOK {
			t.Errorf("/api/me with the session: %d", got)
		}
	})
}

func TestDPoPAcrossInstances(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		a := newDPoPEnv(t, pg)
		b := dpopEnv{Env: testenv.New(t, testenv.Options{Store: a.Store}), introspector: a.introspector, secret: a.secret}
		key := testkit.NewDPoPKey(t)
		access := a.boundToken(t, key, testenv.PasswordForm("mobile", "dora"))["access_token"].(string)

		// A nonce of one instance is good on the other, and a proof used
		// on one is a replay on the other.
		proof := key.Proof(t, http.MethodGet, meURL, access, a.Validator.DPoP().Nonce())
		if rec := b.me("Authorization", "DPoP "+access, "DPoP", proof); rec.Code != http.StatusOK {
			t.Fatalf("instance B, A's nonce: %d %s", rec.Code, rec.Body)
		}
		wantDPoPRejection(t, "replay on instance A", a.me("Authorization", "DPoP "+access, "DPoP", proof),
			"invalid_dpop_proof", "invalid_dpop_proof")
	})
}

func TestDPoPNonceOff(t *testing.T) {
	env := newDPoPEnv(t, false, func(o *testenv.Options) {
		o.Config = func(c *oauth.Config) { c.DPoP.NoNonce = true }
	})
	key := testkit.NewDPoPKey(t)
	rec := env.send(http.MethodPost, "/oauth2/access_token", testenv.PasswordForm("mobile", "dora"),
		"DPoP", key.Proof(t, http.MethodPost, tokenURL, "", ""))
	if rec.Code != http.StatusOK || rec.Header().Get("DPoP-Nonce") != "" {
		t.Fatalf("without server nonces: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	var res map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	if rec := env.me("Authorization", "DPoP "+res["access_token"].(string), "DPoP",
		key.Proof(t, http.MethodGet, meURL, res["access_token"].(string), "")); rec.Code != http.StatusOK {
		t.Fatalf("/api/me without nonces: %d %s", rec.Code, rec.Body)
	}
}

// otherFirst is s with another first character: a hash that is not s's.
func otherFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
