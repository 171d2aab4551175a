package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	bff "github.com/openedx/mobile-auth-bff"
)

// SocialConfig is how the service reaches the social sign-in providers
// (SPEC §7). A provider without its endpoint (or, for Apple, without an
// audience) is disabled: its exchanges answer invalid_request.
type SocialConfig struct {
	GoogleUserinfoURL string
	// GoogleClientIDs are the OAuth client ids of the platform's apps
	// (iOS, Android, web); entries may be comma-separated lists. When set,
	// Google access tokens are verified at GoogleTokeninfoURL instead of
	// userinfo, and only tokens issued to one of them (aud or azp) are
	// accepted.
	GoogleClientIDs    []string
	GoogleTokeninfoURL string

	FacebookMeURL string
	// FacebookAppID and FacebookAppSecret, both or neither, are the
	// platform's Facebook app. When set, Facebook tokens are verified at
	// FacebookDebugTokenURL with the app's token instead of /me, and only
	// valid user tokens of that app are accepted.
	FacebookAppID         string
	FacebookAppSecret     Redacted
	FacebookDebugTokenURL string

	AppleJWKSURL string
	// AppleAudiences are the accepted aud values of Apple id_tokens: the
	// app's bundle ID (native sign-in) and/or its Services ID (web and
	// Android); entries may be comma-separated lists.
	AppleAudiences []string

	// AzureADGraphMeURL is Microsoft Graph's /me, which names the holder of
	// a Graph access token. Graph cannot tell which app a token was issued
	// to, so azuread-oauth2 always accepts any app's tokens (ADR 6).
	AzureADGraphMeURL string

	// RequireAudienceCheck turns off the backends that cannot check which
	// app a token was issued to (Google without client ids, Facebook
	// without its app, Microsoft always), except those named in
	// AcceptAnyApp: they would accept a token another app obtained (ADR 6).
	// serve sets it on PostgreSQL.
	RequireAudienceCheck bool
	// AcceptAnyApp names the backends (google-oauth2, facebook,
	// azuread-oauth2) allowed to accept tokens issued to any app although
	// RequireAudienceCheck is set: the operator's explicit opt-in
	// (BFF_SOCIAL_ACCEPT_ANY_APP).
	AcceptAnyApp []string
	// Timeout bounds each provider call; zero means DefaultProviderTimeout.
	Timeout time.Duration
	// Observe, when set, is told the result of every verification of a
	// provider token: ok, rejected, unavailable, or cached.
	Observe func(backend, result string)
}

// social is the service's view of the providers.
type social struct {
	providers map[string]Provider
	disabled  map[string]string // backend → why
	// unchecked names the enabled backends that accept tokens issued to any
	// app, with the configuration that would make them check.
	unchecked map[string]string
	// withheld names the backends turned off because they cannot check the
	// audience (RequireAudienceCheck).
	withheld []string
	answers  *answerCache
}

// Why a backend without its audience configuration is off, with what
// turns it on: the 400 of an exchange and the start-up log say it.
const (
	googleWithheld = "BFF_GOOGLE_CLIENT_IDS (the OAuth client ids of the platform's apps) is not set, and without it " +
		"a Google token issued to any app would be accepted; to accept those anyway, add google-oauth2 to BFF_SOCIAL_ACCEPT_ANY_APP"
	facebookWithheld = "BFF_FACEBOOK_APP_ID and BFF_FACEBOOK_APP_SECRET (the platform's Facebook app) are not set, and without them " +
		"a Facebook token issued to any app would be accepted; to accept those anyway, add facebook to BFF_SOCIAL_ACCEPT_ANY_APP"
	azureADWithheld = "Microsoft Graph cannot tell which app a token was issued to, so " +
		"a Microsoft token issued to any app would be accepted; to accept those anyway, add azuread-oauth2 to BFF_SOCIAL_ACCEPT_ANY_APP"
	// azureADUnchecked is the start-up warning's "fix" for azuread-oauth2:
	// there is no configuration that makes it check.
	azureADUnchecked = "none: Microsoft Graph cannot tell which app a token was issued to; " +
		"on PostgreSQL the backend is off unless BFF_SOCIAL_ACCEPT_ANY_APP names azuread-oauth2"
)

