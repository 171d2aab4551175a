package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openedx/mobile-auth-bff/oauth"
)

// The bounds: what the machine can do at most of the one thing that
// dominates a scenario, measured in the suite's own process (with the
// service stopped) in the same run, so that a scenario's req/s can be put
// as a share of it.

// parallelRate calls op in a loop on each of workers goroutines for d and
// returns calls/s in all: with workers = GOMAXPROCS, the machine's rate with
// every core busy (a core's rate alone is higher when the others idle, and
// does not add up).
func parallelRate(d time.Duration, workers int, op func() error) (float64, error) {
	var total atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for n := 0; time.Since(start) < d || n == 0; n++ {
				if err := op(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				total.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}

// rs256Rate is RS256 signatures (RSA-2048, PKCS #1 v1.5, SHA-256) per
// second on workers goroutines in parallel, the signature of every JWT
// access token.
func rs256Rate(d time.Duration, workers int) (float64, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	// About the size of a signing input of an access token.
	digest := sha256.Sum256(make([]byte, 600))
	return parallelRate(d, workers, func() error {
		_, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		return err
	})
}

// argon2idRate is password checks per second on workers goroutines in
// parallel with the service's own argon2id parameters
// (oauth.HashPassword's), the cost of every password grant.
func argon2idRate(d time.Duration, workers int) (float64, error) {
	const password = "bench-bound-password"
	hash, err := oauth.HashPassword(password)
	if err != nil {
		return 0, err
	}
	return parallelRate(d, workers, func() error {
		if !oauth.CheckPassword(hash, password) {
			return fmt.Errorf("argon2id: the password does not match its own hash")
		}
		return nil
	})
}

// commitRate is a single-row INSERT, each its own transaction (autocommit,
// so one round trip and one WAL flush), in a loop on each of conns
// connections for d: commits per second in all, and the mean latency of
// one commit.
func commitRate(ctx context.Context, dbURL string, conns int, d time.Duration) (rate float64, latency time.Duration, err error) {
	setup, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, 0, err
	}
	defer setup.Close(ctx)
	if _, err := setup.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, conn int NOT NULL, at timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)`); err != nil {
		return 0, 0, err
	}
	cs := make([]*pgx.Conn, conns)
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.Close(ctx)
			}
		}
	}()
	for i := range cs {
		if cs[i], err = pgx.Connect(ctx, dbURL); err != nil {
			return 0, 0, err
		}
	}
	var total atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	payload := fmt.Sprintf("%064x", 0) // about a token signature's size
	for i, c := range cs {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := c.Exec(ctx, `INSERT INTO bench_commit (conn, payload) VALUES ($1, $2)`, i, payload); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				total.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, 0, firstErr
	}
	n := total.Load()
	if n == 0 {
		return 0, 0, fmt.Errorf("no commit in %s", d)
	}
	return float64(n) / elapsed.Seconds(), elapsed * time.Duration(conns) / time.Duration(n), nil
}
