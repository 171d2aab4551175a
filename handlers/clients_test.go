package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/store"
)

// TestRotateClientSecretBadInput: every refused rotation is a 4xx
// problem+json that names the reason and changes nothing — the client's
// secret still works — and a failing store is a 503.
func TestRotateClientSecretBadInput(t *testing.T) {
	t.Parallel()
	var fs *testenv.FailingStore
	env := testenv.New(t, testenv.Options{Wrap: func(s store.Store) store.Store {
		fs = &testenv.FailingStore{Store: s}
		return fs
	}})
	_, secret := env.ConfidentialClient(t, "svc")
	env.PublicClient(t, "app")
	cc := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}}

	for name, c := range map[string]struct {
		path, contentType, body string
		status                  int
		detail                  string
	}{
		"public client":       {"/admin/clients/app/secret", "application/json", ``, 400, "public client"},
		"unknown client":      {"/admin/clients/nobody/secret", "application/json", `{}`, 404, ""},
		"unparseable grace":   {"/admin/clients/svc/secret", "application/json", `{"grace":"an hour"}`, 400, "grace"},
		"grace without unit":  {"/admin/clients/svc/secret", "application/json", `{"grace":"3600"}`, 400, "grace"},
		"negative grace":      {"/admin/clients/svc/secret", "application/json", `{"grace":"-1s"}`, 400, "grace"},
		"grace over 168h":     {"/admin/clients/svc/secret", "application/json", `{"grace":"168h1s"}`, 400, "grace"},
		"grace not a string":  {"/admin/clients/svc/secret", "application/json", `{"grace":3600}`, 400, "grace"},
		"short secret":        {"/admin/clients/svc/secret", "application/json", `{"secret":"too-short"}`, 400, "secret"},
		"secret with a space": {"/admin/clients/svc/secret", "application/json", `{"secret":"` + strings.Repeat("a", 20) + " " + strings.Repeat("b", 20) + `"}`, 400, "secret"},
		"secret too long":     {"/admin/clients/svc/secret", "application/json", `{"secret":"` + strings.Repeat("a", 257) + `"}`, 400, "secret"},
		"the current secret":  {"/admin/clients/svc/secret", "application/json", `{"secret":"` + secret + `"}`, 400, "differ"},
		"unknown field":       {"/admin/clients/svc/secret", "application/json", `{"grace":"1h","graec":"1h"}`, 400, "graec"},
		"trailing data":       {"/admin/clients/svc/secret", "application/json", `{} {}`, 400, "trailing"},
		"not an object":       {"/admin/clients/svc/secret", "application/json", `"1h"`, 400, ""},
		"body too large":      {"/admin/clients/svc/secret", "application/json", `{"secret":"` + strings.Repeat("a", 70<<10) + `"}`, 413, ""},
	} {
		rec := postAdmin(env, c.path, c.contentType, []byte(c.body))
		if rec.Code != c.status || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %q %s, want %d problem+json", name, rec.Code, rec.Header().Get("Content-Type"), rec.Body, c.status)
			continue
		}
		var prob struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &prob); err != nil || prob.Status != c.status || prob.Code == "" ||
			!strings.Contains(prob.Detail, c.detail) {
			t.Errorf("%s: problem %s, want status %d and a detail naming %q", name, rec.Body, c.status, c.detail)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("%s: the answer holds the client's secret", name)
		}
	}
	if rec := env.Post("/oauth2/access_token", cc); rec.Code != http.StatusOK {
		t.Fatalf("the secret after refused rotations: %d %s", rec.Code, rec.Body)
	}

	fs.Writes.Store(true)
	if rec := postAdmin(env, "/admin/clients/svc/secret", "", nil); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("rotation on a failing store: %d %s, want 503", rec.Code, rec.Body)
	}
	fs.Writes.Store(false)
	if rec := env.Post("/oauth2/access_token", cc); rec.Code != http.StatusOK {
		t.Errorf("the secret after a rotation the store refused: %d %s", rec.Code, rec.Body)
	}

	// No body at all is a generated secret, answered once, never cached.
	rec := postAdmin(env, "/admin/clients/svc/secret", "", nil)
	var out map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("rotation without a body: %d %s", rec.Code, rec.Body)
	}
	if s, _ := out["client_secret"].(string); len(s) < 40 || s == secret || out["previous_secret_expires_at"] != nil {
		t.Errorf("rotation without a body: %v", out)
	}
	if rec := env.Post("/oauth2/access_token", cc); rec.Code != http.StatusUnauthorized {
		t.Errorf("the replaced secret after a rotation without grace: %d %s", rec.Code, rec.Body)
	}
	if rec := adminGet(t, env, "/admin/clients/svc"); strings.Contains(rec.Body.String(), "client_secret") {
		t.Errorf("GET shows a secret after a rotation: %s", rec.Body)
	}
}
