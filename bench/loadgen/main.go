// Command loadgen drives a running mobile-auth-bff over HTTP with one
// scenario (a password grant, a refresh, an introspection…) from several
// concurrent workers for a fixed time, then prints the request count,
// errors by status, throughput and latency percentiles, and a one-line JSON
// summary for scripts.
//
// `loadgen suite` runs every scenario against service processes it builds
// and starts itself, in memory and on PostgreSQL, measures the machine's
// bounds and writes docs/performance.md (suite.go). See bench/README.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout)
	if err != nil && !errors.Is(err, flag.ErrHelp) { // -h has printed the usage
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	baseURL       string
	scenario      string
	concurrency   int
	duration      time.Duration
	clientID      string // the client the measured requests authenticate as
	clientSecret  string
	tokenClientID string // the public client that logs the user in, for introspection
	username      string
	password      string
	paymentPath   string // the payment-service GET of the broker scenarios
}

// Defaults match the data that `serve --demo` seeds.
const (
	demoMobileClient  = "mobile-demo"
	demoBackendClient = "backend-demo"
)

func parseFlags(args []string, out io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.baseURL, "url", "http://127.0.0.1:8080", "base URL of the running service")
	fs.StringVar(&cfg.scenario, "scenario", "", "what to send: "+strings.Join(scenarioNames(), ", ")+
		" (or `loadgen suite -h`: every scenario against a service it starts)")
	fs.IntVar(&cfg.concurrency, "c", 8, "concurrent workers (one connection each)")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "how long to send requests")
	fs.StringVar(&cfg.clientID, "client-id", "", "client of the measured requests (default "+demoMobileClient+
		", or "+demoBackendClient+" for client-credentials and introspect scenarios)")
	fs.StringVar(&cfg.clientSecret, "client-secret", "", "secret of a confidential -client-id (serve --demo prints it)")
	fs.StringVar(&cfg.tokenClientID, "token-client-id", demoMobileClient, "public client that logs the user in to get the token to introspect")
	fs.StringVar(&cfg.username, "username", "demo", "user of the password grant")
	fs.StringVar(&cfg.password, "password", "demo-password", "password of -username")
	fs.StringVar(&cfg.paymentPath, "path", "/api/v2/orders/EDX-100001/", "payment-service path of broker-get and direct-get")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	sc, ok := scenarios[cfg.scenario]
	switch {
	case !ok:
		return cfg, fmt.Errorf("-scenario must be one of: %s", strings.Join(scenarioNames(), ", "))
	case cfg.concurrency < 1:
		return cfg, errors.New("-c must be at least 1")
	case cfg.duration <= 0:
		return cfg, errors.New("-d must be positive")
	}
	if cfg.clientID == "" {
		cfg.clientID = demoMobileClient
		if sc.confidential {
			cfg.clientID = demoBackendClient
		}
	}
	if sc.confidential && cfg.clientSecret == "" {
		return cfg, fmt.Errorf("scenario %s authenticates a confidential client: pass -client-secret (serve --demo prints %s's)",
			cfg.scenario, demoBackendClient)
	}
	cfg.baseURL = strings.TrimRight(cfg.baseURL, "/")
	return cfg, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "suite" {
		return runSuite(ctx, args[1:], stdout)
	}
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	// Ctrl-C ends the run early and still prints what was measured.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	t := newTarget(cfg)
	calls, err := scenarios[cfg.scenario].prepare(ctx, t, cfg.concurrency)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", cfg.scenario, err)
	}
	// One request before the clock starts: a wrong secret or URL should
	// be one clear error, not ten seconds of 401s.
	if label := calls[0](ctx); label != "" {
		return fmt.Errorf("first %s request failed: %s", cfg.scenario, label)
	}

	fmt.Fprintf(stdout, "scenario %s: %d workers for %s against %s\n", cfg.scenario, cfg.concurrency, cfg.duration, cfg.baseURL)
	recs, elapsed := drive(ctx, calls, cfg.duration)
	s := summarize(cfg.scenario, cfg.concurrency, elapsed, recs)
	printSummary(stdout, s)
	line, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", line)
	return err
}

// A call sends one request of a scenario and returns "" on success or a
// label for the failure: the HTTP status ("401"), "inactive" for an
// introspection that says the token is not active, or "transport" for a
// request that got no response.
type call func(ctx context.Context) string

// scenario builds one call per worker. Calls that carry state (a refresh
// token being rotated) are per worker, so that workers never race on it.
type scenario struct {
	confidential bool // the measured requests authenticate -client-id with -client-secret
	prepare      func(ctx context.Context, t *target, workers int) ([]call, error)
}

