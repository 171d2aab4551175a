package bff

import (
	"crypto/rand"
	"encoding/base64"
)

// RandomID returns n random bytes from crypto/rand, base64url-encoded
// without padding: JWT ids, client secrets, idempotency claims, admin
// session ids. crypto/rand.Read does not fail (Go 1.24+).
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
