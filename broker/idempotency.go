package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// Bounds of an Idempotency-Key value.
const (
	minKeyLength = 8
	maxKeyLength = store.MaxIdempotencyKeyLength
)

// storeTimeout bounds the store write that records a call's outcome.
const storeTimeout = 5 * time.Second

// idempotencyKey reads the Idempotency-Key of a request. POST and PATCH
// need one; PUT and DELETE may carry one; GET and HEAD ignore it. A key is
// 8 to 255 visible ASCII characters without quotes, backslashes or commas,
// optionally quoted (the structured-field string of the IETF draft).
func idempotencyKey(method string, h http.Header) (key string, keyed bool, err error) {
	if method == http.MethodGet || method == http.MethodHead {
		return "", false, nil
	}
	values := h.Values("Idempotency-Key")
	switch {
	case len(values) == 0 && (method == http.MethodPost || method == http.MethodPatch):
		return "", false, ErrIdempotencyKeyMissing
	case len(values) == 0:
		return "", false, nil
	case len(values) > 1:
		return "", false, fmt.Errorf("%w: sent more than once", ErrIdempotencyKeyInvalid)
	}
	key = strings.TrimSpace(values[0])
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		key = key[1 : len(key)-1]
	}
	if len(key) < minKeyLength || len(key) > maxKeyLength {
		return "", false, fmt.Errorf("%w: %d characters, want %d to %d", ErrIdempotencyKeyInvalid, len(key), minKeyLength, maxKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' || c == ',' {
			return "", false, fmt.Errorf("%w: only visible ASCII characters without quotes, backslashes or commas", ErrIdempotencyKeyInvalid)
		}
	}
	return key, true, nil
}

// Fingerprint identifies a request by its method, path, query and body:
// the same key with another request is refused rather than answered with
// the first request's response.
func Fingerprint(method, path, rawQuery string, body []byte) string {
	h := sha256.New()
	for _, s := range []string{method, path, rawQuery} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// doKeyed makes a keyed call: it claims the key, calls the payment service
// once (retrying only what certainly did not reach it), and stores the
// response for replay before relaying it. A key already claimed is
// answered from the store and never sent again.
func (b *Broker) doKeyed(ctx context.Context, out outbound, tr *Trace) (*Response, error) {
	c := out.call
	now := b.now()
	claim := bff.IdempotencyRecord{
		UserID: c.Principal.User.ID, Key: out.key, ClaimID: bff.RandomID(16), Fingerprint: Fingerprint(c.Method, c.Path, c.RawQuery, out.body),
		State: bff.IdempotencyInFlight, CreatedAt: now, ExpiresAt: now.Add(IdempotencyTTL),
	}
	stored, won, err := b.store.ClaimIdempotencyKey(ctx, claim)
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if !won {
		return b.replay(stored, claim, tr)
	}
	tr.Idempotency = "claimed"

	// From here on the call runs to its end even if the app hangs up, so
	// that its outcome is stored and the app's retry gets it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	res, err := b.up.send(ctx, c.Route.String(), retryIfNotSent, out.request)
	tr.record(res)
	if err != nil {
		cancel()
		if res.sent {
			b.finish(ctx, claim, bff.IdempotencyUnknown, nil, nil)
		} else {
			b.release(ctx, claim)
		}
		return nil, err
	}
	resp := res.resp
	body, err := io.ReadAll(io.LimitReader(resp.Body, b.maxBody+1))
	tooLarge := int64(len(body)) > b.maxBody
	switch {
	case err != nil:
		// The payment service answered, so it may have acted; the answer
		// is lost.
		resp.Body.Close()
		cancel()
		b.finish(ctx, claim, bff.IdempotencyUnknown, nil, nil)
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, ErrUpstreamTimeout
		}
		return nil, fmt.Errorf("%w: reading the response: %w", ErrUpstreamError, err)
	case notActedUpon(resp.StatusCode):
		b.release(ctx, claim)
		if err := checkCredentialsAccepted(resp); err != nil {
			cancel()
			return nil, err
		}
	case tooLarge:
		// Too large to keep: relay it, and answer later requests with the
		// key that the response is not available.
		b.finish(ctx, claim, bff.IdempotencyUnknown, nil, nil)
	default:
		resp.Body.Close()
		cancel()
		header := relayHeader(resp.Header, false)
		b.finish(ctx, claim, bff.IdempotencyCompleted, &storedResponse{status: resp.StatusCode, header: header}, body)
		return &Response{Status: resp.StatusCode, Header: header, Body: io.NopCloser(bytes.NewReader(body))}, nil
	}
	if !tooLarge {
		resp.Body.Close()
		cancel()
		return &Response{Status: resp.StatusCode, Header: relayHeader(resp.Header, false), Body: io.NopCloser(bytes.NewReader(body))}, nil
	}
	// The part read so far, then the rest as it comes.
	rest := struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	return &Response{Status: resp.StatusCode, Header: relayHeader(resp.Header, true),
		Body: &cancelOnClose{ReadCloser: rest, cancel: cancel}}, nil
}

