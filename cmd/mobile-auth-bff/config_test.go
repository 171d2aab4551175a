package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store/postgres"
)

// env is a fake environment for loadConfig.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

const goodSecret = "this-is-a-test-secret-of-40-bytes-length"

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	got, err := loadConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Addr:                     "127.0.0.1:8080",
		AdminAddr:                "127.0.0.1:8081",
		Issuer:                   "http://127.0.0.1:8080",
		DatabaseTimeout:          5 * time.Second,
		DatabaseMaxConns:         postgres.DefaultMaxConns(),
		MemoryMaxTokens:          50_000,
		Audience:                 "mobile-auth-bff",
		JWTAlg:                   "RS256",
		AccessTokenTTL:           time.Hour,
		RefreshTokenTTL:          720 * time.Hour,
		RefreshReuseGrace:        10 * time.Second,
		SessionTTL:               336 * time.Hour,
		CookieSecure:             true,
		Migrate:                  true,
		LogLevel:                 slog.LevelInfo,
		Throttle:                 oauth.DefaultThrottle,
		DPoP:                     oauth.DPoPConfig{Window: oauth.DefaultDPoPWindow, NonceLifetime: oauth.DefaultDPoPNonceLifetime},
		EcommerceAudience:        "ecommerce",
		EcommerceTimeout:         10 * time.Second,
		EcommerceBreakerFailures: 5,
		EcommerceBreakerCooldown: 30 * time.Second,
		GoogleUserinfoURL:        "https://openidconnect.googleapis.com/v1/userinfo",
		GoogleTokeninfoURL:       "https://oauth2.googleapis.com/tokeninfo",
		FacebookMeURL:            "https://graph.facebook.com/v19.0/me",
		FacebookDebugTokenURL:    "https://graph.facebook.com/v19.0/debug_token",
		AppleJWKSURL:             "https://appleid.apple.com/auth/keys",
		AzureADGraphMeURL:        "https://graph.microsoft.com/v1.0/me",
		ShutdownTimeout:          15 * time.Second,
		SecretGenerated:          true,
		UsageFlushInterval:       10 * time.Second,
		UsageRetention:           90 * 24 * time.Hour,
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(config{}, "Secret")); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
	// In memory mode a secret is generated: long enough, and new each start.
	if len(got.Secret) < oauth.MinSecretLength {
		t.Errorf("generated secret is %d bytes, want at least %d", len(got.Secret), oauth.MinSecretLength)
	}
	again, err := loadConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Secret) == string(got.Secret) || strings.Count(string(got.Secret), "\x00") == len(got.Secret) {
		t.Error("the generated secret is not random")
	}
	if _, err := oauth.NewSecrets(got.Secret); err != nil {
		t.Errorf("the generated secret is refused: %v", err)
	}
}

func TestLoadConfigValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   []string
		check func(t *testing.T, c config)
	}{
		{"issuer follows a loopback BFF_ADDR", []string{"BFF_ADDR", "localhost:9000"}, func(t *testing.T, c config) {
			if c.Addr != "localhost:9000" || c.Issuer != "http://localhost:9000" {
				t.Errorf("Addr, Issuer = %q, %q", c.Addr, c.Issuer)
			}
		}},
		{"explicit issuer", []string{"BFF_ADDR", "0.0.0.0:9000", "BFF_ISSUER", "https://auth.example.org"}, func(t *testing.T, c config) {
			if c.Issuer != "https://auth.example.org" {
				t.Errorf("Issuer = %q", c.Issuer)
			}
		}},
		{"secret given", []string{"BFF_SECRET", goodSecret}, func(t *testing.T, c config) {
			if string(c.Secret) != goodSecret || c.SecretGenerated {
				t.Errorf("Secret = %q, generated %v", c.Secret, c.SecretGenerated)
			}
		}},
		{"postgres with a secret", []string{"BFF_DATABASE_URL", "postgres://bff@db/bff", "BFF_SECRET", goodSecret}, func(t *testing.T, c config) {
			if c.DatabaseURL != "postgres://bff@db/bff" || string(c.Secret) != goodSecret {
				t.Errorf("DatabaseURL, Secret = %q, %q", c.DatabaseURL, c.Secret)
			}
		}},
		{"TTL at the cap", []string{"BFF_ACCESS_TOKEN_TTL", "60m"}, func(t *testing.T, c config) {
			if c.AccessTokenTTL != time.Hour {
				t.Errorf("AccessTokenTTL = %s", c.AccessTokenTTL)
			}
		}},
		{"short TTL", []string{"BFF_ACCESS_TOKEN_TTL", "5m"}, func(t *testing.T, c config) {
			if c.AccessTokenTTL != 5*time.Minute {
				t.Errorf("AccessTokenTTL = %s", c.AccessTokenTTL)
			}
		}},
		{"each algorithm", []string{"BFF_JWT_ALG", "EdDSA"}, func(t *testing.T, c config) {
			if c.JWTAlg != "EdDSA" {
				t.Errorf("JWTAlg = %q", c.JWTAlg)
			}
		}},
		{"booleans", []string{"BFF_COOKIE_SECURE", "false", "BFF_MIGRATE", "0"}, func(t *testing.T, c config) {
			if c.CookieSecure || c.Migrate {
				t.Errorf("CookieSecure, Migrate = %v, %v", c.CookieSecure, c.Migrate)
			}
		}},
		{"zero reuse grace", []string{"BFF_REFRESH_REUSE_GRACE", "0s"}, func(t *testing.T, c config) {
			if c.RefreshReuseGrace != 0 {
				t.Errorf("RefreshReuseGrace = %s", c.RefreshReuseGrace)
			}
		}},
		{"log level", []string{"BFF_LOG_LEVEL", "DEBUG"}, func(t *testing.T, c config) {
			if c.LogLevel != slog.LevelDebug {
				t.Errorf("LogLevel = %s", c.LogLevel)
			}
		}},
		{"trusted proxies", []string{"BFF_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,2001:db8::1"}, func(t *testing.T, c config) {
			var got []string
			for _, n := range c.TrustedProxies {
				got = append(got, n.String())
			}
			if diff := cmp.Diff([]string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128"}, got); diff != "" {
				t.Errorf("TrustedProxies mismatch (-want +got):\n%s", diff)
			}
			if !c.TrustedProxies[1].Contains(net.ParseIP("192.0.2.7")) || c.TrustedProxies[1].Contains(net.ParseIP("192.0.2.8")) {
				t.Error("a single address is not a /32")
			}
		}},
		{"ecommerce", []string{"BFF_ECOMMERCE_URL", "https://ecommerce.example.org", "BFF_ECOMMERCE_AUDIENCE", "payments"}, func(t *testing.T, c config) {
			if c.EcommerceURL != "https://ecommerce.example.org" || c.EcommerceAudience != "payments" {
				t.Errorf("EcommerceURL, EcommerceAudience = %q, %q", c.EcommerceURL, c.EcommerceAudience)
			}
		}},
		{"google client ids", []string{"BFF_GOOGLE_CLIENT_IDS", " 1-ios.apps.googleusercontent.com,1-android.apps.googleusercontent.com , 1-ios.apps.googleusercontent.com",
			"BFF_GOOGLE_TOKENINFO_URL", "http://127.0.0.1:9/tokeninfo"}, func(t *testing.T, c config) {
			if diff := cmp.Diff([]string{"1-ios.apps.googleusercontent.com", "1-android.apps.googleusercontent.com"}, c.GoogleClientIDs); diff != "" {
				t.Errorf("GoogleClientIDs (-want +got):\n%s", diff)
			}
			if c.GoogleTokeninfoURL != "http://127.0.0.1:9/tokeninfo" {
				t.Errorf("GoogleTokeninfoURL = %q", c.GoogleTokeninfoURL)
			}
		}},
		{"facebook app", []string{"BFF_FACEBOOK_APP_ID", "1400000000000001", "BFF_FACEBOOK_APP_SECRET", " 0123456789abcdef0123456789abcdef ",
			"BFF_FACEBOOK_DEBUG_TOKEN_URL", "https://graph.facebook.com/v20.0/debug_token"}, func(t *testing.T, c config) {
			if c.FacebookAppID != "1400000000000001" || c.FacebookAppSecret.Reveal() != "0123456789abcdef0123456789abcdef" ||
				c.FacebookDebugTokenURL != "https://graph.facebook.com/v20.0/debug_token" {
				t.Errorf("FacebookAppID, FacebookAppSecret, FacebookDebugTokenURL = %q, %q, %q", c.FacebookAppID, c.FacebookAppSecret.Reveal(), c.FacebookDebugTokenURL)
			}
			for _, out := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
				if strings.Contains(out, "0123456789abcdef") || !strings.Contains(out, "[redacted]") {
					t.Errorf("the printed config shows the app secret or no placeholder: %s", out)
				}
			}
		}},
		{"social backends accepting any app", []string{"BFF_SOCIAL_ACCEPT_ANY_APP", " facebook , google-oauth2,facebook"}, func(t *testing.T, c config) {
			if diff := cmp.Diff([]string{"facebook", "google-oauth2"}, c.SocialAcceptAnyApp); diff != "" {
				t.Errorf("SocialAcceptAnyApp (-want +got):\n%s", diff)
			}
		}},
		{"microsoft opted in, its Graph URL pinned", []string{"BFF_SOCIAL_ACCEPT_ANY_APP", "azuread-oauth2",
			"BFF_AZUREAD_GRAPH_ME_URL", "http://127.0.0.1:9/v1.0/me"}, func(t *testing.T, c config) {
			if diff := cmp.Diff([]string{"azuread-oauth2"}, c.SocialAcceptAnyApp); diff != "" || c.AzureADGraphMeURL != "http://127.0.0.1:9/v1.0/me" {
				t.Errorf("SocialAcceptAnyApp (-want +got):\n%s; AzureADGraphMeURL = %q", diff, c.AzureADGraphMeURL)
			}
		}},
		{"opt-in for one backend, the other checked", []string{"BFF_SOCIAL_ACCEPT_ANY_APP", "facebook",
			"BFF_GOOGLE_CLIENT_IDS", "1-ios.apps.googleusercontent.com"}, func(t *testing.T, c config) {
			if diff := cmp.Diff([]string{"facebook"}, c.SocialAcceptAnyApp); diff != "" {
				t.Errorf("SocialAcceptAnyApp (-want +got):\n%s", diff)
			}
		}},
		{"whitespace around values", []string{"BFF_ACCESS_TOKEN_TTL", " 30m ", "BFF_JWT_ALG", " ES256\n"}, func(t *testing.T, c config) {
			if c.AccessTokenTTL != 30*time.Minute || c.JWTAlg != "ES256" {
				t.Errorf("AccessTokenTTL, JWTAlg = %s, %q", c.AccessTokenTTL, c.JWTAlg)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(env(tt.env...))
			if err != nil {
				t.Fatalf("loadConfig() error = %v", err)
			}
			tt.check(t, c)
		})
	}
}

