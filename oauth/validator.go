package oauth

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/ory/fosite"
	enigma "github.com/ory/fosite/token/hmac"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// MaxTokenLength bounds a presented token (SPEC §13).
const MaxTokenLength = 8 << 10

// Scheme is how a credential was presented.
type Scheme string

// The ways a token reaches the service.
const (
	SchemeBearer Scheme = "Bearer" // Authorization: Bearer <opaque or JWT>
	SchemeJWT    Scheme = "JWT"    // Authorization: JWT <JWT>, edX style
	SchemeDPoP   Scheme = "DPoP"   // Authorization: DPoP <DPoP-bound token>, with a DPoP proof (RFC 9449 §7)
	SchemeCookie Scheme = "cookie" // the session cookie from /oauth2/login
)

// Credential is a presented token and how it came.
type Credential struct {
	Scheme Scheme
	Token  string
	// Proof is the request's DPoP proof, when it has a DPoP header or the
	// DPoP scheme; the HTTP layer fills it (ProofRequest.AccessToken is
	// Token's, set by Validate).
	Proof *ProofRequest
	// Holder is the thumbprint of a DPoP key this request already proved
	// it holds (the token endpoint's proof, for an exchanged
	// subject_token): a token bound to that key needs no second proof.
	Holder string
}

// ParseAuthorization reads an Authorization header value. A missing header
// is ErrNoCredential; anything else that is not "Bearer <token>",
// "JWT <jwt>" or "DPoP <token>" is ErrInvalidToken.
func ParseAuthorization(header string) (Credential, error) {
	if header == "" {
		return Credential{}, bff.ErrNoCredential
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return Credential{}, fmt.Errorf("%w: malformed Authorization header", bff.ErrInvalidToken)
	}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return Credential{Scheme: SchemeBearer, Token: token}, nil
	case strings.EqualFold(scheme, "JWT"):
		return Credential{Scheme: SchemeJWT, Token: token}, nil
	case strings.EqualFold(scheme, "DPoP"):
		return Credential{Scheme: SchemeDPoP, Token: token}, nil
	}
	return Credential{}, fmt.Errorf("%w: unsupported Authorization scheme", bff.ErrInvalidToken)
}

// Validator is the one place that decides whether a presented token is
// good. Login, /api/me, introspection and the broker all ask it.
type Validator struct {
	keys     *KeyManager
	store    store.Store
	enigma   *enigma.HMACStrategy // the HMAC of opaque tokens, shared with their issuance
	issuer   string
	audience string
	dpop     *DPoP
	now      func() time.Time
	verified verifiedJWTs // the JWTs VerifyJWT accepted (verified.go)
}

// NewValidator builds the validator of presented tokens: the one instance
// that the token service (introspection, the exchanges, the refresh
// policy) and every HTTP surface share. Its HMAC strategy is the one that
// issues opaque tokens (NewService builds fosite's on it). cfg gives the
// issuer, the audience and the clock (nil: time.Now).
func NewValidator(st store.Store, keys *KeyManager, secrets *Secrets, cfg Config) *Validator {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Validator{keys: keys, store: st, enigma: &enigma.HMACStrategy{Config: opaqueHMACConfig(secrets)},
		issuer: cfg.Issuer, audience: cfg.Audience, now: now, dpop: NewDPoP(cfg.DPoP, cfg.Issuer, secrets, st, now)}
}

// DPoP is the checker of DPoP proofs, shared by the token endpoint and
// every surface that accepts a token.
func (v *Validator) DPoP() *DPoP { return v.dpop }

// opaqueHMACConfig is what the HMAC of opaque tokens depends on: the
// secret, the hash and the entropy of a token. fosite's configuration for
// the token endpoint takes the same values from here.
func opaqueHMACConfig(secrets *Secrets) *fosite.Config {
	return &fosite.Config{GlobalSecret: secrets.tokenHMAC, HMACHasher: sha512.New512_256, TokenEntropy: 32}
}