// notActedUpon reports whether an answer says the payment service did
// nothing: the key is released so that the app may retry with it.
func notActedUpon(status int) bool {
	return status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests ||
		status == http.StatusUnauthorized
}

type storedResponse struct {
	status int
	header http.Header
}

// replay answers a request whose key is claimed already.
func (b *Broker) replay(stored, claim bff.IdempotencyRecord, tr *Trace) (*Response, error) {
	switch {
	case stored.Fingerprint != claim.Fingerprint:
		tr.Idempotency = "reused"
		return nil, ErrIdempotencyKeyReused
	case stored.State == bff.IdempotencyCompleted:
		tr.Idempotency = "replayed"
		h := make(http.Header, len(stored.Header))
		for k, v := range stored.Header {
			h[k] = v
		}
		return &Response{Status: stored.Status, Header: h, Body: io.NopCloser(bytes.NewReader(stored.Body)), Replayed: true}, nil
	case stored.State == bff.IdempotencyInFlight && claim.CreatedAt.Before(stored.CreatedAt.Add(b.staleAfter)):
		tr.Idempotency = "in_flight"
		return nil, &RetryError{Err: ErrIdempotencyInFlight, After: time.Second}
	}
	// Unknown, or in flight for longer than any call can take: the
	// instance that claimed it is gone. Either way the payment service
	// may have acted: never send it again.
	tr.Idempotency = "unavailable"
	return nil, ErrIdempotencyUnavailable
}

// finish stores a claim's outcome. If that fails the claim stays in flight
// and, once stale, answers like an unknown outcome: safe, never resent.
func (b *Broker) finish(ctx context.Context, claim bff.IdempotencyRecord, state bff.IdempotencyState, resp *storedResponse, body []byte) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	done := b.now()
	claim.State, claim.FinishedAt = state, &done
	if resp != nil {
		claim.Status, claim.Header, claim.Body = resp.status, resp.header, body
	}
	if err := b.store.FinishIdempotencyKey(ctx, claim); err != nil {
		b.log.ErrorContext(ctx, "store the outcome of an idempotent payment call; the key stays in flight",
			slog.Int64("user_id", claim.UserID), slog.String("idempotency_key", claim.Key),
			slog.String("state", string(state)), slog.Any("err", err))
	}
}

// release frees a claim whose request the payment service did not act on.
func (b *Broker) release(ctx context.Context, claim bff.IdempotencyRecord) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := b.store.ReleaseIdempotencyKey(ctx, claim.UserID, claim.Key, claim.ClaimID); err != nil {
		b.log.WarnContext(ctx, "release an idempotency key; it stays in flight until stale",
			slog.Int64("user_id", claim.UserID), slog.String("idempotency_key", claim.Key), slog.Any("err", err))
	}
}
