package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/openedx/mobile-auth-bff/handlers"
	"github.com/openedx/mobile-auth-bff/oauth"
)

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// pruneEvery is how often expired tokens are deleted.
const pruneEvery = 10 * time.Minute

func serve(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stdout)
	demo := fs.Bool("demo", false, "seed a demo mobile client, confidential client and user, and print how to call them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err == nil {
		err = cfg.requireIssuer()
	}
	if err != nil {
		return err
	}
	if *demo && cfg.AdminToken == "" {
		// The demo shows the admin API and the dashboard too: make a token
		// for this run (printed with the demo data).
		cfg.AdminToken, cfg.AdminTokenGenerated = rand.Text(), true
	}
	log := newLogger(stdout, cfg.LogLevel)
	startProfiler(getenv, log)
	if cfg.SecretGenerated {
		log.Warn("BFF_SECRET is not set: using a random secret; opaque tokens and keys die with the process")
	}
	a, err := newApp(ctx, cfg, log, cfg.Migrate, true)
	if err != nil {
		return err
	}
	defer a.store.Close()
	warnEdXAlgorithm(log, cfg.JWTAlg, a.Keys.Published()[0])
	withheld := a.OAuth.WithheldProviders()
	for backend, why := range a.OAuth.DisabledProviders() {
		if !slices.Contains(withheld, backend) {
			log.Info("social exchange backend disabled", "backend", backend, "reason", why)
		}
	}
	for _, backend := range withheld {
		log.Warn("social exchange backend off: it cannot check that a token was issued to the platform's apps, so it would accept another app's token; configure the check (or opt in to any app's tokens)",
			"backend", backend, "fix", a.OAuth.DisabledProviders()[backend])
	}
	for _, ac := range a.OAuth.AudienceChecks() {
		a.Metrics.SocialAudienceChecked.WithLabelValues(ac.Backend).Set(boolGauge(ac.Checked))
		if !ac.Checked {
			log.Warn("social exchange accepts tokens issued to any app: another app the user signed in to can sign in as the user here; configure the check in production",
				"backend", ac.Backend, "fix", ac.Fix)
		}
	}
	var demoCB *demoCallback
	if *demo {
		if err := seedDemo(ctx, a, stdout); err != nil {
			return fmt.Errorf("seed demo data: %w", err)
		}
		cb, err := startDemoCallback(ctx, a)
		if err != nil {
			return fmt.Errorf("demo browser sign-in: %w", err)
		}
		demoCB = cb
	}
	// A new BFF_ADMIN_TOKEN ends the dashboard sessions of the old one
	// (ADR 20): every instance refuses a session of another token, and this
	// deletes them, so that going back to the old token revives none.
	fp := handlers.AdminTokenFingerprint(cfg.AdminToken, a.Secrets.AdminSessionKey())
	if n, err := a.store.DeleteAdminSessionsExcept(ctx, fp); err != nil {
		log.Warn("end the dashboard sessions of other admin tokens", "err", err)
	} else if n > 0 {
		log.Info("ended the dashboard sessions of another admin token", "sessions", n)
	}
	// Start-up (key generation, the demo user's password hash) leaves
	// garbage an idle process would keep resident for minutes.
	debug.FreeOSMemory()

	if a.Broker == nil {
		log.Info("BFF_ECOMMERCE_URL is not set: the payment broker (/api/ecommerce/...) answers 503 broker_not_configured")
	} else {
		routes := make([]string, 0, len(a.Broker.Routes()))
		for _, r := range a.Broker.Routes() {
			routes = append(routes, r.String())
		}
		log.Info("payment broker", "audience", cfg.EcommerceAudience, "timeout", cfg.EcommerceTimeout.String(), "routes", routes)
	}
	if cfg.AdminToken == "" {
		log.Warn("BFF_ADMIN_TOKEN is not set: the admin API answers 401 to every request")
	}
	servers := []*namedServer{
		{name: "public", addr: cfg.Addr, handler: a.Public},
		{name: "admin", addr: cfg.AdminAddr, handler: a.AdminHandler},
	}
	for _, s := range servers {
		if err := s.listen(); err != nil {
			for _, o := range servers {
				o.close()
			}
			return err
		}
	}
	// Before "listening": whoever waits for that line has the warning too.
	if len(cfg.TrustedProxies) == 0 && !onLoopback(servers[0].ln.Addr()) {
		log.Warn("BFF_TRUSTED_PROXIES is not set and the public listener is reachable from other hosts: "+
			"if the service is behind a load balancer or reverse proxy, every request has the proxy's address, "+
			"so the per-address login throttle counts all users as one and refuses them together; "+
			"set BFF_TRUSTED_PROXIES to the proxies' addresses (CIDRs)",
			"addr", servers[0].ln.Addr().String())
	}
	for _, s := range servers {
		log.Info("listening", "listener", s.name, "addr", s.ln.Addr().String())
	}
	if err := printDemoBrowser(stdout, demoCB, servers[0].ln.Addr()); err != nil {
		log.Warn("print the demo's browser sign-in URL", "err", err)
	}

	bgCtx, stopBackground := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { every(bgCtx, oauth.KeyReloadInterval, a.reloadKeys) })
	bg.Go(func() { every(bgCtx, pruneEvery, a.prune) })
	bg.Go(func() { a.runChangeFeed(bgCtx) })
	bg.Go(func() { a.Metrics.Usage.Run(bgCtx, cfg.UsageFlushInterval) })

	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.serve() }()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
		log.Error("listener failed", "err", err)
	}

	// A fresh context: ctx is already done.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range servers {
		if serr := s.srv.Shutdown(shutdownCtx); serr != nil {
			log.Warn("shutdown", "listener", s.name, "err", serr)
		}
	}
	stopBackground()
	bg.Wait()
	// The listeners are down: the last requests are counted. Flush them.
	if ferr := a.Metrics.Usage.Flush(shutdownCtx); ferr != nil {
		log.Warn("usage statistics of the last seconds are lost", "aggregates", a.Metrics.Usage.Pending(), "err", ferr)
	}
	log.Info("stopped")
	return err
}

