package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
)

// pgProxy forwards TCP connections from a loopback port to PostgreSQL, so
// that a test can take the database away from a running service: cut
// closes every connection and refuses new ones (the port is closed) until
// restore; pause holds every byte in both directions until resume.
type pgProxy struct {
	t      *testing.T
	target string // host:port of PostgreSQL, on loopback
	addr   string // the proxy's 127.0.0.1:port, the same across cuts

	mu    sync.Mutex
	ln    net.Listener // nil while cut
	gen   int          // counts cuts: a connection accepted before one is closed
	conns map[net.Conn]int
	gate  chan struct{} // closed while traffic flows
	held  atomic.Int64  // chunks read while paused
}

// newPGProxy starts a proxy to target; it is closed when the test ends.
func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	host, _, err := net.SplitHostPort(target)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		t.Skipf("the fault tests proxy to PostgreSQL on loopback only, not %q", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	close(gate)
	p := &pgProxy{t: t, target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]int{}, gate: gate}
	go p.accept(ln, 0)
	t.Cleanup(func() {
		p.resume()
		p.cut()
	})
	return p
}

// url is dbURL with its host replaced by the proxy's.
func (p *pgProxy) url(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		p.t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

func (p *pgProxy) accept(ln net.Listener, gen int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.connect(c, gen)
	}
}

func (p *pgProxy) connect(c net.Conn, gen int) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.gen != gen { // cut while dialing
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	p.conns[c], p.conns[up] = gen, gen
	p.mu.Unlock()
	go p.pipe(c, up)
	go p.pipe(up, c)
}

// pipe copies src to dst, holding each chunk while the proxy is paused.
func (p *pgProxy) pipe(dst, src net.Conn) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			select {
			case <-gate:
			default:
				p.held.Add(1)
				<-gate
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cut closes every connection and the port: PostgreSQL is gone.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	p.gen++
	for c := range p.conns {
		_ = c.Close()
	}
}

// restore opens the port again.
func (p *pgProxy) restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", p.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("reopen the proxy's port: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	gen := p.gen
	p.mu.Unlock()
	go p.accept(ln, gen)
}

// pause holds all traffic; resume lets it go on.
func (p *pgProxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
	p.held.Store(0)
}

