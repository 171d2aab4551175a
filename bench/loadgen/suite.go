package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openedx/mobile-auth-bff/store/postgres"
)

// The suite: `loadgen suite` builds the service, starts it once per
// scenario (in memory, and on PostgreSQL with a database of its own),
// creates its clients and users through the admin API, measures every
// scenario and the machine's bounds, and writes docs/performance.md.

type suiteConfig struct {
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	runs        int
	smoke       bool
	databaseURL string
	out         string
	idleWait    time.Duration
	tokens      int
	logins      int
	boundTime   time.Duration
	bin         string
	only        *regexp.Regexp // scenarios to run; nil: all
	baseline    string         // a git revision to measure beside the tree, scenario by scenario
	extraEnv    envFlag        // -env KEY=VALUE: added to every service's environment
	stores      string         // "memory", "postgres" or "" (both when a database is given)
}

func parseSuiteFlags(args []string, out io.Writer) (suiteConfig, error) {
	var cfg suiteConfig
	fs := flag.NewFlagSet("loadgen suite", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.IntVar(&cfg.concurrency, "c", 50, "concurrent connections of every scenario")
	fs.DurationVar(&cfg.duration, "d", 15*time.Second, "duration of one run of a scenario (smoke: 1.5s)")
	fs.IntVar(&cfg.runs, "runs", 3, "runs per scenario; the report has their medians (smoke: 1)")
	fs.BoolVar(&cfg.smoke, "smoke", false, "a quick pass to show the suite works: short runs, one each, a temp file as output")
	fs.StringVar(&cfg.databaseURL, "database-url", os.Getenv("BFF_BENCH_DATABASE_URL"),
		"PostgreSQL server to create (and drop) a bench database on; empty = in-memory store only (default $BFF_BENCH_DATABASE_URL)")
	fs.StringVar(&cfg.out, "out", "", "report file (default docs/performance.md; smoke: a temp file)")
	fs.DurationVar(&cfg.idleWait, "idle-wait", time.Minute, "idle time after the logins before the RSS reading (smoke: 1s)")
	fs.IntVar(&cfg.tokens, "tokens", 20000, "tokens issued to measure the in-memory store's bytes per token (smoke: 2000)")
	fs.IntVar(&cfg.logins, "logins", 100, "logins before the after-login RSS reading")
	fs.DurationVar(&cfg.boundTime, "bound-time", 3*time.Second, "how long each bound is measured (smoke: 300ms)")
	fs.StringVar(&cfg.bin, "bin", "", "a built mobile-auth-bff to run (default: build ./cmd/mobile-auth-bff)")
	only := fs.String("only", "", "run only the scenarios whose name matches this regexp, and skip the RSS readings and the bytes-per-token reading unless the regexp matches \"bytes per token\" (for before/after runs of a change; the report then goes to a temp file unless -out is given)")
	fs.StringVar(&cfg.baseline, "baseline", "", "a git revision (commit, tag, branch) to build and measure too, interleaved scenario by scenario on its own database, for a before/after table")
	fs.Var(&cfg.extraEnv, "env", "KEY=VALUE added to the environment of every service the suite starts (repeatable), e.g. -env GOMEMLIMIT=96MiB")
	fs.StringVar(&cfg.stores, "store", "", "run only this store: memory or postgres (default: both when -database-url is set)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return cfg, fmt.Errorf("-only: %w", err)
		}
		cfg.only = re
	}
	if cfg.stores != "" && cfg.stores != "memory" && cfg.stores != "postgres" {
		return cfg, fmt.Errorf("-store must be memory or postgres, not %q", cfg.stores)
	}
	if cfg.stores == "postgres" && cfg.databaseURL == "" {
		return cfg, errors.New("-store postgres needs -database-url")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.smoke {
		defaults := map[string]func(){
			"d":          func() { cfg.duration = 1500 * time.Millisecond },
			"runs":       func() { cfg.runs = 1 },
			"idle-wait":  func() { cfg.idleWait = time.Second },
			"tokens":     func() { cfg.tokens = 2000 },
			"bound-time": func() { cfg.boundTime = 300 * time.Millisecond },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	cfg.warmup = max(min(time.Second, cfg.duration/10), 500*time.Millisecond)
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case cfg.concurrency < 1:
		return cfg, errors.New("-c must be at least 1")
	case cfg.duration <= 0 || cfg.boundTime <= 0:
		return cfg, errors.New("-d and -bound-time must be positive")
	case cfg.runs < 1:
		return cfg, errors.New("-runs must be at least 1")
	case cfg.tokens < 1 || cfg.logins < 0 || cfg.idleWait < 0:
		return cfg, errors.New("-tokens must be positive, -logins and -idle-wait not negative")
	}
	return cfg, nil
}

// suiteScenario is one line of the report.
type suiteScenario struct {
	name   string
	users  bool // logs users in: one user per connection
	bounds []bound
	// pgBounds are added on PostgreSQL (a token written per request).
	pgBounds []bound
	// issues marks the scenarios that issue a token per request: on the
	// in-memory store they run with short token lifetimes (memoryIssuanceEnv).
	issues  bool
	prepare func(ctx context.Context, t *target, fx fixtures, workers int) ([]call, error)
}

// memoryIssuanceEnv is the in-memory store's setting in the scenarios that
// issue a token per request. The store keeps its default cap
// (BFF_MEMORY_MAX_TOKENS, 50 000) as a deployment would; with tokens that
// live minutes or hours a 15 s run at thousands of tokens a second reaches
// the cap and is answered 503, which measures the cap, not issuance.
// Access and refresh tokens of 1 s (a rotated refresh token is kept until
// it expires, for reuse detection) expire while the run goes on — at
// 12,000 refreshes a second some 40,000 are alive — and the store prunes
// the expired ones when it reaches the cap: the run measures issuance at
// the steady state of a store at its cap, and its peak RSS is that of a
// full store. A refresh chain whose first token expired before the run
// logs in again in the warm-up.
var memoryIssuanceEnv = []string{"BFF_ACCESS_TOKEN_TTL=1s", "BFF_REFRESH_TOKEN_TTL=1s"}

// envFlag collects -env KEY=VALUE flags.
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

// scenarioEnv is a scenario's service environment on a store.
func scenarioEnv(store string, env []string, sc suiteScenario) []string {
	if store != "memory" || !sc.issues {
		return env
	}
	return append(slices.Clone(env), memoryIssuanceEnv...)
}

var suiteScenarios = []suiteScenario{
	{name: "loadgen ceiling: GET /healthz", prepare: statelessSuite(func(t *target) call {
		return func(ctx context.Context) string { status, _, err := t.get(ctx, "/healthz"); return label(status, err) }
	})},
	{name: "client_credentials → opaque", issues: true, pgBounds: []bound{boundCommit}, prepare: confidential(statelessSuite(clientCredentials("bearer")))},
	{name: "refresh → opaque (a rotation chain per connection)", issues: true, users: true, pgBounds: []bound{boundCommit}, prepare: perUser(refreshChains("bearer"))},
	{name: "client_credentials → JWT RS256", issues: true, bounds: []bound{boundRS256}, prepare: confidential(statelessSuite(clientCredentials("jwt")))},
	{name: "refresh → JWT RS256 (a rotation chain per connection)", issues: true, users: true, bounds: []bound{boundRS256}, pgBounds: []bound{boundCommit}, prepare: perUser(refreshChains("jwt"))},
	{name: "introspection, opaque", prepare: introspectSuite("bearer")},
	{name: "introspection, JWT", prepare: introspectSuite("jwt")},
	{name: "/api/me, opaque", prepare: meSuite("bearer")},
	{name: "/api/me, JWT", prepare: meSuite("jwt")},
	{name: "password grant → opaque, a distinct user per connection", users: true, bounds: []bound{boundArgon2id}, pgBounds: []bound{boundCommit}, prepare: perUser(func(ctx context.Context, t *target, workers int) ([]call, error) {
		return same(passwordGrant("bearer"))(ctx, t, workers)
	})},
}

func statelessSuite(newCall func(*target) call) func(context.Context, *target, fixtures, int) ([]call, error) {
	return func(ctx context.Context, t *target, _ fixtures, workers int) ([]call, error) {
		return same(newCall)(ctx, t, workers)
	}
}

// confidential has the calls authenticate as the suite's backend client.
func confidential(prepare func(context.Context, *target, fixtures, int) ([]call, error)) func(context.Context, *target, fixtures, int) ([]call, error) {
	return func(ctx context.Context, t *target, fx fixtures, workers int) ([]call, error) {
		tc := *t
		tc.cfg.clientID, tc.cfg.clientSecret = fx.backend, fx.secret
		return prepare(ctx, &tc, fx, workers)
	}
}

// perUser prepares the workers, each as its own user of the public client,
// all at once: a refresh chain's first token must still be alive when the
// run starts (memoryIssuanceEnv), and the logins then take as long as the
// service's password checks in parallel, not one after the other.
func perUser(prepare func(context.Context, *target, int) ([]call, error)) func(context.Context, *target, fixtures, int) ([]call, error) {
	return func(ctx context.Context, t *target, fx fixtures, workers int) ([]call, error) {
		calls := make([][]call, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				tu := *t
				u := fx.users[i%len(fx.users)]
				tu.cfg.clientID, tu.cfg.username, tu.cfg.password = fx.mobile, u.username, u.password
				calls[i], errs[i] = prepare(ctx, &tu, 1)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		return slices.Concat(calls...), nil
	}
}

func introspectSuite(format string) func(context.Context, *target, fixtures, int) ([]call, error) {
	return func(ctx context.Context, t *target, fx fixtures, workers int) ([]call, error) {
		tc := *t
		tc.cfg.clientID, tc.cfg.clientSecret, tc.cfg.tokenClientID = fx.backend, fx.secret, fx.mobile
		tc.cfg.username, tc.cfg.password = fx.users[0].username, fx.users[0].password
		return introspection(format)(ctx, &tc, workers)
	}
}

func meSuite(format string) func(context.Context, *target, fixtures, int) ([]call, error) {
	return func(ctx context.Context, t *target, fx fixtures, workers int) ([]call, error) {
		tc := *t
		tc.cfg.username, tc.cfg.password = fx.users[0].username, fx.users[0].password
		tok, err := tc.login(ctx, fx.mobile, format)
		if err != nil {
			return nil, err
		}
		if got := strings.Count(tok.AccessToken, "."); (format == "jwt") != (got == 2) {
			return nil, fmt.Errorf("asked for a %s access token, got one with %d dots", format, got)
		}
		authz := "Bearer " + tok.AccessToken
		c := func(ctx context.Context) string {
			status, _, err := tc.getWith(ctx, "/api/me", authz)
			return label(status, err)
		}
		return same(func(*target) call { return c })(ctx, &tc, workers)
	}
}

// fixtures are the clients and users the suite made through the admin API.
type fixtures struct {
	mobile  string // public client: password and refresh grants
	backend string // confidential: client credentials, introspection
	secret  string
	users   []benchUser
}

type benchUser struct{ username, password string }

func runSuite(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseSuiteFlags(args, stdout)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if cfg.out == "" {
		cfg.out = filepath.Join(root, "docs", "performance.md")
		if cfg.smoke || cfg.only != nil {
			f, err := os.CreateTemp("", "performance-*.md")
			if err != nil {
				return err
			}
			f.Close()
			cfg.out = f.Name()
		}
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }

	rep := report{Date: time.Now(), Commit: gitCommit(root), GoVersion: runtime.Version(), Cores: runtime.NumCPU(),
		LoadBefore: loadAverage(), Smoke: cfg.smoke, Concurrency: cfg.concurrency, Duration: cfg.duration, Runs: cfg.runs,
		IdleWait: cfg.idleWait, Tokens: cfg.tokens}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		rep.CPU = cpuModel(string(b))
	}

	bin := cfg.bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "bff-suite-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "mobile-auth-bff")
		logf("building %s", bin)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mobile-auth-bff")
		build.Dir, build.Stdout, build.Stderr = root, stdout, stdout
		if err := build.Run(); err != nil {
			return fmt.Errorf("build the service: %w", err)
		}
	}

	var baseBin string
	if cfg.baseline != "" {
		if baseBin, rep.Baseline, err = buildRevision(ctx, root, cfg.baseline, stdout); err != nil {
			return fmt.Errorf("build the baseline %s: %w", cfg.baseline, err)
		}
		defer os.RemoveAll(filepath.Dir(baseBin))
	}

	var stores []string
	if cfg.stores != "postgres" {
		stores = append(stores, "memory")
	}
	var dbURL, baseDB string
	if cfg.databaseURL != "" {
		var drop func()
		dbURL, drop, err = createDatabase(ctx, cfg.databaseURL)
		if err != nil {
			return fmt.Errorf("create the bench database: %w", err)
		}
		defer drop()
		if cfg.stores != "memory" {
			stores = append(stores, "postgres")
		}
		if baseBin != "" {
			// The baseline's schema is older: it gets a database of its own.
			var dropBase func()
			baseDB, dropBase, err = createDatabase(ctx, cfg.databaseURL)
			if err != nil {
				return fmt.Errorf("create the baseline's bench database: %w", err)
			}
			defer dropBase()
		}
	}

	logf("bounds (%s each)", cfg.boundTime)
	rep.Bounds.Procs = runtime.GOMAXPROCS(0)
	if err := rep.Bounds.measureCPU(cfg.boundTime); err != nil {
		return err
	}
	if dbURL != "" {
		rep.Bounds.PG = true
		rep.Bounds.PoolConns = postgres.DefaultMaxConns() // the service's pool (BFF_DATABASE_MAX_CONNS unset)
		if rep.Bounds.Commit1, rep.Bounds.Commit1Latency, err = commitRate(ctx, dbURL, 1, cfg.boundTime); err != nil {
			return fmt.Errorf("commit rate: %w", err)
		}
		if rep.Bounds.CommitPool, _, err = commitRate(ctx, dbURL, rep.Bounds.PoolConns, cfg.boundTime); err != nil {
			return fmt.Errorf("commit rate: %w", err)
		}
		if rep.Bounds.CommitC, _, err = commitRate(ctx, dbURL, cfg.concurrency, cfg.boundTime); err != nil {
			return fmt.Errorf("commit rate: %w", err)
		}
	}
	logf("  on %d cores in parallel: RS256 %.0f/s (%.0f/s per core), argon2id %.1f/s (%.1f/s per core); commits %.0f/s (1 conn) %.0f/s (%d conns) %.0f/s (%d conns)",
		rep.Bounds.Procs, rep.Bounds.RS256All, rep.Bounds.RS256PerCore, rep.Bounds.ArgonAll, rep.Bounds.ArgonPerCore, rep.Bounds.Commit1, rep.Bounds.CommitPool, rep.Bounds.PoolConns,
		rep.Bounds.CommitC, cfg.concurrency)

	for _, store := range stores {
		env := serviceEnv(store, dbURL, cfg.extraEnv)
		sr := storeReport{Store: store}
		var before *storeReport
		if baseBin != "" {
			before = &storeReport{Store: store}
		}
		for _, sc := range suiteScenarios {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if cfg.only != nil && sc.name != suiteScenarios[0].name && !cfg.only.MatchString(sc.name) {
				continue // the ceiling (the first scenario) is always measured: it is a bound
			}
			if before != nil {
				// The baseline first, then the tree: the same minute of the
				// machine for both.
				b, err := measureScenario(ctx, cfg, baseBin, scenarioEnv(store, serviceEnv(store, baseDB, cfg.extraEnv), sc), store+" (baseline)", sc, logf)
				if err != nil {
					logf("%-9s baseline %s: %v", store, sc.name, err)
					b = row{Scenario: sc.name, Failed: oneLine(err)}
				}
				before.Rows = append(before.Rows, b)
			}
			r, err := measureScenario(ctx, cfg, bin, scenarioEnv(store, env, sc), store, sc, logf)
			if err != nil {
				// One scenario that cannot run is a line of the report,
				// not the end of a twenty-minute run.
				logf("%-9s %s: %v", store, sc.name, err)
				r = row{Scenario: sc.name, Failed: oneLine(err)}
			}
			if sc.name == suiteScenarios[0].name && (store == "memory" || rep.Bounds.Loadgen == 0) {
				rep.Bounds.Loadgen = r.rps()
			}
			kinds := append([]bound{boundLoadgen}, sc.bounds...)
			if store == "postgres" {
				kinds = append(kinds, sc.pgBounds...)
			}
			if sc.name != suiteScenarios[0].name && r.Failed == "" {
				r.BoundKind, r.Bound = rep.Bounds.tightest(kinds, rep.Cores)
				r.setMachineBound(rep.Bounds, kinds, rep.Cores)
			}
			sr.Rows = append(sr.Rows, r)
		}
		if cfg.only != nil {
			if store == "memory" && cfg.only.MatchString(tokenBytesReading) {
				if before != nil {
					if err := measureTokenBytes(ctx, cfg, baseBin, serviceEnv(store, baseDB, cfg.extraEnv), before, logf); err != nil {
						logf("%-9s baseline %s: %v", store, tokenBytesReading, err)
						before.Failed = append(before.Failed, tokenBytesReading+": "+oneLine(err))
					}
				}
				if err := measureTokenBytes(ctx, cfg, bin, env, &sr, logf); err != nil {
					logf("%-9s %s: %v", store, tokenBytesReading, err)
					sr.Failed = append(sr.Failed, tokenBytesReading+": "+oneLine(err))
				}
			}
			sr.Before = before
			rep.Stores = append(rep.Stores, sr)
			continue
		}
		measureMemory := func(bin string, env []string, sr *storeReport, label string) {
			if err := measureRSS(ctx, cfg, bin, env, sr, logf); err != nil {
				logf("%-9s RSS: %v", label, err)
				sr.Failed = append(sr.Failed, "RSS: "+oneLine(err))
			}
			if store == "memory" {
				if err := measureTokenBytes(ctx, cfg, bin, env, sr, logf); err != nil {
					logf("%-9s %s: %v", label, tokenBytesReading, err)
					sr.Failed = append(sr.Failed, tokenBytesReading+": "+oneLine(err))
				}
			}
		}
		if before != nil {
			measureMemory(baseBin, serviceEnv(store, baseDB, cfg.extraEnv), before, store+" (baseline)")
		}
		measureMemory(bin, env, &sr, store)
		sr.Before = before
		rep.Stores = append(rep.Stores, sr)
	}
	// Again, now that the scenarios ran: other work on the machine lowers a
	// reading, and a bound taken low would flatter every scenario.
	if err := rep.Bounds.measureCPU(cfg.boundTime); err != nil {
		return err
	}
	rep.assignBounds()
	logf("bounds again: RS256 %.0f/s, argon2id %.1f/s (the higher readings: %.0f/s, %.1f/s)",
		rep.Bounds.RS256Readings[len(rep.Bounds.RS256Readings)-1], rep.Bounds.ArgonReadings[len(rep.Bounds.ArgonReadings)-1],
		rep.Bounds.RS256All, rep.Bounds.ArgonAll)
	rep.LoadAfter = loadAverage()

	var buf bytes.Buffer
	if err := renderReport(&buf, rep); err != nil {
		return err
	}
	if err := os.WriteFile(cfg.out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	logf("wrote %s", cfg.out)
	return nil
}

// measureCPU reads the RS256 and argon2id rates of the machine once more;
// each bound is the highest reading.
func (b *bounds) measureCPU(d time.Duration) error {
	rs, err := rs256Rate(d, b.Procs)
	if err != nil {
		return err
	}
	argon, err := argon2idRate(d, b.Procs)
	if err != nil {
		return err
	}
	b.RS256Readings, b.ArgonReadings = append(b.RS256Readings, rs), append(b.ArgonReadings, argon)
	b.RS256All, b.ArgonAll = slices.Max(b.RS256Readings), slices.Max(b.ArgonReadings)
	b.RS256PerCore, b.ArgonPerCore = b.RS256All/float64(b.Procs), b.ArgonAll/float64(b.Procs)
	return nil
}

// assignBounds gives every measured row its bound and machine bound from
// the report's bounds.
func (rep *report) assignBounds() {
	for i := range rep.Stores {
		s := &rep.Stores[i]
		for j := range s.Rows {
			r := &s.Rows[j]
			sc, ok := scenarioNamed(r.Scenario)
			if !ok || sc.name == suiteScenarios[0].name || r.Failed != "" {
				continue
			}
			kinds := append([]bound{boundLoadgen}, sc.bounds...)
			if s.Store == "postgres" {
				kinds = append(kinds, sc.pgBounds...)
			}
			r.BoundKind, r.Bound = rep.Bounds.tightest(kinds, rep.Cores)
			r.setMachineBound(rep.Bounds, kinds, rep.Cores)
		}
	}
}

// scenarioNamed is the scenario of a name.
func scenarioNamed(name string) (suiteScenario, bool) {
	for _, sc := range suiteScenarios {
		if sc.name == name {
			return sc, true
		}
	}
	return suiteScenario{}, false
}

// measureScenario runs one scenario cfg.runs times in a fresh process.
func measureScenario(ctx context.Context, cfg suiteConfig, bin string, env []string, store string, sc suiteScenario,
	logf func(string, ...any)) (row, error) {
	svc, err := startService(ctx, bin, env)
	if err != nil {
		return row{}, err
	}
	defer svc.stop()
	users := 1
	if sc.users {
		users = cfg.concurrency
	}
	fx, err := createFixtures(ctx, svc, users)
	if err != nil {
		return row{}, err
	}
	t := newTarget(config{baseURL: svc.public, concurrency: cfg.concurrency})
	calls, err := sc.prepare(ctx, t, fx, cfg.concurrency)
	if err != nil {
		return row{}, fmt.Errorf("prepare: %w", err)
	}
	// The warm-up comes first: a refresh chain whose first token expired
	// while the others logged in (memoryIssuanceEnv's short lifetimes)
	// logs in again there, and the first request checks a warm chain.
	drive(ctx, calls, cfg.warmup)
	if l := calls[0](ctx); l != "" {
		return row{}, fmt.Errorf("first request failed: %s", l)
	}
	r := row{Scenario: sc.name}
	for i := range cfg.runs {
		before, err := readRunCPU(svc.pid, store)
		if err != nil {
			return r, err
		}
		peak := samplePeak(svc.pid, 50*time.Millisecond)
		recs, elapsed := drive(ctx, calls, cfg.duration)
		r.PeakRSS = max(r.PeakRSS, peak.end())
		after, err := readRunCPU(svc.pid, store)
		if err != nil {
			return r, err
		}
		s := summarize(sc.name, cfg.concurrency, elapsed, recs)
		u := after.since(before, s.Requests)
		r.Runs, r.CPUms = append(r.Runs, s), append(r.CPUms, u.service)
		r.LoadgenMs, r.BusyPct = append(r.LoadgenMs, u.loadgen), append(r.BusyPct, u.busy)
		pg := "—"
		if u.postgres >= 0 {
			r.PGms = append(r.PGms, u.postgres)
			pg = fmt.Sprintf("%.3f", u.postgres)
		}
		logf("%-9s %-58s run %d: %7.0f req/s  p50 %7.2fms  p99 %7.2fms  cpu %.3fms/req (loadgen %.3f, postgres %s, machine %.0f%% busy)  errors %s",
			store, sc.name, i+1, s.RPS, s.P50ms, s.P99ms, u.service, u.loadgen, pg, u.busy, formatErrors(s.Errors))
	}
	return r, nil
}

// runCPU is one reading of where the machine's CPU went so far: the
// service, the load generator (this process), PostgreSQL's processes
// (nil unless the store is postgres) and the machine.
type runCPU struct {
	service, loadgen time.Duration
	postgres         procCPU
	machine          cpuTicks
}

// runUse is the CPU a run used, in ms per request (postgres < 0: not
// measured), and the machine's busy share in %.
type runUse struct {
	service, loadgen, postgres, busy float64
}

// readRunCPU reads a runCPU; store is the store's name, or its log label
// ("postgres (baseline)").
func readRunCPU(pid int, store string) (runCPU, error) {
	var c runCPU
	var err error
	if c.service, err = processCPU(pid); err != nil {
		return c, err
	}
	if c.loadgen, err = selfCPU(); err != nil {
		return c, err
	}
	if strings.HasPrefix(store, "postgres") {
		if c.postgres, err = commCPU("/proc", "postgres"); err != nil {
			return c, err
		}
	}
	if c.machine, err = machineCPU("/proc"); err != nil {
		return c, err
	}
	return c, nil
}

// since is what the run between before and c used over requests.
func (c runCPU) since(before runCPU, requests int) runUse {
	u := runUse{
		service:  cpuPerRequest(before.service, c.service, requests),
		loadgen:  cpuPerRequest(before.loadgen, c.loadgen, requests),
		postgres: -1,
		busy:     busyPercent(before.machine, c.machine),
	}
	if c.postgres != nil {
		u.postgres = cpuPerRequest(0, c.postgres.since(before.postgres), requests)
	}
	return u
}

// measureRSS: a fresh process idle, then the users' creation, logins and
// the idle wait.
func measureRSS(ctx context.Context, cfg suiteConfig, bin string, env []string, sr *storeReport, logf func(string, ...any)) error {
	svc, err := startService(ctx, bin, env)
	if err != nil {
		return err
	}
	defer svc.stop()
	time.Sleep(time.Second)
	m, err := processMemory(svc.pid)
	if err != nil {
		return err
	}
	sr.RSSIdle = m.RSS
	fx, err := createFixtures(ctx, svc, cfg.concurrency)
	if err != nil {
		return err
	}
	t := newTarget(config{baseURL: svc.public, concurrency: cfg.concurrency})
	// Each login is tried until it succeeds: the service answers a burst
	// beyond its password-hash queue with 503, and the reading is of
	// cfg.logins logins that happened.
	var next, refused, lost atomic.Int64
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		wg.Go(func() {
			tu := *t
			u := fx.users[w%len(fx.users)]
			tu.cfg.username, tu.cfg.password = u.username, u.password
			for next.Add(1) <= int64(cfg.logins) {
				ok := false
				for try := 0; try < 20 && !ok && ctx.Err() == nil; try++ {
					if _, err := tu.login(ctx, fx.mobile, "bearer"); err != nil {
						refused.Add(1)
						time.Sleep(500 * time.Millisecond)
						continue
					}
					ok = true
				}
				if !ok {
					lost.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := lost.Load(); n > 0 {
		return fmt.Errorf("%d of %d logins failed 20 times", n, cfg.logins)
	}
	sr.Logins, sr.LoginsRefused = cfg.logins, int(refused.Load())
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(cfg.idleWait):
	}
	if m, err = processMemory(svc.pid); err != nil {
		return err
	}
	sr.RSSAfterLogin = m.RSS
	logf("%-9s RSS idle %.1f MiB, after %d logins and %s idle %.1f MiB", sr.Store, mib(sr.RSSIdle), cfg.logins, cfg.idleWait, mib(sr.RSSAfterLogin))
	return nil
}

// tokenBytesReading names the bytes-per-token reading for -only, which runs
// it alone when it matches (with the ceiling scenario, as always).
const tokenBytesReading = "bytes per token"

// tokenFormats are the formats of the bytes-per-token reading: each its
// own fresh process.
var tokenFormats = []string{"bearer", "jwt"}

// measureTokenBytes issues cfg.tokens client-credentials tokens of each
// format to a fresh in-memory process and divides the growth of its live
// heap and of its RSS by them.
func measureTokenBytes(ctx context.Context, cfg suiteConfig, bin string, env []string, sr *storeReport, logf func(string, ...any)) error {
	var errs []error
	for _, format := range tokenFormats {
		tb, err := measureTokenBytesOf(ctx, cfg, bin, env, format)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", format, err))
			continue
		}
		sr.TokenBytes = append(sr.TokenBytes, tb)
		live := "no live-heap metric"
		if tb.LiveDelta != 0 {
			live = fmt.Sprintf("live heap %.0f B/token", tb.livePerToken())
		}
		logf("%-9s %d %s tokens: RSS +%.1f MiB, %.0f B/token; %s", sr.Store, tb.Tokens, format, mib(tb.RSSDelta), tb.rssPerToken(), live)
	}
	return errors.Join(errs...)
}

// measureTokenBytesOf is measureTokenBytes for one format. The live heap
// is the service's go_gc_heap_live_bytes, what its last collection found
// live; a password login makes one (the service collects and gives memory
// back once its password checks are over), before the tokens and after.
// A binary without the metric (an older baseline) gives RSS only.
func measureTokenBytesOf(ctx context.Context, cfg suiteConfig, bin string, env []string, format string) (tokenBytes, error) {
	tb := tokenBytes{Format: format}
	svc, err := startService(ctx, bin, env)
	if err != nil {
		return tb, err
	}
	defer svc.stop()
	fx, err := createFixtures(ctx, svc, 1)
	if err != nil {
		return tb, err
	}
	t := newTarget(config{baseURL: svc.public, concurrency: cfg.concurrency, clientID: fx.backend, clientSecret: fx.secret,
		username: fx.users[0].username, password: fx.users[0].password})
	collected := func() (float64, bool, error) {
		if _, err := t.login(ctx, fx.mobile, "bearer"); err != nil {
			return 0, false, err
		}
		time.Sleep(1500 * time.Millisecond) // the service's quiet time after a check, and more
		return svc.metric(ctx, "go_gc_heap_live_bytes")
	}
	c := clientCredentials(format)(t)
	// A few first, so that the pools and buffers of serving are in the baseline.
	for range 50 {
		if l := c(ctx); l != "" {
			return tb, fmt.Errorf("client credentials: %s", l)
		}
	}
	liveBefore, hasLive, err := collected()
	if err != nil {
		return tb, err
	}
	before, err := processMemory(svc.pid)
	if err != nil {
		return tb, err
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range cfg.concurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(cfg.tokens) {
				if c(ctx) != "" {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	tb.Tokens = cfg.tokens - int(failed.Load()) // a refused request stores no token
	if tb.Tokens <= 0 {
		return tb, fmt.Errorf("all %d token requests failed", cfg.tokens)
	}
	time.Sleep(2 * time.Second)
	after, err := processMemory(svc.pid)
	if err != nil {
		return tb, err
	}
	tb.RSSDelta = after.RSS - before.RSS
	liveAfter, _, err := collected()
	if err != nil {
		return tb, err
	}
	if hasLive {
		tb.LiveDelta = int64(liveAfter - liveBefore) // with the second login's two tokens: noise
	}
	return tb, nil
}

// The suite's service configuration. The admin token and secret are made
// up per run and never printed.
var (
	suiteAdminToken = randomHex(24)
	suiteSecret     = randomHex(32)
)

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func serviceEnv(store, dbURL string, extra []string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"BFF_ADDR=127.0.0.1:0", "BFF_ADMIN_ADDR=127.0.0.1:0", "BFF_ISSUER=http://127.0.0.1:8080",
		"BFF_ADMIN_TOKEN=" + suiteAdminToken, "BFF_SECRET=" + suiteSecret, "BFF_LOG_LEVEL=info",
	}
	if store == "postgres" {
		env = append(env, "BFF_DATABASE_URL="+dbURL)
	}
	// The in-memory store keeps its default cap: see memoryIssuanceEnv.
	return append(env, extra...)
}

// service is a running mobile-auth-bff.
type service struct {
	cmd           *exec.Cmd
	pid           int
	public, admin string
	done          chan struct{}
	tail          *lineTail
}

var listeningRe = regexp.MustCompile(`"msg":"listening","listener":"(public|admin)","addr":"([^"]+)"`)

func startService(ctx context.Context, bin string, env []string) (*service, error) {
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &service{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}), tail: &lineTail{}}
	addrs := make(chan [2]string, 2)
	go func() {
		// Read the log to the end: a service that cannot write it blocks.
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			if m := listeningRe.FindStringSubmatch(line); m != nil {
				addrs <- [2]string{m[1], "http://" + m[2]}
			}
			s.tail.add(line)
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	timeout := time.After(2 * time.Minute)
	for s.public == "" || s.admin == "" {
		select {
		case a := <-addrs:
			if a[0] == "public" {
				s.public = a[1]
			} else {
				s.admin = a[1]
			}
		case <-s.done:
			return nil, fmt.Errorf("the service exited before listening:\n%s", s.tail)
		case <-timeout:
			s.stop()
			return nil, fmt.Errorf("the service did not start:\n%s", s.tail)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

// stop ends the service gracefully, or kills it after 30 s.
func (s *service) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// lineTail keeps the last lines of the service's log for error messages.
type lineTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > 20 {
		l.lines = l.lines[1:]
	}
}

func (l *lineTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// oneLine is an error's first line, for a table cell.
func oneLine(err error) string {
	first, _, _ := strings.Cut(err.Error(), "\n")
	return strings.ReplaceAll(first, "|", "/")
}

// createFixtures makes the public and the confidential client and n users
// through the admin API.
func createFixtures(ctx context.Context, s *service, n int) (fixtures, error) {
	// Names of their own: on PostgreSQL the database outlives a process.
	run := randomHex(3)
	fx := fixtures{mobile: "bench-mobile-" + run, backend: "bench-backend-" + run}
	enabled := true
	if _, err := s.adminPost(ctx, "/admin/clients", map[string]any{"client_id": fx.mobile, "name": "Bench mobile app",
		"public": true, "grant_types": []string{"password", "refresh_token"}, "scopes": []string{"read", "email", "profile"},
		"jwt_enabled": enabled}); err != nil {
		return fx, err
	}
	created, err := s.adminPost(ctx, "/admin/clients", map[string]any{"client_id": fx.backend, "name": "Bench backend",
		"grant_types": []string{"client_credentials"}, "scopes": []string{"read"}, "jwt_enabled": enabled})
	if err != nil {
		return fx, err
	}
	if err := json.Unmarshal(created, &struct {
		Secret *string `json:"client_secret"`
	}{&fx.secret}); err != nil || fx.secret == "" {
		return fx, errors.New("creating the confidential client answered no client_secret")
	}
	fx.users = make([]benchUser, n)
	errs := make([]error, len(fx.users))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4) // each creation hashes a password
	for i := range fx.users {
		fx.users[i] = benchUser{username: fmt.Sprintf("bench-%s-%03d", run, i), password: "bench-password-" + randomHex(8)}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			u := fx.users[i]
			_, errs[i] = s.adminPost(ctx, "/admin/users", map[string]any{"username": u.username,
				"email": u.username + "@bench.example.org", "name": u.username, "password": u.password})
		})
	}
	wg.Wait()
	return fx, errors.Join(errs...)
}

// metric reads an unlabelled sample of the service's /metrics; ok is
// false when the service does not export it.
func (s *service) metric(ctx context.Context, name string) (v float64, ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.admin+"/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return metricValue(string(body), name)
}

// metricValue finds the sample "name value" in a Prometheus text
// exposition.
func metricValue(text, name string) (float64, bool, error) {
	for line := range strings.Lines(text) {
		rest, found := strings.CutPrefix(line, name+" ")
		if !found {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric %s: %w", name, err)
		}
		return v, true, nil
	}
	return 0, false, nil
}

// adminPost sends JSON to the admin API and returns the 2xx answer's body.
func (s *service) adminPost(ctx context.Context, path string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.admin+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+suiteAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(answer))
	}
	return answer, nil
}

// createDatabase makes a fresh database on the server of serverURL and
// returns its URL and a function that drops it.
func createDatabase(ctx context.Context, serverURL string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	name := "bff_bench_" + randomHex(4)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, serverURL); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	}
	return u.String(), drop, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the suite inside the mobile-auth-bff module")
	}
	return filepath.Dir(mod), nil
}

// gitCommit is HEAD's short hash, "+dirty" when the tree has changes.
// buildRevision builds the service of a git revision in a temporary
// directory (git archive, so that the work tree is left alone) and returns
// the binary and the revision's short commit.
func buildRevision(ctx context.Context, root, rev string, stdout io.Writer) (string, string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short=12", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("unknown revision %q", rev)
	}
	commit := strings.TrimSpace(string(out))
	dir, err := os.MkdirTemp("", "bff-baseline-")
	if err != nil {
		return "", "", err
	}
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return "", "", err
	}
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	archive.Stderr = stdout
	if err := archive.Run(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("git archive %s: %w", commit, err)
	}
	bin := filepath.Join(dir, "mobile-auth-bff")
	fmt.Fprintf(stdout, "building the baseline %s\n", commit)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mobile-auth-bff")
	build.Dir, build.Stdout, build.Stderr = src, stdout, stdout
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("build: %w", err)
	}
	return bin, commit, nil
}

func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		commit += "+dirty"
	}
	return commit
}