// scenarios are what -scenario accepts. The bearer twins of the JWT
// issuance scenarios give the JWT-vs-opaque ratio over HTTP.
var scenarios = map[string]scenario{
	"password-jwt":              {prepare: same(passwordGrant("jwt"))},
	"password-bearer":           {prepare: same(passwordGrant("bearer"))},
	"refresh-jwt":               {prepare: refreshChains("jwt")},
	"refresh-bearer":            {prepare: refreshChains("bearer")},
	"client-credentials-jwt":    {confidential: true, prepare: same(clientCredentials("jwt"))},
	"client-credentials-bearer": {confidential: true, prepare: same(clientCredentials("bearer"))},
	"introspect-jwt":            {confidential: true, prepare: introspection("jwt")},
	"introspect-bearer":         {confidential: true, prepare: introspection("bearer")},
	"jwks":                      {prepare: same(jwks)},
	"broker-get":                {prepare: brokerGet("bearer")},
	"broker-get-jwt":            {prepare: brokerGet("jwt")},
	"direct-get":                {prepare: same(directGet)},
}

func scenarioNames() []string { return slices.Sorted(maps.Keys(scenarios)) }

// same gives every worker the same stateless call.
func same(newCall func(t *target) call) func(context.Context, *target, int) ([]call, error) {
	return func(_ context.Context, t *target, workers int) ([]call, error) {
		c := newCall(t)
		calls := make([]call, workers)
		for i := range calls {
			calls[i] = c
		}
		return calls, nil
	}
}

func passwordGrant(format string) func(t *target) call {
	return func(t *target) call {
		form := t.passwordForm(t.cfg.clientID, format)
		return func(ctx context.Context) string {
			status, _, err := t.post(ctx, "/oauth2/access_token", form, false)
			return label(status, err)
		}
	}
}

func clientCredentials(format string) func(t *target) call {
	return func(t *target) call {
		form := url.Values{"grant_type": {"client_credentials"}, "token_type": {format}}
		return func(ctx context.Context) string {
			status, _, err := t.post(ctx, "/oauth2/access_token", form, true)
			return label(status, err)
		}
	}
}

func jwks(t *target) call {
	return func(ctx context.Context) string {
		status, _, err := t.get(ctx, "/.well-known/jwks.json")
		return label(status, err)
	}
}

// refreshChains logs each worker in once and then rotates its refresh
// token on every call, as an app does. A refused refresh breaks the chain
// (the old token is spent), so the worker logs in again; a 503 does not.
func refreshChains(format string) func(context.Context, *target, int) ([]call, error) {
	return func(ctx context.Context, t *target, workers int) ([]call, error) {
		calls := make([]call, workers)
		for i := range calls {
			tok, err := t.login(ctx, t.cfg.clientID, format)
			if err != nil {
				return nil, err
			}
			refresh := tok.RefreshToken
			calls[i] = func(ctx context.Context) string {
				form := url.Values{"grant_type": {"refresh_token"}, "client_id": {t.cfg.clientID},
					"refresh_token": {refresh}, "token_type": {format}}
				status, body, err := t.post(ctx, "/oauth2/access_token", form, false)
				var next tokenResponse
				if err == nil && status == http.StatusOK && json.Unmarshal(body, &next) == nil && next.RefreshToken != "" {
					refresh = next.RefreshToken
					return ""
				}
				// A 503 (the service busy, or the in-memory store at its cap)
				// consumed nothing: the same refresh token is tried again, as
				// an app would after Retry-After. Any other failure starts a
				// new chain.
				if status != http.StatusServiceUnavailable {
					if again, lerr := t.login(ctx, t.cfg.clientID, format); lerr == nil {
						refresh = again.RefreshToken
					}
				}
				if err == nil && status == http.StatusOK {
					return "no refresh_token"
				}
				return label(status, err)
			}
		}
		return calls, nil
	}
}

// introspection logs the user in once (through the public -token-client-id)
// and has -client-id introspect that token on every call.
func introspection(format string) func(context.Context, *target, int) ([]call, error) {
	return func(ctx context.Context, t *target, workers int) ([]call, error) {
		tok, err := t.login(ctx, t.cfg.tokenClientID, format)
		if err != nil {
			return nil, err
		}
		form := url.Values{"token": {tok.AccessToken}}
		active := []byte(`"active":true`)
		c := func(ctx context.Context) string {
			status, body, err := t.post(ctx, "/oauth2/introspect", form, true)
			if err == nil && status == http.StatusOK && !bytes.Contains(body, active) {
				return "inactive"
			}
			return label(status, err)
		}
		return same(func(*target) call { return c })(ctx, t, workers)
	}
}

// label turns a response into a call result.
func label(status int, err error) string {
	switch {
	case err != nil:
		return "transport"
	case status < 200 || status > 299:
		return strconv.Itoa(status)
	}
	return ""
}

// target is the service under load.
type target struct {
	cfg    config
	client *http.Client
}

