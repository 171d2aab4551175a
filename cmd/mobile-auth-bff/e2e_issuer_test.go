package main

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestE2EIssuerWithPath: an issuer with a path is the iss of the JWTs, the
// base of the metadata's endpoints, and its metadata is found where an RFC
// 8414 client looks for it (§3.1: the path after the well-known segment)
// as well as at the path-less location.
func TestE2EIssuerWithPath(t *testing.T) {
	t.Parallel()
	const issuer = "https://bff.e2e.test/auth"
	s := start(t, baseEnv(map[string]string{"BFF_ISSUER": issuer}))

	// What an RFC 8414 client does: insert the well-known segment between
	// the host and the issuer's path, fetch, and require the issuer back.
	u, err := url.Parse(issuer)
	if err != nil {
		t.Fatal(err)
	}
	rfcPath := "/.well-known/oauth-authorization-server" + u.Path
	md := s.get(rfcPath)
	if md.status != 200 {
		t.Fatalf("GET %s: %d %s", rfcPath, md.status, md.body)
	}
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(md.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != issuer || doc.TokenEndpoint != issuer+"/oauth2/access_token" || doc.JWKSURI != issuer+"/.well-known/jwks.json" {
		t.Errorf("metadata: %+v, want everything built from %s", doc, issuer)
	}
	for _, p := range []string{rfcPath + "/", "/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/"} {
		if r := s.get(p); r.status != 200 || string(r.body) != string(md.body) {
			t.Errorf("GET %s: %d %s, want the same document", p, r.status, r.body)
		}
	}
	for _, p := range []string{"/.well-known/oauth-authorization-server/other", "/.well-known/oauth-authorization-server/auth/oauth2"} {
		if r := s.get(p); r.status != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.status)
		}
	}

	// The tokens carry the same string.
	s.createMobileClient("app", nil)
	s.createUser("ada")
	tok, err := s.oauthConfig("app").PasswordCredentialsToken(oauthCtx("jwt"), "ada", e2ePassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, claims := s.verifyJWT(tok.AccessToken); claims["iss"] != issuer {
		t.Errorf("iss = %v, want %s", claims["iss"], issuer)
	}
}

// TestE2EIssuerPathlessHasNoPathLocation: without a path in the issuer
// nothing answers below the well-known segment.
func TestE2EIssuerPathlessHasNoPathLocation(t *testing.T) {
	t.Parallel()
	s := start(t, baseEnv())
	if r := s.get("/.well-known/oauth-authorization-server/auth"); r.status != 404 {
		t.Errorf("GET /.well-known/oauth-authorization-server/auth: %d, want 404", r.status)
	}
	if r := s.get("/.well-known/oauth-authorization-server"); r.status != 200 || r.json(t)["issuer"] != e2eIssuer {
		t.Errorf("metadata: %d %s", r.status, r.body)
	}
}

// TestE2EIssuerRequired: a listener other hosts reach (the Dockerfile's
// 0.0.0.0) does not serve without BFF_ISSUER, and says so; migrate and the
// admin CLI, which issue nothing, still run.
func TestE2EIssuerRequired(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := baseEnv(b.env, map[string]string{"BFF_ADDR": "0.0.0.0:0",
				// The broker signs with the issuer: the CLI must not need it.
				"BFF_ECOMMERCE_URL": "http://127.0.0.1:9/"})
			delete(env, "BFF_ISSUER")

			out, err := cli(t, env, "serve")
			var ce *configError
			if !errors.As(err, &ce) || ce.name != "BFF_ISSUER" || !strings.Contains(err.Error(), "0.0.0.0:0") {
				t.Fatalf("serve without BFF_ISSUER on 0.0.0.0: %v, want a BFF_ISSUER error naming the address", err)
			}
			if strings.Contains(out, `"msg":"listening"`) {
				t.Errorf("serve listened before refusing:\n%s", out)
			}

			if b.name == "memory" {
				for _, args := range [][]string{{"migrate", "status"}, {"admin", "list-clients"}} {
					if _, err := cli(t, env, args...); !errors.Is(err, errNeedsDatabase) {
						t.Errorf("%v: %v, want only the missing database reported", args, err)
					}
				}
				return
			}
			if out, err := cli(t, env, "migrate", "up"); err != nil || !strings.HasPrefix(out, "version ") {
				t.Fatalf("migrate up without BFF_ISSUER: %q %v", out, err)
			}
			c := mustCLI(t, env, "admin", "create-client", "--id", "app", "--public")
			if c["client_id"] != "app" {
				t.Errorf("create-client without BFF_ISSUER: %v", c)
			}
			if _, err := cli(t, env, "admin", "rotate-keys"); err != nil {
				t.Errorf("rotate-keys without BFF_ISSUER: %v", err)
			}
		})
	}
}

// edxWarning matches the start-up warning about algorithms edX refuses.
var edxWarning = regexp.MustCompile(`"level":"WARN","msg":"[^"]*edX services will refuse`)

// TestE2EEdXAlgorithmWarning: start-up warns when the JWTs are signed with
// an algorithm edX services refuse (edx-drf-extensions verifies RS256 and
// RS512 only), and not otherwise.
func TestE2EEdXAlgorithmWarning(t *testing.T) {
	t.Parallel()
	for alg, warned := range map[string]bool{"ES256": true, "EdDSA": true, "RS256": false, "RS512": false} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			s := start(t, baseEnv(map[string]string{"BFF_JWT_ALG": alg}))
			out := s.out.String()
			if got := edxWarning.MatchString(out); got != warned {
				t.Errorf("BFF_JWT_ALG=%s: warned %v, want %v:\n%s", alg, got, warned, out)
			}
			if warned && !strings.Contains(out, `"alg":"`+alg+`"`) {
				t.Errorf("the warning does not name the algorithm:\n%s", out)
			}
		})
	}
}

// TestE2EEdXAlgorithmWarningKeys: switching BFF_JWT_ALG back to RS256 does
// not change the keys already made, and the warning stays until two
// rotations have replaced the current and the next key.
func TestE2EEdXAlgorithmWarningKeys(t *testing.T) {
	t.Parallel()
	var pg *backend
	for _, b := range backends(t) {
		if b.name == "postgres" {
			pg = &b
		}
	}
	if pg == nil {
		t.Skip("needs PostgreSQL: the keys must outlive a restart")
	}
	es := baseEnv(pg.env, map[string]string{"BFF_JWT_ALG": "ES256"})
	start(t, es).stop()

	rs := baseEnv(pg.env, map[string]string{"BFF_JWT_ALG": "RS256"})
	for rotations := 0; ; rotations++ {
		s := start(t, rs)
		out := s.out.String()
		s.stop()
		warned := edxWarning.MatchString(out)
		if want := rotations < 2; warned != want {
			t.Fatalf("after %d rotations: warned %v, want %v:\n%s", rotations, warned, want, out)
		}
		if rotations == 2 {
			break
		}
		if warned && !strings.Contains(out, "current signing key is ES256") {
			t.Errorf("the warning does not name the current key's algorithm:\n%s", out)
		}
		if _, err := cli(t, rs, "admin", "rotate-keys"); err != nil {
			t.Fatal(err)
		}
	}
}
