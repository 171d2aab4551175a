package main

import (
	"net/url"
	"testing"

	"golang.org/x/oauth2/clientcredentials"
)

// TestE2EClientSubjectsNeverCollideWithUsers: a confidential client named
// "2" gets tokens whose sub is not user 2's (RFC 9068 §5), so a backend that
// keys on sub cannot take the client for the user; the token acts for no
// user anywhere.
func TestE2EClientSubjectsNeverCollideWithUsers(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, baseEnv(b.env))
		s.createUser("first")
		if id := s.createUser("second"); id != 2 {
			t.Fatalf("the second user has id %d, the test needs 2", id)
		}
		secret := s.createBackend("2")
		cc := clientcredentials.Config{ClientID: "2", ClientSecret: secret, TokenURL: s.public + "/oauth2/token",
			EndpointParams: url.Values{"token_type": {"jwt"}}}
		tok, err := cc.Token(oauthCtx(""))
		if err != nil {
			t.Fatal(err)
		}
		_, claims := s.verifyJWT(tok.AccessToken)
		if claims["sub"] != "client:2" {
			t.Errorf("sub = %v, want client:2", claims["sub"])
		}
		if in := s.introspect("2", secret, tok.AccessToken); in["active"] != true || in["sub"] == "2" || in["username"] != nil {
			t.Errorf("introspection: %v", in)
		}
		if r := s.get("/api/me", "Authorization", "Bearer "+tok.AccessToken); r.status != 403 || problem(t, r) != "non_supported_token" {
			t.Errorf("/api/me with the client's token: %d %s", r.status, r.body)
		}
	})
}
