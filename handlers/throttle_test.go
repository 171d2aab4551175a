package handlers_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// parallelPosts sends the forms at once (released together) and returns
// the answers by status and error code, e.g. "400 invalid_grant".
func parallelPosts(t *testing.T, env *testenv.Env, forms []struct{ from, user, password string }) map[string]int {
	t.Helper()
	var mu sync.Mutex
	out := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, f := range forms {
		wg.Go(func() {
			<-start
			rec := env.PostFrom(f.from, "/oauth2/access_token", testenv.PasswordForm("mobile", f.user, "password", f.password))
			key := strconv.Itoa(rec.Code)
			if rec.Code != 200 {
				key += " " + decodeOAuthErr(t, rec).Error
				if rec.Code == http.StatusTooManyRequests || rec.Code == http.StatusServiceUnavailable {
					if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 {
						t.Errorf("%d without a Retry-After: %q", rec.Code, rec.Header().Get("Retry-After"))
					}
				}
			}
			mu.Lock()
			out[key]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return out
}

// failures reads a throttle counter.
func failures(t *testing.T, env *testenv.Env, key string) int {
	t.Helper()
	n, _, err := env.Store.LoginFailures(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestThrottleConcurrentAttempts: 50 wrong passwords sent at once, with a
// limit of 10, get 10 password checks (400 invalid_grant) and 40 refusals
// (429) — per username, and per address across usernames. Counting after
// the check let all 50 be checked.
func TestThrottleConcurrentAttempts(t *testing.T) {
	t.Parallel()
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		for _, tt := range []struct {
			name      string
			throttle  oauth.ThrottleConfig
			from      func(i int) string
			user      func(i int) string
			wantAddr  int // the address counter after
			wantAlice int
		}{
			{"one username, many addresses", oauth.ThrottleConfig{PerUsername: 10, PerAddress: 1000, Window: time.Minute},
				func(i int) string { return fmt.Sprintf("198.51.100.%d:1000", i+1) },
				func(int) string { return "alice" }, 0, 10},
			{"one address, many usernames", oauth.ThrottleConfig{PerUsername: 1000, PerAddress: 10, Window: time.Minute},
				func(int) string { return "203.0.113.5:1000" },
				func(i int) string { return fmt.Sprintf("user%d", i) }, 10, 0},
		} {
			t.Run(tt.name, func(t *testing.T) {
				env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg, Config: func(c *oauth.Config) {
					c.Throttle = tt.throttle
					c.PasswordChecks.Wait = time.Minute // this test is about the throttle, not the queue
				}})
				env.PublicClient(t, "mobile")
				alice := env.User(t, "alice")
				forms := make([]struct{ from, user, password string }, 50)
				for i := range forms {
					forms[i].from, forms[i].user, forms[i].password = tt.from(i), tt.user(i), "wrong"
				}
				got := parallelPosts(t, env, forms)
				if got["400 invalid_grant"] != 10 || got["429 too_many_attempts"] != 40 || len(got) != 2 {
					t.Errorf("answers %v, want 10 × 400 invalid_grant and 40 × 429 too_many_attempts", got)
				}
				if n := failures(t, env, oauth.UserKey(&alice, "")); n != tt.wantAlice {
					t.Errorf("alice's counter %d, want %d", n, tt.wantAlice)
				}
				if n := failures(t, env, oauth.AddressKey("203.0.113.5")); n != tt.wantAddr {
					t.Errorf("the address's counter %d, want %d", n, tt.wantAddr)
				}
			})
		}
	})
}

// TestThrottleUsernameOrEmail: the username and the email of an account
// share one allowance, whichever is typed and however it is capitalized;
// an unknown login's allowance is the normalized text's.
func TestThrottleUsernameOrEmail(t *testing.T) {
	t.Parallel()
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg, Config: func(c *oauth.Config) {
			c.Throttle = oauth.ThrottleConfig{PerUsername: 3, PerAddress: 1000, Window: time.Minute}
		}})
		env.PublicClient(t, "mobile")
		env.User(t, "alice")
		env.User(t, "bob")
		attempt := func(i int, login, password string) *httptest.ResponseRecorder {
			// A new address each time: only the username bucket counts.
			return env.PostFrom(fmt.Sprintf("198.51.100.%d:1", i), "/oauth2/access_token",
				testenv.PasswordForm("mobile", login, "password", password))
		}
		for i, login := range []string{"alice", "alice@example.com", "Alice@Example.COM"} {
			if rec := attempt(i, login, "wrong"); rec.Code != 400 {
				t.Fatalf("%s wrong: %d %s", login, rec.Code, rec.Body)
			}
		}
		for i, login := range []string{"alice", "ALICE", "alice@example.com"} {
			if rec := attempt(10+i, login, testenv.Password); rec.Code != http.StatusTooManyRequests {
				t.Errorf("%s after 3 failures through username and email: %d %s, want 429", login, rec.Code, rec.Body)
			}
		}
		if rec := attempt(20, "bob@example.com", testenv.Password); rec.Code != 200 {
			t.Errorf("bob: %d %s", rec.Code, rec.Body)
		}
		for i, login := range []string{"nobody", "NOBODY", " nobody "} {
			if rec := attempt(30+i, login, "x"); rec.Code != 400 {
				t.Fatalf("%q: %d %s", login, rec.Code, rec.Body)
			}
		}
		if rec := attempt(40, "Nobody", "x"); rec.Code != http.StatusTooManyRequests {
			t.Errorf("an unknown login after 3 failures under other spellings: %d, want 429", rec.Code)
		}
	})
}

