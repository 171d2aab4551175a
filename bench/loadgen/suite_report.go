package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report is everything docs/performance.md says; renderReport writes it.
type report struct {
	Date        time.Time
	Commit      string
	Baseline    string // the commit measured beside it (-baseline), if any
	GoVersion   string
	CPU         string
	Cores       int
	LoadBefore  string // /proc/loadavg, 1/5/15 min
	LoadAfter   string
	Smoke       bool
	Concurrency int
	Duration    time.Duration
	Runs        int
	IdleWait    time.Duration
	Tokens      int
	Bounds      bounds
	Stores      []storeReport
}

// bounds are the machine's limits, measured in the same run.
type bounds struct {
	Procs        int     // goroutines the CPU bounds ran on in parallel (GOMAXPROCS)
	RS256All     float64 // RSA-2048 signatures/s on Procs goroutines in all: the highest reading
	RS256PerCore float64 // RS256All ÷ Procs
	ArgonAll     float64 // argon2id checks/s (service parameters) on Procs goroutines in all: the highest reading
	ArgonPerCore float64 // ArgonAll ÷ Procs
	// The readings, before the scenarios and after them.
	RS256Readings, ArgonReadings []float64
	PG                           bool    // the commit rates below were measured
	Commit1                      float64 // commits/s, one connection
	Commit1Latency               time.Duration
	PoolConns                    int     // the service's pool size (pgx's default on this machine)
	CommitPool                   float64 // commits/s on PoolConns connections
	CommitC                      float64 // commits/s on -c connections
	Loadgen                      float64 // req/s of GET /healthz: the load generator's ceiling
}

// bound names a scenario's limit kind.
type bound string

const (
	boundLoadgen  bound = "load generator (GET /healthz)"
	boundRS256    bound = "RS256 signing"
	boundArgon2id bound = "argon2id"
	boundCommit   bound = "PostgreSQL commits"
)

// value is the req/s a bound allows: per-core rates × cores, the pool's
// commit rate (one commit per request), the load generator's ceiling.
func (b bounds) value(kind bound, cores int) float64 {
	switch kind {
	case boundRS256:
		return b.RS256PerCore * float64(cores)
	case boundArgon2id:
		return b.ArgonPerCore * float64(cores)
	case boundCommit:
		if b.PG {
			return b.CommitPool
		}
	case boundLoadgen:
		return b.Loadgen
	}
	return 0
}

// perCore is the per-core rate of a CPU-bound kind (RS256, argon2id); 0
// for the others.
func (b bounds) perCore(kind bound) float64 {
	switch kind {
	case boundRS256:
		return b.RS256PerCore
	case boundArgon2id:
		return b.ArgonPerCore
	}
	return 0
}

// machineBound is the req/s the machine allows a CPU-bound scenario when
// the service spends nothing but the one operation per request (at
// perCore operations/s on one core) while the load generator and
// PostgreSQL, on the same cores, spend what they were measured to spend
// per request (ms): cores ÷ (1/perCore + loadgen + PostgreSQL), in seconds.
func machineBound(cores int, perCore, loadgenMs, postgresMs float64) float64 {
	if perCore <= 0 || cores <= 0 {
		return 0
	}
	return float64(cores) / (1/perCore + (loadgenMs+postgresMs)/1000)
}

// tightest is the lowest of a scenario's bounds that was measured.
func (b bounds) tightest(kinds []bound, cores int) (bound, float64) {
	var best bound
	var v float64
	for _, k := range kinds {
		if x := b.value(k, cores); x > 0 && (v == 0 || x < v) {
			best, v = k, x
		}
	}
	return best, v
}

// readingsText says which readings a CPU bound is the highest of, "" for
// one.
func readingsText(readings []float64, format string) string {
	if len(readings) != 2 {
		return ""
	}
	return fmt.Sprintf("; the higher of "+format+" before the scenarios and "+format+" after", readings[0], readings[1])
}

// tokenBytes is one reading of what the in-memory store keeps per token:
// a fresh process issued Tokens client-credentials tokens of Format.
type tokenBytes struct {
	Format    string // "bearer" (opaque) or "jwt"
	Tokens    int
	RSSDelta  int64 // bytes
	LiveDelta int64 // bytes of live heap (go_gc_heap_live_bytes); 0: not exported
}

