package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// Fixed values of the servers the end-to-end tests start.
const (
	e2eIssuer     = "https://bff.e2e.test"
	e2eAdminToken = "e2e-admin-token"
	e2eSecret     = "e2e-secret-e2e-secret-e2e-secret-e2e-secret"
	e2ePassword   = "correct horse battery"
)

// server is a running run() with both listeners.
type server struct {
	t      *testing.T
	public string // http://host:port
	admin  string
	out    *testkit.Buffer
	cancel context.CancelFunc
	done   chan error
}

var listeningRe = regexp.MustCompile(`"msg":"listening","listener":"(public|admin)","addr":"([^"]+)"`)

// backend is one of the stores a test runs on.
type backend struct {
	name string
	env  map[string]string
}

// backendOf is the in-memory store, or for pg a fresh PostgreSQL database.
func backendOf(t *testing.T, pg bool) backend {
	if !pg {
		return backend{name: testkit.StoreName(pg), env: map[string]string{}}
	}
	return backend{name: testkit.StoreName(pg), env: map[string]string{"BFF_DATABASE_URL": testdb.URL(t)}}
}

// backends returns the in-memory store and, with BFF_TEST_DATABASE_URL
// (always in CI), a fresh PostgreSQL database.
func backends(t *testing.T) []backend {
	var b []backend
	for _, pg := range testkit.StoreKinds() {
		b = append(b, backendOf(t, pg))
	}
	return b
}

// forEachBackend runs fn as a parallel subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	testkit.EachStore(t, func(t *testing.T, pg bool) { fn(t, backendOf(t, pg)) })
}

// baseEnv is the configuration every e2e server starts from.
func baseEnv(extra ...map[string]string) map[string]string {
	env := map[string]string{
		"BFF_ADDR":        "127.0.0.1:0",
		"BFF_ADMIN_ADDR":  "127.0.0.1:0",
		"BFF_ISSUER":      e2eIssuer,
		"BFF_ADMIN_TOKEN": e2eAdminToken,
		"BFF_SECRET":      e2eSecret,
		"BFF_JWT_ALG":     "ES256",
		"BFF_LOG_LEVEL":   "info",
	}
	for _, m := range extra {
		for k, v := range m {
			env[k] = v
		}
	}
	return env
}

// start runs the binary's run() with env and waits until both listeners
// are up. The server is stopped when the test ends.
func start(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{t: t, out: &testkit.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	getenv := func(k string) string { return env[k] }
	go func() {
		s.done <- run(ctx, append([]string{"mobile-auth-bff", "serve"}, args...), getenv, s.out)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for s.public == "" || s.admin == "" {
		select {
		case err := <-s.done:
			cancel()
			t.Fatalf("run() returned before listening: %v\n%s", err, s.out)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not start:\n%s", s.out)
		}
		for _, m := range listeningRe.FindAllStringSubmatch(s.out.String(), -1) {
			if m[1] == "public" {
				s.public = "http://" + m[2]
			} else {
				s.admin = "http://" + m[2]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// stop shuts the server down and checks run() returned cleanly.
func (s *server) stop() {
	s.t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("run() returned %v", err)
		}
	case <-time.After(30 * time.Second):
		s.t.Errorf("run() did not return after cancel")
	}
}

// response is an HTTP answer with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object (%d): %s", r.status, r.body)
	}
	return m
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func do(t *testing.T, method, u string, body io.Reader, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// postForm posts a form to the public listener.
func (s *server) postForm(path string, form url.Values, header ...string) response {
	s.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return do(s.t, http.MethodPost, s.public+path, strings.NewReader(form.Encode()), h)
}

func (s *server) get(path string, header ...string) response {
	s.t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return do(s.t, http.MethodGet, s.public+path, nil, h)
}

// adminCall calls the admin API with the admin token.
func (s *server) adminCall(method, path string, body any) response {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	return do(s.t, method, s.admin+path, r, map[string]string{
		"Authorization": "Bearer " + e2eAdminToken, "Content-Type": "application/json"})
}

// mustAdmin calls the admin API and requires the given status.
func (s *server) mustAdmin(method, path string, body any, status int) map[string]any {
	s.t.Helper()
	r := s.adminCall(method, path, body)
	if r.status != status {
		s.t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(s.t)
}

// createUser makes a user with e2ePassword and returns its id.
func (s *server) createUser(username string) int64 {
	s.t.Helper()
	u := s.mustAdmin("POST", "/admin/users", map[string]any{
		"username": username, "email": username + "@example.com", "name": "E2E " + username, "password": e2ePassword,
	}, http.StatusCreated)
	return int64(u["id"].(float64))
}

// jwks fetches and parses the served key set.
func (s *server) jwks() jose.JSONWebKeySet {
	s.t.Helper()
	r := s.get("/.well-known/jwks.json")
	if r.status != 200 {
		s.t.Fatalf("jwks: %d %s", r.status, r.body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.body, &set); err != nil {
		s.t.Fatal(err)
	}
	return set
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
