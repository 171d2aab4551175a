package oauth_test

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/openedx/mobile-auth-bff/oauth"
)

// argonHash builds an argon2id PHC string with chosen parameters (cheap
// ones, or broken ones).
func argonHash(password string, m, t uint32, p uint8, salt []byte, keyLen uint32) string {
	b64 := base64.RawStdEncoding
	key := argon2.IDKey([]byte(password), salt, t, m, p, keyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	const pw = "correct horse battery staple"
	h1, err := oauth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := oauth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	// OWASP's argon2id minimum, a 16-byte salt and a 32-byte key.
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(h1) {
		t.Errorf("hash %q is not an argon2id PHC string with the expected parameters", h1)
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	if strings.Contains(h1, pw) {
		t.Error("the hash contains the password")
	}
	tests := []struct {
		hash, password string
		want           bool
	}{
		{h1, pw, true},
		{h2, pw, true},
		{h1, pw + " ", false},
		{h2, "Correct horse battery staple", false},
	}
	for _, tt := range tests {
		if got := oauth.CheckPassword(tt.hash, tt.password); got != tt.want {
			t.Errorf("CheckPassword(hash, %q) = %v, want %v", tt.password, got, tt.want)
		}
	}
}

func TestHashPasswordLength(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		pw      string
		wantErr bool
	}{
		{"empty", "", true},
		{"one byte over", strings.Repeat("a", oauth.MaxPasswordLength+1), true},
		{"huge", strings.Repeat("a", 1<<20), true},
		{"the maximum", strings.Repeat("é", oauth.MaxPasswordLength/2), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := oauth.HashPassword(tt.pw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("HashPassword() error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if h != "" || (tt.pw != "" && strings.Contains(err.Error(), tt.pw)) {
					t.Errorf("HashPassword() = %q, %v", h, err)
				}
				return
			}
			if !oauth.CheckPassword(h, tt.pw) {
				t.Error("CheckPassword() of the maximum length is false")
			}
		})
	}
}

func TestCheckPasswordHashes(t *testing.T) {
	t.Parallel()
	const pw = "hunter2hunter2"
	salt := []byte("0123456789abcdef")
	good := argonHash(pw, 64, 1, 1, salt, 32)
	parts := strings.Split(good, "$") // "", argon2id, v=19, params, salt, key
	withPart := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	b64 := base64.RawStdEncoding
	bc, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	bcryptWith := func(prefix string) string { return prefix + string(bc[4:]) }
	bcryptCost := func(cost int) string { return fmt.Sprintf("%s%02d%s", bc[:4], cost, bc[6:]) }
	long72 := strings.Repeat("p", 72)
	bc72, err := bcrypt.GenerateFromPassword([]byte(long72), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		hash     string
		password string
		want     bool
	}{
		{"argon2id, other sane parameters", good, pw, true},
		{"argon2id, two lanes, 64-byte key", argonHash(pw, 128, 3, 2, salt, 64), pw, true},
		{"argon2id, wrong password", good, "hunter3hunter3", false},
		{"argon2id, password over the maximum", argonHash(strings.Repeat("a", oauth.MaxPasswordLength+1), 64, 1, 1, salt, 32),
			strings.Repeat("a", oauth.MaxPasswordLength+1), false},
		{"bcrypt $2a$", bcryptWith("$2a$"), pw, true},
		{"bcrypt $2b$", bcryptWith("$2b$"), pw, true},
		{"bcrypt $2y$", bcryptWith("$2y$"), pw, true},
		{"bcrypt, wrong password", bcryptWith("$2a$"), "hunter3hunter3", false},
		{"bcrypt, 72-byte password", string(bc72), long72, true},
		{"bcrypt, password over the maximum", string(bc72), long72 + strings.Repeat("p", oauth.MaxPasswordLength), false},
		{"bcrypt $2x$", bcryptWith("$2x$"), pw, false},
		{"bcrypt $2$", "$2$" + string(bc[4:]), pw, false},
		{"bcrypt, cost 31", bcryptCost(31), pw, false},
		{"bcrypt, cost 17", bcryptCost(17), pw, false},
		{"bcrypt, cost 3", bcryptCost(3), pw, false},
		{"bcrypt, cut", string(bc[:len(bc)-5]), pw, false},
		{"empty", "", pw, false},
		{"empty hash and password", "", "", false},
		{"clear text", pw, pw, false},
		{"argon2i", strings.Replace(good, "$argon2id$", "$argon2i$", 1), pw, false},
		{"prefix only", "$argon2id$", pw, false},
		{"missing part", strings.Join(parts[:5], "$"), pw, false},
		{"extra part", good + "$x", pw, false},
		{"version 16", withPart(2, "v=16"), pw, false},
		{"version not a number", withPart(2, "v=x"), pw, false},
		{"parameters garbled", withPart(3, "m=64;t=1;p=1"), pw, false},
		{"parameters missing", withPart(3, ""), pw, false},
		{"memory zero", withPart(3, "m=0,t=1,p=1"), pw, false},
		{"memory over 256 MiB", withPart(3, fmt.Sprintf("m=%d,t=1,p=1", 256*1024+1)), pw, false},
		{"memory overflowing uint32", withPart(3, "m=4294967296,t=1,p=1"), pw, false},
		{"memory negative", withPart(3, "m=-1,t=1,p=1"), pw, false},
		{"no passes", withPart(3, "m=64,t=0,p=1"), pw, false},
		{"too many passes", withPart(3, "m=64,t=11,p=1"), pw, false},
		// Right keys for parameters out of bounds: refused, not computed.
		{"too many passes, key of those parameters", argonHash(pw, 8, 11, 1, salt, 32), pw, false},
		{"key over 128 bytes, of that length", argonHash(pw, 8, 1, 1, salt, 129), pw, false},
		{"key of 128 bytes", argonHash(pw, 8, 1, 1, salt, 128), pw, true},
		{"10 passes", argonHash(pw, 8, 10, 1, salt, 32), pw, true},
		{"no lanes", withPart(3, "m=64,t=1,p=0"), pw, false},
		{"lanes overflowing uint8", withPart(3, "m=64,t=1,p=256"), pw, false},
		{"salt not base64", withPart(4, "!!!"), pw, false},
		{"key not base64", withPart(5, "!!!"), pw, false},
		{"empty key", withPart(5, ""), pw, false},
		{"key over 128 bytes", withPart(5, b64.EncodeToString(make([]byte, 129))), pw, false},
		{"key changed", withPart(5, b64.EncodeToString(make([]byte, 32))), pw, false},
		{"salt changed", withPart(4, b64.EncodeToString([]byte("fedcba9876543210"))), pw, false},
		{"padded base64", withPart(5, base64.StdEncoding.EncodeToString(argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32))), pw, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := oauth.CheckPassword(tt.hash, tt.password); got != tt.want {
				t.Errorf("CheckPassword(%q) = %v, want %v", tt.hash, got, tt.want)
			}
		})
	}
}
