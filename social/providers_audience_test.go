package social

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
)

const androidClientID = "1040000000001-android.apps.googleusercontent.com"

func newTokeninfoProvider(g *fakesocial.Endpoint, now func() time.Time) *googleTokeninfoProvider {
	return &googleTokeninfoProvider{client: newProviderClient(time.Second), endpoint: g.CheckURL(),
		clientIDs: []string{fakesocial.GoogleClientID, androidClientID}, now: now}
}

func newDebugTokenProvider(f *fakesocial.Endpoint, secret string, now func() time.Time) *facebookDebugTokenProvider {
	return &facebookDebugTokenProvider{client: newProviderClient(time.Second), endpoint: f.CheckURL(),
		appID: fakesocial.FacebookAppID, appSecret: Redacted(secret), now: now}
}

// checkNoLeak fails when a verification's error or the fake's recorded URLs
// hold the token or the app secret.
func checkNoLeak(t *testing.T, fake *fakesocial.Endpoint, err error, token string) {
	t.Helper()
	if leaks := fake.URLLeaks(); len(leaks) != 0 {
		t.Errorf("credentials in request URLs: %q", leaks)
	}
	if err != nil && (strings.Contains(err.Error(), token) || strings.Contains(err.Error(), fakesocial.FacebookAppSecret)) {
		t.Errorf("the error quotes the token or the app secret: %v", err)
	}
}

func TestGoogleTokeninfoProvider(t *testing.T) {
	t.Parallel()
	ours, other := fakesocial.GoogleClientID, fakesocial.OtherGoogleClientID
	grant := func(aud, azp string) func(g *fakesocial.Endpoint) string {
		return func(g *fakesocial.Endpoint) string {
			return g.IssueGrant(fakesocial.Grant{Subject: "111", Audience: aud, AuthorizedParty: azp})
		}
	}
	tests := []struct {
		name   string
		token  func(g *fakesocial.Endpoint) string
		status int
		body   string
		want   string
		reason string
	}{
		{"our iOS app", func(g *fakesocial.Endpoint) string { return g.Issue("111") }, 0, "", "ok 111", ""},
		{"our Android app", grant(androidClientID, androidClientID), 0, "", "ok 111", ""},
		{"our Android app, userinfo.email only", func(g *fakesocial.Endpoint) string {
			return g.IssueGrant(fakesocial.Grant{Subject: "111", Audience: androidClientID, Scope: fakesocial.GoogleEmailScope})
		}, 0, "", "ok 111", ""},
		// tokeninfo's answer to the Android app's token: no openid scope, no name.
		{"literal answer, userinfo.email only", nil, 200, `{"azp":"` + androidClientID + `","aud":"` + androidClientID + `",` +
			`"sub":"110248495921238986420","scope":"https://www.googleapis.com/auth/userinfo.email","exp":"1793268000",` +
			`"expires_in":"3599","email":"ana@gmail.com","email_verified":"true","access_type":"online"}`, "ok 110248495921238986420", ""},
		{"aud ours, azp another app", grant(ours, other), 0, "", "ok 111", ""},
		{"azp ours, aud another app", grant(other, ours), 0, "", "ok 111", ""},
		{"another app (aud and azp)", grant(other, other), 0, "", "rejected", "not issued to this platform's apps"},
		{"another app (aud), azp unknown", grant(other, "-"), 0, "", "rejected", "not issued"},
		{"unknown token", func(*fakesocial.Endpoint) string { return "ya29.unknown" }, 0, "", "rejected", "invalid, expired or revoked"},
		{"expired token", func(g *fakesocial.Endpoint) string {
			return g.IssueGrant(fakesocial.Grant{Subject: "111", Expires: time.Now().Add(-time.Second)})
		}, 0, "", "rejected", "invalid, expired or revoked"},
		{"expires_in 0", nil, 200, `{"aud":"` + ours + `","sub":"1","expires_in":"0"}`, "rejected", "expired"},
		{"expires_in negative", nil, 200, `{"aud":"` + ours + `","sub":"1","expires_in":-5}`, "rejected", "expired"},
		{"expires_in missing", nil, 200, `{"aud":"` + ours + `","sub":"1"}`, "rejected", "expired"},
		{"expires_in as a number", nil, 200, `{"azp":"` + ours + `","sub":"222","expires_in":3599}`, "ok 222", ""},
		{"no sub", nil, 200, `{"aud":"` + ours + `","expires_in":"3599"}`, "rejected", "openid"},
		{"another app without sub", nil, 200, `{"aud":"` + other + `","expires_in":"3599"}`, "rejected", "not issued"},
		{"expires_in not a number", nil, 200, `{"aud":"` + ours + `","sub":"1","expires_in":"soon"}`, "unavailable", ""},
		{"not JSON", nil, 200, `<html>`, "unavailable", ""},
		{"401", nil, 401, `{}`, "rejected", ""},
		{"403", nil, 403, `{}`, "rejected", ""},
		{"429", nil, 429, `{}`, "unavailable", ""},
		{"500", nil, 500, ``, "unavailable", ""},
		{"503", nil, 503, ``, "unavailable", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := fakesocial.NewGoogle(t)
			token := "ya29.any"
			if tt.token != nil {
				token = tt.token(g)
			}
			g.Fail(tt.status, tt.body)
			now := time.Now()
			id, err := newTokeninfoProvider(g, func() time.Time { return now }).Verify(context.Background(), token)
			if got := verdict(id, err); got != tt.want {
				t.Fatalf("Verify = %q (%v), want %q", got, err, tt.want)
			}
			if tt.reason != "" && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("reason %q lacks %q", err, tt.reason)
			}
			if err == nil && tt.status == 0 {
				// The fake's tokens live an hour: the answer says so.
				if d := id.ExpiresAt.Sub(now); d < 59*time.Minute || d > time.Hour {
					t.Errorf("ExpiresAt is %s from now, want about an hour", d)
				}
			}
			checkNoLeak(t, g, err, token)
			if g.Calls() != 1 {
				t.Errorf("%d provider calls, want 1 (tokeninfo only, no userinfo)", g.Calls())
			}
		})
	}
}