// Validate checks a credential and returns who presented it. Errors, in
// the order they are decided (SPEC §6): ErrNonAsymmetricToken,
// ErrInvalidToken, ErrTokenExpired, ErrAccountDisabled, ErrTokenRevoked;
// ErrUnavailable when the store cannot answer. A rejection reached after
// the token's client was established is a *ClientVerdict.
//
// A DPoP-bound token is accepted only with the DPoP scheme and a proof by
// its key (or from a Holder of its key), and the DPoP scheme only with a
// bound token: otherwise ErrInvalidToken or ErrInvalidDPoPProof (or
// ErrUseDPoPNonce), marked ErrDPoPBound (RFC 9449 §7).
func (v *Validator) Validate(ctx context.Context, c Credential) (bff.Principal, error) {
	p, err := v.validate(ctx, c)
	if err != nil {
		return p, err
	}
	if err := v.checkBinding(ctx, c, p); err != nil {
		return bff.Principal{}, withClient(p.Client.ID, err)
	}
	return p, nil
}

// Inspect judges an access token like Validate but leaves its binding to
// the caller: introspection, whose caller (a resource server) is not the
// token's holder and checks the proof itself against the answered cnf.
func (v *Validator) Inspect(ctx context.Context, token string) (bff.Principal, error) {
	return v.validate(ctx, Credential{Scheme: SchemeBearer, Token: token})
}

func (v *Validator) validate(ctx context.Context, c Credential) (bff.Principal, error) {
	if len(c.Token) > MaxTokenLength {
		return bff.Principal{}, fmt.Errorf("%w: token longer than %d bytes", bff.ErrInvalidToken, MaxTokenLength)
	}
	if c.Scheme == SchemeCookie {
		return v.validateSession(ctx, c.Token)
	}
	if IsJWT(c.Token) {
		return v.validateJWT(ctx, c.Token)
	}
	if c.Scheme == SchemeJWT {
		return bff.Principal{}, fmt.Errorf("%w: the JWT scheme needs a JWT", bff.ErrInvalidToken)
	}
	return v.validateOpaque(ctx, c.Token)
}

// checkBinding holds a valid token to its DPoP binding (RFC 9449 §7.1):
// a bound token needs the DPoP scheme and a proof by its key, for this
// request and this token; the DPoP scheme needs a bound token. It runs
// after the token's own checks, so that an expired or revoked token is
// answered as such, and costs nothing for an unbound Bearer token.
func (v *Validator) checkBinding(ctx context.Context, c Credential, p bff.Principal) error {
	if c.Scheme != SchemeDPoP {
		if p.JKT == "" || c.Holder == p.JKT {
			return nil
		}
		return dpopBound{fmt.Errorf("%w: the token is DPoP-bound; present it with Authorization: DPoP and a DPoP proof",
			bff.ErrInvalidToken)}
	}
	if p.JKT == "" {
		return dpopBound{fmt.Errorf("%w: the token is not DPoP-bound; present it as Bearer", bff.ErrInvalidToken)}
	}
	var req ProofRequest
	if c.Proof != nil {
		req = *c.Proof
	}
	req.AccessToken = c.Token
	proof, err := v.dpop.Check(ctx, req)
	if err != nil {
		return dpopBound{err}
	}
	if proof.JKT != p.JKT {
		return dpopBound{fmt.Errorf("%w: the proof is signed by another key than the token is bound to", bff.ErrInvalidDPoPProof)}
	}
	return nil
}

// dpopBound marks a rejection as DPoP's (bff.ErrDPoPBound) without
// changing its text, which the answer's detail shows.
type dpopBound struct{ error }

func (e dpopBound) Unwrap() error        { return e.error }
func (e dpopBound) Is(target error) bool { return target == bff.ErrDPoPBound }

// Opaque tokens carry fosite's prefixes.
const (
	opaqueAccessPrefix  = "ory_at_"
	opaqueRefreshPrefix = "ory_rt_"
)

// opaqueSignature checks the HMAC of an opaque token of the given kind and
// returns its stored key. Checking the HMAC first means a leaked table of
// signatures cannot be turned into working tokens.
func (v *Validator) opaqueSignature(ctx context.Context, token, prefix string) (string, bool) {
	raw, ok := strings.CutPrefix(token, prefix)
	if !ok || !canonicalOpaque(raw) || v.enigma.Validate(ctx, raw) != nil {
		return "", false
	}
	// fosite's Signature, the part after the dot, without its
	// strings.Split: canonicalOpaque let only "key.signature" through.
	_, sig, _ := strings.Cut(raw, ".")
	return sig, true
}

