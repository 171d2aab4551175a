package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
)

// Browser sign-in (SPEC §14): the authorize endpoint's decisions. The
// handlers render the sign-in page and the error page; this file decides
// whether a request may be answered by redirect, checks the password the
// way the password grant does, keeps the sign-in session, and issues the
// code through fosite.

// AuthorizeRequest is an authorization request whose client and redirect
// URI are known good: every further error goes back by redirect.
type AuthorizeRequest struct {
	ar          fosite.AuthorizeRequester
	Client      bff.Client
	RedirectURI string
	State       string
	// Prompt is "login" when the form must be shown even with a sign-in
	// session, "none" when it must not be shown; "" otherwise.
	Prompt    string
	LoginHint string
}

// AuthorizeError is an authorization error. With RedirectURI set it goes
// back to the client (RFC 6749 §4.1.2.1, with iss per RFC 9207); without,
// the request named no client or redirect URI that may be trusted and the
// user sees an error page.
type AuthorizeError struct {
	RedirectURI string
	State       string
	Code        string // the OAuth error code
	Description string
	Err         error
}

func (e *AuthorizeError) Error() string { return e.Code + ": " + e.Description }
func (e *AuthorizeError) Unwrap() error { return e.Err }

// authorizeParams are the parameters that may appear once only (RFC 6749 §3.1).
var authorizeParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state",
	"code_challenge", "code_challenge_method", "prompt", "login_hint", "response_mode", "nonce"}

// ParseAuthorize checks an authorization request (the query of GET
// /oauth2/authorize). An unknown client, a redirect URI the client did not
// register, or a duplicated client_id or redirect_uri is an error page; a
// store failure is ErrUnavailable; everything else is an *AuthorizeError
// with the redirect URI.
func (s *Service) ParseAuthorize(ctx context.Context, query url.Values) (*AuthorizeRequest, error) {
	page := func(code, desc string) error { return &AuthorizeError{Code: code, Description: desc} }
	for _, p := range []string{"client_id", "redirect_uri"} {
		if len(query[p]) > 1 {
			return nil, page(fosite.ErrInvalidRequest.ErrorField, "The "+p+" parameter was sent more than once.")
		}
	}
	id := query.Get("client_id")
	if id == "" {
		return nil, page(fosite.ErrInvalidRequest.ErrorField, "The client_id parameter is missing.")
	}
	client, err := s.store.GetClient(ctx, id)
	if errors.Is(err, bff.ErrNotFound) {
		return nil, page(fosite.ErrInvalidClient.ErrorField, "This app is not known to the sign-in service.")
	}
	if err != nil {
		return nil, err
	}
	redirect := query.Get("redirect_uri")
	if redirect == "" && len(client.RedirectURIs) == 1 {
		redirect = client.RedirectURIs[0] // RFC 6749 §3.1.2.3
	}
	if redirect == "" || !client.MatchRedirectURI(redirect) {
		return nil, page(fosite.ErrInvalidRequest.ErrorField, "The redirect_uri is not registered for this app.")
	}
	state := query.Get("state")
	back := func(e *fosite.RFC6749Error) error {
		return &AuthorizeError{RedirectURI: redirect, State: state, Code: e.ErrorField, Description: e.GetDescription(), Err: e}
	}
	for _, p := range authorizeParams {
		if len(query[p]) > 1 {
			return nil, back(fosite.ErrInvalidRequest.WithHintf("The %s parameter was sent more than once.", p))
		}
	}
	if !client.HasGrant(bff.GrantAuthorizationCode) {
		return nil, back(fosite.ErrUnauthorizedClient.WithHint("This client may not use the authorization code grant."))
	}
	if rt := query.Get("response_type"); rt != "code" {
		return nil, back(fosite.ErrUnsupportedResponseType.WithHint("Only response_type=code is supported."))
	}
	if err := checkChallenge(client, query.Get("code_challenge"), query.Get("code_challenge_method")); err != nil {
		return nil, back(err)
	}
	prompt := ""
	for _, p := range strings.Fields(query.Get("prompt")) {
		switch p {
		case "login", "select_account":
			prompt = "login"
		case "none":
			if prompt == "" {
				prompt = "none"
			}
		case "consent": // first-party clients: there is no consent screen
		default:
			return nil, back(fosite.ErrInvalidRequest.WithHintf("Unknown prompt value %q.", p))
		}
	}
	if strings.Contains(query.Get("prompt"), "none") && prompt == "login" {
		return nil, back(fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values."))
	}
	// fosite reads the request from a clean GET with the query alone (a
	// sign-in form's fields never reach it).
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	if query.Get("redirect_uri") == "" {
		// The one registered URI (fosite picks it too); the code is bound
		// to none, so the token request need not name it (RFC 6749 §4.1.3).
		q.Del("redirect_uri")
	}
	// fosite wants a state of 8 characters or more; the Android app sends
	// none, and a state is the client's own business (its CSRF defence,
	// which PKCE also gives). fosite gets a stand-in; the response carries
	// the client's own state (Issue).
	if len(state) < 8 {
		q.Set("state", "state-not-sent-by-client")
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "/oauth2/authorize?"+q.Encode(), nil)
	if err != nil {
		return nil, back(fosite.ErrInvalidRequest.WithHint("The request could not be read."))
	}
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		var rfc *fosite.RFC6749Error
		if errors.Is(err, bff.ErrUnavailable) || !errors.As(err, &rfc) {
			return nil, err
		}
		return nil, back(rfc)
	}
	return &AuthorizeRequest{ar: ar, Client: client, RedirectURI: redirect, State: state, Prompt: prompt,
		LoginHint: query.Get("login_hint")}, nil
}

