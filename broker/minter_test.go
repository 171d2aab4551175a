package broker

import (
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// fakeSigner "signs" by encoding the claims, slowly, and counts signings.
type fakeSigner struct {
	delay time.Duration
	kid   atomic.Value
	signs atomic.Int64
}

func (s *fakeSigner) SignJWT(claims any) (string, error) {
	time.Sleep(s.delay)
	s.signs.Add(1)
	b, err := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(b), err
}

func (s *fakeSigner) CurrentKID() string { k, _ := s.kid.Load().(string); return k }

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestMinter(delay time.Duration, max int) (*minter, *fakeSigner, *fakeClock) {
	s := &fakeSigner{delay: delay}
	s.kid.Store("kid-1")
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return newMinter(s, "https://bff.test", "ecommerce", max, clk.now, func(bool) {}), s, clk
}

func principal(id int64, scopes ...string) bff.Principal {
	return bff.Principal{User: &bff.User{ID: id, Username: "u" + string(rune('a'+id)), Email: "u@example.com"}, Scopes: scopes}
}

func mustToken(t *testing.T, m *minter, p bff.Principal) (string, bool) {
	t.Helper()
	tok, cached, err := m.token(p)
	if err != nil {
		t.Fatal(err)
	}
	return tok, cached
}

// TestMinterCollapsesConcurrentMisses: a burst of first calls signs once.
func TestMinterCollapsesConcurrentMisses(t *testing.T) {
	t.Parallel()
	m, s, _ := newTestMinter(50*time.Millisecond, 100)
	var wg sync.WaitGroup
	toks := make([]string, 32)
	var minted atomic.Int64
	for i := range toks {
		wg.Go(func() {
			tok, cached, err := m.token(principal(1, "payments"))
			if err != nil {
				t.Error(err)
			}
			if !cached {
				minted.Add(1)
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	if n := s.signs.Load(); n != 1 {
		t.Errorf("32 concurrent misses signed %d times, want 1", n)
	}
	if minted.Load() != 1 {
		t.Errorf("%d callers report a fresh signing, want 1", minted.Load())
	}
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatal("concurrent callers got different JWTs")
		}
	}
}

// TestMinterKeyAndRenewal: the key holds the user, the scopes (in any
// order) and the identity; a JWT is renewed a minute before it expires and
// after a key rotation.
func TestMinterKeyAndRenewal(t *testing.T) {
	t.Parallel()
	m, s, clk := newTestMinter(0, 100)
	first, _ := mustToken(t, m, principal(1, "payments", "read"))
	if tok, cached := mustToken(t, m, principal(1, "read", "payments", "read")); tok != first || !cached {
		t.Error("the same scope set in another order got another JWT")
	}
	c := testkit.DecodeJSON(t, first)
	if c["aud"] != "ecommerce" || c["sub"] != "1" || c["scope"] != "payments read" || c["exp"].(float64)-c["iat"].(float64) != 300 {
		t.Errorf("claims %v", c)
	}
	for name, p := range map[string]bff.Principal{
		"other scopes": principal(1, "payments"),
		"other user":   principal(2, "payments", "read"),
	} {
		if tok, _ := mustToken(t, m, p); tok == first {
			t.Errorf("%s: same JWT", name)
		}
	}
	changed := principal(1, "payments", "read")
	changed.User.Email = "new@example.com"
	tok, _ := mustToken(t, m, changed)
	if tok == first || testkit.DecodeJSON(t, tok)["email"] != "new@example.com" {
		t.Error("a changed email was served from the JWT minted before the change")
	}

	signs := s.signs.Load()
	clk.add(3*time.Minute + 59*time.Second) // 61 s left: still used
	if tok, _ := mustToken(t, m, principal(2, "payments", "read")); s.signs.Load() != signs {
		t.Errorf("a JWT with 61 s left was renewed (%s)", tok[:8])
	}
	clk.add(2 * time.Second) // 59 s left: renewed
	renewed, cached := mustToken(t, m, principal(2, "payments", "read"))
	if cached || s.signs.Load() != signs+1 {
		t.Error("a JWT with 59 s left was not renewed")
	}
	if iat := testkit.DecodeJSON(t, renewed)["iat"].(float64); int64(iat) != clk.now().Unix() {
		t.Errorf("renewed iat %v, want now", iat)
	}

	s.kid.Store("kid-2")
	if _, cached := mustToken(t, m, principal(2, "payments", "read")); cached {
		t.Error("a JWT of the previous signing key was reused")
	}
}

// TestMinterIsBounded: past its size the least recently used JWT goes.
func TestMinterIsBounded(t *testing.T) {
	t.Parallel()
	m, s, _ := newTestMinter(0, 3)
	for id := int64(1); id <= 3; id++ {
		mustToken(t, m, principal(id, "payments"))
	}
	mustToken(t, m, principal(1, "payments")) // 1 is now the most recent
	mustToken(t, m, principal(4, "payments")) // evicts 2
	if m.size() != 3 {
		t.Errorf("size %d, want 3", m.size())
	}
	signs := s.signs.Load()
	for _, id := range []int64{1, 3, 4} {
		if _, cached := mustToken(t, m, principal(id, "payments")); !cached {
			t.Errorf("user %d was evicted", id)
		}
	}
	if _, cached := mustToken(t, m, principal(2, "payments")); cached {
		t.Error("the least recently used JWT was kept")
	}
	if s.signs.Load() != signs+1 || m.size() != 3 {
		t.Errorf("signs +%d, size %d", s.signs.Load()-signs, m.size())
	}
}
