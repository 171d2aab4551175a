package main

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// TestMain hashes new passwords at the lowest argon2id cost (each hash at
// the production cost takes a third of a second under the race detector,
// and the servers here check hundreds; oauth's tests cover that cost), and
// runs more tests at once than there are cores: they mostly wait on
// sockets, PostgreSQL and clocks.
func TestMain(m *testing.M) {
	oauth.UseCheapPasswordHashingInTests()
	if os.Getenv(serveChildEnv) == "1" {
		// A copy of this binary that is the service (e2e_crash_test.go).
		if err := run(context.Background(), []string{"mobile-auth-bff", "serve"}, os.Getenv, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "mobile-auth-bff:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(testkit.Main(m, 4))
}
