package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// cli runs one command of the binary and returns its stdout.
func cli(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out testkit.Buffer
	err := run(context.Background(), append([]string{"mobile-auth-bff"}, args...), func(k string) string { return env[k] }, &out)
	return out.String(), err
}

func mustCLI(t *testing.T, env map[string]string, args ...string) map[string]any {
	t.Helper()
	out, err := cli(t, env, args...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v printed no JSON object: %s", args, out)
	}
	return m
}

func TestCLIWithoutDatabase(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	if out, err := cli(t, env, "version"); err != nil || !strings.HasPrefix(out, "mobile-auth-bff ") {
		t.Errorf("version: %q %v", out, err)
	}
	if out, err := cli(t, env, "help"); err != nil || !strings.Contains(out, "migrate up") {
		t.Errorf("help: %v", err)
	}
	if _, err := cli(t, env, "frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
	for _, args := range [][]string{{"migrate", "status"}, {"admin", "list-clients"}} {
		if _, err := cli(t, env, args...); !errors.Is(err, errNeedsDatabase) {
			t.Errorf("%v without a database: %v", args, err)
		}
	}
	if out, err := cli(t, env, "admin"); err != nil || !strings.Contains(out, "create-client") {
		t.Errorf("admin usage: %v", err)
	}
	// A bad configuration stops start-up with a message naming the variable.
	for name, value := range map[string]string{"BFF_ACCESS_TOKEN_TTL": "2h", "BFF_JWT_ALG": "HS256", "BFF_SECRET": "short"} {
		_, err := cli(t, baseEnv(map[string]string{name: value}), "serve")
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v", name, value, err)
		}
	}
	_, err := cli(t, baseEnv(map[string]string{"BFF_DATABASE_URL": "postgres://x/y", "BFF_SECRET": ""}), "serve")
	if err == nil || !strings.Contains(err.Error(), "BFF_SECRET") {
		t.Errorf("PostgreSQL without BFF_SECRET: %v", err)
	}
}

