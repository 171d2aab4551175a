package handlers_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/openedx/mobile-auth-bff/broker"
	"github.com/openedx/mobile-auth-bff/internal/fakeecommerce"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
)

// TestJSONBodiesEndWithBrace calls every operation of openapi.yaml — without
// credentials, with a bad one, with a bad body, and with the admin token —
// and checks that every JSON body is a bare object or array: it starts with
// "{" or "[" and ends with "}" or "]", with no newline or space after it.
// The iOS app reads an error body only when it starts with { and ends with
// } (SPEC §0).
func TestJSONBodiesEndWithBrace(t *testing.T) {
	t.Parallel()
	up := fakeecommerce.New(t)
	env := testenv.New(t, testenv.Options{Broker: &broker.Config{URL: up.URL}})
	env.PublicClient(t, "app")
	u := env.User(t, "wire")
	tok := env.Token(t, testenv.PasswordForm("app", "wire", "token_type", "jwt"))["access_token"].(string)
	_, _, ops := loadSpec(t)

	param := regexp.MustCompile(`\{[^}]+\}`)
	seen := 0
	for _, o := range ops {
		h := env.Public
		if o.listener == "admin" {
			h = env.AdminH
		}
		path := param.ReplaceAllStringFunc(o.path, func(p string) string {
			switch p {
			case "{id}":
				if strings.HasPrefix(o.path, "/admin/users") {
					return itoa(int(u.ID))
				}
				return "app"
			case "{backend}":
				return "google-oauth2"
			case "{path}":
				return "api/v2/orders/"
			}
			return "x"
		})
		for _, c := range []struct {
			name          string
			authorization string
			ctype, body   string
		}{
			{"no credential", "", "", ""},
			{"bad credential", "Bearer nope", "application/x-www-form-urlencoded", "grant_type=password&token=x"},
			{"bad JSON", "Bearer " + testenv.AdminToken, "application/json", `{"x":`},
			{"good credential", "JWT " + tok, "application/json", `{}`},
			{"admin token", "Bearer " + testenv.AdminToken, "", ""},
		} {
			req := httptest.NewRequest(o.method, path, strings.NewReader(c.body))
			if c.authorization != "" {
				req.Header.Set(echo.HeaderAuthorization, c.authorization)
			}
			if c.ctype != "" {
				req.Header.Set(echo.HeaderContentType, c.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if !strings.Contains(rec.Header().Get(echo.HeaderContentType), "json") || o.method == http.MethodHead {
				continue
			}
			seen++
			b := rec.Body.Bytes()
			if len(b) == 0 || !bytes.ContainsAny(b[:1], "{[") || !bytes.ContainsAny(b[len(b)-1:], "}]") {
				t.Errorf("%s (%s): %d body %q does not start with { or [ and end with } or ]", o, c.name, rec.Code, b)
			}
		}
	}
	if seen < 2*len(ops) {
		t.Errorf("only %d JSON answers from %d operations: the requests do not reach the handlers", seen, len(ops))
	}
}
