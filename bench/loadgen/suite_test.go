package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks: 3 s at USER_HZ 100.
	tail := " S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 8 0 100 1000000 5000 18446744073709551615"
	tests := []struct {
		name string
		stat string
		want time.Duration
	}{
		{"plain", "4242 (mobile-auth-bff)" + tail, 3 * time.Second},
		// A command name may hold spaces and ')': fields count from the last ')'.
		{"odd command name", "4242 (a) b (c d)" + tail, 3 * time.Second},
		{"zero", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatCPU(tt.stat)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseStatCPU = %v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "4242 mobile-auth-bff S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 0 0 0"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
}

func TestCPUPerRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		before, after time.Duration
		requests      int
		want          float64
	}{
		{"1.5 s over 1000 requests", 2 * time.Second, 3500 * time.Millisecond, 1000, 1.5},
		{"a tick over many", 0, 10 * time.Millisecond, 3000, 0.003},
		{"no requests", 0, time.Second, 0, 0},
		{"clock went back", time.Second, 0, 10, 0},
	}
	for _, tt := range tests {
		if got := cpuPerRequest(tt.before, tt.after, tt.requests); got != tt.want {
			t.Errorf("%s: cpuPerRequest = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	status := "Name:\tmobile-auth-bff\nVmPeak:\t 1300000 kB\nVmHWM:\t   84000 kB\nVmRSS:\t   24576 kB\nThreads:\t8\n"
	got, err := parseStatus(status)
	if err != nil {
		t.Fatal(err)
	}
	if want := (memory{RSS: 24 << 20, HWM: 84000 << 10}); got != want {
		t.Errorf("parseStatus = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\nVmHWM:\t1 kB\n", "VmRSS:\tx kB\nVmHWM:\t1 kB\n"} {
		if _, err := parseStatus(bad); err == nil {
			t.Errorf("parseStatus(%q): no error", bad)
		}
	}
}

func TestCPUModel(t *testing.T) {
	t.Parallel()
	info := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.60GHz\n\nprocessor\t: 1\nmodel name\t: other\n"
	if got, want := cpuModel(info), "Intel(R) Xeon(R) Processor @ 2.60GHz"; got != want {
		t.Errorf("cpuModel = %q, want %q", got, want)
	}
	if got := cpuModel("processor: 0\n"); got != "unknown" {
		t.Errorf("cpuModel without a model name = %q", got)
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	tests := []struct {
		values []float64
		want   float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{30, 10, 20}, 20},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.values); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.values, got, tt.want)
		}
	}
}

func TestBoundsTightest(t *testing.T) {
	t.Parallel()
	b := bounds{RS256PerCore: 1000, ArgonPerCore: 10, PG: true, CommitPool: 1500, Loadgen: 9000}
	tests := []struct {
		name  string
		b     bounds
		kinds []bound
		kind  bound
		value float64
	}{
		{"RS256 × 2 cores under the load generator", b, []bound{boundLoadgen, boundRS256}, boundRS256, 2000},
		{"commits below RS256", b, []bound{boundLoadgen, boundRS256, boundCommit}, boundCommit, 1500},
		{"argon2id", b, []bound{boundLoadgen, boundArgon2id, boundCommit}, boundArgon2id, 20},
		{"reads: the load generator", b, []bound{boundLoadgen}, boundLoadgen, 9000},
		{"no database: commits do not count", bounds{CommitPool: 5, Loadgen: 9000}, []bound{boundLoadgen, boundCommit}, boundLoadgen, 9000},
		{"nothing measured", bounds{}, []bound{boundLoadgen}, "", 0},
	}
	for _, tt := range tests {
		kind, value := tt.b.tightest(tt.kinds, 2)
		if kind != tt.kind || value != tt.value {
			t.Errorf("%s: tightest = %q %v, want %q %v", tt.name, kind, value, tt.kind, tt.value)
		}
	}
}

