package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
)

// frozen answers the validator's per-token lookups from values read once,
// without locks or I/O: a validator over it is "the validator without the
// account check", the bound the cached check is measured against.
type frozen struct {
	store.Store
	user   bff.User
	client bff.Client
}

// Until frozen, it passes through (to set up the client, user and token).
func (f *frozen) GetUser(ctx context.Context, id int64) (bff.User, error) {
	if f.user.ID == 0 {
		return f.Store.GetUser(ctx, id)
	}
	return f.user, nil
}

func (f *frozen) GetClient(ctx context.Context, id string) (bff.Client, error) {
	if f.user.ID == 0 {
		return f.Store.GetClient(ctx, id)
	}
	return f.client, nil
}

func (f *frozen) IsJTIRevoked(ctx context.Context, jti string) (bool, error) {
	if f.user.ID == 0 {
		return f.Store.IsJTIRevoked(ctx, jti)
	}
	return false, nil
}

// BenchmarkValidateJWTAccountCheck compares the cost of the live account
// check on each JWT: straight from PostgreSQL, through the cache (as served
// on PostgreSQL), and free (the validator without the check).
func BenchmarkValidateJWTAccountCheck(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts testenv.Options
	}{
		{"check=postgres", testenv.Options{Postgres: true}},
		{"check=postgres-cached", testenv.Options{Postgres: true, Cache: true}},
		{"check=memory", testenv.Options{}},
		{"check=none", testenv.Options{}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			opts := tc.opts
			if tc.name == "check=none" {
				opts.Wrap = func(s store.Store) store.Store { return &frozen{Store: s} }
			}
			env, token := benchEnv(b, opts, "jwt")
			if f, ok := env.Store.(*frozen); ok {
				ctx := context.Background()
				u, err := f.Store.GetUserByLogin(ctx, "alice")
				if err != nil {
					b.Fatal(err)
				}
				c, err := f.Store.GetClient(ctx, "mobile")
				if err != nil {
					b.Fatal(err)
				}
				f.client, f.user = c, u
			}
			benchValidate(b, env, token)
		})
	}
}

// BenchmarkValidateSession is the validation of a session cookie.
func BenchmarkValidateSession(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts testenv.Options
	}{
		{"store=memory", testenv.Options{}},
		{"store=postgres", testenv.Options{Postgres: true}},
		{"store=postgres-cached", testenv.Options{Postgres: true, Cache: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			env, token := benchEnv(b, tc.opts, "jwt")
			rec := env.Post("/oauth2/login", url.Values{}, "Authorization", "Bearer "+token)
			if rec.Code != 204 {
				b.Fatalf("login: %d %s", rec.Code, rec.Body)
			}
			cookie := (&http.Response{Header: rec.Header()}).Cookies()[0].Value
			ctx := context.Background()
			v := env.Validator
			cred := oauth.Credential{Scheme: oauth.SchemeCookie, Token: cookie}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(ctx, cred); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMe is GET /api/me through the real router with each credential.
func BenchmarkMe(b *testing.B) {
	for _, st := range []struct {
		name string
		opts testenv.Options
	}{
		{"store=memory", testenv.Options{}},
		{"store=postgres-cached", testenv.Options{Postgres: true, Cache: true}},
	} {
		for _, cred := range []string{"jwt", "bearer", "session"} {
			b.Run(st.name+"/credential="+cred, func(b *testing.B) {
				format := cred
				if cred == "session" {
					format = "jwt"
				}
				env, token := benchEnv(b, st.opts, format)
				header := "Bearer " + token
				var cookie *http.Cookie
				if cred == "session" {
					rec := env.Post("/oauth2/login", url.Values{}, "Authorization", header)
					cookie = (&http.Response{Header: rec.Header()}).Cookies()[0]
				}
				b.ReportAllocs()
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
					if cookie != nil {
						req.AddCookie(cookie)
					} else {
						req.Header.Set("Authorization", header)
					}
					rec := httptest.NewRecorder()
					env.Public.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("/api/me: %d %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