// TestLoadConfigErrors: every bad value stops start-up with an error that
// names its variable (SPEC §3).
func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      []string
		variable string
	}{
		{"unparseable duration", []string{"BFF_ACCESS_TOKEN_TTL", "an hour"}, "BFF_ACCESS_TOKEN_TTL"},
		{"duration without unit", []string{"BFF_REFRESH_TOKEN_TTL", "3600"}, "BFF_REFRESH_TOKEN_TTL"},
		{"TTL above 1h", []string{"BFF_ACCESS_TOKEN_TTL", "61m"}, "BFF_ACCESS_TOKEN_TTL"},
		{"TTL a second above 1h", []string{"BFF_ACCESS_TOKEN_TTL", "1h0m1s"}, "BFF_ACCESS_TOKEN_TTL"},
		{"TTL zero", []string{"BFF_ACCESS_TOKEN_TTL", "0s"}, "BFF_ACCESS_TOKEN_TTL"},
		{"TTL negative", []string{"BFF_ACCESS_TOKEN_TTL", "-5m"}, "BFF_ACCESS_TOKEN_TTL"},
		{"bad session TTL", []string{"BFF_SESSION_TTL", "two weeks"}, "BFF_SESSION_TTL"},
		{"bad database timeout", []string{"BFF_DATABASE_TIMEOUT", "0s"}, "BFF_DATABASE_TIMEOUT"},
		{"no database connections", []string{"BFF_DATABASE_MAX_CONNS", "0"}, "BFF_DATABASE_MAX_CONNS"},
		{"database connections not a number", []string{"BFF_DATABASE_MAX_CONNS", "many"}, "BFF_DATABASE_MAX_CONNS"},
		{"negative token cap", []string{"BFF_MEMORY_MAX_TOKENS", "-1"}, "BFF_MEMORY_MAX_TOKENS"},
		{"token cap not a number", []string{"BFF_MEMORY_MAX_TOKENS", "lots"}, "BFF_MEMORY_MAX_TOKENS"},
		{"bad ecommerce timeout", []string{"BFF_ECOMMERCE_TIMEOUT", "10"}, "BFF_ECOMMERCE_TIMEOUT"},
		{"negative reuse grace", []string{"BFF_REFRESH_REUSE_GRACE", "-1s"}, "BFF_REFRESH_REUSE_GRACE"},
		{"reuse grace too long", []string{"BFF_REFRESH_REUSE_GRACE", "2m"}, "BFF_REFRESH_REUSE_GRACE"},
		{"usage flush too often", []string{"BFF_USAGE_FLUSH_INTERVAL", "10ms"}, "BFF_USAGE_FLUSH_INTERVAL"},
		{"usage flush not a duration", []string{"BFF_USAGE_FLUSH_INTERVAL", "often"}, "BFF_USAGE_FLUSH_INTERVAL"},
		{"usage retention too short", []string{"BFF_USAGE_RETENTION", "1h"}, "BFF_USAGE_RETENTION"},
		{"refresh shorter than access", []string{"BFF_REFRESH_TOKEN_TTL", "30m"}, "BFF_REFRESH_TOKEN_TTL"},
		{"unknown algorithm", []string{"BFF_JWT_ALG", "HS256"}, "BFF_JWT_ALG"},
		{"algorithm in lower case", []string{"BFF_JWT_ALG", "rs256"}, "BFF_JWT_ALG"},
		{"algorithm none", []string{"BFF_JWT_ALG", "none"}, "BFF_JWT_ALG"},
		{"short secret", []string{"BFF_SECRET", "too-short"}, "BFF_SECRET"},
		{"secret one byte short", []string{"BFF_SECRET", strings.Repeat("s", oauth.MinSecretLength-1)}, "BFF_SECRET"},
		{"secret missing with postgres", []string{"BFF_DATABASE_URL", "postgres://bff@db/bff"}, "BFF_SECRET"},
		{"short secret with postgres", []string{"BFF_DATABASE_URL", "postgres://bff@db/bff", "BFF_SECRET", "short"}, "BFF_SECRET"},
		{"database not postgres", []string{"BFF_DATABASE_URL", "mysql://db/bff", "BFF_SECRET", goodSecret}, "BFF_DATABASE_URL"},
		{"bad bool", []string{"BFF_COOKIE_SECURE", "yes please"}, "BFF_COOKIE_SECURE"},
		{"bad migrate bool", []string{"BFF_MIGRATE", "maybe"}, "BFF_MIGRATE"},
		{"issuer not a URL", []string{"BFF_ISSUER", "bff.example.org"}, "BFF_ISSUER"},
		{"issuer not http", []string{"BFF_ISSUER", "ftp://bff.example.org"}, "BFF_ISSUER"},
		{"issuer unparseable", []string{"BFF_ISSUER", "http://[::1"}, "BFF_ISSUER"},
		{"ecommerce URL relative", []string{"BFF_ECOMMERCE_URL", "/api"}, "BFF_ECOMMERCE_URL"},
		{"ecommerce URL with credentials", []string{"BFF_ECOMMERCE_URL", "https://user:pw@ecommerce.example.org"}, "BFF_ECOMMERCE_URL"},
		{"ecommerce URL with a query", []string{"BFF_ECOMMERCE_URL", "https://ecommerce.example.org/?a=1"}, "BFF_ECOMMERCE_URL"},
		{"ecommerce timeout above 1m", []string{"BFF_ECOMMERCE_TIMEOUT", "61s"}, "BFF_ECOMMERCE_TIMEOUT"},
		{"ecommerce timeout zero", []string{"BFF_ECOMMERCE_TIMEOUT", "0s"}, "BFF_ECOMMERCE_TIMEOUT"},
		{"ecommerce route without method", []string{"BFF_ECOMMERCE_ROUTES", "/api/v2/orders/"}, "BFF_ECOMMERCE_ROUTES"},
		{"ecommerce route with traversal", []string{"BFF_ECOMMERCE_ROUTES", "GET /api/v2/orders/, GET /api/../admin/"}, "BFF_ECOMMERCE_ROUTES"},
		{"ecommerce route method", []string{"BFF_ECOMMERCE_ROUTES", "TRACE /api/v2/orders/"}, "BFF_ECOMMERCE_ROUTES"},
		{"ecommerce routes empty", []string{"BFF_ECOMMERCE_ROUTES", " , "}, "BFF_ECOMMERCE_ROUTES"},
		{"ecommerce routes twice", []string{"BFF_ECOMMERCE_ROUTES", "GET /a/", "BFF_ECOMMERCE_ROUTES_FILE", "/etc/hostname"}, "BFF_ECOMMERCE_ROUTES"},
		{"ecommerce routes file missing", []string{"BFF_ECOMMERCE_ROUTES_FILE", "/nonexistent/routes.txt"}, "BFF_ECOMMERCE_ROUTES_FILE"},
		{"breaker failures", []string{"BFF_ECOMMERCE_BREAKER_FAILURES", "0"}, "BFF_ECOMMERCE_BREAKER_FAILURES"},
		{"breaker cooldown", []string{"BFF_ECOMMERCE_BREAKER_COOLDOWN", "soon"}, "BFF_ECOMMERCE_BREAKER_COOLDOWN"},
		{"google URL without host", []string{"BFF_GOOGLE_USERINFO_URL", "https://"}, "BFF_GOOGLE_USERINFO_URL"},
		{"facebook URL", []string{"BFF_FACEBOOK_ME_URL", "graph.facebook.com/me"}, "BFF_FACEBOOK_ME_URL"},
		{"apple JWKS URL", []string{"BFF_APPLE_JWKS_URL", "javascript:alert(1)"}, "BFF_APPLE_JWKS_URL"},
		{"google tokeninfo URL", []string{"BFF_GOOGLE_TOKENINFO_URL", "oauth2.googleapis.com/tokeninfo"}, "BFF_GOOGLE_TOKENINFO_URL"},
		{"facebook debug_token URL", []string{"BFF_FACEBOOK_DEBUG_TOKEN_URL", "ftp://graph.facebook.com/debug_token"}, "BFF_FACEBOOK_DEBUG_TOKEN_URL"},
		{"microsoft Graph URL", []string{"BFF_AZUREAD_GRAPH_ME_URL", "graph.microsoft.com/v1.0/me"}, "BFF_AZUREAD_GRAPH_ME_URL"},
		{"google client id is a bundle ID", []string{"BFF_GOOGLE_CLIENT_IDS", "org.example.app"}, "BFF_GOOGLE_CLIENT_IDS"},
		{"google client id is the bare suffix", []string{"BFF_GOOGLE_CLIENT_IDS", ".apps.googleusercontent.com"}, "BFF_GOOGLE_CLIENT_IDS"},
		{"google client ids with an empty entry", []string{"BFF_GOOGLE_CLIENT_IDS", "1-ios.apps.googleusercontent.com,,2-web.apps.googleusercontent.com"}, "BFF_GOOGLE_CLIENT_IDS"},
		{"facebook app id without secret", []string{"BFF_FACEBOOK_APP_ID", "1400000000000001"}, "BFF_FACEBOOK_APP_SECRET"},
		{"facebook app secret without id", []string{"BFF_FACEBOOK_APP_SECRET", goodSecret}, "BFF_FACEBOOK_APP_ID"},
		{"facebook app id not numeric", []string{"BFF_FACEBOOK_APP_ID", "my-app", "BFF_FACEBOOK_APP_SECRET", goodSecret}, "BFF_FACEBOOK_APP_ID"},
		{"facebook app secret with a pipe", []string{"BFF_FACEBOOK_APP_ID", "1400000000000001", "BFF_FACEBOOK_APP_SECRET", goodSecret + "|x"}, "BFF_FACEBOOK_APP_SECRET"},
		{"facebook app secret with a space", []string{"BFF_FACEBOOK_APP_ID", "1400000000000001", "BFF_FACEBOOK_APP_SECRET", "this-is-a-test secret-of-40-bytes-length"}, "BFF_FACEBOOK_APP_SECRET"},
		{"accept any app: apple-id", []string{"BFF_SOCIAL_ACCEPT_ANY_APP", "google-oauth2,apple-id"}, "BFF_SOCIAL_ACCEPT_ANY_APP"},
		{"accept any app: unknown backend", []string{"BFF_SOCIAL_ACCEPT_ANY_APP", "google"}, "BFF_SOCIAL_ACCEPT_ANY_APP"},
		{"accept any app: empty entry", []string{"BFF_SOCIAL_ACCEPT_ANY_APP", "google-oauth2,,facebook"}, "BFF_SOCIAL_ACCEPT_ANY_APP"},
		{"accept any app with google client ids", []string{"BFF_SOCIAL_ACCEPT_ANY_APP", "google-oauth2",
			"BFF_GOOGLE_CLIENT_IDS", "1-ios.apps.googleusercontent.com"}, "BFF_SOCIAL_ACCEPT_ANY_APP"},
		{"accept any app with the facebook app", []string{"BFF_SOCIAL_ACCEPT_ANY_APP", "facebook",
			"BFF_FACEBOOK_APP_ID", "1400000000000001", "BFF_FACEBOOK_APP_SECRET", goodSecret}, "BFF_SOCIAL_ACCEPT_ANY_APP"},
		{"bad trusted proxy", []string{"BFF_TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip"}, "BFF_TRUSTED_PROXIES"},
		{"bad trusted CIDR", []string{"BFF_TRUSTED_PROXIES", "10.0.0.0/33"}, "BFF_TRUSTED_PROXIES"},
		{"empty trusted proxy entry", []string{"BFF_TRUSTED_PROXIES", "10.0.0.1,,10.0.0.2"}, "BFF_TRUSTED_PROXIES"},
		{"bad log level", []string{"BFF_LOG_LEVEL", "loud"}, "BFF_LOG_LEVEL"},
		{"address without port", []string{"BFF_ADDR", "localhost"}, "BFF_ADDR"},
		{"admin address without port", []string{"BFF_ADMIN_ADDR", "127.0.0.1"}, "BFF_ADMIN_ADDR"},
		{"ecommerce audience equal to ours", []string{"BFF_ECOMMERCE_AUDIENCE", "mobile-auth-bff"}, "BFF_ECOMMERCE_AUDIENCE"},
		{"bad throttle", []string{"BFF_LOGIN_MAX_FAILURES_PER_USERNAME", "ten"}, "BFF_LOGIN_MAX_FAILURES_PER_USERNAME"},
		{"throttle out of range", []string{"BFF_LOGIN_MAX_FAILURES_PER_ADDRESS", "-1"}, "BFF_LOGIN_MAX_FAILURES_PER_ADDRESS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(env(tt.env...))
			if err == nil {
				t.Fatalf("loadConfig() succeeded, want an error naming %s", tt.variable)
			}
			var ce *configError
			if !errors.As(err, &ce) || ce.name != tt.variable {
				t.Errorf("loadConfig() error = %v, want one naming %s", err, tt.variable)
			}
			if !strings.HasPrefix(err.Error(), tt.variable+":") {
				t.Errorf("error text %q does not start with the variable %s", err, tt.variable)
			}
			if strings.Contains(err.Error(), goodSecret) {
				t.Errorf("error text %q shows the secret", err)
			}
			if !cmp.Equal(c, config{}, cmpopts.EquateEmpty()) {
				t.Errorf("loadConfig() returned a partial config (issuer %q) with its error", c.Issuer)
			}
		})
	}
}