func newSocial(cfg SocialConfig, now func() time.Time) (*social, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultProviderTimeout
	}
	client := newProviderClient(timeout)
	s := &social{providers: map[string]Provider{}, disabled: map[string]string{}, unchecked: map[string]string{},
		answers: newAnswerCache(now, cfg.Observe)}

	anyApp := func(backend string) bool {
		return !cfg.RequireAudienceCheck || slices.Contains(splitList(cfg.AcceptAnyApp), backend)
	}
	switch ids := splitList(cfg.GoogleClientIDs); {
	case len(ids) > 0 && cfg.GoogleTokeninfoURL == "":
		s.disabled[bff.ProviderGoogle] = "client ids are configured but no tokeninfo URL"
	case len(ids) > 0:
		s.providers[bff.ProviderGoogle] = &googleTokeninfoProvider{client: client, endpoint: cfg.GoogleTokeninfoURL, clientIDs: ids, now: now}
	case !anyApp(bff.ProviderGoogle):
		s.disabled[bff.ProviderGoogle] = googleWithheld
		s.withheld = append(s.withheld, bff.ProviderGoogle)
	case cfg.GoogleUserinfoURL != "":
		s.providers[bff.ProviderGoogle] = &googleProvider{client: client, endpoint: cfg.GoogleUserinfoURL}
		s.unchecked[bff.ProviderGoogle] = "set BFF_GOOGLE_CLIENT_IDS to the OAuth client ids of the platform's apps"
	default:
		s.disabled[bff.ProviderGoogle] = "no userinfo URL is configured"
	}

	switch {
	case (cfg.FacebookAppID == "") != (cfg.FacebookAppSecret == ""):
		return nil, errors.New("facebook: the app id and the app secret go together: set both or neither")
	case cfg.FacebookAppID != "" && cfg.FacebookDebugTokenURL == "":
		s.disabled[bff.ProviderFacebook] = "an app is configured but no debug_token URL"
	case cfg.FacebookAppID != "":
		s.providers[bff.ProviderFacebook] = &facebookDebugTokenProvider{client: client, endpoint: cfg.FacebookDebugTokenURL,
			appID: cfg.FacebookAppID, appSecret: cfg.FacebookAppSecret, now: now}
	case !anyApp(bff.ProviderFacebook):
		s.disabled[bff.ProviderFacebook] = facebookWithheld
		s.withheld = append(s.withheld, bff.ProviderFacebook)
	case cfg.FacebookMeURL != "":
		fb, err := newFacebookProvider(client, cfg.FacebookMeURL)
		if err != nil {
			return nil, fmt.Errorf("facebook /me URL: %w", err)
		}
		s.providers[bff.ProviderFacebook] = fb
		s.unchecked[bff.ProviderFacebook] = "set BFF_FACEBOOK_APP_ID and BFF_FACEBOOK_APP_SECRET to the platform's Facebook app"
	default:
		s.disabled[bff.ProviderFacebook] = "no /me URL is configured"
	}

	switch auds := splitList(cfg.AppleAudiences); {
	case cfg.AppleJWKSURL == "":
		s.disabled[bff.ProviderApple] = "no key set URL is configured"
	case len(auds) == 0:
		s.disabled[bff.ProviderApple] = "BFF_APPLE_AUDIENCE (the app's bundle ID or Services ID) is not set"
	default:
		s.providers[bff.ProviderApple] = &appleProvider{client: client, jwksURL: cfg.AppleJWKSURL, audiences: auds, now: now}
	}

	switch {
	case !anyApp(bff.ProviderAzureAD):
		s.disabled[bff.ProviderAzureAD] = azureADWithheld
		s.withheld = append(s.withheld, bff.ProviderAzureAD)
	case cfg.AzureADGraphMeURL != "":
		s.providers[bff.ProviderAzureAD] = &azureADProvider{client: client, endpoint: cfg.AzureADGraphMeURL}
		s.unchecked[bff.ProviderAzureAD] = azureADUnchecked
	default:
		s.disabled[bff.ProviderAzureAD] = "no Microsoft Graph /me URL is configured"
	}
	return s, nil
}

// DisabledProviders names the providers that cannot be used, and why: for
// a start-up log line.
func (s *Service) DisabledProviders() map[string]string {
	return maps.Clone(s.social.disabled)
}

// WithheldProviders names the backends that are off because they cannot
// check which app a token was issued to (SocialConfig.RequireAudienceCheck),
// in the order of bff.Providers: start-up warns of each, since turning one
// off changes what an existing deployment accepts. DisabledProviders says
// how to turn it on.
func (s *Service) WithheldProviders() []string {
	return slices.Clone(s.social.withheld)
}

// AudienceCheck tells whether an enabled social backend checks that a
// provider token was issued to the platform's own apps.
type AudienceCheck struct {
	Backend string
	Checked bool
	// Fix names the configuration that turns the check on, when it is off.
	Fix string
}

// AudienceChecks describes every enabled backend, in the order of
// bff.Providers: for a start-up warning and a metric, since a backend
// that does not check accepts tokens that other apps obtained (ADR 6).
func (s *Service) AudienceChecks() []AudienceCheck {
	var out []AudienceCheck
	for _, b := range bff.Providers {
		if _, on := s.social.providers[b]; !on {
			continue
		}
		fix, unchecked := s.social.unchecked[b]
		out = append(out, AudienceCheck{Backend: b, Checked: !unchecked, Fix: fix})
	}
	return out
}