func TestFacebookDebugTokenProvider(t *testing.T) {
	t.Parallel()
	appID := fakesocial.FacebookAppID
	tests := []struct {
		name   string
		token  func(f *fakesocial.Endpoint) string
		secret string // "" = the right one
		status int
		body   string
		want   string
		reason string
	}{
		{"our app", func(f *fakesocial.Endpoint) string { return f.Issue("10150") }, "", 0, "", "ok 10150", ""},
		{"another app", func(f *fakesocial.Endpoint) string { return f.IssueFor(fakesocial.OtherFacebookAppID, "10150") }, "", 0, "", "rejected", "not issued to this platform's app"},
		{"unknown token", func(*fakesocial.Endpoint) string { return "EAAbad" }, "", 0, "", "rejected", "not valid"},
		{"expired token", func(f *fakesocial.Endpoint) string {
			return f.IssueGrant(fakesocial.Grant{Subject: "10150", Expires: time.Now().Add(-time.Minute)})
		}, "", 0, "", "rejected", "expired"},
		{"page token of our app", func(f *fakesocial.Endpoint) string {
			return f.IssueGrant(fakesocial.Grant{Subject: "10150", Type: "PAGE"})
		}, "", 0, "", "rejected", "not a user access token"},
		{"wrong app secret", func(f *fakesocial.Endpoint) string { return f.Issue("10150") }, "not-the-secret", 0, "", "unavailable", "BFF_FACEBOOK_APP_SECRET"},
		{"valid but expires_at past", nil, "", 200, `{"data":{"app_id":"` + appID + `","type":"USER","is_valid":true,"user_id":"1","expires_at":1000}}`, "rejected", "expired"},
		{"never expires (expires_at 0)", nil, "", 200, `{"data":{"app_id":"` + appID + `","type":"USER","is_valid":true,"user_id":"77","expires_at":0}}`, "ok 77", ""},
		{"numeric ids", nil, "", 200, `{"data":{"app_id":` + appID + `,"is_valid":true,"user_id":78}}`, "ok 78", ""},
		{"no user_id", nil, "", 200, `{"data":{"app_id":"` + appID + `","type":"USER","is_valid":true}}`, "rejected", "does not identify"},
		{"no data", nil, "", 200, `{}`, "unavailable", ""},
		{"not JSON", nil, "", 200, `<html>`, "unavailable", ""},
		{"rate limited (4)", nil, "", 400, `{"error":{"code":4}}`, "unavailable", ""},
		{"transient", nil, "", 400, `{"error":{"code":999,"is_transient":true}}`, "unavailable", ""},
		{"app token refused (190)", nil, "", 400, `{"error":{"code":190}}`, "unavailable", "BFF_FACEBOOK_APP_ID"},
		{"bad parameter (100)", nil, "", 400, `{"error":{"code":100}}`, "unavailable", "error 100"},
		{"error in a 200", nil, "", 200, `{"error":{"code":100}}`, "unavailable", ""},
		{"400 without a body", nil, "", 400, ``, "unavailable", ""},
		{"302 without Location", nil, "", 302, ``, "unavailable", ""},
		{"500", nil, "", 500, `{"error":{"code":1}}`, "unavailable", ""},
		{"429", nil, "", 429, ``, "unavailable", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := fakesocial.NewFacebook(t)
			token := "EAAany"
			if tt.token != nil {
				token = tt.token(f)
			}
			f.Fail(tt.status, tt.body)
			secret := fakesocial.FacebookAppSecret
			if tt.secret != "" {
				secret = tt.secret
			}
			now := time.Now()
			id, err := newDebugTokenProvider(f, secret, func() time.Time { return now }).Verify(context.Background(), token)
			if got := verdict(id, err); got != tt.want {
				t.Fatalf("Verify = %q (%v), want %q", got, err, tt.want)
			}
			if tt.reason != "" && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("reason %q lacks %q", err, tt.reason)
			}
			if err == nil && tt.status == 0 {
				if d := id.ExpiresAt.Sub(now); d < 59*time.Minute || d > time.Hour {
					t.Errorf("ExpiresAt is %s from now, want about an hour", d)
				}
			}
			checkNoLeak(t, f, err, token)
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error quotes the configured secret: %v", err)
			}
		})
	}
}

