package main

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// TestE2EMemoryTokenCap: the in-memory store holds at most
// BFF_MEMORY_MAX_TOKENS tokens; past it issuance answers 503
// temporarily_unavailable (with Retry-After, in the token endpoint's JSON
// shape) instead of the process growing without bound, and what was
// issued keeps working. The backend's tokens are JWTs, which count like
// any other: a cap of 3 holds 3.
func TestE2EMemoryTokenCap(t *testing.T) {
	t.Parallel()
	s := start(t, baseEnv(map[string]string{"BFF_MEMORY_MAX_TOKENS": "3"}))
	secret := s.createBackend("rs")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("rs:"+secret))
	form := url.Values{"grant_type": {"client_credentials"}}
	var tokens []string
	for i := range 3 {
		r := s.postForm("/oauth2/token", form, "Authorization", basic)
		if r.status != 200 {
			t.Fatalf("token %d under the cap: %d %s", i+1, r.status, r.body)
		}
		tokens = append(tokens, r.json(t)["access_token"].(string))
	}
	r := s.postForm("/oauth2/token", form, "Authorization", basic)
	if r.status != 503 || r.json(t)["error"] != "temporarily_unavailable" || r.header.Get("Retry-After") == "" ||
		strings.HasSuffix(string(r.body), "\n") {
		t.Errorf("a token past the cap: %d %v %s", r.status, r.header, r.body)
	}
	if in := s.introspect("rs", secret, tokens[0]); in["active"] != true {
		t.Errorf("a token issued under the cap: %v", in)
	}
	if strings.Contains(s.out.String(), secret) {
		t.Error("the log holds the client secret")
	}
}
