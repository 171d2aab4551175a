package social

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	bff "github.com/openedx/mobile-auth-bff"
)

// DefaultTimeout bounds every call to a social provider (SPEC §7).
const DefaultTimeout = 5 * time.Second

// ErrRejected means a social provider, or the check of an Apple
// id_token, judged the presented token bad: invalid, expired, for another
// audience, badly signed. It is wrapped with a reason fit for the client.
var ErrRejected = errors.New("provider rejected the token")

// Identity is what a provider vouches for about a token's holder.
type Identity struct {
	// Subject is the provider's stable id of the account: sub for Google and
	// Apple, id for Facebook and Microsoft Graph.
	Subject string
	// ExpiresAt is when the token stops being valid, when the provider says
	// so (Apple's exp); zero otherwise.
	ExpiresAt time.Time
	// Email and Name are what the provider says of the account, where it
	// says it (Microsoft Graph); never required, and never used to find or
	// link a user: only Subject is (ADR 6).
	Email, Name string
	// Nonce is an Apple id_token's nonce claim, empty when it has none.
	// It is part of the cached answer, and every exchange that sends a
	// nonce checks it against this (CheckNonce), cached answer or not.
	Nonce string
}

// Provider verifies a provider token and names the account behind it.
// Errors wrap ErrRejected when the token is bad and
// bff.ErrProviderUnavailable when the provider cannot be asked; neither
// ever holds the token.
type Provider interface {
	Verify(ctx context.Context, token string) (Identity, error)
}

// Rejection is an ErrRejected with its reason, fit for the client (it
// never holds the token): errors.As finds it in the errors of Verify and
// CheckNonce.
type Rejection struct{ Reason string }

// Error says the token was rejected, and why.
func (e *Rejection) Error() string { return ErrRejected.Error() + ": " + e.Reason }

// Is makes errors.Is(err, ErrRejected) hold for every Rejection.
func (e *Rejection) Is(target error) bool { return target == ErrRejected }

func rejected(format string, args ...any) error {
	return &Rejection{Reason: fmt.Sprintf(format, args...)}
}

func unavailable(backend, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", bff.ErrProviderUnavailable, backend, fmt.Sprintf(format, args...))
}

// maxProviderBody bounds what is read of a provider's answer.
const maxProviderBody = 1 << 20

// newProviderClient is the one HTTP client of every provider call: a
// total timeout per call and no redirects (a provider endpoint that
// redirects is misconfigured, and the bearer token must not follow).
func newProviderClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return &http.Client{
		Timeout:   timeout,
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// getJSON calls a provider endpoint with the token as a bearer credential
// (never in the URL, which proxies log) and returns the status and body.
// A transport failure or timeout is ErrProviderUnavailable.
func getJSON(ctx context.Context, client *http.Client, backend, endpoint, token string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return 0, nil, unavailable(backend, "bad endpoint URL")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(client, backend, req)
}

// postForm calls a provider endpoint with form in a POST body: the way to
// hand it a token, or the app's secret, without putting either in the URL.
func postForm(ctx context.Context, client *http.Client, backend, endpoint string, form url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, unavailable(backend, "bad endpoint URL")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(client, backend, req)
}

func do(client *http.Client, backend string, req *http.Request) (int, []byte, error) {
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, unavailable(backend, "%s", transportFailure(err))
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxProviderBody))
	if err != nil {
		return 0, nil, unavailable(backend, "%s", transportFailure(err))
	}
	return res.StatusCode, body, nil
}

// transportFailure names a failed call without quoting the error, whose
// text holds the URL and could one day hold more.
func transportFailure(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "connection failed (" + op.Op + ")"
	}
	return "request failed"
}

// statusVerdict sorts a provider's error status: rate limiting and server
// errors mean "ask again later", other 4xx mean the token is bad.
func statusVerdict(backend string, status int) error {
	switch {
	case status == http.StatusTooManyRequests || status >= 500:
		return unavailable(backend, "status %d", status)
	case status >= 400:
		return rejected("the provider answered %d", status)
	}
	return unavailable(backend, "unexpected status %d", status)
}

