package oauth

import (
	"slices"
	"strings"

	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
)

// currentScopes is what a token may still do: the scopes it was issued
// with that its client still has. An operator who takes a scope from a
// client (say payments, in an incident) takes it from every live token.
func currentScopes(granted []string, client bff.Client) []string {
	out := make([]string, 0, len(granted))
	for _, s := range granted {
		if client.HasScope(s) {
			out = append(out, s)
		}
	}
	return out
}

// refreshScopes decides the scopes of a refresh (RFC 6749 §6, ADR 0022):
// family is what the presented refresh token carries, already cut to the
// client's current scopes (currentScopes, in GetRefreshTokenSession), and
// requested the request's scope parameter. Without it the new access token
// gets all of family; with it, exactly the requested scopes, each of which
// must be in family (narrower, never wider: invalid_scope otherwise). The
// new refresh token keeps family either way.
func refreshScopes(family []string, requested string) ([]string, error) {
	want := strings.Fields(requested)
	if len(want) == 0 {
		return family, nil
	}
	out := make([]string, 0, len(want))
	for _, s := range want {
		if !slices.Contains(family, s) {
			return nil, fosite.ErrInvalidScope.WithHintf("The scope '%s' is not one the refresh token grants (%s); a refresh may only narrow its scopes.",
				s, strings.Join(family, " "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}
