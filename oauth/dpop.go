package oauth

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// DPoPAlgorithms are the proof algorithms accepted (RFC 9449
// dpop_signing_alg_values_supported): asymmetric only. ES256 is what the
// Secure Enclave and the Android Keystore make; RSA keys are accepted from
// 2048 bits.
var DPoPAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512, jose.EdDSA,
}

// MaxDPoPProofLength bounds a DPoP header: a proof with a 4096-bit RSA key
// is under 2 KiB.
const MaxDPoPProofLength = 4 << 10

// DPoPConfig says how DPoP proofs are judged (ADR 0028).
type DPoPConfig struct {
	// Window is how far a proof's iat may be from the server's clock, in
	// either direction; 0 means DefaultDPoPWindow. A proof is remembered
	// (against replay) until its iat plus the window.
	Window time.Duration
	// NoNonce turns off server nonces: by default every proof must carry a
	// nonce the server gave out (DPoP-Nonce), so that a proof made ahead
	// of time by whoever held the key for a moment is of no use.
	NoNonce bool
	// NonceLifetime is how long a nonce is current; the one before stays
	// accepted as long again. 0 means DefaultDPoPNonceLifetime.
	NonceLifetime time.Duration
}

// The defaults of DPoPConfig.
const (
	DefaultDPoPWindow        = time.Minute
	DefaultDPoPNonceLifetime = 5 * time.Minute
)

// DPoP checks the DPoP proofs (RFC 9449) of token requests and of
// requests that present a DPoP-bound token, and makes the server's
// nonces. Every instance with the same BFF_SECRET makes and accepts the
// same nonces, and the store remembers used proofs for all of them.
type DPoP struct {
	cfg      DPoPConfig
	issuer   string // a proof's htu is the issuer followed by the request's path
	nonceKey []byte
	store    store.DPoPProofs
	now      func() time.Time
}

// NewDPoP builds the proof checker. now is the clock (nil: time.Now).
func NewDPoP(cfg DPoPConfig, issuer string, secrets *Secrets, st store.DPoPProofs, now func() time.Time) *DPoP {
	if cfg.Window <= 0 {
		cfg.Window = DefaultDPoPWindow
	}
	if cfg.NonceLifetime <= 0 {
		cfg.NonceLifetime = DefaultDPoPNonceLifetime
	}
	if now == nil {
		now = time.Now
	}
	return &DPoP{cfg: cfg, issuer: strings.TrimRight(issuer, "/"), nonceKey: secrets.dpopNonceKey, store: st, now: now}
}

// NoncesRequired reports whether every proof must carry a server nonce.
func (d *DPoP) NoncesRequired() bool { return !d.cfg.NoNonce }

// ProofRequest is what a proof is checked against: the request it came
// with.
type ProofRequest struct {
	// Headers are the values of every DPoP header of the request.
	Headers []string
	// Method and Path are the request's method and path, as the service
	// sees them; the proof's htu must be the issuer followed by Path.
	Method string
	Path   string
	// AccessToken is the token the request presents with the DPoP scheme;
	// the proof must carry its hash (ath). Empty at the token endpoint.
	AccessToken string
}

// Present reports whether the request carries a DPoP header.
func (r *ProofRequest) Present() bool { return r != nil && len(r.Headers) > 0 }

// Proof is a checked DPoP proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key.
	JKT      string
	JTI      string
	IssuedAt time.Time
}

// dpopClaims are the claims of a proof (RFC 9449 §4.2).
type dpopClaims struct {
	JTI      string  `json:"jti"`
	HTM      string  `json:"htm"`
	HTU      string  `json:"htu"`
	IssuedAt *int64  `json:"iat"`
	ATH      *string `json:"ath"`
	Nonce    *string `json:"nonce"`
}

// maxDPoPJTI bounds a proof's jti: RFC 9449 asks for 96 bits of
// randomness, a UUID or 32 bytes base64url.
const maxDPoPJTI = 256