func newTarget(cfg config) *target {
	// As many idle connections as workers: each worker keeps its
	// connection, so the run measures requests, not TCP handshakes.
	tr := &http.Transport{MaxIdleConns: cfg.concurrency, MaxIdleConnsPerHost: cfg.concurrency, IdleConnTimeout: time.Minute}
	return &target{cfg: cfg, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// tokenResponse is the part of a token response loadgen reads.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

func (t *target) passwordForm(clientID, format string) url.Values {
	return url.Values{"grant_type": {"password"}, "client_id": {clientID},
		"username": {t.cfg.username}, "password": {t.cfg.password}, "token_type": {format}}
}

// login runs a password grant and returns the tokens.
func (t *target) login(ctx context.Context, clientID, format string) (tokenResponse, error) {
	var tok tokenResponse
	status, body, err := t.post(ctx, "/oauth2/access_token", t.passwordForm(clientID, format), false)
	if err != nil {
		return tok, err
	}
	if status != http.StatusOK {
		return tok, fmt.Errorf("log in %s as client %s: %d %s", t.cfg.username, clientID, status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return tok, fmt.Errorf("log in: no access_token in %s", bytes.TrimSpace(body))
	}
	return tok, nil
}

// post sends a form; basic authenticates -client-id with -client-secret.
func (t *target) post(ctx context.Context, path string, form url.Values, basic bool) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.baseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(t.cfg.clientID), url.QueryEscape(t.cfg.clientSecret))
	}
	return t.do(req)
}

func (t *target) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.cfg.baseURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	return t.do(req)
}

// do reads the whole body: a connection goes back to the pool only then.
func (t *target) do(req *http.Request) (int, []byte, error) {
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// recorder is one worker's results; each worker has its own, so recording
// takes no lock.
type recorder struct {
	latencies []time.Duration // successful requests only
	errors    map[string]int
}

// drive runs every call in a loop on its own goroutine until d has passed
// or ctx ends. A request in flight at the deadline is allowed to finish
// and counts: elapsed is measured to the last one.
func drive(ctx context.Context, calls []call, d time.Duration) ([]*recorder, time.Duration) {
	start := time.Now()
	deadline := start.Add(d)
	recs := make([]*recorder, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		rec := &recorder{errors: map[string]int{}}
		recs[i] = rec
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				l := c(ctx)
				if ctx.Err() != nil {
					return // interrupted: the request did not really fail
				}
				if l != "" {
					rec.errors[l]++
					continue
				}
				rec.latencies = append(rec.latencies, time.Since(t0))
			}
		})
	}
	wg.Wait()
	return recs, time.Since(start)
}

// summary is the outcome of a run; it is also the JSON line.
type summary struct {
	Scenario    string         `json:"scenario"`
	Concurrency int            `json:"concurrency"`
	Seconds     float64        `json:"seconds"`
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"`
	Errors      map[string]int `json:"errors"`
	RPS         float64        `json:"rps"`
	P50ms       float64        `json:"p50_ms"`
	P90ms       float64        `json:"p90_ms"`
	P99ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
}

// summarize merges the workers' results. Throughput counts every
// completed request (errors too: a fast 429 is still load served);
// latencies are those of successful requests, so that quick failures do
// not flatter the percentiles.
func summarize(scenario string, concurrency int, elapsed time.Duration, recs []*recorder) summary {
	s := summary{Scenario: scenario, Concurrency: concurrency, Seconds: round(elapsed.Seconds(), 3), Errors: map[string]int{}}
	var all []time.Duration
	for _, r := range recs {
		all = append(all, r.latencies...)
		for l, n := range r.errors {
			s.Errors[l] += n
			s.Requests += n
		}
	}
	slices.Sort(all)
	s.OK = len(all)
	s.Requests += s.OK
	if elapsed > 0 {
		s.RPS = round(float64(s.Requests)/elapsed.Seconds(), 1)
	}
	s.P50ms = millis(percentile(all, 50))
	s.P90ms = millis(percentile(all, 90))
	s.P99ms = millis(percentile(all, 99))
	s.MaxMs = millis(percentile(all, 100))
	return s
}

// percentile is the nearest-rank percentile of sorted values: the smallest
// value with at least p% of the values at or below it. Nearest rank
// always returns a measured latency, never an interpolated one; 0 when
// there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func millis(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func printSummary(w io.Writer, s summary) {
	fmt.Fprintf(w, "requests    %d (%d ok) in %.1fs\n", s.Requests, s.OK, s.Seconds)
	fmt.Fprintf(w, "errors      %s\n", formatErrors(s.Errors))
	fmt.Fprintf(w, "throughput  %.1f req/s\n", s.RPS)
	fmt.Fprintf(w, "latency     p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms\n", s.P50ms, s.P90ms, s.P99ms, s.MaxMs)
}

// formatErrors lists error counts by label, in a stable order.
func formatErrors(errs map[string]int) string {
	if len(errs) == 0 {
		return "none"
	}
	labels := slices.Sorted(maps.Keys(errs))
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = fmt.Sprintf("%s: %d", l, errs[l])
	}
	return strings.Join(parts, ", ")
}
