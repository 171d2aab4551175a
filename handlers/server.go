// Package handlers speaks HTTP: it parses requests, calls the oauth and
// admin services, and maps their errors onto the documented shapes. Every
// route of both listeners is in routes.go.
package handlers

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/labstack/echo/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/metrics"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// Pinger reports whether the store answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// AdminSessionStore keeps the dashboard's sessions (store.AdminSessions).
type AdminSessionStore interface {
	CreateAdminSession(ctx context.Context, s bff.AdminSession) error
	GetAdminSession(ctx context.Context, id string, now time.Time) (bff.AdminSession, error)
	DeleteAdminSession(ctx context.Context, id string) error
}

// Deps is what the handlers of both listeners need.
type Deps struct {
	OAuth *oauth.Service
	// Validator judges every presented token (required; the one the OAuth
	// service issues for, oauth.Service.Validator).
	Validator *oauth.Validator
	// Keys publishes the JWKS (required; the OAuth service's key manager).
	Keys  *oauth.KeyManager
	Admin *admin.Service
	// Broker relays the payment calls; nil when BFF_ECOMMERCE_URL is unset.
	Broker     *broker.Broker
	Store      Pinger
	Metrics    *metrics.Metrics
	Log        *slog.Logger
	Issuer     string
	AdminToken string
	// AdminSessionKey keys the dashboard's CSRF tokens and the admin
	// token's fingerprint in its sessions (oauth.Secrets.AdminSessionKey);
	// nil means a random key, and sessions that end with the process.
	AdminSessionKey []byte
	// AdminSessions keeps the dashboard's sessions (the service's store;
	// required).
	AdminSessions AdminSessionStore
	// CookieSecure sets the Secure flag on the session cookies.
	CookieSecure bool
	// TrustedProxies are the networks whose X-Forwarded-For is believed;
	// without any, the client address is the TCP peer.
	TrustedProxies []*net.IPNet
}

func newEcho(listener string, d Deps) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.JSONSerializer = compactJSON{}
	if len(d.TrustedProxies) > 0 {
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, n := range d.TrustedProxies {
			opts = append(opts, echo.TrustIPRange(n))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	e.Use(requestID, accessLog(listener, d.Log, d.Metrics), recoverPanic(d.Log))
	return e
}

// NewPublic returns the public listener's handler.
func NewPublic(d Deps) *echo.Echo {
	e := newEcho("public", d)
	e.Use(dpopNonce(d.Validator.DPoP()))
	publicRoutes(e, d)
	return e
}

// NewAdmin returns the admin listener's handler.
func NewAdmin(d Deps) *echo.Echo {
	e := newEcho("admin", d)
	adminRoutes(e, d)
	return e
}