func (tb tokenBytes) rssPerToken() float64 { return round(float64(tb.RSSDelta)/float64(tb.Tokens), 0) }
func (tb tokenBytes) livePerToken() float64 {
	return round(float64(tb.LiveDelta)/float64(tb.Tokens), 0)
}

// formatName is how the report names a format's tokens.
func formatName(format string) string {
	if format == "jwt" {
		return "JWT"
	}
	return "opaque"
}

// tokenBytesOf is the reading of format, if any.
func (s *storeReport) tokenBytesOf(format string) (tokenBytes, bool) {
	for _, tb := range s.TokenBytes {
		if tb.Format == format {
			return tb, true
		}
	}
	return tokenBytes{}, false
}

// storeReport is one store's results.
type storeReport struct {
	Store         string // "memory" or "postgres"
	Rows          []row
	RSSIdle       int64 // bytes, right after start-up
	RSSAfterLogin int64 // after the users' creation, 100 logins and the idle wait
	Logins        int
	LoginsRefused int          // answers (503) to login attempts that were tried again
	TokenBytes    []tokenBytes // in-memory store: the bytes-per-token readings, by format
	Failed        []string     // measurements that could not be made, and why
	// Before is the baseline's results, scenario by scenario (-baseline).
	Before *storeReport
}

// row is one scenario on one store: medians over the runs, errors summed.
type row struct {
	Scenario  string
	Failed    string // why the scenario could not run; the rest is empty
	Runs      []summary
	CPUms     []float64 // per run: the service's CPU per request
	LoadgenMs []float64 // per run: the load generator's (the suite's own process) CPU per request
	PGms      []float64 // per run: all PostgreSQL processes' CPU per request; nil without PostgreSQL
	BusyPct   []float64 // per run: the machine's busy share of all cores, %
	PeakRSS   int64     // bytes, the highest of the runs
	BoundKind bound
	Bound     float64 // req/s
	// MachineKind and MachineBound: for a CPU-bound scenario (RS256,
	// argon2id), machineBound with the medians of LoadgenMs and PGms.
	MachineKind  bound
	MachineBound float64
}

// median of values (the mean of the middle two for an even count).
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(values))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (r row) medianOf(f func(summary) float64) float64 {
	v := make([]float64, len(r.Runs))
	for i, s := range r.Runs {
		v[i] = f(s)
	}
	return median(v)
}

func (r row) rps() float64     { return r.medianOf(func(s summary) float64 { return s.RPS }) }
func (r row) p50() float64     { return r.medianOf(func(s summary) float64 { return s.P50ms }) }
func (r row) p99() float64     { return r.medianOf(func(s summary) float64 { return s.P99ms }) }
func (r row) cpu() float64     { return median(r.CPUms) }
func (r row) loadgen() float64 { return median(r.LoadgenMs) }
func (r row) pg() float64      { return median(r.PGms) }
func (r row) busy() float64    { return median(r.BusyPct) }
func (r row) percent() float64 {
	if r.Bound <= 0 {
		return 0
	}
	return r.rps() / r.Bound * 100
}

// setMachineBound sets the machine bound of a row from the first CPU-bound
// kind of kinds, if any.
func (r *row) setMachineBound(b bounds, kinds []bound, cores int) {
	for _, k := range kinds {
		if pc := b.perCore(k); pc > 0 {
			r.MachineKind, r.MachineBound = k, machineBound(cores, pc, r.loadgen(), r.pg())
			return
		}
	}
}

// errorText is the errors of all runs by label, or "0".
func (r row) errorText() string {
	all := map[string]int{}
	for _, s := range r.Runs {
		for l, n := range s.Errors {
			all[l] += n
		}
	}
	if len(all) == 0 {
		return "0"
	}
	return formatErrors(all)
}

// shared says whether the load average shows other work on the machine:
// more than a quarter of a core busy before or after the suite (the suite
// itself leaves some load behind, so "after" is only a hint).
func (r report) shared() bool {
	limit := float64(r.Cores) / 4
	return load1(r.LoadBefore) > limit || load1(r.LoadAfter) > float64(r.Cores)+limit
}