// canonicalOpaque reports whether both base64url parts of an opaque token
// ("key.signature") are spelled the one way the service spells them. A
// decoder ignores the unused low bits of the last character (and line
// breaks), so one token has several spellings that validate; everything
// derived from a token's text — a session cookie, say — must not see a
// second one.
func canonicalOpaque(raw string) bool {
	key, sig, ok := strings.Cut(raw, ".")
	if !ok {
		return false
	}
	var buf [64]byte // a part is 32 bytes; longer ones are no token of ours
	for _, part := range []string{key, sig} {
		if part == "" || strictBase64.DecodedLen(len(part)) > len(buf) || strings.ContainsAny(part, "\r\n") {
			return false
		}
		if _, err := strictBase64.Decode(buf[:], []byte(part)); err != nil {
			return false
		}
	}
	return true
}

// strictBase64 refuses unused low bits that are not zero (and padding).
var strictBase64 = base64.RawURLEncoding.Strict()

// ClientVerdict is the rejection of a token whose client the validator had
// already established: the token is genuine but expired, revoked, of a
// disabled account, or not supported where it was presented. It lets the
// usage statistics count the rejection per client, and matches the
// sentinel it wraps with errors.Is.
type ClientVerdict struct {
	ClientID string
	Err      error
}

func (e *ClientVerdict) Error() string { return e.Err.Error() }
func (e *ClientVerdict) Unwrap() error { return e.Err }

// withClient wraps a non-nil err as a ClientVerdict of clientID.
func withClient(clientID string, err error) error {
	if err == nil {
		return nil
	}
	return &ClientVerdict{ClientID: clientID, Err: err}
}

// VerdictClient returns the client of a rejected token when the validator
// had established it, "" otherwise.
func VerdictClient(err error) string {
	var cv *ClientVerdict
	if errors.As(err, &cv) {
		return cv.ClientID
	}
	return ""
}

func (v *Validator) validateOpaque(ctx context.Context, token string) (_ bff.Principal, err error) {
	sig, ok := v.opaqueSignature(ctx, token, opaqueAccessPrefix)
	if !ok {
		return bff.Principal{}, fmt.Errorf("%w: not an access token of this service", bff.ErrInvalidToken)
	}
	t, err := v.store.GetAccessToken(ctx, sig)
	if errors.Is(err, bff.ErrNotFound) {
		return bff.Principal{}, fmt.Errorf("%w: unknown access token", bff.ErrInvalidToken)
	}
	if err != nil {
		return bff.Principal{}, err
	}
	client, err := v.client(ctx, t.ClientID)
	if err != nil {
		return bff.Principal{}, err
	}
	defer func() { err = withClient(client.ID, err) }()
	if !v.now().Before(t.ExpiresAt) {
		return bff.Principal{}, bff.ErrTokenExpired
	}
	p := bff.Principal{
		Client: client, Format: bff.FormatBearer, Scopes: currentScopes(t.Scopes, client), GrantType: t.GrantType,
		FamilyID: t.FamilyID, IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt, Restricted: client.Restricted,
		JKT: t.JKT,
	}
	if t.UserID != 0 {
		u, err := v.user(ctx, t.UserID)
		if err != nil {
			return bff.Principal{}, err
		}
		p.User = &u
	}
	if t.RevokedAt != nil {
		return bff.Principal{}, bff.ErrTokenRevoked
	}
	return p, nil
}

func (v *Validator) validateSession(ctx context.Context, cookie string) (_ bff.Principal, err error) {
	if !validCookieValue(cookie) {
		return bff.Principal{}, fmt.Errorf("%w: malformed session cookie", bff.ErrInvalidToken)
	}
	sess, err := v.store.GetSession(ctx, SessionID(cookie))
	if errors.Is(err, bff.ErrNotFound) {
		return bff.Principal{}, fmt.Errorf("%w: unknown session", bff.ErrInvalidToken)
	}
	if err != nil {
		return bff.Principal{}, err
	}
	client, err := v.client(ctx, sess.ClientID)
	if err != nil {
		return bff.Principal{}, err
	}
	defer func() { err = withClient(client.ID, err) }()
	if !v.now().Before(sess.ExpiresAt) {
		return bff.Principal{}, bff.ErrTokenExpired
	}
	u, err := v.user(ctx, sess.UserID)
	if err != nil {
		return bff.Principal{}, err
	}
	if !client.SignsUsersIn() {
		// Sessions are only made for clients that sign users in; one that
		// lost the grant loses its sessions too.
		return bff.Principal{}, fmt.Errorf("%w: the client no longer signs users in", bff.ErrTokenRevoked)
	}
	return bff.Principal{
		User: &u, Client: client, Format: sess.Format, Scopes: currentScopes(sess.Scopes, client),
		GrantType: sess.GrantType, SessionID: sess.ID, IssuedAt: sess.CreatedAt, ExpiresAt: sess.ExpiresAt,
		Restricted: client.Restricted,
	}, nil
}

