// Package service builds the whole service — signing keys, the token
// validator, the OAuth service, the admin service, the payment broker, the
// metrics and the handlers of both listeners — from its configuration, a
// store and a logger. run() and every in-process test (internal/testenv)
// call New, so that what is tested is the graph that serves: a difference
// between them is a field of Config, set in one of the two callers.
package service

import (
	"context"
	"log/slog"
	"net"

	"github.com/labstack/echo/v4"

	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/handlers"
	"github.com/openedx/mobile-auth-bff/metrics"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
)

// Config is everything New needs besides the store and the logger.
type Config struct {
	// Secret is BFF_SECRET: it keys opaque tokens, the signing keys at rest
	// and the dashboard's sessions.
	Secret []byte
	// JWTAlg is the algorithm of new signing keys (BFF_JWT_ALG).
	JWTAlg string
	// OAuth configures the OAuth service: issuer, audience, lifetimes,
	// throttle, social exchange; its Now is the clock of the whole service.
	// A nil Social.Observe counts verifications in Service.Metrics.
	OAuth oauth.Config
	// Broker configures the payment broker; nil leaves it off (the broker
	// routes answer 503 broker_not_configured). An empty Issuer is
	// OAuth.Issuer.
	Broker *broker.Config
	// Usage turns the per-client usage statistics on (Metrics.Usage).
	Usage bool
	// AdminToken is BFF_ADMIN_TOKEN; empty refuses every admin request.
	AdminToken string
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []*net.IPNet
	// CookieSecure sets the Secure flag on the session cookies.
	CookieSecure bool
}

// Service is the wired service, without listeners.
type Service struct {
	Store     store.Store
	Secrets   *oauth.Secrets
	Keys      *oauth.KeyManager
	Validator *oauth.Validator
	OAuth     *oauth.Service
	Admin     *admin.Service
	Broker    *broker.Broker // nil unless Config.Broker
	Metrics   *metrics.Metrics
	// Public and AdminHandler are the handlers of the two listeners.
	Public       *echo.Echo
	AdminHandler *echo.Echo
}

// SettingError is a Config field New refused; Setting names it ("Secret",
// "Broker") so that the caller can name its own variable.
type SettingError struct {
	Setting string
	Err     error
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// New builds the service on st. It loads (or, on an empty store, creates)
// the signing keys; it starts nothing: the caller runs the listeners and the
// background work (key reloads, pruning, the change feed, usage flushes).
func New(ctx context.Context, cfg Config, st store.Store, log *slog.Logger) (*Service, error) {
	secrets, err := oauth.NewSecrets(cfg.Secret)
	if err != nil {
		return nil, &SettingError{"Secret", err}
	}
	m := metrics.New()
	if cfg.Usage {
		m.Usage = metrics.NewUsage(st, m, log, metrics.DefaultUsageKeys)
	}
	keys, err := oauth.NewKeyManager(ctx, st, secrets, cfg.JWTAlg, cfg.OAuth.AccessTokenTTL, log)
	if err != nil {
		return nil, err
	}
	oc := cfg.OAuth
	if oc.Social.Observe == nil {
		oc.Social.Observe = func(backend, result string) {
			m.SocialVerifications.WithLabelValues(backend, result).Inc()
		}
	}
	validator := oauth.NewValidator(st, keys, secrets, oc)
	svc, err := oauth.NewService(st, keys, secrets, validator, oc, log)
	if err != nil {
		return nil, err
	}
	s := &Service{Store: st, Secrets: secrets, Keys: keys, Validator: validator, OAuth: svc,
		Admin: admin.New(st, keys, svc), Metrics: m}
	if cfg.Broker != nil {
		bc := *cfg.Broker
		if bc.Issuer == "" {
			bc.Issuer = oc.Issuer
		}
		if s.Broker, err = broker.New(bc, st, keys, m, log); err != nil {
			return nil, &SettingError{"Broker", err}
		}
	}
	deps := handlers.Deps{
		OAuth: svc, Validator: s.Validator, Keys: keys, Admin: s.Admin, Broker: s.Broker, Store: st, Metrics: m, Log: log,
		Issuer: oc.Issuer, AdminToken: cfg.AdminToken, AdminSessionKey: secrets.AdminSessionKey(), AdminSessions: st,
		TrustedProxies: cfg.TrustedProxies, CookieSecure: cfg.CookieSecure,
	}
	s.Public, s.AdminHandler = handlers.NewPublic(deps), handlers.NewAdmin(deps)
	return s, nil
}
