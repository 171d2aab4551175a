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
	RS256PerCore   float64 // RSA-2048 signatures/s on one core
	ArgonPerCore   float64 // argon2id checks/s on one core, service parameters
	PG             bool    // the commit rates below were measured
	Commit1        float64 // commits/s, one connection
	Commit1Latency time.Duration
	PoolConns      int     // the service's pool size (pgx's default on this machine)
	CommitPool     float64 // commits/s on PoolConns connections
	CommitC        float64 // commits/s on -c connections
	Loadgen        float64 // req/s of GET /healthz: the load generator's ceiling
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

// storeReport is one store's results.
type storeReport struct {
	Store         string // "memory" or "postgres"
	Rows          []row
	RSSIdle       int64 // bytes, right after start-up
	RSSAfterLogin int64 // after the users' creation, 100 logins and the idle wait
	Logins        int
	LoginsRefused int     // answers (503) to login attempts that were tried again
	BytesPerToken float64 // in-memory store: RSS delta / tokens; 0 if not measured
	TokenRSSDelta int64
	TokensIssued  int
	Failed        []string // measurements that could not be made, and why
}

// row is one scenario on one store: medians over the runs, errors summed.
type row struct {
	Scenario  string
	Failed    string // why the scenario could not run; the rest is empty
	Runs      []summary
	CPUms     []float64 // per run
	PeakRSS   int64     // bytes, the highest of the runs
	BoundKind bound
	Bound     float64 // req/s
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

func (r row) rps() float64  { return r.medianOf(func(s summary) float64 { return s.RPS }) }
func (r row) p50() float64  { return r.medianOf(func(s summary) float64 { return s.P50ms }) }
func (r row) p99() float64  { return r.medianOf(func(s summary) float64 { return s.P99ms }) }
func (r row) cpu() float64  { return median(r.CPUms) }
func (r row) requests() int { return sumRuns(r.Runs, func(s summary) int { return s.Requests }) }
func (r row) errorsN() int {
	return r.requests() - sumRuns(r.Runs, func(s summary) int { return s.OK })
}
func (r row) percent() float64 {
	if r.Bound <= 0 {
		return 0
	}
	return r.rps() / r.Bound * 100
}

func sumRuns(runs []summary, f func(summary) int) int {
	n := 0
	for _, s := range runs {
		n += f(s)
	}
	return n
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
	p("| RS256 signing (RSA-2048, `crypto/rsa`), one core × %d cores | %.0f/s per core | %.0f |\n",
		r.Cores, r.Bounds.RS256PerCore, r.Bounds.value(boundRS256, r.Cores))
	p("| argon2id check with the service's parameters (`oauth.CheckPassword`), one core × %d cores | %.1f/s per core | %.1f |\n",
		r.Cores, r.Bounds.ArgonPerCore, r.Bounds.value(boundArgon2id, r.Cores))
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
	p("\nA scenario's bound is the lowest of those that apply to it (an issued JWT is one RS256 signature, " +
		"a password grant one argon2id check, a token written to PostgreSQL one commit through the pool, every " +
		"request is limited by the load generator). The per-core rates × cores assume the service has every core; " +
		"here the load generator takes its share of the same cores.\n")

	for _, s := range r.Stores {
		p("\n## Store: %s\n\n", s.Store)
		p("| scenario | req/s | p50 ms | p99 ms | CPU ms/req | peak RSS MiB | errors | bound | %% of bound |\n")
		p("|---|--:|--:|--:|--:|--:|---|---|--:|\n")
		for _, row := range s.Rows {
			if row.Failed != "" {
				p("| %s | — | — | — | — | — | did not run: %s | — | — |\n", row.Scenario, row.Failed)
				continue
			}
			boundText, pct := "—", "—"
			if row.Bound > 0 {
				boundText = fmt.Sprintf("%s: %.0f", row.BoundKind, row.Bound)
				pct = fmt.Sprintf("%.0f %%", row.percent())
			}
			p("| %s | %.0f | %.2f | %.2f | %.3f | %.1f | %s | %s | %s |\n", row.Scenario, row.rps(), row.p50(), row.p99(),
				row.cpu(), mib(row.PeakRSS), row.errorText(), boundText, pct)
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
		if s.TokensIssued > 0 {
			p("- in-memory store: %d live opaque tokens (client credentials) raised RSS by %.1f MiB: **%.0f bytes per live token**\n",
				s.TokensIssued, mib(s.TokenRSSDelta), s.BytesPerToken)
		}
	}

	p("\n## How it is measured\n\n")
	p("- Each scenario runs in a fresh service process (built from the commit above), started by the suite; clients " +
		"and users are created through the admin API (one user per connection where the scenario logs users in).\n")
	p("- req/s counts every completed request; p50/p99 are nearest-rank over successful requests; both are the " +
		"median of the runs. Errors are summed over the runs.\n")
	p("- CPU ms/req: the service process's utime+stime (`/proc/<pid>/stat`) over the run ÷ requests.\n")
	p("- Peak RSS: the highest of `VmRSS` sampled every 50 ms and `VmHWM` (reset through `clear_refs` before each run) " +
		"of `/proc/<pid>/status`.\n")
	p("- Bytes per live token: RSS after issuing the tokens (and 2 s of rest) minus RSS before, ÷ tokens: an upper " +
		"bound, since the Go heap keeps some headroom.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
