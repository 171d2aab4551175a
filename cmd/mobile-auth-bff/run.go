package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/internal/service"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/social"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/cache"
	"github.com/openedx/mobile-auth-bff/store/memory"
	"github.com/openedx/mobile-auth-bff/store/postgres"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `mobile-auth-bff — OAuth 2.0 server and BFF for the mobile apps

Usage:
  mobile-auth-bff [serve] [--demo]     run the service (default command)
  mobile-auth-bff migrate up|down [N]|status
  mobile-auth-bff admin <command> ...  manage clients, users and keys (needs BFF_DATABASE_URL)
  mobile-auth-bff version

Configuration is read from BFF_* environment variables; see README.md.
`

// run is the whole program: main only calls it, and the end-to-end tests
// call it too. It returns when the command is done or, for serve, when ctx
// ends or SIGINT/SIGTERM arrives.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd, rest := "serve", []string(nil)
	if len(args) > 1 {
		cmd, rest = args[1], args[2:]
		if len(cmd) > 0 && cmd[0] == '-' { // flags of the default command
			cmd, rest = "serve", args[1:]
		}
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout)
	case "migrate":
		return migrateCommand(ctx, rest, getenv, stdout)
	case "admin":
		return adminCommand(ctx, rest, getenv, stdout)
	case "version":
		_, err := fmt.Fprintln(stdout, "mobile-auth-bff", version)
		return err
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// app is the wired service, shared by serve and the admin CLI.
type app struct {
	*service.Service
	cfg   config
	log   *slog.Logger
	store store.Store     // the store the service uses: the cache, when there is one
	pg    *postgres.Store // nil on the in-memory store
	cache *cache.Store    // nil on the in-memory store and in the CLI
}

// openStore opens PostgreSQL when BFF_DATABASE_URL is set, the in-memory
// store otherwise.
func openStore(ctx context.Context, cfg config, log *slog.Logger, migrate bool) (store.Store, *postgres.Store, error) {
	if cfg.DatabaseURL == "" {
		log.Warn("BFF_DATABASE_URL is not set: using the in-memory store; every client, user and token is lost when the process exits")
		return memory.NewWith(memory.Options{MaxTokens: cfg.MemoryMaxTokens}), nil, nil
	}
	pg, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Migrate: migrate, Timeout: cfg.DatabaseTimeout, MaxConns: int32(cfg.DatabaseMaxConns)})
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	return pg, pg, nil
}

// newApp opens the store and wires the services. A serving app on
// PostgreSQL puts a cache in front of the store (see startChangeFeed).
func newApp(ctx context.Context, cfg config, log *slog.Logger, migrate, serving bool) (*app, error) {
	st, pg, err := openStore(ctx, cfg, log, migrate)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, store: st, pg: pg}
	if pg != nil && serving {
		a.cache = cache.New(pg, cacheMaxAge)
		a.store = a.cache
	}
	a.Service, err = service.New(ctx, a.serviceConfig(serving), a.store, log)
	if err != nil {
		st.Close()
		var se *service.SettingError
		if errors.As(err, &se) {
			return nil, &configError{settingVars[se.Setting], se.Err.Error()}
		}
		return nil, err
	}
	return a, nil
}

// settingVars names the variable behind each field of service.Config that
// service.New can refuse.
var settingVars = map[string]string{"Secret": "BFF_SECRET", "Broker": "BFF_ECOMMERCE_URL"}

// serviceConfig is the service's configuration from the environment's.
func (a *app) serviceConfig(serving bool) service.Config {
	c := service.Config{
		Secret: a.cfg.Secret, JWTAlg: a.cfg.JWTAlg, Usage: serving,
		AdminToken: a.cfg.AdminToken, TrustedProxies: a.cfg.TrustedProxies, CookieSecure: a.cfg.CookieSecure,
		OAuth: oauth.Config{
			Issuer: a.cfg.Issuer, Audience: a.cfg.Audience, AccessTokenTTL: a.cfg.AccessTokenTTL,
			RefreshTokenTTL: a.cfg.RefreshTokenTTL, RefreshReuseGrace: a.cfg.RefreshReuseGrace,
			SessionTTL: a.cfg.SessionTTL, Throttle: a.cfg.Throttle, DPoP: a.cfg.DPoP,
			Social: social.Config{
				GoogleUserinfoURL: a.cfg.GoogleUserinfoURL, GoogleTokeninfoURL: a.cfg.GoogleTokeninfoURL,
				GoogleClientIDs: a.cfg.GoogleClientIDs,
				FacebookMeURL:   a.cfg.FacebookMeURL, FacebookDebugTokenURL: a.cfg.FacebookDebugTokenURL,
				FacebookAppID: a.cfg.FacebookAppID, FacebookAppSecret: a.cfg.FacebookAppSecret,
				AppleJWKSURL: a.cfg.AppleJWKSURL, AppleAudiences: []string{a.cfg.AppleAudience},
				AzureADGraphMeURL: a.cfg.AzureADGraphMeURL,
				// On PostgreSQL (production) a backend that cannot check which
				// app a token was issued to is off unless the operator opts in;
				// the in-memory store (development, --demo) keeps SPEC §7's
				// defaults, with the start-up warning (ADR 6).
				RequireAudienceCheck: a.cfg.DatabaseURL != "", AcceptAnyApp: a.cfg.SocialAcceptAnyApp,
			},
		},
	}
	if a.cfg.EcommerceURL != "" {
		c.Broker = &broker.Config{
			URL: a.cfg.EcommerceURL, Issuer: a.cfg.Issuer, Audience: a.cfg.EcommerceAudience,
			Timeout: a.cfg.EcommerceTimeout, Routes: a.cfg.EcommerceRoutes,
			BreakerFailures: a.cfg.EcommerceBreakerFailures, BreakerCooldown: a.cfg.EcommerceBreakerCooldown,
		}
	}
	return c
}

// cacheMaxAge bounds how long a cached account or client is used even
// when no change event arrives.
const cacheMaxAge = 5 * time.Minute

// runChangeFeed follows the change events of every instance until ctx
// ends: it keeps the cache honest and reloads the signing keys when
// another instance (or the CLI) rotated them.
func (a *app) runChangeFeed(ctx context.Context) {
	if a.cache == nil {
		return
	}
	a.pg.Listen(ctx, func(ev string) {
		a.cache.Invalidate(ev)
		if ev == store.EventKeys || ev == store.EventAll {
			a.reloadKeys(ctx)
		}
	}, func(live bool) {
		a.cache.SetLive(live)
		a.Metrics.ChangeFeedUp.Set(map[bool]float64{true: 1, false: 0}[live])
		if live {
			a.log.Info("change feed connected: cache enabled")
			a.reloadKeys(ctx) // rotations made while it was down
		} else {
			a.log.Warn("change feed lost: cache emptied and bypassed until it reconnects")
		}
	})
}

var errNeedsDatabase = errors.New("this command works on the database: set BFF_DATABASE_URL (a server on the in-memory store is managed through its admin API)")