func (p *pgProxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// dbTarget is host:port of the test database server.
func dbTarget(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}

// faultClient does not reuse connections, so that every request's error is
// its own (not an idle connection's the server closed).
var faultClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// call is one request of a load and what came of it.
type call struct {
	what       string
	status     int // 0 when no answer came
	err        error
	body       []byte
	start, end time.Time
}

func (s *server) send(what, method, path string, form url.Values, header ...string) call {
	c := call{what: what, start: time.Now()}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.public+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := faultClient.Do(req)
	if err == nil {
		c.body, err = io.ReadAll(res.Body)
		_ = res.Body.Close()
		c.status = res.StatusCode
	}
	c.err, c.end = err, time.Now()
	return c
}

// family is a token family a load worker used, with what the service
// answered about it; the checks after the load read it.
type family struct {
	access, refresh string // the last tokens answered 200
	revoke          int    // status of the revocation of refresh; 0 if none was tried
	ambiguous       bool   // a write of the family answered 503: it may or may not have happened
}

// isActive asks whether a token is active, as the confidential client.
func (s *server) isActive(basic, token, hint string) (bool, error) {
	c := s.send("introspect", "POST", "/oauth2/introspect", url.Values{"token": {token}, "token_type_hint": {hint}},
		"Authorization", basic)
	if c.err != nil || c.status != 200 {
		return false, fmt.Errorf("introspect: %d %v %s", c.status, c.err, c.body)
	}
	return strings.Contains(string(c.body), `"active":true`), nil
}

// TestE2EDatabaseCut: PostgreSQL goes away under load (every connection
// cut, new ones refused) and comes back. While it is away every request is
// answered, with a 503 at worst, within two seconds, and /readyz says 503;
// afterwards the same process serves again, and nothing answered 200 was
// lost: every token issued exists, every revocation holds, and a
// revocation that answered 503 happened whole or not at all.
func TestE2EDatabaseCut(t *testing.T) {
	t.Parallel()
	dbURL := testdb.URL(t)
	proxy := newPGProxy(t, dbTarget(t, dbURL))
	s := start(t, baseEnv(map[string]string{"BFF_DATABASE_URL": proxy.url(dbURL)}))
	s.createMobileClient("app", nil)
	secret := s.createBackend("rs")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("rs:"+secret))
	s.createUser("olga")

	var (
		mu       sync.Mutex
		calls    []call
		families []*family
	)
	record := func(c call) call {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		return c
	}
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	// Each worker signs in, then refreshes, calls /api/me and revokes,
	// starting a new family after a revocation or an ambiguous write.
	var wg sync.WaitGroup
	for w := range 3 {
		format := []string{"bearer", "jwt", "bearer"}[w]
		wg.Go(func() {
			var f *family
			for i := 0; i < 2000 && !stopped(); i++ {
				if f == nil {
					c := record(s.send("login", "POST", "/oauth2/access_token", url.Values{"grant_type": {"password"},
						"client_id": {"app"}, "username": {"olga"}, "password": {e2ePassword}, "token_type": {format}}))
					if c.status != 200 {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					f = &family{access: jsonField(c.body, "access_token"), refresh: jsonField(c.body, "refresh_token")}
					mu.Lock()
					families = append(families, f)
					mu.Unlock()
					continue
				}
				switch i % 4 {
				case 0, 2:
					record(s.send("me", "GET", "/api/me", nil, "Authorization", "Bearer "+f.access))
				case 1:
					c := record(s.send("refresh", "POST", "/oauth2/access_token", url.Values{"grant_type": {"refresh_token"},
						"client_id": {"app"}, "refresh_token": {f.refresh}, "token_type": {format}}))
					switch c.status {
					case 200:
						f.access, f.refresh = jsonField(c.body, "access_token"), jsonField(c.body, "refresh_token")
					case 503:
						f.ambiguous, f = true, nil
					}
				case 3:
					if i%8 != 3 {
						continue
					}
					c := record(s.send("revoke", "POST", "/oauth2/revoke", url.Values{"client_id": {"app"}, "token": {f.refresh}}))
					f.revoke, f = c.status, nil
				}
			}
		})
	}

	time.Sleep(1500 * time.Millisecond)
	cutAt := time.Now()
	proxy.cut()
	// /readyz says what the load sees.
	within(t, 2*time.Second, "/readyz answers 503 while the database is cut", func() bool {
		return s.send("readyz", "GET", "/readyz", nil).status == 503
	})
	time.Sleep(2500 * time.Millisecond)
	if c := record(s.send("readyz", "GET", "/readyz", nil)); c.status != 503 {
		t.Errorf("/readyz while cut: %d %s", c.status, c.body)
	}
	restoreAt := time.Now()
	proxy.restore()
	// The same process serves again: no restart.
	took := within(t, 30*time.Second, "the service recovers", func() bool {
		return s.send("readyz", "GET", "/readyz", nil).status == 200 &&
			s.send("login", "POST", "/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"app"},
				"username": {"olga"}, "password": {e2ePassword}}).status == 200
	})
	t.Logf("recovered %s after the restore", took)
	time.Sleep(time.Second) // some load after the recovery
	close(stop)
	wg.Wait()

	var answered503, during int
	var slowest time.Duration
	for _, c := range calls {
		if c.err != nil {
			t.Errorf("%s: no answer (%v)", c.what, c.err)
			continue
		}
		switch c.status {
		case 200, 401, 503: // 401: /api/me after a revocation
		default:
			t.Errorf("%s: %d %s", c.what, c.status, c.body)
		}
		if c.status == 503 {
			answered503++
			if !strings.Contains(string(c.body), `"`) || len(c.body) == 0 {
				t.Errorf("%s: 503 without a body", c.what)
			}
		}
		// Anything that overlapped the cut answered within two seconds of
		// the cut or of its start.
		if c.end.After(cutAt) && c.start.Before(restoreAt) {
			during++
			from := c.start
			if from.Before(cutAt) {
				from = cutAt
			}
			d := c.end.Sub(from)
			slowest = max(slowest, d)
			if d > 2*time.Second {
				t.Errorf("%s during the cut took %s (answered %d)", c.what, d, c.status)
			}
		}
	}
	t.Logf("%d requests, %d during the cut (the slowest answered %s after the cut or its start), %d answered 503, %d families",
		len(calls), during, slowest, answered503, len(families))
	if answered503 == 0 {
		t.Error("no request answered 503: the cut did not happen under load")
	}

	// Nothing answered 200 was lost, nothing half done.
	outcomes := map[string]int{}
	for i, f := range families {
		access, err := s.isActive(basic, f.access, "access_token")
		if err != nil {
			t.Fatal(err)
		}
		refresh, err := s.isActive(basic, f.refresh, "refresh_token")
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case f.revoke != 0:
			outcomes[fmt.Sprintf("revocation answered %d", f.revoke)]++
		case f.ambiguous:
			outcomes["refresh answered 503"]++
		default:
			outcomes["live"]++
		}
		switch {
		case f.revoke == 200:
			if access || refresh {
				t.Errorf("family %d: revocation answered 200 but access active %v, refresh active %v", i, access, refresh)
			}
		case f.revoke != 0:
			if access != refresh {
				t.Errorf("family %d: revocation answered %d and was half done: access active %v, refresh active %v",
					i, f.revoke, access, refresh)
			}
		case f.ambiguous:
			// A refresh answered 503: it may have rotated the tokens; which
			// ones are live is not known here.
		default:
			if !access || !refresh {
				t.Errorf("family %d: tokens answered 200 are gone: access active %v, refresh active %v", i, access, refresh)
			}
		}
	}
	t.Logf("families: %v", outcomes)
}

