// Package fakesocial runs fake Google, Facebook, Microsoft and Apple
// sign-in endpoints for tests: Google's userinfo and tokeninfo, Facebook's
// /me and debug_token, Microsoft Graph's /me, which know the tokens they
// issued and the app each was issued to, and an Apple key set whose keys
// sign id_tokens. Each fake counts its calls, can be made to fail, to be
// slow or to redirect, and records every request URL that carried a token
// or a secret.
package fakesocial

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The platform's own apps, to which Issue issues tokens.
const (
	// GoogleClientID is the OAuth client id of the platform's app at Google
	// (BFF_GOOGLE_CLIENT_IDS).
	GoogleClientID = "1040000000001-ios.apps.googleusercontent.com"
	// FacebookAppID and FacebookAppSecret are the platform's Facebook app
	// (BFF_FACEBOOK_APP_ID, BFF_FACEBOOK_APP_SECRET).
	FacebookAppID     = "1400000000000001"
	FacebookAppSecret = "fake-app-secret-5f1e0c9a7b3d4e2f"
	// OtherGoogleClientID and OtherFacebookAppID are a third-party app the
	// user also granted: its tokens must not sign the user in here.
	OtherGoogleClientID = "2990000000009-evil.apps.googleusercontent.com"
	OtherFacebookAppID  = "2900000000000009"
)

// Google scopes of the tokens the fake Google issues.
const (
	// GoogleEmailScope is the only scope of the Android app's token
	// (GoogleAuthUtil with "oauth2: …/userinfo.email"): no openid, no
	// profile, so Google's answers carry sub and the email, but no name.
	GoogleEmailScope = "https://www.googleapis.com/auth/userinfo.email"
	// GoogleSignInScope is what Google Sign-In grants by default
	// (openid email profile): the default of Grant.Scope.
	GoogleSignInScope = "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile"
)

// Grant describes a token a fake provider issues.
type Grant struct {
	// Subject is the account: Google's sub, Facebook's app-scoped id.
	Subject string
	// Audience and AuthorizedParty are Google's aud and azp (Facebook's
	// app_id is Audience); empty means the platform's app.
	Audience, AuthorizedParty string
	// Expires is when the token stops working; zero means in an hour.
	Expires time.Time
	// Type is Facebook's token type; empty means USER.
	Type string
	// Scope is Google's space-separated scope of the token; empty means
	// GoogleSignInScope.
	Scope string
	// Mail is Microsoft Graph's mail of the account; empty answers null,
	// as Graph does for many accounts (userPrincipalName is always set).
	Mail string
}

// kind is which provider an Endpoint fakes.
type kind int

const (
	google kind = iota
	facebook
	microsoft
)

// Endpoint is a fake provider: Google (userinfo, tokeninfo), Facebook
// (/me, debug_token) or Microsoft Graph (/me).
type Endpoint struct {
	srv   *httptest.Server
	kind  kind
	app   string // the platform's client id or app id
	paths struct{ who, check string }

	mu       sync.Mutex
	tokens   map[string]Grant
	status   int    // forced status; 0 answers normally
	body     string // forced body with status
	redirect string // Location of a forced redirect, with status
	delay    time.Duration
	calls    atomic.Int64
	// queries records the raw query of every request; leaks every request
	// whose URL carried a token or the app secret.
	queries []string
	leaks   []string
}

