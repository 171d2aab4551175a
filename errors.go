package bff

import "errors"

// Sentinel errors shared by every layer. They are wrapped with context on the
// way up and matched with errors.Is in one place per HTTP surface.
var (
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique value (client id, username, email…) is taken.
	ErrConflict = errors.New("conflict")
	// ErrInvalidInput means a caller-supplied value is malformed.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnavailable means the store could not be reached or failed; the
	// operation had no effect and may be retried.
	ErrUnavailable = errors.New("store unavailable")

	// ErrAccountDisabled means the user behind a token or credential is disabled.
	ErrAccountDisabled = errors.New("user account is disabled")
	// ErrInvalidToken means a presented token cannot be trusted: unparseable,
	// bad signature, unknown kid or client, wrong iss/aud/typ, or unknown.
	ErrInvalidToken = errors.New("invalid token")
	// ErrNonAsymmetricToken means a JWT names an HS* (or no) algorithm.
	ErrNonAsymmetricToken = errors.New("only asymmetric jwt are supported")
	// ErrTokenExpired means the token was valid but its lifetime is over.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenRevoked means the token, or its family, was revoked.
	ErrTokenRevoked = errors.New("token revoked")
	// ErrNotSupportedToken means a valid token may not be used this way: it
	// acts for no user (client credentials) where a user is needed, or — at
	// the session exchange — its family did not begin with a user signing in.
	ErrNotSupportedToken = errors.New("token not supported for this exchange")
	// ErrNoCredential means the request carried no token at all.
	ErrNoCredential = errors.New("no credential presented")
	// ErrCodeUsed means an authorization code was already redeemed.
	ErrCodeUsed = errors.New("authorization code already used")
	// ErrTooManyAttempts means login attempts are throttled.
	ErrTooManyAttempts = errors.New("too many failed attempts")
	// ErrProviderUnavailable means a social sign-in provider (Google,
	// Facebook, Apple) could not be asked: unreachable, too slow, or
	// answering with a server error. The provider token was not judged.
	ErrProviderUnavailable = errors.New("identity provider unavailable")

	// ErrInvalidDPoPProof means a request's DPoP proof (RFC 9449) is
	// missing where one is needed, malformed, signed badly or by another
	// key than the token's, for another request, outside its time window,
	// or replayed.
	ErrInvalidDPoPProof = errors.New("invalid DPoP proof")
	// ErrUseDPoPNonce means a DPoP proof lacks the server's current nonce
	// (RFC 9449 §8, §9): the answer carries one in DPoP-Nonce, and the
	// client retries with a proof that holds it.
	ErrUseDPoPNonce = errors.New("DPoP proof needs the server's nonce")
	// ErrDPoPBound marks a rejection of a DPoP-bound token presented
	// without DPoP, or of a DPoP presentation: the answer's
	// WWW-Authenticate challenge is DPoP's, not Bearer's (RFC 9449 §7.1).
	// It comes with the verdict it explains (ErrInvalidToken, say).
	ErrDPoPBound = errors.New("DPoP-bound token")
)

// ThrottledError carries how long a throttled caller must wait. It matches
// ErrTooManyAttempts with errors.Is.
type ThrottledError struct {
	RetryAfterSeconds int
}

func (e *ThrottledError) Error() string { return ErrTooManyAttempts.Error() }

// Is makes errors.Is(err, ErrTooManyAttempts) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrTooManyAttempts }

// tokenVerdicts are the validator's judgements that a presented token is
// not usable (as opposed to a failure to judge it, ErrUnavailable).
var tokenVerdicts = []error{ErrInvalidToken, ErrNonAsymmetricToken, ErrTokenExpired, ErrAccountDisabled, ErrTokenRevoked,
	ErrInvalidDPoPProof, ErrUseDPoPNonce}

// IsTokenVerdict reports whether err is a judgement on a presented token:
// malformed or unknown, a symmetric JWT, expired, revoked, or its account
// disabled. Introspection answers it "active": false, the token exchange
// invalid_grant; how each HTTP surface words it is handlers' verdict table.
func IsTokenVerdict(err error) bool {
	for _, e := range tokenVerdicts {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