// checkChallenge applies the client's PKCE rule before the sign-in page is
// shown: S256 only (RFC 7636 §4.2: 43 base64url characters), required
// unless the client's pkce_required is false.
func checkChallenge(c bff.Client, challenge, method string) *fosite.RFC6749Error {
	if challenge == "" {
		if method != "" {
			return fosite.ErrInvalidRequest.WithHint("code_challenge_method without code_challenge.")
		}
		if c.PKCERequired {
			return fosite.ErrInvalidRequest.WithHint("This client must send a PKCE code_challenge with code_challenge_method=S256.")
		}
		return nil
	}
	if method != "S256" {
		return fosite.ErrInvalidRequest.WithHint("Only code_challenge_method=S256 is supported; plain is not allowed.")
	}
	if len(challenge) != 43 || strings.Trim(challenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return fosite.ErrInvalidRequest.WithHint("The code_challenge must be 43 base64url characters (S256).")
	}
	return nil
}

// Issue signs the user in at the client: it issues a code bound to the
// request and returns the redirect URL that carries it, with state and iss.
func (s *Service) Issue(ctx context.Context, req *AuthorizeRequest, u bff.User, authTime time.Time) (string, error) {
	if u.Disabled {
		return "", bff.ErrAccountDisabled
	}
	sess := NewSession()
	sess.GrantType = bff.GrantAuthorizationCode
	sess.AuthTime = authTime.UTC()
	sess.setUser(u)
	scopes := req.ar.GetRequestedScopes()
	if len(scopes) == 0 {
		scopes = req.Client.Scopes
	}
	for _, sc := range scopes {
		req.ar.GrantScope(sc)
	}
	ctx = withPKCERequired(ctx, req.Client.PKCERequired)
	resp, err := s.provider.NewAuthorizeResponse(ctx, req.ar, sess)
	if err != nil {
		var rfc *fosite.RFC6749Error
		if errors.Is(err, bff.ErrUnavailable) || !errors.As(err, &rfc) || rfc.ErrorField == fosite.ErrServerError.ErrorField {
			return "", fmt.Errorf("issue authorization code: %w", errors.Join(err, bff.ErrUnavailable))
		}
		return "", &AuthorizeError{RedirectURI: req.RedirectURI, State: req.State, Code: rfc.ErrorField,
			Description: rfc.GetDescription(), Err: err}
	}
	params := url.Values{}
	for k, v := range resp.GetParameters() {
		if len(v) > 0 && v[0] != "" && k != "state" {
			params[k] = v
		}
	}
	if req.State != "" {
		params.Set("state", req.State)
	}
	return s.RedirectURL(req.RedirectURI, params), nil
}

// RedirectURL adds params and iss (RFC 9207) to a redirect URI's query.
func (s *Service) RedirectURL(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI // registered URIs parse; never reached
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	q.Set("iss", s.cfg.Issuer)
	u.RawQuery = q.Encode()
	return u.String()
}

