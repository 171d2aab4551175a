package broker

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/metrics"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

// TestKeyedPostNotResentByTransport: Go's HTTP client silently re-sends a
// request it deems replayable (one with an Idempotency-Key and a rewindable
// body) when a reused connection breaks. A payment the service received
// must never be sent twice: the payment service here answers the first
// request on a connection, then reads the second one whole — it acted on
// it — and resets the connection.
func TestKeyedPostNotResentByTransport(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var received atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				br := bufio.NewReader(c)
				for n := 1; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						c.Close()
						return
					}
					io.ReadAll(req.Body)
					if req.Method == "POST" {
						received.Add(1)
					}
					if n == 2 { // acted upon, then crashed
						c.(*net.TCPConn).SetLinger(0)
						c.Close()
						return
					}
					io.WriteString(c, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
				}
			}(c)
		}
	}()
	st := memory.New()
	u, err := st.CreateUser(context.Background(), bff.User{Username: "u", Email: "u@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{URL: "http://" + ln.Addr().String(), Issuer: "i", Audience: "ecommerce"}, st, &fakeSigner{}, metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p := bff.Principal{User: &u, Scopes: []string{"payments"}}
	call := func(path, key string) (*Response, error) {
		route, ok := b.Match("POST", path)
		if !ok {
			t.Fatal("no route")
		}
		h := http.Header{"Idempotency-Key": {key}, "Content-Type": {"application/json"}}
		var tr Trace
		return b.Do(context.Background(), Call{Principal: p, Route: route, Method: "POST", Path: path, Header: h,
			Body: strings.NewReader(`{"x":1}`), ContentLength: 7}, &tr)
	}
	// 1st call warms a keep-alive connection.
	if r, err := call("/api/v2/baskets/", "key-000000001"); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	received.Store(0)
	if r, err := call("/api/v2/checkout/", "key-000000002"); err == nil {
		r.Body.Close()
		t.Error("a call whose connection broke after sending succeeded")
	}
	if got := received.Load(); got != 1 {
		t.Errorf("one app request with one Idempotency-Key reached the payment service %d times", got)
	}
}
