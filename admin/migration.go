package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// Buckets of a migration report.
const (
	BucketHour = "hour"
	BucketDay  = "day"
)

// Periods offered by the dashboard (and the period parameter of the JSON
// view), with their bucket.
var Periods = []struct {
	Name   string
	Span   time.Duration
	Bucket string
}{
	{"24h", 24 * time.Hour, BucketHour},
	{"7d", 7 * 24 * time.Hour, BucketHour},
	{"30d", 30 * 24 * time.Hour, BucketDay},
	{"90d", 90 * 24 * time.Hour, BucketDay},
}

// Limits of a report window: hourly series up to a week, daily ones up to
// a year.
const (
	maxHourSpan = 7 * 24 * time.Hour
	maxDaySpan  = 366 * 24 * time.Hour
)

// Window is the period [From, To) of a migration report, aligned to its
// bucket (hours or UTC days).
type Window struct {
	From, To time.Time
	Bucket   string
}

// ParseWindow reads a report window as the admin API and the CLI take it:
// either a named period ("24h", "7d", "30d", "90d"; 24h by default) ending
// with the current bucket, or from and to (RFC 3339). bucket ("hour" or
// "day") defaults to the period's, or to hours for spans up to two days.
func ParseWindow(period, from, to, bucket string, now time.Time) (Window, error) {
	now = now.UTC()
	if from != "" || to != "" {
		if period != "" {
			return Window{}, fmt.Errorf("%w: give a period or from/to, not both", bff.ErrInvalidInput)
		}
		f, err := time.Parse(time.RFC3339, from)
		if err != nil {
			return Window{}, fmt.Errorf("%w: from must be an RFC 3339 time like 2026-03-01T00:00:00Z", bff.ErrInvalidInput)
		}
		t := now
		if to != "" {
			if t, err = time.Parse(time.RFC3339, to); err != nil {
				return Window{}, fmt.Errorf("%w: to must be an RFC 3339 time like 2026-03-02T00:00:00Z", bff.ErrInvalidInput)
			}
		}
		if bucket == "" {
			bucket = BucketDay
			if t.Sub(f) <= 48*time.Hour {
				bucket = BucketHour
			}
		}
		return NewWindow(f, t, bucket)
	}
	if period == "" {
		period = Periods[0].Name
	}
	for _, p := range Periods {
		if p.Name == period {
			if bucket == "" {
				bucket = p.Bucket
			}
			end := ceilBucket(now, bucket)
			if end.Equal(now) { // on a boundary: the bucket that just began
				end = end.Add(bucketLength(bucket, end))
			}
			return NewWindow(end.Add(-p.Span), end, bucket)
		}
	}
	names := make([]string, len(Periods))
	for i, p := range Periods {
		names[i] = p.Name
	}
	return Window{}, fmt.Errorf("%w: period must be one of %s", bff.ErrInvalidInput, strings.Join(names, ", "))
}

// NewWindow aligns [from, to) outwards to whole buckets and checks its size.
func NewWindow(from, to time.Time, bucket string) (Window, error) {
	if bucket != BucketHour && bucket != BucketDay {
		return Window{}, fmt.Errorf("%w: bucket must be hour or day", bff.ErrInvalidInput)
	}
	w := Window{From: floorBucket(from.UTC(), bucket), To: ceilBucket(to.UTC(), bucket), Bucket: bucket}
	switch {
	case !w.From.Before(w.To):
		return Window{}, fmt.Errorf("%w: from must be before to", bff.ErrInvalidInput)
	case bucket == BucketHour && w.To.Sub(w.From) > maxHourSpan:
		return Window{}, fmt.Errorf("%w: hourly reports span at most 7 days; use bucket=day", bff.ErrInvalidInput)
	case w.To.Sub(w.From) > maxDaySpan:
		return Window{}, fmt.Errorf("%w: reports span at most 366 days", bff.ErrInvalidInput)
	}
	return w, nil
}

func floorBucket(t time.Time, bucket string) time.Time {
	if bucket == BucketDay {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(time.Hour)
}

func ceilBucket(t time.Time, bucket string) time.Time {
	f := floorBucket(t, bucket)
	if f.Equal(t) {
		return f
	}
	return f.Add(bucketLength(bucket, f))
}

func bucketLength(bucket string, start time.Time) time.Duration {
	if bucket == BucketDay {
		return start.AddDate(0, 0, 1).Sub(start)
	}
	return time.Hour
}

// Starts returns the start of every bucket of the window.
func (w Window) Starts() []time.Time {
	var out []time.Time
	for t := w.From; t.Before(w.To); t = t.Add(bucketLength(w.Bucket, t)) {
		out = append(out, t)
	}
	return out
}

// MigrationReport is what the migration views show (SPEC §12): per client,
// tokens issued by format, grant and binding, tokens presented by endpoint,
// format, binding and result with their error codes, active tokens by
// format and binding, and the rollout controls — for the whole window and
// per bucket. The binding is DPoP (RFC 9449) or none; aggregates counted
// before the binding was count as none.
type MigrationReport struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Bucket      string    `json:"bucket"`
	GeneratedAt time.Time `json:"generated_at"`
	// Totals sums every client, including tokens tied to no client.
	Totals          Stats             `json:"totals"`
	ActiveTokens    FormatCounts      `json:"active_tokens"`
	ActiveByBinding BindingCounts     `json:"active_tokens_by_binding"`
	Clients         []ClientMigration `json:"clients"`
}

