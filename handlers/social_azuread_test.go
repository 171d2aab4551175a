package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/social"
)

// TestSocialExchangeAzureAD: Microsoft sign-in (SPEC §7). The app's MSAL
// token for Graph User.Read is checked at Graph's /me and linked by its id;
// Graph refusing the token is invalid_grant, Graph failing or slow is 502
// provider_unavailable, an unknown identity is invalid_grant, a disabled
// user edX's 403, and a replayed token is answered from the cache. No
// token reaches a log line.
func TestSocialExchangeAzureAD(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			logs := &testkit.Buffer{}
			e := newSocialEnv(t, socialOptions{postgres: pg, log: logs, social: func(c *social.Config) { c.Timeout = time.Second }})
			const subject = "48d31887-5fad-4d73-a9f5-3c356e68a038" // a work account's object id
			u := e.User(t, "aiko")
			e.link(t, u, bff.ProviderAzureAD, subject)
			ms := e.microsoft
			var tokens []string
			exchange := func(token string, extra ...string) (int, map[string]any) {
				t.Helper()
				tokens = append(tokens, token)
				rec := e.exchange(bff.ProviderAzureAD, exchangeForm(token, extra...))
				if strings.Contains(rec.Body.String(), token) {
					t.Errorf("the answer repeats the Microsoft token")
				}
				return rec.Code, decodeBody(t, rec)
			}
			wantError := func(what string, status int, body map[string]any, wantStatus int, code, hint string) {
				t.Helper()
				desc, _ := body["error_description"].(string)
				if status != wantStatus || body["error"] != code || !strings.Contains(desc, hint) {
					t.Errorf("%s: %d %v, want %d %s with %q", what, status, body, wantStatus, code, hint)
				}
			}

			// A good token, with and without mail: the id links it.
			for _, g := range []fakesocial.Grant{{Subject: subject, Mail: "aiko@contoso.test"}, {Subject: subject}} {
				status, body := exchange(ms.IssueGrant(g), "token_type", "jwt")
				if status != http.StatusOK || body["token_type"] != "JWT" {
					t.Fatalf("good token (mail %q): %d %v", g.Mail, status, body)
				}
				claims, err := e.Validator.VerifyJWT(context.Background(), body["access_token"].(string))
				if err != nil || claims.Subject != u.Subject() || claims.GrantType != bff.GrantSocialExchange {
					t.Errorf("claims %+v, %v", claims, err)
				}
			}

			// Graph refuses the token: 401.
			status, body := exchange("EwBIA8l6BAAUnknown")
			wantError("graph 401", status, body, 400, "invalid_grant", "azuread-oauth2 token was not accepted")
			expired := ms.IssueGrant(fakesocial.Grant{Subject: subject, Expires: time.Now().Add(-time.Minute)})
			status, body = exchange(expired)
			wantError("expired", status, body, 400, "invalid_grant", "expired")

			// A Microsoft account linked to nobody, or linked under another backend.
			status, body = exchange(ms.Issue("0b8f2e9a4c3d1e77"))
			wantError("unknown identity", status, body, 400, "invalid_grant", "not linked")
			e.link(t, u, bff.ProviderGoogle, "google-only")
			status, body = exchange(ms.Issue("google-only"))
			wantError("identity of another provider", status, body, 400, "invalid_grant", "not linked")

			// Graph failing, then too slow: 502 with Retry-After.
			token := ms.Issue(subject)
			ms.Fail(http.StatusInternalServerError, `{"error":{"code":"generalException"}}`)
			rec := e.exchange(bff.ProviderAzureAD, exchangeForm(token))
			if rec.Code != http.StatusBadGateway || decodeOAuthErr(t, rec).Error != "provider_unavailable" || rec.Header().Get("Retry-After") == "" {
				t.Errorf("graph 500: %d %s %v", rec.Code, rec.Body, rec.Header())
			}
			ms.Fail(0, "")
			ms.Slow(10 * time.Second)
			start := time.Now()
			status, body = exchange(token)
			wantError("graph slow", status, body, http.StatusBadGateway, "provider_unavailable", "")
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the slow Graph held the request %s; the timeout is 1s", d)
			}
			ms.Slow(0)

			// The cache: a replayed token asks Graph once a minute at most;
			// a token Graph stops accepting fails once its answer expires.
			calls := ms.Calls()
			for i := range 3 {
				if status, body := exchange(token); status != http.StatusOK {
					t.Fatalf("replay %d: %d %v", i, status, body)
				}
				e.clock.set(time.Duration(i) * 20 * time.Second)
			}
			if n := ms.Calls() - calls; n != 1 {
				t.Errorf("%d Graph calls for 3 exchanges within a minute, want 1", n)
			}
			ms.Revoke(token)
			e.clock.set(61 * time.Second)
			status, body = exchange(token)
			wantError("revoked, a minute later", status, body, 400, "invalid_grant", "not accepted")
			if got := counterValue(e.Metrics.SocialVerifications.WithLabelValues(bff.ProviderAzureAD, "cached")); got != 2 {
				t.Errorf("bff_social_verifications_total{azuread-oauth2,cached} = %v, want 2", got)
			}
			e.clock.reset()

			// A disabled user: edX's body, exactly.
			if _, err := e.Admin.DisableUser(context.Background(), u.ID, "test"); err != nil {
				t.Fatal(err)
			}
			disabled := ms.Issue(subject)
			tokens = append(tokens, disabled)
			rec = e.exchange(bff.ProviderAzureAD, exchangeForm(disabled))
			const want = `{"error":"account_disabled","error_description":"user account is disabled","error_code":403}`
			if rec.Code != http.StatusForbidden || rec.Body.String() != want {
				t.Errorf("disabled user: %d %s, want 403 %s", rec.Code, rec.Body, want)
			}

			if leaks := ms.URLLeaks(); len(leaks) != 0 {
				t.Errorf("credentials in request URLs: %q", leaks)
			}
			out := logs.String()
			if !strings.Contains(out, "azuread-oauth2") {
				t.Fatalf("the exchanges are not in the debug log; the check below would prove nothing:\n%s", out)
			}
			for _, tok := range tokens {
				if strings.Contains(out, tok) {
					t.Errorf("a log line holds a Microsoft token %.8s…", tok)
				}
			}
		})
	}
}

// TestSocialExchangeGoogleAndroidToken: the Android app's Google token has
// the userinfo.email scope alone — no openid, no profile, so no name in
// Google's answers — and signs its user in, checked at tokeninfo (the
// Android client id in aud) and at userinfo alike.
func TestSocialExchangeGoogleAndroidToken(t *testing.T) {
	t.Parallel()
	for _, unchecked := range []bool{false, true} {
		e := newSocialEnv(t, socialOptions{unchecked: unchecked})
		u := e.User(t, "ravi")
		e.link(t, u, bff.ProviderGoogle, "110248495921238986420")
		token := e.google.IssueGrant(fakesocial.Grant{Subject: "110248495921238986420",
			Audience: androidClientID, Scope: fakesocial.GoogleEmailScope})
		rec := e.exchange(bff.ProviderGoogle, exchangeForm(token, "token_type", "jwt", "asymmetric_jwt", "true"))
		if rec.Code != http.StatusOK {
			t.Errorf("unchecked=%v: %d %s", unchecked, rec.Code, rec.Body)
			continue
		}
		claims, err := e.Validator.VerifyJWT(context.Background(), decodeBody(t, rec)["access_token"].(string))
		if err != nil || claims.Subject != u.Subject() {
			t.Errorf("unchecked=%v: claims %+v, %v", unchecked, claims, err)
		}
	}
}
