package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/social"
	"github.com/openedx/mobile-auth-bff/store/memory"
	"github.com/openedx/mobile-auth-bff/store/postgres"
)

// config is the whole configuration, read from the environment once at
// start-up by loadConfig (SPEC §3).
type config struct {
	Addr            string
	AdminAddr       string
	AdminToken      string
	DatabaseURL     string
	DatabaseTimeout time.Duration
	// DatabaseMaxConns caps the PostgreSQL pool (half of it commits token
	// writes).
	DatabaseMaxConns int
	// MemoryMaxTokens caps the in-memory store's tokens; 0 = no cap.
	MemoryMaxTokens int
	Secret          []byte
	SecretGenerated bool
	// AdminTokenGenerated: serve --demo made BFF_ADMIN_TOKEN up for the run.
	AdminTokenGenerated bool
	Issuer              string // "" without BFF_ISSUER on a non-loopback BFF_ADDR: see requireIssuer
	Audience            string
	JWTAlg              string
	AccessTokenTTL      time.Duration
	RefreshTokenTTL     time.Duration
	RefreshReuseGrace   time.Duration
	SessionTTL          time.Duration
	CookieSecure        bool
	Migrate             bool
	LogLevel            slog.Level
	TrustedProxies      []*net.IPNet
	Throttle            oauth.ThrottleConfig
	DPoP                oauth.DPoPConfig

	EcommerceURL      string
	EcommerceAudience string
	EcommerceTimeout  time.Duration
	// EcommerceRoutes is the broker's allowlist; nil means SPEC §10's.
	EcommerceRoutes          []broker.Route
	EcommerceBreakerFailures int
	EcommerceBreakerCooldown time.Duration

	GoogleUserinfoURL     string
	GoogleTokeninfoURL    string
	GoogleClientIDs       []string
	FacebookMeURL         string
	FacebookDebugTokenURL string
	FacebookAppID         string
	FacebookAppSecret     social.Redacted // prints as [redacted]
	AppleJWKSURL          string
	AppleAudience         string
	AzureADGraphMeURL     string
	// SocialAcceptAnyApp names the backends (google-oauth2, facebook,
	// azuread-oauth2) that may accept tokens issued to any app on
	// PostgreSQL, where a backend without its audience configuration (and
	// azuread-oauth2, which has none) is otherwise off.
	SocialAcceptAnyApp []string

	// UsageFlushInterval is how often the usage statistics of the
	// migration views are added to the store; UsageRetention how long they
	// are kept.
	UsageFlushInterval time.Duration
	UsageRetention     time.Duration

	ShutdownTimeout time.Duration
}

// configError names the variable that stopped start-up.
type configError struct {
	name string
	msg  string
}

func (e *configError) Error() string { return e.name + ": " + e.msg }

