package handlers

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/metrics"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// Browser sign-in (SPEC §14): GET /oauth2/authorize shows the sign-in page
// (or, with a sign-in session, redirects at once); POST of the page checks
// the password and redirects to the app with the code. The page is
// server-rendered, needs no script and loads nothing: its stylesheet is
// inlined and allowed by hash.

var authorizeCSS = mustRead("templates/authorize.css")

// csrfCookieName holds the random value the sign-in form's CSRF token is
// a MAC of (a double-submit token that no other site can compute).
const csrfCookieName = "bff_signin_csrf"

// signInPath is where the browser sign-in cookies are sent.
const signInPath = "/oauth2/"

// authorizeCSP allows the inlined stylesheet, and form posts to this
// service and to the redirect target: browsers apply form-action to the
// redirect that answers the post.
func authorizeCSP(redirectURI string) string {
	action := "'self'"
	if u, err := url.Parse(redirectURI); err == nil && redirectURI != "" {
		switch u.Scheme {
		case "http", "https":
			action += " " + u.Scheme + "://" + u.Host
		default:
			action += " " + u.Scheme + ":"
		}
	}
	return "default-src 'none'; style-src 'sha256-" + cssHash(authorizeCSS) + "'; form-action " + action +
		"; frame-ancestors 'none'; base-uri 'none'"
}

type authorizePage struct {
	ClientName, Action, CSRF, Login, Error string
}

type authorizeErrorPage struct {
	Code, Detail, RequestID string
}

func renderAuthorize(c echo.Context, status int, name, redirectURI string, data any) error {
	return renderHTML(c, status, name, data, authorizeCSP(redirectURI), "no-referrer")
}

// authorizeFlow holds what the two authorize handlers share.
type authorizeFlow struct {
	svc    *oauth.Service
	secure bool
	m      *metrics.Metrics
	log    *slog.Logger
}

func (f *authorizeFlow) cookie(name, value string, expires time.Time) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: signInPath, HttpOnly: true, Secure: f.secure,
		SameSite: http.SameSiteLaxMode}
	if value == "" {
		ck.MaxAge, ck.Expires = -1, time.Unix(0, 0)
	} else if !expires.IsZero() {
		ck.Expires, ck.MaxAge = expires, int(time.Until(expires).Seconds())
	}
	return ck
}

// errorPage answers an error that may not go back to the client.
func (f *authorizeFlow) errorPage(c echo.Context, status int, code, detail string) error {
	return renderAuthorize(c, status, "authorize_error", "", authorizeErrorPage{
		Code: code, Detail: detail, RequestID: c.Response().Header().Get(echo.HeaderXRequestID)})
}

// fail answers err: by redirect when it may go back to the client, else
// by an error page (503 when the store failed).
func (f *authorizeFlow) fail(c echo.Context, err error) error {
	var ae *oauth.AuthorizeError
	switch {
	case errors.As(err, &ae) && ae.RedirectURI != "":
		f.m.RecordAuthorize(ae.Code)
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, f.svc.ErrorRedirect(ae))
	case errors.As(err, &ae):
		f.m.RecordAuthorize(ae.Code)
		return f.errorPage(c, http.StatusBadRequest, ae.Code, ae.Description)
	case errors.Is(err, bff.ErrUnavailable):
		f.m.RecordAuthorize("temporarily_unavailable")
		c.Response().Header().Set("Retry-After", "1")
		return f.errorPage(c, http.StatusServiceUnavailable, "temporarily_unavailable",
			"The sign-in service is temporarily unavailable. Try again in a moment.")
	}
	f.log.ErrorContext(c.Request().Context(), "authorize", "err", err)
	f.m.RecordAuthorize("server_error")
	return f.errorPage(c, http.StatusServiceUnavailable, "temporarily_unavailable",
		"The sign-in service is temporarily unavailable. Try again in a moment.")
}

// showForm renders the sign-in page with a fresh CSRF cookie.
func (f *authorizeFlow) showForm(c echo.Context, req *oauth.AuthorizeRequest, status int, login, msg string) error {
	seed := bff.RandomID(32)
	c.SetCookie(f.cookie(csrfCookieName, seed, time.Time{}))
	name := req.Client.Name
	if name == "" {
		name = req.Client.ID
	}
	if login == "" {
		login = req.LoginHint
	}
	if len(login) > 254 {
		login = ""
	}
	return renderAuthorize(c, status, "authorize_signin", req.RedirectURI, authorizePage{
		ClientName: name, Action: c.Request().URL.Path + "?" + c.Request().URL.RawQuery,
		CSRF: f.svc.SignInCSRF(seed), Login: login, Error: msg,
	})
}

