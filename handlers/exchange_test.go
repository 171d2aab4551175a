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

	"github.com/prometheus/client_golang/prometheus/testutil"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
)

// exchanger lets a test client use the token exchange grant.
func exchanger(c *admin.NewClient) { c.GrantTypes = append(c.GrantTypes, bff.GrantTokenExchange) }

func ptr[T any](v T) *T { return &v }

// exchangeForm is an RFC 8693 request of client for subject.
func tokenExchangeForm(client, subject string, extra ...string) url.Values {
	f := url.Values{
		"grant_type": {bff.GrantTokenExchange}, "client_id": {client}, "subject_token": {subject},
		"subject_token_type":   {oauth.TokenTypeAccessToken},
		"requested_token_type": {oauth.TokenTypeJWT},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			f.Del(extra[i])
			continue
		}
		f.Set(extra[i], extra[i+1])
	}
	return f
}

// me presents tok at /api/me and returns the status and problem code.
func me(env *testenv.Env, tok string) (int, string) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	env.Public.ServeHTTP(rec, req)
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	return rec.Code, p.Code
}

func mustMe(t *testing.T, env *testenv.Env, what, tok string, status int, code string) {
	t.Helper()
	if s, c := me(env, tok); s != status || c != code {
		t.Errorf("%s at /api/me: %d %q, want %d %q", what, s, c, status, code)
	}
}

// TestTokenExchange: a valid opaque access token becomes a JWT for the same
// user, scopes and original grant, in the subject token's family; the
// subject token stays valid unless the request revokes it.
func TestTokenExchange(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			// The client's own selection says Bearer for everyone: the
			// exchange issues a JWT anyway.
			env.PublicClient(t, "app", exchanger)
			alice := env.User(t, "alice")
			v := env.Validator

			login := env.Token(t, testenv.PasswordForm("app", "alice"))
			subject := login["access_token"].(string)
			if login["token_type"] != "Bearer" {
				t.Fatalf("subject token: %v", login["token_type"])
			}
			got := env.Token(t, tokenExchangeForm("app", subject))
			jwt, _ := got["access_token"].(string)
			// A JWT chosen by the exchange is a bearer token (RFC 9068).
			if got["token_type"] != "Bearer" || got["issued_token_type"] != oauth.TokenTypeJWT || !oauth.IsJWT(jwt) {
				t.Fatalf("exchange response: %v", got)
			}
			if _, ok := got["refresh_token"]; ok {
				t.Error("the exchange issued a refresh token")
			}
			if got["scope"] != login["scope"] {
				t.Errorf("scope %v, want the subject's %v", got["scope"], login["scope"])
			}
			claims, err := v.VerifyJWT(context.Background(), jwt)
			if err != nil {
				t.Fatal(err)
			}
			if claims.Subject != alice.Subject() || claims.ClientID != "app" || claims.GrantType != bff.GrantPassword ||
				claims.Scope != login["scope"] || claims.IsRestricted {
				t.Errorf("claims: %+v", claims)
			}
			p, err := v.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeBearer, Token: subject})
			if err != nil {
				t.Fatal(err)
			}
			if claims.Expiry > p.ExpiresAt.Unix() {
				t.Errorf("JWT exp %d after the subject token's %d", claims.Expiry, p.ExpiresAt.Unix())
			}
			mustMe(t, env, "the JWT", jwt, 200, "")
			mustMe(t, env, "the subject token", subject, 200, "")

			// A session can be made of it: the family began with a sign-in.
			if rec := env.Post("/oauth2/login", url.Values{}, "Authorization", "JWT "+jwt); rec.Code != 204 {
				t.Errorf("login with the exchanged JWT: %d %s", rec.Code, rec.Body)
			}

			// The JWT is in the subject's family: revoking the family (the
			// refresh token) revokes it.
			if rec := env.Post("/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {login["refresh_token"].(string)}}); rec.Code != 200 {
				t.Fatalf("revoke refresh token: %d", rec.Code)
			}
			mustMe(t, env, "the JWT after its family was revoked", jwt, 401, "token_revoked")
			mustMe(t, env, "the subject after its family was revoked", subject, 401, "token_revoked")

			// revoke_subject_token=true: the JWT works, the subject does not.
			subject2 := env.Token(t, testenv.PasswordForm("app", "alice"))["access_token"].(string)
			jwt2 := env.Token(t, tokenExchangeForm("app", subject2, "revoke_subject_token", "true"))["access_token"].(string)
			mustMe(t, env, "the JWT of a revoking exchange", jwt2, 200, "")
			mustMe(t, env, "a subject revoked by the exchange", subject2, 401, "token_revoked")

			// Fewer scopes on request; the audience may name this service.
			subject3 := env.Token(t, testenv.PasswordForm("app", "alice"))["access_token"].(string)
			narrow := env.Token(t, tokenExchangeForm("app", subject3, "scope", "read email", "audience", testenv.Audience,
				"requested_token_type", ""))
			if narrow["scope"] != "read email" {
				t.Errorf("narrowed scope: %v", narrow["scope"])
			}

			issued := testutil.ToFloat64(env.Metrics.TokensIssued.WithLabelValues("app", "jwt", bff.GrantTokenExchange, bff.BindingNone))
			if issued != 3 {
				t.Errorf("bff_tokens_issued_total{grant_type=token-exchange} = %v, want 3", issued)
			}
		})
	}
}

