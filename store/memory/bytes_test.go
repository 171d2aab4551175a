package memory_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

// liveTokens is how many tokens BenchmarkTokenBytes holds, as many as the
// bench suite's bytes-per-token reading.
const liveTokens = 20_000

// BenchmarkTokenBytes reports the heap the in-memory store keeps per live
// token (B/token), for tokens shaped like the service's: a client-credentials
// access token (its own family), and a password login's access and refresh
// token (one family of two) of 50 users, or of a user per login.
func BenchmarkTokenBytes(b *testing.B) {
	b.Run("client_credentials", func(b *testing.B) {
		benchTokenBytes(b, 0, liveTokens, 1, func(ctx context.Context, s *memory.Store, i int) error {
			at := time.Now().UTC()
			family := newUUID()
			return s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bff.AccessToken{
				Signature: newSignature(), FamilyID: family, Format: bff.FormatBearer, ClientID: "bench-backend",
				GrantType: bff.GrantClientCredentials, Scopes: []string{"read"}, IssuedAt: at,
				ExpiresAt: at.Add(time.Hour), Request: serviceRequest(family, "bench-backend", at, 0, ""),
			}}})
		})
	})
	b.Run("client_credentials_jwt", func(b *testing.B) {
		benchTokenBytes(b, 0, liveTokens, 1, func(ctx context.Context, s *memory.Store, i int) error {
			at := time.Now().UTC()
			family := newUUID()
			jwt := fakeJWT()
			return s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bff.AccessToken{
				Signature: jwt[strings.LastIndexByte(jwt, '.')+1:], FamilyID: family, JTI: bff.RandomID(16), Format: bff.FormatJWT,
				ClientID: "bench-backend", GrantType: bff.GrantClientCredentials, Scopes: []string{"read"}, IssuedAt: at,
				ExpiresAt: at.Add(time.Hour), Request: serviceRequest(family, "bench-backend", at, 0, ""),
			}}})
		})
	})
	// A mobile app's logins: its users share the store's interned
	// records (one per user and token kind) when they hold many families,
	// and each family pays for its own when every user holds one.
	// The same logins with JWT access tokens: the records are keyed by the
	// JWT's RS256 signature (342 characters) and the JWT's id.
	b.Run("password_jwt/users=50", func(b *testing.B) {
		benchTokenBytes(b, 50, liveTokens/2, 2, func(ctx context.Context, s *memory.Store, i int) error {
			return s.ApplyTokenOps(ctx, jwtLoginOps(int64(1+i%50)))
		})
	})
	for _, users := range []int{50, liveTokens / 2} {
		b.Run(fmt.Sprintf("password/users=%d", users), func(b *testing.B) {
			benchTokenBytes(b, users, liveTokens/2, 2, func(ctx context.Context, s *memory.Store, i int) error {
				return s.ApplyTokenOps(ctx, loginOps(int64(1+i%users)))
			})
		})
	}
}

// loginOps are the writes of a password login of user (bench-user-NNNNN)
// to the public client bench-mobile: an access token and a refresh token,
// a family of their own.
func loginOps(user int64) []store.TokenOp {
	at := time.Now().UTC()
	family := newUUID()
	req := serviceRequest(family, "bench-mobile", at, user, fmt.Sprintf("bench-user-%05d", user))
	access := newSignature()
	return []store.TokenOp{
		store.CreateAccessToken{Token: bff.AccessToken{
			Signature: access, FamilyID: family, Format: bff.FormatBearer, ClientID: "bench-mobile", UserID: user,
			GrantType: bff.GrantPassword, Scopes: []string{"read", "email", "profile"}, IssuedAt: at,
			ExpiresAt: at.Add(time.Hour), AuthTime: at, Request: req}},
		store.CreateRefreshToken{Token: bff.RefreshToken{
			Signature: newSignature(), FamilyID: family, AccessSignature: access, ClientID: "bench-mobile",
			UserID: user, GrantType: bff.GrantPassword, Scopes: []string{"read", "email", "profile"},
			IssuedAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour), AuthTime: at, Request: req}},
	}
}

// jwtLoginOps are loginOps with a JWT access token, its signature taken
// from the whole compact JWT as the service takes it (the part after the
// last dot: a substring of the token the client is sent).
func jwtLoginOps(user int64) []store.TokenOp { return jwtLoginOpsOf(user, fakeJWT()) }

// jwtLoginOpsOf are jwtLoginOps for the access token jwt.
func jwtLoginOpsOf(user int64, jwt string) []store.TokenOp {
	ops := loginOps(user)
	access, refresh := ops[0].(store.CreateAccessToken), ops[1].(store.CreateRefreshToken)
	sig := jwt[strings.LastIndexByte(jwt, '.')+1:]
	access.Token.Signature, access.Token.Format, access.Token.JTI = sig, bff.FormatJWT, bff.RandomID(16) // as the service's
	refresh.Token.AccessSignature = sig
	return []store.TokenOp{access, refresh}
}

