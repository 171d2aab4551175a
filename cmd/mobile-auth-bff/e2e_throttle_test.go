package main

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestE2EThrottle: through the real binary on both stores, 30 wrong
// passwords sent at once with a limit of 5 get 5 password checks and 25
// refusals; the account is then refused under its email too, even with the
// right password, while other accounts sign in.
func TestE2EThrottle(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env, map[string]string{
			"BFF_LOGIN_MAX_FAILURES_PER_USERNAME": "5", "BFF_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000"}))
		s.createMobileClient("app", nil)
		s.createUser("rita")
		s.createUser("sam")
		login := func(username, password string) response {
			return s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"app"},
				"username": {username}, "password": {password}})
		}

		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		release := make(chan struct{})
		for i := 0; i < 30; i++ {
			wg.Go(func() {
				<-release
				r := login("rita", "wrong")
				key := strconv.Itoa(r.status)
				if r.status != 200 {
					key += " " + r.json(t)["error"].(string)
				}
				if r.status == 429 {
					if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 900 {
						t.Errorf("429 with Retry-After %q", r.header.Get("Retry-After"))
					}
				}
				mu.Lock()
				got[key]++
				mu.Unlock()
			})
		}
		close(release)
		wg.Wait()
		if got["400 invalid_grant"] != 5 || got["429 too_many_attempts"] != 25 || len(got) != 2 {
			t.Errorf("30 wrong passwords at once, limit 5: %v, want 5 × 400 invalid_grant and 25 × 429", got)
		}
		for _, name := range []string{"rita", "rita@example.com", "RITA"} {
			if r := login(name, e2ePassword); r.status != 429 {
				t.Errorf("%s with the right password after the limit: %d %s, want 429", name, r.status, r.body)
			}
		}
		if r := login("sam@example.com", e2ePassword); r.status != 200 {
			t.Errorf("sam: %d %s", r.status, r.body)
		}
	})
}

// TestE2ETrustedProxies: the per-address throttle counts the address in
// X-Forwarded-For only from BFF_TRUSTED_PROXIES (else a caller could pick
// a new address per request), and start-up warns when the variable is
// empty and the public listener can be reached from other hosts.
func TestE2ETrustedProxies(t *testing.T) {
	t.Parallel()
	throttle := map[string]string{"BFF_LOGIN_MAX_FAILURES_PER_USERNAME": "1000", "BFF_LOGIN_MAX_FAILURES_PER_ADDRESS": "2"}
	const warning = "BFF_TRUSTED_PROXIES is not set and the public listener is reachable from other hosts"

	t.Run("behind a trusted proxy", func(t *testing.T) {
		t.Parallel()
		s := start(t, baseEnv(throttle, map[string]string{"BFF_TRUSTED_PROXIES": "127.0.0.1/32"}))
		s.createMobileClient("app", nil)
		s.createUser("uma")
		from := func(client, password string) int {
			return s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"app"},
				"username": {"uma"}, "password": {password}}, "X-Forwarded-For", client).status
		}
		for i := 0; i < 2; i++ {
			if st := from("198.51.100.1", "wrong"); st != 400 {
				t.Fatalf("wrong %d: %d", i, st)
			}
		}
		if st := from("198.51.100.1", e2ePassword); st != 429 {
			t.Errorf("the throttled client: %d, want 429", st)
		}
		if st := from("198.51.100.2", e2ePassword); st != 200 {
			t.Errorf("another client behind the same proxy: %d, want 200", st)
		}
		if strings.Contains(s.out.String(), warning) {
			t.Error("warned although BFF_TRUSTED_PROXIES is set")
		}
	})

	t.Run("no trusted proxy", func(t *testing.T) {
		t.Parallel()
		s := start(t, baseEnv(throttle))
		s.createMobileClient("app", nil)
		s.createUser("uma")
		from := func(client, password string) int {
			return s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"app"},
				"username": {"uma"}, "password": {password}}, "X-Forwarded-For", client).status
		}
		for i := 0; i < 2; i++ {
			if st := from("198.51.100."+strconv.Itoa(i+1), "wrong"); st != 400 {
				t.Fatalf("wrong %d: %d", i, st)
			}
		}
		if st := from("198.51.100.99", e2ePassword); st != 429 {
			t.Errorf("a forged X-Forwarded-For escaped the address's count: %d, want 429", st)
		}
		if strings.Contains(s.out.String(), warning) {
			t.Error("warned although the listener is on loopback")
		}
	})

	for _, tt := range []struct {
		name    string
		env     map[string]string
		warning bool
	}{
		{"every interface, no proxies", map[string]string{"BFF_ADDR": "0.0.0.0:0"}, true},
		{"every interface, proxies set", map[string]string{"BFF_ADDR": "0.0.0.0:0", "BFF_TRUSTED_PROXIES": "10.0.0.0/8"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, baseEnv(tt.env))
			var warned int
			for _, line := range strings.Split(s.out.String(), "\n") {
				if strings.Contains(line, warning) && strings.Contains(line, `"level":"WARN"`) {
					warned++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.warning]; warned != want {
				t.Errorf("%d start-up warnings, want %d:\n%s", warned, want, s.out)
			}
		})
	}
}

func TestOnLoopback(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}, true},
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.2"), Port: 8080}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, false},
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 8080}, false},
		{&net.UnixAddr{Name: "/run/bff.sock", Net: "unix"}, false},
	} {
		if got := onLoopback(tt.addr); got != tt.want {
			t.Errorf("onLoopback(%v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
