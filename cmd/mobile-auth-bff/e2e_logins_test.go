package main

import (
	"context"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/migrations"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// TestE2ELoginNamespace: usernames and emails are one case-insensitive
// namespace (issue 13 #5, ADR 0021): the admin API refuses a username with
// @ (400) and any username or email another account holds (409), and a
// login by an email signs in the email's owner.
func TestE2ELoginNamespace(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createMobileClient("app", nil)
		ann := s.createUser("ann") // ann@example.com
		for _, c := range []struct {
			body   map[string]any
			status int
			code   string
		}{
			{map[string]any{"username": "ann@example.com", "email": "mallory@example.com", "password": e2ePassword}, 400, "invalid_request"},
			{map[string]any{"username": "m@llory", "email": "mallory@example.com"}, 400, "invalid_request"},
			{map[string]any{"username": "ANN", "email": "mallory@example.com"}, 409, "conflict"},
			{map[string]any{"username": "mallory", "email": "Ann@Example.COM"}, 409, "conflict"},
		} {
			r := s.adminCall("POST", "/admin/users", c.body)
			if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" || r.json(t)["code"] != c.code {
				t.Errorf("POST /admin/users %v: %d %s, want %d %s", c.body, r.status, r.body, c.status, c.code)
			}
		}
		// The refused ones left nothing behind.
		if r := s.adminCall("POST", "/admin/users", map[string]any{"username": "mallory", "email": "mallory@example.com"}); r.status != 201 {
			t.Errorf("create mallory after the refusals: %d %s", r.status, r.body)
		}
		if sub := loginSubject(t, s, "ANN@example.COM", e2ePassword); sub != itoa(ann) {
			t.Errorf("login by email: sub %q, want %d", sub, ann)
		}
	})
}

// loginSubject signs in with the password grant as a JWT and returns the
// token's sub, or "" with the error code when refused.
func loginSubject(t *testing.T, s *server, login, password string) string {
	t.Helper()
	r := s.postForm("/oauth2/access_token", url.Values{"grant_type": {"password"}, "client_id": {"app"},
		"username": {login}, "password": {password}, "token_type": {"jwt"}})
	if r.status != 200 {
		return ""
	}
	_, claims := s.verifyJWT(r.json(t)["access_token"].(string))
	sub, _ := claims["sub"].(string)
	return sub
}

// TestCLILoginNamespace: accounts that collided before migration 0010 (a
// username with @ equal to another account's email, as an import could
// make) keep working by their other login, the shared one signs in nobody
// and cannot be taken again; the CLI refuses what the admin API refuses.
func TestCLILoginNamespace(t *testing.T) {
	t.Parallel()
	dbURL := testdb.EmptyURL(t)
	env := baseEnv(map[string]string{"BFF_DATABASE_URL": dbURL})
	if _, err := cli(t, env, "migrate", "up"); err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 0010: down by the migrations from 0010 on.
	ups, _ := fs.Glob(migrations.FS, "*.up.sql")
	steps := 0
	for _, name := range ups {
		if v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0]); err == nil && v >= 10 {
			steps++
		}
	}
	if out, err := cli(t, env, "migrate", "down", strconv.Itoa(steps)); err != nil {
		t.Fatalf("migrate down %d: %v %s", steps, err, out)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	hash, err := oauth.HashPassword(e2ePassword)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, u := range [][2]string{{"ann", "Bob@Example.com"}, {"bob@example.com", "bob2@example.com"}} {
		var id int64
		if err := conn.QueryRow(ctx, `INSERT INTO users (username, email, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, now(), now()) RETURNING id`, u[0], u[1], hash).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[u[0]] = itoa(id)
	}

	s := start(t, env) // migrates up
	s.createMobileClient("app", nil)
	for login, want := range map[string]string{"ann": ids["ann"], "BOB2@example.com": ids["bob@example.com"], "bob@example.com": "", "BOB@EXAMPLE.COM": ""} {
		if got := loginSubject(t, s, login, e2ePassword); got != want {
			t.Errorf("login %q: sub %q, want %q", login, got, want)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--username", "eve@example.com", "--email", "eve@example.com"}, "must not contain @"},
		{[]string{"--username", "eve", "--email", "bob@example.com"}, "conflict"}, // the reserved key
		{[]string{"--username", "ANN", "--email", "eve@example.com"}, "conflict"},
		{[]string{"--username", "eve", "--email", "bob2@EXAMPLE.com"}, "conflict"},
	} {
		out, err := cli(t, env, append([]string{"admin", "create-user"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("create-user %v: %v %s, want an error with %q", c.args, err, out, c.want)
		}
	}
	if r := s.adminCall("POST", "/admin/users", map[string]any{"username": "eve", "email": "eve@example.com"}); r.status != http.StatusCreated {
		t.Errorf("create eve: %d %s", r.status, r.body)
	}
}