// fakeJWT is shaped like an RS256 access token of the service: a header,
// about 500 characters of claims and a 256-byte signature, base64url.
func fakeJWT() string { return fakeJWTWithClaims(380) }

// fakeJWTWithClaims is a fake JWT whose claims are n random bytes.
func fakeJWTWithClaims(n int) string {
	part := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return part(75) + "." + part(n) + "." + part(256)
}

// benchTokenBytes fills a fresh store of users with issue(i) for i <
// families, each of perFamily tokens, and reports the growth of the live
// heap per token.
func benchTokenBytes(b *testing.B, users, families, perFamily int, issue func(context.Context, *memory.Store, int) error) {
	ctx := context.Background()
	var perToken float64
	for b.Loop() {
		s := memory.NewWith(memory.Options{})
		now := time.Now().UTC()
		if err := createBenchAccounts(ctx, s, users); err != nil {
			b.Fatal(err)
		}
		before := liveHeap()
		for i := range families {
			if err := issue(ctx, s, i); err != nil {
				b.Fatal(err)
			}
		}
		after := liveHeap()
		if counts, err := s.CountActiveTokens(ctx, now); err != nil || len(counts) != 1 || counts[0].Count != int64(families) {
			b.Fatalf("active access tokens: %v, %v; want %d", counts, err, families)
		}
		perToken = float64(after-before) / float64(families*perFamily)
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perToken, "B/token")
}

// createBenchAccounts creates the clients bench-backend (confidential,
// client credentials) and bench-mobile (public, password and refresh) and
// users bench-user-00001 to bench-user-<users>.
func createBenchAccounts(ctx context.Context, s *memory.Store, users int) error {
	now := time.Now().UTC()
	for _, c := range []bff.Client{
		{ID: "bench-backend", GrantTypes: []string{bff.GrantClientCredentials}, Scopes: []string{"read"}},
		{ID: "bench-mobile", Public: true, GrantTypes: []string{bff.GrantPassword, bff.GrantRefreshToken}, Scopes: []string{"read", "email", "profile"}},
	} {
		c.Name, c.TokenType, c.CreatedAt, c.UpdatedAt = c.ID, bff.FormatBearer, now, now
		if err := s.CreateClient(ctx, c); err != nil {
			return err
		}
	}
	for i := range users {
		if _, err := s.CreateUser(ctx, bff.User{Username: fmt.Sprintf("bench-user-%05d", i+1), Email: fmt.Sprintf("u%d@example.com", i)}); err != nil {
			return err
		}
	}
	return nil
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// newSignature is like the HMAC signature of an opaque token: 32 random
// bytes in unpadded base64url.
func newSignature() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newUUID is like fosite's request ids.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// serviceRequest is a serialized request as the oauth package writes it
// (oauth.storedRequest): the store keeps it opaque.
func serviceRequest(id, client string, at time.Time, user int64, username string) []byte {
	type session struct {
		UserID    int64                `json:"user_id,omitempty"`
		Username  string               `json:"username,omitempty"`
		GrantType string               `json:"grant_type"`
		Format    bff.TokenFormat      `json:"format"`
		AuthTime  time.Time            `json:"auth_time,omitzero"`
		ExpiresAt map[string]time.Time `json:"expires_at"`
	}
	sess := session{GrantType: bff.GrantClientCredentials, Format: bff.FormatBearer,
		ExpiresAt: map[string]time.Time{"access_token": at.Add(time.Hour)}}
	scopes := []string{"read"}
	if user != 0 {
		sess.UserID, sess.Username, sess.GrantType, sess.AuthTime = user, username, bff.GrantPassword, at
		sess.ExpiresAt["refresh_token"] = at.Add(30 * 24 * time.Hour)
		scopes = []string{"read", "email", "profile"}
	}
	b, err := json.Marshal(struct {
		ID              string    `json:"id"`
		RequestedAt     time.Time `json:"requested_at"`
		ClientID        string    `json:"client_id"`
		RequestedScopes []string  `json:"requested_scopes,omitempty"`
		GrantedScopes   []string  `json:"granted_scopes,omitempty"`
		Session         session   `json:"session"`
	}{id, at.Add(-time.Millisecond), client, scopes, scopes, sess})
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkClientCredentialsToken is the store's share of a
// client-credentials request and of each use of its token: one write, one
// read by signature.
func BenchmarkClientCredentialsToken(b *testing.B) {
	ctx := context.Background()
	s := memory.NewWith(memory.Options{})
	now := time.Now().UTC()
	if err := s.CreateClient(ctx, bff.Client{ID: "bench-backend", Name: "bench-backend", TokenType: bff.FormatBearer,
		CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	type token struct{ sig, family string }
	tokens := make([]token, 4096)
	for i := range tokens {
		tokens[i] = token{newSignature(), newUUID()}
	}
	i := 0
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			t := tokens[i%len(tokens)]
			i++
			t.sig = fmt.Sprintf("%.38s%05d", t.sig, i%100000) // a fresh signature, still 43 characters
			at := time.Now().UTC()
			if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bff.AccessToken{
				Signature: t.sig, FamilyID: t.family, Format: bff.FormatBearer, ClientID: "bench-backend",
				GrantType: bff.GrantClientCredentials, Scopes: []string{"read"}, IssuedAt: at,
				ExpiresAt: at.Add(time.Hour), Request: serviceRequest(t.family, "bench-backend", at, 0, ""),
			}}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	sigs := []string{}
	for range 1000 {
		t := token{newSignature(), newUUID()}
		if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bff.AccessToken{
			Signature: t.sig, FamilyID: t.family, Format: bff.FormatBearer, ClientID: "bench-backend",
			GrantType: bff.GrantClientCredentials, Scopes: []string{"read"}, IssuedAt: now,
			ExpiresAt: now.Add(time.Hour), Request: serviceRequest(t.family, "bench-backend", now, 0, ""),
		}}}); err != nil {
			b.Fatal(err)
		}
		sigs = append(sigs, t.sig)
	}
	b.Run("read", func(b *testing.B) {
		n := 0
		for b.Loop() {
			if _, err := s.GetAccessToken(ctx, sigs[n%len(sigs)]); err != nil {
				b.Fatal(err)
			}
			n++
		}
	})
}