func TestRenderReport(t *testing.T) {
	t.Parallel()
	runs := func(rps ...float64) []summary {
		s := make([]summary, len(rps))
		for i, r := range rps {
			s[i] = summary{RPS: r, P50ms: r / 1000, P99ms: r / 100, Requests: 100, OK: 100, Errors: map[string]int{}}
		}
		return s
	}
	withErrors := runs(20, 18, 19)
	withErrors[1].Errors, withErrors[1].OK = map[string]int{"429": 2, "transport": 1}, 97
	r := report{
		Date: time.Date(2026, 12, 3, 10, 30, 0, 0, time.UTC), Commit: "abc123", GoVersion: "go1.26.8",
		CPU: "Test CPU @ 2.60GHz", Cores: 2, LoadBefore: "3.10 2.00 1.00", LoadAfter: "4.00 3.00 2.00",
		Concurrency: 50, Duration: 15 * time.Second, Runs: 3, IdleWait: time.Minute,
		Bounds: bounds{Procs: 2, RS256All: 2000, RS256PerCore: 1000, ArgonAll: 20.5, ArgonPerCore: 10.25, RS256Readings: []float64{1800, 2000},
			PG: true, Commit1: 900, Commit1Latency: 1100 * time.Microsecond,
			PoolConns: 4, CommitPool: 2500, CommitC: 3000, Loadgen: 10000},
		Stores: []storeReport{{
			Store: "memory",
			Rows: []row{
				{Scenario: "client_credentials → JWT RS256", Runs: runs(1500, 1700, 1600), CPUms: []float64{1.2, 1.0, 1.1},
					LoadgenMs: []float64{0.2, 0.25, 0.3}, BusyPct: []float64{97, 99, 98},
					PeakRSS: 90 << 20, BoundKind: boundRS256, Bound: 2000, MachineKind: boundRS256, MachineBound: 1600},
				{Scenario: "password grant", Runs: withErrors, CPUms: []float64{90, 95, 100}, LoadgenMs: []float64{0.5},
					PGms: []float64{1.5, 2, 2.5}, BusyPct: []float64{100}, PeakRSS: 130 << 20,
					BoundKind: boundArgon2id, Bound: 20.5, MachineKind: boundArgon2id, MachineBound: 19},
				{Scenario: "loadgen ceiling: GET /healthz", Runs: runs(10000), CPUms: []float64{0.05}, LoadgenMs: []float64{0.1},
					BusyPct: []float64{88.4}, PeakRSS: 25 << 20},
				{Scenario: "introspection, opaque", Failed: "prepare: log in: 503"},
			},
			Failed:        []string{"bytes per token: all 20 token requests failed"},
			LoginsRefused: 31,
			RSSIdle:       24 << 20, RSSAfterLogin: 62 << 20, Logins: 100,
			TokenBytes: []tokenBytes{{Format: "bearer", Tokens: 20000, RSSDelta: 40 << 20, LiveDelta: 6 << 20},
				{Format: "jwt", Tokens: 10000, RSSDelta: 8 << 20}},
		}},
	}
	var b strings.Builder
	if err := renderReport(&b, r); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"| date | 2026-12-03 10:30 UTC |",
		"| commit | `abc123` |",
		"| machine | 2 cores, Test CPU @ 2.60GHz |",
		"| Go | go1.26.8 |",
		"| load average (1/5/15 min) | before 3.10 2.00 1.00, after 4.00 3.00 2.00 |",
		"**The machine was shared with other builds",
		"| RS256 signing (RSA-2048, `crypto/rsa`), measured on 2 cores in parallel | 2000/s in all, 1000/s per core; the higher of 1800 before the scenarios and 2000 after | 2000 |",
		"| argon2id check with the service's parameters (`oauth.CheckPassword`), measured on 2 cores in parallel | 20.5/s in all, 10.2/s per core | 20.5 |",
		"per core is that ÷ 2, and the bound is per core × 2 cores. **This bare bound assumes the service has every core to itself**",
		"also have a **machine bound**",
		"| scenario | req/s | p50 ms | p99 ms | CPU ms/req | loadgen ms/req | PostgreSQL ms/req | machine busy % | peak RSS MiB | errors | bound | % of bound | machine bound | % of machine bound |",
		"| PostgreSQL single-row INSERT+COMMIT, 1 connection | 900/s (1.10 ms each) | |",
		"| PostgreSQL single-row INSERT+COMMIT, 4 connections (the service's pool) | 2500/s | 2500 |",
		// Medians of the runs: 1600 req/s, p50 1.60, p99 16.00, CPU 1.1 ms, loadgen 0.25 ms, busy 98 %;
		// 80 % of 2000, 100 % of the machine's 1600; no PostgreSQL.
		"| client_credentials → JWT RS256 | 1600 | 1.60 | 16.00 | 1.100 | 0.250 | — | 98 | 90.0 | 0 | RS256 signing: 2000 | 80 % | RS256 signing: 1600 | 100 % |",
		// Errors summed over the runs, by label.
		"| password grant | 19 | 0.02 | 0.19 | 95.000 | 0.500 | 2.000 | 100 | 130.0 | 429: 2, transport: 1 | argon2id: 20 | 93 % | argon2id: 19 | 100 % |",
		"| loadgen ceiling: GET /healthz | 10000 | 10.00 | 100.00 | 0.050 | 0.100 | — | 88 | 25.0 | 0 | — | — | — | — |",
		"| introspection, opaque | — | — | — | — | — | — | — | — | did not run: prepare: log in: 503 | — | — | — | — |",
		"loadgen ms/req: the same of the suite's own process",
		"machine busy %: `/proc/stat`'s `cpu` line",
		"the machine bound is cores ÷ (1/per-core rate + loadgen CPU per request + PostgreSQL CPU per request)",
		"- RSS idle (fresh process, nothing done yet): **24.0 MiB**",
		"- RSS after creating the users, 100 logins and 1m0s idle: **62.0 MiB** (31 login attempts were refused on the way and tried again)",
		"- not measured: bytes per token: all 20 token requests failed",
		"- RSS peak under any scenario: **130.0 MiB**",
		"- in-memory store, 20000 live opaque tokens (client credentials): **315 bytes of live heap per token** (6.0 MiB); RSS grew by 40.0 MiB, 2097 bytes per token",
		// A baseline without the live-heap metric: RSS only.
		"- in-memory store, 10000 live JWT tokens (client credentials): RSS grew by 8.0 MiB, 839 bytes per token (with",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Smoke run") {
		t.Error("a full run's report says it is a smoke run")
	}

	// An idle machine, a smoke run, no database.
	r.LoadBefore, r.LoadAfter, r.Smoke, r.Bounds.PG = "0.05 0.10 0.20", "1.50 0.50 0.30", true, false
	b.Reset()
	if err := renderReport(&b, r); err != nil {
		t.Fatal(err)
	}
	got = b.String()
	for _, want := range []string{"**Smoke run**", "| PostgreSQL commit rate | not measured (no database URL) | |"} {
		if !strings.Contains(got, want) {
			t.Errorf("smoke report lacks %q", want)
		}
	}
	if strings.Contains(got, "was shared") {
		t.Error("an idle machine is reported as shared")
	}
}

