package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// FuzzDPoPProof checks the DPoP proof checker on any header, method and
// path: it never panics, refuses with one of its two errors only, and
// what it accepts is a dpop+jwt JWS signed by the public key it carries,
// for this method, whose thumbprint is the one returned.
func FuzzDPoPProof(f *testing.F) {
	env := testenv.New(f, testenv.Options{})
	d := env.Validator.DPoP()
	key := testkit.NewDPoPKey(f)
	nonce := d.Nonce()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		good := key.Proof(f, method, testenv.Issuer+"/api/me", "", nonce)
		f.Add(good, method, "/api/me")
		f.Add(good, method, "/api/me/")
		f.Add(good+"x", method, "/api/me")
	}
	f.Add(key.SignWith(f, key.Claims(http.MethodGet, testenv.Issuer+"/api/me", "", nonce), "JWT", true), http.MethodGet, "/api/me")
	f.Add("a.b.c", http.MethodGet, "/")
	f.Add("", http.MethodGet, "/")
	f.Fuzz(func(t *testing.T, header, method, path string) {
		proof, err := d.Check(context.Background(), oauth.ProofRequest{Headers: []string{header}, Method: method, Path: path})
		if err != nil {
			if !errors.Is(err, bff.ErrInvalidDPoPProof) && !errors.Is(err, bff.ErrUseDPoPNonce) {
				t.Fatalf("Check(%q) error %v: neither invalid_dpop_proof nor use_dpop_nonce", header, err)
			}
			return
		}
		jws, err := jose.ParseSignedCompact(header, oauth.DPoPAlgorithms)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", header, err)
		}
		h := jws.Signatures[0].Protected
		if h.ExtraHeaders[jose.HeaderType] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
			t.Fatalf("accepted %q: header %+v", header, h)
		}
		payload, err := jws.Verify(h.JSONWebKey)
		if err != nil {
			t.Fatalf("accepted %q, whose signature does not verify by its jwk: %v", header, err)
		}
		if !strings.Contains(string(payload), `"htm":"`+method+`"`) {
			t.Fatalf("accepted %q for method %q: %s", header, method, payload)
		}
		if jkt, err := oauth.Thumbprint(*h.JSONWebKey); err != nil || jkt != proof.JKT {
			t.Fatalf("accepted %q: thumbprint %q, its key's %q (%v)", header, proof.JKT, jkt, err)
		}
	})
}
