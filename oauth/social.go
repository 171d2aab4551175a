package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/social"
)

// DisabledProviders names the providers that cannot be used, and why: for
// a start-up log line.
func (s *Service) DisabledProviders() map[string]string {
	return s.social.Disabled()
}

// WithheldProviders names the backends that are off because they cannot
// check which app a token was issued to (social.Config.RequireAudienceCheck),
// in the order of bff.Providers: start-up warns of each, since turning one
// off changes what an existing deployment accepts. DisabledProviders says
// how to turn it on.
func (s *Service) WithheldProviders() []string {
	return s.social.Withheld()
}

// AudienceChecks describes every enabled backend, in the order of
// bff.Providers: for a start-up warning and a metric, since a backend
// that does not check accepts tokens that other apps obtained (ADR 6).
func (s *Service) AudienceChecks() []social.AudienceCheck {
	return s.social.AudienceChecks()
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
	// claim must be its SHA-256 (social.CheckNonce).
	nonce    string
	hasNonce bool
}

// MaxNonceLength bounds the raw nonce of an apple-id exchange.
const MaxNonceLength = 1024

// ExchangeSocial handles POST /oauth2/exchange_access_token/{backend}/
// (SPEC §7) whose form is parsed: the provider token in access_token (the
// id_token for apple-id) becomes this service's tokens for the linked user.
func (s *Service) ExchangeSocial(ctx context.Context, r *http.Request, backend string) (TokenResult, error) {
	if !slices.Contains(bff.Providers, backend) {
		return TokenResult{}, fosite.ErrInvalidRequest.WithHintf("Unknown backend: use %s.", strings.Join(bff.Providers, ", "))
	}
	if why, off := s.social.Off(backend); off {
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
	pid, err := s.social.Verify(ctx, backend, req.token)
	// The nonce is checked here, after the cache, on every request: a
	// cached answer says the token is good, not that this caller holds
	// its nonce.
	if err == nil && req.hasNonce {
		err = social.CheckNonce(req.nonce, pid.Nonce)
	}
	var rej *social.Rejection
	if errors.As(err, &rej) {
		return bff.User{}, fosite.ErrInvalidGrant.WithHintf("The %s token was not accepted: %s.", backend, rej.Reason)
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
