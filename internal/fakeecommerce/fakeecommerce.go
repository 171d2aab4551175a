// Package fakeecommerce stands in for the payment service in tests,
// benchmarks and the bench/ load tool: it records every request it gets
// and answers like a small ecommerce API, or as a test tells it to.
package fakeecommerce

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Request is what the fake received.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// Handler answers like a tiny ecommerce API: GETs with a JSON document
// naming the path, POSTs with 201 and a fresh order number (so that a
// replayed answer and a new one differ). Latency delays every answer.
func Handler(latency time.Duration) http.Handler {
	var orders atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if latency > 0 {
			time.Sleep(latency)
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			w.Header().Set("Location", r.URL.Path+"1/")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"number":"EDX-%d","path":%q}`, 100000+orders.Add(1), r.URL.Path)
		default:
			fmt.Fprintf(w, `{"path":%q,"count":1,"results":[{"number":"EDX-100001","status":"Complete","total_excl_tax":"49.00"}]}`, r.URL.Path)
		}
	})
}

// Server is a recording fake payment service for one test.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Request
	next     http.Handler
}

// New starts a fake with Handler(0); it stops when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{next: Handler(0)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body})
	next := s.next
	s.mu.Unlock()
	next.ServeHTTP(w, r)
}

// Handle replaces how the fake answers (it still records every request).
func (s *Server) Handle(h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = h
}

// Requests returns what the fake received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count is the number of requests received.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Last returns the latest request; it fails the test when there is none.
func (s *Server) Last(tb testing.TB) Request {
	tb.Helper()
	reqs := s.Requests()
	if len(reqs) == 0 {
		tb.Fatal("the payment service received no request")
	}
	return reqs[len(reqs)-1]
}

// JSON answers every request with status and v as JSON.
func JSON(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
}
