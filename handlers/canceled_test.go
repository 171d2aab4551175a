package handlers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// TestClientGoneIsNotAServerError: a request whose client hung up (its
// context canceled) while the store worked is logged and counted as 499,
// never as a 500 or an error line. PostgreSQL only: pgx stops on a canceled
// context, the in-memory store does not look at it.
func TestClientGoneIsNotAServerError(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		if !pg {
			continue
		}
		var logs testkit.Buffer
		env := testenv.New(t, testenv.Options{Postgres: true, Cache: true, Log: &logs})
		env.PublicClient(t, "app")
		env.User(t, "gone")
		tok := env.Token(t, testenv.PasswordForm("app", "gone"))["access_token"].(string)

		for _, tc := range []struct {
			name string
			req  func() *http.Request
		}{
			{"password grant", func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/oauth2/access_token", strings.NewReader(testenv.PasswordForm("app", "gone").Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			}},
			{"/api/me", func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/api/me", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				return r
			}},
		} {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			rec := httptest.NewRecorder()
			env.Public.ServeHTTP(rec, tc.req().WithContext(ctx))
			if rec.Code == http.StatusInternalServerError || rec.Code == http.StatusServiceUnavailable {
				t.Errorf("%s: a canceled request answered %d %s", tc.name, rec.Code, rec.Body)
			}
		}
		if n := testutil.ToFloat64(env.Metrics.HTTPRequests.WithLabelValues("public", "/oauth2/access_token", "POST", "499")); n != 1 {
			t.Errorf("499s counted at the token endpoint: %v", n)
		}
		if n := testutil.ToFloat64(env.Metrics.HTTPRequests.WithLabelValues("public", "/oauth2/access_token", "POST", "500")); n != 0 {
			t.Errorf("500s counted at the token endpoint: %v", n)
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
				t.Errorf("a client that went away was logged as a failure: %s", line)
			}
		}
	}
}
