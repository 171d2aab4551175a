package handlers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/metrics"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// brokerPrefix is where the payment broker's routes start; the rest of the
// path is the payment service's.
const brokerPrefix = "/api/ecommerce"

// statusClientGone is logged for a call whose app hung up (nginx's 499).
const statusClientGone = 499

// relayBuffers recycle the buffers bodies are relayed through: io.Copy
// would allocate 32 KiB per request.
var relayBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// handleBroker relays an app's call to the payment service (SPEC §10): the
// credential is validated (with the live account) before anything else,
// then the route must be allowlisted, then the broker checks the user and
// the scope and makes the call. Nothing reaches the payment service unless
// all of that passed.
func handleBroker(b *broker.Broker, v *oauth.Validator, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		routeName, status, source := "unmatched", 0, "broker"
		defer func() {
			if status == 0 {
				status = c.Response().Status
			}
			m.BrokerRequests.WithLabelValues(routeName, strconv.Itoa(status), source).Inc()
		}()
		fail := func(err error) error {
			status, _, _ = problemFor(err)
			return err
		}
		if b == nil {
			return fail(broker.ErrNotConfigured)
		}
		// The escaped path: an encoded slash or dot must not turn into a
		// path the allowlist did not approve.
		path := strings.TrimPrefix(req.URL.EscapedPath(), brokerPrefix)
		route, allowed := b.Match(req.Method, path)
		if allowed {
			routeName = route.String()
		}
		addLogAttrs(c, slog.String("broker_route", routeName))
		p, err := authenticate(c, v, m, "broker")
		if err != nil {
			return fail(err)
		}
		if !allowed {
			return fail(broker.ErrRouteNotAllowed)
		}
		var tr broker.Trace
		res, err := b.Do(req.Context(), broker.Call{
			Principal: p, Route: route, Method: req.Method, Path: path, RawQuery: req.URL.RawQuery,
			Header: req.Header, Body: req.Body, ContentLength: req.ContentLength,
			ClientIP: c.RealIP(), RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
		}, &tr)
		if tr.Attempts > 0 {
			addLogAttrs(c, slog.Int("upstream_status", tr.UpstreamStatus),
				slog.Float64("upstream_ms", float64(tr.UpstreamLatency.Microseconds())/1000),
				slog.Int("upstream_attempts", tr.Attempts), slog.Bool("upstream_jwt_cached", tr.JWTCached))
		}
		if tr.Idempotency != "" {
			addLogAttrs(c, slog.String("idempotency", tr.Idempotency))
		}
		if err != nil {
			if errors.Is(err, context.Canceled) && req.Context().Err() != nil {
				status = statusClientGone // nobody to answer
				c.Response().WriteHeader(statusClientGone)
				return nil
			}
			return fail(err)
		}
		defer res.Body.Close()
		source = "upstream"
		h := c.Response().Header()
		for k, vs := range res.Header {
			h[k] = vs
		}
		if res.Replayed {
			source = "replay"
			h.Set("Idempotent-Replayed", "true")
		}
		c.Response().WriteHeader(res.Status)
		if req.Method == http.MethodHead {
			return nil
		}
		start := time.Now()
		buf := relayBuffers.Get().(*[]byte)
		defer relayBuffers.Put(buf)
		if _, err := io.CopyBuffer(c.Response(), res.Body, *buf); err != nil {
			// Too late for another status: the log line says what happened.
			addLogAttrs(c, slog.String("relay_error", err.Error()),
				slog.Float64("relay_ms", float64(time.Since(start).Microseconds())/1000))
		}
		return nil
	}
}
