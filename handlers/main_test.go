package handlers_test

import (
	"os"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// TestMain hashes new passwords at the lowest argon2id cost: the tests here
// check hundreds of passwords, each a third of a second at the production
// cost under the race detector, and are about the handlers, not the hash
// (oauth's tests cover the production cost; TestPasswordChecksBusy, which
// needs slow checks, makes its user's hash at that cost).
func TestMain(m *testing.M) {
	oauth.UseCheapPasswordHashingInTests()
	os.Exit(testkit.Main(m, 4))
}
