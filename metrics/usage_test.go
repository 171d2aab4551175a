package metrics

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	bff "github.com/openedx/mobile-auth-bff"
)

// sink is a UsageSink that sums what it is given and can be made to fail.
type sink struct {
	mu     sync.Mutex
	sums   map[bff.UsageKey]int64
	calls  int
	failed error
}

func (s *sink) AddUsage(_ context.Context, counts []bff.UsageCount) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failed != nil {
		return s.failed
	}
	if s.sums == nil {
		s.sums = map[bff.UsageKey]int64{}
	}
	for _, c := range counts {
		s.sums[c.UsageKey] += c.Count
	}
	return nil
}

func (s *sink) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = err
}

func (s *sink) total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, c := range s.sums {
		n += c
	}
	return n
}

func newTestUsage(t *testing.T, maxKeys int) (*Usage, *sink, *Metrics, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	m := New()
	s := &sink{}
	u := NewUsage(s, m, slog.New(slog.NewJSONHandler(&logs, nil)), maxKeys)
	return u, s, m, &logs
}

var t0 = time.Date(2026, 3, 1, 10, 59, 59, 0, time.UTC)

func TestUsageAggregatesPerHour(t *testing.T) {
	t.Parallel()
	u, s, _, _ := newTestUsage(t, 0)
	now := t0
	u.now = func() time.Time { return now }
	u.Issued("mobile", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	u.Issued("mobile", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	u.Issued("mobile", bff.FormatJWT, bff.GrantPassword, bff.BindingDPoP) // a key of its own
	u.Issued("mobile", bff.FormatBearer, bff.GrantRefreshToken, bff.BindingNone)
	u.Presented("mobile", "me", "jwt", bff.BindingDPoP, "")
	u.Presented("", "login", "jwt", bff.BindingNone, "non_asymmetric_token")
	now = t0.Add(time.Second) // the next hour
	u.Issued("mobile", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	if got := u.Pending(); got != 6 {
		t.Errorf("Pending = %d, want 6", got)
	}
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	h0, h1 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	want := map[bff.UsageKey]int64{
		{Hour: h0, ClientID: "mobile", Kind: "issued", Format: "jwt", GrantType: "password", Binding: "none"}:           2,
		{Hour: h0, ClientID: "mobile", Kind: "issued", Format: "jwt", GrantType: "password", Binding: "dpop"}:           1,
		{Hour: h0, ClientID: "mobile", Kind: "issued", Format: "bearer", GrantType: "refresh_token", Binding: "none"}:   1,
		{Hour: h0, ClientID: "mobile", Kind: "presented", Format: "jwt", Endpoint: "me", Result: "ok", Binding: "dpop"}: 1,
		{Hour: h0, Kind: "presented", Format: "jwt", Endpoint: "login", Result: "error", ErrorCode: "non_asymmetric_token",
			Binding: "none"}: 1,
		{Hour: h1, ClientID: "mobile", Kind: "issued", Format: "jwt", GrantType: "password", Binding: "none"}: 1,
	}
	if diff := cmp.Diff(want, s.sums); diff != "" {
		t.Errorf("flushed counts (-want +got):\n%s", diff)
	}
	if got := u.Pending(); got != 0 {
		t.Errorf("Pending after flush = %d", got)
	}
	// Nothing pending: no store call.
	calls := s.calls
	if err := u.Flush(context.Background()); err != nil || s.calls != calls {
		t.Errorf("empty flush: err %v, store calls %d → %d", err, calls, s.calls)
	}
}

// TestUsageBound: at the bound, events of new keys are dropped and counted;
// events of buffered keys still count.
func TestUsageBound(t *testing.T) {
	t.Parallel()
	u, s, m, _ := newTestUsage(t, 2)
	u.Issued("a", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	u.Issued("b", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	u.Issued("c", bff.FormatJWT, bff.GrantPassword, bff.BindingNone) // dropped
	u.Issued("c", bff.FormatJWT, bff.GrantPassword, bff.BindingNone) // dropped
	u.Issued("a", bff.FormatJWT, bff.GrantPassword, bff.BindingNone) // counted
	if got := testutil.ToFloat64(m.UsageDropped); got != 2 {
		t.Errorf("dropped = %v, want 2", got)
	}
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.total(); got != 3 {
		t.Errorf("flushed %d events, want 3", got)
	}
	// Flushing frees the buffer.
	u.Issued("c", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	if got := testutil.ToFloat64(m.UsageDropped); got != 2 {
		t.Errorf("dropped after flush = %v, want still 2", got)
	}
}

// TestUsageFailingStore: a failing flush loses nothing — the counts are
// retried with the ones gathered meanwhile — and is logged once.
func TestUsageFailingStore(t *testing.T) {
	t.Parallel()
	u, s, m, logs := newTestUsage(t, 0)
	s.fail(fmt.Errorf("connection refused: %w", bff.ErrUnavailable))
	for range 3 {
		u.Issued("mobile", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	}
	for i := range 3 {
		if err := u.Flush(context.Background()); err == nil {
			t.Fatalf("flush %d: no error from a failing store", i)
		}
		u.Issued("mobile", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	}
	if got := strings.Count(logs.String(), "usage statistics not saved"); got != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", got, logs)
	}
	if got := testutil.ToFloat64(m.UsageFlushFailures); got != 3 {
		t.Errorf("flush failures = %v, want 3", got)
	}
	s.fail(nil)
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.total(); got != 6 {
		t.Errorf("saved %d events after the store came back, want 6", got)
	}
	if !strings.Contains(logs.String(), "usage statistics saved again") {
		t.Error("the recovery was not logged")
	}
}

// TestUsageFailingStoreBound: counts kept for a retry stay within the
// bound; what does not fit is counted as dropped.
func TestUsageFailingStoreBound(t *testing.T) {
	t.Parallel()
	u, s, m, _ := newTestUsage(t, 2)
	s.fail(bff.ErrUnavailable)
	u.Issued("a", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	u.Issued("b", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	_ = u.Flush(context.Background()) // fails; a and b wait
	_ = u.Flush(context.Background()) // fails again
	u.Issued("c", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	if got := testutil.ToFloat64(m.UsageDropped); got != 1 {
		t.Errorf("dropped = %v, want 1 (c: the buffer holds a and b)", got)
	}
	if got := u.Pending(); got != 2 {
		t.Errorf("Pending = %d, want 2", got)
	}
}

// TestUsageMalformedDropped: counts the store refuses as malformed are not
// retried forever.
func TestUsageMalformedDropped(t *testing.T) {
	t.Parallel()
	u, s, m, _ := newTestUsage(t, 0)
	s.fail(fmt.Errorf("add usage: %w", bff.ErrInvalidInput))
	u.Issued("a", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	u.Issued("a", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	_ = u.Flush(context.Background())
	if u.Pending() != 0 || testutil.ToFloat64(m.UsageDropped) != 2 {
		t.Errorf("pending %d, dropped %v; want 0 and 2", u.Pending(), testutil.ToFloat64(m.UsageDropped))
	}
}

// TestUsageConcurrent: events recorded while flushes run are all saved
// exactly once (run with -race).
func TestUsageConcurrent(t *testing.T) {
	t.Parallel()
	u, s, _, _ := newTestUsage(t, 0)
	const writers, events = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range events {
				if i%2 == 0 {
					u.Issued(fmt.Sprint("client-", w%3), bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
				} else {
					u.Presented("", "me", "bearer", bff.BindingNone, "invalid_token")
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			_ = u.Flush(context.Background())
		}
	}()
	wg.Wait()
	<-done
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.total(); got != writers*events {
		t.Errorf("saved %d events, want %d", got, writers*events)
	}
}

func TestUsageNil(t *testing.T) {
	t.Parallel()
	var u *Usage
	u.Issued("a", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
	u.Presented("a", "me", "jwt", bff.BindingNone, "")
	if err := u.Flush(context.Background()); err != nil || u.Pending() != 0 {
		t.Errorf("nil Usage: %v %d", err, u.Pending())
	}
	m := New()
	m.RecordIssued("a", bff.FormatJWT, bff.GrantPassword, bff.BindingDPoP) // no Usage attached
	if got := testutil.ToFloat64(m.TokensIssued.WithLabelValues("a", "jwt", "password", "dpop")); got != 1 {
		t.Errorf("Prometheus counter = %v", got)
	}
}

// BenchmarkUsageIssued is what recording adds to a token request.
func BenchmarkUsageIssued(b *testing.B) {
	u := NewUsage(&sink{}, New(), slog.New(slog.DiscardHandler), 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u.Issued("mobile", bff.FormatJWT, bff.GrantPassword, bff.BindingNone)
		}
	})
}