// TestThrottleSuccessKeepsAddressBudget: successful logins do not use up
// their address's allowance (a carrier address is shared by many users),
// and a success resets the account's count only.
func TestThrottleSuccessKeepsAddressBudget(t *testing.T) {
	t.Parallel()
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg, Config: func(c *oauth.Config) {
			c.Throttle = oauth.ThrottleConfig{PerUsername: 100, PerAddress: 3, Window: time.Minute}
		}})
		env.PublicClient(t, "mobile")
		alice := env.User(t, "alice")
		env.User(t, "bob")
		const carrier = "198.51.100.200:4000"
		attempt := func(user, password string) int {
			return env.PostFrom(carrier, "/oauth2/access_token", testenv.PasswordForm("mobile", user, "password", password)).Code
		}
		if code := attempt("alice", "wrong"); code != 400 {
			t.Fatalf("alice wrong: %d", code)
		}
		for i := 0; i < 6; i++ {
			if code := attempt("alice", testenv.Password); code != 200 {
				t.Fatalf("login %d: %d", i, code)
			}
		}
		if n := failures(t, env, oauth.AddressKey("198.51.100.200")); n != 1 {
			t.Errorf("address counter after 1 failure and 6 logins: %d, want 1", n)
		}
		if n := failures(t, env, oauth.UserKey(&alice, "")); n != 0 {
			t.Errorf("alice's counter after her login: %d, want 0", n)
		}
		// Two more failures fill the address (3); then even a right password
		// is refused from it.
		for i := 0; i < 2; i++ {
			if code := attempt("bob", "wrong"); code != 400 {
				t.Fatalf("bob wrong %d: %d", i, code)
			}
		}
		if code := attempt("alice", testenv.Password); code != http.StatusTooManyRequests {
			t.Errorf("alice from a full address: %d, want 429", code)
		}
	})
}

// TestPasswordChecksBusy: when every hashing slot is taken and no request
// may wait, a password grant is answered at once with 503
// temporarily_unavailable and Retry-After, without its password checked
// and without using the throttle's allowance.
func TestPasswordChecksBusy(t *testing.T) {
	t.Parallel()
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg, Config: func(c *oauth.Config) {
			c.Throttle = oauth.ThrottleConfig{PerUsername: 100, PerAddress: 100, Window: time.Minute}
			c.PasswordChecks = oauth.PasswordCheckLimits{Slots: 1, Queue: -1}
		}})
		env.PublicClient(t, "mobile")
		alice := userAtProductionCost(t, env, "alice")
		forms := make([]struct{ from, user, password string }, 8)
		for i := range forms {
			forms[i].from, forms[i].user, forms[i].password = "192.0.2.50:1", "alice", "wrong"
		}
		got := parallelPosts(t, env, forms)
		checked, busy := got["400 invalid_grant"], got["503 temporarily_unavailable"]
		if busy == 0 || checked == 0 || checked+busy != len(forms) {
			t.Fatalf("answers %v: want some 400 invalid_grant (checked) and some 503 temporarily_unavailable (busy), nothing else", got)
		}
		// Only the checked attempts are counted.
		if n := failures(t, env, oauth.UserKey(&alice, "")); n != checked {
			t.Errorf("alice's counter %d, want %d (the checked attempts)", n, checked)
		}
		if n := failures(t, env, oauth.AddressKey("192.0.2.50")); n != checked {
			t.Errorf("the address's counter %d, want %d", n, checked)
		}
		// Not busy any more: the right password works.
		if rec := env.PostFrom("192.0.2.50:1", "/oauth2/access_token", testenv.PasswordForm("mobile", "alice")); rec.Code != 200 {
			t.Errorf("after the burst: %d %s", rec.Code, rec.Body)
		}
	})
}

// userAtProductionCost is testenv's User with a password hash at the
// production argon2id cost (oauth's argonMemory and argonTime), for a test
// that needs password checks to take time: this test binary hashes new
// passwords cheaply (TestMain).
func userAtProductionCost(t *testing.T, env *testenv.Env, username string) bff.User {
	t.Helper()
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	b64 := base64.RawStdEncoding
	key := argon2.IDKey([]byte(testenv.Password), salt, 2, 19*1024, 1, 32)
	hash := fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, 19*1024, 2, 1,
		b64.EncodeToString(salt), b64.EncodeToString(key))
	u, err := env.Store.CreateUser(context.Background(), bff.User{Username: username, Email: username + "@example.com",
		Name: "Test " + username, EmailVerified: true, PasswordHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// BenchmarkTokenThrottled is a password grant refused by the throttle (the
// account is locked): the cost of each request of a flood against one
// account. No password is checked and nothing is written.
func BenchmarkTokenThrottled(b *testing.B) {
	benchEachSetup(b, benchOpaqueSetups, func(b *testing.B, env *testenv.Env) {
		benchMobileUser(b, env)
		wrong := testenv.PasswordForm("mobile", "alice", "password", "wrong").Encode()
		for i := 0; i < oauth.DefaultThrottle.PerUsername; i++ {
			benchMustStatus(b, benchPost(env, "/oauth2/access_token", wrong), http.StatusBadRequest)
		}
		b.ReportAllocs()
		for b.Loop() {
			benchMustStatus(b, benchPost(env, "/oauth2/access_token", wrong), http.StatusTooManyRequests)
		}
	})
}
