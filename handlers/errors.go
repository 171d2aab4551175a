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
// Handlers return errors; errorHandler maps them. What each sentinel error
// is on every surface (status, problem code, edX error_code, OAuth error)
// is one row of the verdicts table below.

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
	if v, ok := lookup(err, func(v verdict) bool { return v.oauth != 0 }); ok {
		return v.oauth, oauthErrorBody{v.oauthError, orErr(v.oauthDesc, err)}
	}
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) && rfc.CodeField < 500 {
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

// verdict is one row of the table below: how every surface answers one
// sentinel error. A zero status leaves the error unanswered on that
// surface (it is then matched by the rows after it, or is a 500); an empty
// detail or description is the error's own text.
type verdict struct {
	err error

	// The first-party API, the admin API and the broker (RFC 9457
	// problem+json with the service's own code), and the dashboard's HTML
	// pages.
	status int
	code   string
	detail string

	// token marks a verdict on a presented token: problem+json bodies add
	// appCode and the detail as edX's error_code and developer_message,
	// and the metrics and migration statistics count it under code.
	token bool
	// appCode and message are edX's error_code and developer_message, what
	// the shipped apps act on (SPEC §0): Android's token authenticator
	// refreshes on token_expired, retries with a newer token or logs out on
	// token_nonexistent, and logs out on user_is_disabled; with a JWT it
	// falls back to the message when a body has no error_code. edx is the
	// status of the session exchange's (/oauth2/login) answer.
	edx     int
	appCode string
	message string

	// The OAuth endpoints (RFC 6749 §5.2 error, error_description); the
	// social exchange adjusts them (writeOAuthError).
	oauth      int
	oauthError string
	oauthDesc  string
}

// verdicts is the one table of the errors every surface answers, in the
// order they are matched: the first row that matches the error and answers
// on the surface wins (a token revoked by the disabling of its user is a
// disabled account's token). Adding an error is adding a row. What no row
// answers is an echo.HTTPError or a fosite error below 500, or a 500.
var verdicts = []verdict{
	// The payment broker (SPEC §10).
	{err: broker.ErrNotConfigured, status: http.StatusServiceUnavailable, code: "broker_not_configured",
		detail: "The payment broker is not configured on this server (BFF_ECOMMERCE_URL)."},
	{err: broker.ErrRouteNotAllowed, status: http.StatusNotFound, code: "not_found",
		detail: "This payment API route is not available through the broker."},
	{err: broker.ErrInsufficientScope, status: http.StatusForbidden, code: "insufficient_scope",
		detail: "The token lacks the payments scope."},
	{err: broker.ErrBodyTooLarge, status: http.StatusRequestEntityTooLarge, code: "body_too_large",
		detail: "The request body is larger than 1 MiB."},
	{err: broker.ErrIdempotencyKeyMissing, status: http.StatusBadRequest, code: "idempotency_key_missing",
		detail: "POST and PATCH need an Idempotency-Key header (a UUID, say)."},
	{err: broker.ErrIdempotencyKeyInvalid, status: http.StatusBadRequest, code: "invalid_idempotency_key"},
	{err: broker.ErrIdempotencyKeyReused, status: http.StatusUnprocessableEntity, code: "idempotency_key_reused",
		detail: "This Idempotency-Key was used with another request (method, path or body); use a new key."},
	{err: broker.ErrIdempotencyInFlight, status: http.StatusConflict, code: "idempotency_key_in_use",
		detail: "A request with this Idempotency-Key is still in progress; retry after Retry-After to get its response."},
	{err: broker.ErrIdempotencyUnavailable, status: http.StatusConflict, code: "idempotency_response_unavailable",
		detail: "A request with this Idempotency-Key reached the payment service, but its response is not available (it timed out, failed or was too large). It may have taken effect: check the order state, and use a new key to try again."},
	{err: broker.ErrUpstreamUnavailable, status: http.StatusServiceUnavailable, code: "upstream_unavailable",
		detail: "The payment service is unavailable; retry after Retry-After."},
	{err: broker.ErrUpstreamTimeout, status: http.StatusGatewayTimeout, code: "upstream_timeout",
		detail: "The payment service did not answer in time. A POST may have taken effect: retry it with the same Idempotency-Key."},
	{err: broker.ErrUpstreamError, status: http.StatusBadGateway, code: "upstream_error",
		detail: "The payment service failed. A POST may have taken effect: retry it with the same Idempotency-Key."},

	// Verdicts on a presented token. A disabled account's token too is a
	// 401, as at edX's services: the apps log out on it (ADR 0015).
	{err: bff.ErrNoCredential, status: http.StatusUnauthorized, code: "invalid_token",
		detail: "Authentication is required: send Authorization: Bearer <token> or JWT <token>, or the session cookie.",
		token:  true, edx: http.StatusUnauthorized, appCode: "token_nonexistent", message: "Authentication credentials were not provided."},
	{err: bff.ErrNonAsymmetricToken, status: http.StatusUnauthorized, code: "non_asymmetric_token", detail: "Only asymmetric jwt are supported.",
		token: true, edx: http.StatusUnauthorized, appCode: "non_asymmetric_token", message: "Only asymmetric jwt are supported."},
	// DPoP (RFC 9449 §7.1; at the token endpoint §5 and §8).
	{err: bff.ErrUseDPoPNonce, status: http.StatusUnauthorized, code: "use_dpop_nonce", detail: useDPoPNonce,
		token: true, edx: http.StatusUnauthorized, appCode: "use_dpop_nonce",
		message: "The DPoP proof must carry the server's nonce: retry with the nonce of the DPoP-Nonce header.",
		oauth:   http.StatusBadRequest, oauthError: "use_dpop_nonce", oauthDesc: useDPoPNonce},
	{err: bff.ErrInvalidDPoPProof, status: http.StatusUnauthorized, code: "invalid_dpop_proof",
		token: true, edx: http.StatusUnauthorized, appCode: "invalid_dpop_proof", message: "Invalid DPoP proof.",
		oauth: http.StatusBadRequest, oauthError: "invalid_dpop_proof"},
	{err: bff.ErrInvalidToken, status: http.StatusUnauthorized, code: "invalid_token", detail: "Invalid token.",
		token: true, edx: http.StatusUnauthorized, appCode: "token_nonexistent", message: "Invalid token."},
	{err: bff.ErrTokenExpired, status: http.StatusUnauthorized, code: "token_expired", detail: "Token has expired.",
		token: true, edx: http.StatusUnauthorized, appCode: "token_expired", message: "Token has expired."},
	{err: bff.ErrAccountDisabled, status: http.StatusUnauthorized, code: "account_disabled", detail: "User account is disabled.",
		token: true, edx: http.StatusUnauthorized, appCode: "user_is_disabled", message: "User account is disabled.",
		oauth: http.StatusForbidden, oauthError: "account_disabled", oauthDesc: "user account is disabled"},
	{err: bff.ErrTokenRevoked, status: http.StatusUnauthorized, code: "token_revoked", detail: "Invalid token.",
		token: true, edx: http.StatusUnauthorized, appCode: "token_nonexistent", message: "Invalid token.",
		// At a grant: a token write refused by the store, the grant was
		// revoked, or the password changed, while the request ran.
		oauth: http.StatusBadRequest, oauthError: "invalid_grant",
		oauthDesc: "The grant was revoked, or the password changed, while the request ran; sign in again."},
	{err: bff.ErrNotSupportedToken, status: http.StatusForbidden, code: "non_supported_token", detail: "This token does not act for a user.",
		token: true, edx: http.StatusUnauthorized, appCode: "non_supported_token",
		message: "Only access tokens of a user who signed in (with a password or a social provider) can be exchanged for a session."},

	{err: bff.ErrTooManyAttempts,
		oauth: http.StatusTooManyRequests, oauthError: "too_many_attempts", oauthDesc: "Too many failed login attempts; retry after the time in Retry-After."},
	{err: errAdminAuth, status: http.StatusUnauthorized, code: "unauthorized", detail: "A valid admin token is required."},
	{err: errCSRF, status: http.StatusForbidden, code: "csrf_failed",
		detail: "The form is stale or comes from another site: reload the page and try again."},
	{err: bff.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{err: bff.ErrConflict, status: http.StatusConflict, code: "conflict"},
	{err: bff.ErrInvalidInput, status: http.StatusBadRequest, code: "invalid_request"},
	{err: bff.ErrUnavailable, status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
		detail: "The service is temporarily unavailable; retry later.",
		edx:    http.StatusServiceUnavailable, appCode: "temporarily_unavailable", message: "The service is temporarily unavailable; retry later.",
		oauth: http.StatusServiceUnavailable, oauthError: "temporarily_unavailable", oauthDesc: "The service is temporarily unavailable; retry later."},
	{err: bff.ErrProviderUnavailable,
		oauth: http.StatusBadGateway, oauthError: "provider_unavailable",
		oauthDesc: "The identity provider could not be reached or did not answer in time; retry later."},
	{err: errBodyTooLarge, status: http.StatusRequestEntityTooLarge, code: "body_too_large", detail: "The request body is too large.",
		oauth: http.StatusRequestEntityTooLarge, oauthError: "invalid_request", oauthDesc: "The request body is larger than 64 KiB."},
	{err: errDuplicateParam, oauth: http.StatusBadRequest, oauthError: "invalid_request"},
	{err: errNotForm, oauth: http.StatusBadRequest, oauthError: "invalid_request"},
}

// useDPoPNonce is what a client without the server's DPoP nonce is told,
// at the OAuth endpoints and on the API alike.
const useDPoPNonce = "The DPoP proof must carry the server's nonce: retry with a new proof whose nonce is the DPoP-Nonce header of this answer."

// lookup returns the first row of verdicts that matches err and answers
// where answers says.
func lookup(err error, answers func(verdict) bool) (verdict, bool) {
	for _, v := range verdicts {
		if answers(v) && errors.Is(err, v.err) {
			return v, true
		}
	}
	return verdict{}, false
}

// orErr is text, or the error's own text when text is empty.
func orErr(text string, err error) string {
	if text == "" {
		return err.Error()
	}
	return text
}

// verdictOf returns the verdict on a presented token that err carries, if
// any.
func verdictOf(err error) (verdict, bool) {
	return lookup(err, func(v verdict) bool { return v.token })
}

// tokenErrorCode is the service's code of a token verdict; "" for other
// errors.
func tokenErrorCode(err error) string {
	v, _ := verdictOf(err)
	return v.code
}

func writeEdxError(c echo.Context, err error, log *slog.Logger) {
	c.Response().Header().Set("Cache-Control", "no-store")
	status := http.StatusInternalServerError
	body := edxErrorBody{"server_error", "The server could not complete the request."}
	if v, ok := lookup(err, func(v verdict) bool { return v.edx != 0 }); ok {
		status, body = v.edx, edxErrorBody{v.appCode, v.message}
	}
	if status == http.StatusUnauthorized && usesDPoP(c.Request(), err) {
		c.Response().Header().Set("WWW-Authenticate", dpopChallenge(dpopErrorCode(err)))
	}
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "5")
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
	if v, ok := lookup(err, func(v verdict) bool { return v.status != 0 }); ok {
		return v.status, v.code, orErr(v.detail, err)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code < 500 {
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		return he.Code, codeForStatus(he.Code), msg
	}
	return http.StatusInternalServerError, "server_error", "The server could not complete the request."
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
	case usesDPoP(c.Request(), err):
		h.Set("WWW-Authenticate", dpopChallenge(dpopErrorCode(err)))
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