// TestAudienceProvidersDown: a provider that cannot be reached, or is too
// slow, is unavailable (502), never a verdict on the token.
func TestAudienceProvidersDown(t *testing.T) {
	t.Parallel()
	down := fakesocial.UnreachableURL(t)
	g := &googleTokeninfoProvider{client: newProviderClient(time.Second), endpoint: down, clientIDs: []string{fakesocial.GoogleClientID}, now: time.Now}
	f := &facebookDebugTokenProvider{client: newProviderClient(time.Second), endpoint: down, appID: fakesocial.FacebookAppID,
		appSecret: fakesocial.FacebookAppSecret, now: time.Now}
	for name, p := range map[string]Provider{"google": g, "facebook": f} {
		_, err := p.Verify(context.Background(), "tok")
		if got := verdict(Identity{}, err); got != "unavailable" {
			t.Errorf("%s unreachable: %s", name, got)
		}
		if strings.Contains(err.Error(), fakesocial.FacebookAppSecret) || strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("%s: the error names the secret or the URL: %v", name, err)
		}
	}

	slow := fakesocial.NewFacebook(t)
	slow.Slow(10 * time.Second)
	p := newDebugTokenProvider(slow, fakesocial.FacebookAppSecret, time.Now)
	p.client = newProviderClient(100 * time.Millisecond)
	start := time.Now()
	if _, err := p.Verify(context.Background(), slow.Issue("1")); !strings.Contains(fmt.Sprint(err), "timed out") {
		t.Errorf("slow debug_token: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout did not cut the call short: %s", d)
	}
}

