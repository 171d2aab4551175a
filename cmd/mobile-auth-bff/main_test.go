package main

import (
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
	os.Exit(testkit.Main(m, 4))
}
