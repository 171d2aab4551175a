package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	bff "github.com/openedx/mobile-auth-bff"
)

// adminCookieName is the dashboard's sign-in cookie, scoped to /admin.
const adminCookieName = "bff_admin_session"

// adminSessionTTL is how long a dashboard sign-in lasts.
const adminSessionTTL = 8 * time.Hour

// adminSessionKey is where adminAuth leaves the session id of a request
// signed in by cookie, for the pages' CSRF tokens.
const adminSessionKey = "admin_session"

// adminSessions authenticates the admin listener: the admin token itself,
// or a browser session obtained by signing in once with it.
//
// A session is a signed cookie ("v1.<expiry>.<id>.<mac>"), never the admin
// token: the MAC key is derived from BFF_SECRET and the admin token, so
// every instance sharing them accepts it, and rotating BFF_ADMIN_TOKEN
// ends every session. The CSRF token of a session is a MAC of its id
// (a synchronizer token tied to the session that needs no server state).
type adminSessions struct {
	token  string // "" refuses everything
	hash   [32]byte
	key    []byte
	secure bool
	now    func() time.Time
}

func newAdminSessions(token string, secret []byte, secure bool) *adminSessions {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret) // sessions then live as long as the process
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(token))
	return &adminSessions{token: token, hash: sha256.Sum256([]byte(token)), key: mac.Sum(nil), secure: secure, now: time.Now}
}

// checkToken reports, in constant time, whether presented is the admin token.
func (a *adminSessions) checkToken(presented string) bool {
	if a.token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(sum[:], a.hash[:]) == 1
}

func (a *adminSessions) mac(parts ...string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue returns the cookie of a new session.
func (a *adminSessions) issue() *http.Cookie {
	id := bff.RandomID(18)
	exp := a.now().Add(adminSessionTTL).Truncate(time.Second)
	expStr := strconv.FormatInt(exp.Unix(), 10)
	return a.cookie("v1."+expStr+"."+id+"."+a.mac("session", expStr, id), exp)
}

// clear returns the cookie that ends a session in the browser.
func (a *adminSessions) clear() *http.Cookie {
	c := a.cookie("", time.Unix(0, 0))
	c.MaxAge = -1
	return c
}

func (a *adminSessions) cookie(value string, exp time.Time) *http.Cookie {
	return &http.Cookie{
		Name: adminCookieName, Value: value, Path: "/admin", Expires: exp,
		MaxAge: max(int(time.Until(exp).Seconds()), 0), HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode,
	}
}

// verify returns the id of a valid, unexpired session cookie value.
func (a *adminSessions) verify(value string) (string, bool) {
	if a.token == "" || len(value) > 200 {
		return "", false
	}
	parts := strings.Split(value, ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return "", false
	}
	expStr, id, mac := parts[1], parts[2], parts[3]
	if !hmac.Equal([]byte(mac), []byte(a.mac("session", expStr, id))) {
		return "", false
	}
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil || !a.now().Before(time.Unix(exp, 0)) {
		return "", false
	}
	return id, true
}

// csrfToken is the synchronizer token of session id.
func (a *adminSessions) csrfToken(id string) string { return a.mac("csrf", id) }

func (a *adminSessions) checkCSRF(id, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(a.csrfToken(id)))
}

// session returns the session id of a signed-in browser request, if any.
func (a *adminSessions) session(c echo.Context) (string, bool) {
	ck, err := c.Cookie(adminCookieName)
	if err != nil {
		return "", false
	}
	return a.verify(ck.Value)
}

// safeMethod reports whether a request cannot change state.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether a browser request comes from this listener's
// own pages: the Origin header (sent by browsers on every POST) must name
// this host, or else Fetch Metadata must say same-origin. A request with
// neither is not from a current browser, and the CSRF token decides alone.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	return true
}

// csrfFrom reads the CSRF token of a state-changing request: the
// csrf_token field of a form, or the X-CSRF-Token header.
func csrfFrom(c echo.Context) (string, error) {
	if h := c.Request().Header.Get("X-CSRF-Token"); h != "" {
		return h, nil
	}
	if isForm(c.Request()) {
		if err := parseAdminForm(c); err != nil {
			return "", err
		}
		return c.Request().PostForm.Get("csrf_token"), nil
	}
	return "", nil
}