// --- Google ---

// googleProvider asks Google's OpenID Connect userinfo endpoint who holds
// an access token.
type googleProvider struct {
	client   *http.Client
	endpoint string
}

func (g *googleProvider) Verify(ctx context.Context, token string) (Identity, error) {
	status, body, err := getJSON(ctx, g.client, bff.ProviderGoogle, g.endpoint, token)
	if err != nil {
		return Identity{}, err
	}
	if status != http.StatusOK {
		return Identity{}, statusVerdict(bff.ProviderGoogle, status)
	}
	var info struct {
		Sub string `json:"sub"`
		ID  string `json:"id"` // the v2 endpoint's name for it
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return Identity{}, unavailable(bff.ProviderGoogle, "malformed userinfo answer")
	}
	sub := info.Sub
	if sub == "" {
		sub = info.ID
	}
	if sub == "" {
		return Identity{}, rejected("the token does not identify a Google account (%s)", googleIdentityScopes)
	}
	return Identity{Subject: sub}, nil
}

// googleIdentityScopes says which scopes make Google name the account (sub)
// to userinfo and tokeninfo: any one of them. The Android app's token holds
// userinfo.email alone, without openid (SPEC §0), and that suffices.
const googleIdentityScopes = "it needs the userinfo.email, userinfo.profile or openid scope"

// --- Facebook ---

// facebookProvider asks the Graph API's /me who holds an access token.
type facebookProvider struct {
	client   *http.Client
	endpoint string // with ?fields=id
}

