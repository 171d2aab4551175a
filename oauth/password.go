package oauth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// hashCost is the argon2id cost of new hashes (and of the time burned for an
// unknown login): the parameters above, unless a test binary lowered it with
// UseCheapPasswordHashingInTests before its tests started.
var hashCost = struct{ memory, time uint32 }{argonMemory, argonTime}

// UseCheapPasswordHashingInTests makes new password hashes use the lowest
// argon2id cost (8 KiB, one pass) instead of OWASP's minimum. A test knob,
// for the TestMain of test packages that hash and check many passwords and
// test something else: under the race detector a hash at the production
// cost takes a third of a second, so it is most of their run time. It must
// be called before any test runs (it is not synchronized). Hashes stay in
// the production format with their parameters, so CheckPassword is
// unchanged; the production cost is covered by this package's own tests.
func UseCheapPasswordHashingInTests() {
	hashCost.memory, hashCost.time = 8, 1
}

// maxBcryptCost is the highest bcrypt cost accepted for imported hashes.
const maxBcryptCost = 16

// MaxPasswordLength bounds the work a single request can cause.
const MaxPasswordLength = 1024

// HashPassword returns an argon2id hash in PHC string format.
func HashPassword(password string) (string, error) {
	if password == "" || len(password) > MaxPasswordLength {
		return "", fmt.Errorf("password must be 1–%d bytes", MaxPasswordLength)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	hashMem.begin()
	defer hashMem.end()
	key := argon2.IDKey([]byte(password), salt, hashCost.time, hashCost.memory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, hashCost.memory, hashCost.time,
		argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("unrecognized password hash")

// CheckPassword reports whether password matches hash (argon2id, or bcrypt
// for imported accounts). An empty or unknown hash never matches.
func CheckPassword(hash, password string) bool {
	if len(password) > MaxPasswordLength {
		return false
	}
	hashMem.begin()
	defer hashMem.end()
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		ok, err := checkArgon2id(hash, password)
		return err == nil && ok
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		// Refuse costs that would let a stored hash tie up a request for
		// hours (cost 31 is 2^31 rounds), as checkArgon2id does for argon2id.
		if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost > maxBcryptCost {
			return false
		}
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	return false
}

func checkArgon2id(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var memory, iterations uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &iterations, &threads); err != nil {
		return false, errBadHash
	}
	// Refuse parameters that would let a stored hash exhaust the machine.
	if memory == 0 || memory > 256*1024 || iterations == 0 || iterations > 10 || threads == 0 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, iterations, memory, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

var (
	dummyOnce sync.Once
	dummy     string
)

// burnPasswordCheck spends the time of a real password check, so that an
// unknown username cannot be told from a wrong password by timing.
func burnPasswordCheck(password string) {
	dummyOnce.Do(func() {
		// HashPassword fails only without system randomness; the burn then
		// returns early, which leaks timing but nothing else.
		dummy, _ = HashPassword("not-a-password-anyone-has")
	})
	CheckPassword(dummy, password)
}
