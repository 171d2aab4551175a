package oauth

import (
	"testing"
	"time"
)

// TestVerifiedJWTsRules: what the cache of verified JWTs keeps and for how
// long, on its own.
func TestVerifiedJWTsRules(t *testing.T) {
	t.Parallel()
	now := time.Now()
	claims := AccessClaims{JTI: "j", Expiry: now.Add(time.Hour).Unix()}
	published := map[string]bool{"k1": true}
	isPublished := func(kid string) bool { return published[kid] }
	var c verifiedJWTs
	c.put("token", "k1", claims, now)
	if got, ok := c.get("token", now, isPublished); !ok || got.JTI != "j" {
		t.Fatalf("get after put = %v, %v", got, ok)
	}
	if _, ok := c.get("token2", now, isPublished); ok {
		t.Error("another token is remembered")
	}
	// Its key is no longer published (retired past its grace): dropped.
	published["k1"] = false
	if _, ok := c.get("token", now, isPublished); ok || c.len() != 0 {
		t.Errorf("a token of an unpublished key: hit %v, %d entries", ok, c.len())
	}
	published["k1"] = true
	// Not remembered past exp, nor before nbf, nor when already expired.
	c.put("token", "k1", claims, now)
	if _, ok := c.get("token", time.Unix(claims.Expiry, 0), isPublished); ok || c.len() != 0 {
		t.Errorf("at exp: hit %v, %d entries", ok, c.len())
	}
	c.put("early", "k1", AccessClaims{Expiry: claims.Expiry, NotBefore: now.Add(time.Minute).Unix()}, now)
	c.put("late", "k1", AccessClaims{Expiry: now.Add(-time.Second).Unix()}, now)
	if c.len() != 0 {
		t.Errorf("%d entries for a token not valid yet and an expired one, want 0", c.len())
	}
	// Bounded: expired entries go first, then all.
	for i := range maxVerifiedJWTs + 10 {
		c.put(string(rune(i))+"-token", "k1", claims, now)
	}
	if n := c.len(); n > maxVerifiedJWTs {
		t.Errorf("%d entries, bound %d", n, maxVerifiedJWTs)
	}
}
