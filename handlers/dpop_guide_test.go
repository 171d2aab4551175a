package handlers_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
)

// The tests below follow docs/dpop.md, the guide for the app developers,
// step by step: what it tells an app to do must work, and what it warns
// against must fail.

// appKey is a P-256 key with proofs made by hand, the way docs/dpop.md
// describes them (no JOSE library): the JWK from the two 32-byte
// coordinates, the header and claims as JSON, and an ECDSA signature that
// the platform returns DER-encoded and the guide converts to R||S.
type appKey struct{ priv *ecdsa.PrivateKey }

func newAppKey(t *testing.T) appKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return appKey{priv}
}

var b64 = base64.RawURLEncoding

// proof signs a proof for method and htu; accessToken "" at the token
// endpoint, nonce "" for none. raw false sends the DER signature as it
// comes from Android's Signature or SecKeyCreateSignature.
func (k appKey) proof(t *testing.T, method, htu, accessToken, nonce string, raw bool) string {
	t.Helper()
	ecdh, err := k.priv.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	point := ecdh.Bytes() // 0x04 || X || Y, each 32 bytes: x963Representation
	header := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": map[string]string{
		"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(point[1:33]), "y": b64.EncodeToString(point[33:65]),
	}}
	var id [16]byte
	_, _ = rand.Read(id[:])
	claims := map[string]any{"jti": b64.EncodeToString(id[:]), "htm": method, "htu": htu, "iat": time.Now().Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = b64.EncodeToString(sum[:])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	der, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := der
	if raw {
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64) // each left-padded to 32 bytes
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
	}
	return input + "." + b64.EncodeToString(sig)
}

// TestDPoPGuide walks docs/dpop.md: the first token request learns the
// nonce from use_dpop_nonce, a signed-in app without DPoP binds its
// session at its next refresh, the latest DPoP-Nonce is kept, htu is the
// exact URL called, and a DER signature is refused.
func TestDPoPGuide(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := newDPoPEnv(t, pg)
		key := newAppKey(t)

		// An app signed in before it had DPoP: an unbound pair.
		plain := env.Token(t, testenv.PasswordForm("mobile", "dora"))
		refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"mobile"},
			"refresh_token": {plain["refresh_token"].(string)}}

		// Its first proof has no nonce: 400 use_dpop_nonce with DPoP-Nonce,
		// and the refresh token is not used up by it.
		rec := env.send(http.MethodPost, "/oauth2/access_token/", refresh,
			"DPoP", key.proof(t, http.MethodPost, testenv.Issuer+"/oauth2/access_token/", "", "", true))
		nonce := rec.Header().Get("DPoP-Nonce")
		if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "use_dpop_nonce" || nonce == "" {
			t.Fatalf("first proof without nonce: %d %s %q, want 400 use_dpop_nonce with DPoP-Nonce", rec.Code, rec.Body, nonce)
		}

		// A DER signature, as the platforms return it, is refused.
		rec = env.send(http.MethodPost, "/oauth2/access_token/", refresh,
			"DPoP", key.proof(t, http.MethodPost, testenv.Issuer+"/oauth2/access_token/", "", nonce, false))
		if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "invalid_dpop_proof" {
			t.Fatalf("DER signature: %d %s, want 400 invalid_dpop_proof", rec.Code, rec.Body)
		}
		// htu is the URL called, trailing slash included.
		rec = env.send(http.MethodPost, "/oauth2/access_token/", refresh,
			"DPoP", key.proof(t, http.MethodPost, testenv.Issuer+"/oauth2/access_token", "", nonce, true))
		if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "invalid_dpop_proof" {
			t.Fatalf("htu without the called path's slash: %d %s, want 400 invalid_dpop_proof", rec.Code, rec.Body)
		}

		// The retry with the nonce binds the session: DPoP token_type, and
		// the new refresh token is bound to the key.
		rec = env.send(http.MethodPost, "/oauth2/access_token/", refresh,
			"DPoP", key.proof(t, http.MethodPost, testenv.Issuer+"/oauth2/access_token/", "", nonce, true))
		if rec.Code != http.StatusOK {
			t.Fatalf("refresh of an unbound session with a proof: %d %s", rec.Code, rec.Body)
		}
		var bound map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &bound); err != nil {
			t.Fatal(err)
		}
		if bound["token_type"] != "DPoP" {
			t.Fatalf("token_type = %v, want DPoP", bound["token_type"])
		}
		if n := rec.Header().Get("DPoP-Nonce"); n != "" {
			nonce = n // keep the latest
		} else {
			t.Error("a token answer to a DPoP request has no DPoP-Nonce")
		}
		access := bound["access_token"].(string)
		if in := env.introspect(t, access); in["token_type"] != "DPoP" {
			t.Errorf("introspection of the refreshed token: %v", in)
		}

		// Resource calls: Authorization: DPoP and a proof with ath.
		rec = env.send(http.MethodGet, "/api/mobile/v0.5/my_user_info", nil, "Authorization", "DPoP "+access,
			"DPoP", key.proof(t, http.MethodGet, testenv.Issuer+"/api/mobile/v0.5/my_user_info", access, nonce, true))
		if rec.Code != http.StatusOK {
			t.Fatalf("my_user_info with the guide's proof: %d %s", rec.Code, rec.Body)
		}
		wantDPoPRejection(t, "proof without ath",
			env.send(http.MethodGet, "/api/me", nil, "Authorization", "DPoP "+access,
				"DPoP", key.proof(t, http.MethodGet, meURL, "", nonce, true)),
			"invalid_dpop_proof", "invalid_dpop_proof")

		// From now on the refresh token needs a proof by the key.
		refresh.Set("refresh_token", bound["refresh_token"].(string))
		rec = env.send(http.MethodPost, "/oauth2/access_token/", refresh)
		if rec.Code != http.StatusBadRequest || decodeOAuthErr(t, rec).Error != "invalid_dpop_proof" {
			t.Fatalf("bound refresh token without proof: %d %s, want 400 invalid_dpop_proof", rec.Code, rec.Body)
		}
		rec = env.send(http.MethodPost, "/oauth2/access_token/", refresh,
			"DPoP", key.proof(t, http.MethodPost, testenv.Issuer+"/oauth2/access_token/", "", nonce, true))
		if rec.Code != http.StatusOK {
			t.Fatalf("bound refresh with its key: %d %s", rec.Code, rec.Body)
		}
	})
}
