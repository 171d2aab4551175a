package handlers_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
)

// fuzzOAuthPaths are the endpoints that read an OAuth form; a fuzz input
// picks one by index.
var fuzzOAuthPaths = []string{
	"/oauth2/access_token", "/oauth2/token/", "/oauth2/introspect", "/oauth2/revoke", "/oauth2/revoke_token/",
	"/oauth2/exchange_access_token/google/", "/oauth2/exchange_access_token/nope/",
}

// FuzzOAuthForm posts arbitrary bodies, content types and Authorization
// headers to the OAuth endpoints through the public handler. Whatever the
// input, the answer is never a 500 (a panic is one, through the recover
// middleware), and it is JSON in the shape SPEC §5 documents: the RFC 6749
// §5.2 error object, a token response, an introspection answer, or a
// revocation's empty 200.
func FuzzOAuthForm(f *testing.F) {
	env := testenv.New(f, testenv.Options{})
	env.PublicClient(f, "mobile")
	_, secret := env.ConfidentialClient(f, "backend")
	env.User(f, "alice")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("backend:"+secret))
	form := testenv.PasswordForm("mobile", "alice").Encode()
	// The seeds reach the success paths too, not only the rejections.
	for path, body := range map[string]string{"/oauth2/access_token": form, "/oauth2/token/": "grant_type=client_credentials"} {
		auth := ""
		if path == "/oauth2/token/" {
			auth = basic
		}
		if rec := postOAuth(env, path, "application/x-www-form-urlencoded", auth, []byte(body)); rec.Code != http.StatusOK {
			f.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	for _, s := range []struct {
		path        uint8
		contentType string
		auth        string
		body        string
	}{
		{0, "application/x-www-form-urlencoded", "", form},
		{0, "application/x-www-form-urlencoded; charset=utf-8", "", form + "&token_type=jwt"},
		{1, "application/x-www-form-urlencoded", basic, "grant_type=client_credentials"},
		{2, "application/x-www-form-urlencoded", basic, "token=ory_at_x.y&token_type_hint=access_token"},
		{3, "application/x-www-form-urlencoded", "", "client_id=mobile&token=abc"},
		{4, "application/x-www-form-urlencoded", "", "client_id=mobile&token=abc&token=def"},
		{5, "application/x-www-form-urlencoded", "", "client_id=mobile&access_token=ya29.x"},
		{6, "application/x-www-form-urlencoded", "", "client_id=mobile&access_token=x"},
		{0, "application/json", "", `{"grant_type":"password"}`},
		{0, "multipart/form-data; boundary=x", "", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\npassword\r\n--x--"},
		{0, "application/x-www-form-urlencoded", "", "grant_type=%zz"},
		{0, "application/x-www-form-urlencoded;;", "Basic !!!", "a=b"},
		{2, "", "Bearer x", ""},
	} {
		f.Add(s.path, s.contentType, s.auth, []byte(s.body))
	}
	f.Add(uint8(0), "application/x-www-form-urlencoded", "", append([]byte("grant_type=password&x="), bytes.Repeat([]byte("a"), 70<<10)...))
	f.Fuzz(func(t *testing.T, path uint8, contentType, auth string, body []byte) {
		p := fuzzOAuthPaths[int(path)%len(fuzzOAuthPaths)]
		checkOAuthAnswer(t, p, postOAuth(env, p, contentType, auth, body))
	})
}

// postOAuth posts body to the public handler.
func postOAuth(env *testenv.Env, path, contentType, auth string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.RemoteAddr = "192.0.2.7:1234"
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	env.Public.ServeHTTP(rec, req)
	return rec
}

// checkOAuthAnswer fails unless rec is an answer of an OAuth endpoint in a
// documented shape.
func checkOAuthAnswer(t *testing.T, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable && rec.Code != http.StatusBadGateway {
		t.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
	}
	revoke := strings.HasPrefix(path, "/oauth2/revoke")
	if rec.Code == http.StatusOK && revoke {
		if rec.Body.Len() != 0 {
			t.Fatalf("POST %s: 200 with a body: %s", path, rec.Body)
		}
		return
	}
	if mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type")); mt != "application/json" {
		t.Fatalf("POST %s: %d with Content-Type %q: %s", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("POST %s: %d, body is not a JSON object: %s", path, rec.Code, rec.Body)
	}
	if rec.Code == http.StatusOK {
		switch {
		case strings.HasPrefix(path, "/oauth2/introspect"):
			if _, ok := m["active"].(bool); !ok {
				t.Fatalf("POST %s: 200 without active: %s", path, rec.Body)
			}
		default:
			if tok, _ := m["access_token"].(string); tok == "" {
				t.Fatalf("POST %s: 200 without access_token: %s", path, rec.Body)
			}
			if typ, _ := m["token_type"].(string); typ == "" {
				t.Fatalf("POST %s: 200 without token_type: %s", path, rec.Body)
			}
		}
		return
	}
	if rec.Code < 400 {
		t.Fatalf("POST %s: unexpected status %d: %s", path, rec.Code, rec.Body)
	}
	if code, _ := m["error"].(string); code == "" {
		t.Fatalf("POST %s: %d without an error code: %s", path, rec.Code, rec.Body)
	}
	for k, v := range m {
		switch k {
		case "error":
		case "error_description":
			if _, ok := v.(string); !ok {
				t.Fatalf("POST %s: error_description is not a string: %s", path, rec.Body)
			}
		case "error_code":
			if _, ok := v.(float64); !ok || !strings.HasPrefix(path, "/oauth2/exchange_access_token") {
				t.Fatalf("POST %s: unexpected error_code: %s", path, rec.Body)
			}
		default:
			t.Fatalf("POST %s: unexpected member %q: %s", path, k, rec.Body)
		}
	}
}

// fuzzAdminPaths are the admin routes that decode a JSON body.
var fuzzAdminPaths = []string{"/admin/clients", "/admin/users"}

// FuzzAdminJSON posts arbitrary bodies to the admin API's create-client
// and create-user routes, with the admin token. Whatever the input, the
// answer is never a 500: a 201 with the created object, or a 4xx
// problem+json (RFC 9457) with a code and the status it was sent with.
func FuzzAdminJSON(f *testing.F) {
	env := testenv.New(f, testenv.Options{})
	// Bodies like the seeds' create what they say.
	for path, body := range map[string]string{
		"/admin/clients": `{"client_id":"setup-app","public":true,"grant_types":["password"],"scopes":["read"]}`,
		"/admin/users":   `{"username":"setup","email":"setup@example.com","name":"Setup","password":"correct horse battery"}`,
	} {
		if rec := postAdmin(env, path, "application/json", []byte(body)); rec.Code != http.StatusCreated {
			f.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	for _, s := range []struct {
		path uint8
		body string
	}{
		{0, `{"client_id":"fuzz-app","public":true,"grant_types":["password","refresh_token"],"scopes":["read"],"token_type":"jwt"}`},
		{0, `{"client_id":"fuzz-backend","grant_types":["client_credentials"],"scopes":["read"]}`},
		{0, `{"client_id":"","grant_types":["implicit"]}`},
		{0, `{"client_id":"x","grant_types":"password"}`},
		{0, `{"client_id":"x","unknown":1}`},
		{0, `{"client_id":"x"} {"client_id":"y"}`},
		{1, `{"username":"fuzz","email":"fuzz@example.com","name":"Fuzz","password":"correct horse battery"}`},
		{1, `{"username":"fuzz\u0000","email":"x"}`},
		{1, `{"username":"` + strings.Repeat("a", 300) + `","password":""}`},
		{1, `[]`},
		{1, `null`},
		{1, ``},
		{1, `{"id":99}`},
	} {
		f.Add(s.path, "application/json", []byte(s.body))
	}
	f.Add(uint8(0), "text/plain", []byte(`{"client_id":"x"}`))
	f.Fuzz(func(t *testing.T, path uint8, contentType string, body []byte) {
		p := fuzzAdminPaths[int(path)%len(fuzzAdminPaths)]
		rec := postAdmin(env, p, contentType, body)
		if rec.Code == http.StatusCreated {
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || (m["client_id"] == nil && m["id"] == nil) {
				t.Fatalf("POST %s: 201 without an object with an id: %s", p, rec.Body)
			}
			return
		}
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", p, body, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("POST %s: %d with Content-Type %q: %s", p, rec.Code, ct, rec.Body)
		}
		var prob struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
			Title  string `json:"title"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &prob); err != nil || prob.Status != rec.Code || prob.Code == "" || prob.Title == "" {
			t.Fatalf("POST %s: %d, not a problem of that status: %s", p, rec.Code, rec.Body)
		}
	})
}

// postAdmin posts body to the admin handler with the admin token.
func postAdmin(env *testenv.Env, path, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testenv.AdminToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	env.AdminH.ServeHTTP(rec, req)
	return rec
}
