package metrics

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// UsageSink is where usage counts are saved: the store, whose aggregates
// several instances add to.
type UsageSink interface {
	AddUsage(ctx context.Context, counts []bff.UsageCount) error
}

// DefaultUsageKeys bounds the distinct aggregates buffered between two
// flushes. A key is (hour, client, kind, format, grant or endpoint, result,
// error code, binding): a few hundred per client and hour at most, so the bound is
// only reached when the store has been failing for a long time.
const DefaultUsageKeys = 10_000

// Usage counts issued and presented tokens per client and hour for the
// migration views. Requests only increment a counter in a bounded map —
// never a queue of events, never a store call — and Flush adds the counts
// to the store in one batch. When the map is full, events of new keys are
// dropped and counted in bff_usage_dropped_total; a failing flush keeps its
// counts for the next one.
type Usage struct {
	sink    UsageSink
	maxKeys int
	log     *slog.Logger
	now     func() time.Time
	m       *Metrics

	mu     sync.Mutex
	counts map[bff.UsageKey]int64

	flushMu sync.Mutex // one flush at a time
	failing bool       // the last flush failed; logged once until one succeeds
}

// NewUsage returns a recorder that flushes to sink; maxKeys ≤ 0 means
// DefaultUsageKeys. Drops and failed flushes are counted in m.
func NewUsage(sink UsageSink, m *Metrics, log *slog.Logger, maxKeys int) *Usage {
	if maxKeys <= 0 {
		maxKeys = DefaultUsageKeys
	}
	return &Usage{sink: sink, maxKeys: maxKeys, log: log, now: time.Now, m: m, counts: map[bff.UsageKey]int64{}}
}

// Issued counts an access token issued to a client, by format, by the
// grant_type of the request and by binding. A nil Usage records nothing.
func (u *Usage) Issued(clientID string, format bff.TokenFormat, grant, binding string) {
	if u == nil {
		return
	}
	u.add(bff.UsageKey{ClientID: clientID, Kind: bff.UsageIssued, Format: string(format), GrantType: grant,
		Binding: binding})
}

// Presented counts a token presented to an endpoint; code is "" when the
// token was accepted. clientID is "" when the token could not be tied to a
// client. A nil Usage records nothing.
func (u *Usage) Presented(clientID, endpoint, format, binding, code string) {
	if u == nil {
		return
	}
	result := bff.ResultOK
	if code != "" {
		result = bff.ResultError
	}
	u.add(bff.UsageKey{ClientID: clientID, Kind: bff.UsagePresented, Format: format, Endpoint: endpoint,
		Result: result, ErrorCode: code, Binding: binding})
}

func (u *Usage) add(k bff.UsageKey) {
	k.Hour = bff.HourOf(u.now())
	u.mu.Lock()
	if _, ok := u.counts[k]; !ok && len(u.counts) >= u.maxKeys {
		u.mu.Unlock()
		u.m.UsageDropped.Inc()
		return
	}
	u.counts[k]++
	u.mu.Unlock()
}

// Pending returns how many distinct aggregates wait for the next flush.
func (u *Usage) Pending() int {
	if u == nil {
		return 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.counts)
}

// Flush adds the buffered counts to the store in one call. When the store
// fails, the counts go back into the buffer (as far as the bound allows)
// for the next flush, and the failure is logged once until a flush
// succeeds again. Counts the store refuses as malformed are dropped.
func (u *Usage) Flush(ctx context.Context) error {
	if u == nil {
		return nil
	}
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	u.mu.Lock()
	batch := u.counts
	if len(batch) == 0 {
		u.mu.Unlock()
		return nil
	}
	u.counts = make(map[bff.UsageKey]int64, len(batch))
	u.mu.Unlock()

	counts := make([]bff.UsageCount, 0, len(batch))
	for k, n := range batch {
		counts = append(counts, bff.UsageCount{UsageKey: k, Count: n})
	}
	err := u.sink.AddUsage(ctx, counts)
	switch {
	case err == nil:
		if u.failing {
			u.failing = false
			u.log.Info("usage statistics saved again", "aggregates", len(counts))
		}
		return nil
	case errors.Is(err, bff.ErrInvalidInput):
		u.m.UsageDropped.Add(float64(total(batch)))
		u.log.Error("usage statistics refused by the store; dropped", "aggregates", len(counts), "err", err)
		return err
	}
	u.m.UsageFlushFailures.Inc()
	u.restore(batch)
	if !u.failing {
		u.failing = true
		u.log.Warn("usage statistics not saved; keeping the counts for the next flush", "aggregates", len(counts), "err", err)
	}
	return err
}

// restore merges an unsaved batch back into the buffer, within the bound.
func (u *Usage) restore(batch map[bff.UsageKey]int64) {
	var dropped int64
	u.mu.Lock()
	for k, n := range batch {
		if _, ok := u.counts[k]; !ok && len(u.counts) >= u.maxKeys {
			dropped += n
			continue
		}
		u.counts[k] += n
	}
	u.mu.Unlock()
	if dropped > 0 {
		u.m.UsageDropped.Add(float64(dropped))
	}
}

func total(batch map[bff.UsageKey]int64) int64 {
	var n int64
	for _, c := range batch {
		n += c
	}
	return n
}

// Run flushes every interval until ctx ends. It does not flush at the end:
// the owner flushes once more after the listeners have stopped, so that the
// last requests are counted.
func (u *Usage) Run(ctx context.Context, every time.Duration) {
	if u == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, every)
			_ = u.Flush(fctx) // logged by Flush; the counts wait for the next tick
			cancel()
		}
	}
}
