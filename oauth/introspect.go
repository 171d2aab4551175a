package oauth

import (
	"context"
	"errors"

	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// Introspection is an RFC 7662 response. Inactive tokens say nothing else.
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	GrantType string   `json:"grant_type,omitempty"`
	// Confirmation is the token's DPoP binding (RFC 9449 §6.2): a
	// resource server that introspects checks the request's proof against
	// it.
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// authenticateCaller authenticates the client calling introspection or
// revocation, from a parsed form.
func (s *Service) authenticateCaller(ctx context.Context, r *http.Request) (bff.Client, error) {
	fc, err := s.authenticateClient(ctx, r, r.PostForm)
	if err != nil {
		return bff.Client{}, err
	}
	return fc.(fositeClient).Client, nil
}

// Introspect answers an introspection request (confidential clients only):
// access tokens of both formats, and refresh tokens when the request says
// token_type_hint=refresh_token.
func (s *Service) Introspect(ctx context.Context, r *http.Request) (Introspection, error) {
	caller, err := s.authenticateCaller(ctx, r)
	if err != nil {
		return Introspection{}, err
	}
	if caller.Public {
		return Introspection{}, fosite.ErrInvalidClient.WithHint("Introspection is for confidential clients.")
	}
	token := r.PostForm.Get("token")
	if token == "" {
		return Introspection{}, fosite.ErrInvalidRequest.WithHint("The token parameter is missing.")
	}
	// A refresh token is answered only when asked for by name: without
	// token_type_hint=refresh_token (or with any other hint) the question is
	// "is this a usable access token?", and a refresh token is not one, so
	// a backend that checks only "active" never accepts it as access. A
	// wrong hint is still tried as an access token (RFC 7662 §2.1).
	if r.PostForm.Get("token_type_hint") == "refresh_token" && !IsJWT(token) {
		if sig, ok := s.refresh.Signature(ctx, token); ok {
			return s.introspectRefresh(ctx, sig)
		}
	}
	// The resource server asking is not the token's holder: a bound token
	// is described with its binding, for the caller to check.
	p, err := s.validator.Inspect(ctx, token)
	switch {
	case err == nil:
		return s.describe(p), nil
	case bff.IsTokenVerdict(err):
		return Introspection{Active: false}, nil
	}
	return Introspection{}, err
}

// describe answers for an active access token. Its token_type is "Bearer"
// in both formats: a JWT access token is a bearer token (RFC 9068), and
// "JWT" is only edX's label in a token response; a DPoP-bound token is
// "DPoP", with its cnf (RFC 9449 §6.2).
func (s *Service) describe(p bff.Principal) Introspection {
	in := Introspection{
		Active: true, Scope: strings.Join(p.Scopes, " "), ClientID: p.Client.ID,
		TokenType: bff.LabelBearer, Exp: p.ExpiresAt.Unix(), Iat: p.IssuedAt.Unix(),
		Sub: bff.ClientSubject(p.Client.ID), Aud: []string{s.cfg.Audience}, Iss: s.cfg.Issuer, JTI: p.JTI, GrantType: p.GrantType,
	}
	if p.JKT != "" {
		in.TokenType, in.Confirmation = TokenTypeDPoP, &Confirmation{JKT: p.JKT}
	}
	if p.User != nil {
		in.Sub, in.Username = p.User.Subject(), p.User.Username
	}
	return in
}

// introspectRefresh answers for the refresh token of signature sig; its
// token_type is "refresh_token".
func (s *Service) introspectRefresh(ctx context.Context, sig string) (Introspection, error) {
	t, err := s.store.GetRefreshToken(ctx, sig)
	if errors.Is(err, bff.ErrNotFound) {
		return Introspection{Active: false}, nil
	}
	if err != nil {
		return Introspection{}, err
	}
	// Active as long as a refresh with it would be allowed (the policy's
	// verdict, by the service's clock).
	if !s.refresh.Judge(t).Usable() {
		return Introspection{Active: false}, nil
	}
	// What the token would grant now: its scopes the client still has, as
	// a refresh would (ADR 0022).
	client, err := s.validator.client(ctx, t.ClientID)
	if bff.IsTokenVerdict(err) {
		return Introspection{Active: false}, nil
	}
	if err != nil {
		return Introspection{}, err
	}
	in := Introspection{
		Active: true, Scope: strings.Join(currentScopes(t.Scopes, client), " "), ClientID: t.ClientID, TokenType: "refresh_token",
		Exp: t.ExpiresAt.Unix(), Iat: t.IssuedAt.Unix(), Sub: t.ClientID, Iss: s.cfg.Issuer, GrantType: t.GrantType,
	}
	if t.JKT != "" {
		in.Confirmation = &Confirmation{JKT: t.JKT}
	}
	if t.UserID != 0 {
		u, err := s.validator.user(ctx, t.UserID)
		if bff.IsTokenVerdict(err) {
			return Introspection{Active: false}, nil
		}
		if err != nil {
			return Introspection{}, err
		}
		in.Sub, in.Username = u.Subject(), u.Username
	}
	return in, nil
}

// Revoke answers an RFC 7009 revocation request. Revoking an access token
// revokes that token (a JWT's jti is denied until it expires); revoking a
// refresh token revokes its whole family. Unknown tokens are not an error.
func (s *Service) Revoke(ctx context.Context, r *http.Request) error {
	caller, err := s.authenticateCaller(ctx, r)
	if err != nil {
		return err
	}
	token := r.PostForm.Get("token")
	if token == "" {
		return fosite.ErrInvalidRequest.WithHint("The token parameter is missing.")
	}
	if len(token) > MaxTokenLength {
		return nil
	}
	now := time.Now().UTC()
	if IsJWT(token) {
		claims, err := s.validator.VerifyJWT(ctx, token)
		if err != nil {
			if bff.IsTokenVerdict(err) {
				return nil // not ours: nothing to revoke
			}
			return err
		}
		if claims.ClientID != caller.ID {
			return fosite.ErrUnauthorizedClient.WithHint("The token was issued to another client.")
		}
		ops := []store.TokenOp{store.RevokeJTI{JTI: claims.JTI, ExpiresAt: time.Unix(claims.Expiry, 0)},
			store.EndSession{ID: SessionID(s.sessionCookie(claims.JTI, ""))}}
		if t, err := s.store.GetAccessTokenByJTI(ctx, claims.JTI); err == nil {
			ops = append(ops, store.RevokeAccessToken{Signature: t.Signature, At: now})
		} else if !errors.Is(err, bff.ErrNotFound) {
			return err
		}
		return s.store.ApplyTokenOps(ctx, ops)
	}

	if sig, ok := s.validator.opaqueSignature(ctx, token, opaqueAccessPrefix); ok {
		t, err := s.store.GetAccessToken(ctx, sig)
		return s.revokeOwned(ctx, caller, t.ClientID, err, store.RevokeAccessToken{Signature: sig, At: now},
			store.EndSession{ID: SessionID(s.sessionCookie("", token))})
	}
	if sig, ok := s.refresh.Signature(ctx, token); ok {
		t, err := s.store.GetRefreshToken(ctx, sig)
		return s.revokeOwned(ctx, caller, t.ClientID, err, store.RevokeFamily{FamilyID: t.FamilyID, At: now})
	}
	return nil
}

// revokeOwned applies a revocation to a token that the lookup found (lookupErr
// nil) and that belongs to the caller. An unknown token is not an error.
func (s *Service) revokeOwned(ctx context.Context, caller bff.Client, owner string, lookupErr error, ops ...store.TokenOp) error {
	if errors.Is(lookupErr, bff.ErrNotFound) {
		return nil
	}
	if lookupErr != nil {
		return lookupErr
	}
	if owner != caller.ID {
		return fosite.ErrUnauthorizedClient.WithHint("The token was issued to another client.")
	}
	return s.store.ApplyTokenOps(ctx, ops)
}