func TestParseSuiteFlags(t *testing.T) {
	t.Setenv("BFF_BENCH_DATABASE_URL", "")
	type view struct {
		C, Runs, Tokens   int
		D, Idle, Bound, W time.Duration
		Smoke             bool
	}
	v := func(c suiteConfig) view {
		return view{c.concurrency, c.runs, c.tokens, c.duration, c.idleWait, c.boundTime, c.warmup, c.smoke}
	}
	tests := []struct {
		name string
		args []string
		want view
	}{
		{"defaults", nil, view{50, 3, 20000, 15 * time.Second, time.Minute, 3 * time.Second, time.Second, false}},
		// Every run warms up a tenth of its duration, at least 0.5 s and at
		// most 1 s: refresh chains log in again there (memoryIssuanceEnv).
		{"smoke", []string{"-smoke"}, view{50, 1, 2000, 1500 * time.Millisecond, time.Second, 300 * time.Millisecond, 500 * time.Millisecond, true}},
		{"smoke keeps what is given", []string{"-smoke", "-d", "5s", "-idle-wait", "0s", "-c", "8"},
			view{8, 1, 2000, 5 * time.Second, 0, 300 * time.Millisecond, 500 * time.Millisecond, true}},
		{"short runs warm up at least half a second", []string{"-d", "2s"}, view{50, 3, 20000, 2 * time.Second, time.Minute, 3 * time.Second, 500 * time.Millisecond, false}},
		{"runs warm up a tenth", []string{"-d", "8s"}, view{50, 3, 20000, 8 * time.Second, time.Minute, 3 * time.Second, 800 * time.Millisecond, false}},
	}
	for _, tt := range tests {
		cfg, err := parseSuiteFlags(tt.args, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, v(cfg)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	for _, bad := range [][]string{{"-c", "0"}, {"-runs", "0"}, {"-d", "0s"}, {"-tokens", "0"}, {"extra"}} {
		if _, err := parseSuiteFlags(bad, io.Discard); err == nil {
			t.Errorf("parseSuiteFlags(%q): no error", bad)
		}
	}
}

func TestParseCPULine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		stat string
		want cpuTicks
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice: guest is in user already.
		{"current kernel", "cpu  100 5 30 800 40 0 10 15 7 0\ncpu0 50 2 15 400 20 0 5 8 3 0\nintr 1\n",
			cpuTicks{Busy: 160, Total: 1000}},
		{"older kernel, four fields", "cpu 10 0 10 80\n", cpuTicks{Busy: 20, Total: 100}},
	}
	for _, tt := range tests {
		got, err := parseCPULine(tt.stat)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s: parseCPULine = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4\n", "cpu 1 2\n", "cpu 1 2 x 4 5\n"} {
		if _, err := parseCPULine(bad); err == nil {
			t.Errorf("parseCPULine(%q): no error", bad)
		}
	}
	before, after := cpuTicks{Busy: 100, Total: 1000}, cpuTicks{Busy: 250, Total: 1200}
	if got := busyPercent(before, after); got != 75 {
		t.Errorf("busyPercent = %v, want 75", got)
	}
	if got := busyPercent(after, after); got != 0 {
		t.Errorf("busyPercent without time = %v, want 0", got)
	}
}

