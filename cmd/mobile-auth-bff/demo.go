package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
)

// Demo data seeded by serve --demo.
const (
	demoMobileClient  = "mobile-demo"
	demoBackendClient = "backend-demo"
	demoUsername      = "demo"
	demoPassword      = "demo-password"
)

// seedDemo creates the demo clients and user unless they exist, and prints
// how to use them. The demo password is public: never run --demo against a
// database that real users depend on.
func seedDemo(ctx context.Context, a *app, w io.Writer) error {
	enabled := true
	_, err := a.Admin.CreateClient(ctx, admin.NewClient{
		ID: demoMobileClient, Name: "Demo mobile app", Public: true,
		GrantTypes: []string{bff.GrantPassword, bff.GrantRefreshToken, bff.GrantTokenExchange},
		Scopes:     []string{"read", "write", "email", "profile", "payments"},
		TokenType:  bff.FormatBearer, JWTEnabled: &enabled,
	})
	if err != nil && !errors.Is(err, bff.ErrConflict) {
		return err
	}
	backend, err := a.Admin.CreateClient(ctx, admin.NewClient{
		ID: demoBackendClient, Name: "Demo backend", GrantTypes: []string{bff.GrantClientCredentials},
		Scopes: []string{"read"}, TokenType: bff.FormatJWT, JWTEnabled: &enabled,
	})
	secret := backend.Secret
	if errors.Is(err, bff.ErrConflict) {
		secret = "(exists already; its secret was shown when it was created)"
	} else if err != nil {
		return err
	}
	_, err = a.Admin.CreateUser(ctx, admin.NewUser{
		Username: demoUsername, Email: "demo@example.com", Name: "Demo User", Password: demoPassword,
	})
	if err != nil && !errors.Is(err, bff.ErrConflict) {
		return err
	}

	base := a.cfg.Issuer
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== mobile-auth-bff demo data ===\n")
	fmt.Fprintf(&b, "mobile client (public):       client_id=%s\n", demoMobileClient)
	fmt.Fprintf(&b, "backend client (confidential): client_id=%s client_secret=%s\n", demoBackendClient, secret)
	fmt.Fprintf(&b, "user:                          username=%s password=%s\n\n", demoUsername, demoPassword)
	fmt.Fprintf(&b, "# Log in and get an opaque Bearer token:\n")
	fmt.Fprintf(&b, "curl -s %s/oauth2/access_token -d grant_type=password -d client_id=%s -d username=%s -d password=%s\n\n",
		base, demoMobileClient, demoUsername, demoPassword)
	fmt.Fprintf(&b, "# The same, as a JWT:\n")
	fmt.Fprintf(&b, "curl -s %s/oauth2/access_token -d grant_type=password -d client_id=%s -d username=%s -d password=%s -d token_type=jwt\n\n",
		base, demoMobileClient, demoUsername, demoPassword)
	fmt.Fprintf(&b, "# Refresh (rotates the refresh token):\n")
	fmt.Fprintf(&b, "curl -s %s/oauth2/access_token -d grant_type=refresh_token -d client_id=%s -d refresh_token=REFRESH_TOKEN\n\n",
		base, demoMobileClient)
	fmt.Fprintf(&b, "# Exchange an opaque access token for a JWT, without signing in again (RFC 8693):\n")
	fmt.Fprintf(&b, "curl -s %s/oauth2/access_token -d grant_type=%s -d client_id=%s -d subject_token=ACCESS_TOKEN -d subject_token_type=urn:ietf:params:oauth:token-type:access_token\n\n",
		base, bff.GrantTokenExchange, demoMobileClient)
	fmt.Fprintf(&b, "# Introspect a token as the backend:\n")
	if backend.Secret != "" {
		fmt.Fprintf(&b, "curl -s %s/oauth2/introspect -u %s:%s -d token=ACCESS_TOKEN\n\n", base, demoBackendClient, backend.Secret)
	} else {
		fmt.Fprintf(&b, "curl -s %s/oauth2/introspect -u %s:CLIENT_SECRET -d token=ACCESS_TOKEN\n\n", base, demoBackendClient)
	}
	if a.Broker != nil {
		fmt.Fprintf(&b, "# The payment broker (an opaque or JWT access token with the payments scope):\n")
		fmt.Fprintf(&b, "curl -s %s/api/ecommerce/api/v2/orders/ -H \"Authorization: Bearer ACCESS_TOKEN\"\n\n", base)
	}
	fmt.Fprintf(&b, "# Verification keys:\n")
	fmt.Fprintf(&b, "curl -s %s/.well-known/jwks.json\n\n", base)
	admin := "BFF_ADMIN_TOKEN"
	if a.cfg.AdminTokenGenerated {
		admin = a.cfg.AdminToken
		fmt.Fprintf(&b, "# The admin API (a token made up for this run; set BFF_ADMIN_TOKEN to choose it):\n")
		fmt.Fprintf(&b, "curl -s %s/admin/clients -H \"Authorization: Bearer %s\"\n\n", "http://"+a.cfg.AdminAddr, admin)
	}
	fmt.Fprintf(&b, "# The migration dashboard (sign in with %s): http://%s/admin/dashboard\n", admin, a.cfg.AdminAddr)
	fmt.Fprintf(&b, "=================================\n\n")
	_, err = io.WriteString(w, b.String())
	return err
}