// loadConfig reads and validates the configuration. The first bad value
// stops start-up with a message naming its variable.
func loadConfig(getenv func(string) string) (config, error) {
	r := envReader{getenv: getenv}
	c := config{
		Addr:                     r.str("BFF_ADDR", "127.0.0.1:8080"),
		AdminAddr:                r.str("BFF_ADMIN_ADDR", "127.0.0.1:8081"),
		AdminToken:               r.str("BFF_ADMIN_TOKEN", ""),
		DatabaseURL:              r.str("BFF_DATABASE_URL", ""),
		DatabaseTimeout:          r.duration("BFF_DATABASE_TIMEOUT", postgres.DefaultTimeout),
		DatabaseMaxConns:         r.integer("BFF_DATABASE_MAX_CONNS", postgres.DefaultMaxConns(), 1, 10_000),
		MemoryMaxTokens:          r.integer("BFF_MEMORY_MAX_TOKENS", memory.DefaultMaxTokens, 0, 100_000_000),
		Audience:                 r.str("BFF_JWT_AUDIENCE", "mobile-auth-bff"),
		JWTAlg:                   r.str("BFF_JWT_ALG", "RS256"),
		AccessTokenTTL:           r.duration("BFF_ACCESS_TOKEN_TTL", time.Hour),
		RefreshTokenTTL:          r.duration("BFF_REFRESH_TOKEN_TTL", 720*time.Hour),
		RefreshReuseGrace:        r.durationAllowZero("BFF_REFRESH_REUSE_GRACE", 10*time.Second),
		SessionTTL:               r.duration("BFF_SESSION_TTL", 336*time.Hour),
		CookieSecure:             r.boolean("BFF_COOKIE_SECURE", true),
		Migrate:                  r.boolean("BFF_MIGRATE", true),
		EcommerceURL:             r.str("BFF_ECOMMERCE_URL", ""),
		EcommerceAudience:        r.str("BFF_ECOMMERCE_AUDIENCE", "ecommerce"),
		EcommerceTimeout:         r.duration("BFF_ECOMMERCE_TIMEOUT", 10*time.Second),
		EcommerceBreakerFailures: r.integer("BFF_ECOMMERCE_BREAKER_FAILURES", broker.DefaultBreakerFailures, 1, 1000),
		EcommerceBreakerCooldown: r.duration("BFF_ECOMMERCE_BREAKER_COOLDOWN", broker.DefaultBreakerCooldown),
		GoogleUserinfoURL:        r.str("BFF_GOOGLE_USERINFO_URL", "https://openidconnect.googleapis.com/v1/userinfo"),
		GoogleTokeninfoURL:       r.str("BFF_GOOGLE_TOKENINFO_URL", "https://oauth2.googleapis.com/tokeninfo"),
		FacebookMeURL:            r.str("BFF_FACEBOOK_ME_URL", "https://graph.facebook.com/v19.0/me"),
		FacebookDebugTokenURL:    r.str("BFF_FACEBOOK_DEBUG_TOKEN_URL", "https://graph.facebook.com/v19.0/debug_token"),
		FacebookAppID:            r.str("BFF_FACEBOOK_APP_ID", ""),
		FacebookAppSecret:        social.Redacted(r.str("BFF_FACEBOOK_APP_SECRET", "")),
		AppleJWKSURL:             r.str("BFF_APPLE_JWKS_URL", "https://appleid.apple.com/auth/keys"),
		AppleAudience:            r.str("BFF_APPLE_AUDIENCE", ""),
		AzureADGraphMeURL:        r.str("BFF_AZUREAD_GRAPH_ME_URL", "https://graph.microsoft.com/v1.0/me"),
		ShutdownTimeout:          r.duration("BFF_SHUTDOWN_TIMEOUT", 15*time.Second),
		Throttle: oauth.ThrottleConfig{
			PerUsername: r.integer("BFF_LOGIN_MAX_FAILURES_PER_USERNAME", oauth.DefaultThrottle.PerUsername, 0, 1_000_000),
			PerAddress:  r.integer("BFF_LOGIN_MAX_FAILURES_PER_ADDRESS", oauth.DefaultThrottle.PerAddress, 0, 1_000_000),
			Window:      r.duration("BFF_LOGIN_FAILURE_WINDOW", oauth.DefaultThrottle.Window),
		},
	}
	c.DPoP = oauth.DPoPConfig{
		Window:        r.duration("BFF_DPOP_PROOF_WINDOW", oauth.DefaultDPoPWindow),
		NoNonce:       !r.boolean("BFF_DPOP_NONCE", true),
		NonceLifetime: r.duration("BFF_DPOP_NONCE_LIFETIME", oauth.DefaultDPoPNonceLifetime),
	}
	c.UsageFlushInterval = r.duration("BFF_USAGE_FLUSH_INTERVAL", 10*time.Second)
	c.UsageRetention = r.duration("BFF_USAGE_RETENTION", 90*24*time.Hour)
	c.LogLevel = r.logLevel("BFF_LOG_LEVEL", slog.LevelInfo)
	c.TrustedProxies = r.cidrs("BFF_TRUSTED_PROXIES")
	c.GoogleClientIDs = r.googleClientIDs("BFF_GOOGLE_CLIENT_IDS")
	c.SocialAcceptAnyApp = r.acceptAnyApp("BFF_SOCIAL_ACCEPT_ANY_APP")
	c.EcommerceRoutes = r.routes("BFF_ECOMMERCE_ROUTES", "BFF_ECOMMERCE_ROUTES_FILE")
	if r.err != nil {
		return config{}, r.err
	}

	switch {
	case c.AccessTokenTTL > bff.MaxAccessTokenTTL:
		return config{}, &configError{"BFF_ACCESS_TOKEN_TTL", fmt.Sprintf("must be at most %s, got %s", bff.MaxAccessTokenTTL, c.AccessTokenTTL)}
	case !oauth.ValidAlgorithm(c.JWTAlg):
		return config{}, &configError{"BFF_JWT_ALG", fmt.Sprintf("must be one of RS256, RS512, ES256, EdDSA, got %q", c.JWTAlg)}
	case c.RefreshReuseGrace > time.Minute:
		return config{}, &configError{"BFF_REFRESH_REUSE_GRACE", "must be at most 1m: longer lets a stolen refresh token be replayed unnoticed"}
	case c.DPoP.Window < time.Second || c.DPoP.Window > 5*time.Minute:
		return config{}, &configError{"BFF_DPOP_PROOF_WINDOW", "must be between 1s and 5m: a proof is accepted this far from the server's time, and remembered as long"}
	case c.DPoP.NonceLifetime < 10*time.Second || c.DPoP.NonceLifetime > time.Hour:
		return config{}, &configError{"BFF_DPOP_NONCE_LIFETIME", "must be between 10s and 1h"}
	case c.RefreshTokenTTL < c.AccessTokenTTL:
		return config{}, &configError{"BFF_REFRESH_TOKEN_TTL", "must not be shorter than BFF_ACCESS_TOKEN_TTL"}
	case c.Audience == "":
		return config{}, &configError{"BFF_JWT_AUDIENCE", "must not be empty"}
	case c.UsageFlushInterval < 100*time.Millisecond || c.UsageFlushInterval > 10*time.Minute:
		return config{}, &configError{"BFF_USAGE_FLUSH_INTERVAL", "must be between 100ms and 10m"}
	case c.UsageRetention < 48*time.Hour:
		return config{}, &configError{"BFF_USAGE_RETENTION", "must be at least 48h: the dashboard shows the last day"}
	case c.EcommerceAudience == "" || c.EcommerceAudience == c.Audience:
		return config{}, &configError{"BFF_ECOMMERCE_AUDIENCE", "must be set and differ from BFF_JWT_AUDIENCE"}
	case c.EcommerceTimeout > maxEcommerceTimeout:
		return config{}, &configError{"BFF_ECOMMERCE_TIMEOUT", fmt.Sprintf("must be at most %s: the JWT a call carries lives %s and is renewed %s before it expires",
			maxEcommerceTimeout, oauth.UpstreamTokenTTL, maxEcommerceTimeout)}
	}
	if u, err := url.Parse(c.EcommerceURL); c.EcommerceURL != "" && err == nil && (u.User != nil || u.RawQuery != "" || u.Fragment != "") {
		return config{}, &configError{"BFF_ECOMMERCE_URL", "must not carry credentials, a query or a fragment: the app's path and query are appended to it"}
	}
	for name, addr := range map[string]string{"BFF_ADDR": c.Addr, "BFF_ADMIN_ADDR": c.AdminAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return config{}, &configError{name, fmt.Sprintf("must be host:port, got %q", addr)}
		}
	}
	if c.Issuer = r.str("BFF_ISSUER", ""); c.Issuer != "" {
		if err := checkIssuer(c.Issuer); err != nil {
			return config{}, err
		}
	} else if host, _, _ := net.SplitHostPort(c.Addr); loopbackHost(host) {
		c.Issuer = "http://" + c.Addr
	}
	for name, raw := range map[string]string{
		"BFF_ECOMMERCE_URL": c.EcommerceURL, "BFF_GOOGLE_USERINFO_URL": c.GoogleUserinfoURL,
		"BFF_FACEBOOK_ME_URL": c.FacebookMeURL, "BFF_APPLE_JWKS_URL": c.AppleJWKSURL,
		"BFF_GOOGLE_TOKENINFO_URL": c.GoogleTokeninfoURL, "BFF_FACEBOOK_DEBUG_TOKEN_URL": c.FacebookDebugTokenURL,
		"BFF_AZUREAD_GRAPH_ME_URL": c.AzureADGraphMeURL,
	} {
		if raw == "" && name == "BFF_ECOMMERCE_URL" {
			continue
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config{}, &configError{name, "must be an absolute http(s) URL"}
		}
	}
	if err := c.validateFacebookApp(); err != nil {
		return config{}, err
	}
	if err := c.validateAcceptAnyApp(); err != nil {
		return config{}, err
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return config{}, &configError{"BFF_DATABASE_URL", "must be a postgres:// URL"}
	}

	secret := getenv("BFF_SECRET")
	switch {
	case secret == "" && c.DatabaseURL != "":
		return config{}, &configError{"BFF_SECRET", "is required with BFF_DATABASE_URL: it encrypts the signing keys and signs opaque tokens; set at least 32 random bytes (e.g. `openssl rand -base64 48`)"}
	case secret == "":
		c.Secret = make([]byte, 48)
		_, _ = rand.Read(c.Secret)
		c.SecretGenerated = true
	case len(secret) < oauth.MinSecretLength:
		return config{}, &configError{"BFF_SECRET", fmt.Sprintf("must be at least %d bytes, got %d", oauth.MinSecretLength, len(secret))}
	default:
		c.Secret = []byte(secret)
	}
	return c, nil
}