// TestLoadConfigEcommerceRoutes: the broker's allowlist comes from
// BFF_ECOMMERCE_ROUTES or from the file BFF_ECOMMERCE_ROUTES_FILE names, and
// a bad entry in the file names the file's variable.
// TestLoadConfigIssuer: BFF_ISSUER is an absolute https URL (http on a
// loopback host), without userinfo, query, fragment or trailing slash;
// without it a loopback listener gets http://<BFF_ADDR>, and any other
// leaves the issuer empty, which serve refuses.
func TestLoadConfigIssuer(t *testing.T) {
	t.Parallel()
	accepted := []struct{ addr, issuer, want string }{
		{"127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{"localhost:9000", "", "http://localhost:9000"},
		{"LocalHost:9000", "", "http://LocalHost:9000"},
		{"[::1]:9000", "", "http://[::1]:9000"},
		{"127.8.9.10:9000", "", "http://127.8.9.10:9000"},
		{"0.0.0.0:8080", "https://auth.example.org", "https://auth.example.org"},
		{"0.0.0.0:8080", "https://example.org/auth", "https://example.org/auth"},
		{"0.0.0.0:8080", "https://example.org/tenant/auth", "https://example.org/tenant/auth"},
		{"0.0.0.0:8080", "https://auth.example.org:8443", "https://auth.example.org:8443"},
		{"0.0.0.0:8080", "http://localhost:8080", "http://localhost:8080"}, // docker-compose.yml's default
		{"127.0.0.1:8080", "http://127.0.0.1:8080/auth", "http://127.0.0.1:8080/auth"},
		{"127.0.0.1:8080", "http://[::1]:8080", "http://[::1]:8080"},
		{"127.0.0.1:8080", "https://127.0.0.1:8443", "https://127.0.0.1:8443"},
	}
	for _, tt := range accepted {
		t.Run("accepted "+tt.addr+" "+tt.issuer, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(env("BFF_ADDR", tt.addr, "BFF_ISSUER", tt.issuer))
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != tt.want {
				t.Errorf("Issuer = %q, want %q", c.Issuer, tt.want)
			}
			if err := c.requireIssuer(); err != nil {
				t.Errorf("requireIssuer: %v", err)
			}
		})
	}

	// Other hosts reach these listeners at an address the service cannot
	// know: loadConfig succeeds (migrate and the admin CLI need no issuer),
	// serve's check fails naming BFF_ISSUER.
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "[::]:8080", "192.0.2.1:8080", "bff.internal:8080", "localhost.example.org:80"} {
		t.Run("required on "+addr, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(env("BFF_ADDR", addr))
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != "" {
				t.Errorf("Issuer = %q, want none", c.Issuer)
			}
			err = c.requireIssuer()
			var ce *configError
			if !errors.As(err, &ce) || ce.name != "BFF_ISSUER" || !strings.Contains(err.Error(), addr) {
				t.Errorf("requireIssuer() = %v, want a BFF_ISSUER error naming BFF_ADDR %s", err, addr)
			}
		})
	}

	refused := []struct{ issuer, because string }{
		{"http://auth.example.org", "https"},
		{"http://0.0.0.0:8080", "https"},
		{"http://127.0.0.1.example.org", "https"},
		{"http://localhost.example.org", "https"},
		{"HTTPS://auth.example.org", "https://"},
		{"ftp://auth.example.org", "https://"},
		{"https://auth.example.org/", `use "https://auth.example.org"`},
		{"https://example.org/auth/", `use "https://example.org/auth"`},
		{"https://example.org?tenant=1", "query"},
		{"https://example.org/auth?", "query"},
		{"https://example.org#top", "fragment"},
		{"https://example.org/auth#", "fragment"},
		{"https://admin:hunter2@example.org", "password"},
		{"https://admin@example.org", "user name"},
		{"https:///auth", "absolute"},
		{"https://:443", "absolute"},
		{"/auth", "absolute"},
		{"auth.example.org", "absolute"},
		{"https:auth.example.org", "absolute"},
		{"http://[::1", "absolute"},
	}
	for _, tt := range refused {
		t.Run("refused "+tt.issuer, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(env("BFF_ADDR", "127.0.0.1:8080", "BFF_ISSUER", tt.issuer))
			var ce *configError
			if !errors.As(err, &ce) || ce.name != "BFF_ISSUER" {
				t.Fatalf("loadConfig() = %v, want a BFF_ISSUER error", err)
			}
			if !strings.Contains(err.Error(), tt.because) {
				t.Errorf("error %q does not say %q", err, tt.because)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes the password", err)
			}
		})
	}
}