func newEndpoint(tb testing.TB, k kind) *Endpoint {
	e := &Endpoint{kind: k, tokens: map[string]Grant{}}
	switch k {
	case facebook:
		e.app, e.paths.who, e.paths.check = FacebookAppID, "/v19.0/me", "/v19.0/debug_token"
	case microsoft:
		e.paths.who = "/v1.0/me" // Graph has no endpoint that tells the app
	default:
		e.app, e.paths.who, e.paths.check = GoogleClientID, "/v1/userinfo", "/tokeninfo"
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	tb.Cleanup(e.srv.Close)
	return e
}

// NewGoogle starts a fake Google: the OpenID Connect userinfo endpoint
// (URL) and the tokeninfo endpoint (CheckURL).
func NewGoogle(tb testing.TB) *Endpoint { return newEndpoint(tb, google) }

// NewFacebook starts a fake Facebook Graph API: /me (URL) and debug_token
// (CheckURL), which accepts the app token of FacebookAppID and
// FacebookAppSecret only.
func NewFacebook(tb testing.TB) *Endpoint { return newEndpoint(tb, facebook) }

// NewMicrosoft starts a fake Microsoft Graph: /v1.0/me (URL), which names
// the holder of a Graph access token, whichever app obtained it. It has no
// CheckURL.
func NewMicrosoft(tb testing.TB) *Endpoint { return newEndpoint(tb, microsoft) }

// URL is the address of the endpoint that names a token's holder
// (BFF_GOOGLE_USERINFO_URL, BFF_FACEBOOK_ME_URL, BFF_AZUREAD_GRAPH_ME_URL).
func (e *Endpoint) URL() string { return e.srv.URL + e.paths.who }

// CheckURL is the address of the endpoint that tells which app a token was
// issued to (BFF_GOOGLE_TOKENINFO_URL, BFF_FACEBOOK_DEBUG_TOKEN_URL).
func (e *Endpoint) CheckURL() string { return e.srv.URL + e.paths.check }

// Issue returns a new access token of the account subject, issued to the
// platform's app and valid for an hour.
func (e *Endpoint) Issue(subject string) string { return e.IssueGrant(Grant{Subject: subject}) }

// IssueFor returns a new access token of the account subject issued to
// another app (its client id or app id).
func (e *Endpoint) IssueFor(app, subject string) string {
	return e.IssueGrant(Grant{Subject: subject, Audience: app, AuthorizedParty: app})
}

// IssueGrant returns a new access token described by g.
func (e *Endpoint) IssueGrant(g Grant) string {
	if g.Audience == "" {
		g.Audience = e.app
	}
	if g.AuthorizedParty == "" {
		g.AuthorizedParty = g.Audience
	}
	if g.Expires.IsZero() {
		g.Expires = time.Now().Add(time.Hour)
	}
	if g.Type == "" {
		g.Type = "USER"
	}
	if g.Scope == "" {
		g.Scope = GoogleSignInScope
	}
	token := "fake-" + randomString(24)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens[token] = g
	return token
}

// Revoke makes the provider refuse token from now on.
func (e *Endpoint) Revoke(token string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.tokens, token)
}

// Fail makes every answer status with body (JSON); Fail(0, "") heals it.
func (e *Endpoint) Fail(status int, body string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status, e.body, e.redirect = status, body, ""
}

// Redirect makes every answer a redirect (status 301, 302, 303, 307 or
// 308) to location; Fail(0, "") heals it.
func (e *Endpoint) Redirect(status int, location string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status, e.body, e.redirect = status, "", location
}

// Slow delays every answer by d.
func (e *Endpoint) Slow(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.delay = d
}

// Calls is the number of requests the endpoint received.
func (e *Endpoint) Calls() int { return int(e.calls.Load()) }

// Queries returns the raw query of every request so far.
func (e *Endpoint) Queries() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.queries...)
}

// URLLeaks describes every request so far whose URL carried a token this
// fake issued, the app secret, or a token parameter at all: what proxies
// and access logs would have recorded. Tests want none.
func (e *Endpoint) URLLeaks() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.leaks...)
}

// tokenParams are the parameters that carry credentials.
var tokenParams = []string{"access_token", "input_token", "id_token", "client_secret"}