// Check judges the proof of a request (RFC 9449 §4.3) and records it as
// used: ErrInvalidDPoPProof when it is missing, malformed, badly signed,
// for another request or another token, outside the time window, or
// replayed; ErrUseDPoPNonce when it lacks a current server nonce;
// ErrUnavailable when the store cannot record it.
func (d *DPoP) Check(ctx context.Context, req ProofRequest) (Proof, error) {
	if len(req.Headers) != 1 {
		if len(req.Headers) == 0 {
			return Proof{}, fmt.Errorf("%w: the request has no DPoP header", bff.ErrInvalidDPoPProof)
		}
		return Proof{}, fmt.Errorf("%w: the request has %d DPoP headers, not one", bff.ErrInvalidDPoPProof, len(req.Headers))
	}
	raw := req.Headers[0]
	if len(raw) > MaxDPoPProofLength {
		return Proof{}, fmt.Errorf("%w: longer than %d bytes", bff.ErrInvalidDPoPProof, MaxDPoPProofLength)
	}
	if strings.Count(raw, ".") != 2 || !canonicalSegments(raw) {
		return Proof{}, fmt.Errorf("%w: not a compact JWS in canonical base64url", bff.ErrInvalidDPoPProof)
	}
	jws, err := jose.ParseSignedCompact(raw, DPoPAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return Proof{}, fmt.Errorf("%w: malformed JWS or an algorithm not accepted", bff.ErrInvalidDPoPProof)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return Proof{}, fmt.Errorf("%w: typ must be dpop+jwt", bff.ErrInvalidDPoPProof)
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return Proof{}, fmt.Errorf("%w: the jwk header must hold a public key", bff.ErrInvalidDPoPProof)
	}
	if err := strongEnough(jwk.Key); err != nil {
		return Proof{}, err
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return Proof{}, fmt.Errorf("%w: bad signature", bff.ErrInvalidDPoPProof)
	}
	var c dpopClaims
	if err := josejson.Unmarshal(payload, &c); err != nil {
		return Proof{}, fmt.Errorf("%w: malformed claims", bff.ErrInvalidDPoPProof)
	}
	now := d.now()
	switch {
	case c.JTI == "" || len(c.JTI) > maxDPoPJTI:
		return Proof{}, fmt.Errorf("%w: jti missing or longer than %d bytes", bff.ErrInvalidDPoPProof, maxDPoPJTI)
	case c.HTM != req.Method:
		return Proof{}, fmt.Errorf("%w: htm is not the request's method", bff.ErrInvalidDPoPProof)
	case !d.sameTarget(c.HTU, req.Path):
		return Proof{}, fmt.Errorf("%w: htu is not this request's URI", bff.ErrInvalidDPoPProof)
	case c.IssuedAt == nil:
		return Proof{}, fmt.Errorf("%w: iat missing", bff.ErrInvalidDPoPProof)
	}
	iat := time.Unix(*c.IssuedAt, 0)
	if iat.Before(now.Add(-d.cfg.Window)) || iat.After(now.Add(d.cfg.Window)) {
		return Proof{}, fmt.Errorf("%w: iat is more than %s from the server's time", bff.ErrInvalidDPoPProof, d.cfg.Window)
	}
	if req.AccessToken != "" {
		sum := sha256.Sum256([]byte(req.AccessToken))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if c.ATH == nil || !hmac.Equal([]byte(*c.ATH), []byte(want)) {
			return Proof{}, fmt.Errorf("%w: ath is not the hash of the presented token", bff.ErrInvalidDPoPProof)
		}
	}
	// Without server nonces a nonce claim is ignored: the client could not
	// learn a good one (no DPoP-Nonce is given out).
	if d.NoncesRequired() && (c.Nonce == nil || !d.validNonce(*c.Nonce, now)) {
		return Proof{}, fmt.Errorf("%w: the proof lacks a current nonce", bff.ErrUseDPoPNonce)
	}
	jkt, err := Thumbprint(*jwk)
	if err != nil {
		return Proof{}, fmt.Errorf("%w: %w", bff.ErrInvalidDPoPProof, err)
	}
	// The proof is used once: remembered until it could no longer be
	// accepted. A jti is unique per key only, so the key names both.
	key := sha256.Sum256([]byte(jkt + "\x00" + c.JTI))
	fresh, err := d.store.UseDPoPProof(ctx, hex.EncodeToString(key[:]), now, iat.Add(d.cfg.Window))
	if err != nil {
		return Proof{}, err
	}
	if !fresh {
		return Proof{}, fmt.Errorf("%w: the proof was used before", bff.ErrInvalidDPoPProof)
	}
	return Proof{JKT: jkt, JTI: c.JTI, IssuedAt: iat}, nil
}

// strongEnough refuses RSA keys under 2048 bits (ECDSA and Ed25519 keys
// of every curve go-jose parses are strong enough).
func strongEnough(key any) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("%w: an RSA key of %d bits; at least 2048 are needed", bff.ErrInvalidDPoPProof, k.N.BitLen())
		}
	}
	return nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a key, base64url: the
// jkt a bound token carries.
func Thumbprint(k jose.JSONWebKey) (string, error) {
	b, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint of the proof's key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// sameTarget reports whether a proof's htu names the request: the issuer
// followed by the request's path, compared after RFC 3986 §6.2.2–6.2.3
// normalisation of scheme, host and default port, ignoring a query and a
// fragment (RFC 9449 §4.3).
func (d *DPoP) sameTarget(htu, path string) bool {
	got, err := url.Parse(htu)
	if err != nil || !got.IsAbs() || got.Opaque != "" || got.User != nil {
		return false
	}
	want, err := url.Parse(d.issuer + path)
	if err != nil {
		return false
	}
	return strings.EqualFold(got.Scheme, want.Scheme) && normalHost(got) == normalHost(want) &&
		got.EscapedPath() == want.EscapedPath()
}

// normalHost is a URL's host in lower case, without the scheme's default
// port.
func normalHost(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	switch {
	case port == "",
		port == "443" && strings.EqualFold(u.Scheme, "https"),
		port == "80" && strings.EqualFold(u.Scheme, "http"):
		return host
	}
	return host + ":" + port
}

// Nonce is the server's current DPoP nonce. Nonces need no storage: one is
// its period's number and a MAC of it under a key derived from
// BFF_SECRET, so every instance makes and accepts the same ones; the
// current and the previous period's are accepted.
func (d *DPoP) Nonce() string { return d.nonceAt(d.period(d.now())) }

func (d *DPoP) period(t time.Time) uint64 {
	return uint64(t.UnixNano() / int64(d.cfg.NonceLifetime))
}

func (d *DPoP) nonceAt(period uint64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], period)
	mac := hmac.New(sha256.New, d.nonceKey)
	mac.Write(b[:8])
	copy(b[8:], mac.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validNonce reports whether nonce is the current or the previous
// period's — or the next one's: another instance whose clock is a little
// ahead may have given it out.
func (d *DPoP) validNonce(nonce string, now time.Time) bool {
	p := d.period(now)
	for _, q := range []uint64{p, p - 1, p + 1} {
		if hmac.Equal([]byte(nonce), []byte(d.nonceAt(q))) {
			return true
		}
	}
	return false
}