// TestAudienceAnswerCacheTTL: the answer of tokeninfo or debug_token is
// kept no longer than the token lives (expires_in, expires_at), and never
// beyond 60 s.
func TestAudienceAnswerCacheTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, backend := range []string{bff.ProviderGoogle, bff.ProviderFacebook} {
		for _, life := range []time.Duration{30 * time.Second, time.Hour} {
			t.Run(fmt.Sprintf("%s/%s", backend, life), func(t *testing.T) {
				t.Parallel()
				clock := newTestClock()
				var fake *fakesocial.Endpoint
				var p Provider
				if backend == bff.ProviderGoogle {
					fake = fakesocial.NewGoogle(t)
					p = newTokeninfoProvider(fake, clock.Now)
				} else {
					fake = fakesocial.NewFacebook(t)
					p = newDebugTokenProvider(fake, fakesocial.FacebookAppSecret, clock.Now)
				}
				// Whole seconds, as the providers answer; a second of slack
				// for expires_in, which Google counts down.
				token := fake.IssueGrant(fakesocial.Grant{Subject: "s", Expires: clock.Now().Add(life).Truncate(time.Second).Add(time.Second)})
				c := NewCache(clock.Now, nil)
				want := min(life, answerTTL)
				if _, _, err := c.Verify(ctx, backend, p, token); err != nil {
					t.Fatal(err)
				}
				clock.Add(want - 2*time.Second)
				if _, cached, _ := c.Verify(ctx, backend, p, token); !cached {
					t.Errorf("not cached %s later", want-2*time.Second)
				}
				clock.Add(3 * time.Second)
				if _, cached, _ := c.Verify(ctx, backend, p, token); cached {
					t.Errorf("still cached %s later: the bound is %s", want+time.Second, want)
				}
				if fake.Calls() != 2 {
					t.Errorf("%d provider calls, want 2", fake.Calls())
				}
			})
		}
	}
}

// TestProvidersDoNotFollowRedirects: every provider endpoint that answers
// a redirect — to a server that would vouch for the token — is a 502, and
// the redirect target is never asked: a token or the app secret must not
// follow a redirect, and a misconfigured or hijacked endpoint must not
// choose who vouches for tokens. Each case also runs with a client that
// follows redirects, to show the target would have said yes.
func TestProvidersDoNotFollowRedirects(t *testing.T) {
	t.Parallel()
	type setup struct {
		provider func(client *http.Client) Provider
		token    string
		redirect func(status int) // makes the origin redirect to the target
		target   func() int       // calls the target received
		post     bool             // the provider POSTs (a followed 302 becomes a GET without the body)
	}
	cases := map[string]func(t *testing.T) setup{
		"google userinfo": func(t *testing.T) setup {
			origin, target := fakesocial.NewGoogle(t), fakesocial.NewGoogle(t)
			return setup{
				provider: func(c *http.Client) Provider { return &googleProvider{client: c, endpoint: origin.URL()} },
				token:    target.Issue("111"),
				redirect: func(status int) { origin.Redirect(status, target.URL()) },
				target:   target.Calls,
			}
		},
		"google tokeninfo": func(t *testing.T) setup {
			origin, target := fakesocial.NewGoogle(t), fakesocial.NewGoogle(t)
			return setup{
				provider: func(c *http.Client) Provider {
					p := newTokeninfoProvider(origin, time.Now)
					p.client = c
					return p
				},
				token:    target.Issue("111"),
				redirect: func(status int) { origin.Redirect(status, target.CheckURL()) },
				target:   target.Calls,
				post:     true,
			}
		},
		"facebook /me": func(t *testing.T) setup {
			origin, target := fakesocial.NewFacebook(t), fakesocial.NewFacebook(t)
			return setup{
				provider: func(c *http.Client) Provider {
					p, err := newFacebookProvider(c, origin.URL())
					if err != nil {
						t.Fatal(err)
					}
					return p
				},
				token:    target.Issue("10150"),
				redirect: func(status int) { origin.Redirect(status, target.URL()+"?fields=id") },
				target:   target.Calls,
			}
		},
		"facebook debug_token": func(t *testing.T) setup {
			origin, target := fakesocial.NewFacebook(t), fakesocial.NewFacebook(t)
			return setup{
				provider: func(c *http.Client) Provider {
					p := newDebugTokenProvider(origin, fakesocial.FacebookAppSecret, time.Now)
					p.client = c
					return p
				},
				token:    target.Issue("10150"),
				redirect: func(status int) { origin.Redirect(status, target.CheckURL()) },
				target:   target.Calls,
				post:     true,
			}
		},
		"apple key set": func(t *testing.T) setup {
			origin := fakesocial.NewApple(t, "org.example.app")
			set := origin.KeySet()
			var calls int
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				calls++
				_, _ = w.Write(set)
			}))
			t.Cleanup(target.Close)
			return setup{
				provider: func(c *http.Client) Provider {
					return &appleProvider{client: c, jwksURL: origin.URL(), audiences: []string{"org.example.app"}, now: time.Now}
				},
				token:    origin.IDToken("001"),
				redirect: func(status int) { origin.Redirect(status, target.URL) },
				target:   func() int { return calls },
			}
		},
	}
	for name, mk := range cases {
		// 302 is what a misconfigured endpoint usually answers; 307 keeps
		// the method and the body, so that a POST would arrive whole.
		for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
			t.Run(fmt.Sprintf("%s/%d", name, status), func(t *testing.T) {
				s := mk(t)
				s.redirect(status)
				_, err := s.provider(newProviderClient(time.Second)).Verify(context.Background(), s.token)
				if got := verdict(Identity{}, err); got != "unavailable" {
					t.Errorf("redirect: %s (%v), want unavailable", got, err)
				}
				if n := s.target(); n != 0 {
					t.Errorf("the redirect was followed: the target got %d calls", n)
				}
				// Control: a client that follows redirects reaches the target
				// and, where the redirect keeps the request whole, gets a yes:
				// the assertions above can fail.
				following := &http.Client{Timeout: time.Second}
				got := verdict(s.provider(following).Verify(context.Background(), s.token))
				whole := status == http.StatusTemporaryRedirect || !s.post
				if s.target() == 0 || (whole && !strings.HasPrefix(got, "ok ")) {
					t.Errorf("control: a following client got %q after %d target calls; the test cannot tell", got, s.target())
				}
			})
		}
	}
}