// fakeProc writes a /proc/<pid>/stat of comm with utime and stime ticks
// under root.
func fakeProc(t *testing.T, root string, pid int, comm string, utime, stime int) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (%s) S 1 1 1 0 -1 0 0 0 0 0 %d %d 0 0 20 0 1 0 100 1000 50\n", pid, comm, utime, stime)
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresCPU(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fakeProc(t, root, 100, "postgres", 50, 10)        // the postmaster: 0.6 s
	fakeProc(t, root, 101, "postgres", 200, 100)      // a backend that goes on: 3 s
	fakeProc(t, root, 102, "postgres", 30, 0)         // a backend that ends during the run
	fakeProc(t, root, 103, "mobile-auth-bff", 999, 0) // not PostgreSQL
	fakeProc(t, root, 104, "postgres x", 999, 0)      // another command name
	// Entries that are no process: skipped.
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte("cpu 1 2 3 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := commCPU(root, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	want := procCPU{100: 600 * time.Millisecond, 101: 3 * time.Second, 102: 300 * time.Millisecond}
	if diff := cmp.Diff(want, before); diff != "" {
		t.Fatalf("commCPU before (-want +got):\n%s", diff)
	}

	// During the run: the postmaster used 0.1 s, the backend 1.5 s, 102
	// ended, 105 started and used 0.4 s.
	fakeProc(t, root, 100, "postgres", 55, 15)
	fakeProc(t, root, 101, "postgres", 300, 150)
	if err := os.RemoveAll(filepath.Join(root, "102")); err != nil {
		t.Fatal(err)
	}
	fakeProc(t, root, 105, "postgres", 40, 0)
	after, err := commCPU(root, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := after.since(before), 2*time.Second; got != want {
		t.Errorf("since = %v, want %v", got, want)
	}
	// A reused pid with less CPU than before counts whole.
	if got, want := (procCPU{7: time.Second}).since(procCPU{7: 5 * time.Second}), time.Second; got != want {
		t.Errorf("since with a reused pid = %v, want %v", got, want)
	}
	if _, err := commCPU(filepath.Join(root, "missing"), "postgres"); err == nil {
		t.Error("commCPU of a missing proc root: no error")
	}
}

func TestMachineBound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                  string
		cores                 int
		perCore, lg, pg, want float64
	}{
		// 1 ms per signature alone: 2 cores → 2000/s, the bare bound.
		{"nothing else", 2, 1000, 0, 0, 2000},
		// 1 ms + 0.25 ms loadgen + 0.75 ms PostgreSQL = 2 ms a request: 2 cores → 1000/s.
		{"loadgen and PostgreSQL", 2, 1000, 0.25, 0.75, 1000},
		// argon2id at 10/s per core: 100 ms + 0.5 ms + 4.5 ms = 105 ms.
		{"argon2id", 2, 10, 0.5, 4.5, 2 / 0.105},
		{"not measured", 2, 0, 1, 1, 0},
	}
	for _, tt := range tests {
		if got := machineBound(tt.cores, tt.perCore, tt.lg, tt.pg); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: machineBound = %v, want %v", tt.name, got, tt.want)
		}
	}

	b := bounds{RS256PerCore: 1000, ArgonPerCore: 10, PG: true, CommitPool: 500, Loadgen: 9000}
	r := row{LoadgenMs: []float64{0.2, 0.25, 0.3}, PGms: []float64{0.75}}
	r.setMachineBound(b, []bound{boundLoadgen, boundRS256, boundCommit}, 2)
	if r.MachineKind != boundRS256 || r.MachineBound != 1000 {
		t.Errorf("setMachineBound: %q %v, want RS256 1000", r.MachineKind, r.MachineBound)
	}
	r = row{LoadgenMs: []float64{0.1}}
	r.setMachineBound(b, []bound{boundLoadgen, boundCommit}, 2)
	if r.MachineKind != "" || r.MachineBound != 0 {
		t.Errorf("setMachineBound of a scenario bound by no CPU: %q %v", r.MachineKind, r.MachineBound)
	}
}

