package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestBrokerScenarios: broker-get logs in once and GETs the path through
// /api/ecommerce with the token; direct-get GETs the path itself.
func TestBrokerScenarios(t *testing.T) {
	t.Parallel()
	var logins, brokered, direct atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/access_token", func(w http.ResponseWriter, r *http.Request) {
		logins.Add(1)
		_, _ = io.WriteString(w, `{"access_token":"at-`+r.FormValue("token_type")+`","token_type":"Bearer"}`)
	})
	mux.HandleFunc("GET /api/ecommerce/api/v2/orders/EDX-1/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-jwt" {
			http.Error(w, "{}", http.StatusUnauthorized)
			return
		}
		brokered.Add(1)
	})
	mux.HandleFunc("GET /api/v2/orders/EDX-1/", func(w http.ResponseWriter, r *http.Request) {
		direct.Add(1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		scenario string
		count    *atomic.Int64
	}{{"broker-get-jwt", &brokered}, {"direct-get", &direct}} {
		cfg, err := parseFlags([]string{"-url", srv.URL, "-scenario", tc.scenario, "-c", "2", "-path", "/api/v2/orders/EDX-1/"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		calls, err := scenarios[cfg.scenario].prepare(context.Background(), newTarget(cfg), cfg.concurrency)
		if err != nil {
			t.Fatal(err)
		}
		recs, elapsed := drive(context.Background(), calls, 50*time.Millisecond)
		s := summarize(cfg.scenario, 2, elapsed, recs)
		if s.OK == 0 || len(s.Errors) != 0 || int64(s.OK) != tc.count.Load() {
			t.Errorf("%s: %d ok, errors %v, the server counted %d", tc.scenario, s.OK, s.Errors, tc.count.Load())
		}
	}
	if logins.Load() != 1 {
		t.Errorf("%d logins, want one for the run", logins.Load())
	}
}