// TestE2EDatabasePause: PostgreSQL stops answering but keeps its
// connections open (a paused server, a network path that drops packets).
// Nothing closes a connection, so only the store's own deadline
// (BFF_DATABASE_TIMEOUT) stops a request from waiting on it: each answers
// 503 soon after the deadline, /readyz says the store is away, and the same
// process serves again once the database answers.
func TestE2EDatabasePause(t *testing.T) {
	t.Parallel()
	dbURL := testdb.URL(t)
	proxy := newPGProxy(t, dbTarget(t, dbURL))
	const timeout = time.Second
	s := start(t, baseEnv(map[string]string{"BFF_DATABASE_URL": proxy.url(dbURL), "BFF_DATABASE_TIMEOUT": timeout.String()}))
	s.createMobileClient("app", nil)
	s.createUser("pavel")
	login := url.Values{"grant_type": {"password"}, "client_id": {"app"}, "username": {"pavel"}, "password": {e2ePassword}}
	first := s.send("login", "POST", "/oauth2/access_token", login)
	if first.status != 200 {
		t.Fatalf("login before the pause: %d %s", first.status, first.body)
	}

	proxy.pause()
	defer proxy.resume()
	var wg sync.WaitGroup
	calls := make([]call, 4)
	for i := range calls {
		wg.Go(func() {
			switch i {
			case 0:
				calls[i] = s.send("login", "POST", "/oauth2/access_token", login)
			case 1:
				calls[i] = s.send("refresh", "POST", "/oauth2/access_token", url.Values{"grant_type": {"refresh_token"},
					"client_id": {"app"}, "refresh_token": {jsonField(first.body, "refresh_token")}})
			case 2:
				calls[i] = s.send("revoke", "POST", "/oauth2/revoke", url.Values{"client_id": {"app"},
					"token": {jsonField(first.body, "access_token")}})
			case 3:
				calls[i] = s.send("readyz", "GET", "/readyz", nil)
			}
		})
	}
	wg.Wait()
	for _, c := range calls {
		took := c.end.Sub(c.start)
		switch {
		case c.err != nil:
			t.Errorf("%s while paused: %v after %s", c.what, c.err, took)
		case c.status != http.StatusServiceUnavailable:
			t.Errorf("%s while paused: %d %s, want 503", c.what, c.status, c.body)
		case took > timeout+2*time.Second:
			t.Errorf("%s while paused answered after %s, want about the %s deadline", c.what, took, timeout)
		}
		if c.what != "readyz" && c.status == http.StatusServiceUnavailable && jsonField(c.body, "error") != "temporarily_unavailable" {
			t.Errorf("%s while paused: body %s, want error temporarily_unavailable", c.what, c.body)
		}
		t.Logf("%s while paused: %d after %s", c.what, c.status, took)
	}

	proxy.resume()
	took := within(t, 15*time.Second, "the service recovers", func() bool {
		return s.send("readyz", "GET", "/readyz", nil).status == 200 &&
			s.send("login", "POST", "/oauth2/access_token", login).status == 200
	})
	t.Logf("recovered %s after the resume", took)
}

// jsonField reads a string member of a JSON object body.
func jsonField(body []byte, name string) string {
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	v, _ := m[name].(string)
	return v
}

