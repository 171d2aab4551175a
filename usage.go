package bff

import "time"

// Kinds of usage counted for the Bearer→JWT migration views.
const (
	UsageIssued    = "issued"    // an access token was issued
	UsagePresented = "presented" // a token was presented to an endpoint
)

// Results of a presented token.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// UsageKey identifies one hourly aggregate of token usage. Issued tokens
// set Format (bearer|jwt) and GrantType (the grant_type of the request);
// presented tokens set Format (bearer|jwt|session|none), Endpoint, Result
// and, for failures, ErrorCode. ClientID is "" when a presented token could
// not be tied to a client (unparseable, forged, unknown).
type UsageKey struct {
	Hour      time.Time // start of the hour, UTC
	ClientID  string
	Kind      string
	Format    string
	GrantType string
	Endpoint  string
	Result    string
	ErrorCode string
}

// UsageCount is how many times UsageKey happened.
type UsageCount struct {
	UsageKey
	Count int64
}

// HourOf is the bucket an event at t is counted in.
func HourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// ActiveTokens is how many unexpired, unrevoked access tokens of a format a
// client holds.
type ActiveTokens struct {
	ClientID string
	Format   TokenFormat
	Count    int64
}
