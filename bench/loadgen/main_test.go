package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// oneToHundred is 1ms…100ms, sorted.
func oneToHundred() []time.Duration {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = ms(i + 1)
	}
	return d
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p0", []time.Duration{ms(7)}, 0, ms(7)},
		{"single p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"p50 of 100", oneToHundred(), 50, ms(50)},
		{"p90 of 100", oneToHundred(), 90, ms(90)},
		{"p99 of 100", oneToHundred(), 99, ms(99)},
		{"max of 100", oneToHundred(), 100, ms(100)},
		{"p0 is the min", oneToHundred(), 0, ms(1)},
		// Nearest rank rounds up: 50% of 3 values is rank 2.
		{"p50 of 3", []time.Duration{ms(1), ms(2), ms(30)}, 50, ms(2)},
		{"p99 of 3 is the max", []time.Duration{ms(1), ms(2), ms(30)}, 99, ms(30)},
		{"p50 of 4", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 50, ms(2)},
		{"p51 of 4", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 51, ms(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	// Two workers, latencies out of order across them: summarize must
	// merge and sort before taking percentiles.
	var a, b []time.Duration
	for i, d := range oneToHundred() {
		if i%2 == 0 {
			b = append(b, d)
		} else {
			a = append(a, d)
		}
	}
	recs := []*recorder{
		{latencies: a, errors: map[string]int{"429": 3, "transport": 1}},
		{latencies: b, errors: map[string]int{"429": 2, "inactive": 4}},
	}
	got := summarize("introspect-jwt", 2, 2*time.Second, recs)
	want := summary{
		Scenario: "introspect-jwt", Concurrency: 2, Seconds: 2,
		Requests: 110, OK: 100, Errors: map[string]int{"429": 5, "transport": 1, "inactive": 4},
		RPS: 55, P50ms: 50, P90ms: 90, P99ms: 99, MaxMs: 100,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summarize() mismatch (-want +got):\n%s", diff)
	}
}

func TestSummarizeNothing(t *testing.T) {
	t.Parallel()
	got := summarize("jwks", 1, 0, []*recorder{{errors: map[string]int{}}})
	want := summary{Scenario: "jwks", Concurrency: 1, Errors: map[string]int{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summarize() mismatch (-want +got):\n%s", diff)
	}
	// The JSON line must stay valid when nothing was measured.
	if _, err := json.Marshal(got); err != nil {
		t.Fatal(err)
	}
}

func TestSummaryJSON(t *testing.T) {
	t.Parallel()
	s := summary{Scenario: "jwks", Concurrency: 8, Seconds: 10, Requests: 3, OK: 2,
		Errors: map[string]int{"503": 1}, RPS: 0.3, P50ms: 1.5, P90ms: 2, P99ms: 2, MaxMs: 2}
	got, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"scenario":"jwks","concurrency":8,"seconds":10,"requests":3,"ok":2,"errors":{"503":1},` +
		`"rps":0.3,"p50_ms":1.5,"p90_ms":2,"p99_ms":2,"max_ms":2}`
	if string(got) != want {
		t.Errorf("JSON = %s\nwant   %s", got, want)
	}
}

func TestFormatErrors(t *testing.T) {
	t.Parallel()
	if got := formatErrors(nil); got != "none" {
		t.Errorf("formatErrors(nil) = %q, want none", got)
	}
	got := formatErrors(map[string]int{"transport": 2, "401": 7, "429": 1})
	if want := "401: 7, 429: 1, transport: 2"; got != want {
		t.Errorf("formatErrors() = %q, want %q", got, want)
	}
}

func TestLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		err    error
		want   string
	}{
		{200, nil, ""},
		{204, nil, ""},
		{400, nil, "400"},
		{503, nil, "503"},
		{0, io.ErrUnexpectedEOF, "transport"},
	}
	for _, tt := range tests {
		if got := label(tt.status, tt.err); got != tt.want {
			t.Errorf("label(%d, %v) = %q, want %q", tt.status, tt.err, got, tt.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
		wantID  string
	}{
		{"unknown scenario", []string{"-scenario", "nope"}, "-scenario must be one of", ""},
		{"no scenario", nil, "-scenario must be one of", ""},
		{"confidential without secret", []string{"-scenario", "introspect-jwt"}, "-client-secret", ""},
		{"zero workers", []string{"-scenario", "jwks", "-c", "0"}, "-c must be", ""},
		{"public default client", []string{"-scenario", "password-jwt"}, "", demoMobileClient},
		{"confidential default client", []string{"-scenario", "client-credentials-jwt", "-client-secret", "s"}, "", demoBackendClient},
		{"explicit client", []string{"-scenario", "refresh-jwt", "-client-id", "app"}, "", "app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.clientID != tt.wantID {
				t.Errorf("clientID = %q, want %q", cfg.clientID, tt.wantID)
			}
		})
	}
}

// TestDrive runs the introspect-jwt scenario against a fake service that
// answers every third introspection "inactive": the run must count those
// as errors and the others as successes, and stop at the deadline.
func TestDrive(t *testing.T) {
	t.Parallel()
	var n int
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/access_token", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"access_token":"at","refresh_token":"rt","token_type":"JWT"}`)
	})
	mux.HandleFunc("POST /oauth2/introspect", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "backend" || p != "s3cret" || r.FormValue("token") != "at" {
			http.Error(w, "{}", http.StatusUnauthorized)
			return
		}
		n++ // one worker: no race
		if n%3 == 0 {
			_, _ = io.WriteString(w, `{"active":false}`)
			return
		}
		_, _ = io.WriteString(w, `{"active":true}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	cfg, err := parseFlags([]string{"-url", srv.URL, "-scenario", "introspect-jwt", "-c", "1",
		"-client-id", "backend", "-client-secret", "s3cret"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls, err := scenarios[cfg.scenario].prepare(ctx, newTarget(cfg), cfg.concurrency)
	if err != nil {
		t.Fatal(err)
	}
	recs, elapsed := drive(ctx, calls, 100*time.Millisecond)
	if elapsed < 100*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("elapsed = %v, want just over 100ms", elapsed)
	}
	s := summarize(cfg.scenario, 1, elapsed, recs)
	if s.Requests < 3 {
		t.Fatalf("only %d requests in 100ms", s.Requests)
	}
	if s.Errors["inactive"] != s.Requests/3 || s.OK != s.Requests-s.Requests/3 {
		t.Errorf("ok %d, errors %v of %d requests; want every third inactive", s.OK, s.Errors, s.Requests)
	}
}
