package bff

import "time"

// IdempotencyState is where a keyed payment request stands.
type IdempotencyState string

// A record is claimed in flight before the payment service is called, then
// either completed (its response is replayed) or unknown. It is never
// claimed twice while it lives: a payment is never sent again silently.
const (
	// IdempotencyInFlight: claimed; the call to the payment service is under way.
	IdempotencyInFlight IdempotencyState = "in_flight"
	// IdempotencyCompleted: the first response is stored and replayed.
	IdempotencyCompleted IdempotencyState = "completed"
	// IdempotencyUnknown: the request may have reached the payment service
	// but its response could not be kept (timeout, broken connection, a
	// response too large to store).
	IdempotencyUnknown IdempotencyState = "unknown"
)

// IdempotencyRecord is what the payment broker remembers about one
// Idempotency-Key of one user.
type IdempotencyRecord struct {
	UserID int64
	Key    string
	// ClaimID is random per claim: only the request that claimed the key
	// may finish or release it.
	ClaimID string
	// Fingerprint identifies the request (method, path, query and body
	// hash): the same key with another request is refused.
	Fingerprint string
	State       IdempotencyState
	// Status, Header and Body are the stored response (completed only).
	Status     int
	Header     map[string][]string
	Body       []byte
	CreatedAt  time.Time
	FinishedAt *time.Time
	ExpiresAt  time.Time
}
