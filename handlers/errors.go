package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/broker"
)

// Each HTTP surface has one error shape, written in one place below:
//
//   - OAuth endpoints (token, introspect, revoke): RFC 6749 §5.2
//     {"error","error_description"}; handlers return oauthFailure(err).
//   - the social exchange (/oauth2/exchange_access_token/{backend}/): the
//     same, with edX's two differences (SPEC §7): invalid_client is a 400,
//     and a disabled account's body adds "error_code":403; handlers return
//     socialFailure(err).
//   - the session exchange (/oauth2/login): edX's {"error_code",
//     "developer_message"}; handlers return edxFailure(err).
//   - everything else (first-party API, admin API): RFC 9457 problem+json
//     with a "code" member; handlers return plain errors.
//   - the dashboard's HTML pages: the problem's status and detail as a
//     small HTML page; handlers return pageFailure(err).
//
// Handlers return errors; errorHandler maps them.

// oauthError marks an error to be answered in the OAuth shape; social
// selects the social exchange's variant of it.
type oauthError struct {
	err    error
	social bool
}

func (e *oauthError) Error() string { return e.err.Error() }
func (e *oauthError) Unwrap() error { return e.err }

func oauthFailure(err error) error { return &oauthError{err: err} }

func socialFailure(err error) error { return &oauthError{err: err, social: true} }

// edxError marks an error to be answered in edX's shape.
type edxError struct{ err error }

func (e *edxError) Error() string { return e.err.Error() }
func (e *edxError) Unwrap() error { return e.err }

func edxFailure(err error) error { return &edxError{err: err} }

// pageError marks an error to be answered as an HTML page.
type pageError struct{ err error }

func (e *pageError) Error() string { return e.err.Error() }
func (e *pageError) Unwrap() error { return e.err }

func pageFailure(err error) error {
	var pe *pageError
	if errors.As(err, &pe) {
		return err
	}
	return &pageError{err: err}
}

// Errors of the HTTP layer itself.
var (
	errBodyTooLarge   = errors.New("request body too large")
	errDuplicateParam = errors.New("duplicate parameter")
	errNotForm        = errors.New("not a form")
	errAdminAuth      = errors.New("admin authentication required")
	errCSRF           = errors.New("missing or wrong CSRF token, or a request from another origin")
)

// errorHandler is the Echo HTTPErrorHandler of both listeners.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		if clientGone(c, err) {
			// Nobody reads the answer, and nothing failed on our side: the
			// access log and the metrics count it as nginx's 499, not as a
			// server error.
			c.Response().Status = statusClientGone
			log.DebugContext(c.Request().Context(), "client went away", "request_id",
				c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
			return
		}
		var oe *oauthError
		if errors.As(err, &oe) {
			writeOAuthError(c, oe.err, oe.social, log)
			return
		}
		var ee *edxError
		if errors.As(err, &ee) {
			writeEdxError(c, ee.err, log)
			return
		}
		var pe *pageError
		if errors.As(err, &pe) {
			writePageError(c, pe.err, log)
			return
		}
		writeProblem(c, err, log)
	}
}

// oauthErrorBody is the RFC 6749 §5.2 error shape.
type oauthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// socialDisabledBody is the social exchange's answer for a disabled
// account, as edX sends it (SPEC §7).
type socialDisabledBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Code        int    `json:"error_code"`
}

