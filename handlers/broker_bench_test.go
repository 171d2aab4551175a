package handlers_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/internal/fakeecommerce"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
)

// The broker benchmarks compare a GET through the broker (validation, JWT
// cache, the upstream call over loopback, relaying the body) with the same
// GET sent straight to the fake payment service: the difference is what the
// broker adds. Run them together, e.g.
//
//	go test -run '^$' -bench 'Broker|DirectGET' -benchmem ./handlers/
//
// Sub-benchmarks are named key=value for benchstat.

// brokerBenchPath is a GET of the default allowlist.
const brokerBenchPath = "/api/v2/orders/EDX-100001/"

// newBrokerBench starts a (non-recording) fake payment service and a
// service brokering to it, with a user holding a token of the format.
func newBrokerBench(b *testing.B, pg bool, format bff.TokenFormat) (*testenv.Env, *httptest.Server, string) {
	b.Helper()
	if pg && os.Getenv(testdb.EnvVar) == "" {
		b.Skipf("%s is not set", testdb.EnvVar)
	}
	up := httptest.NewServer(fakeecommerce.Handler(0))
	b.Cleanup(up.Close)
	env := testenv.New(b, testenv.Options{Postgres: pg, Cache: pg, Broker: &broker.Config{URL: up.URL}})
	env.PublicClient(b, "app")
	env.User(b, "payer")
	tok := env.Token(b, testenv.PasswordForm("app", "payer", "token_type", string(format)))["access_token"].(string)
	return env, up, tok
}

func brokerBenchSetups(b *testing.B, bench func(b *testing.B, env *testenv.Env, up *httptest.Server, tok string)) {
	for _, store := range []string{"memory", "postgres"} {
		for _, format := range []bff.TokenFormat{bff.FormatBearer, bff.FormatJWT} {
			b.Run("store="+store+"/format="+string(format), func(b *testing.B) {
				env, up, tok := newBrokerBench(b, store == "postgres", format)
				bench(b, env, up, tok)
			})
		}
	}
}

func brokerGET(b *testing.B, env *testenv.Env, tok string) {
	req := httptest.NewRequest(http.MethodGet, "/api/ecommerce"+brokerBenchPath, nil)
	req.RemoteAddr = "192.0.2.1:1234"
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("broker GET: %d %s", rec.Code, rec.Body)
	}
}

// BenchmarkBrokerGET is one app GET through the broker, end to end in
// process: Echo, middleware, token validation with the live account, the
// cached upstream JWT, the loopback call and the relayed body.
func BenchmarkBrokerGET(b *testing.B) {
	brokerBenchSetups(b, func(b *testing.B, env *testenv.Env, _ *httptest.Server, tok string) {
		brokerGET(b, env, tok) // warm the JWT cache and the connection pool
		b.ReportAllocs()
		for b.Loop() {
			brokerGET(b, env, tok)
		}
	})
}

// BenchmarkBrokerGETParallel is BenchmarkBrokerGET from GOMAXPROCS
// goroutines: throughput under concurrency (compare with
// BenchmarkDirectGETParallel).
func BenchmarkBrokerGETParallel(b *testing.B) {
	brokerBenchSetups(b, func(b *testing.B, env *testenv.Env, _ *httptest.Server, tok string) {
		brokerGET(b, env, tok)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				brokerGET(b, env, tok)
			}
		})
	})
}

// directClient calls the fake payment service like the broker's own
// transport does (keep-alive pool, no compression).
func directClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}}
}

func directGET(b *testing.B, c *http.Client, url string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "JWT x.y.z")
	req.Header.Set("Accept", "application/json")
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("direct GET: %d", res.StatusCode)
	}
}

// BenchmarkDirectGET is the same GET sent straight to the fake payment
// service: the floor BenchmarkBrokerGET is compared with.
func BenchmarkDirectGET(b *testing.B) {
	up := httptest.NewServer(fakeecommerce.Handler(0))
	defer up.Close()
	c, url := directClient(), up.URL+brokerBenchPath
	directGET(b, c, url)
	b.ReportAllocs()
	for b.Loop() {
		directGET(b, c, url)
	}
}

// BenchmarkDirectGETParallel is BenchmarkDirectGET from GOMAXPROCS goroutines.
func BenchmarkDirectGETParallel(b *testing.B) {
	up := httptest.NewServer(fakeecommerce.Handler(0))
	defer up.Close()
	c, url := directClient(), up.URL+brokerBenchPath
	directGET(b, c, url)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			directGET(b, c, url)
		}
	})
}
