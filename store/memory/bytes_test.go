package memory_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
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
	// A mobile app's logins: its users share the store's interned
	// records (one per user and token kind) when they hold many families,
	// and each family pays for its own when every user holds one.
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
// template is shared) and checks that it then refuses more and that what
// it keeps fits defaultCapHeap.
func TestDefaultCapHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store of the default cap")
	}
	ctx := context.Background()
	s := memory.New()
	families := memory.DefaultMaxTokens / 2
	if err := createBenchAccounts(ctx, s, families+1); err != nil {
		t.Fatal(err)
	}
	login := func(i int) error { return s.ApplyTokenOps(ctx, loginOps(int64(1+i))) }
	before := liveHeap()
	for i := range families {
		if err := login(i); err != nil {
			t.Fatalf("login %d of %d: %v", i+1, families, err)
		}
	}
	if err := login(families); !errors.Is(err, bff.ErrUnavailable) {
		t.Fatalf("a login past the default cap of %d tokens: %v, want ErrUnavailable", memory.DefaultMaxTokens, err)
	}
	grown := liveHeap() - before
	t.Logf("%d tokens: %.1f MiB live, %.0f B/token", 2*families, float64(grown)/(1<<20), float64(grown)/float64(2*families))
	if grown > defaultCapHeap {
		t.Errorf("a store at its default cap keeps %.1f MiB, want at most %d MiB", float64(grown)/(1<<20), defaultCapHeap>>20)
	}
	runtime.KeepAlive(s)
}