// forbiddenHeaders would let a token choose its own verification key.
var forbiddenHeaders = []string{"jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit"}

func (v *Validator) validateJWT(ctx context.Context, token string) (_ bff.Principal, err error) {
	claims, err := v.VerifyJWT(ctx, token)
	if err != nil {
		return bff.Principal{}, err
	}
	client, err := v.client(ctx, claims.ClientID)
	if err != nil {
		return bff.Principal{}, err
	}
	if claims.ClientIncarnation != client.Incarnation {
		// Issued to an earlier client of this id, since deleted: that
		// client is unknown, whatever has its id now (ADR 0019).
		return bff.Principal{}, fmt.Errorf("%w: unknown client (a deleted client of this id)", bff.ErrInvalidToken)
	}
	defer func() { err = withClient(client.ID, err) }()
	if !v.now().Before(time.Unix(claims.Expiry, 0)) {
		return bff.Principal{}, bff.ErrTokenExpired
	}
	p := bff.Principal{
		Client: client, Format: bff.FormatJWT, Scopes: currentScopes(claims.Scopes, client), GrantType: claims.GrantType,
		JTI: claims.JTI, IssuedAt: time.Unix(claims.IssuedAt, 0), ExpiresAt: time.Unix(claims.Expiry, 0),
		Restricted: claims.IsRestricted,
	}
	if claims.Confirmation != nil {
		p.JKT = claims.Confirmation.JKT
	}
	if claims.UserID != 0 {
		u, err := v.user(ctx, claims.UserID)
		if err != nil {
			return bff.Principal{}, err
		}
		if u.Subject() != claims.Subject {
			return bff.Principal{}, fmt.Errorf("%w: sub does not match user_id", bff.ErrInvalidToken)
		}
		// A JWT issued before the user's last password change or disabling
		// is dead even if its id missed the revoked list (it was being
		// issued while the change committed); iat's precision: see
		// bff.User.AcceptsTokenIssuedAt.
		if !u.AcceptsTokenIssuedAt(p.IssuedAt) {
			return bff.Principal{}, fmt.Errorf("issued before the last password change: %w", bff.ErrTokenRevoked)
		}
		p.User = &u
	} else if !clientSubject(claims.Subject, client.ID) {
		return bff.Principal{}, fmt.Errorf("%w: sub of a client token is not its client", bff.ErrInvalidToken)
	}
	revoked, err := v.store.IsJTIRevoked(ctx, claims.JTI)
	if err != nil {
		return bff.Principal{}, err
	}
	if revoked {
		return bff.Principal{}, bff.ErrTokenRevoked
	}
	return p, nil
}

