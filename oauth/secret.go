package oauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Secrets derives every key the service needs from BFF_SECRET, one key per
// purpose, so that no two uses share key material.
type Secrets struct {
	tokenHMAC  []byte
	sealKey    []byte
	sessionKey []byte
	adminKey   []byte
	// dpopNonceKey makes the DPoP nonces every instance accepts.
	dpopNonceKey []byte
}

// MinSecretLength is the shortest BFF_SECRET accepted.
const MinSecretLength = 32

// NewSecrets derives the keys from the operator's secret.
func NewSecrets(secret []byte) (*Secrets, error) {
	if len(secret) < MinSecretLength {
		return nil, fmt.Errorf("secret must be at least %d bytes", MinSecretLength)
	}
	derive := func(purpose string) ([]byte, error) {
		return hkdf.Key(sha256.New, secret, nil, "mobile-auth-bff/v1/"+purpose, 32)
	}
	tokenHMAC, err := derive("opaque-token-hmac")
	if err != nil {
		return nil, err
	}
	sealKey, err := derive("signing-key-encryption")
	if err != nil {
		return nil, err
	}
	sessionKey, err := derive("session-cookie")
	if err != nil {
		return nil, err
	}
	adminKey, err := derive("admin-dashboard-session")
	if err != nil {
		return nil, err
	}
	dpopNonceKey, err := derive("dpop-nonce")
	if err != nil {
		return nil, err
	}
	return &Secrets{tokenHMAC: tokenHMAC, sealKey: sealKey, sessionKey: sessionKey, adminKey: adminKey, dpopNonceKey: dpopNonceKey}, nil
}

// AdminSessionKey is the key that signs the dashboard's sign-in cookies
// and CSRF tokens; no other use shares it.
func (s *Secrets) AdminSessionKey() []byte { return s.adminKey }

const sealVersion = 1

// seal encrypts plaintext with AES-256-GCM, binding it to label (the kid),
// so that a sealed key cannot be swapped onto another key id.
func (s *Secrets) seal(plaintext []byte, label string) ([]byte, error) {
	aead, err := s.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{sealVersion}, nonce...)
	return aead.Seal(out, nonce, plaintext, []byte(label)), nil
}

// errWrongSecret means a sealed key cannot be opened: BFF_SECRET changed.
var errWrongSecret = errors.New("cannot decrypt signing key: BFF_SECRET differs from the one that encrypted it")

func (s *Secrets) open(sealed []byte, label string) ([]byte, error) {
	aead, err := s.aead()
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+aead.NonceSize() || sealed[0] != sealVersion {
		return nil, errWrongSecret
	}
	nonce, ct := sealed[1:1+aead.NonceSize()], sealed[1+aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, []byte(label))
	if err != nil {
		return nil, errWrongSecret
	}
	return pt, nil
}

func (s *Secrets) aead() (cipher.AEAD, error) {
	block, err := aes.NewCipher(s.sealKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