func renderReport(w io.Writer, r report) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Performance\n\n")
	p("Generated by `go run ./bench/loadgen suite` (see [bench/README.md](../bench/README.md)); do not edit by hand.\n")
	if r.Smoke {
		p("\n**Smoke run**: one short run per scenario; the numbers say that the suite works, not how fast the service is.\n")
	}
	p("\n## Run\n\n")
	p("| | |\n|---|---|\n")
	p("| date | %s |\n", r.Date.UTC().Format("2006-01-02 15:04 UTC"))
	p("| commit | `%s` |\n", r.Commit)
	if r.Baseline != "" {
		p("| baseline (before) | `%s`, measured in the same run, interleaved scenario by scenario, on a database of its own |\n", r.Baseline)
	}
	p("| machine | %d cores, %s |\n", r.Cores, r.CPU)
	p("| Go | %s |\n", r.GoVersion)
	p("| load | %d connections, %s per run, median of %d run(s); the load generator runs on the same machine |\n",
		r.Concurrency, r.Duration, r.Runs)
	p("| load average (1/5/15 min) | before %s, after %s |\n", r.LoadBefore, r.LoadAfter)
	if r.shared() {
		p("\n**The machine was shared with other builds and tests during the run** (see the load average before it " +
			"started): every number below is lower, and noisier, than on an idle machine. Compare ratios within this run, " +
			"not absolute numbers between runs.\n")
	}

	p("\n## Bounds (measured in this run, on this machine)\n\n")
	p("| bound | measured | as req/s |\n|---|--:|--:|\n")
	p("| RS256 signing (RSA-2048, `crypto/rsa`), measured on %d cores in parallel | %.0f/s in all, %.0f/s per core%s | %.0f |\n",
		r.Bounds.Procs, r.Bounds.RS256All, r.Bounds.RS256PerCore, readingsText(r.Bounds.RS256Readings, "%.0f"), r.Bounds.value(boundRS256, r.Cores))
	p("| argon2id check with the service's parameters (`oauth.CheckPassword`), measured on %d cores in parallel | %.1f/s in all, %.1f/s per core%s | %.1f |\n",
		r.Bounds.Procs, r.Bounds.ArgonAll, r.Bounds.ArgonPerCore, readingsText(r.Bounds.ArgonReadings, "%.1f"), r.Bounds.value(boundArgon2id, r.Cores))
	if r.Bounds.PG {
		p("| PostgreSQL single-row INSERT+COMMIT, 1 connection | %.0f/s (%.2f ms each) | |\n",
			r.Bounds.Commit1, float64(r.Bounds.Commit1Latency)/float64(time.Millisecond))
		p("| PostgreSQL single-row INSERT+COMMIT, %d connections (the service's pool) | %.0f/s | %.0f |\n",
			r.Bounds.PoolConns, r.Bounds.CommitPool, r.Bounds.CommitPool)
		p("| PostgreSQL single-row INSERT+COMMIT, %d connections | %.0f/s | |\n", r.Concurrency, r.Bounds.CommitC)
	} else {
		p("| PostgreSQL commit rate | not measured (no database URL) | |\n")
	}
	p("| load generator's ceiling: `GET /healthz`, %d connections, in-memory service | %.0f req/s | %.0f |\n",
		r.Concurrency, r.Bounds.Loadgen, r.Bounds.Loadgen)
	p("\nA scenario's bound is the lowest of those that apply to it (an issued JWT is one RS256 signature, "+
		"a password grant one argon2id check, a token written to PostgreSQL one commit through the pool, every "+
		"request is limited by the load generator). RS256 and argon2id are measured with one goroutine per core "+
		"(`GOMAXPROCS`) in parallel, the machine's rate with every core busy, before the scenarios and again after "+
		"them: the bound is the higher reading, since other work on the machine lowers one and a bound read low "+
		"would flatter every scenario; per core is that ÷ %d, and the bound is "+
		"per core × %d cores. **This bare bound assumes the service has every core to itself**, which it has not: the "+
		"load generator and PostgreSQL run on the same cores.\n", r.Bounds.Procs, r.Cores)
	p("\nSo the JWT and password scenarios also have a **machine bound**: the req/s if the service spent nothing " +
		"but the one signature or check per request while the load generator and PostgreSQL spent what they were " +
		"measured to spend per request in that scenario (the `loadgen ms/req` and `PostgreSQL ms/req` columns): " +
		"cores ÷ (1/per-core rate + loadgen CPU per request + PostgreSQL CPU per request). It is the true ceiling of " +
		"this setup, with everything on one machine; the bare bound is the service's alone. Both are shown.\n")

	for _, s := range r.Stores {
		p("\n## Store: %s\n\n", s.Store)
		p("| scenario | req/s | p50 ms | p99 ms | CPU ms/req | loadgen ms/req | PostgreSQL ms/req | machine busy %% " +
			"| peak RSS MiB | errors | bound | %% of bound | machine bound | %% of machine bound |\n")
		p("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|--:|---|--:|\n")
		for _, row := range s.Rows {
			renderRow(p, row)
		}
		if s.Before != nil {
			renderBeforeAfter(p, s)
		}
		p("\n")
		p("- RSS idle (fresh process, nothing done yet): **%.1f MiB**\n", mib(s.RSSIdle))
		p("- RSS after creating the users, %d logins and %s idle: **%.1f MiB**", s.Logins, r.IdleWait, mib(s.RSSAfterLogin))
		if s.LoginsRefused > 0 {
			p(" (%d login attempts were refused on the way and tried again)", s.LoginsRefused)
		}
		p("\n")
		var peak int64
		for _, row := range s.Rows {
			peak = max(peak, row.PeakRSS)
		}
		p("- RSS peak under any scenario: **%.1f MiB**\n", mib(peak))
		for _, f := range s.Failed {
			p("- not measured: %s\n", f)
		}
		for _, tb := range s.TokenBytes {
			p("- in-memory store, %d live %s tokens (client credentials): ", tb.Tokens, formatName(tb.Format))
			if tb.LiveDelta != 0 {
				p("**%.0f bytes of live heap per token** (%.1f MiB); ", tb.livePerToken(), mib(tb.LiveDelta))
			}
			p("RSS grew by %.1f MiB, %.0f bytes per token (with the garbage collector's headroom)\n", mib(tb.RSSDelta), tb.rssPerToken())
		}
	}

	for _, s := range r.Stores {
		if s.Before == nil || len(s.Before.Rows) == 0 {
			continue
		}
		b := s.Before
		p("\n## Memory before → after: %s\n\n", s.Store)
		p("| reading | before | after |\n|---|--:|--:|\n")
		p("| RSS idle | %.1f MiB | %.1f MiB |\n", mib(b.RSSIdle), mib(s.RSSIdle))
		p("| RSS after the users, %d logins and %s idle | %.1f MiB | %.1f MiB |\n", s.Logins, r.IdleWait, mib(b.RSSAfterLogin), mib(s.RSSAfterLogin))
		var peakB, peakA int64
		for _, row := range b.Rows {
			peakB = max(peakB, row.PeakRSS)
		}
		for _, row := range s.Rows {
			peakA = max(peakA, row.PeakRSS)
		}
		p("| RSS peak under any scenario | %.1f MiB | %.1f MiB |\n", mib(peakB), mib(peakA))
		for _, format := range tokenFormats {
			after, ok := s.tokenBytesOf(format)
			if !ok {
				continue
			}
			before, hasBefore := b.tokenBytesOf(format)
			reading := func(v float64, ok bool) string {
				if !ok {
					return "—"
				}
				return fmt.Sprintf("%.0f", v)
			}
			p("| live heap per in-memory %s token, bytes | %s | %s |\n", formatName(format),
				reading(before.livePerToken(), hasBefore && before.LiveDelta != 0), reading(after.livePerToken(), after.LiveDelta != 0))
			p("| RSS per in-memory %s token, bytes | %s | %s |\n", formatName(format),
				reading(before.rssPerToken(), hasBefore), reading(after.rssPerToken(), true))
		}
	}

	p("\n## How it is measured\n\n")
	p("- Each scenario runs in a fresh service process (built from the commit above), started by the suite; clients " +
		"and users are created through the admin API (one user per connection where the scenario logs users in).\n")
	p("- req/s counts every completed request; p50/p99 are nearest-rank over successful requests; both are the " +
		"median of the runs. Errors are summed over the runs.\n")
	p("- CPU ms/req: the service process's utime+stime (`/proc/<pid>/stat`) over the run ÷ requests. " +
		"loadgen ms/req: the same of the suite's own process, the load generator (`getrusage(RUSAGE_SELF)`). " +
		"PostgreSQL ms/req (PostgreSQL store only): the utime+stime over the run of every process whose " +
		"`/proc/<pid>/stat` command name is `postgres` (the server's backends and background processes), per pid; a " +
		"process that starts during the run counts whole, one that ends during it is missed (so it is a lower bound). " +
		"machine busy %%: `/proc/stat`'s `cpu` line over the run, (total − idle − iowait) ÷ total, of all cores. " +
		"Whatever of the busy share the three do not explain is other work on the machine.\n")
	p("- Bounds: the bare bound is per-core rate × cores; the machine bound is cores ÷ (1/per-core rate + loadgen " +
		"CPU per request + PostgreSQL CPU per request), with the medians of the scenario's runs: what is left of the " +
		"cores for the signatures or checks once the co-located load generator and database have had what they " +
		"were measured to use.\n")
	p("- Peak RSS: the highest of `VmRSS` sampled every 50 ms and `VmHWM` (reset through `clear_refs` before each run) " +
		"of `/proc/<pid>/status`.\n")
	p("- Bytes per live token: a fresh process per format issues the tokens (client credentials, 50 connections). " +
		"Live heap: the service's `go_gc_heap_live_bytes` (what its last garbage collection found live) after the " +
		"tokens minus before them, each read after a password login (the service collects once its checks are over), ÷ " +
		"tokens: what the store keeps. RSS: `VmRSS` after the tokens (and 2 s of rest) minus before, ÷ tokens: with the " +
		"heap's headroom (Go lets the heap grow to twice what is live before it collects, `GOGC=100`).\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// renderRow writes one scenario's line of a store's table.
func renderRow(p func(string, ...any), row row) {
	if row.Failed != "" {
		p("| %s | — | — | — | — | — | — | — | — | did not run: %s | — | — | — | — |\n", row.Scenario, row.Failed)
		return
	}
	boundText, pct := "—", "—"
	if row.Bound > 0 {
		boundText = fmt.Sprintf("%s: %.0f", row.BoundKind, row.Bound)
		pct = fmt.Sprintf("%.0f %%", row.percent())
	}
	machineText, machinePct := "—", "—"
	if row.MachineBound > 0 {
		machineText = fmt.Sprintf("%s: %.0f", row.MachineKind, row.MachineBound)
		machinePct = fmt.Sprintf("%.0f %%", row.rps()/row.MachineBound*100)
	}
	pg := "—"
	if row.PGms != nil {
		pg = fmt.Sprintf("%.3f", row.pg())
	}
	p("| %s | %.0f | %.2f | %.2f | %.3f | %.3f | %s | %.0f | %.1f | %s | %s | %s | %s | %s |\n", row.Scenario, row.rps(),
		row.p50(), row.p99(), row.cpu(), row.loadgen(), pg, row.busy(), mib(row.PeakRSS), row.errorText(), boundText, pct,
		machineText, machinePct)
}

// renderBeforeAfter writes a store's scenarios before (the baseline) and
// after (the tree), measured side by side in one run.
func renderBeforeAfter(p func(string, ...any), s storeReport) {
	p("\nBefore → after (the baseline and this commit, each scenario measured on both in turn):\n\n")
	p("| scenario | before req/s | after req/s | after ÷ before | before p99 ms | after p99 ms | before CPU ms/req | after CPU ms/req |\n")
	p("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for i, a := range s.Rows {
		if i >= len(s.Before.Rows) {
			break
		}
		b := s.Before.Rows[i]
		if a.Failed != "" || b.Failed != "" || b.rps() == 0 {
			p("| %s | — | — | — | — | — | — | — |\n", a.Scenario)
			continue
		}
		p("| %s | %.0f | %.0f | ×%.2f | %.2f | %.2f | %.3f | %.3f |\n", a.Scenario, b.rps(), a.rps(), a.rps()/b.rps(),
			b.p99(), a.p99(), b.cpu(), a.cpu())
	}
}
