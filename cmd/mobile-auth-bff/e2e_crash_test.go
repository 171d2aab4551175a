package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// serveChildEnv, set to 1, makes this test binary run the service (run()
// with "serve" and its own environment, as main does) instead of the
// tests: a process of its own, which a test can kill (TestMain).
const serveChildEnv = "BFF_E2E_SERVE_CHILD"

// startProcess runs the service in a process of its own and waits until
// both listeners are up. The process is killed when the test ends, if it
// is still running.
func startProcess(t *testing.T, env map[string]string) (*server, *os.Process) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), serveChildEnv + "=1"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &testkit.Buffer{}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	s := &server{t: t, out: out}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if m := listeningRe.FindStringSubmatch(line); m != nil {
				if m[1] == "public" {
					s.public = "http://" + m[2]
				} else {
					s.admin = "http://" + m[2]
				}
				if s.public != "" && s.admin != "" {
					close(up)
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-up:
	case <-exited:
		t.Fatalf("the service exited before listening:\n%s", out)
	case <-time.After(60 * time.Second):
		t.Fatalf("the service did not start:\n%s", out)
	}
	return s, cmd.Process
}

// TestE2ECrashKeepsAnsweredWrites: the service, a process of its own on
// PostgreSQL, is killed (SIGKILL: no shutdown, nothing flushed) in the
// middle of concurrent client-credentials, refresh and revocation load —
// while token writes are being committed in groups. Another process on the
// same database then finds every write answered 200: every client-
// credentials token is active, every refresh chain's last refresh token
// answered 200 refreshes (live, or rotated by the refresh in flight at the
// kill and in its reuse grace; its access token is active unless that
// refresh was in flight), and every revocation answered 200 holds. Only the
// requests in flight at the kill, which got no answer, may have happened
// or not.
func TestE2ECrashKeepsAnsweredWrites(t *testing.T) {
	t.Parallel()
	dbURL := testdb.URL(t)
	// The longest reuse grace: a chain whose last refresh was in flight at
	// the kill may have been rotated by it; its last refresh token
	// answered 200 then still gets a fresh pair, however slow the restart.
	env := baseEnv(map[string]string{"BFF_DATABASE_URL": dbURL, "BFF_REFRESH_REUSE_GRACE": "1m"})
	s, proc := startProcess(t, env)
	s.createMobileClient("app", map[string]any{"token_type": "bearer"})
	c := s.mustAdmin("POST", "/admin/clients", map[string]any{"client_id": "rs", "grant_types": []string{"client_credentials"},
		"scopes": []string{"read"}, "token_type": "bearer"}, http.StatusCreated)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("rs:"+c["client_secret"].(string)))
	s.createUser("carl")

	login := func() call {
		return s.send("login", "POST", "/oauth2/access_token", url.Values{"grant_type": {"password"},
			"client_id": {"app"}, "username": {"carl"}, "password": {e2ePassword}})
	}
	var (
		mu         sync.Mutex
		ccTokens   []string  // client-credentials tokens answered 200
		chains     []*family // refresh chains: the last tokens answered 200
		revoked    []*family // families whose revocation answered 200
		unanswered atomic.Int64
		answered   atomic.Int64
	)
	// answer counts a request: false when it got no answer (the process
	// is gone) and the worker stops; any answer but 200 fails the test.
	answer := func(c call) bool {
		if c.err != nil {
			unanswered.Add(1)
			return false
		}
		answered.Add(1)
		if c.status != 200 {
			t.Errorf("%s: %d %s", c.what, c.status, c.body)
			return false
		}
		return true
	}
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			for {
				c := s.send("client_credentials", "POST", "/oauth2/access_token",
					url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic)
				if !answer(c) {
					return
				}
				mu.Lock()
				ccTokens = append(ccTokens, jsonField(c.body, "access_token"))
				mu.Unlock()
			}
		})
	}
	for range 8 {
		c := login()
		if c.err != nil || c.status != 200 {
			t.Fatalf("login: %d %v %s", c.status, c.err, c.body)
		}
		f := &family{access: jsonField(c.body, "access_token"), refresh: jsonField(c.body, "refresh_token")}
		chains = append(chains, f)
		wg.Go(func() {
			for {
				c := s.send("refresh", "POST", "/oauth2/access_token", url.Values{"grant_type": {"refresh_token"},
					"client_id": {"app"}, "refresh_token": {f.refresh}})
				if !answer(c) {
					f.ambiguous = c.err != nil // the last refresh may have rotated the chain
					return
				}
				f.access, f.refresh = jsonField(c.body, "access_token"), jsonField(c.body, "refresh_token")
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for {
				c := login()
				if !answer(c) {
					return
				}
				f := &family{access: jsonField(c.body, "access_token"), refresh: jsonField(c.body, "refresh_token")}
				c = s.send("revoke", "POST", "/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {f.refresh}})
				if !answer(c) {
					return
				}
				mu.Lock()
				revoked = append(revoked, f)
				mu.Unlock()
			}
		})
	}
	// Kill the process once the load is well under way.
	within(t, 60*time.Second, "the load runs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ccTokens) >= 300 && len(revoked) >= 10 && answered.Load() >= 1000
	})
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("killed after %d answered requests (%d client-credentials tokens, %d revocations); %d in flight got no answer",
		answered.Load(), len(ccTokens), len(revoked), unanswered.Load())

	again, _ := startProcess(t, env)
	check := func(what string, n int, fn func(i int) error) {
		var next atomic.Int64
		var cwg sync.WaitGroup
		for range 8 {
			cwg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					if err := fn(i); err != nil {
						t.Errorf("%s %d: %v", what, i, err)
					}
				}
			})
		}
		cwg.Wait()
	}
	check("client-credentials token", len(ccTokens), func(i int) error {
		active, err := again.isActive(basic, ccTokens[i], "access_token")
		if err == nil && !active {
			err = fmt.Errorf("answered 200, gone after the crash")
		}
		return err
	})
	ambiguous := 0
	for _, f := range chains {
		if f.ambiguous {
			ambiguous++
		}
	}
	check("refresh chain", len(chains), func(i int) error {
		f := chains[i]
		// A refresh in flight at the kill may have rotated the chain, and
		// with it revoked the access token answered before it.
		if !f.ambiguous {
			if active, err := again.isActive(basic, f.access, "access_token"); err != nil || !active {
				return fmt.Errorf("the last access token answered 200: active %v, %v", active, err)
			}
		}
		c := again.send("refresh", "POST", "/oauth2/access_token", url.Values{"grant_type": {"refresh_token"},
			"client_id": {"app"}, "refresh_token": {f.refresh}})
		if c.err != nil || c.status != 200 {
			return fmt.Errorf("the last refresh token answered 200 does not refresh: %d %v %s", c.status, c.err, c.body)
		}
		return nil
	})
	check("revocation", len(revoked), func(i int) error {
		f := revoked[i]
		access, err := again.isActive(basic, f.access, "access_token")
		if err != nil {
			return err
		}
		refresh, err := again.isActive(basic, f.refresh, "refresh_token")
		if err != nil {
			return err
		}
		if access || refresh {
			return fmt.Errorf("answered 200, undone by the crash: access active %v, refresh active %v", access, refresh)
		}
		return nil
	})
	t.Logf("after the restart: %d client-credentials tokens active, %d refresh chains refresh (%d with a refresh in flight at the kill), %d revocations hold",
		len(ccTokens), len(chains), ambiguous, len(revoked))
}
