// Package broker talks to the payment service on behalf of the apps (SPEC
// §10): it decides which calls may go through (the allowlist and the
// payments scope), mints the short-lived, audience-bound JWT each call
// carries upstream, keeps POSTs idempotent, and calls the service with a
// timeout, bounded retries and a circuit breaker.
//
// The HTTP side (reading the app's request, writing the answer, mapping
// errors) is in package handlers; the caller's token has been validated
// there, by the one validator, before the broker sees the call.
package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/metrics"
	"github.com/openedx/mobile-auth-bff/store"
)

// RequiredScope is the scope a token needs to call the payment service.
const RequiredScope = "payments"

// Defaults of Config.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
	DefaultMaxAttempts     = 3
	DefaultRetryBackoff    = 50 * time.Millisecond
	// DefaultMaxBodyBytes bounds a request body, and a response body kept
	// for idempotent replay.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultJWTCacheEntries bounds the minted-JWT cache.
	DefaultJWTCacheEntries = 10_000
	// IdempotencyTTL is how long a key's outcome is kept and replayed.
	IdempotencyTTL = 24 * time.Hour
)

// Config is what the broker needs to know. Zero values take the defaults.
type Config struct {
	// URL is the payment service's base URL (BFF_ECOMMERCE_URL); the app's
	// path below /api/ecommerce is appended to it.
	URL string
	// Issuer and Audience are the iss and aud of the JWTs sent upstream.
	Issuer   string
	Audience string
	// Timeout bounds one brokered call upstream, retries included.
	Timeout time.Duration
	// Routes is the allowlist; nil means DefaultRoutes.
	Routes []Route
	// BreakerFailures consecutive failures open the circuit for
	// BreakerCooldown; then one probe decides whether it closes.
	BreakerFailures int
	BreakerCooldown time.Duration
	// MaxAttempts bounds the attempts of a retryable call (retries + 1).
	MaxAttempts  int
	RetryBackoff time.Duration
	MaxBodyBytes int64
	// JWTCacheEntries bounds the minted-JWT cache.
	JWTCacheEntries int
	// Transport replaces the HTTP transport to the payment service.
	Transport http.RoundTripper
	// Now is the clock of JWTs and idempotency records; nil means time.Now.
	Now func() time.Time
}

// Broker forwards the apps' payment calls.
type Broker struct {
	routes     Allowlist
	base       string // URL without a trailing slash
	timeout    time.Duration
	maxBody    int64
	staleAfter time.Duration
	store      store.Idempotency
	minter     *minter
	up         *upstream
	metrics    *metrics.Metrics
	log        *slog.Logger
	now        func() time.Time
}

