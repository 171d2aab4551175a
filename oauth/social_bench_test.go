package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/social"
)

// BenchmarkSocialExchange is the whole social exchange through the HTTP
// handler: client check, provider verification, identity and user
// look-ups, issuance (format selection, one store write) and the response.
//
//	provider=google-oauth2             userinfo (no audience check)
//	provider=google-oauth2+tokeninfo   tokeninfo, aud/azp checked
//	provider=facebook+debug_token      debug_token, app_id checked
//	provider=apple-id                  the id_token checked locally
//	cache=hit   the same provider token every time: answered from the cache
//	cache=miss  a new provider token every time: the provider (a local
//	            fake over loopback HTTP) is called, or an Apple id_token's
//	            RS256 signature checked
func BenchmarkSocialExchange(b *testing.B) {
	for _, st := range benchStores {
		for _, provider := range []string{bff.ProviderGoogle, bff.ProviderGoogle + "+tokeninfo", bff.ProviderFacebook + "+debug_token", bff.ProviderApple} {
			for _, cache := range []string{"hit", "miss"} {
				for _, format := range []string{"bearer", "jwt"} {
					name := "store=" + st.name + "/provider=" + provider + "/cache=" + cache + "/format=" + format
					b.Run(name, func(b *testing.B) {
						benchSocialExchange(b, st.postgres, provider, cache == "hit", format)
					})
				}
			}
		}
	}
}

func benchSocialExchange(b *testing.B, postgres bool, variant string, hit bool, format string) {
	if postgres && os.Getenv(testdb.EnvVar) == "" {
		b.Skipf("%s is not set", testdb.EnvVar)
	}
	provider, check, _ := strings.Cut(variant, "+")
	google, facebook, apple := fakesocial.NewGoogle(b), fakesocial.NewFacebook(b), fakesocial.NewApple(b, "org.example.app")
	env := testenv.New(b, testenv.Options{Postgres: postgres, Cache: postgres, Config: func(c *oauth.Config) {
		c.Social = social.Config{GoogleUserinfoURL: google.URL(), FacebookDebugTokenURL: facebook.CheckURL(),
			FacebookAppID: fakesocial.FacebookAppID, FacebookAppSecret: fakesocial.FacebookAppSecret,
			AppleJWKSURL: apple.URL(), AppleAudiences: []string{"org.example.app"}}
		if check == "tokeninfo" {
			c.Social.GoogleTokeninfoURL, c.Social.GoogleClientIDs = google.CheckURL(), []string{fakesocial.GoogleClientID}
		}
	}})
	env.PublicClient(b, "mobile")
	u := env.User(b, "alice")
	if _, _, err := env.Admin.LinkIdentity(context.Background(), u.ID, provider, "alice-sub"); err != nil {
		b.Fatal(err)
	}
	n := 0
	token := func() string {
		switch provider {
		case bff.ProviderGoogle:
			return google.Issue("alice-sub")
		case bff.ProviderFacebook:
			return facebook.Issue("alice-sub")
		}
		// RS256 signatures are deterministic: a nonce makes each token new.
		n++
		claims := apple.Claims("alice-sub", time.Now())
		claims["nonce"] = strconv.Itoa(n) // a string, as Apple sends it: appleClaims reads one
		return apple.Sign(apple.Current(), claims)
	}
	path := "/oauth2/exchange_access_token/" + provider + "/"
	fixed := url.Values{"client_id": {"mobile"}, "access_token": {token()}, "token_type": {format}}.Encode()
	exchange := func(body string) {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		env.Public.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	exchange(fixed) // warm: keys fetched, first answer cached
	b.ReportAllocs()
	for b.Loop() {
		body := fixed
		if !hit {
			b.StopTimer()
			body = url.Values{"client_id": {"mobile"}, "access_token": {token()}, "token_type": {format}}.Encode()
			b.StartTimer()
		}
		exchange(body)
	}
}