// TestE2EShutdownUnderLoad: run()'s context ends (SIGTERM) while requests
// are in flight. Every request the server had taken finishes with its
// answer — none is cut off — even those waiting on the database when the
// shutdown began, and the usage statistics of the last seconds reach the
// database before run() returns.
func TestE2EShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	dbURL := testdb.URL(t)
	proxy := newPGProxy(t, dbTarget(t, dbURL))
	// No periodic flush: what is counted reaches the store only by the
	// shutdown flush.
	// Held requests wait for the resume: no store deadline cuts them short.
	env := baseEnv(map[string]string{"BFF_DATABASE_URL": proxy.url(dbURL), "BFF_USAGE_FLUSH_INTERVAL": "10m",
		"BFF_DATABASE_TIMEOUT": "2m"})
	s := start(t, env)
	s.createMobileClient("app", nil)
	s.createUser("petra")
	login := func(id string) call {
		return s.send("login "+id, "POST", "/oauth2/access_token", url.Values{"grant_type": {"password"},
			"client_id": {"app"}, "username": {"petra"}, "password": {e2ePassword}}, "X-Request-ID", id)
	}

	var (
		mu    sync.Mutex
		calls []call
	)
	var wg sync.WaitGroup
	// A steady load that runs into the shutdown.
	for w := range 3 {
		wg.Go(func() {
			for i := 0; i < 500; i++ {
				c := login(fmt.Sprintf("load-%d-%d", w, i))
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				if c.err != nil {
					return // the listener is closed
				}
			}
		})
	}
	time.Sleep(time.Second)
	// Requests held at the database when the shutdown begins.
	proxy.pause()
	for i := range 4 {
		wg.Go(func() {
			c := login(fmt.Sprintf("held-%d", i))
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
		})
	}
	within(t, 10*time.Second, "requests wait on the database", func() bool { return proxy.held.Load() >= 2 })
	// Time for the last of them to be taken by the server (a password
	// check runs before the write that waits).
	time.Sleep(time.Second)
	stopped := make(chan struct{})
	go func() {
		s.stop()
		close(stopped)
	}()
	time.Sleep(500 * time.Millisecond)
	select {
	case <-stopped:
		t.Fatal("run() returned while requests were still in flight")
	default:
	}
	proxy.resume()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("run() did not return")
	}
	wg.Wait()

	// Which requests reached a handler: the access log names each.
	logged := map[string]bool{}
	for _, line := range strings.Split(s.out.String(), "\n") {
		if !strings.Contains(line, `"msg":"request"`) {
			continue
		}
		if _, rest, ok := strings.Cut(line, `"request_id":"`); ok {
			id, _, _ := strings.Cut(rest, `"`)
			logged[id] = true
		}
	}
	issued := 0
	for _, c := range calls {
		id := strings.TrimPrefix(c.what, "login ")
		switch {
		case c.err == nil && c.status == 200:
			issued++
		case c.err == nil:
			t.Errorf("%s: %d %s", c.what, c.status, c.body)
		case strings.HasPrefix(id, "held-"):
			t.Errorf("%s, in flight at the shutdown, failed: %v", c.what, c.err)
		case logged[id]:
			t.Errorf("%s was handled but its answer was lost: %v", c.what, c.err)
		default:
			t.Logf("%s, not taken by the server before the shutdown: %v", c.what, c.err)
		}
		switch {
		case c.err == nil, strings.HasPrefix(id, "held-"), logged[id]:
		case !errors.Is(c.err, syscall.ECONNREFUSED) && !errors.Is(c.err, syscall.ECONNRESET) && !errors.Is(c.err, io.EOF) &&
			!strings.Contains(c.err.Error(), "EOF"):
			t.Errorf("%s: unexpected error %v", c.what, c.err)
		}
	}
	if !strings.Contains(s.out.String(), `"msg":"stopped"`) || strings.Contains(s.out.String(), "usage statistics of the last seconds are lost") {
		t.Errorf("run() did not flush the usage statistics cleanly:\n%s", tail(s.out.String(), 20))
	}

	// Another run on the same database reads what the first one flushed.
	again := start(t, baseEnv(map[string]string{"BFF_DATABASE_URL": dbURL}))
	rep := again.mustAdmin("GET", "/admin/migration", nil, http.StatusOK)
	got := int(reportClient(t, rep, "app")["totals"].(map[string]any)["issued"].(map[string]any)["total"].(float64))
	if got != issued {
		t.Errorf("issued total after the restart %d, want the %d tokens answered 200", got, issued)
	}
	t.Logf("%d requests, %d answered 200 and counted", len(calls), issued)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