// checkIssuer enforces SPEC §3 on BFF_ISSUER. The value is the iss of
// every JWT and the metadata's issuer, and the services that verify them
// compare it character for character (RFC 8414 §3.3, edx-drf-extensions'
// JWT_ISSUERS), so what does not fit is refused, never rewritten: a
// silently dropped slash would leave the operator's copy at the IDAs
// different from the tokens' iss.
func checkIssuer(raw string) error {
	const name = "BFF_ISSUER"
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return &configError{name, fmt.Sprintf("must be an absolute URL like https://auth.example.org, got %q", raw)}
	case !strings.HasPrefix(raw, "https://") && !strings.HasPrefix(raw, "http://"):
		return &configError{name, fmt.Sprintf("must be an https:// URL (http:// only on a loopback host), got %q", raw)}
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return &configError{name, fmt.Sprintf("must be https: http is allowed only on a loopback host (127.0.0.0/8, ::1, localhost), got %q", raw)}
	case u.User != nil:
		return &configError{name, "must not carry a user name or password"}
	case strings.ContainsAny(raw, "?#"):
		return &configError{name, fmt.Sprintf("must have no query or fragment (RFC 8414 §2), got %q", raw)}
	case strings.HasSuffix(raw, "/"):
		return &configError{name, fmt.Sprintf("must not end with a slash: verifiers compare the issuer character for character and RFC 8414 §3.1 builds the metadata URL without it; use %q",
			strings.TrimRight(raw, "/"))}
	}
	return nil
}

