package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/openedx/mobile-auth-bff/metrics"
)

// retryPolicy says which failed attempts a call may repeat.
type retryPolicy int

const (
	// retryNever: the request may change something and has no key.
	retryNever retryPolicy = iota
	// retryIfNotSent: a keyed request is repeated only when the payment
	// service certainly did not act on it — it answered 503, or the
	// request never reached it.
	retryIfNotSent
	// retrySafe: GET and HEAD, repeated on 503 and any connection error.
	retrySafe
)

// result is the outcome of a call, over its attempts.
type result struct {
	resp     *http.Response // nil on error
	attempts int
	latency  time.Duration // time spent waiting for the payment service
	// sent means the last attempt's request was written out and no answer
	// came back: the payment service may have acted on it.
	sent bool
}

// upstream is the HTTP client of the payment service with its retries
// and circuit breaker.
type upstream struct {
	client      *http.Client
	breaker     *gobreaker.CircuitBreaker[*http.Response]
	maxAttempts int
	backoff     time.Duration
	cooldown    time.Duration
	openedAt    atomic.Int64 // unix nanoseconds of the last opening
	metrics     *metrics.Metrics
}

// errUnavailableStatus marks a 502, 503 or 504 answer to the breaker: it
// counts as a failure, and the answer is still relayed.
var errUnavailableStatus = errors.New("payment service answered 502, 503 or 504")

func newUpstream(cfg Config, m *metrics.Metrics) *upstream {
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:       http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			// Every call goes to one host: keep enough connections for
			// the concurrency of a busy instance.
			MaxIdleConns:           256,
			MaxIdleConnsPerHost:    256,
			IdleConnTimeout:        60 * time.Second,
			TLSHandshakeTimeout:    5 * time.Second,
			ForceAttemptHTTP2:      true,
			DisableCompression:     true, // bodies are relayed as encoded
			MaxResponseHeaderBytes: 64 << 10,
		}
	}
	u := &upstream{
		client: &http.Client{Transport: tr,
			// A redirect is relayed to the app, never followed with the
			// user's JWT to wherever it points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		maxAttempts: cfg.MaxAttempts, backoff: cfg.RetryBackoff, cooldown: cfg.BreakerCooldown, metrics: m,
	}
	failures := uint32(cfg.BreakerFailures)
	u.breaker = gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        "payment-service",
		MaxRequests: 1, // one probe when the cooldown is over
		Timeout:     cfg.BreakerCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// Unavailability opens the circuit; an answer does not, even a 500
		// (a bug of one route should not stop every payment call).
		IsSuccessful: func(err error) bool { return err == nil },
		// A caller that went away says nothing about the payment service.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				u.openedAt.Store(time.Now().UnixNano())
			}
			m.BrokerCircuitState.Set(float64(to))
		},
	})
	return u
}

// send makes a call of route, building each attempt's request with
// newReq, and retries it as policy allows, within ctx's deadline.
func (u *upstream) send(ctx context.Context, route string, policy retryPolicy, newReq func(context.Context) (*http.Request, error)) (result, error) {
	var res result
	for attempt := 1; ; attempt++ {
		resp, sent, err := u.attempt(ctx, route, newReq, &res)
		res.sent = sent
		retry := false
		switch {
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			return res, &RetryError{Err: fmt.Errorf("%w: circuit open", ErrUpstreamUnavailable), After: u.retryAfter()}
		case err != nil && ctx.Err() != nil:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return res, ErrUpstreamTimeout
			}
			return res, ctx.Err() // the app went away
		case err != nil:
			retry = policy == retrySafe || (policy == retryIfNotSent && !sent)
		case resp.StatusCode == http.StatusServiceUnavailable:
			retry = policy != retryNever
		}
		if retry && attempt < u.maxAttempts && u.pause(ctx, attempt) {
			if resp != nil {
				drain(resp.Body)
			}
			continue
		}
		if err == nil {
			res.resp = resp
			return res, nil
		}
		if sent {
			return res, fmt.Errorf("%w: %w", ErrUpstreamError, err)
		}
		return res, &RetryError{Err: fmt.Errorf("%w: %w", ErrUpstreamUnavailable, err), After: u.retryAfter()}
	}
}

// attempt sends one request through the breaker. sent reports whether
// the request was written out in full.
func (u *upstream) attempt(ctx context.Context, route string, newReq func(context.Context) (*http.Request, error), res *result) (*http.Response, bool, error) {
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}})
	req, err := newReq(ctx)
	if err != nil {
		return nil, false, err
	}
	start := time.Now()
	resp, err := u.breaker.Execute(func() (*http.Response, error) {
		resp, err := u.client.Do(req)
		if err == nil && (resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable ||
			resp.StatusCode == http.StatusGatewayTimeout) {
			return resp, errUnavailableStatus
		}
		return resp, err
	})
	if errors.Is(err, errUnavailableStatus) {
		err = nil
	}
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		u.metrics.BrokerUpstream.WithLabelValues(route, "circuit_open").Inc()
		return nil, false, err
	}
	elapsed := time.Since(start)
	res.attempts++
	res.latency += elapsed
	u.metrics.BrokerUpstreamDuration.WithLabelValues(route).Observe(elapsed.Seconds())
	label := "error"
	switch {
	case err == nil:
		label = strconv.Itoa(resp.StatusCode)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		label = "timeout"
	}
	u.metrics.BrokerUpstream.WithLabelValues(route, label).Inc()
	return resp, err != nil && wrote.Load(), err
}

// pause waits before retry number attempt (exponential backoff with
// jitter) and reports whether there is time left for it.
func (u *upstream) pause(ctx context.Context, attempt int) bool {
	d := u.backoff << (attempt - 1)
	d = d/2 + rand.N(d/2+1)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d+u.backoff {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryAfter is how long an app should wait: what is left of the open
// circuit's cooldown, or a few seconds.
func (u *upstream) retryAfter() time.Duration {
	if u.breaker.State() != gobreaker.StateClosed {
		left := u.cooldown - time.Since(time.Unix(0, u.openedAt.Load()))
		return max(left, time.Second)
	}
	return 5 * time.Second
}