// leak tells why the request URL carries a credential, or "".
func (e *Endpoint) leak(r *http.Request) string {
	uri := r.URL.RequestURI()
	if strings.Contains(uri, FacebookAppSecret) || strings.Contains(uri, url.QueryEscape(FacebookAppSecret)) {
		return r.Method + " " + r.URL.Path + ": the app secret is in the URL"
	}
	for t := range e.tokens {
		if strings.Contains(uri, t) {
			return r.Method + " " + r.URL.Path + ": a token is in the URL"
		}
	}
	q := r.URL.Query()
	for _, p := range tokenParams {
		if q.Has(p) {
			return r.Method + " " + r.URL.Path + ": parameter " + p + " is in the URL"
		}
	}
	return ""
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	// Read the body first: the server notices a client that gave up (and
	// cancels r.Context()) only once the body is read.
	formErr := r.ParseForm()
	e.mu.Lock()
	status, body, redirect, delay := e.status, e.body, e.redirect, e.delay
	e.queries = append(e.queries, r.URL.RawQuery)
	if why := e.leak(r); why != "" {
		e.leaks = append(e.leaks, why)
	}
	e.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case redirect != "":
		w.Header().Set("Location", redirect)
		w.WriteHeader(status)
	case status != 0:
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	case r.URL.Path == e.paths.who && r.Method == http.MethodGet:
		e.serveWho(w, r)
	case formErr != nil:
		w.WriteHeader(http.StatusBadRequest)
	case e.paths.check != "" && r.URL.Path == e.paths.check && (r.Method == http.MethodPost || r.Method == http.MethodGet):
		if e.kind == facebook {
			e.serveDebugToken(w, r)
		} else {
			e.serveTokeninfo(w, r)
		}
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// grant returns the live grant of token.
func (e *Endpoint) grant(token string) (Grant, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, ok := e.tokens[token]
	return g, ok && time.Now().Before(g.Expires)
}

// serveWho answers userinfo or /me: who holds the bearer token, whichever
// app it was issued to (which is why the service checks the app).
func (e *Endpoint) serveWho(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g, ok := e.grant(token)
	switch {
	case !ok && e.kind == facebook:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}}`))
	case !ok && e.kind == microsoft:
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"InvalidAuthenticationToken","message":"Access token validation failure.",` +
			`"innerError":{"date":"2026-11-02T10:00:00","request-id":"5b7c3f52-0000-4000-8000-000000000001"}}}`))
	case !ok:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_token","error_description":"Invalid Credentials"}`))
	case e.kind == facebook:
		_ = json.NewEncoder(w).Encode(map[string]any{"id": g.Subject, "name": "Fake " + g.Subject})
	case e.kind == microsoft:
		_ = json.NewEncoder(w).Encode(graphMe(g))
	default:
		_ = json.NewEncoder(w).Encode(googleUserinfo(g))
	}
}

// googleUserinfo is Google's userinfo answer for a token of g: sub for any
// of the identity scopes, the email for userinfo.email, the names only for
// userinfo.profile. A token of the Android app (GoogleEmailScope)
// gets {"sub", "picture", "email", "email_verified"}.
func googleUserinfo(g Grant) map[string]any {
	scopes := strings.Fields(g.Scope)
	info := map[string]any{"sub": g.Subject, "picture": "https://lh3.googleusercontent.com/a/default-user=s96-c"}
	if slices.Contains(scopes, GoogleEmailScope) || slices.Contains(scopes, "email") {
		info["email"], info["email_verified"] = g.Subject+"@provider.test", true
	}
	if slices.Contains(scopes, "https://www.googleapis.com/auth/userinfo.profile") || slices.Contains(scopes, "profile") {
		info["name"], info["given_name"], info["family_name"] = "Fake "+g.Subject, "Fake", g.Subject
	}
	return info
}

// graphMe is Microsoft Graph's /v1.0/me answer for a token of g, with the
// nulls Graph sends for what the account does not have.
func graphMe(g Grant) map[string]any {
	var mail any // null
	if g.Mail != "" {
		mail = g.Mail
	}
	return map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
		"businessPhones": []string{}, "displayName": "Fake " + g.Subject, "givenName": "Fake", "surname": g.Subject,
		"jobTitle": nil, "mail": mail, "mobilePhone": nil, "officeLocation": nil, "preferredLanguage": nil,
		"userPrincipalName": g.Subject + "@contoso.onmicrosoft.test", "id": g.Subject,
	}
}