// TestTokenExchangeLifetime: the JWT expires no later than the subject token.
func TestTokenExchangeLifetime(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "app", exchanger)
	env.User(t, "alice")
	subject := env.Token(t, testenv.PasswordForm("app", "alice"))["access_token"].(string)
	p, err := env.Validator.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeBearer, Token: subject})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a fresh hour would now end a second later than the subject
	got := env.Token(t, tokenExchangeForm("app", subject))
	claims, err := env.Validator.VerifyJWT(context.Background(), got["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if claims.Expiry != p.ExpiresAt.Unix() {
		t.Errorf("JWT exp = %d, want the subject token's %d", claims.Expiry, p.ExpiresAt.Unix())
	}
	if in := got["expires_in"].(float64); in > 3599 {
		t.Errorf("expires_in = %v, want less than the subject's remaining hour", in)
	}
}

// TestTokenExchangeRefused: every bad exchange gets its documented answer,
// and a refused exchange never revokes the subject token.
func TestTokenExchangeRefused(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			clk := &clock{}
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg, Config: withClock(clk)})
			env.PublicClient(t, "app", exchanger)
			env.PublicClient(t, "other", exchanger)
			env.PublicClient(t, "nogrant")
			env.PublicClient(t, "killed", exchanger)
			env.User(t, "alice")
			bob := env.User(t, "bob")
			_, secret := env.ConfidentialClient(t, "svc", exchanger)

			token := func(client string, extra ...string) map[string]any {
				return env.Token(t, testenv.PasswordForm(client, "alice", extra...))
			}
			valid := token("app")
			subject := valid["access_token"].(string)
			revoked := token("app")["access_token"].(string)
			if rec := env.Post("/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {revoked}}); rec.Code != 200 {
				t.Fatalf("revoke: %d", rec.Code)
			}
			otherClients := token("other")["access_token"].(string)
			killedSubject := token("killed")["access_token"].(string)
			bobs := env.Token(t, testenv.PasswordForm("app", "bob"))["access_token"].(string)
			if _, err := env.Admin.DisableUser(context.Background(), bob.ID, "test"); err != nil {
				t.Fatal(err)
			}
			if _, err := env.Admin.UpdateClient(context.Background(), "killed", admin.ClientPatch{JWTEnabled: ptr(false)}); err != nil {
				t.Fatal(err)
			}
			svcToken := env.Token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}})

			tests := []struct {
				name    string
				form    url.Values
				expired bool
				status  int
				code    string
			}{
				{"missing subject_token", tokenExchangeForm("app", "", "subject_token", ""), false, 400, "invalid_request"},
				{"missing subject_token_type", tokenExchangeForm("app", subject, "subject_token_type", ""), false, 400, "invalid_request"},
				{"refresh token type", tokenExchangeForm("app", subject, "subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), false, 400, "invalid_request"},
				{"id_token type", tokenExchangeForm("app", subject, "subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), false, 400, "invalid_request"},
				{"requested access_token type", tokenExchangeForm("app", subject, "requested_token_type", oauth.TokenTypeAccessToken), false, 400, "invalid_request"},
				{"requested saml", tokenExchangeForm("app", subject, "requested_token_type", "urn:ietf:params:oauth:token-type:saml2"), false, 400, "invalid_request"},
				{"actor token", tokenExchangeForm("app", subject, "actor_token", subject, "actor_token_type", oauth.TokenTypeAccessToken), false, 400, "invalid_request"},
				{"another audience", tokenExchangeForm("app", subject, "audience", "ecommerce"), false, 400, "invalid_target"},
				{"a resource", tokenExchangeForm("app", subject, "resource", "https://api.example.org/"), false, 400, "invalid_target"},
				{"bad revoke_subject_token", tokenExchangeForm("app", subject, "revoke_subject_token", "yes"), false, 400, "invalid_request"},
				{"duplicate subject_token", func() url.Values {
					f := tokenExchangeForm("app", subject)
					f.Add("subject_token", subject)
					return f
				}(), false, 400, "invalid_request"},
				{"garbage subject", tokenExchangeForm("app", "not-a-token"), false, 400, "invalid_grant"},
				{"tampered subject", tokenExchangeForm("app", tamper(subject)), false, 400, "invalid_grant"},
				{"refresh token as subject", tokenExchangeForm("app", valid["refresh_token"].(string)), false, 400, "invalid_grant"},
				{"JWT as subject", tokenExchangeForm("app", token("app", "token_type", "jwt")["access_token"].(string)), false, 400, "invalid_grant"},
				{"revoked subject", tokenExchangeForm("app", revoked, "revoke_subject_token", "true"), false, 400, "invalid_grant"},
				{"expired subject", tokenExchangeForm("app", subject, "revoke_subject_token", "true"), true, 400, "invalid_grant"},
				{"another client's subject", tokenExchangeForm("app", otherClients, "revoke_subject_token", "true"), false, 400, "invalid_grant"},
				{"client credentials token of another client", tokenExchangeForm("app", svcToken["access_token"].(string)), false, 400, "invalid_grant"},
				{"client without the grant", tokenExchangeForm("nogrant", subject), false, 400, "unauthorized_client"},
				{"kill switch", tokenExchangeForm("killed", killedSubject, "revoke_subject_token", "true"), false, 400, "invalid_request"},
				{"scope beyond the subject's", tokenExchangeForm("app", subject, "scope", "read admin"), false, 400, "invalid_scope"},
				{"disabled user", tokenExchangeForm("app", bobs), false, 403, "account_disabled"},
				{"unknown client", tokenExchangeForm("ghost", subject), false, 401, "invalid_client"},
			}
			for _, tt := range tests {
				if tt.expired {
					clk.set(2 * time.Hour)
				}
				rec := env.Post("/oauth2/access_token", tt.form)
				clk.reset()
				if rec.Code != tt.status {
					t.Errorf("%s: status %d, want %d: %s", tt.name, rec.Code, tt.status, rec.Body)
					continue
				}
				if e := decodeOAuthErr(t, rec); e.Error != tt.code {
					t.Errorf("%s: error %q, want %q (%s)", tt.name, e.Error, tt.code, e.Description)
				}
				if strings.Contains(rec.Body.String(), subject) {
					t.Errorf("%s: the answer repeats the subject token", tt.name)
				}
			}
			// Refusals revoked nothing.
			mustMe(t, env, "the subject token", subject, 200, "")
			mustMe(t, env, "another client's subject", otherClients, 200, "")
			mustMe(t, env, "the subject refused by the kill switch", killedSubject, 200, "")
			if e := decodeOAuthErr(t, env.Post("/oauth2/access_token", tokenExchangeForm("killed", killedSubject))); !strings.Contains(e.Description, "jwt_enabled=false") {
				t.Errorf("the kill switch refusal does not say why: %q", e.Description)
			}
		})
	}
}