// requireIssuer is serve's check. Without BFF_ISSUER the issuer is
// http://<BFF_ADDR> on a loopback listener, and empty on any other: the
// address a listener binds (0.0.0.0 in a container) is not the one its
// clients reach it at, so the operator must name that. Only serve needs an
// issuer; migrate and the admin CLI issue nothing and run without one.
func (c config) requireIssuer() error {
	if c.Issuer != "" {
		return nil
	}
	return &configError{"BFF_ISSUER", fmt.Sprintf("is required when BFF_ADDR (%s) is not a loopback address: set it to the public https:// URL clients reach the service at (the iss of every JWT, and what edX services list in JWT_ISSUERS)", c.Addr)}
}

// loopbackHost reports whether host (a name or an address, without port)
// is one only the local machine reaches: localhost, 127.0.0.0/8 or ::1.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateFacebookApp checks BFF_FACEBOOK_APP_ID and
// BFF_FACEBOOK_APP_SECRET: both or neither (one without the other would
// silently leave Facebook tokens of other apps accepted). Messages never
// quote the secret.
func (c config) validateFacebookApp() error {
	id, secret := c.FacebookAppID, c.FacebookAppSecret.Reveal()
	switch {
	case id == "" && secret == "":
		return nil
	case secret == "":
		return &configError{"BFF_FACEBOOK_APP_SECRET", "is required with BFF_FACEBOOK_APP_ID: debug_token is called with the app's token (app id and secret)"}
	case id == "":
		return &configError{"BFF_FACEBOOK_APP_ID", "is required with BFF_FACEBOOK_APP_SECRET"}
	case len(id) > 32 || strings.Trim(id, "0123456789") != "":
		return &configError{"BFF_FACEBOOK_APP_ID", fmt.Sprintf("must be the numeric Facebook app id, got %q", id)}
	case len(secret) > 256 || strings.ContainsAny(secret, "| \t\r\n"):
		return &configError{"BFF_FACEBOOK_APP_SECRET", "does not look like a Facebook app secret (it holds a space or a |, or is over 256 bytes)"}
	}
	return nil
}

// validateAcceptAnyApp refuses an opt-in for a backend whose audience is
// configured: it would do nothing until the configuration goes, and then
// silently accept any app's tokens.
func (c config) validateAcceptAnyApp() error {
	for _, b := range c.SocialAcceptAnyApp {
		switch {
		case b == bff.ProviderGoogle && len(c.GoogleClientIDs) > 0:
			return &configError{"BFF_SOCIAL_ACCEPT_ANY_APP", "lists google-oauth2, but BFF_GOOGLE_CLIENT_IDS is set, so Google tokens are checked: remove google-oauth2"}
		case b == bff.ProviderFacebook && c.FacebookAppID != "":
			return &configError{"BFF_SOCIAL_ACCEPT_ANY_APP", "lists facebook, but BFF_FACEBOOK_APP_ID is set, so Facebook tokens are checked: remove facebook"}
		}
	}
	return nil
}

