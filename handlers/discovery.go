package handlers

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/openedx/mobile-auth-bff/oauth"
)

// handleJWKS publishes the verification keys. Caches may keep them five
// minutes: the next key is published a whole rotation ahead of use.
func handleJWKS(keys *oauth.KeyManager) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.JSON(http.StatusOK, keys.JWKS())
	}
}

// Metadata is the RFC 8414 authorization server metadata.
type Metadata struct {
	Issuer                           string   `json:"issuer"`
	AuthorizationEndpoint            string   `json:"authorization_endpoint"`
	TokenEndpoint                    string   `json:"token_endpoint"`
	IntrospectionEndpoint            string   `json:"introspection_endpoint"`
	RevocationEndpoint               string   `json:"revocation_endpoint"`
	JWKSURI                          string   `json:"jwks_uri"`
	GrantTypesSupported              []string `json:"grant_types_supported"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	TokenEndpointAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
	AccessTokenSigningAlgValues      []string `json:"access_token_signing_alg_values_supported"`
	CodeChallengeMethods             []string `json:"code_challenge_methods_supported"`
	ResponseModesSupported           []string `json:"response_modes_supported"`
	AuthorizationResponseISS         bool     `json:"authorization_response_iss_parameter_supported"`
	DPoPSigningAlgValues             []string `json:"dpop_signing_alg_values_supported"`
	ServiceDocumentation             string   `json:"service_documentation,omitempty"`
}

func newMetadata(issuer string) Metadata {
	base := strings.TrimRight(issuer, "/")
	return Metadata{
		Issuer:                           issuer,
		AuthorizationEndpoint:            base + "/oauth2/authorize",
		TokenEndpoint:                    base + "/oauth2/access_token",
		IntrospectionEndpoint:            base + "/oauth2/introspect",
		RevocationEndpoint:               base + "/oauth2/revoke",
		JWKSURI:                          base + "/.well-known/jwks.json",
		GrantTypesSupported:              slices.Clone(oauth.SupportedGrantTypes),
		ResponseTypesSupported:           []string{"code"},
		ResponseModesSupported:           []string{"query"},
		CodeChallengeMethods:             []string{"S256"},
		AuthorizationResponseISS:         true,
		TokenEndpointAuthMethods:         []string{"client_secret_basic", "client_secret_post", "none"},
		IntrospectionEndpointAuthMethods: []string{"client_secret_basic", "client_secret_post"},
		RevocationEndpointAuthMethods:    []string{"client_secret_basic", "client_secret_post", "none"},
		AccessTokenSigningAlgValues:      algNames(oauth.Algorithms),
		DPoPSigningAlgValues:             algNames(oauth.DPoPAlgorithms),
	}
}

// algNames spells algorithms as the metadata and the DPoP challenge list them.
func algNames(algs []jose.SignatureAlgorithm) []string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return names
}

func handleMetadata(issuer string) echo.HandlerFunc {
	md := newMetadata(issuer)
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		return c.JSON(http.StatusOK, md)
	}
}

// metadataPath is the RFC 8414 well-known location of the metadata.
const metadataPath = "/.well-known/oauth-authorization-server"

// handleIssuerMetadata serves the metadata at the RFC 8414 §3.1 location of
// an issuer with a path, where the path follows the well-known segment: the
// metadata of https://example.org/auth is at
// https://example.org/.well-known/oauth-authorization-server/auth (with or
// without a trailing slash, like every route). Any other path below the
// segment, and every one when the issuer has no path, is the 404 of an
// unknown route.
func handleIssuerMetadata(issuer string) echo.HandlerFunc {
	metadata := handleMetadata(issuer)
	var want string
	if u, err := url.Parse(issuer); err == nil && strings.Trim(u.EscapedPath(), "/") != "" {
		want = metadataPath + strings.TrimRight(u.EscapedPath(), "/")
	}
	return func(c echo.Context) error {
		if want == "" || strings.TrimSuffix(c.Request().URL.EscapedPath(), "/") != want {
			return echo.ErrNotFound
		}
		return metadata(c)
	}
}

// handleHealthz says the process is up.
func handleHealthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz says whether the store answers within two seconds.
func handleReadyz(p Pinger) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	}
}
