package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/social"
)

// TestSocialExchangeAudience: with the platform's Google client ids and
// Facebook app configured, a provider token obtained by another app —
// the token substitution of ADR 6 — is refused with invalid_grant, while
// the platform's own apps sign in; expired tokens and provider outages
// keep their answers. Neither the tokens nor the app secret reach a URL,
// an answer or a log line.
func TestSocialExchangeAudience(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			logs := &testkit.Buffer{}
			e := newSocialEnv(t, socialOptions{postgres: pg, log: logs})
			u := e.User(t, "uma")
			e.link(t, u, bff.ProviderGoogle, "uma-g")
			e.link(t, u, bff.ProviderFacebook, "uma-fb")
			ours, other := fakesocial.GoogleClientID, fakesocial.OtherGoogleClientID
			googleGrant := func(aud, azp string) string {
				return e.google.IssueGrant(fakesocial.Grant{Subject: "uma-g", Audience: aud, AuthorizedParty: azp})
			}
			expired := time.Now().Add(-time.Minute)
			tests := []struct {
				name    string
				backend string
				token   string
				status  int
				code    string
				hint    string
			}{
				{"google: our iOS app", bff.ProviderGoogle, e.google.Issue("uma-g"), 200, "", ""},
				{"google: our Android app", bff.ProviderGoogle, googleGrant(androidClientID, androidClientID), 200, "", ""},
				{"google: aud ours, azp another app", bff.ProviderGoogle, googleGrant(ours, other), 200, "", ""},
				{"google: azp ours, aud another app", bff.ProviderGoogle, googleGrant(other, ours), 200, "", ""},
				{"google: another app", bff.ProviderGoogle, e.google.IssueFor(other, "uma-g"), 400, "invalid_grant", "not issued to this platform's apps"},
				{"google: expired", bff.ProviderGoogle, e.google.IssueGrant(fakesocial.Grant{Subject: "uma-g", Expires: expired}), 400, "invalid_grant", "expired"},
				{"google: unknown", bff.ProviderGoogle, "ya29.unknown", 400, "invalid_grant", "not accepted"},
				{"facebook: our app", bff.ProviderFacebook, e.facebook.Issue("uma-fb"), 200, "", ""},
				{"facebook: another app", bff.ProviderFacebook, e.facebook.IssueFor(fakesocial.OtherFacebookAppID, "uma-fb"), 400, "invalid_grant", "not issued to this platform's app"},
				{"facebook: expired", bff.ProviderFacebook, e.facebook.IssueGrant(fakesocial.Grant{Subject: "uma-fb", Expires: expired}), 400, "invalid_grant", "expired"},
				{"facebook: page token", bff.ProviderFacebook, e.facebook.IssueGrant(fakesocial.Grant{Subject: "uma-fb", Type: "PAGE"}), 400, "invalid_grant", "user access token"},
				{"facebook: unknown", bff.ProviderFacebook, "EAAunknown", 400, "invalid_grant", "not valid"},
			}
			var tokens []string
			for _, tt := range tests {
				tokens = append(tokens, tt.token)
				rec := e.exchange(tt.backend, exchangeForm(tt.token))
				if rec.Code != tt.status {
					t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body, tt.status)
					continue
				}
				if strings.Contains(rec.Body.String(), tt.token) {
					t.Errorf("%s: the answer repeats the provider token", tt.name)
				}
				if tt.status == 200 {
					continue
				}
				got := decodeOAuthErr(t, rec)
				if got.Error != tt.code || !strings.Contains(got.Description, tt.hint) {
					t.Errorf("%s: %q %q, want %q with %q", tt.name, got.Error, got.Description, tt.code, tt.hint)
				}
			}
			// The token of another app stays refused: the refusal is not
			// cached, and neither is it turned into an acceptance.
			calls := e.google.Calls()
			if rec := e.exchange(bff.ProviderGoogle, exchangeForm(tests[4].token)); rec.Code != 400 || e.google.Calls() != calls+1 {
				t.Errorf("another app's token again: %d after %d calls", rec.Code, e.google.Calls()-calls)
			}
			if got := counterValue(e.Metrics.SocialVerifications.WithLabelValues(bff.ProviderGoogle, "rejected")); got != 4 {
				t.Errorf("google rejected verifications = %v, want 4", got)
			}

			// Only tokeninfo and debug_token were asked, never by URL.
			for name, f := range map[string]*fakesocial.Endpoint{"google": e.google, "facebook": e.facebook} {
				if leaks := f.URLLeaks(); len(leaks) != 0 {
					t.Errorf("%s: credentials in request URLs: %q", name, leaks)
				}
				for _, q := range f.Queries() {
					if q != "" {
						t.Errorf("%s: a request had a query %q", name, q)
					}
				}
			}
			out := logs.String()
			if !strings.Contains(out, "not issued to this platform") {
				t.Errorf("the refusals were not logged (debug); the log check below would prove nothing:\n%s", out)
			}
			for _, secret := range append(tokens, fakesocial.FacebookAppSecret) {
				if strings.Contains(out, secret) {
					t.Errorf("a log line holds a token or the app secret %.8s…", secret)
				}
			}
		})
	}
}