func TestRunCPUSince(t *testing.T) {
	t.Parallel()
	before := runCPU{service: time.Second, loadgen: 2 * time.Second, machine: cpuTicks{Busy: 100, Total: 1000}}
	after := runCPU{service: 3 * time.Second, loadgen: 2500 * time.Millisecond, machine: cpuTicks{Busy: 400, Total: 1400}}
	want := runUse{service: 2, loadgen: 0.5, postgres: -1, busy: 75}
	if got := after.since(before, 1000); got != want {
		t.Errorf("since without PostgreSQL = %+v, want %+v", got, want)
	}
	before.postgres, after.postgres = procCPU{1: time.Second}, procCPU{1: 1100 * time.Millisecond, 2: 200 * time.Millisecond}
	want.postgres = 0.3
	if got := after.since(before, 1000); got != want {
		t.Errorf("since with PostgreSQL = %+v, want %+v", got, want)
	}
}

func TestParallelRate(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	rate, err := parallelRate(20*time.Millisecond, 3, func() error { calls.Add(1); time.Sleep(time.Millisecond); return nil })
	if err != nil || rate <= 0 || calls.Load() < 3 {
		t.Errorf("parallelRate = %v, %v after %d calls", rate, err, calls.Load())
	}
	if _, err := parallelRate(time.Second, 2, func() error { return errors.New("boom") }); err == nil {
		t.Error("parallelRate: an op's error is lost")
	}
}