// defaultCapHeap is the most live heap a store at its default cap may
// keep: with Go's default collector (GOGC=100) the heap grows to about
// twice what is live, and the process's peak RSS target (issue 14) is
// 100 MiB, some 25 MiB of which is the rest of the process.
const defaultCapHeap = 32 << 20

// TestDefaultCapHeap fills a store of the default cap with its most costly
// tokens (password logins, every family its own user, so that no request
// template is shared), with opaque and with JWT access tokens, and checks
// that it then refuses more and that what it keeps fits defaultCapHeap.
func TestDefaultCapHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store of the default cap")
	}
	for _, tt := range []struct {
		name   string
		ops    func(user int64) []store.TokenOp
		logins int // until the cap: 2 tokens each
	}{
		{"opaque", loginOps, memory.DefaultMaxTokens / 2},
		{"jwt", jwtLoginOps, memory.DefaultMaxTokens / 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := memory.New()
			if err := createBenchAccounts(ctx, s, tt.logins+1); err != nil {
				t.Fatal(err)
			}
			login := func(i int) error { return s.ApplyTokenOps(ctx, tt.ops(int64(1+i))) }
			before := liveHeap()
			for i := range tt.logins {
				if err := login(i); err != nil {
					t.Fatalf("login %d of %d: %v", i+1, tt.logins, err)
				}
			}
			if err := login(tt.logins); !errors.Is(err, bff.ErrUnavailable) {
				t.Fatalf("a login past the default cap of %d: %v, want ErrUnavailable", memory.DefaultMaxTokens, err)
			}
			grown := liveHeap() - before
			t.Logf("%d tokens: %.1f MiB live, %.0f B/token", 2*tt.logins, float64(grown)/(1<<20), float64(grown)/float64(2*tt.logins))
			if grown > defaultCapHeap {
				t.Errorf("a store at its default cap keeps %.1f MiB, want at most %d MiB", float64(grown)/(1<<20), defaultCapHeap>>20)
			}
			runtime.KeepAlive(s)
		})
	}
}

// TestJWTTokenBytes: a JWT login's records keep nothing of the JWT its
// signature was cut from (a substring keeps its string alive: a store of
// 50,000 JWT tokens once kept 20 MiB of JWTs that way), nor the signature
// itself (its SHA-256 is the key). The JWTs here carry 4 KB of claims, so
// that keeping them shows.
func TestJWTTokenBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := memory.NewWith(memory.Options{})
	if err := createBenchAccounts(ctx, s, 50); err != nil {
		t.Fatal(err)
	}
	const logins = 2000
	before := liveHeap()
	for i := range logins {
		if err := s.ApplyTokenOps(ctx, jwtLoginOpsOf(int64(1+i%50), fakeJWTWithClaims(3000))); err != nil {
			t.Fatal(err)
		}
	}
	perToken := float64(liveHeap()-before) / (2 * logins)
	runtime.KeepAlive(s)
	t.Logf("%.0f B/token", perToken)
	// A login's records are about 700 bytes; a copy of the signature
	// would be 350 more, the JWT it was cut from 4.4 KB.
	if perToken > 500 {
		t.Errorf("%.0f B per JWT login token, want at most 500: the store keeps the signature or the JWT it was cut from", perToken)
	}
}
