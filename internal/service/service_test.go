package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/internal/service"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

func testConfig() service.Config {
	return service.Config{
		Secret: []byte(strings.Repeat("s", 32)), JWTAlg: "ES256", AdminToken: "admin-token",
		OAuth: oauth.Config{Issuer: "https://bff.test", Audience: "aud", AccessTokenTTL: time.Hour,
			RefreshTokenTTL: 24 * time.Hour, Throttle: oauth.DefaultThrottle},
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestNewWiresOneGraph: the handlers, the broker and the OAuth service share
// the one key manager New built, and New built the validator it passes
// to both (oauth.NewService takes it; nothing reaches it through the
// service).
func TestNewWiresOneGraph(t *testing.T) {
	cfg := testConfig()
	cfg.Broker = &broker.Config{URL: "http://127.0.0.1:1", Audience: "ecommerce"}
	s, err := service.New(context.Background(), cfg, memory.New(), discard())
	if err != nil {
		t.Fatal(err)
	}
	if s.Validator == nil {
		t.Error("New built no validator")
	}
	if s.Keys != s.OAuth.Keys() {
		t.Error("Service.Keys is not the OAuth service's key manager")
	}
	if s.Broker == nil || s.Public == nil || s.AdminHandler == nil || s.Admin == nil {
		t.Fatal("New left a part unbuilt")
	}
	if s.Metrics.Usage != nil {
		t.Error("usage statistics on without Config.Usage")
	}
	rec := httptest.NewRecorder()
	s.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), s.Keys.Published()[0].KeyID) {
		t.Errorf("JWKS: %d %s", rec.Code, rec.Body)
	}
}

// TestNewTrustsConfiguredProxies: the trusted proxies reach the handlers
// (internal/testenv used to build handlers without them).
func TestNewTrustsConfiguredProxies(t *testing.T) {
	cfg := testConfig()
	_, n, _ := net.ParseCIDR("10.0.0.0/8")
	cfg.TrustedProxies = []*net.IPNet{n}
	s, err := service.New(context.Background(), cfg, memory.New(), discard())
	if err != nil {
		t.Fatal(err)
	}
	c := s.Public.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	c.Request().RemoteAddr = "10.1.2.3:1234"
	c.Request().Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := c.RealIP(); got != "203.0.113.9" {
		t.Errorf("client address behind a trusted proxy = %s, want 203.0.113.9", got)
	}
}

// TestNewNamesTheRefusedSetting: a bad secret or broker is a SettingError
// naming the field, so that run() can name its variable.
func TestNewNamesTheRefusedSetting(t *testing.T) {
	for setting, mutate := range map[string]func(*service.Config){
		"Secret": func(c *service.Config) { c.Secret = []byte("short") },
		"Broker": func(c *service.Config) { c.Broker = &broker.Config{URL: "ftp://x", Audience: "ecommerce"} },
	} {
		cfg := testConfig()
		mutate(&cfg)
		_, err := service.New(context.Background(), cfg, memory.New(), discard())
		var se *service.SettingError
		if !errors.As(err, &se) || se.Setting != setting {
			t.Errorf("%s: err = %v, want a SettingError for it", setting, err)
		}
	}
}