// TestCLIAdmin: the admin CLI works on the same database as a running
// server, with the same operations as the admin API.
func TestCLIAdmin(t *testing.T) {
	t.Parallel()
	env := baseEnv(map[string]string{"BFF_DATABASE_URL": testdb.EmptyURL(t)})

	upToDate := regexp.MustCompile(`^version ([1-9][0-9]*) of ([0-9]+)\n$`)
	for _, args := range [][]string{{"migrate", "up"}, {"migrate", "status"}} {
		out, err := cli(t, env, args...)
		m := upToDate.FindStringSubmatch(out)
		if err != nil || m == nil || m[1] != m[2] {
			t.Fatalf("%v: %q %v", args, out, err)
		}
	}
	if out, err := cli(t, env, "migrate", "down", "1"); err != nil || upToDate.FindStringSubmatch(out) == nil {
		t.Fatalf("migrate down 1: %q %v", out, err)
	}
	if _, err := cli(t, env, "migrate", "up"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, env, "migrate", "sideways"); !errors.Is(err, errUsage) {
		t.Errorf("bad migrate: %v", err)
	}

	app := mustCLI(t, env, "admin", "create-client", "--id", "app", "--public", "--scopes", "read,email")
	if app["client_id"] != "app" || app["public"] != true || app["client_secret"] != nil {
		t.Errorf("create public client: %v", app)
	}
	svc := mustCLI(t, env, "admin", "create-client", "--id", "svc", "--token-type", "jwt")
	if s, _ := svc["client_secret"].(string); len(s) < 40 {
		t.Errorf("confidential client secret not shown: %v", svc)
	}
	if out, _ := cli(t, env, "admin", "list-clients"); strings.Contains(out, "secret") {
		t.Errorf("list-clients shows secrets: %s", out)
	}
	upd := mustCLI(t, env, "admin", "update-client", "app", "--rollout", "40", "--jwt-enabled", "false")
	if upd["jwt_rollout_percent"] != float64(40) || upd["jwt_enabled"] != false {
		t.Errorf("update-client: %v", upd)
	}
	if _, err := cli(t, env, "admin", "update-client", "app", "--rollout", "400"); err == nil {
		t.Error("update-client accepted rollout 400")
	}
	// Browser sign-in fields (SPEC §14): redirect URIs validated, PKCE on by default.
	if app["pkce_required"] != true || fmt.Sprint(app["redirect_uris"]) != "[]" {
		t.Errorf("new client's browser sign-in fields: %v", app)
	}
	upd = mustCLI(t, env, "admin", "update-client", "app", "--redirect-uris", "org.openedx.app://oauth2Callback,http://127.0.0.1/cb",
		"--pkce-required", "false")
	if fmt.Sprint(upd["redirect_uris"]) != "[org.openedx.app://oauth2Callback http://127.0.0.1/cb]" || upd["pkce_required"] != false {
		t.Errorf("update-client --redirect-uris: %v", upd)
	}
	if _, err := cli(t, env, "admin", "update-client", "app", "--redirect-uris", "http://evil.example.com/cb"); !errors.Is(err, bff.ErrInvalidInput) {
		t.Errorf("update-client accepted a non-loopback http redirect URI: %v", err)
	}
	web := mustCLI(t, env, "admin", "create-client", "--id", "web", "--public", "--grant-types", "authorization_code,refresh_token",
		"--redirect-uris", "https://app.example.com/cb")
	if web["pkce_required"] != true || fmt.Sprint(web["grant_types"]) != "[authorization_code refresh_token]" {
		t.Errorf("create-client with browser sign-in: %v", web)
	}
	// dpop_bound_access_tokens (RFC 9449 §5.2): off by default, a bare flag
	// on create-client, true|false on update-client, shown by get and list.
	if app["dpop_bound_access_tokens"] != false {
		t.Errorf("new client's dpop_bound_access_tokens: %v", app)
	}
	if ios := mustCLI(t, env, "admin", "create-client", "--id", "ios", "--public", "--dpop-bound-access-tokens"); ios["dpop_bound_access_tokens"] != true {
		t.Errorf("create-client --dpop-bound-access-tokens: %v", ios)
	}
	if ios := mustCLI(t, env, "admin", "get-client", "ios"); ios["dpop_bound_access_tokens"] != true {
		t.Errorf("get-client of a DPoP-bound client: %v", ios)
	}
	if _, err := cli(t, env, "admin", "update-client", "ios", "--dpop-bound-access-tokens", "maybe"); !errors.Is(err, bff.ErrInvalidInput) {
		t.Errorf("update-client --dpop-bound-access-tokens maybe: %v", err)
	}
	if ios := mustCLI(t, env, "admin", "update-client", "ios", "--rollout", "5"); ios["dpop_bound_access_tokens"] != true {
		t.Errorf("update-client without the flag changed dpop_bound_access_tokens: %v", ios)
	}
	if ios := mustCLI(t, env, "admin", "update-client", "ios", "--dpop-bound-access-tokens", "false"); ios["dpop_bound_access_tokens"] != false {
		t.Errorf("update-client --dpop-bound-access-tokens false: %v", ios)
	}
	mustCLI(t, env, "admin", "update-client", "ios", "--dpop-bound-access-tokens", "true")
	listed := map[string]any{}
	for _, c := range mustCLI(t, env, "admin", "list-clients")["clients"].([]any) {
		c := c.(map[string]any)
		listed[c["client_id"].(string)] = c["dpop_bound_access_tokens"]
	}
	if listed["ios"] != true || listed["app"] != false {
		t.Errorf("list-clients dpop_bound_access_tokens: %v", listed)
	}

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(e2ePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := mustCLI(t, env, "admin", "create-user", "--username", "ivan", "--email", "ivan@example.com", "--password-file", pwFile)
	uid := int64(u["id"].(float64))
	if _, err := cli(t, env, "admin", "create-user", "--username", "ivan", "--email", "i2@example.com"); err == nil {
		t.Error("duplicate username accepted")
	}

	// A server on the same database sees what the CLI did.
	s := start(t, env)
	login := url.Values{"grant_type": {"password"}, "client_id": {"app"}, "username": {"ivan"}, "password": {e2ePassword}}
	if r := s.postForm("/oauth2/access_token", login); r.status != 200 || r.json(t)["token_type"] != "Bearer" {
		t.Fatalf("login with a CLI-made user: %d %s", r.status, r.body)
	}
	if d := mustCLI(t, env, "admin", "disable-user", itoa(uid)); d["disabled"] != true {
		t.Errorf("disable-user: %v", d)
	}
	if r := s.postForm("/oauth2/access_token", login); r.status != 403 {
		t.Errorf("login after CLI disable: %d %s", r.status, r.body)
	}
	mustCLI(t, env, "admin", "enable-user", itoa(uid))
	if r := s.postForm("/oauth2/access_token", login); r.status != 200 {
		t.Errorf("login after CLI enable: %d %s", r.status, r.body)
	}

	// Keys rotated by the CLI: the former next key is current, the former
	// current one retired but still published.
	before := keyStates(t, mustCLI(t, env, "admin", "list-keys"))
	after := keyStates(t, mustCLI(t, env, "admin", "rotate-keys"))
	if after[before["next"]] != "current" || after[before["current"]] != "retired" || len(after) != 5 { // 3 kids + current + next
		t.Errorf("rotate-keys: before %v, after %v", before, after)
	}
	// The running server hears of the rotation and signs with the new key;
	// it also hears that the CLI switched the client's JWTs back on.
	mustCLI(t, env, "admin", "update-client", "app", "--jwt-enabled", "true")
	within(t, 2*time.Second, "the server signs with the key the CLI made current", func() bool {
		r := s.postForm("/oauth2/access_token", login, "X-Token-Type", "jwt")
		if r.status != 200 || r.json(t)["token_type"] != "JWT" {
			return false
		}
		h, _ := s.verifyJWT(r.json(t)["access_token"].(string))
		return h.KeyID == after["current"]
	})
	if _, err := cli(t, env, "admin", "get-user", "not-a-number"); err == nil {
		t.Error("get-user accepted a non-numeric id")
	}
	if _, err := cli(t, env, "admin", "set-password", itoa(uid)); !errors.Is(err, errUsage) {
		t.Errorf("set-password without a password: %v", err)
	}
	if out, err := cli(t, env, "admin", "frob"); !errors.Is(err, errUsage) {
		t.Errorf("unknown admin command: %v %s", err, out)
	}
}

// keyStates maps state → kid and kid → state from a keys listing.
func keyStates(t *testing.T, out map[string]any) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, k := range out["keys"].([]any) {
		k := k.(map[string]any)
		kid, state := k["kid"].(string), k["state"].(string)
		m[kid] = state
		if state != "retired" {
			m[state] = kid
		}
	}
	return m
}
