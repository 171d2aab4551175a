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

// Bindings of a token for the statistics: whether an issued access token
// is DPoP-bound (RFC 9449), whether a token was presented with the DPoP
// scheme and its proof. Aggregates counted before the binding was
// (migration 0016) have Binding ""; the reports count them as unbound,
// since no token could be bound before DPoP.
const (
	BindingDPoP = "dpop"
	BindingNone = "none"
)

// BindingOf names the binding of a token bound to a key or not.
func BindingOf(bound bool) string {
	if bound {
		return BindingDPoP
	}
	return BindingNone
}

// UsageKey identifies one hourly aggregate of token usage. Issued tokens
// set Format (bearer|jwt) and GrantType (the grant_type of the request);
// presented tokens set Format (bearer|jwt|session|none), Endpoint, Result
// and, for failures, ErrorCode. Both set Binding (dpop|none). ClientID is
// "" when a presented token could not be tied to a client (unparseable,
// forged, unknown).
type UsageKey struct {
	Hour      time.Time // start of the hour, UTC
	ClientID  string
	Kind      string
	Format    string
	GrantType string
	Endpoint  string
	Result    string
	ErrorCode string
	Binding   string
}

// UsageCount is how many times UsageKey happened.
type UsageCount struct {
	UsageKey
	Count int64
}

// HourOf is the bucket an event at t is counted in.
func HourOf(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// ActiveTokens is how many unexpired, unrevoked access tokens of a format
// and binding (BindingDPoP or BindingNone) a client holds.
type ActiveTokens struct {
	ClientID string
	Format   TokenFormat
	Binding  string
	Count    int64
}
