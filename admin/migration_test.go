package admin

import (
	"errors"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

func TestParseWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 14, 25, 0, 0, time.UTC)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name                       string
		period, from, to, bucket   string
		wantFrom, wantTo, wantBckt string
		buckets                    int
	}{
		{"default: the last 24 hours up to the current one", "", "", "", "", "2026-03-09T15:00:00Z", "2026-03-10T15:00:00Z", "hour", 24},
		{"7d hourly", "7d", "", "", "", "2026-03-03T15:00:00Z", "2026-03-10T15:00:00Z", "hour", 168},
		{"30d daily, up to today", "30d", "", "", "", "2026-02-09T00:00:00Z", "2026-03-11T00:00:00Z", "day", 30},
		{"24h by day", "24h", "", "", "day", "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z", "day", 1},
		{"from/to widened to hours", "", "2026-03-01T09:30:00Z", "2026-03-01T11:10:00Z", "", "2026-03-01T09:00:00Z", "2026-03-01T12:00:00Z", "hour", 3},
		{"from alone ends now", "", "2026-03-10T00:00:00Z", "", "", "2026-03-10T00:00:00Z", "2026-03-10T15:00:00Z", "hour", 15},
		{"long from/to is daily", "", "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z", "", "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z", "day", 9},
		{"offsets are UTC", "", "2026-03-01T10:00:00+05:30", "2026-03-01T12:00:00+05:30", "", "2026-03-01T04:00:00Z", "2026-03-01T07:00:00Z", "hour", 3},
	}
	for _, tt := range tests {
		w, err := ParseWindow(tt.period, tt.from, tt.to, tt.bucket, now)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !w.From.Equal(at(tt.wantFrom)) || !w.To.Equal(at(tt.wantTo)) || w.Bucket != tt.wantBckt || len(w.Starts()) != tt.buckets {
			t.Errorf("%s: [%s, %s) by %s, %d buckets; want [%s, %s) by %s, %d", tt.name, w.From, w.To, w.Bucket,
				len(w.Starts()), tt.wantFrom, tt.wantTo, tt.wantBckt, tt.buckets)
		}
	}

	// On an hour boundary, the hour that just began is the last bucket.
	w, _ := ParseWindow("", "", "", "", time.Date(2026, 3, 10, 14, 0, 0, 0, time.UTC))
	if !w.To.Equal(time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)) {
		t.Errorf("on a boundary: to = %s", w.To)
	}

	for _, bad := range []struct{ period, from, to, bucket string }{
		{"1y", "", "", ""},
		{"", "", "", "minute"},
		{"", "yesterday", "", ""},
		{"", "2026-03-01T00:00:00Z", "soon", ""},
		{"24h", "2026-03-01T00:00:00Z", "", ""},
		{"", "2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z", ""},
		{"", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z", ""},
		{"", "2026-03-01T00:00:00Z", "2026-03-09T00:00:00Z", "hour"},
		{"", "2025-01-01T00:00:00Z", "2026-03-01T00:00:00Z", "day"},
	} {
		if _, err := ParseWindow(bad.period, bad.from, bad.to, bad.bucket, now); !errors.Is(err, bff.ErrInvalidInput) {
			t.Errorf("%+v: error %v, want ErrInvalidInput", bad, err)
		}
	}
}