// edxAlgorithms are the JWT algorithms edX services verify: edx-drf-extensions
// names no algorithm for EC or OKP keys, so it refuses ES256 and EdDSA
// tokens (SPEC §0, docs/edx-services.md).
var edxAlgorithms = []string{"RS256", "RS512"}

// warnEdXAlgorithm warns when the JWTs this service signs, now or after the
// next rotations, are ones edX services refuse. A key keeps the algorithm it
// was made with, so changing BFF_JWT_ALG back to RS256 leaves an ES256
// current key (and the next key) in place: that is warned about too.
func warnEdXAlgorithm(log *slog.Logger, configured string, current jose.JSONWebKey) {
	switch {
	case !slices.Contains(edxAlgorithms, configured):
		log.Warn("BFF_JWT_ALG is "+configured+": edX services will refuse these tokens (edx-drf-extensions verifies RS256 and RS512 only); "+
			"use RS256 if any edX service reads this service's JWTs", "alg", configured)
	case !slices.Contains(edxAlgorithms, current.Algorithm):
		log.Warn("the current signing key is "+current.Algorithm+", made under an earlier BFF_JWT_ALG: edX services will refuse the tokens it signs; "+
			"two key rotations replace it and the next key with "+configured+" keys", "kid", current.KeyID, "alg", current.Algorithm)
	}
}

// onLoopback reports whether a listener's address is a loopback one, which
// nothing but a local process can reach: no proxy can stand in front of it
// from another host.
func onLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

type namedServer struct {
	name    string
	addr    string
	handler http.Handler
	ln      net.Listener
	srv     *http.Server
}

func (s *namedServer) listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%s listener: %w", s.name, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	return nil
}

func (s *namedServer) serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s listener: %w", s.name, err)
	}
	return nil
}

func (s *namedServer) close() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// prune deletes expired tokens, sessions, dashboard sessions, revoked JWT
// ids, idempotency records and DPoP proofs, and usage statistics past
// their retention.
func (a *app) prune(ctx context.Context) {
	now := time.Now().UTC()
	n, err := a.store.PruneTokens(ctx, now)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("prune expired tokens", "err", err)
	} else if n > 0 {
		a.log.Info("pruned expired tokens", "rows", n)
	}
	n, err = a.store.PruneIdempotencyKeys(ctx, now)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("prune expired idempotency keys", "err", err)
	} else if n > 0 {
		a.log.Info("pruned expired idempotency keys", "rows", n)
	}
	n, err = a.store.PruneDPoPProofs(ctx, now)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("prune expired dpop proofs", "err", err)
	} else if n > 0 {
		a.log.Info("pruned expired dpop proofs", "rows", n)
	}
	n, err = a.store.PruneAdminSessions(ctx, now)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("prune expired dashboard sessions", "err", err)
	} else if n > 0 {
		a.log.Info("pruned expired dashboard sessions", "rows", n)
	}
	n, err = a.store.PruneUsage(ctx, now.Add(-a.cfg.UsageRetention))
	if err != nil && ctx.Err() == nil {
		a.log.Warn("prune usage statistics", "err", err)
	} else if n > 0 {
		a.log.Info("pruned usage statistics", "rows", n)
	}
}

// reloadKeys picks up key rotations made elsewhere (on PostgreSQL the change
// feed does it at once; this is the backstop).
func (a *app) reloadKeys(ctx context.Context) {
	if err := a.Keys.Reload(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("reload signing keys", "err", err)
	}
}
