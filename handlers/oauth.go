package handlers

import (
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/metrics"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// MaxOAuthBody is the largest body an OAuth endpoint reads (SPEC §13).
const MaxOAuthBody = 64 << 10

// oauthParams are the parameters that must not repeat (RFC 6749 §3.1).
var oauthParams = []string{
	"grant_type", "username", "password", "scope", "refresh_token", "client_id", "client_secret",
	"token_type", "asymmetric_jwt", "token", "token_type_hint", "subject_token", "subject_token_type",
	"requested_token_type", "access_token", "audience", "resource", "revoke_subject_token", "nonce",
}

// parseOAuthForm reads a form-encoded body of at most MaxOAuthBody bytes and
// rejects repeated OAuth parameters. The form is then in r.PostForm.
func parseOAuthForm(c echo.Context) error {
	r := c.Request()
	mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationForm {
		return fmt.Errorf("%w: the body must be application/x-www-form-urlencoded", errNotForm)
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, MaxOAuthBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errBodyTooLarge
		}
		return fmt.Errorf("%w: the body is not a valid form", errNotForm)
	}
	for _, p := range oauthParams {
		if len(r.PostForm[p]) > 1 {
			return fmt.Errorf("%w: %s is repeated", errDuplicateParam, p)
		}
	}
	return nil
}

// handleToken is the token endpoint (SPEC §5).
func handleToken(svc *oauth.Service, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := parseOAuthForm(c); err != nil {
			return oauthFailure(err)
		}
		res, err := svc.Token(c.Request().Context(), c.Request(), c.RealIP())
		if err != nil {
			return oauthFailure(err)
		}
		return writeTokenResponse(c, m, res)
	}
}

// handleSocialExchange exchanges a Google, Facebook or Apple token for
// this service's tokens (SPEC §7).
func handleSocialExchange(svc *oauth.Service, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := parseOAuthForm(c); err != nil {
			return socialFailure(err)
		}
		res, err := svc.ExchangeSocial(c.Request().Context(), c.Request(), c.Param("backend"))
		if err != nil {
			return socialFailure(err)
		}
		return writeTokenResponse(c, m, res)
	}
}

// writeTokenResponse answers a successful token request (SPEC §5).
func writeTokenResponse(c echo.Context, m *metrics.Metrics, res oauth.TokenResult) error {
	recordIssued(m, res)
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, res.Body)
}

// recordIssued counts an issued access token — in the Prometheus counter
// and the per-client usage statistics of the migration views — by client,
// format, how it was obtained and whether it is DPoP-bound. Every endpoint that issues access tokens
// calls it on success, and nothing else counts issued tokens.
func recordIssued(m *metrics.Metrics, res oauth.TokenResult) {
	grant := res.Grant
	if grant == "" {
		grant = res.GrantType
	}
	m.RecordIssued(res.ClientID, res.Format, grant, bff.BindingOf(res.Bound))
}

// handleIntrospect is RFC 7662 introspection, for confidential clients.
func handleIntrospect(svc *oauth.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := parseOAuthForm(c); err != nil {
			return oauthFailure(err)
		}
		in, err := svc.Introspect(c.Request().Context(), c.Request())
		if err != nil {
			return oauthFailure(err)
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, in)
	}
}

// handleRevoke is RFC 7009 revocation.
func handleRevoke(svc *oauth.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := parseOAuthForm(c); err != nil {
			return oauthFailure(err)
		}
		if err := svc.Revoke(c.Request().Context(), c.Request()); err != nil {
			return oauthFailure(err)
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.NoContent(http.StatusOK)
	}
}