// finish issues the code and redirects to the app.
func (f *authorizeFlow) finish(c echo.Context, req *oauth.AuthorizeRequest, u bff.User, authTime time.Time) error {
	to, err := f.svc.Issue(c.Request().Context(), req, u, authTime)
	if err != nil {
		return f.fail(c, err)
	}
	f.m.RecordAuthorize("")
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, to)
}

// handleAuthorize is GET /oauth2/authorize: a sign-in session skips the
// form (unless prompt=login), otherwise the form is shown.
func handleAuthorize(f *authorizeFlow) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		req, err := f.svc.ParseAuthorize(ctx, c.Request().URL.Query())
		if err != nil {
			return f.fail(c, err)
		}
		if req.Prompt != "login" {
			if ck, err := c.Cookie(oauth.SignInCookieName); err == nil {
				u, authTime, err := f.svc.SignedIn(ctx, ck.Value)
				switch {
				case err == nil:
					return f.finish(c, req, u, authTime)
				case errors.Is(err, bff.ErrUnavailable):
					return f.fail(c, err)
				}
				c.SetCookie(f.cookie(oauth.SignInCookieName, "", time.Time{})) // ended or unknown
			}
		}
		if req.Prompt == "none" {
			return f.fail(c, &oauth.AuthorizeError{RedirectURI: req.RedirectURI, State: req.State,
				Code: "login_required", Description: "The user is not signed in."})
		}
		return f.showForm(c, req, http.StatusOK, "", "")
	}
}

// Messages of the sign-in page: they never say whether an account exists.
const (
	msgBadCredentials = "The username or password is not right."
	msgDisabled       = "This account cannot sign in. Contact support if you think this is a mistake."
	msgExpired        = "The sign-in form expired. Please try again."
)

// handleAuthorizeSubmit is POST /oauth2/authorize: the sign-in form.
func handleAuthorizeSubmit(f *authorizeFlow) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		req, err := f.svc.ParseAuthorize(ctx, c.Request().URL.Query())
		if err != nil {
			return f.fail(c, err)
		}
		if err := parseAdminForm(c); err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, errBodyTooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			return f.showForm(c, req, status, "", msgExpired)
		}
		form := c.Request().PostForm
		for _, k := range []string{"username", "password", "csrf_token"} {
			if len(form[k]) > 1 {
				return f.showForm(c, req, http.StatusBadRequest, "", msgExpired)
			}
		}
		seed, err := c.Cookie(csrfCookieName)
		if err != nil || !hmac.Equal([]byte(form.Get("csrf_token")), []byte(f.svc.SignInCSRF(seed.Value))) {
			f.m.RecordAuthorize("csrf")
			return f.showForm(c, req, http.StatusForbidden, "", msgExpired)
		}
		login := strings.TrimSpace(form.Get("username"))
		password := form.Get("password")
		if login == "" || password == "" || len(login) > 254 || len(password) > 1024 {
			return f.showForm(c, req, http.StatusBadRequest, login, msgBadCredentials)
		}
		u, authTime, err := f.svc.SignIn(ctx, login, password, c.RealIP())
		var throttled *bff.ThrottledError
		switch {
		case err == nil:
		case errors.As(err, &throttled):
			f.m.RecordAuthorize("too_many_attempts")
			c.Response().Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds))
			mins := (throttled.RetryAfterSeconds + 59) / 60
			return f.showForm(c, req, http.StatusTooManyRequests, login,
				fmt.Sprintf("Too many sign-in attempts. Please wait %d minute%s and try again.", mins, plural(mins)))
		case errors.Is(err, bff.ErrAccountDisabled):
			f.m.RecordAuthorize("account_disabled")
			return f.showForm(c, req, http.StatusForbidden, login, msgDisabled)
		case errors.Is(err, fosite.ErrNotFound):
			f.m.RecordAuthorize("invalid_credentials")
			return f.showForm(c, req, http.StatusUnauthorized, login, msgBadCredentials)
		default:
			return f.fail(c, err)
		}
		cookie, exp, err := f.svc.StartSignIn(ctx, u, req.Client.ID, authTime)
		if err != nil {
			return f.fail(c, err)
		}
		c.SetCookie(f.cookie(oauth.SignInCookieName, cookie, exp))
		c.SetCookie(f.cookie(csrfCookieName, "", time.Time{}))
		return f.finish(c, req, u, authTime)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