func newFacebookProvider(client *http.Client, meURL string) (*facebookProvider, error) {
	u, err := url.Parse(meURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("fields", "id")
	u.RawQuery = q.Encode()
	return &facebookProvider{client: client, endpoint: u.String()}, nil
}

// facebookTransient are Graph API error codes that mean "retry later"
// (API unknown/service, rate limits, temporary blocks), not a bad token.
var facebookTransient = []int{1, 2, 4, 17, 32, 341, 613}

func (f *facebookProvider) Verify(ctx context.Context, token string) (Identity, error) {
	status, body, err := getJSON(ctx, f.client, bff.ProviderFacebook, f.endpoint, token)
	if err != nil {
		return Identity{}, err
	}
	if status == http.StatusOK {
		var me struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &me); err != nil {
			return Identity{}, unavailable(bff.ProviderFacebook, "malformed /me answer")
		}
		if me.ID == "" {
			return Identity{}, rejected("the token does not identify a Facebook account")
		}
		return Identity{Subject: me.ID}, nil
	}
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
		var e struct {
			Error struct {
				Code      int  `json:"code"`
				Transient bool `json:"is_transient"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && (e.Error.Transient || slices.Contains(facebookTransient, e.Error.Code)) {
			return Identity{}, unavailable(bff.ProviderFacebook, "transient error %d", e.Error.Code)
		}
	}
	return Identity{}, statusVerdict(bff.ProviderFacebook, status)
}

// --- Microsoft ---

// azureADProvider asks Microsoft Graph's /me who holds an access token: the
// MSAL token the apps get for Graph's User.Read. A Graph token is meant for
// Graph alone (Microsoft documents its contents as private to Graph, and a
// personal account's is not even a readable JWT), so using it is the only
// check there is, and nothing says which app obtained it (ADR 6).
type azureADProvider struct {
	client   *http.Client
	endpoint string
}

func (a *azureADProvider) Verify(ctx context.Context, token string) (Identity, error) {
	status, body, err := getJSON(ctx, a.client, bff.ProviderAzureAD, a.endpoint, token)
	if err != nil {
		return Identity{}, err
	}
	switch status {
	case http.StatusOK:
	case http.StatusUnauthorized: // InvalidAuthenticationToken: bad, expired, or not for Graph
		return Identity{}, rejected("Microsoft Graph does not accept it (invalid, expired, or not a Graph token)")
	case http.StatusForbidden: // Authorization_RequestDenied
		return Identity{}, rejected("Microsoft Graph refuses to read the account with it (was User.Read granted?)")
	default:
		return Identity{}, statusVerdict(bff.ProviderAzureAD, status)
	}
	var me struct {
		ID                string `json:"id"`
		Mail              string `json:"mail"` // null for many accounts
		UserPrincipalName string `json:"userPrincipalName"`
		DisplayName       string `json:"displayName"`
	}
	if err := json.Unmarshal(body, &me); err != nil {
		return Identity{}, unavailable(bff.ProviderAzureAD, "malformed /me answer")
	}
	if me.ID == "" {
		return Identity{}, rejected("the token does not identify a Microsoft account")
	}
	email := me.Mail
	if email == "" {
		email = me.UserPrincipalName
	}
	return Identity{Subject: me.ID, Email: email, Name: me.DisplayName}, nil
}

// --- Apple ---

// AppleIssuer is the iss of every Apple id_token.
const AppleIssuer = "https://appleid.apple.com"

// Apple key-set refresh policy: a key set older than appleKeysMaxAge is
// refreshed on next use; an unknown kid makes the service fetch the set
// again, but at most once per appleRefetchInterval (once per
// appleRetryInterval while no set could be loaded yet), so that tokens
// with made-up kids cannot make it hammer Apple.
const (
	appleKeysMaxAge      = time.Hour
	appleRefetchInterval = time.Minute
	appleRetryInterval   = 5 * time.Second
	// appleIATSkew is how far in the future an iat may be (clock skew).
	appleIATSkew = 5 * time.Minute
)

// errFetchNotAllowed means the key set was fetched too recently to fetch it again.
var errFetchNotAllowed = errors.New("key set fetched too recently")

// appleProvider verifies Sign in with Apple id_tokens locally, against
// Apple's published keys: RS256 only, iss, aud (and azp), exp. The nonce
// is not its business: it depends on the request, not on the token, so
// the exchange checks it on every request (CheckNonce).
type appleProvider struct {
	client    *http.Client
	jwksURL   string
	audiences []string
	now       func() time.Time

	fetches singleflight.Group
	mu      sync.Mutex
	keys    map[string]*rsa.PublicKey // nil until a set is loaded
	// fetchedAt is the time of the last successful fetch, attemptAt of the
	// last attempt; attemptFailed tells whether that attempt failed.
	fetchedAt, attemptAt time.Time
	attemptFailed        bool
}

// appleClaims are the claims of an Apple id_token this service reads.
type appleClaims struct {
	Issuer   string       `json:"iss"`
	Audience bff.Audience `json:"aud"`
	// AuthorizedParty (azp) is the app the token was issued to, which
	// OpenID Connect requires when aud names several audiences.
	AuthorizedParty string `json:"azp"`
	Subject         string `json:"sub"`
	Nonce           string `json:"nonce"`
	Expiry          int64  `json:"exp"`
	IssuedAt        int64  `json:"iat"`
	NotBefore       int64  `json:"nbf"`
}

func (a *appleProvider) Verify(ctx context.Context, token string) (Identity, error) {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return Identity{}, rejected("the id_token is not an RS256-signed JWT")
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return Identity{}, rejected("the id_token names no signing key (kid)")
	}
	key, err := a.key(ctx, kid)
	if err != nil {
		return Identity{}, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return Identity{}, rejected("the id_token signature does not verify")
	}
	var c appleClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Identity{}, rejected("the id_token claims are malformed")
	}
	now := a.now()
	exp := time.Unix(c.Expiry, 0)
	switch {
	case c.Issuer != AppleIssuer:
		return Identity{}, rejected("the id_token was not issued by Apple (iss)")
	case !slices.ContainsFunc(a.audiences, c.Audience.Contains):
		return Identity{}, rejected("the id_token is for another app (aud)")
	// OpenID Connect Core §3.1.3.7: with several audiences, azp names the
	// app the token was issued to, and it must be one of ours; an azp
	// present with a single audience must be one of ours too.
	case len(c.Audience) > 1 && c.AuthorizedParty == "":
		return Identity{}, rejected("the id_token names several audiences but no azp")
	case c.AuthorizedParty != "" && !slices.Contains(a.audiences, c.AuthorizedParty):
		return Identity{}, rejected("the id_token was issued to another app (azp)")
	case c.Expiry == 0:
		return Identity{}, rejected("the id_token has no exp")
	case !now.Before(exp):
		return Identity{}, rejected("the id_token has expired")
	case c.IssuedAt != 0 && time.Unix(c.IssuedAt, 0).After(now.Add(appleIATSkew)):
		return Identity{}, rejected("the id_token is issued in the future (iat)")
	case c.NotBefore != 0 && time.Unix(c.NotBefore, 0).After(now.Add(appleIATSkew)):
		return Identity{}, rejected("the id_token is not valid yet (nbf)")
	case c.Subject == "":
		return Identity{}, rejected("the id_token has no sub")
	}
	return Identity{Subject: c.Subject, ExpiresAt: exp, Nonce: c.Nonce}, nil
}

// key returns Apple's public key kid, fetching the key set when it is
// unknown or old and the refresh policy allows.
func (a *appleProvider) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	a.mu.Lock()
	known, ok := a.keys[kid]
	fresh := a.now().Sub(a.fetchedAt) < appleKeysMaxAge
	a.mu.Unlock()
	if ok && fresh {
		return known, nil
	}
	// Concurrent callers share one fetch; the fetch outlives a caller that
	// gives up, so that the others still get its answer.
	ch := a.fetches.DoChan("jwks", func() (any, error) {
		return nil, a.fetch(context.WithoutCancel(ctx))
	})
	var fetchErr error
	select {
	case <-ctx.Done():
		return nil, unavailable(bff.ProviderApple, "%s", transportFailure(ctx.Err()))
	case r := <-ch:
		fetchErr = r.Err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if k, ok := a.keys[kid]; ok {
		return k, nil
	}
	switch {
	case fetchErr == nil: // a fresh set, without the key
		return nil, rejected("the id_token is signed with a key Apple does not publish (kid)")
	case ok:
		return known, nil // the set could not be refreshed: the old key still stands
	case errors.Is(fetchErr, errFetchNotAllowed) && a.keys != nil && !a.attemptFailed:
		return nil, rejected("the id_token is signed with a key Apple does not publish (kid)")
	case errors.Is(fetchErr, errFetchNotAllowed):
		return nil, unavailable(bff.ProviderApple, "key set unavailable")
	}
	return nil, fetchErr
}

// fetch loads Apple's key set, unless the refresh policy says it is too soon.
func (a *appleProvider) fetch(ctx context.Context) error {
	a.mu.Lock()
	wait := appleRefetchInterval
	if a.keys == nil || a.attemptFailed {
		wait = appleRetryInterval
	}
	if !a.attemptAt.IsZero() && a.now().Sub(a.attemptAt) < wait {
		a.mu.Unlock()
		return errFetchNotAllowed
	}
	a.attemptAt = a.now()
	a.mu.Unlock()

	keys, err := a.download(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.attemptFailed = err != nil
	if err != nil {
		return err
	}
	a.keys, a.fetchedAt = keys, a.now()
	return nil
}

func (a *appleProvider) download(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	status, body, err := getJSON(ctx, a.client, bff.ProviderApple, a.jwksURL, "")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, unavailable(bff.ProviderApple, "key set: status %d", status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, unavailable(bff.ProviderApple, "malformed key set")
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok || k.KeyID == "" || (k.Use != "" && k.Use != "sig") ||
			(k.Algorithm != "" && k.Algorithm != string(jose.RS256)) || pub.N.BitLen() < 2048 {
			continue
		}
		keys[k.KeyID] = pub
	}
	if len(keys) == 0 {
		return nil, unavailable(bff.ProviderApple, "the key set holds no RS256 signing key")
	}
	return keys, nil
}

// splitList splits comma-separated lists (BFF_APPLE_AUDIENCE,
// BFF_GOOGLE_CLIENT_IDS) into their distinct, non-empty entries.
func splitList(list []string) []string {
	var out []string
	for _, a := range list {
		for _, v := range strings.Split(a, ",") {
			if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}