// New builds a broker. st keeps idempotency records; signer signs the
// upstream JWTs (the service's key manager).
func New(cfg Config, st store.Idempotency, signer Signer, m *metrics.Metrics, log *slog.Logger) (*Broker, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("payment service URL %q: want http(s)://host[/path] without credentials, query or fragment", cfg.URL)
	}
	if cfg.Audience == "" || cfg.Issuer == "" {
		return nil, errors.New("the broker needs an issuer and an audience")
	}
	routes := cfg.Routes
	if routes == nil {
		routes = MustParseRoutes(DefaultRoutes)
	}
	cfg.Timeout = orDefault(cfg.Timeout, DefaultTimeout)
	cfg.BreakerFailures = orDefault(cfg.BreakerFailures, DefaultBreakerFailures)
	cfg.BreakerCooldown = orDefault(cfg.BreakerCooldown, DefaultBreakerCooldown)
	cfg.MaxAttempts = orDefault(cfg.MaxAttempts, DefaultMaxAttempts)
	cfg.RetryBackoff = orDefault(cfg.RetryBackoff, DefaultRetryBackoff)
	cfg.MaxBodyBytes = orDefault(cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	cfg.JWTCacheEntries = orDefault(cfg.JWTCacheEntries, DefaultJWTCacheEntries)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Broker{
		routes: routes, base: strings.TrimSuffix(u.String(), "/"), timeout: cfg.Timeout,
		maxBody: cfg.MaxBodyBytes, store: st, metrics: m, log: log, now: cfg.Now,
		// A claim is stale once its request cannot be running any more:
		// the upstream call is bounded by the timeout, storing its
		// outcome by storeTimeout.
		staleAfter: cfg.Timeout + storeTimeout + 5*time.Second,
	}
	b.minter = newMinter(signer, cfg.Issuer, cfg.Audience, cfg.JWTCacheEntries, cfg.Now, func(cached bool) {
		m.BrokerJWTs.WithLabelValues(map[bool]string{true: "cached", false: "minted"}[cached]).Inc()
	})
	b.up = newUpstream(cfg, m)
	return b, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Match returns the allowlisted route of a request: its method and its
// escaped path below /api/ecommerce.
func (b *Broker) Match(method, path string) (Route, bool) { return b.routes.Match(method, path) }

// Routes returns the allowlist.
func (b *Broker) Routes() []Route { return b.routes }

// Call is one request of an app to the payment service.
type Call struct {
	// Principal is who presented the token, as the validator found them.
	Principal bff.Principal
	// Route is the allowlisted route Match found for Method and Path.
	Route  Route
	Method string
	// Path is the escaped path below /api/ecommerce, RawQuery the query.
	Path     string
	RawQuery string
	// Header is the app's request header; only an allowlist of it is
	// forwarded.
	Header        http.Header
	Body          io.Reader
	ContentLength int64 // -1 when unknown
	ClientIP      string
	RequestID     string
}

// Response is the answer to relay to the app: the payment service's, or a
// stored one. The caller must close Body.
type Response struct {
	Status   int
	Header   http.Header
	Body     io.ReadCloser
	Replayed bool
}

// Trace is what a call did, for the request's log line.
type Trace struct {
	Attempts        int
	UpstreamLatency time.Duration
	UpstreamStatus  int
	JWTCached       bool
	// Idempotency is what became of the Idempotency-Key: "claimed",
	// "replayed", "in_flight", "reused", "unavailable"; "" without a key.
	Idempotency string
}

// Errors of a brokered call; the handler maps each to a problem response.
var (
	ErrNotConfigured          = errors.New("the payment broker is not configured")
	ErrRouteNotAllowed        = errors.New("not an allowed payment route")
	ErrInsufficientScope      = errors.New("the token lacks the payments scope")
	ErrBodyTooLarge           = errors.New("request body too large")
	ErrIdempotencyKeyMissing  = errors.New("an idempotency key is required")
	ErrIdempotencyKeyInvalid  = errors.New("malformed idempotency key")
	ErrIdempotencyKeyReused   = errors.New("idempotency key used with another request")
	ErrIdempotencyInFlight    = errors.New("a request with this idempotency key is in flight")
	ErrIdempotencyUnavailable = errors.New("the response to the request with this idempotency key is not available")
	ErrUpstreamUnavailable    = errors.New("payment service unavailable")
	ErrUpstreamTimeout        = errors.New("payment service timed out")
	ErrUpstreamError          = errors.New("payment service failed")
)

// RetryError is an error after which the caller may try again later.
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfterSeconds is the Retry-After value: whole seconds, at least 1.
func (e *RetryError) RetryAfterSeconds() int {
	return max(1, int((e.After+time.Second-1)/time.Second))
}

// Do makes one call to the payment service for an authenticated app.
// It checks that the caller acts for a user with the payments scope, and
// for POST and PATCH it requires an idempotency key and answers a repeated
// key from the store instead of calling again.
func (b *Broker) Do(ctx context.Context, c Call, tr *Trace) (*Response, error) {
	if c.Principal.User == nil {
		return nil, bff.ErrNotSupportedToken
	}
	if !c.Principal.HasScope(RequiredScope) {
		return nil, ErrInsufficientScope
	}
	key, keyed, err := idempotencyKey(c.Method, c.Header)
	if err != nil {
		return nil, err
	}
	body, err := b.readBody(c)
	if err != nil {
		return nil, err
	}
	jwt, cached, err := b.minter.token(c.Principal)
	if err != nil {
		return nil, fmt.Errorf("mint upstream JWT: %w", err)
	}
	tr.JWTCached = cached
	out := outbound{call: c, body: body, jwt: jwt, key: key, base: b.base}
	if keyed {
		return b.doKeyed(ctx, out, tr)
	}
	policy := retryNever
	if c.Method == http.MethodGet || c.Method == http.MethodHead {
		policy = retrySafe
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	res, err := b.up.send(ctx, c.Route.String(), policy, out.request)
	tr.record(res)
	if err != nil {
		cancel()
		return nil, err
	}
	if err := checkCredentialsAccepted(res.resp); err != nil {
		cancel()
		return nil, err
	}
	return &Response{Status: res.resp.StatusCode, Header: relayHeader(res.resp.Header, true),
		Body: &cancelOnClose{ReadCloser: res.resp.Body, cancel: cancel}}, nil
}

// readBody reads the request body of methods that have one, up to the cap.
// It is read whole: its hash identifies an idempotent request, and a
// retry sends it again.
func (b *Broker) readBody(c Call) ([]byte, error) {
	if c.Method == http.MethodGet || c.Method == http.MethodHead || c.Body == nil {
		return nil, nil
	}
	if c.ContentLength > b.maxBody {
		return nil, ErrBodyTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(c.Body, b.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w: %w", bff.ErrInvalidInput, err)
	}
	if int64(len(body)) > b.maxBody {
		return nil, ErrBodyTooLarge
	}
	return body, nil
}

// checkCredentialsAccepted turns the payment service's 401 into a broker
// failure: it refused the JWT the broker minted, not the app's token, and
// an app that saw a 401 would sign its user out.
func checkCredentialsAccepted(resp *http.Response) error {
	if resp.StatusCode != http.StatusUnauthorized {
		return nil
	}
	drain(resp.Body)
	return fmt.Errorf("%w: it refused the broker's JWT (401): check BFF_ECOMMERCE_AUDIENCE, BFF_ISSUER and the JWKS it trusts", ErrUpstreamError)
}

// outbound is a request to the payment service, built anew per attempt.
type outbound struct {
	call Call
	body []byte
	jwt  string
	key  string
	base string
}

// Headers of the app's request that are forwarded. Everything else stays
// behind: Authorization and Cookie (the app's credentials), hop-by-hop
// headers, X-Forwarded-* and any header an upstream might trust for
// identity.
var forwardedRequestHeaders = []string{
	"Accept", "Accept-Encoding", "Accept-Language", "Content-Encoding", "Content-Language", "Content-Type",
	"If-Match", "If-Modified-Since", "If-None-Match", "If-Unmodified-Since", "User-Agent",
}

func (o outbound) request(ctx context.Context) (*http.Request, error) {
	target := o.base + o.call.Path
	if o.call.RawQuery != "" {
		target += "?" + o.call.RawQuery
	}
	var body io.Reader
	if o.body != nil {
		body = bytes.NewReader(o.body)
	}
	req, err := http.NewRequestWithContext(ctx, o.call.Method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", bff.ErrInvalidInput, err)
	}
	for _, k := range forwardedRequestHeaders {
		if v := o.call.Header[k]; len(v) > 0 {
			req.Header[k] = v
		}
	}
	if o.key != "" {
		// A stored response is replayed to any later request with the
		// key: keep it in the plain encoding every client reads.
		req.Header.Del("Accept-Encoding")
		req.Header.Set("Idempotency-Key", o.key)
		// net/http silently re-sends a request with an Idempotency-Key and
		// a rewindable body when a reused connection breaks, even after the
		// payment service received it. Only the broker decides what is
		// sent again (ADR 10): without GetBody the transport cannot.
		req.GetBody = nil
	}
	req.Header.Set("Authorization", "JWT "+o.jwt)
	req.Header.Set("X-Request-ID", o.call.RequestID)
	if o.call.ClientIP != "" {
		req.Header.Set("X-Forwarded-For", o.call.ClientIP)
	}
	return req, nil
}

// Headers of the payment service's response that reach the app. Others —
// hop-by-hop headers, Set-Cookie (for the payment service's domain, not
// ours), CORS, Alt-Svc, WWW-Authenticate — stay behind.
var relayedResponseHeaders = []string{
	"Allow", "Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
	"Content-Type", "Etag", "Expires", "Last-Modified", "Link", "Location", "Retry-After", "Vary",
}

// relayHeader selects the relayed headers; withLength keeps Content-Length
// (a streamed body), which a stored response recomputes.
func relayHeader(h http.Header, withLength bool) http.Header {
	out := make(http.Header, 6)
	for _, k := range relayedResponseHeaders {
		if v := h[k]; len(v) > 0 && (withLength || k != "Content-Length") {
			out[k] = v
		}
	}
	// Payment data is personal: no shared cache keeps it unless the
	// payment service says so.
	if _, ok := out["Cache-Control"]; !ok {
		out["Cache-Control"] = []string{"no-store"}
	}
	return out
}

// cancelOnClose ends the upstream call's context once the body is read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// drain reads a little of a body so that its connection can be reused,
// and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

func (tr *Trace) record(res result) {
	tr.Attempts += res.attempts
	tr.UpstreamLatency += res.latency
	if res.resp != nil {
		tr.UpstreamStatus = res.resp.StatusCode
	}
}
