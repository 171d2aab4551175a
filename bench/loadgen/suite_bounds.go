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

// loopRate calls op in a loop for d on one goroutine and returns calls/s.
func loopRate(d time.Duration, op func() error) (float64, error) {
	start := time.Now()
	n := 0
	for time.Since(start) < d || n == 0 {
		if err := op(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// rs256PerCore is RS256 signatures (RSA-2048, PKCS #1 v1.5, SHA-256) per
// second on one core, the signature of every JWT access token.
func rs256PerCore(d time.Duration) (float64, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	// About the size of a signing input of an access token.
	digest := sha256.Sum256(make([]byte, 600))
	return loopRate(d, func() error {
		_, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		return err
	})
}

// argon2idPerCore is password checks per second on one core with the
// service's own argon2id parameters (oauth.HashPassword's), the cost of
// every password grant.
func argon2idPerCore(d time.Duration) (float64, error) {
	const password = "bench-bound-password"
	hash, err := oauth.HashPassword(password)
	if err != nil {
		return 0, err
	}
	return loopRate(d, func() error {
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