// serveTokeninfo answers as Google's tokeninfo does for an access token
// (form or query parameter access_token): numbers as strings.
func (e *Endpoint) serveTokeninfo(w http.ResponseWriter, r *http.Request) {
	g, ok := e.grant(r.Form.Get("access_token"))
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_token","error_description":"Invalid Value"}`))
		return
	}
	info := map[string]any{
		"azp": g.AuthorizedParty, "aud": g.Audience, "sub": g.Subject, "scope": g.Scope,
		"exp": strconv.FormatInt(g.Expires.Unix(), 10), "expires_in": strconv.Itoa(int(time.Until(g.Expires).Seconds())),
		"access_type": "online",
	}
	if _, ok := googleUserinfo(g)["email"]; ok {
		info["email"], info["email_verified"] = g.Subject+"@provider.test", "true"
	}
	_ = json.NewEncoder(w).Encode(info)
}

// serveDebugToken answers as the Graph API's debug_token does: the app
// token (access_token) must be the platform app's; input_token is judged
// in data. A POST needs method=get, as the Graph API's method override.
func (e *Endpoint) serveDebugToken(w http.ResponseWriter, r *http.Request) {
	graphError := func(code int, msg string) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"error":{"message":%q,"type":"OAuthException","code":%d}}`, msg, code)
	}
	switch {
	case r.Method == http.MethodPost && !strings.EqualFold(r.PostForm.Get("method"), "get"):
		graphError(100, "Unsupported post request.")
		return
	case r.Form.Get("access_token") != FacebookAppID+"|"+FacebookAppSecret:
		graphError(190, "Invalid OAuth access token signature.")
		return
	case r.Form.Get("input_token") == "":
		graphError(100, "The parameter input_token is required")
		return
	}
	e.mu.Lock()
	g, known := e.tokens[r.Form.Get("input_token")]
	e.mu.Unlock()
	var data map[string]any
	switch {
	case !known:
		data = map[string]any{"error": map[string]any{"code": 190, "message": "Invalid OAuth access token."}, "is_valid": false, "scopes": []string{}}
	case !time.Now().Before(g.Expires):
		data = map[string]any{"app_id": g.Audience, "type": g.Type, "application": "Fake", "expires_at": g.Expires.Unix(), "is_valid": false,
			"error": map[string]any{"code": 190, "subcode": 463, "message": "Session has expired."}, "scopes": []string{"public_profile"}, "user_id": g.Subject}
	default:
		data = map[string]any{"app_id": g.Audience, "type": g.Type, "application": "Fake", "data_access_expires_at": g.Expires.Add(90 * 24 * time.Hour).Unix(),
			"expires_at": g.Expires.Unix(), "is_valid": true, "issued_at": time.Now().Unix(), "scopes": []string{"public_profile"}, "user_id": g.Subject}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
}

// Apple is a fake of Apple's key set endpoint together with the keys that
// sign Sign in with Apple id_tokens.
type Apple struct {
	srv *httptest.Server
	// Audience is the aud of the id_tokens it issues by default.
	Audience string

	mu        sync.Mutex
	keys      map[string]*rsa.PrivateKey
	published []string // kids in the key set, in order
	current   string   // kid that signs by default
	status    int
	redirect  string // Location of a forced redirect, with status
	fetches   atomic.Int64
}

// NewApple starts a fake Apple key set with one published signing key.
func NewApple(tb testing.TB, audience string) *Apple {
	a := &Apple{Audience: audience, keys: map[string]*rsa.PrivateKey{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	tb.Cleanup(a.srv.Close)
	a.current = a.NewKey()
	a.Publish(a.current)
	return a
}

// URL is the key set's address (BFF_APPLE_JWKS_URL).
func (a *Apple) URL() string { return a.srv.URL + "/auth/keys" }

// NewKey makes a signing key, unpublished, and returns its kid.
func (a *Apple) NewKey() string {
	kid := "kid-" + randomString(6)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys[kid] = testKey(len(a.keys))
	return kid
}

// Publish adds kid to the key set.
func (a *Apple) Publish(kid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.published = append(a.published, kid)
}

// Rotate publishes a new key, makes it sign by default and withdraws the
// old one, as Apple does; it returns the new kid.
func (a *Apple) Rotate() string {
	kid := a.NewKey()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.published = []string{kid}
	a.current = kid
	return kid
}

// Current is the kid that signs by default.
func (a *Apple) Current() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.current
}

// Fail makes the key set answer status; Fail(0) heals it.
func (a *Apple) Fail(status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.redirect = status, ""
}

// Redirect makes the key set answer a redirect (status) to location;
// Fail(0) heals it.
func (a *Apple) Redirect(status int, location string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.redirect = status, location
}

// KeySet is the key set as the endpoint serves it.
func (a *Apple) KeySet() []byte {
	b, _ := json.Marshal(a.keySet())
	return b
}

func (a *Apple) keySet() jose.JSONWebKeySet {
	a.mu.Lock()
	defer a.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, kid := range a.published {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &a.keys[kid].PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
	}
	return set
}

// Fetches is the number of times the key set was fetched.
func (a *Apple) Fetches() int { return int(a.fetches.Load()) }

// Claims are the claims of a good id_token for subject, valid from now
// for ten minutes as Apple issues them.
func (a *Apple) Claims(subject string, now time.Time) map[string]any {
	return map[string]any{
		"iss": "https://appleid.apple.com", "aud": a.Audience, "sub": subject,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"email": subject + "@privaterelay.appleid.com", "email_verified": "true", "auth_time": now.Unix(),
	}
}

// IDToken returns a good id_token for subject, signed with the current key.
func (a *Apple) IDToken(subject string) string {
	return a.Sign(a.Current(), a.Claims(subject, time.Now()))
}

// IDTokenWithNonce returns a good id_token for subject whose nonce claim
// is the SHA-256 of raw, as an app that passed NonceClaim(raw) to Sign in
// with Apple gets it.
func (a *Apple) IDTokenWithNonce(subject, raw string) string {
	c := a.Claims(subject, time.Now())
	c["nonce"], c["nonce_supported"] = NonceClaim(raw), true
	return a.Sign(a.Current(), c)
}

// NonceClaim is what an app hands Sign in with Apple for the raw nonce it
// keeps: the lowercase hex SHA-256, which Apple signs into the nonce claim.
func NonceClaim(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// Sign signs claims with the key kid (RS256).
func (a *Apple) Sign(kid string, claims map[string]any) string {
	a.mu.Lock()
	key := a.keys[kid]
	a.mu.Unlock()
	if key == nil {
		panic("fakesocial: unknown kid " + kid)
	}
	return sign(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, claims)
}

// SignHS256 signs claims with HMAC, naming kid and using the public key of
// kid as the secret: the algorithm-confusion attack.
func (a *Apple) SignHS256(kid string, claims map[string]any) string {
	a.mu.Lock()
	key := a.keys[kid]
	a.mu.Unlock()
	secret, _ := json.Marshal(jose.JSONWebKey{Key: &key.PublicKey})
	return sign(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: kid}}, claims)
}

// Unsigned returns claims as an alg "none" JWT naming kid.
func Unsigned(kid string, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "kid": kid})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

func sign(key jose.SigningKey, claims map[string]any) string {
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return out
}

func (a *Apple) serve(w http.ResponseWriter, r *http.Request) {
	a.fetches.Add(1)
	a.mu.Lock()
	status, redirect := a.status, a.redirect
	a.mu.Unlock()
	set := a.keySet()
	w.Header().Set("Content-Type", "application/json")
	if redirect != "" {
		w.Header().Set("Location", redirect)
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if r.URL.Path != "/auth/keys" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	_ = json.NewEncoder(w).Encode(set)
}

// UnreachableURL is an http URL where nothing listens: a provider that is down.
func UnreachableURL(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr + "/down"
}

// RSA keys are slow to make under the race detector: a few are made once
// per test binary and shared by every fake. The keys of one fake differ as
// long as it makes at most len(keyPool) of them.
var (
	keysOnce sync.Once
	keyPool  [4]*rsa.PrivateKey
)

func testKey(i int) *rsa.PrivateKey {
	keysOnce.Do(func() {
		var wg sync.WaitGroup
		for j := range keyPool {
			wg.Go(func() {
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					panic(err)
				}
				keyPool[j] = k
			})
		}
		wg.Wait()
	})
	return keyPool[i%len(keyPool)]
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
