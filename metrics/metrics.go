// Package metrics holds the Prometheus collectors of the service, in a
// registry of its own per process (so that tests can run several servers).
package metrics

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	bff "github.com/openedx/mobile-auth-bff"
)

// Metrics is the set of collectors.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec
	// TokensIssued counts access tokens by client, format, grant and
	// binding (dpop|none).
	TokensIssued *prometheus.CounterVec
	// TokensPresented counts presented tokens by endpoint, format, result,
	// error code and binding (dpop: the DPoP scheme with a proof; none).
	TokensPresented *prometheus.CounterVec
	// SocialVerifications counts verifications of Google, Facebook and
	// Apple tokens by backend and result (ok, rejected, unavailable, cached).
	SocialVerifications *prometheus.CounterVec
	// SocialAudienceChecked is, per enabled social backend, 1 when it
	// accepts only tokens issued to the platform's own apps and 0 when it
	// accepts tokens of any app (Google or Facebook without their app
	// configuration): alert on 0 in production.
	SocialAudienceChecked *prometheus.GaugeVec
	// BrokerRequests counts the payment broker's answers by route pattern,
	// status and source (upstream, replay, broker).
	BrokerRequests *prometheus.CounterVec
	// BrokerUpstream counts calls to the payment service (each attempt) by
	// route pattern and result (status code, error, timeout, circuit_open).
	BrokerUpstream *prometheus.CounterVec
	// BrokerUpstreamDuration is the payment service's latency per attempt,
	// until its response headers.
	BrokerUpstreamDuration *prometheus.HistogramVec
	// BrokerCircuitState is the payment service's circuit: 0 closed,
	// 1 half-open, 2 open.
	BrokerCircuitState prometheus.Gauge
	// BrokerJWTs counts the upstream JWTs used, by whether they came from
	// the cache or were minted.
	BrokerJWTs *prometheus.CounterVec
	// UsageDropped counts token events left out of the usage statistics
	// because the buffer was full (the store failing for long).
	UsageDropped prometheus.Counter
	// UsageFlushFailures counts flushes of the usage statistics that the
	// store refused; their counts are retried.
	UsageFlushFailures prometheus.Counter
	// Usage aggregates the issued and presented tokens per client and hour
	// for the store (the migration views); nil records nothing there.
	Usage *Usage
	// Authorize counts browser sign-in answers of the authorize endpoint
	// by result: ok (a code issued) or the error (invalid_credentials,
	// csrf, too_many_attempts, an OAuth error code…).
	Authorize *prometheus.CounterVec
	// ChangeFeedUp is 1 while the PostgreSQL change feed (LISTEN) is up,
	// that is while caches are used.
	ChangeFeedUp prometheus.Gauge
}

// New registers the collectors in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_http_requests_total",
			Help: "HTTP requests by listener, route, method and status.",
		}, []string{"listener", "route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bff_http_request_duration_seconds",
			Help:    "HTTP request latency by listener and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"listener", "route"}),
		TokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_tokens_issued_total",
			Help: "Access tokens issued by client, format (bearer|jwt), grant and binding (dpop: bound to a DPoP key, RFC 9449; none).",
		}, []string{"client_id", "format", "grant_type", "binding"}),
		TokensPresented: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_tokens_presented_total",
			Help: "Tokens presented by endpoint, format, result (ok|error), error code and binding (dpop: Authorization DPoP with a proof; none).",
		}, []string{"endpoint", "format", "result", "error_code", "binding"}),
		SocialVerifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_social_verifications_total",
			Help: "Provider token verifications of the social exchange by backend and result: ok, rejected, unavailable (the provider was asked, or an Apple id_token checked) or cached (answered from the cache).",
		}, []string{"backend", "result"}),
		SocialAudienceChecked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bff_social_audience_checked",
			Help: "Per enabled social backend: 1 if it accepts only provider tokens issued to the platform's own apps, 0 if it accepts tokens obtained by any app (configure BFF_GOOGLE_CLIENT_IDS, BFF_FACEBOOK_APP_ID/SECRET).",
		}, []string{"backend"}),
		BrokerRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_broker_requests_total",
			Help: "Payment broker answers by route pattern, status and source (upstream|replay|broker).",
		}, []string{"route", "status", "source"}),
		BrokerUpstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_broker_upstream_requests_total",
			Help: "Calls to the payment service (each attempt) by route pattern and result: status code, error, timeout or circuit_open.",
		}, []string{"route", "result"}),
		BrokerUpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bff_broker_upstream_duration_seconds",
			Help:    "Payment service latency per attempt, until the response headers, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		BrokerCircuitState: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bff_broker_circuit_state",
			Help: "The payment service's circuit breaker: 0 closed, 1 half-open, 2 open.",
		}),
		BrokerJWTs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_broker_upstream_jwts_total",
			Help: "JWTs sent to the payment service, by source: cached or minted.",
		}, []string{"source"}),
		UsageDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bff_usage_dropped_total",
			Help: "Token events left out of the per-client usage statistics because the buffer was full.",
		}),
		UsageFlushFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bff_usage_flush_failures_total",
			Help: "Flushes of the usage statistics that failed; their counts are kept and retried.",
		}),
		Authorize: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_authorize_total",
			Help: "Browser sign-in answers of /oauth2/authorize by result: ok (code issued) or an error code.",
		}, []string{"result"}),
		ChangeFeedUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bff_change_feed_up",
			Help: "1 while the PostgreSQL change feed is connected and caches are in use.",
		}),
	}
	m.Registry.MustRegister(
		// The defaults, and the heap that the last collection found live:
		// what the process keeps, without the collector's headroom.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPDuration, m.TokensIssued, m.TokensPresented, m.SocialVerifications,
		m.SocialAudienceChecked, m.ChangeFeedUp,
		m.BrokerRequests, m.BrokerUpstream, m.BrokerUpstreamDuration, m.BrokerCircuitState, m.BrokerJWTs,
		m.UsageDropped, m.UsageFlushFailures, m.Authorize,
	)
	return m
}

// RecordAuthorize counts one answer of the authorize endpoint; "" is ok.
func (m *Metrics) RecordAuthorize(code string) {
	if code == "" {
		code = "ok"
	}
	m.Authorize.WithLabelValues(code).Inc()
}

// RecordIssued counts an issued access token in the Prometheus counter and
// the usage statistics. grant is the grant_type of the request
// (password, refresh_token, client_credentials, the token-exchange URN,
// social_exchange); binding is bff.BindingDPoP or bff.BindingNone.
func (m *Metrics) RecordIssued(clientID string, format bff.TokenFormat, grant, binding string) {
	m.TokensIssued.WithLabelValues(clientID, string(format), grant, binding).Inc()
	m.Usage.Issued(clientID, format, grant, binding)
}

// RecordPresented counts a presented token in the Prometheus counter and
// the usage statistics; code is "" when the token was accepted, clientID ""
// when the token could not be tied to a client, binding bff.BindingDPoP
// for the DPoP scheme and bff.BindingNone otherwise.
func (m *Metrics) RecordPresented(clientID, endpoint, format, binding, code string) {
	result := bff.ResultOK
	if code != "" {
		result = bff.ResultError
	}
	m.TokensPresented.WithLabelValues(endpoint, format, result, code, binding).Inc()
	m.Usage.Presented(clientID, endpoint, format, binding, code)
}