func writeOAuthError(c echo.Context, err error, social bool, log *slog.Logger) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	status, body := oauthErrorFor(err)
	var out any = body
	if social {
		switch status {
		case http.StatusUnauthorized: // only invalid_client: a public client sends no credentials to challenge
			status = http.StatusBadRequest
		case http.StatusForbidden:
			out = socialDisabledBody{body.Error, body.Description, status}
		}
	}
	switch status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Basic realm="mobile-auth-bff"`)
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		h.Set("Retry-After", "5")
	case http.StatusTooManyRequests:
		var te *bff.ThrottledError
		if errors.As(err, &te) {
			h.Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds))
		}
	}
	logFailure(c, log, status, err)
	_ = c.JSON(status, out)
}

func oauthErrorFor(err error) (int, oauthErrorBody) {
	var rfc *fosite.RFC6749Error
	switch {
	case errors.Is(err, bff.ErrAccountDisabled):
		return http.StatusForbidden, oauthErrorBody{"account_disabled", "user account is disabled"}
	case errors.Is(err, bff.ErrTokenRevoked):
		// A token write refused by the store: the grant was revoked, or the
		// password changed, while the request ran.
		return http.StatusBadRequest, oauthErrorBody{"invalid_grant", "The grant was revoked, or the password changed, while the request ran; sign in again."}
	case errors.Is(err, bff.ErrTooManyAttempts):
		return http.StatusTooManyRequests, oauthErrorBody{"too_many_attempts", "Too many failed login attempts; retry after the time in Retry-After."}
	case errors.Is(err, bff.ErrUnavailable):
		return http.StatusServiceUnavailable, oauthErrorBody{"temporarily_unavailable", "The service is temporarily unavailable; retry later."}
	case errors.Is(err, bff.ErrProviderUnavailable):
		return http.StatusBadGateway, oauthErrorBody{"provider_unavailable", "The identity provider could not be reached or did not answer in time; retry later."}
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge, oauthErrorBody{"invalid_request", "The request body is larger than 64 KiB."}
	case errors.Is(err, errDuplicateParam), errors.Is(err, errNotForm):
		return http.StatusBadRequest, oauthErrorBody{"invalid_request", err.Error()}
	case errors.As(err, &rfc) && rfc.CodeField < 500:
		e := *rfc // GetDescription writes to its receiver; fosite's errors are shared values
		return rfc.CodeField, oauthErrorBody{rfc.ErrorField, e.GetDescription()}
	}
	return http.StatusInternalServerError, oauthErrorBody{"server_error", "The server could not complete the request."}
}

// edxErrorBody is the error shape of edX's login exchange, and the two
// members every 401 of an app-facing route carries (SPEC §0, §9).
type edxErrorBody struct {
	Code    string `json:"error_code"`
	Message string `json:"developer_message"`
}

// tokenVerdict is how every surface answers one verdict on a presented
// token. code is the service's own name for it: the first-party API's
// problem "code", the metrics and the migration statistics. appCode and
// message are what the shipped apps act on (SPEC §0): Android's token
// authenticator refreshes on token_expired, retries with a newer token or
// logs out on token_nonexistent, and logs out on user_is_disabled; with a
// JWT it falls back to the message when a body has no error_code.
type tokenVerdict struct {
	err     error
	code    string
	appCode string
	message string
}

// tokenVerdicts lists the verdicts in the order they are matched (a token
// revoked by the disabling of its user is a disabled account's token).
var tokenVerdicts = []tokenVerdict{
	{bff.ErrNonAsymmetricToken, "non_asymmetric_token", "non_asymmetric_token", "Only asymmetric jwt are supported."},
	{bff.ErrNoCredential, "invalid_token", "token_nonexistent", "Authentication credentials were not provided."},
	{bff.ErrInvalidToken, "invalid_token", "token_nonexistent", "Invalid token."},
	{bff.ErrTokenExpired, "token_expired", "token_expired", "Token has expired."},
	{bff.ErrAccountDisabled, "account_disabled", "user_is_disabled", "User account is disabled."},
	{bff.ErrTokenRevoked, "token_revoked", "token_nonexistent", "Invalid token."},
	{bff.ErrNotSupportedToken, "non_supported_token", "non_supported_token",
		"Only access tokens of a user who signed in (with a password or a social provider) can be exchanged for a session."},
}

// verdictOf returns the verdict that err carries, if any.
func verdictOf(err error) (tokenVerdict, bool) {
	for _, v := range tokenVerdicts {
		if errors.Is(err, v.err) {
			return v, true
		}
	}
	return tokenVerdict{}, false
}

// tokenErrorCode is the service's code of a token verdict; "" for other
// errors.
func tokenErrorCode(err error) string {
	v, _ := verdictOf(err)
	return v.code
}

func writeEdxError(c echo.Context, err error, log *slog.Logger) {
	c.Response().Header().Set("Cache-Control", "no-store")
	status := http.StatusUnauthorized
	var body edxErrorBody
	v, ok := verdictOf(err)
	switch {
	case ok:
		body = edxErrorBody{v.appCode, v.message}
	case errors.Is(err, bff.ErrUnavailable):
		status = http.StatusServiceUnavailable
		body = edxErrorBody{"temporarily_unavailable", "The service is temporarily unavailable; retry later."}
		c.Response().Header().Set("Retry-After", "5")
	default:
		status = http.StatusInternalServerError
		body = edxErrorBody{"server_error", "The server could not complete the request."}
	}
	logFailure(c, log, status, err)
	_ = c.JSON(status, body)
}

// problem is an RFC 9457 problem detail with a machine-readable code.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
	// ErrorCode and DeveloperMessage carry a token verdict in the apps'
	// vocabulary (SPEC §0) beside code.
	ErrorCode        string `json:"error_code,omitempty"`
	DeveloperMessage string `json:"developer_message,omitempty"`
}

// problemFor maps an error onto a status, code and detail.
func problemFor(err error) (int, string, string) {
	var he *echo.HTTPError
	if status, code, detail, ok := brokerProblem(err); ok {
		return status, code, detail
	}
	switch {
	case errors.Is(err, bff.ErrNoCredential):
		return http.StatusUnauthorized, "invalid_token", "Authentication is required: send Authorization: Bearer <token> or JWT <token>, or the session cookie."
	case errors.Is(err, bff.ErrNotSupportedToken):
		return http.StatusForbidden, "non_supported_token", "This token does not act for a user."
	case tokenErrorCode(err) != "":
		// A disabled account's token too is a 401, as at edX's services:
		// the apps log out on it (ADR 0015).
		v, _ := verdictOf(err)
		return http.StatusUnauthorized, v.code, v.message
	case errors.Is(err, errAdminAuth):
		return http.StatusUnauthorized, "unauthorized", "A valid admin token is required."
	case errors.Is(err, errCSRF):
		return http.StatusForbidden, "csrf_failed", "The form is stale or comes from another site: reload the page and try again."
	case errors.Is(err, bff.ErrNotFound):
		return http.StatusNotFound, "not_found", err.Error()
	case errors.Is(err, bff.ErrConflict):
		return http.StatusConflict, "conflict", err.Error()
	case errors.Is(err, bff.ErrInvalidInput):
		return http.StatusBadRequest, "invalid_request", err.Error()
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge, "body_too_large", "The request body is too large."
	case errors.Is(err, bff.ErrUnavailable):
		return http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable; retry later."
	case errors.As(err, &he) && he.Code < 500:
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		return he.Code, codeForStatus(he.Code), msg
	}
	return http.StatusInternalServerError, "server_error", "The server could not complete the request."
}

// brokerProblem maps the errors of the payment broker (SPEC §10).
func brokerProblem(err error) (int, string, string, bool) {
	switch {
	case errors.Is(err, broker.ErrNotConfigured):
		return http.StatusServiceUnavailable, "broker_not_configured", "The payment broker is not configured on this server (BFF_ECOMMERCE_URL).", true
	case errors.Is(err, broker.ErrRouteNotAllowed):
		return http.StatusNotFound, "not_found", "This payment API route is not available through the broker.", true
	case errors.Is(err, broker.ErrInsufficientScope):
		return http.StatusForbidden, "insufficient_scope", "The token lacks the payments scope.", true
	case errors.Is(err, broker.ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, "body_too_large", "The request body is larger than 1 MiB.", true
	case errors.Is(err, broker.ErrIdempotencyKeyMissing):
		return http.StatusBadRequest, "idempotency_key_missing", "POST and PATCH need an Idempotency-Key header (a UUID, say).", true
	case errors.Is(err, broker.ErrIdempotencyKeyInvalid):
		return http.StatusBadRequest, "invalid_idempotency_key", err.Error(), true
	case errors.Is(err, broker.ErrIdempotencyKeyReused):
		return http.StatusUnprocessableEntity, "idempotency_key_reused", "This Idempotency-Key was used with another request (method, path or body); use a new key.", true
	case errors.Is(err, broker.ErrIdempotencyInFlight):
		return http.StatusConflict, "idempotency_key_in_use", "A request with this Idempotency-Key is still in progress; retry after Retry-After to get its response.", true
	case errors.Is(err, broker.ErrIdempotencyUnavailable):
		return http.StatusConflict, "idempotency_response_unavailable", "A request with this Idempotency-Key reached the payment service, but its response is not available (it timed out, failed or was too large). It may have taken effect: check the order state, and use a new key to try again.", true
	case errors.Is(err, broker.ErrUpstreamUnavailable):
		return http.StatusServiceUnavailable, "upstream_unavailable", "The payment service is unavailable; retry after Retry-After.", true
	case errors.Is(err, broker.ErrUpstreamTimeout):
		return http.StatusGatewayTimeout, "upstream_timeout", "The payment service did not answer in time. A POST may have taken effect: retry it with the same Idempotency-Key.", true
	case errors.Is(err, broker.ErrUpstreamError):
		return http.StatusBadGateway, "upstream_error", "The payment service failed. A POST may have taken effect: retry it with the same Idempotency-Key.", true
	}
	return 0, "", "", false
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	}
	return "invalid_request"
}

func writeProblem(c echo.Context, err error, log *slog.Logger) {
	status, code, detail := problemFor(err)
	h := c.Response().Header()
	switch {
	case status != http.StatusUnauthorized:
	case errors.Is(err, errAdminAuth):
		h.Set("WWW-Authenticate", `Bearer realm="mobile-auth-bff-admin"`)
	case errors.Is(err, bff.ErrNoCredential):
		// RFC 6750 §3.1: no error code when the request had no credential.
		h.Set("WWW-Authenticate", `Bearer realm="mobile-auth-bff"`)
	default:
		h.Set("WWW-Authenticate", `Bearer realm="mobile-auth-bff", error="invalid_token"`)
	}
	var retry interface{ RetryAfterSeconds() int }
	switch {
	case errors.As(err, &retry):
		h.Set("Retry-After", strconv.Itoa(retry.RetryAfterSeconds()))
	case status == http.StatusServiceUnavailable:
		h.Set("Retry-After", "5")
	}
	if code == "insufficient_scope" {
		h.Set("WWW-Authenticate", `Bearer realm="mobile-auth-bff", error="insufficient_scope", scope="`+broker.RequiredScope+`"`)
	}
	logFailure(c, log, status, err)
	h.Set(echo.HeaderContentType, "application/problem+json")
	p := problem{
		Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Code: code,
		RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
	}
	if v, ok := verdictOf(err); ok {
		p.ErrorCode, p.DeveloperMessage = v.appCode, detail
	}
	body, _ := json.Marshal(p)
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.Blob(status, "application/problem+json", body)
}

func writePageError(c echo.Context, err error, log *slog.Logger) {
	status, code, detail := problemFor(err)
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "5")
	}
	logFailure(c, log, status, err)
	renderPage(c, status, "error.html", errorPage{Status: status, Title: http.StatusText(status), Code: code,
		Detail: detail, RequestID: c.Response().Header().Get(echo.HeaderXRequestID)})
}

// logFailure records why a request failed: server-side failures loudly,
// client mistakes as debug. Errors never contain tokens or passwords.
func logFailure(c echo.Context, log *slog.Logger, status int, err error) {
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	switch {
	case status == http.StatusServiceUnavailable || status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
		// Something this service depends on is down or slow (the store, a
		// provider, the payment service), or not configured: not a bug.
		log.WarnContext(c.Request().Context(), "request failed", "request_id", rid, "status", status, "err", err)
	case status >= 500:
		log.ErrorContext(c.Request().Context(), "request failed", "request_id", rid, "status", status, "err", err)
	default:
		log.DebugContext(c.Request().Context(), "request rejected", "request_id", rid, "status", status, "err", err)
	}
}

// clientGone reports whether a request failed because its client hung up
// (the request's context was canceled) rather than because of the service.
func clientGone(c echo.Context, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(c.Request().Context().Err(), context.Canceled)
}
