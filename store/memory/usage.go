package memory

import (
	"context"
	"slices"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// AddUsage adds counts to their hourly aggregates.
func (s *Store) AddUsage(_ context.Context, counts []bff.UsageCount) error {
	counts = store.SumUsage(counts)
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	for _, c := range counts {
		s.usage[c.UsageKey] += c.Count
	}
	return nil
}

// ListUsage returns the aggregates of the hours in [from, to).
func (s *Store) ListUsage(_ context.Context, from, to time.Time) ([]bff.UsageCount, error) {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	var out []bff.UsageCount
	for k, n := range s.usage {
		if !k.Hour.Before(from) && k.Hour.Before(to) {
			out = append(out, bff.UsageCount{UsageKey: k, Count: n})
		}
	}
	slices.SortFunc(out, func(a, b bff.UsageCount) int { return store.CompareUsageKeys(a.UsageKey, b.UsageKey) })
	return out, nil
}

// PruneUsage deletes the aggregates of hours before the given time.
func (s *Store) PruneUsage(_ context.Context, before time.Time) (int64, error) {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	var n int64
	for k := range s.usage {
		if k.Hour.Before(before) {
			delete(s.usage, k)
			n++
		}
	}
	return n, nil
}

// CountActiveTokens counts unexpired, unrevoked access tokens per client,
// format and binding.
func (s *Store) CountActiveTokens(_ context.Context, now time.Time) ([]bff.ActiveTokens, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type key struct {
		client  string
		format  bff.TokenFormat
		binding string
	}
	counts := map[key]int64{}
	at := stampOf(now)
	for _, t := range s.access {
		if t.expires <= at || t.revoked != 0 || s.families[t.fam].revoked != 0 {
			continue
		}
		counts[key{t.shape.client, t.shape.format, bff.BindingOf(t.shape.jkt != "")}]++
	}
	out := make([]bff.ActiveTokens, 0, len(counts))
	for k, n := range counts {
		out = append(out, bff.ActiveTokens{ClientID: k.client, Format: k.format, Binding: k.binding, Count: n})
	}
	slices.SortFunc(out, func(a, b bff.ActiveTokens) int {
		if c := strings.Compare(a.ClientID, b.ClientID); c != 0 {
			return c
		}
		if c := strings.Compare(string(a.Format), string(b.Format)); c != 0 {
			return c
		}
		return strings.Compare(a.Binding, b.Binding)
	})
	return out, nil
}
