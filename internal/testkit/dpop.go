package testkit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DPoPKey is the key pair of a DPoP client (RFC 9449), as an app keeps
// one in the Secure Enclave or the Android Keystore: ES256 on P-256. It
// makes proofs the way a client library does, and proofs that break one
// rule each for the negative tests.
type DPoPKey struct {
	priv *ecdsa.PrivateKey
	// JKT is the key's RFC 7638 thumbprint: the cnf.jkt of tokens bound to it.
	JKT string
}

// NewDPoPKey makes a fresh key.
func NewDPoPKey(tb testing.TB) *DPoPKey {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: &priv.PublicKey}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	return &DPoPKey{priv: priv, JKT: base64.RawURLEncoding.EncodeToString(tp)}
}

// ProofClaims are the claims of one proof; Proof fills the usual ones.
type ProofClaims struct {
	JTI   string `json:"jti,omitempty"`
	HTM   string `json:"htm,omitempty"`
	HTU   string `json:"htu,omitempty"`
	IAT   int64  `json:"iat,omitempty"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// Proof is a proof for a request: method and URL, the hash of the access
// token it presents (none at the token endpoint), the server's nonce
// ("" for none), issued now with a fresh jti.
func (k *DPoPKey) Proof(tb testing.TB, method, url, accessToken, nonce string) string {
	tb.Helper()
	return k.Sign(tb, k.Claims(method, url, accessToken, nonce))
}

// Claims are the claims Proof would sign, for a test to change one.
func (k *DPoPKey) Claims(method, url, accessToken, nonce string) ProofClaims {
	c := ProofClaims{JTI: randomJTI(), HTM: method, HTU: url, IAT: time.Now().Unix(), Nonce: nonce}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return c
}

// Sign signs claims as a proof: typ dpop+jwt, ES256, the public key in jwk.
func (k *DPoPKey) Sign(tb testing.TB, claims ProofClaims) string {
	tb.Helper()
	return k.SignWith(tb, claims, "dpop+jwt", true)
}

// SignWith signs claims with the given typ, embedding the public key when
// embed is true (a proof without jwk is refused).
func (k *DPoPKey) SignWith(tb testing.TB, claims ProofClaims, typ string, embed bool) string {
	tb.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: embed}).WithType(jose.ContentType(typ))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func randomJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
