// Package testkit holds the helpers that tests of several packages share:
// a log sink safe for concurrent writes, the stores a test runs on, and
// decoders of JWTs. It is imported by tests only.
package testkit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
)

// Buffer collects log output written from several goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Postgres reports whether the tests run on PostgreSQL too: with
// BFF_TEST_DATABASE_URL, and always in CI (where testdb then fails a test
// that has no database rather than skipping it).
func Postgres() bool {
	return os.Getenv(testdb.EnvVar) != "" || os.Getenv("CI") == "true"
}

// StoreKinds lists the stores a test runs on: false for the in-memory
// store, and true for PostgreSQL when Postgres().
func StoreKinds() []bool {
	if Postgres() {
		return []bool{false, true}
	}
	return []bool{false}
}

// StoreName names a store kind for subtests: "memory" or "postgres".
func StoreName(pg bool) string {
	if pg {
		return "postgres"
	}
	return "memory"
}

// EachStore runs fn as a parallel subtest per store kind.
func EachStore(t *testing.T, fn func(t *testing.T, pg bool)) {
	t.Helper()
	for _, pg := range StoreKinds() {
		t.Run(StoreName(pg), func(t *testing.T) {
			t.Parallel()
			fn(t, pg)
		})
	}
}

// DecodeJSON decodes a base64url segment holding a JSON object.
func DecodeJSON(t testing.TB, segment string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Segment decodes part i (0 header, 1 payload) of a compact JWS without
// verifying it.
func Segment(t testing.TB, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	return DecodeJSON(t, parts[i])
}

// VerifyJWT parses a compact JWS signed with one of algs, verifies it
// against the key of its kid in set, and returns its header and claims.
func VerifyJWT(t testing.TB, token string, set jose.JSONWebKeySet, algs ...jose.SignatureAlgorithm) (jose.Header, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, algs)
	if err != nil {
		t.Fatalf("parse JWT: %v", err)
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("JWT does not verify against the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return h, claims
}

// Main runs a package's tests with up to parallel tests at once unless
// -test.parallel says otherwise (go test's default is GOMAXPROCS). For
// packages whose tests mostly wait — on sockets, on PostgreSQL, on a clock
// to pass a second — rather than compute, so that more tests than cores
// keep the cores busy. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testkit.Main(m, 8)) }
func Main(m *testing.M, parallel int) int {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given && parallel > runtime.GOMAXPROCS(0) {
		if err := flag.Set("test.parallel", strconv.Itoa(parallel)); err != nil {
			panic(err)
		}
	}
	return m.Run()
}
