package handlers_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"golang.org/x/crypto/bcrypt"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// cheapUsers creates n users whose password is testenv.Password, hashed
// cheaply so that hundreds of sign-ins stay fast: the first with bcrypt's
// lowest cost (the service accepts bcrypt hashes of imported accounts), the
// others with this test binary's cheap argon2id (TestMain), cheaper still
// under the race detector.
func cheapUsers(t *testing.T, env *testenv.Env, n int) []bff.User {
	t.Helper()
	imported, err := bcrypt.GenerateFromPassword([]byte(testenv.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := oauth.HashPassword(testenv.Password)
	if err != nil {
		t.Fatal(err)
	}
	users := make([]bff.User, n)
	for i := range users {
		name := fmt.Sprintf("user%03d", i)
		h := hash
		if i == 0 {
			h = string(imported)
		}
		users[i], err = env.Store.CreateUser(context.Background(), bff.User{
			Username: name, Email: name + "@example.com", PasswordHash: h, EmailVerified: true,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return users
}

// TestRolloutSticky: at 50% about half of 48 users get JWTs, and each
// user gets the same format on every sign-in and refresh while the
// percentage stays. Raising it only adds users; lowering it back gives
// the same users as before; the kill switch turns everyone to Bearer at
// once, whatever they ask for, and lifting it restores the same split.
// (0% and 100% are pinned by oauth's format tests.)
func TestRolloutSticky(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			env.PublicClient(t, "app", func(c *admin.NewClient) { c.JWTRolloutPercent = 50 })
			users := cheapUsers(t, env, 48)
			ctx := context.Background()
			set := func(p admin.ClientPatch) {
				t.Helper()
				if _, err := env.Admin.UpdateClient(ctx, "app", p); err != nil {
					t.Fatal(err)
				}
			}

			// format is the format of a token response: "JWT" or "Bearer".
			// The label says "Bearer" for both, since the rollout chose the
			// JWTs (SPEC §5): the format is the token's shape.
			format := func(res map[string]any) string {
				t.Helper()
				if res["token_type"] != "Bearer" {
					t.Fatalf("a JWT chosen by the rollout is labelled %v, want Bearer", res["token_type"])
				}
				if oauth.IsJWT(res["access_token"].(string)) {
					return "JWT"
				}
				return "Bearer"
			}
			// formats signs every user in `logins` times (and refreshes the
			// last token when asked), requires one format per user, and
			// returns it.
			formats := func(logins int, refresh bool, extra ...string) map[string]string {
				t.Helper()
				got := map[string]string{}
				for _, u := range users {
					var seen []string
					var rt string
					for range logins {
						res := env.Token(t, testenv.PasswordForm("app", u.Username, extra...))
						seen = append(seen, format(res))
						rt, _ = res["refresh_token"].(string)
					}
					if refresh {
						res := env.Token(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {rt}})
						seen = append(seen, format(res))
					}
					for _, f := range seen[1:] {
						if f != seen[0] {
							t.Fatalf("%s flipped between formats: %v", u.Username, seen)
						}
					}
					got[u.Username] = seen[0]
				}
				return got
			}
			count := func(m map[string]string) int {
				n := 0
				for _, f := range m {
					if f == "JWT" {
						n++
					}
				}
				return n
			}

			at50 := formats(3, true)
			n := count(at50)
			t.Logf("%d of %d users get JWTs at 50%%", n, len(users))
			if n < len(users)/4 || n > len(users)*3/4 {
				t.Fatalf("%d of %d users get JWTs at 50%%, want between 25%% and 75%%", n, len(users))
			}
			for _, u := range users {
				want := "Bearer"
				if oauth.InRollout("app", u.Subject(), 50) {
					want = "JWT"
				}
				if at50[u.Username] != want {
					t.Errorf("%s got %s, the rollout hash says %s", u.Username, at50[u.Username], want)
				}
			}

			set(admin.ClientPatch{JWTRolloutPercent: ptr(80)})
			at80 := formats(1, true)
			if count(at80) <= n {
				t.Errorf("raising to 80%% did not add users: %d → %d", n, count(at80))
			}
			for name, f := range at50 {
				if f == "JWT" && at80[name] != "JWT" {
					t.Errorf("%s had a JWT at 50%% but not at 80%%", name)
				}
			}

			set(admin.ClientPatch{JWTRolloutPercent: ptr(50)})
			if back := formats(1, false); fmt.Sprint(back) != fmt.Sprint(at50) {
				t.Error("back at 50%, users do not get the formats they had at 50%")
			}

			// Kill switch: Bearer for all, also when asked for a JWT.
			set(admin.ClientPatch{JWTEnabled: ptr(false)})
			if killed := formats(1, false, "token_type", "jwt"); count(killed) != 0 {
				t.Errorf("kill switch on: %d users still get JWTs", count(killed))
			}
			set(admin.ClientPatch{JWTEnabled: ptr(true)})
			if again := formats(1, false); fmt.Sprint(again) != fmt.Sprint(at50) {
				t.Error("kill switch lifted: users do not get back the formats they had")
			}

		})
	}
}
