package oauth_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

// TestThrottleReserve: attempts are counted before their password is
// checked, so that of many concurrent attempts only the limit get through;
// a refused attempt leaves the counts as they were; each outcome settles
// the counts as ADR 5 says.
func TestThrottleReserve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	count := func(t *testing.T, st *memory.Store, key string) int {
		t.Helper()
		n, _, err := st.LoginFailures(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	user, addr := oauth.UserKey(&bff.User{ID: 7}, "alice"), oauth.AddressKey("198.51.100.7")

	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		st := memory.New()
		th := oauth.NewThrottle(st, oauth.ThrottleConfig{PerUsername: 10, PerAddress: 1000, Window: time.Minute})
		var granted, refused atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 50; i++ {
			wg.Go(func() {
				<-start
				_, err := th.Reserve(ctx, user, "198.51.100.7")
				var te *bff.ThrottledError
				switch {
				case err == nil:
					granted.Add(1)
				case errors.As(err, &te) && te.RetryAfterSeconds >= 1 && te.RetryAfterSeconds <= 60:
					refused.Add(1)
				default:
					t.Errorf("Reserve: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if granted.Load() != 10 || refused.Load() != 40 {
			t.Errorf("50 concurrent attempts, limit 10: %d granted, %d refused", granted.Load(), refused.Load())
		}
		// The granted ones hold their counts; the refused left none.
		if u, a := count(t, st, user), count(t, st, addr); u != 10 || a != 10 {
			t.Errorf("counts after: user %d address %d, want 10 and 10", u, a)
		}
	})

	// The worst interleaving: every attempt reads the counts before any
	// counts itself. Only the increment's answer can hold them back.
	t.Run("all read first", func(t *testing.T) {
		t.Parallel()
		st := &readBarrier{Store: memory.New()}
		st.wg.Add(50)
		th := oauth.NewThrottle(st, oauth.ThrottleConfig{PerUsername: 10, Window: time.Minute})
		var granted atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Go(func() {
				if _, err := th.Reserve(ctx, user, "198.51.100.7"); err == nil {
					granted.Add(1)
				} else if !errors.Is(err, bff.ErrTooManyAttempts) {
					t.Errorf("Reserve: %v", err)
				}
			})
		}
		wg.Wait()
		if granted.Load() != 10 {
			t.Errorf("50 attempts that all read a zero count, limit 10: %d granted", granted.Load())
		}
	})

	t.Run("outcomes", func(t *testing.T) {
		t.Parallel()
		st := memory.New()
		th := oauth.NewThrottle(st, oauth.ThrottleConfig{PerUsername: 3, PerAddress: 5, Window: time.Minute})
		reserve := func() *oauth.Attempt {
			t.Helper()
			a, err := th.Reserve(ctx, user, "198.51.100.7")
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		settle := func(a *oauth.Attempt, o oauth.Outcome, wantUser, wantAddr int) {
			t.Helper()
			if err := a.Settle(ctx, o); err != nil {
				t.Fatal(err)
			}
			if u, ad := count(t, st, user), count(t, st, addr); u != wantUser || ad != wantAddr {
				t.Errorf("outcome %d: user %d address %d, want %d %d", o, u, ad, wantUser, wantAddr)
			}
		}
		settle(reserve(), oauth.Failed, 1, 1)
		settle(reserve(), oauth.Failed, 2, 2)
		settle(reserve(), oauth.Unchecked, 2, 2) // not refuted: given back
		settle(reserve(), oauth.Succeeded, 0, 2) // user forgotten, the address's count given back
		settle(reserve(), oauth.Failed, 1, 3)
		// A context that ended (the client hung up) still settles.
		done, cancel := context.WithCancel(ctx)
		cancel()
		if err := reserve().Settle(done, oauth.Unchecked); err != nil {
			t.Errorf("settling after the request ended: %v", err)
		}
		if u, a := count(t, st, user), count(t, st, addr); u != 1 || a != 3 {
			t.Errorf("after a settle with an ended context: user %d address %d, want 1 3", u, a)
		}
		// Fill the user's bucket: the next is refused with the counts unchanged.
		settle(reserve(), oauth.Failed, 2, 4)
		settle(reserve(), oauth.Failed, 3, 5)
		if _, err := th.Reserve(ctx, user, "198.51.100.7"); !errors.Is(err, bff.ErrTooManyAttempts) {
			t.Errorf("a 4th attempt: %v, want too many attempts", err)
		}
		// The address is full too: another account is refused from it.
		other := oauth.UserKey(&bff.User{ID: 8}, "bob")
		if _, err := th.Reserve(ctx, other, "198.51.100.7"); !errors.Is(err, bff.ErrTooManyAttempts) {
			t.Errorf("another user from a full address: %v, want too many attempts", err)
		}
		if u, a, o := count(t, st, user), count(t, st, addr), count(t, st, other); u != 3 || a != 5 || o != 0 {
			t.Errorf("refusals changed the counts: user %d address %d other %d", u, a, o)
		}
	})

	t.Run("limits off", func(t *testing.T) {
		t.Parallel()
		st := memory.New()
		th := oauth.NewThrottle(st, oauth.ThrottleConfig{Window: time.Minute})
		for i := 0; i < 20; i++ {
			a, err := th.Reserve(ctx, user, "198.51.100.7")
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Settle(ctx, oauth.Failed); err != nil {
				t.Fatal(err)
			}
		}
		if u, a := count(t, st, user), count(t, st, addr); u != 0 || a != 0 {
			t.Errorf("limits of 0 counted: %d %d", u, a)
		}
	})

	t.Run("store down", func(t *testing.T) {
		t.Parallel()
		failing := &testenv.FailingStore{Store: memory.New()}
		th := oauth.NewThrottle(failing, oauth.DefaultThrottle)
		failing.Writes.Store(true)
		if _, err := th.Reserve(ctx, user, "198.51.100.7"); !errors.Is(err, bff.ErrUnavailable) {
			t.Errorf("Reserve with failing writes: %v, want ErrUnavailable (fail closed)", err)
		}
		failing.Writes.Store(false)
		if n := count(t, failing.Store.(*memory.Store), user); n != 0 {
			t.Errorf("a failed reservation left a count: %d", n)
		}
	})
}

// TestUserKey: the account's bucket whatever names it; typed text
// normalized and hashed otherwise.
func TestUserKey(t *testing.T) {
	t.Parallel()
	alice := &bff.User{ID: 42, Username: "alice", Email: "alice@example.com"}
	if a, b := oauth.UserKey(alice, "alice"), oauth.UserKey(alice, "alice@example.com"); a != b || a != "user:42" {
		t.Errorf("account keys %q, %q, want user:42 for both", a, b)
	}
	if a, b := oauth.UserKey(nil, "Nobody "), oauth.UserKey(nil, "nobody"); a != b {
		t.Errorf("unknown logins: %q != %q, want the normalized text's key", a, b)
	}
	for _, typed := range []string{"hunter2", "user:42"} {
		if k := oauth.UserKey(nil, typed); k == "user:42" || k == "u:"+typed || len(k) != len("u:")+32 {
			t.Errorf("UserKey(nil, %q) = %q, want a hash of the text", typed, k)
		}
	}
}

// readBarrier holds every LoginFailures answer until wg is done.
type readBarrier struct {
	*memory.Store
	wg sync.WaitGroup
}

func (r *readBarrier) LoginFailures(ctx context.Context, key string) (int, time.Time, error) {
	n, start, err := r.Store.LoginFailures(ctx, key)
	r.wg.Done()
	r.wg.Wait()
	return n, start, err
}

// TestThrottleRetryAfterWithinWindow: when a concurrent attempt on another
// instance opened the window with a clock a little ahead of ours, the
// refusal still says at most the window (rounded up), never a second more.
func TestThrottleRetryAfterWithinWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, ahead := range []time.Duration{0, time.Millisecond, 300 * time.Millisecond, 999 * time.Millisecond} {
		st := &clockAhead{Store: memory.New(), ahead: ahead}
		th := oauth.NewThrottle(st, oauth.ThrottleConfig{PerUsername: 1, Window: time.Minute})
		user := oauth.UserKey(&bff.User{ID: 9}, "bob")
		if _, err := th.Reserve(ctx, user, "198.51.100.9"); err != nil {
			t.Fatalf("first attempt: %v", err)
		}
		_, err := th.Reserve(ctx, user, "198.51.100.9")
		var te *bff.ThrottledError
		if !errors.As(err, &te) {
			t.Fatalf("second attempt with limit 1: %v, want ThrottledError", err)
		}
		if te.RetryAfterSeconds < 59 || te.RetryAfterSeconds > 60 {
			t.Errorf("window opened %v ahead of our clock: Retry-After %d, want 59 or 60", ahead, te.RetryAfterSeconds)
		}
	}
}

// clockAhead opens login-failure windows with a clock ahead of the caller's.
type clockAhead struct {
	*memory.Store
	ahead time.Duration
}

func (c *clockAhead) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	return c.Store.RecordLoginFailure(ctx, key, now.Add(c.ahead), window)
}