// TestMetricValue: the sample of the name asked for, not one whose name
// it starts, not a comment.
func TestMetricValue(t *testing.T) {
	text := "# HELP go_gc_heap_live_bytes Heap memory occupied by live objects.\n" +
		"# TYPE go_gc_heap_live_bytes gauge\n" +
		"go_gc_heap_live_bytes_other 1\n" +
		"go_gc_heap_live_bytes 1.2345e+07\n"
	if v, ok, err := metricValue(text, "go_gc_heap_live_bytes"); err != nil || !ok || v != 12345000 {
		t.Errorf("go_gc_heap_live_bytes = %v, %v, %v; want 12345000", v, ok, err)
	}
	if _, ok, err := metricValue(text, "go_goroutines"); ok || err != nil {
		t.Errorf("a metric not exported: %v, %v", ok, err)
	}
	if _, _, err := metricValue("x NaNx\n", "x"); err == nil {
		t.Error("a value that is no number: no error")
	}
}

// TestAssignBounds: the rows get the bounds of the report as it ends (the
// higher readings), a PostgreSQL row its commit bound too, and the ceiling
// and failed rows none.
func TestAssignBounds(t *testing.T) {
	runs := func(rps float64) []summary {
		return []summary{{RPS: rps, Requests: 100, OK: 100, Errors: map[string]int{}}}
	}
	b := bounds{Procs: 2}
	b.RS256Readings, b.ArgonReadings = []float64{1500, 2000}, []float64{80, 70}
	b.RS256All, b.RS256PerCore, b.ArgonAll, b.ArgonPerCore = 2000, 1000, 80, 40
	b.PG, b.CommitPool, b.Loadgen = true, 1500, 30000
	rep := report{Cores: 2, Bounds: b, Stores: []storeReport{
		{Store: "memory", Rows: []row{
			{Scenario: suiteScenarios[0].name, Runs: runs(30000)},
			{Scenario: "client_credentials → JWT RS256", Runs: runs(1500), LoadgenMs: []float64{0.1}},
			{Scenario: "password grant → opaque, a distinct user per connection", Failed: "prepare: no"},
		}},
		{Store: "postgres", Rows: []row{{Scenario: "refresh → JWT RS256 (a rotation chain per connection)", Runs: runs(1200),
			LoadgenMs: []float64{0.1}, PGms: []float64{0.4}}}},
	}}
	rep.assignBounds()
	mem, pg := rep.Stores[0].Rows, rep.Stores[1].Rows
	if mem[0].BoundKind != "" || mem[2].BoundKind != "" {
		t.Errorf("the ceiling or a failed row got a bound: %q, %q", mem[0].BoundKind, mem[2].BoundKind)
	}
	// 1 ms per signature per core, 0.1 ms of load generator: 2 / 1.1 ms.
	if r := mem[1]; r.BoundKind != boundRS256 || r.Bound != 2000 || r.MachineKind != boundRS256 || math.Abs(r.MachineBound-2000/1.1) > 1 {
		t.Errorf("memory JWT row: %s %.0f, machine %s %.0f", r.BoundKind, r.Bound, r.MachineKind, r.MachineBound)
	}
	if r := pg[0]; r.BoundKind != boundCommit || r.Bound != 1500 || math.Abs(r.MachineBound-2000/1.5) > 1 {
		t.Errorf("PostgreSQL JWT row: %s %.0f, machine %s %.0f", r.BoundKind, r.Bound, r.MachineKind, r.MachineBound)
	}
}