// TestSocialExchangeAudienceProviderTrouble: tokeninfo or debug_token
// down, slow or redirecting is 502 provider_unavailable; a wrong app
// secret is a 502 too (the platform's fault, not the user's), logged with
// the variables to check and without the secret.
func TestSocialExchangeAudienceProviderTrouble(t *testing.T) {
	t.Parallel()
	logs := &testkit.Buffer{}
	e := newSocialEnv(t, socialOptions{log: logs, social: func(c *social.Config) { c.Timeout = time.Second }})
	u := e.User(t, "vic")
	e.link(t, u, bff.ProviderGoogle, "vic")
	e.link(t, u, bff.ProviderFacebook, "vic")
	want502 := func(what string, backend, token string) {
		t.Helper()
		rec := e.exchange(backend, exchangeForm(token))
		if rec.Code != http.StatusBadGateway || decodeOAuthErr(t, rec).Error != "provider_unavailable" {
			t.Errorf("%s: %d %s", what, rec.Code, rec.Body)
		}
	}
	g, f := e.google.Issue("vic"), e.facebook.Issue("vic")
	e.google.Fail(http.StatusServiceUnavailable, `{}`)
	want502("tokeninfo 503", bff.ProviderGoogle, g)
	e.facebook.Fail(http.StatusInternalServerError, `{"error":{"code":2}}`)
	want502("debug_token 500", bff.ProviderFacebook, f)
	e.facebook.Fail(0, "")
	e.facebook.Slow(3 * time.Second)
	want502("debug_token slow", bff.ProviderFacebook, f)
	e.facebook.Slow(0)

	// A redirect to a server that would vouch for the token is not followed.
	vouch := fakesocial.NewGoogle(t)
	redirected := vouch.Issue("vic")
	e.google.Redirect(http.StatusTemporaryRedirect, vouch.CheckURL())
	want502("tokeninfo redirects", bff.ProviderGoogle, redirected)
	if vouch.Calls() != 0 {
		t.Errorf("the redirect was followed (%d calls)", vouch.Calls())
	}
	e.google.Fail(0, "")
	if rec := e.exchange(bff.ProviderGoogle, exchangeForm(g)); rec.Code != 200 {
		t.Errorf("tokeninfo back: %d %s", rec.Code, rec.Body)
	}

	// A service configured with a wrong app secret.
	wrong := newSocialEnv(t, socialOptions{log: logs, social: func(c *social.Config) { c.FacebookAppSecret = "wrong-secret-0001" }})
	wrong.link(t, wrong.User(t, "vic"), bff.ProviderFacebook, "vic")
	rec := wrong.exchange(bff.ProviderFacebook, exchangeForm(wrong.facebook.Issue("vic")))
	if rec.Code != http.StatusBadGateway || strings.Contains(rec.Body.String(), "wrong-secret") {
		t.Errorf("wrong app secret: %d %s", rec.Code, rec.Body)
	}
	out := logs.String()
	if !strings.Contains(out, "BFF_FACEBOOK_APP_SECRET") {
		t.Errorf("the log does not point at the app configuration:\n%s", out)
	}
	for _, secret := range []string{"wrong-secret-0001", fakesocial.FacebookAppSecret, g, f, redirected} {
		if strings.Contains(out, secret) {
			t.Errorf("a log line holds a token or a secret %.8s…", secret)
		}
	}
}

// TestSocialExchangeUncheckedAudience: without the platform's apps
// configured, the exchange works as SPEC §7's defaults say — userinfo and
// /me — and so accepts a token another app obtained; the service says so
// (AudienceChecks, which start-up logs as a warning and exports as
// bff_social_audience_checked). Configuring the apps closes it (above).
func TestSocialExchangeUncheckedAudience(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{unchecked: true})
	u := e.User(t, "wyn")
	e.link(t, u, bff.ProviderGoogle, "wyn")
	e.link(t, u, bff.ProviderFacebook, "wyn")
	for backend, token := range map[string]string{
		bff.ProviderGoogle:   e.google.IssueFor(fakesocial.OtherGoogleClientID, "wyn"),
		bff.ProviderFacebook: e.facebook.IssueFor(fakesocial.OtherFacebookAppID, "wyn"),
	} {
		if rec := e.exchange(backend, exchangeForm(token)); rec.Code != 200 {
			t.Errorf("%s, unchecked: another app's token %d %s", backend, rec.Code, rec.Body)
		}
	}
	got := map[string]bool{}
	for _, ac := range e.OAuth.AudienceChecks() {
		got[ac.Backend] = ac.Checked
	}
	if got[bff.ProviderGoogle] || got[bff.ProviderFacebook] || !got[bff.ProviderApple] {
		t.Errorf("AudienceChecks = %v", e.OAuth.AudienceChecks())
	}
	checked := newSocialEnv(t, socialOptions{})
	for _, ac := range checked.OAuth.AudienceChecks() {
		// Microsoft Graph cannot tell the app: no configuration checks it.
		if ac.Checked == (ac.Backend == bff.ProviderAzureAD) {
			t.Errorf("configured, %s checked = %v", ac.Backend, ac.Checked)
		}
	}
}