// ClientMigration is one client's part of a report. The client "" holds
// presented tokens that could not be tied to a client (unparseable,
// forged, unknown); a client that was deleted keeps its history, without
// rollout controls.
type ClientMigration struct {
	ClientID        string        `json:"client_id"`
	Name            string        `json:"name,omitempty"`
	Rollout         *Rollout      `json:"rollout"`
	ActiveTokens    FormatCounts  `json:"active_tokens"`
	ActiveByBinding BindingCounts `json:"active_tokens_by_binding"`
	Totals          Stats         `json:"totals"`
	Series          []BucketStats `json:"series"`
}

// Rollout is a client's format controls (SPEC §4–5).
type Rollout struct {
	TokenType         bff.TokenFormat `json:"token_type"`
	JWTRolloutPercent int             `json:"jwt_rollout_percent"`
	JWTEnabled        bool            `json:"jwt_enabled"`
	Restricted        bool            `json:"restricted"`
	JWTTokenType      string          `json:"jwt_token_type"`
	// BrowserSignIn is whether the client holds the authorization_code
	// grant (SPEC §14), with its redirect URIs and PKCE rule.
	BrowserSignIn bool     `json:"browser_sign_in"`
	RedirectURIs  []string `json:"redirect_uris"`
	PKCERequired  bool     `json:"pkce_required"`
	// DPoPBoundAccessTokens is whether every token request of the client
	// must carry a DPoP proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool      `json:"dpop_bound_access_tokens"`
	UpdatedAt             time.Time `json:"updated_at"`
}

// FormatCounts counts access tokens by format.
type FormatCounts struct {
	Bearer int64 `json:"bearer"`
	JWT    int64 `json:"jwt"`
}

// BindingCounts counts access tokens by binding: DPoP-bound (RFC 9449) or
// not.
type BindingCounts struct {
	DPoP int64 `json:"dpop"`
	None int64 `json:"none"`
}

func (b *BindingCounts) add(binding string, n int64) {
	if binding == bff.BindingDPoP {
		b.DPoP += n
	} else {
		b.None += n // also "": counted before the binding was, when no token could be bound
	}
}

// BindingResults splits presented tokens by binding: presented with the
// DPoP scheme and a proof, or not (Bearer, JWT, the session cookie, none).
type BindingResults struct {
	DPoP ResultCounts `json:"dpop"`
	None ResultCounts `json:"none"`
}

func (b *BindingResults) of(binding string) *ResultCounts {
	if binding == bff.BindingDPoP {
		return &b.DPoP
	}
	return &b.None
}

// Stats are the counts of a period.
type Stats struct {
	Issued    IssuedStats    `json:"issued"`
	Presented PresentedStats `json:"presented"`
}

// BucketStats are the counts of one hour or day.
type BucketStats struct {
	Start time.Time `json:"start"`
	Stats
}

// IssuedStats counts issued access tokens.
type IssuedStats struct {
	Total  int64 `json:"total"`
	Bearer int64 `json:"bearer"`
	JWT    int64 `json:"jwt"`
	// JWTShare is JWT / Total; null when nothing was issued.
	JWTShare *float64 `json:"jwt_share"`
	// ByGrant counts per grant_type of the request, then per format.
	ByGrant map[string]FormatCounts `json:"by_grant"`
	// ByBinding counts DPoP-bound and unbound tokens.
	ByBinding BindingCounts `json:"by_binding"`
}

// PresentedStats counts presented tokens.
type PresentedStats struct {
	Total  int64 `json:"total"`
	OK     int64 `json:"ok"`
	Errors int64 `json:"errors"`
	// ByFormat and ByEndpoint split the results: format is bearer, jwt,
	// session (the web session cookie) or none (no credential).
	ByFormat   map[string]ResultCounts `json:"by_format"`
	ByEndpoint map[string]ResultCounts `json:"by_endpoint"`
	// ByBinding splits the results by whether the token came with the
	// DPoP scheme.
	ByBinding BindingResults `json:"by_binding"`
	// ErrorCodes counts rejections by code (invalid_token,
	// non_asymmetric_token, token_expired, account_disabled, …).
	ErrorCodes map[string]int64 `json:"error_codes"`
}

// ResultCounts counts accepted and rejected tokens.
type ResultCounts struct {
	OK     int64 `json:"ok"`
	Errors int64 `json:"errors"`
}