func TestLoadConfigEcommerceRoutes(t *testing.T) {
	t.Parallel()
	names := func(rs []broker.Route) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.String())
		}
		return strings.Join(out, ", ")
	}
	c, err := loadConfig(env("BFF_ECOMMERCE_ROUTES", "GET /api/v2/orders/, POST /api/v2/baskets/{id}/lines/"))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(c.EcommerceRoutes); got != "GET /api/v2/orders/, POST /api/v2/baskets/{id}/lines/" {
		t.Errorf("routes from the variable = %s", got)
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "routes.txt")
	if err := os.WriteFile(good, []byte("# payment routes\nGET /api/v2/orders/{number}/\n\nPOST /api/v2/checkout/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = loadConfig(env("BFF_ECOMMERCE_ROUTES_FILE", good))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(c.EcommerceRoutes); got != "GET /api/v2/orders/{number}/, POST /api/v2/checkout/" {
		t.Errorf("routes from the file = %s", got)
	}

	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("GET /api/v2/orders/%2F/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ce *configError
	if _, err := loadConfig(env("BFF_ECOMMERCE_ROUTES_FILE", bad)); !errors.As(err, &ce) || ce.name != "BFF_ECOMMERCE_ROUTES_FILE" {
		t.Errorf("a bad entry in the file: %v, want an error naming BFF_ECOMMERCE_ROUTES_FILE", err)
	}
}

// TestLoadConfigSecretNotShown: a bad secret is described, never printed.
func TestLoadConfigSecretNotShown(t *testing.T) {
	t.Parallel()
	const short = "hunter2-is-my-secret"
	_, err := loadConfig(env("BFF_SECRET", short))
	if err == nil || strings.Contains(err.Error(), short) {
		t.Errorf("loadConfig() error = %v, want one that does not show the secret", err)
	}
}
