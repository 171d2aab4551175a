package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openedx/mobile-auth-bff/metrics"
)

// requestID propagates a sane incoming X-Request-ID or makes one.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
			c.Request().Header.Set(echo.HeaderXRequestID, id)
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}

// accessLog writes one line per request and feeds the HTTP metrics. It logs
// the route pattern, never the raw URL, whose query could hold a token.
func accessLog(listener string, log *slog.Logger, m *metrics.Metrics) echo.MiddlewareFunc {
	series := &httpSeries{listener: listener, m: m}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // write the response now, so the status is known
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			status := c.Response().Status
			latency := time.Since(start)
			method := methodLabel(c.Request().Method)
			requests, duration := series.of(route, method, status)
			requests.Inc()
			duration.Observe(latency.Seconds())
			attrs := []slog.Attr{
				slog.String("listener", listener),
				slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				slog.String("method", method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Float64("latency_ms", float64(latency.Microseconds())/1000),
				slog.String("remote_ip", c.RealIP()),
				slog.Int64("bytes_out", c.Response().Size),
			}
			if extra, ok := c.Get(logAttrsKey).([]slog.Attr); ok {
				attrs = append(attrs, extra...)
			}
			log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request", attrs...)
			return nil
		}
	}
}

// httpSeries keeps the HTTP metrics' series of one listener by route,
// method and status, so that a request finds its two with one map lookup
// instead of hashing its labels into each vector (and formatting the
// status). Routes are the patterns of the router, methods the few of
// methodLabel, statuses the few a handler answers: the map stays small.
type httpSeries struct {
	listener string
	m        *metrics.Metrics
	byKey    sync.Map // httpSeriesKey → httpSeriesOf
}

type httpSeriesKey struct {
	route, method string
	status        int
}

type httpSeriesOf struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func (s *httpSeries) of(route, method string, status int) (prometheus.Counter, prometheus.Observer) {
	k := httpSeriesKey{route, method, status}
	if v, ok := s.byKey.Load(k); ok {
		of := v.(httpSeriesOf)
		return of.requests, of.duration
	}
	of := httpSeriesOf{
		requests: s.m.HTTPRequests.WithLabelValues(s.listener, route, method, strconv.Itoa(status)),
		duration: s.m.HTTPDuration.WithLabelValues(s.listener, route),
	}
	s.byKey.Store(k, of)
	return of.requests, of.duration
}

// logAttrsKey holds the attributes a handler adds to its request's log
// line (see addLogAttrs), so that a request still logs one line.
const logAttrsKey = "bff.log_attrs"

// addLogAttrs adds attributes to the request's log line.
func addLogAttrs(c echo.Context, attrs ...slog.Attr) {
	prev, _ := c.Get(logAttrsKey).([]slog.Attr)
	c.Set(logAttrsKey, append(prev, attrs...))
}

// recoverPanic turns a panic into a logged 500 instead of a dropped connection.
func recoverPanic(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					log.ErrorContext(c.Request().Context(), "panic", "panic", r, "route", c.Path())
					err = echo.NewHTTPError(http.StatusInternalServerError)
				}
			}()
			return next(c)
		}
	}
}

// adminAuth lets a request of the admin listener through with the admin
// token (Authorization: Bearer) or a dashboard session (the sign-in
// cookie). A state-changing request authenticated by the cookie must also
// carry the session's CSRF token and come from this origin. A present but
// wrong Authorization header is not retried with the cookie. Without a
// configured token every request is refused.
func adminAuth(s *adminSessions) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if s.token == "" {
				return errAdminAuth
			}
			if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
				scheme, got, ok := strings.Cut(h, " ")
				if !ok || !strings.EqualFold(scheme, "Bearer") || !s.checkToken(strings.TrimSpace(got)) {
					return errAdminAuth
				}
				return next(c)
			}
			id, ok, err := s.session(c)
			if err != nil {
				return err // the store could not answer: 503
			}
			if !ok {
				return errAdminAuth
			}
			if !safeMethod(c.Request().Method) {
				token, err := csrfFrom(c)
				if err != nil {
					return err
				}
				if !sameOrigin(c.Request()) || !s.checkCSRF(id, token) {
					return errCSRF
				}
			}
			c.Set(adminSessionKey, id)
			return next(c)
		}
	}
}

// adminPage is adminAuth for the dashboard's pages: a browser that is not
// signed in is sent to the sign-in page instead of getting a 401, and
// failures are answered as HTML.
func adminPage(s *adminSessions) echo.MiddlewareFunc {
	auth := adminAuth(s)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		guarded := auth(next)
		return func(c echo.Context) error {
			err := guarded(c)
			if errors.Is(err, errAdminAuth) && c.Request().Header.Get(echo.HeaderAuthorization) == "" &&
				safeMethod(c.Request().Method) {
				return c.Redirect(http.StatusSeeOther, "/admin/signin")
			}
			if err != nil {
				return pageFailure(err)
			}
			return nil
		}
	}
}

// methodLabel maps a request method onto a fixed set: the method is
// attacker-chosen (any token up to the header limit), and every distinct
// label value would be a metric series kept for the life of the process.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