// socialGrant is the grant_type of a social exchange inside the service.
// The token endpoint refuses it (it is not in SupportedGrantTypes); only
// ExchangeSocial sends it to fosite, with the backend and the provider
// token in the request state, so that a social exchange goes through the
// same issuance as every other grant: format selection, storage in one
// transaction, refresh token, response and errors.
const socialGrant = "urn:openedx:mobile-auth-bff:grant-type:social-exchange"

// socialRequest is the part of a social exchange that does not travel in
// the form fosite sees.
type socialRequest struct {
	backend string
	token   string
	// nonce is the raw nonce the app sent (form field nonce, apple-id
	// only) and hasNonce whether it sent one: then the id_token's nonce
	// claim must be its SHA-256 (checkNonce).
	nonce    string
	hasNonce bool
}

// MaxNonceLength bounds the raw nonce of an apple-id exchange.
const MaxNonceLength = 1024

// checkNonce binds an Apple id_token to the request that presents it: the
// app asked Apple to sign the SHA-256 of a random nonce into the token
// (the nonce claim, lowercase hex) and sends the raw nonce along, which
// someone who only captured the token does not have. A token without a
// nonce claim is refused when a nonce is sent: it could be any token.
func checkNonce(raw, claim string) error {
	if claim == "" {
		return rejected("a nonce was sent but the id_token has no nonce claim")
	}
	sum := sha256.Sum256([]byte(raw))
	if subtle.ConstantTimeCompare([]byte(claim), []byte(hex.EncodeToString(sum[:]))) != 1 {
		return rejected("the id_token's nonce is not the SHA-256 of the nonce sent")
	}
	return nil
}

// ExchangeSocial handles POST /oauth2/exchange_access_token/{backend}/
// (SPEC §7) whose form is parsed: the provider token in access_token (the
// id_token for apple-id) becomes this service's tokens for the linked user.
func (s *Service) ExchangeSocial(ctx context.Context, r *http.Request, backend string) (TokenResult, error) {
	if !slices.Contains(bff.Providers, backend) {
		return TokenResult{}, fosite.ErrInvalidRequest.WithHintf("Unknown backend: use %s.", strings.Join(bff.Providers, ", "))
	}
	if why, off := s.social.disabled[backend]; off {
		return TokenResult{}, fosite.ErrInvalidRequest.WithHintf("The %s backend is not enabled on this server: %s.", backend, why)
	}
	token := r.PostForm.Get("access_token")
	switch {
	case token == "":
		return TokenResult{}, fosite.ErrInvalidRequest.WithHint("The access_token parameter is missing (the provider's access token; the id_token for apple-id).")
	case len(token) > MaxTokenLength:
		return TokenResult{}, fosite.ErrInvalidRequest.WithHintf("The access_token is longer than %d bytes.", MaxTokenLength)
	}
	req := &socialRequest{backend: backend, token: token}
	if v := r.PostForm["nonce"]; len(v) > 0 {
		switch nonce := v[0]; {
		case len(v) > 1:
			return TokenResult{}, fosite.ErrInvalidRequest.WithHint("The nonce parameter is repeated.")
		case backend != bff.ProviderApple:
			return TokenResult{}, fosite.ErrInvalidRequest.WithHintf("The nonce parameter is for %s only: the %s token carries no nonce.", bff.ProviderApple, backend)
		case nonce == "":
			return TokenResult{}, fosite.ErrInvalidRequest.WithHint("The nonce parameter is empty (send the raw nonce whose SHA-256 the app gave Sign in with Apple, or no nonce).")
		case len(nonce) > MaxNonceLength:
			return TokenResult{}, fosite.ErrInvalidRequest.WithHintf("The nonce is longer than %d bytes.", MaxNonceLength)
		default:
			req.nonce, req.hasNonce = nonce, true
		}
	}
	// Only what the exchange reads reaches fosite: a grant_type or a
	// username sent along changes nothing.
	form := url.Values{"grant_type": {socialGrant}}
	for _, k := range []string{"client_id", "client_secret", "scope", "token_type", "asymmetric_jwt"} {
		if v, ok := r.PostForm[k]; ok {
			form[k] = v
		}
	}
	ir := r.Clone(ctx)
	ir.Form, ir.PostForm = form, form
	return s.issue(ctx, ir, &requestState{social: req})
}

