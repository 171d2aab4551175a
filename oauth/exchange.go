package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// Token type identifiers of RFC 8693 §3.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// errInvalidTarget is RFC 8693's answer to an audience or resource the
// server does not issue tokens for.
var errInvalidTarget = &fosite.RFC6749Error{
	ErrorField:       "invalid_target",
	DescriptionField: "The requested audience or resource is not one this server issues tokens for.",
	CodeField:        http.StatusBadRequest,
}

// tokenExchangeHandler is the RFC 8693 grant of SPEC §5: an app holding a
// valid opaque access token gets a JWT for the same user, scopes and
// original grant without signing in again — the Bearer→JWT migration path
// for apps that are already signed in (ADR 8).
//
// The JWT joins the subject token's family (revoking the family revokes
// it), keeps the family's grant_type, lives no longer than the subject
// token, and comes without a refresh token: the app keeps the refresh
// token it has. The subject token stays valid unless the request says
// revoke_subject_token=true, in which case it is revoked in the same
// transaction that stores the JWT.
type tokenExchangeHandler struct {
	validator *Validator
	issuer    *oauth2.HandleHelper
	store     *fositeStore
	audience  string
	ttl       time.Duration
	now       func() time.Time
}

var _ fosite.TokenEndpointHandler = (*tokenExchangeHandler)(nil)

func (h *tokenExchangeHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *tokenExchangeHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(bff.GrantTokenExchange)
}

// HandleTokenEndpointRequest checks the request and the subject token, and
// prepares the session of the JWT.
func (h *tokenExchangeHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	client := clientOf(r)
	if !client.HasGrant(bff.GrantTokenExchange) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the token exchange grant.")
	}
	form := r.GetRequestForm()
	subject, err := h.checkParams(form)
	if err != nil {
		return err
	}
	if !client.Restricted && !client.JWTEnabled {
		// The kill switch: JWTs are stopped for this client. The app keeps
		// its access token, which this refusal never revokes.
		return fosite.ErrInvalidRequest.WithHint("JWTs are switched off for this client (jwt_enabled=false); keep using the access token you have.")
	}
	if IsJWT(subject) {
		return fosite.ErrInvalidGrant.WithHint("The subject_token is already a JWT; only opaque access tokens are exchanged.")
	}

	// A DPoP-bound subject_token is exchanged only with a proof by its key
	// on this request (the new token is bound to that key too).
	p, err := h.validator.Validate(ctx, Credential{Scheme: SchemeBearer, Token: subject, Holder: stateOf(ctx).proof.JKT})
	switch {
	case err == nil:
	case errors.Is(err, bff.ErrDPoPBound):
		return fmt.Errorf("%w: the subject_token is DPoP-bound; send a DPoP proof by its key with this request", bff.ErrInvalidDPoPProof)
	case errors.Is(err, bff.ErrAccountDisabled):
		return err // 403 account_disabled, as on every grant
	case errors.Is(err, bff.ErrTokenExpired):
		return fosite.ErrInvalidGrant.WithHint("The subject_token has expired.")
	case errors.Is(err, bff.ErrTokenRevoked):
		return fosite.ErrInvalidGrant.WithHint("The subject_token has been revoked.")
	case bff.IsTokenVerdict(err):
		return fosite.ErrInvalidGrant.WithHint("The subject_token is not a valid access token of this server.")
	default:
		return err // the store failed: 503
	}
	if p.Client.ID != client.ID {
		return fosite.ErrInvalidGrant.WithHint("The subject_token was issued to another client.")
	}

	// The same scopes, or fewer when the request names them (RFC 8693
	// §2.1); all of them must still be the client's.
	scopes := p.Scopes
	if requested := r.GetRequestedScopes(); len(requested) > 0 {
		for _, sc := range requested {
			if !p.HasScope(sc) {
				return fosite.ErrInvalidScope.WithHintf("The subject_token does not carry scope %q.", sc)
			}
		}
		scopes = requested
	}
	for _, sc := range scopes {
		if !client.HasScope(sc) {
			return fosite.ErrInvalidScope.WithHintf("The client is no longer allowed scope %q.", sc)
		}
		r.GrantScope(sc)
	}

	now := h.now().UTC()
	exp := now.Add(h.ttl)
	if p.ExpiresAt.Before(exp) {
		exp = p.ExpiresAt
	}
	exp = exp.Truncate(time.Second)
	if !exp.After(now) {
		return fosite.ErrInvalidGrant.WithHint("The subject_token expires too soon to be exchanged.")
	}
	sess, ok := r.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected session type %T", r.GetSession())
	}
	sess.GrantType = p.GrantType
	if p.User != nil {
		sess.setUser(*p.User)
	}
	sess.Format = bff.FormatJWT
	sess.SetExpiresAt(fosite.AccessToken, exp)
	r.SetID(p.FamilyID) // the JWT joins the subject token's family
	return nil
}

// checkParams validates the RFC 8693 parameters and returns the subject token.
func (h *tokenExchangeHandler) checkParams(form url.Values) (string, error) {
	subject := form.Get("subject_token")
	if subject == "" {
		return "", fosite.ErrInvalidRequest.WithHint("The subject_token parameter is missing.")
	}
	switch t := form.Get("subject_token_type"); t {
	case TokenTypeAccessToken:
	case "":
		return "", fosite.ErrInvalidRequest.WithHint("The subject_token_type parameter is missing.")
	default:
		return "", fosite.ErrInvalidRequest.WithHintf("subject_token_type must be %s.", TokenTypeAccessToken)
	}
	switch form.Get("requested_token_type") {
	case "", TokenTypeJWT:
	default:
		return "", fosite.ErrInvalidRequest.WithHintf("requested_token_type must be %s: this exchange issues JWTs.", TokenTypeJWT)
	}
	if form.Get("actor_token") != "" || form.Get("actor_token_type") != "" {
		return "", fosite.ErrInvalidRequest.WithHint("Delegation (actor_token) is not supported.")
	}
	for _, target := range append(fosite.GetAudiences(form), form["resource"]...) {
		if target != h.audience {
			return "", errInvalidTarget
		}
	}
	if _, err := revokeSubject(form); err != nil {
		return "", err
	}
	return subject, nil
}

// revokeSubject reads revoke_subject_token: absent or false keeps the
// subject token valid.
func revokeSubject(form url.Values) (bool, error) {
	switch form.Get("revoke_subject_token") {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, fosite.ErrInvalidRequest.WithHint("revoke_subject_token must be true or false.")
}

// PopulateTokenEndpointResponse issues the JWT and, when asked, revokes the
// subject token in the same batch of token writes.
func (h *tokenExchangeHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if _, err := h.issuer.IssueAccessToken(ctx, h.ttl, r, resp); err != nil {
		return err
	}
	resp.SetExtra("issued_token_type", TokenTypeJWT)
	form := r.GetRequestForm()
	if revoke, _ := revokeSubject(form); revoke {
		sig, ok := h.validator.opaqueSignature(ctx, form.Get("subject_token"), opaqueAccessPrefix)
		if !ok {
			return fosite.ErrServerError.WithDebug("the subject token checked a moment ago no longer parses")
		}
		return h.store.apply(ctx, store.RevokeAccessToken{Signature: sig, At: h.now().UTC()})
	}
	return nil
}
