package handlers

import (
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// publicRoutes lists every route of the public listener (BFF_ADDR).
// openapi.yaml describes the same routes; a test keeps them in step.
//
// Every route answers with and without a trailing slash (withSlash): the
// Android app calls edX's paths with it, the iOS app mostly without, and a
// redirect would lose a POST's body in some clients.
func publicRoutes(e *echo.Echo, d Deps) {
	token := handleToken(d.OAuth, d.Metrics)
	withSlash(e.POST, "/oauth2/access_token", token)
	withSlash(e.POST, "/oauth2/token", token)
	withSlash(e.POST, "/oauth2/introspect", handleIntrospect(d.OAuth))
	revoke := handleRevoke(d.OAuth)
	withSlash(e.POST, "/oauth2/revoke", revoke)
	withSlash(e.POST, "/oauth2/revoke_token", revoke) // edX's path, where the apps log out
	withSlash(e.POST, "/oauth2/exchange_access_token/:backend", handleSocialExchange(d.OAuth, d.Metrics))

	withSlash(e.POST, "/oauth2/login", handleLogin(d.OAuth, d.CookieSecure, d.Metrics))
	withSlash(e.POST, "/oauth2/logout", handleLogout(d.OAuth, d.CookieSecure))

	// Browser sign-in (SPEC §14): the sign-in page and its form.
	signIn := &authorizeFlow{svc: d.OAuth, secure: d.CookieSecure, m: d.Metrics, log: d.Log}
	withSlash(e.GET, "/oauth2/authorize", handleAuthorize(signIn))
	withSlash(e.POST, "/oauth2/authorize", handleAuthorizeSubmit(signIn))

	withSlash(e.GET, "/api/me", handleMe(d.Validator, d.Metrics))
	withSlash(e.GET, "/api/mobile/v0.5/my_user_info", handleMyUserInfo(d.Validator, d.Metrics))
	// Every method, so that whatever the allowlist does not name is a 404
	// like any other path it does not name. The payment service's paths
	// keep their own trailing slashes.
	e.Any(brokerPrefix+"/*", handleBroker(d.Broker, d.Validator, d.Metrics))

	withSlash(e.GET, "/.well-known/jwks.json", handleJWKS(d.Keys))
	withSlash(e.GET, "/.well-known/oauth-authorization-server", handleMetadata(d.Issuer))
	e.GET("/.well-known/oauth-authorization-server/*", handleIssuerMetadata(d.Issuer)) // RFC 8414 §3.1: an issuer's path goes here

	withSlash(e.GET, "/healthz", handleHealthz())
	withSlash(e.GET, "/readyz", handleReadyz(d.Store))
}

// withSlash registers h at path and at path + "/".
func withSlash(add func(string, echo.HandlerFunc, ...echo.MiddlewareFunc) *echo.Route, path string, h echo.HandlerFunc) {
	add(path, h)
	add(path+"/", h)
}

// adminRoutes lists every route of the admin listener (BFF_ADMIN_ADDR).
func adminRoutes(e *echo.Echo, d Deps) {
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.Metrics.Registry, promhttp.HandlerOpts{})))

	// Every /admin route requires the admin token or a dashboard session,
	// except the sign-in page that opens one. (Per route, not as group
	// middleware: Echo would add catch-all routes that turn 405s into 404s.)
	sessions := newAdminSessions(d.AdminToken, d.AdminSessionKey, d.AdminSessions, d.CookieSecure)
	auth, page := adminAuth(sessions), adminPage(sessions)
	a := e.Group("/admin")
	a.POST("/clients", handleCreateClient(d.Admin), auth)
	a.GET("/clients", handleListClients(d.Admin), auth)
	a.GET("/clients/:id", handleGetClient(d.Admin), auth)
	a.PATCH("/clients/:id", handleUpdateClient(d.Admin), auth)
	a.DELETE("/clients/:id", handleDeleteClient(d.Admin), auth)
	a.POST("/clients/:id/secret", handleRotateClientSecret(d.Admin), auth)

	a.POST("/users", handleCreateUser(d.Admin), auth)
	a.GET("/users/:id", handleGetUser(d.Admin), auth)
	a.POST("/users/:id/disable", handleDisableUser(d.Admin), auth)
	a.POST("/users/:id/enable", handleEnableUser(d.Admin), auth)
	a.POST("/users/:id/password", handleSetPassword(d.Admin), auth)
	a.POST("/users/:id/identities", handleLinkIdentity(d.Admin), auth)
	a.GET("/users/:id/identities", handleListIdentities(d.Admin), auth)
	a.DELETE("/users/:id/identities/:provider/:subject", handleUnlinkIdentity(d.Admin), auth)

	a.GET("/keys", handleListKeys(d.Admin), auth)
	a.POST("/keys/rotate", handleRotateKeys(d.Admin), auth)

	a.GET("/migration", handleMigration(d.Admin, d.Metrics), auth)
	a.GET("/dashboard", handleDashboard(d.Admin, d.Metrics, sessions), page)
	a.POST("/dashboard/clients/:id", handleDashboardUpdate(d.Admin, d.Metrics, sessions), page)
	a.GET("/signin", handleSignInPage(sessions))
	a.POST("/signin", handleSignIn(sessions))
	a.POST("/signout", handleSignOut(sessions), page)
}