// socialUser verifies a provider token, and the nonce sent with it, and
// returns the enabled user its provider account is linked to.
func (s *Service) socialUser(ctx context.Context, req *socialRequest) (bff.User, error) {
	backend := req.backend
	pid, _, err := s.social.answers.verify(ctx, backend, s.social.providers[backend], req.token)
	// The nonce is checked here, after the cache, on every request: a
	// cached answer says the token is good, not that this caller holds
	// its nonce.
	if err == nil && req.hasNonce {
		err = checkNonce(req.nonce, pid.Nonce)
	}
	var rej *rejection
	if errors.As(err, &rej) {
		return bff.User{}, fosite.ErrInvalidGrant.WithHintf("The %s token was not accepted: %s.", backend, rej.reason)
	}
	if err != nil {
		return bff.User{}, err
	}
	id, err := s.store.FindIdentity(ctx, backend, pid.Subject)
	if errors.Is(err, bff.ErrNotFound) {
		return bff.User{}, fosite.ErrInvalidGrant.WithHintf("This %s account is not linked to a user of the platform.", backend)
	}
	if err != nil {
		return bff.User{}, err
	}
	u, err := s.store.GetUser(ctx, id.UserID)
	if errors.Is(err, bff.ErrNotFound) {
		return bff.User{}, fosite.ErrInvalidGrant.WithHintf("This %s account is not linked to a user of the platform.", backend)
	}
	if err != nil {
		return bff.User{}, err
	}
	if u.Disabled {
		return bff.User{}, bff.ErrAccountDisabled
	}
	return u, nil
}

// socialExchangeHandler is the fosite grant handler of social exchanges.
type socialExchangeHandler struct {
	*oauth2.HandleHelper
	svc     *Service
	storage oauth2.RefreshTokenStorage
	refresh oauth2.RefreshTokenStrategy
	config  *fosite.Config
}

var _ fosite.TokenEndpointHandler = (*socialExchangeHandler)(nil)

func (s *Service) socialExchangeFactory(config fosite.Configurator, storage, strategy any) any {
	fcfg := config.(*fosite.Config)
	return &socialExchangeHandler{
		HandleHelper: &oauth2.HandleHelper{
			AccessTokenStrategy: strategy.(oauth2.AccessTokenStrategy),
			AccessTokenStorage:  storage.(oauth2.AccessTokenStorage),
			Config:              fcfg,
		},
		svc: s, storage: storage.(oauth2.RefreshTokenStorage), refresh: strategy.(oauth2.RefreshTokenStrategy), config: fcfg,
	}
}

func (h *socialExchangeHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(socialGrant)
}

func (h *socialExchangeHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

// HandleTokenEndpointRequest checks the client, then the provider token,
// the identity and the account. The client comes first, so that an
// unknown or confidential client cannot make the service call a provider.
func (h *socialExchangeHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	req := stateOf(ctx).social
	if req == nil { // not from ExchangeSocial
		return fosite.ErrUnsupportedGrantType
	}
	client := clientOf(r)
	if !client.Public {
		return fosite.ErrInvalidClient.WithHint("Only public clients (the mobile apps) may exchange a provider token.")
	}
	// A social exchange signs a user in, as a password grant does: only
	// clients trusted with the password grant may do it (ADR 6).
	if !client.HasGrant(bff.GrantPassword) {
		return fosite.ErrUnauthorizedClient.WithHint("The client may not sign users in: it does not hold the password grant.")
	}
	for _, sc := range r.GetRequestedScopes() {
		if !client.HasScope(sc) {
			return fosite.ErrInvalidScope.WithHintf("The client is not allowed to request scope '%s'.", sc)
		}
	}
	authTime := time.Now().UTC()
	user, err := h.svc.socialUser(ctx, req)
	if err != nil {
		return err
	}
	delete(r.GetRequestForm(), "access_token")
	sess := r.GetSession().(*Session)
	sess.GrantType = bff.GrantSocialExchange
	sess.AuthTime = authTime
	sess.setUser(user)
	now := time.Now().UTC()
	sess.SetExpiresAt(fosite.AccessToken, now.Add(h.config.GetAccessTokenLifespan(ctx)).Round(time.Second))
	sess.SetExpiresAt(fosite.RefreshToken, now.Add(h.config.GetRefreshTokenLifespan(ctx)).Round(time.Second))
	return nil
}

// PopulateTokenEndpointResponse issues the access token and, as for the
// password grant, a refresh token.
func (h *socialExchangeHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	accessSig, err := h.IssueAccessToken(ctx, h.config.GetAccessTokenLifespan(ctx), r, resp)
	if err != nil {
		return err
	}
	refresh, refreshSig, err := h.refresh.GenerateRefreshToken(ctx, r)
	if err != nil {
		return err
	}
	if err := h.storage.CreateRefreshTokenSession(ctx, refreshSig, accessSig, r.Sanitize([]string{})); err != nil {
		return err
	}
	resp.SetExtra("refresh_token", refresh)
	return nil
}
