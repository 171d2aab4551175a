package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
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

// TestClientDPoPBoundAccessTokens: dpop_bound_access_tokens (RFC 9449
// §5.2) is off unless asked for, set on creation, changed by a patch, left
// alone by a patch without it, answered by every view of the client (GET,
// list, the migration report, the dashboard), and a value that is not a
// boolean is a 400 problem naming the field that changes nothing.
func TestClientDPoPBoundAccessTokens(t *testing.T) {
	t.Parallel()
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := testenv.New(t, testenv.Options{Postgres: pg})
		bound := func(rec *httptest.ResponseRecorder, what string) bool {
			t.Helper()
			var c map[string]any
			if rec.Code/100 != 2 || json.Unmarshal(rec.Body.Bytes(), &c) != nil {
				t.Fatalf("%s: %d %s", what, rec.Code, rec.Body)
			}
			b, ok := c["dpop_bound_access_tokens"].(bool)
			if !ok {
				t.Fatalf("%s: no boolean dpop_bound_access_tokens in %s", what, rec.Body)
			}
			return b
		}

		if bound(adminDo(env, http.MethodPost, "/admin/clients", `{"client_id":"app","public":true}`), "create app") {
			t.Error("a client created without dpop_bound_access_tokens is bound")
		}
		if !bound(adminDo(env, http.MethodPost, "/admin/clients",
			`{"client_id":"ios","public":true,"dpop_bound_access_tokens":true}`), "create ios") {
			t.Error("created with dpop_bound_access_tokens true, answered false")
		}
		if !bound(adminGet(t, env, "/admin/clients/ios"), "get ios") || bound(adminGet(t, env, "/admin/clients/app"), "get app") {
			t.Error("GET does not answer the stored dpop_bound_access_tokens")
		}

		for name, tc := range map[string]struct{ method, path, body string }{
			"create with a string": {http.MethodPost, "/admin/clients", `{"client_id":"web","public":true,"dpop_bound_access_tokens":"true"}`},
			"create with a number": {http.MethodPost, "/admin/clients", `{"client_id":"web","public":true,"dpop_bound_access_tokens":1}`},
			"patch with a string":  {http.MethodPatch, "/admin/clients/app", `{"dpop_bound_access_tokens":"yes"}`},
			"patch with an array":  {http.MethodPatch, "/admin/clients/ios", `{"dpop_bound_access_tokens":[false]}`},
			"misspelled field":     {http.MethodPatch, "/admin/clients/app", `{"dpop_bound_access_token":true}`},
		} {
			rec := adminDo(env, tc.method, tc.path, tc.body)
			var prob struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
				Detail string `json:"detail"`
			}
			if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/problem+json" ||
				json.Unmarshal(rec.Body.Bytes(), &prob) != nil || prob.Status != 400 || prob.Code != "invalid_request" ||
				!strings.Contains(prob.Detail, "dpop_bound_access_token") {
				t.Errorf("%s: %d %q %s, want a 400 problem naming the field", name, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
		}
		if rec := adminGet(t, env, "/admin/clients/web"); rec.Code != 404 {
			t.Errorf("a refused creation made a client: %d", rec.Code)
		}
		if bound(adminGet(t, env, "/admin/clients/app"), "app after refused patches") ||
			!bound(adminGet(t, env, "/admin/clients/ios"), "ios after refused patches") {
			t.Error("a refused patch changed dpop_bound_access_tokens")
		}

		if !bound(adminDo(env, http.MethodPatch, "/admin/clients/app", `{"dpop_bound_access_tokens":true}`), "patch app on") {
			t.Error("patched to true, answered false")
		}
		if !bound(adminDo(env, http.MethodPatch, "/admin/clients/app", `{"jwt_rollout_percent":10,"dpop_bound_access_tokens":null}`), "patch app without it") {
			t.Error("a patch without dpop_bound_access_tokens turned it off")
		}
		if bound(adminDo(env, http.MethodPatch, "/admin/clients/ios", `{"dpop_bound_access_tokens":false}`), "patch ios off") ||
			!bound(adminGet(t, env, "/admin/clients/app"), "get app") || bound(adminGet(t, env, "/admin/clients/ios"), "get ios") {
			t.Error("GET does not answer the patched dpop_bound_access_tokens")
		}

		var list struct {
			Clients []struct {
				ID    string `json:"client_id"`
				Bound *bool  `json:"dpop_bound_access_tokens"`
			} `json:"clients"`
		}
		if rec := adminGet(t, env, "/admin/clients"); json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Clients) != 2 ||
			list.Clients[0].ID != "app" || list.Clients[0].Bound == nil || !*list.Clients[0].Bound ||
			list.Clients[1].ID != "ios" || list.Clients[1].Bound == nil || *list.Clients[1].Bound {
			t.Errorf("list: %s", rec.Body)
		}

		rep := migrationReport(t, env, "")
		if app, ios := clientOf(t, rep, "app"), clientOf(t, rep, "ios"); app.Rollout == nil || !app.Rollout.DPoPBoundAccessTokens ||
			ios.Rollout == nil || ios.Rollout.DPoPBoundAccessTokens {
			t.Errorf("migration report rollouts: app %+v, ios %+v", app.Rollout, ios.Rollout)
		}

		// The dashboard marks the bound client, and only it.
		b := newBrowser(t, env)
		b.signIn(testenv.AdminToken)
		page := b.get("/admin/dashboard").body
		sections := map[string]string{}
		for _, part := range strings.Split(page, `<section class="card"`)[1:] {
			if _, rest, ok := strings.Cut(part, `data-client="`); ok {
				id, _, _ := strings.Cut(rest, `"`)
				sections[id] = part
			}
		}
		if !strings.Contains(sections["app"], "data-dpop-bound-access-tokens") {
			t.Errorf("the dashboard does not mark the DPoP-bound client app:\n%s", sections["app"])
		}
		if s, ok := sections["ios"]; !ok || strings.Contains(s, "data-dpop-bound-access-tokens") {
			t.Errorf("the dashboard marks ios, which is not DPoP-bound (section found: %v)", ok)
		}
	})
}
