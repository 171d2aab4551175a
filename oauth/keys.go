package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// Algorithms lists the signing algorithms the service can use and accepts.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS512, jose.ES256, jose.EdDSA}

// ValidAlgorithm reports whether alg is one of Algorithms.
func ValidAlgorithm(alg string) bool {
	return slices.Contains(Algorithms, jose.SignatureAlgorithm(alg))
}

// KeyReloadInterval is how often an instance rereads the keys, in case a
// rotation elsewhere was not announced. jwksGrace keeps a retired key
// published a little longer than the longest lifetime of a JWT it signed
// (an access token, or an upstream JWT of the payment broker): another
// instance may sign with a key for up to KeyReloadInterval after it was
// retired elsewhere.
const (
	KeyReloadInterval = time.Minute
	jwksGrace         = 2 * KeyReloadInterval
	// unknownKIDReloadEvery bounds how often an unknown kid reloads the keys,
	// so that tokens with made-up kids cannot hammer the store.
	unknownKIDReloadEvery = 5 * time.Second
)

// KeyManager holds the signing keys: it signs with the current key and
// verifies by kid against every published key.
type KeyManager struct {
	store   store.Keys
	secrets *Secrets
	alg     string
	ttl     time.Duration
	log     *slog.Logger

	mu            sync.RWMutex
	signer        jose.Signer // typ at+jwt: access tokens
	plainSigner   jose.Signer // typ JWT: tokens for other services
	signerKID     string
	published     []jose.JSONWebKey // public keys, current first
	byKID         map[string]jose.JSONWebKey
	loadedAt      time.Time
	lastKIDMissAt time.Time
	reloadMu      sync.Mutex
}