func TestNewSocialAudienceChecks(t *testing.T) {
	t.Parallel()
	base := Config{GoogleUserinfoURL: "https://g.test/userinfo", GoogleTokeninfoURL: "https://g.test/tokeninfo",
		FacebookMeURL: "https://f.test/me", FacebookDebugTokenURL: "https://f.test/debug_token",
		AppleJWKSURL: "https://a.test/keys", AppleAudiences: []string{"org.example.app"}}
	// Microsoft Graph cannot tell the app: azuread-oauth2 never checks.
	azure := AudienceCheck{bff.ProviderAzureAD, false, azureADUnchecked}
	tests := []struct {
		name   string
		change func(*Config)
		want   []AudienceCheck
	}{
		{"nothing configured", nil, []AudienceCheck{
			{bff.ProviderGoogle, false, "set BFF_GOOGLE_CLIENT_IDS to the OAuth client ids of the platform's apps"},
			{bff.ProviderFacebook, false, "set BFF_FACEBOOK_APP_ID and BFF_FACEBOOK_APP_SECRET to the platform's Facebook app"},
			{bff.ProviderApple, true, ""},
		}},
		{"both configured", func(c *Config) {
			c.GoogleClientIDs = []string{" a.apps.googleusercontent.com, b.apps.googleusercontent.com "}
			c.FacebookAppID, c.FacebookAppSecret = "1", "s"
		}, []AudienceCheck{{bff.ProviderGoogle, true, ""}, {bff.ProviderFacebook, true, ""}, {bff.ProviderApple, true, ""}}},
		{"apple off, google checked", func(c *Config) {
			c.AppleAudiences = nil
			c.GoogleClientIDs = []string{"a.apps.googleusercontent.com"}
		}, []AudienceCheck{{bff.ProviderGoogle, true, ""},
			{bff.ProviderFacebook, false, "set BFF_FACEBOOK_APP_ID and BFF_FACEBOOK_APP_SECRET to the platform's Facebook app"}}},
		{"microsoft on, the others configured", func(c *Config) {
			c.GoogleClientIDs = []string{"a.apps.googleusercontent.com"}
			c.FacebookAppID, c.FacebookAppSecret = "1", "s"
			c.AzureADGraphMeURL = "https://m.test/v1.0/me"
		}, []AudienceCheck{{bff.ProviderGoogle, true, ""}, {bff.ProviderFacebook, true, ""}, {bff.ProviderApple, true, ""}, azure}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.change != nil {
				tt.change(&cfg)
			}
			soc, err := New(cfg, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			got := soc.AudienceChecks()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("AudienceChecks (-want +got):\n%s", diff)
			}
		})
	}
	// The checking providers are the ones used.
	cfg := base
	cfg.GoogleClientIDs = []string{"a.apps.googleusercontent.com"}
	cfg.FacebookAppID, cfg.FacebookAppSecret = "1", "s"
	soc, _ := New(cfg, time.Now)
	if _, ok := soc.providers[bff.ProviderGoogle].(*googleTokeninfoProvider); !ok {
		t.Errorf("google provider is %T", soc.providers[bff.ProviderGoogle])
	}
	if _, ok := soc.providers[bff.ProviderFacebook].(*facebookDebugTokenProvider); !ok {
		t.Errorf("facebook provider is %T", soc.providers[bff.ProviderFacebook])
	}
	// Half an app is refused rather than silently left unchecked.
	for _, half := range []Config{{FacebookAppID: "1"}, {FacebookAppSecret: "s"}} {
		if _, err := New(half, time.Now); err == nil || strings.Contains(err.Error(), "s\"") {
			t.Errorf("app id %q with secret set=%v: %v", half.FacebookAppID, half.FacebookAppSecret != "", err)
		}
	}
	// Checking configured without its endpoint disables rather than
	// falling back to the unchecked endpoint.
	cfg.GoogleTokeninfoURL, cfg.FacebookDebugTokenURL = "", ""
	soc, _ = New(cfg, time.Now)
	for _, b := range []string{bff.ProviderGoogle, bff.ProviderFacebook} {
		if _, on := soc.providers[b]; on || soc.disabled[b] == "" {
			t.Errorf("%s enabled without its checking endpoint", b)
		}
	}
}

