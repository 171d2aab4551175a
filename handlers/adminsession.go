package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
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
// or a browser session obtained by signing in once with it (ADR 20).
//
// A session is a record in the store, shared by every instance, and the
// cookie ("v2.<random>") is only its key: the store keeps the SHA-256 of
// the cookie, never the cookie nor the admin token. Signing out deletes the
// record, so a copied cookie dies with it on every instance. Each record
// names the admin token it was opened with by a fingerprint (an HMAC under
// a key derived from BFF_SECRET): an instance accepts only the sessions of
// its own token, and at start-up ends the others, so a new BFF_ADMIN_TOKEN
// ends every session. The CSRF token of a session is a MAC of its id.
type adminSessions struct {
	token       string // "" refuses everything
	hash        [32]byte
	key         []byte
	fingerprint string
	store       AdminSessionStore
	secure      bool
	now         func() time.Time
}

// adminCookiePrefix starts every session cookie value; v1 was a signed,
// stateless cookie, and is refused.
const adminCookiePrefix = "v2."

func newAdminSessions(token string, secret []byte, st AdminSessionStore, secure bool) *adminSessions {
	key := adminMACKey(token, secret)
	return &adminSessions{token: token, hash: sha256.Sum256([]byte(token)), key: key,
		fingerprint: fingerprintOf(token, key), store: st, secure: secure, now: time.Now}
}

// adminMACKey is the key of the CSRF tokens and of the token fingerprint:
// derived from BFF_SECRET's dashboard key and the admin token. Without a
// secret it is random, and sessions end with the process.
func adminMACKey(token string, secret []byte) []byte {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(token))
	return mac.Sum(nil)
}

// fingerprintOf names the admin token in the session records; "" for no
// token (no session is ever of it).
func fingerprintOf(token string, key []byte) string {
	if token == "" {
		return ""
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("admin-token-fingerprint"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// AdminTokenFingerprint is the fingerprint that the dashboard sessions of
// this admin token carry (secret is Deps.AdminSessionKey): at start-up,
// serve ends every session without it (store.DeleteAdminSessionsExcept).
func AdminTokenFingerprint(token string, secret []byte) string {
	return fingerprintOf(token, adminMACKey(token, secret))
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

// sessionID is the store's key of a cookie value.
func sessionID(value string) string {
	sum := sha256.Sum256([]byte(value))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// issue stores a new session and returns its cookie.
func (a *adminSessions) issue(ctx context.Context) (*http.Cookie, error) {
	value := adminCookiePrefix + bff.RandomID(32)
	now := a.now().UTC().Truncate(time.Second)
	exp := now.Add(adminSessionTTL)
	err := a.store.CreateAdminSession(ctx, bff.AdminSession{ID: sessionID(value), TokenFingerprint: a.fingerprint,
		CreatedAt: now, ExpiresAt: exp})
	if err != nil {
		return nil, err
	}
	return a.cookie(value, exp), nil
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

// verify returns the id of the live session of a cookie value: stored,
// unexpired, and of this admin token. ok is false for any other value; err
// is set only when the store could not answer.
func (a *adminSessions) verify(ctx context.Context, value string) (id string, ok bool, err error) {
	if a.token == "" || len(value) > 100 || !strings.HasPrefix(value, adminCookiePrefix) {
		return "", false, nil
	}
	id = sessionID(value)
	sess, err := a.store.GetAdminSession(ctx, id, a.now())
	if errors.Is(err, bff.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if subtle.ConstantTimeCompare([]byte(sess.TokenFingerprint), []byte(a.fingerprint)) != 1 {
		return "", false, nil // opened with another admin token
	}
	return id, true, nil
}

// end deletes a session (signing out).
func (a *adminSessions) end(ctx context.Context, id string) error {
	return a.store.DeleteAdminSession(ctx, id)
}

// csrfToken is the synchronizer token of session id.
func (a *adminSessions) csrfToken(id string) string { return a.mac("csrf", id) }

func (a *adminSessions) checkCSRF(id, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(a.csrfToken(id)))
}

// session returns the session id of a signed-in browser request, if any;
// err is set when the store could not answer.
func (a *adminSessions) session(c echo.Context) (string, bool, error) {
	ck, err := c.Cookie(adminCookieName)
	if err != nil {
		return "", false, nil
	}
	return a.verify(c.Request().Context(), ck.Value)
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