func newStats() Stats {
	return Stats{
		Issued: IssuedStats{ByGrant: map[string]FormatCounts{}},
		Presented: PresentedStats{ByFormat: map[string]ResultCounts{}, ByEndpoint: map[string]ResultCounts{},
			ErrorCodes: map[string]int64{}},
	}
}

func (s *Stats) add(c bff.UsageCount) {
	switch c.Kind {
	case bff.UsageIssued:
		is := &s.Issued
		is.Total += c.Count
		g := is.ByGrant[c.GrantType]
		if c.Format == string(bff.FormatJWT) {
			is.JWT += c.Count
			g.JWT += c.Count
		} else {
			is.Bearer += c.Count
			g.Bearer += c.Count
		}
		is.ByGrant[c.GrantType] = g
		is.ByBinding.add(c.Binding, c.Count)
		share := float64(is.JWT) / float64(is.Total)
		is.JWTShare = &share
	case bff.UsagePresented:
		ps := &s.Presented
		ps.Total += c.Count
		f, e, b := ps.ByFormat[c.Format], ps.ByEndpoint[c.Endpoint], ps.ByBinding.of(c.Binding)
		if c.Result == bff.ResultOK {
			ps.OK += c.Count
			f.OK += c.Count
			e.OK += c.Count
			b.OK += c.Count
		} else {
			ps.Errors += c.Count
			f.Errors += c.Count
			e.Errors += c.Count
			b.Errors += c.Count
			ps.ErrorCodes[c.ErrorCode] += c.Count
		}
		ps.ByFormat[c.Format], ps.ByEndpoint[c.Endpoint] = f, e
	}
}

func (f *FormatCounts) add(format bff.TokenFormat, n int64) {
	if format == bff.FormatJWT {
		f.JWT += n
	} else {
		f.Bearer += n
	}
}

// Migration builds the report of a window from the stored aggregates (the
// counts every instance has flushed), the clients and their active tokens.
func (s *Service) Migration(ctx context.Context, w Window) (MigrationReport, error) {
	now := time.Now().UTC()
	clients, err := s.store.ListClients(ctx)
	if err != nil {
		return MigrationReport{}, err
	}
	usage, err := s.store.ListUsage(ctx, w.From, w.To)
	if err != nil {
		return MigrationReport{}, err
	}
	active, err := s.store.CountActiveTokens(ctx, now)
	if err != nil {
		return MigrationReport{}, err
	}

	starts := w.Starts()
	rep := MigrationReport{From: w.From, To: w.To, Bucket: w.Bucket, GeneratedAt: now, Totals: newStats()}
	byID := map[string]*ClientMigration{}
	get := func(id string) *ClientMigration {
		if cm, ok := byID[id]; ok {
			return cm
		}
		cm := &ClientMigration{ClientID: id, Totals: newStats(), Series: make([]BucketStats, len(starts))}
		for i, t := range starts {
			cm.Series[i] = BucketStats{Start: t, Stats: newStats()}
		}
		byID[id] = cm
		return cm
	}
	for _, c := range clients {
		cm := get(c.ID)
		cm.Name = c.Name
		cm.Rollout = &Rollout{TokenType: c.TokenType, JWTRolloutPercent: c.JWTRolloutPercent,
			JWTEnabled: c.JWTEnabled, Restricted: c.Restricted, JWTTokenType: c.JWTTokenType, UpdatedAt: c.UpdatedAt,
			BrowserSignIn: c.HasGrant(bff.GrantAuthorizationCode), RedirectURIs: nonNilList(c.RedirectURIs),
			PKCERequired: c.PKCERequired, DPoPBoundAccessTokens: c.DPoPBoundAccessTokens}
	}
	for _, c := range usage {
		cm := get(c.ClientID)
		cm.Totals.add(c)
		rep.Totals.add(c)
		bucket := floorBucket(c.Hour, w.Bucket)
		if i, ok := slices.BinarySearchFunc(starts, bucket, time.Time.Compare); ok {
			cm.Series[i].add(c)
		}
	}
	for _, a := range active {
		cm := get(a.ClientID)
		cm.ActiveTokens.add(a.Format, a.Count)
		cm.ActiveByBinding.add(a.Binding, a.Count)
		rep.ActiveTokens.add(a.Format, a.Count)
		rep.ActiveByBinding.add(a.Binding, a.Count)
	}

	rep.Clients = make([]ClientMigration, 0, len(byID))
	for _, cm := range byID {
		rep.Clients = append(rep.Clients, *cm)
	}
	// Existing clients by id, then deleted ones, then the unidentified "".
	rank := func(c ClientMigration) int {
		switch {
		case c.ClientID == "":
			return 2
		case c.Rollout == nil:
			return 1
		}
		return 0
	}
	slices.SortFunc(rep.Clients, func(a, b ClientMigration) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.ClientID, b.ClientID)
	})
	return rep, nil
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