// NewKeyManager loads the keys, creating the first ones when there are none.
func NewKeyManager(ctx context.Context, ks store.Keys, secrets *Secrets, alg string, accessTTL time.Duration, log *slog.Logger) (*KeyManager, error) {
	if !ValidAlgorithm(alg) {
		return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	m := &KeyManager{store: ks, secrets: secrets, alg: alg, ttl: accessTTL, log: log}
	keys, err := ks.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	if !hasState(keys, bff.KeyCurrent) {
		cur, err := m.generate(time.Now().UTC())
		if err != nil {
			return nil, err
		}
		next, err := m.generate(time.Now().UTC())
		if err != nil {
			return nil, err
		}
		now := time.Now().UTC()
		cur.ActivatedAt = &now
		err = ks.InitSigningKeys(ctx, cur, next)
		if err != nil && !errors.Is(err, bff.ErrConflict) { // conflict: another instance won
			return nil, fmt.Errorf("create signing keys: %w", err)
		}
		if err == nil {
			log.Info("created signing keys", "current_kid", cur.KID, "next_kid", next.KID, "alg", alg)
		}
	}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func hasState(keys []bff.SigningKey, st bff.KeyState) bool {
	return slices.ContainsFunc(keys, func(k bff.SigningKey) bool { return k.State == st })
}

// generate creates a key pair for the configured algorithm, sealed for storage.
func (m *KeyManager) generate(now time.Time) (bff.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch jose.SignatureAlgorithm(m.alg) {
	case jose.RS256, jose.RS512:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("unsupported signing algorithm %q", m.alg)
	}
	if err != nil {
		return bff.SigningKey{}, fmt.Errorf("generate key: %w", err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: m.alg, Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return bff.SigningKey{}, fmt.Errorf("key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	pubJSON, err := pub.MarshalJSON()
	if err != nil {
		return bff.SigningKey{}, fmt.Errorf("marshal public key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return bff.SigningKey{}, fmt.Errorf("marshal private key: %w", err)
	}
	sealed, err := m.secrets.seal(der, pub.KeyID)
	if err != nil {
		return bff.SigningKey{}, fmt.Errorf("seal private key: %w", err)
	}
	return bff.SigningKey{KID: pub.KeyID, Algorithm: m.alg, PrivateKey: sealed, PublicJWK: pubJSON, CreatedAt: now}, nil
}

// Reload reads the keys from the store and replaces the in-memory set.
func (m *KeyManager) Reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	now := time.Now().UTC()
	var signer, plainSigner jose.Signer
	var signerKID string
	var published []jose.JSONWebKey
	for _, k := range keys {
		if k.State == bff.KeyRetired && (k.RetiredAt == nil || now.Sub(*k.RetiredAt) > max(m.ttl, UpstreamTokenTTL)+jwksGrace) {
			continue
		}
		var pub jose.JSONWebKey
		if err := pub.UnmarshalJSON(k.PublicJWK); err != nil {
			return fmt.Errorf("signing key %s: %w", k.KID, err)
		}
		pub.KeyID, pub.Algorithm, pub.Use = k.KID, k.Algorithm, "sig"
		if k.State == bff.KeyCurrent {
			if signer, err = m.openSigner(k, "at+jwt"); err != nil {
				return err
			}
			if plainSigner, err = m.openSigner(k, "JWT"); err != nil {
				return err
			}
			signerKID = k.KID
			published = append([]jose.JSONWebKey{pub}, published...)
			continue
		}
		published = append(published, pub)
	}
	if signer == nil {
		return errors.New("no current signing key in the store")
	}
	byKID := make(map[string]jose.JSONWebKey, len(published))
	for _, k := range published {
		byKID[k.KeyID] = k
	}
	m.mu.Lock()
	if m.signerKID != "" && m.signerKID != signerKID {
		m.log.Info("signing key changed", "kid", signerKID)
	}
	m.signer, m.plainSigner, m.signerKID, m.published, m.byKID, m.loadedAt = signer, plainSigner, signerKID, published, byKID, now
	m.mu.Unlock()
	return nil
}

func (m *KeyManager) openSigner(k bff.SigningKey, typ string) (jose.Signer, error) {
	der, err := m.secrets.open(k.PrivateKey, k.KID)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
	}
	jwk := jose.JSONWebKey{Key: priv, KeyID: k.KID, Algorithm: k.Algorithm}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: jwk}, opts)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
	}
	return s, nil
}

// Sign signs access-token claims with the current key; the header carries
// kid and typ at+jwt (RFC 9068).
func (m *KeyManager) Sign(claims any) (string, error) {
	m.mu.RLock()
	signer := m.signer
	m.mu.RUnlock()
	return sign(signer, claims)
}

// SignJWT signs claims with the current key and typ JWT: tokens the service
// mints for other services, which must never pass as its own access tokens.
func (m *KeyManager) SignJWT(claims any) (string, error) {
	m.mu.RLock()
	signer := m.plainSigner
	m.mu.RUnlock()
	return sign(signer, claims)
}

func sign(signer jose.Signer, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return obj.CompactSerialize()
}

// Lookup returns the public key with the given kid. An unknown kid reloads
// the keys (rate-limited), so keys rotated by another instance are found.
func (m *KeyManager) Lookup(ctx context.Context, kid string) (jose.JSONWebKey, bool) {
	m.mu.RLock()
	k, ok := m.byKID[kid]
	m.mu.RUnlock()
	if ok {
		return k, true
	}
	m.mu.Lock()
	due := time.Since(m.lastKIDMissAt) >= unknownKIDReloadEvery
	if due {
		m.lastKIDMissAt = time.Now()
	}
	m.mu.Unlock()
	if !due {
		return jose.JSONWebKey{}, false
	}
	if err := m.Reload(ctx); err != nil {
		m.log.Warn("reload signing keys after unknown kid", "err", err)
		return jose.JSONWebKey{}, false
	}
	m.mu.RLock()
	k, ok = m.byKID[kid]
	m.mu.RUnlock()
	return k, ok
}

// Published returns the public keys of the JWKS: current, next, and keys
// retired while a JWT they signed may still be unexpired.
func (m *KeyManager) Published() []jose.JSONWebKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.published)
}

// JWKS returns the published keys as a JSON Web Key Set.
func (m *KeyManager) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: m.Published()}
}

// CurrentKID is the kid new JWTs are signed with.
func (m *KeyManager) CurrentKID() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.signerKID
}

// Rotate retires the current key, promotes the next one and creates a new
// next key with the configured algorithm.
func (m *KeyManager) Rotate(ctx context.Context) error {
	now := time.Now().UTC()
	next, err := m.generate(now)
	if err != nil {
		return err
	}
	if err := m.store.RotateSigningKeys(ctx, next, now); err != nil {
		return fmt.Errorf("rotate signing keys: %w", err)
	}
	return m.Reload(ctx)
}
