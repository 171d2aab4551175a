package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
)

// TestMetadataAtIssuerPath: with a path in the issuer, the metadata is also
// at the RFC 8414 §3.1 location (path after the well-known segment), the
// same document; nothing else below that segment answers.
func TestMetadataAtIssuerPath(t *testing.T) {
	t.Parallel()
	get := func(env *testenv.Env, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		env.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	// notFound is the body of an unknown route, without its request id.
	notFound := func(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
		t.Helper()
		var p map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		delete(p, "request_id")
		return p
	}

	tests := []struct {
		issuer   string
		found    []string
		notFound []string
	}{
		{"https://bff.test/auth",
			[]string{"/.well-known/oauth-authorization-server/auth", "/.well-known/oauth-authorization-server/auth/"},
			[]string{"/.well-known/oauth-authorization-server/other", "/.well-known/oauth-authorization-server/auth/x",
				"/.well-known/oauth-authorization-server/Auth", "/auth/.well-known/oauth-authorization-server/auth"}},
		{"https://bff.test/tenant/auth",
			[]string{"/.well-known/oauth-authorization-server/tenant/auth", "/.well-known/oauth-authorization-server/tenant/auth/"},
			[]string{"/.well-known/oauth-authorization-server/tenant", "/.well-known/oauth-authorization-server/auth"}},
		{testenv.Issuer, nil,
			[]string{"/.well-known/oauth-authorization-server/auth", "/.well-known/oauth-authorization-server/x/"}},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Issuer: tt.issuer})
			base := get(env, "/.well-known/oauth-authorization-server")
			var md map[string]any
			if err := json.Unmarshal(base.Body.Bytes(), &md); base.Code != http.StatusOK || err != nil {
				t.Fatalf("metadata: %d %s", base.Code, base.Body)
			}
			if md["issuer"] != tt.issuer || md["token_endpoint"] != tt.issuer+"/oauth2/access_token" {
				t.Errorf("issuer %v, token_endpoint %v; want them built from %s", md["issuer"], md["token_endpoint"], tt.issuer)
			}
			for _, p := range tt.found {
				rec := get(env, p)
				if rec.Code != http.StatusOK || rec.Body.String() != base.Body.String() {
					t.Errorf("GET %s: %d %s, want 200 and the metadata", p, rec.Code, rec.Body)
				}
				if got, want := rec.Header().Get("Cache-Control"), base.Header().Get("Cache-Control"); got != want {
					t.Errorf("GET %s: Cache-Control %q, want %q", p, got, want)
				}
			}
			want := notFound(t, get(env, "/nope"))
			for _, p := range tt.notFound {
				rec := get(env, p)
				if rec.Code != http.StatusNotFound {
					t.Errorf("GET %s: %d, want 404", p, rec.Code)
					continue
				}
				if diff := cmp.Diff(want, notFound(t, rec)); diff != "" {
					t.Errorf("GET %s: not the 404 of an unknown route (-want +got):\n%s", p, diff)
				}
			}
		})
	}
}
