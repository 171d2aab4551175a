// Package testenv builds the whole service in-process, with service.New as
// run() does, on a test store and test defaults, for handler tests and
// benchmarks. End-to-end tests go through run() instead.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/internal/service"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/metrics"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/cache"
	"github.com/openedx/mobile-auth-bff/store/memory"
	"github.com/openedx/mobile-auth-bff/store/postgres"
)

// Issuer and Audience of every test environment.
const (
	Issuer     = "https://bff.test"
	Audience   = "mobile-auth-bff"
	AdminToken = "test-admin-token"
	Password   = "correct horse battery"
)

// Options tune New.
type Options struct {
	Postgres bool   // PostgreSQL (a fresh database) instead of the in-memory store
	Alg      string // signing algorithm; ES256 by default (fast to generate)
	Issuer   string // BFF_ISSUER; the constant Issuer by default
	// Store shares another environment's store (and so its keys) instead of
	// opening one; Postgres is then ignored.
	Store store.Store
	// Cache puts the production cache (live, without a change feed) in front
	// of the store, as serve does on PostgreSQL.
	Cache bool
	// Wrap lets a test put a decorator (a failing store, say) around the store.
	Wrap     func(store.Store) store.Store
	Config   func(*oauth.Config)
	LogLevel slog.Level
	// Broker configures the payment broker (URL at least); nil leaves it
	// unconfigured. Issuer defaults to Issuer, Audience to EcommerceAudience.
	Broker *broker.Config
	// Log receives the service's JSON log lines; nil discards them.
	Log io.Writer
	// NoUsage turns the per-client usage statistics off (Metrics.Usage
	// nil), as the benchmarks' baseline; they are on, as when serving.
	NoUsage bool
}

// EcommerceAudience is the default aud of the broker's upstream JWTs.
const EcommerceAudience = "ecommerce"

// Env is a running service without listeners.
type Env struct {
	Store store.Store
	OAuth *oauth.Service
	// Validator is the one validator of presented tokens, as the handlers
	// and the service share it.
	Validator *oauth.Validator
	Admin     *admin.Service
	Keys      *oauth.KeyManager
	Metrics   *metrics.Metrics
	Public    *echo.Echo
	AdminH    *echo.Echo
	Broker    *broker.Broker // nil unless Options.Broker
}

// New builds an environment; it is torn down when the test ends.
func New(tb testing.TB, opts Options) *Env {
	tb.Helper()
	ctx := context.Background()
	var st store.Store
	if opts.Store != nil {
		st = opts.Store
	} else if opts.Postgres {
		pg, err := postgres.Open(ctx, testdb.URL(tb), postgres.Options{Migrate: true})
		if err != nil {
			tb.Fatal(err)
		}
		st = pg
	} else {
		st = memory.New()
	}
	if opts.Store == nil {
		tb.Cleanup(st.Close)
	}
	if opts.Cache {
		c := cache.New(st, time.Hour)
		c.SetLive(true)
		st = c
	}
	if opts.Wrap != nil {
		st = opts.Wrap(st)
	}
	if opts.Alg == "" {
		opts.Alg = "ES256"
	}
	if opts.Issuer == "" {
		opts.Issuer = Issuer
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(opts.Log, &slog.HandlerOptions{Level: opts.LogLevel}))
	cfg := service.Config{
		Secret: []byte(strings.Repeat("s", 32)), JWTAlg: opts.Alg, Usage: !opts.NoUsage,
		AdminToken: AdminToken, CookieSecure: true,
		OAuth: oauth.Config{
			Issuer: opts.Issuer, Audience: Audience, AccessTokenTTL: time.Hour, RefreshTokenTTL: 720 * time.Hour,
			RefreshReuseGrace: 10 * time.Second, SessionTTL: 24 * time.Hour, Throttle: oauth.DefaultThrottle,
		},
	}
	if opts.Config != nil {
		opts.Config(&cfg.OAuth)
	}
	if opts.Broker != nil {
		bc := *opts.Broker
		if bc.Audience == "" {
			bc.Audience = EcommerceAudience
		}
		cfg.Broker = &bc
	}
	svc, err := service.New(ctx, cfg, st, log)
	if err != nil {
		tb.Fatal(err)
	}
	return &Env{Store: st, OAuth: svc.OAuth, Validator: svc.Validator, Admin: svc.Admin, Keys: svc.Keys, Metrics: svc.Metrics, Broker: svc.Broker,
		Public: svc.Public, AdminH: svc.AdminHandler}
}

// PublicClient creates a public (mobile) client with the password and
// refresh grants.
func (e *Env) PublicClient(tb testing.TB, id string, mutate ...func(*admin.NewClient)) bff.Client {
	tb.Helper()
	in := admin.NewClient{ID: id, Public: true, GrantTypes: []string{bff.GrantPassword, bff.GrantRefreshToken},
		Scopes: []string{"read", "email", "profile", "payments"}, TokenType: bff.FormatBearer}
	for _, m := range mutate {
		m(&in)
	}
	c, err := e.Admin.CreateClient(context.Background(), in)
	if err != nil {
		tb.Fatal(err)
	}
	return c.Client
}

// ConfidentialClient creates a confidential client and returns its secret.
func (e *Env) ConfidentialClient(tb testing.TB, id string, mutate ...func(*admin.NewClient)) (bff.Client, string) {
	tb.Helper()
	in := admin.NewClient{ID: id, GrantTypes: []string{bff.GrantClientCredentials}, Scopes: []string{"read"},
		TokenType: bff.FormatBearer}
	for _, m := range mutate {
		m(&in)
	}
	c, err := e.Admin.CreateClient(context.Background(), in)
	if err != nil {
		tb.Fatal(err)
	}
	return c.Client, c.Secret
}

// User creates a user whose password is Password.
func (e *Env) User(tb testing.TB, username string) bff.User {
	tb.Helper()
	u, err := e.Admin.CreateUser(context.Background(), admin.NewUser{
		Username: username, Email: username + "@example.com", Name: "Test " + username, Password: Password,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// Post sends a form to the public handler and returns the recorder.
func (e *Env) Post(path string, form url.Values, header ...string) *httptest.ResponseRecorder {
	return e.PostFrom("192.0.2.1:1234", path, form, header...)
}

// PostFrom is Post from a given client address.
func (e *Env) PostFrom(remoteAddr, path string, form url.Values, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = remoteAddr
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.Public.ServeHTTP(rec, req)
	return rec
}

// Token runs a token request that must succeed and returns the response.
func (e *Env) Token(tb testing.TB, form url.Values, header ...string) map[string]any {
	tb.Helper()
	rec := e.Post("/oauth2/access_token", form, header...)
	if rec.Code != http.StatusOK {
		tb.Fatalf("token request %v: %d %s", redact(form), rec.Code, rec.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// PasswordForm is a password grant for a public client.
func PasswordForm(clientID, username string, extra ...string) url.Values {
	f := url.Values{"grant_type": {"password"}, "client_id": {clientID}, "username": {username}, "password": {Password}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func redact(f url.Values) url.Values {
	c := url.Values{}
	for k, v := range f {
		if k == "password" || k == "client_secret" {
			v = []string{"***"}
		}
		c[k] = v
	}
	return c
}

// update rewrites golden files: go test ./... -update
var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// Golden compares got with testdata/<name>.golden (in the package under
// test), rewriting it under -update. JSON is compared re-indented, so that
// the files are readable in review.
func Golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	var v any
	if json.Unmarshal(got, &v) == nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		got = buf.Bytes()
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if string(want) != string(got) {
		tb.Errorf("%s differs from the golden file (run with -update if the change is intended)\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