// TestNewSocialRequireAudienceCheck: with RequireAudienceCheck (serve on
// PostgreSQL), a Google or Facebook backend that cannot check the audience
// is off, saying which variables turn it on, unless AcceptAnyApp names it;
// configured backends and Apple are unaffected.
func TestNewSocialRequireAudienceCheck(t *testing.T) {
	t.Parallel()
	base := Config{GoogleUserinfoURL: "https://g.test/userinfo", GoogleTokeninfoURL: "https://g.test/tokeninfo",
		FacebookMeURL: "https://f.test/me", FacebookDebugTokenURL: "https://f.test/debug_token",
		AppleJWKSURL: "https://a.test/keys", AppleAudiences: []string{"org.example.app"},
		AzureADGraphMeURL: "https://m.test/v1.0/me", RequireAudienceCheck: true}
	azure := AudienceCheck{bff.ProviderAzureAD, false, azureADUnchecked}
	tests := []struct {
		name     string
		change   func(*Config)
		withheld []string
		checks   []AudienceCheck
	}{
		{"nothing configured", nil, []string{bff.ProviderGoogle, bff.ProviderFacebook, bff.ProviderAzureAD},
			[]AudienceCheck{{bff.ProviderApple, true, ""}}},
		{"google opted in", func(c *Config) { c.AcceptAnyApp = []string{bff.ProviderGoogle} }, []string{bff.ProviderFacebook, bff.ProviderAzureAD},
			[]AudienceCheck{{bff.ProviderGoogle, false, "set BFF_GOOGLE_CLIENT_IDS to the OAuth client ids of the platform's apps"}, {bff.ProviderApple, true, ""}}},
		{"both opted in, one list entry", func(c *Config) { c.AcceptAnyApp = []string{"facebook, google-oauth2"} }, []string{bff.ProviderAzureAD},
			[]AudienceCheck{{bff.ProviderGoogle, false, "set BFF_GOOGLE_CLIENT_IDS to the OAuth client ids of the platform's apps"},
				{bff.ProviderFacebook, false, "set BFF_FACEBOOK_APP_ID and BFF_FACEBOOK_APP_SECRET to the platform's Facebook app"}, {bff.ProviderApple, true, ""}}},
		{"both configured", func(c *Config) {
			c.GoogleClientIDs = []string{"a.apps.googleusercontent.com"}
			c.FacebookAppID, c.FacebookAppSecret = "1", "s"
		}, []string{bff.ProviderAzureAD}, []AudienceCheck{{bff.ProviderGoogle, true, ""}, {bff.ProviderFacebook, true, ""}, {bff.ProviderApple, true, ""}}},
		// Microsoft has no configuration that checks: the opt-in is the
		// only way to turn it on.
		{"microsoft opted in", func(c *Config) {
			c.GoogleClientIDs = []string{"a.apps.googleusercontent.com"}
			c.FacebookAppID, c.FacebookAppSecret = "1", "s"
			c.AcceptAnyApp = []string{bff.ProviderAzureAD}
		}, nil, []AudienceCheck{{bff.ProviderGoogle, true, ""}, {bff.ProviderFacebook, true, ""}, {bff.ProviderApple, true, ""}, azure}},
		{"not required", func(c *Config) { c.RequireAudienceCheck = false }, nil,
			[]AudienceCheck{{bff.ProviderGoogle, false, "set BFF_GOOGLE_CLIENT_IDS to the OAuth client ids of the platform's apps"},
				{bff.ProviderFacebook, false, "set BFF_FACEBOOK_APP_ID and BFF_FACEBOOK_APP_SECRET to the platform's Facebook app"}, {bff.ProviderApple, true, ""}, azure}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.change != nil {
				tt.change(&cfg)
			}
			soc, err := New(cfg, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			svc := soc
			if diff := cmp.Diff(tt.withheld, svc.Withheld(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Withheld (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.checks, svc.AudienceChecks()); diff != "" {
				t.Errorf("AudienceChecks (-want +got):\n%s", diff)
			}
			for _, b := range tt.withheld {
				if _, on := soc.providers[b]; on {
					t.Errorf("%s withheld but enabled", b)
				}
				why := svc.Disabled()[b]
				wantVars := map[string][]string{
					bff.ProviderGoogle:   {"BFF_GOOGLE_CLIENT_IDS", "BFF_SOCIAL_ACCEPT_ANY_APP", "google-oauth2"},
					bff.ProviderFacebook: {"BFF_FACEBOOK_APP_ID", "BFF_FACEBOOK_APP_SECRET", "BFF_SOCIAL_ACCEPT_ANY_APP"},
					bff.ProviderAzureAD:  {"BFF_SOCIAL_ACCEPT_ANY_APP", "azuread-oauth2"},
				}[b]
				for _, v := range wantVars {
					if !strings.Contains(why, v) {
						t.Errorf("%s is off for %q, which does not name %s", b, why, v)
					}
				}
			}
		})
	}
}

// TestRedacted: the Facebook app secret never shows, however it is
// printed, logged or marshalled.
func TestRedacted(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-app-secret"
	cfg := Config{FacebookAppID: "1", FacebookAppSecret: secret}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		outs = append(outs, fmt.Sprintf(verb, cfg.FacebookAppSecret), fmt.Sprintf(verb, cfg))
	}
	outs = append(outs, fmt.Sprint(cfg), fmt.Sprintln(&cfg))
	cfg.Observe = nil
	j, err := json.Marshal(struct {
		FacebookAppID     string
		FacebookAppSecret Redacted
	}{cfg.FacebookAppID, cfg.FacebookAppSecret})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", cfg.FacebookAppSecret, "group", slog.GroupValue(slog.Any("s", cfg.FacebookAppSecret)))
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "secret", cfg.FacebookAppSecret)
	outs = append(outs, logs.String())
	for _, out := range outs {
		if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) {
			t.Errorf("the secret shows: %s", out)
		}
	}
	if !strings.Contains(string(j), `"FacebookAppSecret":"[redacted]"`) {
		t.Errorf("JSON: %s", j)
	}
	if cfg.FacebookAppSecret.Reveal() != secret {
		t.Error("Reveal does not return the secret")
	}
}

// BenchmarkProviderVerify is one uncached verification of a new token by
// each provider endpoint (a local fake over loopback HTTP): what an
// exchange costs on a cache miss, before and with the audience check.
func BenchmarkProviderVerify(b *testing.B) {
	g, f := fakesocial.NewGoogle(b), fakesocial.NewFacebook(b)
	client := newProviderClient(time.Second)
	me, err := newFacebookProvider(client, f.URL())
	if err != nil {
		b.Fatal(err)
	}
	tokeninfo := newTokeninfoProvider(g, time.Now)
	debugToken := newDebugTokenProvider(f, fakesocial.FacebookAppSecret, time.Now)
	tokeninfo.client, debugToken.client = client, client
	cases := []struct {
		name  string
		p     Provider
		issue func(string) string
	}{
		{"google/userinfo", &googleProvider{client: client, endpoint: g.URL()}, g.Issue},
		{"google/tokeninfo", tokeninfo, g.Issue},
		{"facebook/me", me, f.Issue},
		{"facebook/debug_token", debugToken, f.Issue},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				token := c.issue("s")
				b.StartTimer()
				if _, err := c.p.Verify(context.Background(), token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