// TestTokenExchangeRestricted: a restricted client's exchange gives a
// restricted JWT, its kill switch notwithstanding (SPEC §4).
func TestTokenExchangeRestricted(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "app", exchanger)
	env.User(t, "alice")
	subject := env.Token(t, testenv.PasswordForm("app", "alice"))["access_token"].(string)
	if _, err := env.Admin.UpdateClient(context.Background(), "app", admin.ClientPatch{Restricted: ptr(true), JWTEnabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	got := env.Token(t, tokenExchangeForm("app", subject))
	claims, err := env.Validator.VerifyJWT(context.Background(), got["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if !claims.IsRestricted {
		t.Error("the restricted client's JWT is not is_restricted")
	}
}

// TestTokenExchangeStoreDown: when the store cannot record the JWT, the
// answer is 503 and nothing happened — the subject is not revoked either.
func TestTokenExchangeStoreDown(t *testing.T) {
	t.Parallel()
	var fs *testenv.FailingStore
	env := testenv.New(t, testenv.Options{Wrap: func(s store.Store) store.Store {
		fs = &testenv.FailingStore{Store: s}
		return fs
	}})
	env.PublicClient(t, "app", exchanger)
	env.User(t, "alice")
	subject := env.Token(t, testenv.PasswordForm("app", "alice"))["access_token"].(string)
	for _, mode := range []string{"writes", "all"} {
		fs.Writes.Store(mode == "writes")
		fs.All.Store(mode == "all")
		rec := env.Post("/oauth2/access_token", tokenExchangeForm("app", subject, "revoke_subject_token", "true"))
		fs.Writes.Store(false)
		fs.All.Store(false)
		if rec.Code != 503 || decodeOAuthErr(t, rec).Error != "temporarily_unavailable" {
			t.Errorf("store failing %s: %d %s", mode, rec.Code, rec.Body)
		}
	}
	mustMe(t, env, "the subject after failed exchanges", subject, 200, "")
	if n := testutil.ToFloat64(env.Metrics.TokensIssued.WithLabelValues("app", "jwt", bff.GrantTokenExchange, bff.BindingNone)); n != 0 {
		t.Errorf("failed exchanges counted as issued: %v", n)
	}
}
