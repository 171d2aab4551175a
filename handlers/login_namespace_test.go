package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// TestLoginNamespace: usernames and emails are one case-insensitive
// namespace (issue 13 #5, ADR 0021). The admin API refuses a username with
// @ (400) and a username or email another account holds (409), and a
// password login by an email signs in its owner even when somebody tries to
// hold that email as a username (the store refuses it).
func TestLoginNamespace(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			env.PublicClient(t, "app")
			ann := env.User(t, "ann") // ann@example.com

			for _, c := range []struct {
				body   string
				status int
				code   string
			}{
				{`{"username":"ann@example.com","email":"mallory@example.com","password":"` + testenv.Password + `"}`, 400, "invalid_request"},
				{`{"username":"mallory@evil.example","email":"mallory@example.com"}`, 400, "invalid_request"},
				{`{"username":"ANN","email":"mallory@example.com"}`, 409, "conflict"},
				{`{"username":"mallory","email":"Ann@Example.COM"}`, 409, "conflict"},
			} {
				rec := adminDo(env, http.MethodPost, "/admin/users", c.body)
				if rec.Code != c.status || rec.Header().Get("Content-Type") != "application/problem+json" {
					t.Errorf("POST /admin/users %s: %d %s, want %d", c.body, rec.Code, rec.Body, c.status)
					continue
				}
				if got := decodeBody(t, rec)["code"]; got != c.code {
					t.Errorf("POST /admin/users %s: code %v, want %s", c.body, got, c.code)
				}
				if c.status == 400 && !strings.Contains(rec.Body.String(), "@") {
					t.Errorf("the 400 does not say why: %s", rec.Body)
				}
			}

			// A user holding ann's email as its username, by any path that
			// reaches the store, is refused; ann's email login stays ann's.
			hash, err := oauth.HashPassword("mallory's own password")
			if err != nil {
				t.Fatal(err)
			}
			_, err = env.Store.CreateUser(context.Background(), bff.User{Username: "ANN@example.com",
				Email: "mallory@example.com", PasswordHash: hash})
			if !errors.Is(err, bff.ErrConflict) {
				t.Fatalf("store created a username equal to another account's email: %v", err)
			}
			tok := env.Token(t, testenv.PasswordForm("app", "ann@EXAMPLE.com"))
			p, err := env.Validator.Validate(context.Background(), oauth.Credential{Scheme: oauth.SchemeBearer, Token: tok["access_token"].(string)})
			if err != nil || p.User == nil || p.User.ID != ann.ID {
				t.Fatalf("login by email signed in %+v, %v; want user %d", p.User, err, ann.ID)
			}
			rec := env.Post("/oauth2/access_token", testenv.PasswordForm("app", "ann@example.com", "password", "mallory's own password"))
			if rec.Code != http.StatusBadRequest {
				t.Errorf("another password for ann's email: %d %s", rec.Code, rec.Body)
			}
		})
	}
}