// VerifyJWT checks that token is a JWT access token of this service — any
// asymmetric algorithm it accepts, a published key, typ at+jwt, iss, aud,
// and well-formed claims — and returns its claims. It does not look at
// exp beyond its presence, nor at the store: Validate does.
func (v *Validator) VerifyJWT(ctx context.Context, token string) (AccessClaims, error) {
	if claims, ok := v.verified.get(token, v.now(), v.keys.publishes); ok {
		return claims, nil
	}
	var claims AccessClaims
	header, err := decodeJWTHeader(token)
	if err != nil {
		return claims, err
	}
	alg, _ := header["alg"].(string)
	upper := strings.ToUpper(alg)
	if alg == "" || upper == "NONE" || strings.HasPrefix(upper, "HS") {
		return claims, bff.ErrNonAsymmetricToken
	}
	for _, h := range forbiddenHeaders {
		if _, ok := header[h]; ok {
			return claims, fmt.Errorf("%w: header %q is not accepted", bff.ErrInvalidToken, h)
		}
	}
	if typ, _ := header["typ"].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return claims, fmt.Errorf("%w: typ must be at+jwt", bff.ErrInvalidToken)
	}
	if !canonicalSegments(token) {
		return claims, fmt.Errorf("%w: not canonical base64url", bff.ErrInvalidToken)
	}
	jws, err := jose.ParseSignedCompact(token, Algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return claims, fmt.Errorf("%w: malformed JWS", bff.ErrInvalidToken)
	}
	var candidates []jose.JSONWebKey
	if kid := jws.Signatures[0].Header.KeyID; kid != "" {
		k, ok := v.keys.Lookup(ctx, kid)
		if !ok {
			return claims, fmt.Errorf("%w: unknown kid", bff.ErrInvalidToken)
		}
		candidates = []jose.JSONWebKey{k}
	} else {
		candidates = v.keys.Published()
	}
	var payload []byte
	var signedBy string
	for _, k := range candidates {
		if k.Algorithm != alg {
			continue
		}
		if payload, err = jws.Verify(k); err == nil {
			signedBy = k.KeyID
			break
		}
		payload = nil
	}
	if payload == nil {
		return claims, fmt.Errorf("%w: bad signature", bff.ErrInvalidToken)
	}
	// Claim names are case-sensitive and a claim is named once (RFC 7519
	// §4): encoding/json would take "ISS" for iss and the last of two.
	if err := josejson.Unmarshal(payload, &claims); err != nil {
		return claims, fmt.Errorf("%w: malformed claims", bff.ErrInvalidToken)
	}
	switch {
	case claims.Issuer != v.issuer:
		return claims, fmt.Errorf("%w: wrong iss", bff.ErrInvalidToken)
	case !claims.Audience.Contains(v.audience):
		return claims, fmt.Errorf("%w: wrong aud", bff.ErrInvalidToken)
	case claims.Expiry == 0:
		return claims, fmt.Errorf("%w: missing exp", bff.ErrInvalidToken)
	case claims.JTI == "" || claims.ClientID == "" || claims.Subject == "":
		return claims, fmt.Errorf("%w: missing jti, client_id or sub", bff.ErrInvalidToken)
	case claims.NotBefore != 0 && time.Unix(claims.NotBefore, 0).After(v.now()):
		return claims, fmt.Errorf("%w: not valid yet", bff.ErrInvalidToken)
	}
	v.verified.put(token, signedBy, claims, v.now())
	return claims, nil
}

// decodeJWTHeader reads the protected header of a compact JWS without
// trusting anything in it yet.
func decodeJWTHeader(token string) (map[string]any, error) {
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed header", bff.ErrInvalidToken)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("%w: malformed header", bff.ErrInvalidToken)
	}
	return h, nil
}

func (v *Validator) client(ctx context.Context, id string) (bff.Client, error) {
	c, err := v.store.GetClient(ctx, id)
	if errors.Is(err, bff.ErrNotFound) {
		return c, fmt.Errorf("%w: unknown client", bff.ErrInvalidToken)
	}
	return c, err
}

// user loads the account behind a token and checks it is enabled.
func (v *Validator) user(ctx context.Context, id int64) (bff.User, error) {
	u, err := v.store.GetUser(ctx, id)
	if errors.Is(err, bff.ErrNotFound) {
		return u, fmt.Errorf("%w: unknown user", bff.ErrInvalidToken)
	}
	if err != nil {
		return u, err
	}
	if u.Disabled {
		return u, bff.ErrAccountDisabled
	}
	return u, nil
}

// canonicalSegments reports whether every segment of a compact JWS is in
// canonical base64url: no padding, no stray bits in the last character.
// The lenient decoding would let one JWT be written several ways, and the
// service must not be able to tell the spellings apart by their text only.
func canonicalSegments(token string) bool {
	for seg := range strings.SplitSeq(token, ".") {
		if _, err := base64.RawURLEncoding.Strict().DecodeString(seg); err != nil {
			return false
		}
	}
	return true
}

// clientSubject reports whether sub is the subject of a token that acts for
// client id alone. JWTs issued before client subjects were namespaced carry
// the bare client id; they are accepted until they expire (an hour at most)
// unless that id reads as a user's subject.
func clientSubject(sub, id string) bool {
	if sub == bff.ClientSubject(id) {
		return true
	}
	_, user := bff.ParseSubject(sub)
	return sub == id && !user
}