// envReader collects the first error while reading variables.
type envReader struct {
	getenv func(string) string
	err    error
}

func (r *envReader) fail(name, msg string) {
	if r.err == nil {
		r.err = &configError{name, msg}
	}
}

func (r *envReader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *envReader) duration(name string, def time.Duration) time.Duration {
	d := r.durationAllowZero(name, def)
	if d <= 0 && r.err == nil {
		r.fail(name, "must be a positive duration")
	}
	return d
}

func (r *envReader) durationAllowZero(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, fmt.Sprintf("not a duration (like 30s, 15m, 1h): %q", v))
		return def
	}
	if d < 0 {
		r.fail(name, "must not be negative")
	}
	return d
}

func (r *envReader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, fmt.Sprintf("must be true or false, got %q", v))
		return def
	}
	return b
}

func (r *envReader) integer(name string, def, lo, hi int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(name, fmt.Sprintf("must be an integer between %d and %d, got %q", lo, hi, v))
		return def
	}
	return n
}

func (r *envReader) logLevel(name string, def slog.Level) slog.Level {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, fmt.Sprintf("must be debug, info, warn or error, got %q", v))
		return def
	}
	return l
}

func (r *envReader) cidrs(name string) []*net.IPNet {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return nil
	}
	var out []*net.IPNet
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "/") {
			if ip := net.ParseIP(s); ip != nil {
				bits := 128
				if ip.To4() != nil {
					bits = 32
				}
				s = fmt.Sprintf("%s/%d", s, bits)
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			r.fail(name, fmt.Sprintf("not an address or CIDR: %q", s))
			return nil
		}
		out = append(out, n)
	}
	return out
}

// googleClientIDs reads a comma-separated list of Google OAuth client
// ids. Each must end in .apps.googleusercontent.com: an iOS bundle ID or
// a project number put here by mistake would match no token.
func (r *envReader) googleClientIDs(name string) []string {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return nil
	}
	var out []string
	for _, id := range strings.Split(v, ",") {
		id = strings.TrimSpace(id)
		if id == "" || !strings.HasSuffix(id, googleClientIDSuffix) || len(id) == len(googleClientIDSuffix) {
			r.fail(name, fmt.Sprintf("each entry must be an OAuth client id ending in %s, got %q", googleClientIDSuffix, id))
			return nil
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// acceptAnyApp reads the comma-separated backends that may accept tokens
// issued to any app: google-oauth2, facebook and azuread-oauth2 (which can
// never check). Apple id_tokens are always checked (BFF_APPLE_AUDIENCE).
func (r *envReader) acceptAnyApp(name string) []string {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return nil
	}
	var out []string
	for _, b := range strings.Split(v, ",") {
		switch b = strings.TrimSpace(b); b {
		case bff.ProviderGoogle, bff.ProviderFacebook, bff.ProviderAzureAD:
			if !slices.Contains(out, b) {
				out = append(out, b)
			}
		case bff.ProviderApple:
			r.fail(name, "apple-id always checks the aud of its id_tokens (BFF_APPLE_AUDIENCE): only google-oauth2, facebook and azuread-oauth2 can accept tokens issued to any app")
			return nil
		default:
			r.fail(name, fmt.Sprintf("entries are google-oauth2, facebook and azuread-oauth2, comma separated, got %q", b))
			return nil
		}
	}
	return out
}

// googleClientIDSuffix ends every Google OAuth client id.
const googleClientIDSuffix = ".apps.googleusercontent.com"

// routes reads the broker's allowlist from the variable named inline or
// from the file the other names; nil when neither is set.
func (r *envReader) routes(inline, file string) []broker.Route {
	v, path := strings.TrimSpace(r.getenv(inline)), strings.TrimSpace(r.getenv(file))
	name := inline
	switch {
	case v != "" && path != "":
		r.fail(inline, "set either it or "+file+", not both")
		return nil
	case path != "":
		raw, err := os.ReadFile(path)
		if err != nil {
			r.fail(file, fmt.Sprintf("cannot read the allowlist: %v", err))
			return nil
		}
		v, name = string(raw), file
	case v == "":
		return nil
	}
	routes, err := broker.ParseRoutes(v)
	if err != nil {
		r.fail(name, err.Error()+` (entries are "METHOD /path/{param}/", e.g. "GET /api/v2/orders/{number}/")`)
		return nil
	}
	return routes
}

// maxEcommerceTimeout caps BFF_ECOMMERCE_TIMEOUT.
const maxEcommerceTimeout = time.Minute

var errUsage = errors.New("usage")
