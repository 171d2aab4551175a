package oauth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxVerifiedJWTs bounds the cache of verified JWTs (an entry is the
// token's claims, some hundreds of bytes): past it the expired entries go,
// and if that is not enough, all of them.
const maxVerifiedJWTs = 10_000

// verifiedJWTs remembers the JWTs VerifyJWT accepted, so that presenting
// the same token again skips the signature check, by far the dearest part
// of a validation (BenchmarkValidateJWTCold vs BenchmarkValidateJWT:
// RS256 ~55 µs vs ~2 µs on the 2-core machine).
//
// What VerifyJWT decides depends only on the token's text, the service's
// issuer and audience, the published keys and the clock (nbf); an entry is
// keyed by a SHA-256 of the whole compact token — a token that differs in
// any byte is another token, verified from scratch — and is used only
// while the key that verified it is published and until the token's exp
// (tokens not yet valid are not remembered). Everything about the token's
// standing — expiry, revocation, the account, the client — is checked by
// Validate on every request, as before: this cache holds no verdict.
type verifiedJWTs struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]verifiedJWT
}

type verifiedJWT struct {
	claims AccessClaims // shared between callers, who only read them
	kid    string       // of the key that verified the signature
}

// get returns the claims of a token verified before whose key is still
// published and which has not expired at now. An entry whose key is gone
// or which has expired is dropped.
func (c *verifiedJWTs) get(token string, now time.Time, published func(kid string) bool) (AccessClaims, bool) {
	key := tokenKey(token)
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok {
		return AccessClaims{}, false
	}
	if now.Unix() >= e.claims.Expiry || !published(e.kid) {
		c.mu.Lock()
		delete(c.entries, key)
		c.mu.Unlock()
		return AccessClaims{}, false
	}
	return e.claims, true
}

// put remembers that token verified with the key kid, with these claims.
func (c *verifiedJWTs) put(token, kid string, claims AccessClaims, now time.Time) {
	if now.Unix() >= claims.Expiry || (claims.NotBefore != 0 && claims.NotBefore > now.Unix()) {
		return
	}
	key := tokenKey(token)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]verifiedJWT{}
	}
	if len(c.entries) >= maxVerifiedJWTs {
		for k, e := range c.entries {
			if now.Unix() >= e.claims.Expiry {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxVerifiedJWTs {
			clear(c.entries)
		}
	}
	c.entries[key] = verifiedJWT{claims: claims, kid: kid}
}

// tokenKey is the SHA-256 of a token, hashed from a copy on the stack
// (Validate refuses tokens longer than MaxTokenLength before it gets here):
// converting the string would put a copy of each token on the heap.
func tokenKey(token string) [sha256.Size]byte {
	var buf [MaxTokenLength]byte
	if len(token) > len(buf) {
		return sha256.Sum256([]byte(token))
	}
	n := copy(buf[:], token)
	return sha256.Sum256(buf[:n])
}

// forget drops every entry.
func (c *verifiedJWTs) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

// len is the number of entries.
func (c *verifiedJWTs) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// publishes reports whether the key kid is published now, without
// reloading the keys.
func (m *KeyManager) publishes(kid string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.byKID[kid]
	return ok
}
