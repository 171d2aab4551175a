package bff

import "time"

// KeyState is the life-cycle state of a signing key.
type KeyState string

// Signing keys move next → current → retired. Exactly one key is current.
const (
	KeyNext    KeyState = "next"    // published, not yet signing
	KeyCurrent KeyState = "current" // signs new JWTs
	KeyRetired KeyState = "retired" // published while JWTs it signed may live
)

// SigningKey is an asymmetric key pair that signs JWT access tokens.
type SigningKey struct {
	KID       string
	Algorithm string // RS256, RS512, ES256 or EdDSA
	State     KeyState
	// PrivateKey is the PKCS#8 private key sealed with a key derived from
	// BFF_SECRET; the store never sees it in clear.
	PrivateKey []byte
	// PublicJWK is the public key as a JSON Web Key.
	PublicJWK   []byte
	CreatedAt   time.Time
	ActivatedAt *time.Time
	RetiredAt   *time.Time
}
