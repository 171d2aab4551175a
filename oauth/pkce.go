package oauth

import (
	"context"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/pkce"
)

// PKCE is required per client (bff.Client.PKCERequired), and fosite's PKCE
// handler asks its config with nothing but a context. The authorize
// endpoint puts the client's rule into the context (withPKCERequired);
// fosite's own switches stay off. At the token endpoint the rule needs no
// client: a code issued with a challenge is always checked against the
// verifier, a verifier for a code issued without one is refused, and a
// code without one could only be issued to a client that may omit it
// (ADR 23).
type pkceRequiredKey struct{}

func withPKCERequired(ctx context.Context, required bool) context.Context {
	return context.WithValue(ctx, pkceRequiredKey{}, required)
}

// pkceConfig is fosite's config with the per-request PKCE rule.
type pkceConfig struct{ *fosite.Config }

// GetEnforcePKCE is true at the authorize endpoint for a client with
// pkce_required, and wherever the rule was not set (fail closed), except
// at the token endpoint, which sets it false (see above).
func (c pkceConfig) GetEnforcePKCE(ctx context.Context) bool {
	required, ok := ctx.Value(pkceRequiredKey{}).(bool)
	return !ok || required
}

// GetEnforcePKCEForPublicClients is off: the per-client rule decides.
func (pkceConfig) GetEnforcePKCEForPublicClients(context.Context) bool { return false }

// GetEnablePKCEPlainChallengeMethod is off: only S256 (SPEC §14).
func (pkceConfig) GetEnablePKCEPlainChallengeMethod(context.Context) bool { return false }

func pkceFactory(config fosite.Configurator, storage, strategy any) any {
	return &pkce.Handler{
		AuthorizeCodeStrategy: strategy.(oauth2.AuthorizeCodeStrategy),
		Storage:               storage.(pkce.PKCERequestStorage),
		Config:                pkceConfig{config.(*fosite.Config)},
	}
}
