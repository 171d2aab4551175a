package bff

import (
	"encoding/base64"
	"testing"
)

func TestRandomID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id := RandomID(16)
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(b) != 16 {
			t.Fatalf("RandomID(16) = %q: %d bytes, %v", id, len(b), err)
		}
		if seen[id] {
			t.Fatalf("RandomID repeated %q", id)
		}
		seen[id] = true
	}
}
