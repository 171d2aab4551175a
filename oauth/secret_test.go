package oauth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func mustSecrets(t *testing.T, secret string) *Secrets {
	t.Helper()
	s, err := NewSecrets([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSecrets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		secret  string
		wantErr bool
	}{
		{"", true},
		{strings.Repeat("x", MinSecretLength-1), true},
		{strings.Repeat("x", MinSecretLength), false},
		{strings.Repeat("x", 200), false},
	} {
		_, err := NewSecrets([]byte(tt.secret))
		if (err != nil) != tt.wantErr {
			t.Errorf("NewSecrets(%d bytes) error = %v, want error %v", len(tt.secret), err, tt.wantErr)
		}
	}

	a := mustSecrets(t, strings.Repeat("a", 32))
	again := mustSecrets(t, strings.Repeat("a", 32))
	b := mustSecrets(t, strings.Repeat("b", 32))
	switch {
	case bytes.Equal(a.tokenHMAC, a.sealKey):
		t.Error("the token HMAC key and the sealing key are the same key")
	case bytes.Equal(a.tokenHMAC, []byte(strings.Repeat("a", 32))):
		t.Error("the token HMAC key is the secret itself")
	case !bytes.Equal(a.tokenHMAC, again.tokenHMAC) || !bytes.Equal(a.sealKey, again.sealKey):
		t.Error("one secret derives different keys: instances could not share tokens and keys")
	case bytes.Equal(a.tokenHMAC, b.tokenHMAC) || bytes.Equal(a.sealKey, b.sealKey):
		t.Error("two secrets derive the same keys")
	case len(a.tokenHMAC) != 32 || len(a.sealKey) != 32:
		t.Errorf("derived key lengths %d, %d; want 32", len(a.tokenHMAC), len(a.sealKey))
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, strings.Repeat("k", 40))
	other := mustSecrets(t, strings.Repeat("K", 40))
	plain := []byte("-----PKCS#8 private key bytes-----")
	sealed, err := s.seal(plain, "kid-1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.seal(plain, "kid-1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Error("the sealed key holds the plaintext")
	}
	if bytes.Equal(sealed, again) {
		t.Error("two seals of one key are equal: the nonce repeats")
	}
	for _, sl := range [][]byte{sealed, again} {
		got, err := s.open(sl, "kid-1")
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open() = %q, %v; want the plaintext", got, err)
		}
	}
	empty, err := s.seal(nil, "kid-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.open(empty, "kid-1"); err != nil || len(got) != 0 {
		t.Errorf("open(seal(nil)) = %q, %v", got, err)
	}

	flipped := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name    string
		secrets *Secrets
		sealed  []byte
		label   string
	}{
		{"another kid: a sealed key cannot move to another key id", s, sealed, "kid-2"},
		{"empty label", s, sealed, ""},
		{"another secret", other, sealed, "kid-1"},
		{"version byte changed", s, flipped(0), "kid-1"},
		{"nonce changed", s, flipped(3), "kid-1"},
		{"ciphertext changed", s, flipped(len(sealed) / 2), "kid-1"},
		{"tag changed", s, flipped(len(sealed) - 1), "kid-1"},
		{"cut", s, sealed[:len(sealed)-1], "kid-1"},
		{"only version and nonce", s, sealed[:13], "kid-1"},
		{"shorter than a nonce", s, sealed[:5], "kid-1"},
		{"empty", s, nil, "kid-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.secrets.open(tt.sealed, tt.label)
			if err == nil {
				t.Fatalf("open() = %q, want an error", got)
			}
			if !errors.Is(err, errWrongSecret) || !strings.Contains(err.Error(), "BFF_SECRET") {
				t.Errorf("open() error = %v, want one that names BFF_SECRET", err)
			}
		})
	}
}