// ErrorRedirect is the redirect URL of an authorization error.
func (s *Service) ErrorRedirect(e *AuthorizeError) string {
	p := url.Values{"error": {e.Code}}
	if e.Description != "" {
		p.Set("error_description", e.Description)
	}
	if e.State != "" {
		p.Set("state", e.State)
	}
	return s.RedirectURL(e.RedirectURI, p)
}

// SignIn checks a username (or email) and password typed into the sign-in
// page, with the password grant's throttle, hashing slots and answers
// (ErrTooManyAttempts, fosite.ErrNotFound for bad credentials,
// ErrAccountDisabled only with the right password). It returns the user
// and the time the check began (the auth time of what it leads to).
func (s *Service) SignIn(ctx context.Context, login, password, clientAddr string) (bff.User, time.Time, error) {
	attempt, err := s.reserveLogin(ctx, login, clientAddr)
	if err != nil {
		return bff.User{}, time.Time{}, err
	}
	st := &requestState{}
	u, err := s.authenticate(context.WithValue(ctx, stateKey{}, st), login, password)
	s.settleLogin(ctx, attempt, st, err)
	return u, st.authTime, err
}

// SignInCookieName is the browser sign-in session cookie, scoped to /oauth2/.
const SignInCookieName = "bff_signin"

// signInGrant marks the stored sessions that are browser sign-in sessions.
const signInGrant = "browser_signin"

// signInSessionID keys a sign-in session: a hash apart from web sessions'
// (SessionID), so that a sign-in cookie can never be presented as one.
func signInSessionID(cookie string) string { return SessionID("signin\x00" + cookie) }

// StartSignIn opens a browser sign-in session for the user and returns the
// cookie value and its expiry. Disabling the user or changing the password
// ends it (the store deletes the user's sessions).
func (s *Service) StartSignIn(ctx context.Context, u bff.User, clientID string, authTime time.Time) (string, time.Time, error) {
	cookie := bff.RandomID(32)
	now := time.Now().UTC()
	sess, err := s.store.EnsureSession(ctx, bff.Session{
		ID: signInSessionID(cookie), UserID: u.ID, ClientID: clientID, GrantType: signInGrant,
		Format: bff.FormatBearer, TokenIssuedAt: authTime, CreatedAt: authTime, ExpiresAt: now.Add(s.cfg.SessionTTL),
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return cookie, sess.ExpiresAt, nil
}

// SignedIn returns the user of a sign-in cookie and when they signed in;
// ErrTokenRevoked (or ErrNotFound) when it is no live session of an
// enabled user, ErrUnavailable when the store cannot tell.
func (s *Service) SignedIn(ctx context.Context, cookie string) (bff.User, time.Time, error) {
	if len(cookie) == 0 || len(cookie) > 100 {
		return bff.User{}, time.Time{}, bff.ErrNotFound
	}
	sess, err := s.store.GetSession(ctx, signInSessionID(cookie))
	if err != nil {
		return bff.User{}, time.Time{}, err
	}
	if sess.GrantType != signInGrant || !time.Now().Before(sess.ExpiresAt) {
		return bff.User{}, time.Time{}, bff.ErrNotFound
	}
	u, err := s.store.GetUser(ctx, sess.UserID)
	if err != nil {
		return bff.User{}, time.Time{}, err
	}
	// The sign-in time is the service's own record, compared exactly.
	if u.Disabled || !u.AcceptsAuthenticatedAt(sess.TokenIssuedAt) {
		return bff.User{}, time.Time{}, bff.ErrTokenRevoked
	}
	return u, sess.TokenIssuedAt, nil
}

// EndSignIn ends the sign-in session of a cookie; an unknown one is not an error.
func (s *Service) EndSignIn(ctx context.Context, cookie string) error {
	if len(cookie) == 0 || len(cookie) > 100 {
		return nil
	}
	return s.store.DeleteSession(ctx, signInSessionID(cookie))
}

// SignInCSRF is the CSRF token of the sign-in form for the random seed in
// its cookie: a MAC no other site can compute.
func (s *Service) SignInCSRF(seed string) string {
	mac := hmac.New(sha256.New, s.secrets.sessionKey)
	mac.Write([]byte("signin-csrf\x00" + seed))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Issuer is the issuer the authorization responses name (RFC 9207).
func (s *Service) Issuer() string { return s.cfg.Issuer }
