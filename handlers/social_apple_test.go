package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// TestSocialExchangeAppleNonce: with the raw nonce in the form field
// nonce, an Apple id_token is accepted only if its nonce claim is the
// nonce's SHA-256, on every request: an answer the cache holds for the
// token does not let someone who captured it, without the nonce, in.
// Without the field the exchange is as before (issue 13, #9).
func TestSocialExchangeAppleNonce(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			e := newSocialEnv(t, socialOptions{postgres: pg})
			u := e.User(t, "nina")
			e.link(t, u, bff.ProviderApple, "nina-apple")
			e.link(t, u, bff.ProviderGoogle, "nina-google")
			const raw = "kP3v9-Qx_2LmZ8rT5wYb1NcH7dJ4sFa6"
			token := e.apple.IDTokenWithNonce("nina-apple", raw)
			apple := func(extra ...string) (int, oauthErr) {
				t.Helper()
				rec := e.exchange(bff.ProviderApple, exchangeForm(token, extra...))
				if rec.Code == http.StatusOK {
					return rec.Code, oauthErr{}
				}
				got := decodeOAuthErr(t, rec)
				if strings.Contains(rec.Body.String(), raw) || strings.Contains(rec.Body.String(), fakesocial.NonceClaim(raw)) {
					t.Errorf("the answer repeats the nonce: %s", rec.Body)
				}
				return rec.Code, got
			}

			// The app that asked Apple for the token: accepted, and the
			// answer is cached.
			if code, got := apple("nonce", raw); code != 200 {
				t.Fatalf("the right nonce: %d %+v", code, got)
			}
			fetches := e.apple.Fetches()
			// A replay with another nonce, or with the hash itself, is
			// refused although the token's answer is cached.
			for _, wrong := range []string{"another-nonce", fakesocial.NonceClaim(raw), strings.ToUpper(raw)} {
				if code, got := apple("nonce", wrong); code != 400 || got.Error != "invalid_grant" || !strings.Contains(got.Description, "nonce") {
					t.Errorf("nonce %q: %d %+v, want 400 invalid_grant", wrong, code, got)
				}
			}
			if code, got := apple("nonce", raw); code != 200 {
				t.Errorf("the right nonce again (cached): %d %+v", code, got)
			}
			if n := counterValue(e.Metrics.SocialVerifications.WithLabelValues(bff.ProviderApple, "cached")); n != 4 {
				t.Errorf("cached answers %v, want 4: the nonce must be checked on cached answers", n)
			}
			// Without the field: as before the nonce existed.
			if code, got := apple(); code != 200 {
				t.Errorf("no nonce field: %d %+v", code, got)
			}
			if e.apple.Fetches() != fetches {
				t.Errorf("the key set was fetched again")
			}

			// A nonce sent for a token without a nonce claim: refused (it
			// could be any token of the user's).
			plain := e.apple.IDToken("nina-apple")
			rec := e.exchange(bff.ProviderApple, exchangeForm(plain, "nonce", raw))
			if got := decodeOAuthErr(t, rec); rec.Code != 400 || got.Error != "invalid_grant" || !strings.Contains(got.Description, "no nonce claim") {
				t.Errorf("token without nonce claim: %d %+v", rec.Code, got)
			}
			if rec := e.exchange(bff.ProviderApple, exchangeForm(plain)); rec.Code != 200 {
				t.Errorf("token without nonce claim, no nonce field: %d %s", rec.Code, rec.Body)
			}
			// The nonce is checked before the identity is looked up: an
			// unlinked account's token says nothing about linking.
			rec = e.exchange(bff.ProviderApple, exchangeForm(e.apple.IDTokenWithNonce("stranger", raw), "nonce", "x"))
			if got := decodeOAuthErr(t, rec); rec.Code != 400 || strings.Contains(got.Description, "linked") {
				t.Errorf("stranger with a wrong nonce: %d %+v", rec.Code, got)
			}
		})
	}
}

// TestSocialExchangeAppleNonceRequest: a nonce that cannot be checked is
// a 400 invalid_request, before any provider is asked.
func TestSocialExchangeAppleNonceRequest(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{})
	u := e.User(t, "omar")
	e.link(t, u, bff.ProviderGoogle, "omar-google")
	token := e.apple.IDTokenWithNonce("omar-apple", "n")
	twice := exchangeForm(token, "nonce", "n")
	twice.Add("nonce", "n")
	for _, tc := range []struct {
		name, backend string
		form          url.Values
		hint          string
	}{
		{"empty nonce", bff.ProviderApple, exchangeForm(token, "nonce", ""), "empty"},
		{"nonce twice", bff.ProviderApple, twice, "nonce is repeated"},
		{"nonce too long", bff.ProviderApple, exchangeForm(token, "nonce", strings.Repeat("n", oauth.MaxNonceLength+1)), "longer"},
		{"nonce for google", bff.ProviderGoogle, exchangeForm(e.google.Issue("omar-google"), "nonce", "n"), "apple-id only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.providerCalls()
			rec := e.exchange(tc.backend, tc.form)
			if got := decodeOAuthErr(t, rec); rec.Code != 400 || got.Error != "invalid_request" || !strings.Contains(got.Description, tc.hint) {
				t.Errorf("%d %+v, want 400 invalid_request with %q", rec.Code, got, tc.hint)
			}
			if e.providerCalls() != before {
				t.Error("a provider was asked")
			}
		})
	}
}

// TestSocialExchangeAppleAuthorizedParty: an id_token for several
// audiences is accepted only with an azp among BFF_APPLE_AUDIENCE.
func TestSocialExchangeAppleAuthorizedParty(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{})
	u := e.User(t, "pia")
	e.link(t, u, bff.ProviderApple, "pia-apple")
	token := func(aud any, azp string) string {
		c := e.apple.Claims("pia-apple", time.Now())
		c["aud"] = aud
		if azp != "" {
			c["azp"] = azp
		}
		return e.apple.Sign(e.apple.Current(), c)
	}
	for _, tc := range []struct {
		name   string
		token  string
		status int
		hint   string
	}{
		{"one audience", token(appleAudience, ""), 200, ""},
		{"several audiences, azp ours", token([]string{"com.attacker.app", appleAudience}, appleAudience), 200, ""},
		{"several audiences, no azp", token([]string{"com.attacker.app", appleAudience}, ""), 400, "azp"},
		{"several audiences, azp theirs", token([]string{"com.attacker.app", appleAudience}, "com.attacker.app"), 400, "azp"},
		{"one audience, azp theirs", token(appleAudience, "com.attacker.app"), 400, "azp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.exchange(bff.ProviderApple, url.Values{"client_id": {"app"}, "access_token": {tc.token}})
			if rec.Code != tc.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.status)
			}
			if tc.status != 200 {
				if got := decodeOAuthErr(t, rec); got.Error != "invalid_grant" || !strings.Contains(got.Description, tc.hint) {
					t.Errorf("%+v, want invalid_grant naming %q", got, tc.hint)
				}
			}
		})
	}
}
