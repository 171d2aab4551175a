package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/metrics"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// presentedFormat labels a presented credential for the metrics.
func presentedFormat(c oauth.Credential) string {
	switch {
	case c.Token == "":
		return "none"
	case c.Scheme == oauth.SchemeCookie:
		return "session"
	case oauth.IsJWT(c.Token):
		return string(bff.FormatJWT)
	}
	return string(bff.FormatBearer)
}

// countPresented records one presented token and its verdict — in the
// Prometheus counter and the per-client usage statistics — by endpoint,
// format, binding (dpop for the DPoP scheme, whatever the verdict on its
// proof; none for Bearer, JWT, the cookie and no credential), result and
// error code. clientID is the client of an accepted
// token; a rejected one is counted under its client when the validator had
// established it, under "" otherwise. Every endpoint that accepts a
// presented token counts it here (through authenticate, or directly).
func countPresented(m *metrics.Metrics, endpoint string, c oauth.Credential, clientID string, err error) {
	code := ""
	if err != nil {
		clientID = oauth.VerdictClient(err)
		if code = tokenErrorCode(err); code == "" {
			code = "unavailable"
		}
	}
	m.RecordPresented(clientID, endpoint, presentedFormat(c), bff.BindingOf(c.Scheme == oauth.SchemeDPoP), code)
}

// handleLogin exchanges an access token for a web session (SPEC §6). A
// DPoP-bound token needs its proof; the session made from it is a plain
// cookie, bound to nothing (ADR 0028).
func handleLogin(svc *oauth.Service, cookieSecure bool, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		cred, err := oauth.ParseAuthorization(c.Request().Header.Get(echo.HeaderAuthorization))
		if err != nil {
			countPresented(m, "login", cred, "", err)
			return edxFailure(err)
		}
		cred.Proof = proofOf(c)
		cookie, sess, err := svc.Login(c.Request().Context(), cred)
		countPresented(m, "login", cred, sess.ClientID, err)
		if err != nil {
			return edxFailure(err)
		}
		c.SetCookie(&http.Cookie{
			Name: oauth.SessionCookieName, Value: cookie, Path: "/",
			Expires: sess.ExpiresAt, MaxAge: int(time.Until(sess.ExpiresAt).Seconds()),
			HttpOnly: true, Secure: cookieSecure, SameSite: http.SameSiteLaxMode,
		})
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.NoContent(http.StatusNoContent)
	}
}

// handleLogout ends the session of the cookie, if any, and clears it.
func handleLogout(svc *oauth.Service, cookieSecure bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ck, err := c.Cookie(oauth.SessionCookieName); err == nil {
			if err := svc.Logout(c.Request().Context(), ck.Value); err != nil {
				return edxFailure(err)
			}
		}
		// The browser sign-in session ends too (SPEC §14).
		if ck, err := c.Cookie(oauth.SignInCookieName); err == nil {
			if err := svc.EndSignIn(c.Request().Context(), ck.Value); err != nil {
				return edxFailure(err)
			}
			c.SetCookie(&http.Cookie{
				Name: oauth.SignInCookieName, Value: "", Path: signInPath, MaxAge: -1, Expires: time.Unix(0, 0),
				HttpOnly: true, Secure: cookieSecure, SameSite: http.SameSiteLaxMode,
			})
		}
		c.SetCookie(&http.Cookie{
			Name: oauth.SessionCookieName, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
			HttpOnly: true, Secure: cookieSecure, SameSite: http.SameSiteLaxMode,
		})
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.NoContent(http.StatusNoContent)
	}
}

// credential reads the presented credential of a first-party API call: the
// Authorization header, or else the session cookie. A present but bad
// header is not retried with the cookie.
func credential(c echo.Context) (oauth.Credential, error) {
	if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
		cred, err := oauth.ParseAuthorization(h)
		cred.Proof = proofOf(c)
		return cred, err
	}
	if ck, err := c.Cookie(oauth.SessionCookieName); err == nil && ck.Value != "" {
		return oauth.Credential{Scheme: oauth.SchemeCookie, Token: ck.Value}, nil
	}
	return oauth.Credential{}, bff.ErrNoCredential
}

// proofOf is the request's DPoP proof for the validator: its DPoP headers,
// method and path.
func proofOf(c echo.Context) *oauth.ProofRequest {
	r := c.Request()
	return &oauth.ProofRequest{Headers: r.Header.Values(dpopHeader), Method: r.Method, Path: r.URL.Path}
}

// authenticate validates the caller of a first-party API and counts it.
func authenticate(c echo.Context, v *oauth.Validator, m *metrics.Metrics, endpoint string) (bff.Principal, error) {
	cred, err := credential(c)
	if err != nil {
		countPresented(m, endpoint, cred, "", err)
		return bff.Principal{}, err
	}
	p, err := v.Validate(c.Request().Context(), cred)
	countPresented(m, endpoint, cred, p.Client.ID, err)
	return p, err
}

// meJSON is the answer of /api/me.
type meJSON struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	IsStaff  bool   `json:"is_staff"`
}

// handleMe returns the user behind the presented credential (SPEC §9).
func handleMe(v *oauth.Validator, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, err := presentedUser(c, v, m, "me")
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, meJSON{ID: u.ID, Username: u.Username, Email: u.Email, Name: u.Name, IsStaff: u.IsStaff})
	}
}

// myUserInfoJSON is the answer of edX's my_user_info, in the shape the apps
// decode right after signing in (id an integer).
type myUserInfoJSON struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	Name     string `json:"name"`
}

// handleMyUserInfo is edX's GET /api/mobile/v0.5/my_user_info (SPEC §9):
// the same credential and errors as /api/me, the apps' shape.
func handleMyUserInfo(v *oauth.Validator, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, err := presentedUser(c, v, m, "my_user_info")
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, myUserInfoJSON{ID: u.ID, Username: u.Username, Email: u.Email, Name: u.Name})
	}
}

// presentedUser authenticates a first-party API call that needs a user: a
// client-credentials token acts for none.
func presentedUser(c echo.Context, v *oauth.Validator, m *metrics.Metrics, endpoint string) (*bff.User, error) {
	p, err := authenticate(c, v, m, endpoint)
	if err != nil {
		return nil, err
	}
	if p.User == nil {
		return nil, bff.ErrNotSupportedToken
	}
	return p.User, nil
}
