package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
	"github.com/openedx/mobile-auth-bff/internal/testdb"
)

// socialFakes are the fake providers of one end-to-end server.
type socialFakes struct {
	google, facebook, microsoft *fakesocial.Endpoint
	apple                       *fakesocial.Apple
}

func newSocialFakes(t *testing.T) socialFakes {
	return socialFakes{google: fakesocial.NewGoogle(t), facebook: fakesocial.NewFacebook(t),
		microsoft: fakesocial.NewMicrosoft(t), apple: fakesocial.NewApple(t, "org.example.app")}
}

// env points the server's providers at the fakes, the way an operator
// points them at the real ones, with the platform's apps configured so
// that only their tokens are accepted. Microsoft, which cannot check the
// app, is opted in: the only way to turn it on with PostgreSQL.
func (f socialFakes) env() map[string]string {
	env := f.uncheckedEnv()
	env["BFF_SOCIAL_ACCEPT_ANY_APP"] = "azuread-oauth2"
	env["BFF_GOOGLE_TOKENINFO_URL"] = f.google.CheckURL()
	env["BFF_GOOGLE_CLIENT_IDS"] = fakesocial.GoogleClientID + ", " + androidClientID
	env["BFF_FACEBOOK_DEBUG_TOKEN_URL"] = f.facebook.CheckURL()
	env["BFF_FACEBOOK_APP_ID"] = fakesocial.FacebookAppID
	env["BFF_FACEBOOK_APP_SECRET"] = fakesocial.FacebookAppSecret
	return env
}

// uncheckedEnv is env without the platform's Google and Facebook apps:
// SPEC §7's defaults, which accept tokens of any app.
func (f socialFakes) uncheckedEnv() map[string]string {
	return map[string]string{
		"BFF_GOOGLE_USERINFO_URL":  f.google.URL(),
		"BFF_FACEBOOK_ME_URL":      f.facebook.URL(),
		"BFF_APPLE_JWKS_URL":       f.apple.URL(),
		"BFF_APPLE_AUDIENCE":       "org.example.app, org.example.services",
		"BFF_AZUREAD_GRAPH_ME_URL": f.microsoft.URL(),
	}
}

const androidClientID = "1040000000001-android.apps.googleusercontent.com"

func (f socialFakes) token(backend, subject string) string {
	switch backend {
	case "google-oauth2":
		return f.google.Issue(subject)
	case "facebook":
		return f.facebook.Issue(subject)
	case "azuread-oauth2":
		return f.microsoft.Issue(subject)
	}
	return f.apple.IDToken(subject)
}

// TestE2ESocialExchange: link identities through the admin API, exchange
// each provider's token for both formats through the real binary, refresh,
// open a web session, and see a disabled account and a provider outage
// answered as SPEC §7 says.
func TestE2ESocialExchange(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		fakes := newSocialFakes(t)
		s := start(t, baseEnv(b.env, fakes.env(), map[string]string{"BFF_COOKIE_SECURE": "false"}))
		s.createMobileClient("app", nil)
		uid := s.createUser("olga")
		idPath := "/admin/users/" + itoa(uid) + "/identities"
		subjects := map[string]string{"google-oauth2": "10769150350006150715113082367", "facebook": "10158000000000001",
			"apple-id": "001234.0a1b2c3d4e5f60718293a4b5c6d7e8f9.1234", "azuread-oauth2": "48d31887-5fad-4d73-a9f5-3c356e68a038"}
		for backend, sub := range subjects {
			s.mustAdmin("POST", idPath, map[string]any{"provider": backend, "subject": sub}, http.StatusCreated)
		}
		if list := s.mustAdmin("GET", idPath, nil, 200)["identities"].([]any); len(list) != 4 {
			t.Fatalf("identities: %v", list)
		}

		for backend, sub := range subjects {
			for _, format := range []string{"bearer", "jwt"} {
				name := backend + "/" + format
				r := s.postForm("/oauth2/exchange_access_token/"+backend+"/", url.Values{
					"client_id": {"app"}, "access_token": {fakes.token(backend, sub)}, "token_type": {format}})
				if r.status != 200 {
					t.Fatalf("%s: %d %s", name, r.status, r.body)
				}
				body := r.json(t)
				at, rt := body["access_token"].(string), body["refresh_token"].(string)
				if format == "jwt" {
					header, claims := s.verifyJWT(at)
					if body["token_type"] != "JWT" || header.KeyID == "" || claims["grant_type"] != "social_exchange" ||
						claims["sub"] != itoa(uid) || claims["preferred_username"] != "olga" {
						t.Errorf("%s: token_type %v, claims %v", name, body["token_type"], claims)
					}
				} else if body["token_type"] != "Bearer" || !strings.HasPrefix(at, "ory_at_") {
					t.Errorf("%s: %v", name, body)
				}
				// The platform's own token works like any other.
				if me := s.get("/api/me", "Authorization", "Bearer "+at); me.status != 200 || me.json(t)["username"] != "olga" {
					t.Errorf("%s: /api/me %d %s", name, me.status, me.body)
				}
				if r := s.postForm("/oauth2/login", url.Values{}, "Authorization", "Bearer "+at); r.status != 204 {
					t.Errorf("%s: login %d %s", name, r.status, r.body)
				}
				r = s.postForm("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
					"refresh_token": {rt}, "token_type": {"jwt"}})
				if r.status != 200 {
					t.Fatalf("%s: refresh %d %s", name, r.status, r.body)
				}
				if _, claims := s.verifyJWT(r.json(t)["access_token"].(string)); claims["grant_type"] != "social_exchange" {
					t.Errorf("%s: refreshed grant_type %v", name, claims["grant_type"])
				}
			}
		}

		// The Services ID is an accepted audience too.
		claims := fakes.apple.Claims(subjects["apple-id"], time.Now())
		claims["aud"] = "org.example.services"
		if r := s.postForm("/oauth2/exchange_access_token/apple-id", url.Values{"client_id": {"app"},
			"access_token": {fakes.apple.Sign(fakes.apple.Current(), claims)}}); r.status != 200 {
			t.Errorf("Services ID audience: %d %s", r.status, r.body)
		}
		// An unknown identity, a provider outage.
		if r := s.postForm("/oauth2/exchange_access_token/google-oauth2/", url.Values{"client_id": {"app"},
			"access_token": {fakes.google.Issue("somebody-else")}}); r.status != 400 || r.json(t)["error"] != "invalid_grant" {
			t.Errorf("unknown identity: %d %s", r.status, r.body)
		}
		fakes.facebook.Fail(http.StatusInternalServerError, "")
		if r := s.postForm("/oauth2/exchange_access_token/facebook/", url.Values{"client_id": {"app"},
			"access_token": {"x"}}); r.status != 502 || r.json(t)["error"] != "provider_unavailable" {
			t.Errorf("facebook down: %d %s", r.status, r.body)
		}

		// Microsoft: the Android app's request (trailing slash), Graph's
		// refusals and failures, and a replay answered from the cache.
		msToken := fakes.microsoft.IssueGrant(fakesocial.Grant{Subject: subjects["azuread-oauth2"], Mail: "olga@contoso.test"})
		microsoft := func(token string) response {
			return s.postForm("/oauth2/exchange_access_token/azuread-oauth2/", url.Values{"client_id": {"app"},
				"access_token": {token}, "token_type": {"JWT"}, "asymmetric_jwt": {"true"}})
		}
		for i := range 2 {
			if r := microsoft(msToken); r.status != 200 || r.json(t)["token_type"] != "JWT" {
				t.Errorf("microsoft %d: %d %s", i, r.status, r.body)
			}
		}
		for name, tc := range map[string]struct {
			token  string
			status int
			code   string
		}{
			"unknown identity": {fakes.microsoft.Issue("0b8f2e9a4c3d1e77"), 400, "invalid_grant"},
			"graph 401":        {"EwBIA8l6BAAUnknown", 400, "invalid_grant"},
		} {
			if r := microsoft(tc.token); r.status != tc.status || r.json(t)["error"] != tc.code {
				t.Errorf("microsoft, %s: %d %s", name, r.status, r.body)
			}
		}
		fakes.microsoft.Fail(http.StatusServiceUnavailable, `{"error":{"code":"serviceNotAvailable"}}`)
		if r := microsoft(fakes.microsoft.Issue(subjects["azuread-oauth2"])); r.status != 502 || r.json(t)["error"] != "provider_unavailable" {
			t.Errorf("graph down: %d %s", r.status, r.body)
		}
		fakes.microsoft.Fail(0, "")
		if leaks := fakes.microsoft.URLLeaks(); len(leaks) != 0 {
			t.Errorf("microsoft: credentials in request URLs: %q", leaks)
		}

		// Disabled: edX's body, exactly.
		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/disable", nil, 200)
		r := s.postForm("/oauth2/exchange_access_token/google-oauth2/", url.Values{"client_id": {"app"},
			"access_token": {fakes.google.Issue(subjects["google-oauth2"])}})
		if want := `{"error":"account_disabled","error_description":"user account is disabled","error_code":403}`; r.status != 403 || strings.TrimSpace(string(r.body)) != want {
			t.Errorf("disabled: %d %s", r.status, r.body)
		}
		r = s.postForm("/oauth2/exchange_access_token/azuread-oauth2", url.Values{"client_id": {"app"},
			"access_token": {fakes.microsoft.Issue(subjects["azuread-oauth2"])}})
		if want := `{"error":"account_disabled","error_description":"user account is disabled","error_code":403}`; r.status != 403 || string(r.body) != want {
			t.Errorf("disabled, microsoft: %d %s", r.status, r.body)
		}

		metrics := do(t, "GET", s.admin+"/metrics", nil, nil)
		for _, want := range []string{`bff_social_verifications_total{backend="google-oauth2",result="ok"}`,
			`bff_social_verifications_total{backend="facebook",result="unavailable"} 1`,
			`bff_social_verifications_total{backend="azuread-oauth2",result="cached"} 1`,
			`bff_social_verifications_total{backend="azuread-oauth2",result="rejected"} 1`,
			`bff_social_verifications_total{backend="azuread-oauth2",result="unavailable"} 1`,
			`bff_tokens_issued_total{binding="none",client_id="app",format="jwt",grant_type="social_exchange"}`} {
			if !strings.Contains(string(metrics.body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// TestCLIIdentities: identities linked with the CLI work on a server on
// the same database, and unlinking with the CLI ends them at once.
func TestCLIIdentities(t *testing.T) {
	t.Parallel()
	fakes := newSocialFakes(t)
	env := baseEnv(map[string]string{"BFF_DATABASE_URL": testdb.URL(t)}, fakes.env())
	mustCLI(t, env, "admin", "create-client", "--id", "app", "--public", "--grant-types", "password,refresh_token")
	u := mustCLI(t, env, "admin", "create-user", "--username", "pia", "--email", "pia@example.com")
	uid := itoa(int64(u["id"].(float64)))
	id := mustCLI(t, env, "admin", "link-identity", uid, "--provider", "facebook", "--subject", "10150")
	if id["provider"] != "facebook" || id["subject"] != "10150" || id["user_id"] != u["id"] {
		t.Errorf("link-identity: %v", id)
	}
	mustCLI(t, env, "admin", "link-identity", uid, "--provider", "facebook", "--subject", "10150") // again: no change
	ms := mustCLI(t, env, "admin", "link-identity", uid, "--provider", "azuread-oauth2", "--subject", "48d31887-5fad-4d73-a9f5-3c356e68a038")
	if ms["provider"] != "azuread-oauth2" || ms["subject"] != "48d31887-5fad-4d73-a9f5-3c356e68a038" {
		t.Errorf("link-identity azuread-oauth2: %v", ms)
	}
	mustCLI(t, env, "admin", "unlink-identity", uid, "--provider", "azuread-oauth2", "--subject", "48d31887-5fad-4d73-a9f5-3c356e68a038")
	if list := mustCLI(t, env, "admin", "list-identities", uid)["identities"].([]any); len(list) != 1 {
		t.Errorf("list-identities: %v", list)
	}
	other := mustCLI(t, env, "admin", "create-user", "--username", "quin", "--email", "quin@example.com")
	if _, err := cli(t, env, "admin", "link-identity", itoa(int64(other["id"].(float64))), "--provider", "facebook", "--subject", "10150"); err == nil {
		t.Error("an identity was linked to a second user")
	}
	for _, args := range [][]string{
		{"link-identity", uid, "--provider", "myspace", "--subject", "1"},
		{"link-identity", uid, "--provider", "facebook"},
		{"unlink-identity", uid, "--provider", "facebook"},
		{"list-identities"},
	} {
		if _, err := cli(t, env, append([]string{"admin"}, args...)...); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}

	s := start(t, env)
	exchange := func() response {
		return s.postForm("/oauth2/exchange_access_token/facebook/", url.Values{"client_id": {"app"},
			"access_token": {fakes.facebook.Issue("10150")}})
	}
	if r := exchange(); r.status != 200 || r.json(t)["token_type"] != "Bearer" {
		t.Fatalf("exchange after a CLI link: %d %s", r.status, r.body)
	}
	mustCLI(t, env, "admin", "unlink-identity", uid, "--provider", "facebook", "--subject", "10150")
	if r := exchange(); r.status != 400 || r.json(t)["error"] != "invalid_grant" {
		t.Errorf("exchange after a CLI unlink: %d %s", r.status, r.body)
	}
}

// TestE2ESocialAudience: through the real binary on both stores, with the
// platform's Google client ids and Facebook app configured, a provider
// token another app obtained does not sign the user in, the platform's
// apps do, and neither a token nor the app secret shows in a log line;
// /metrics says every backend checks the audience and start-up warns of
// none but Microsoft's, which cannot check (opted in).
func TestE2ESocialAudience(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		fakes := newSocialFakes(t)
		s := start(t, baseEnv(b.env, fakes.env(), map[string]string{"BFF_LOG_LEVEL": "debug"}))
		s.createMobileClient("app", nil)
		uid := s.createUser("pat")
		for backend, sub := range map[string]string{"google-oauth2": "pat-g", "facebook": "pat-fb"} {
			s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/identities", map[string]any{"provider": backend, "subject": sub}, http.StatusCreated)
		}
		tests := []struct {
			name, backend, token string
			status               int
			hint                 string
		}{
			{"google, our iOS app", "google-oauth2", fakes.google.Issue("pat-g"), 200, ""},
			{"google, our Android app", "google-oauth2", fakes.google.IssueFor(androidClientID, "pat-g"), 200, ""},
			{"google, our Android app, userinfo.email only", "google-oauth2", fakes.google.IssueGrant(fakesocial.Grant{Subject: "pat-g",
				Audience: androidClientID, Scope: fakesocial.GoogleEmailScope}), 200, ""},
			{"google, azp ours", "google-oauth2", fakes.google.IssueGrant(fakesocial.Grant{Subject: "pat-g",
				Audience: fakesocial.OtherGoogleClientID, AuthorizedParty: fakesocial.GoogleClientID}), 200, ""},
			{"google, another app", "google-oauth2", fakes.google.IssueFor(fakesocial.OtherGoogleClientID, "pat-g"), 400, "not issued to this platform's apps"},
			{"facebook, our app", "facebook", fakes.facebook.Issue("pat-fb"), 200, ""},
			{"facebook, another app", "facebook", fakes.facebook.IssueFor(fakesocial.OtherFacebookAppID, "pat-fb"), 400, "not issued to this platform's app"},
			{"facebook, expired", "facebook", fakes.facebook.IssueGrant(fakesocial.Grant{Subject: "pat-fb", Expires: time.Now().Add(-time.Hour)}), 400, "expired"},
		}
		secrets := []string{fakesocial.FacebookAppSecret}
		for _, tt := range tests {
			secrets = append(secrets, tt.token)
			r := s.postForm("/oauth2/exchange_access_token/"+tt.backend+"/", url.Values{"client_id": {"app"}, "access_token": {tt.token}, "token_type": {"jwt"}})
			if r.status != tt.status {
				t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
				continue
			}
			body := r.json(t)
			if tt.status == 200 {
				if _, claims := s.verifyJWT(body["access_token"].(string)); claims["sub"] != itoa(uid) || claims["grant_type"] != "social_exchange" {
					t.Errorf("%s: claims %v", tt.name, claims)
				}
				continue
			}
			if body["error"] != "invalid_grant" || !strings.Contains(body["error_description"].(string), tt.hint) {
				t.Errorf("%s: %v, want invalid_grant with %q", tt.name, body, tt.hint)
			}
		}
		for name, f := range map[string]*fakesocial.Endpoint{"google": fakes.google, "facebook": fakes.facebook} {
			if leaks := f.URLLeaks(); len(leaks) != 0 {
				t.Errorf("%s: credentials in request URLs: %q", name, leaks)
			}
		}
		metrics := string(do(t, "GET", s.admin+"/metrics", nil, nil).body)
		for backend, want := range map[string]string{"google-oauth2": "1", "facebook": "1", "apple-id": "1", "azuread-oauth2": "0"} {
			if line := `bff_social_audience_checked{backend="` + backend + `"} ` + want; !strings.Contains(metrics, line) {
				t.Errorf("/metrics lacks %s", line)
			}
		}
		out := s.out.String()
		if n := strings.Count(out, "accepts tokens issued to any app"); n != 1 || !strings.Contains(out, `"backend":"azuread-oauth2","fix":"none: Microsoft Graph`) {
			t.Errorf("start-up warned %d times of backends accepting any app; want once, of azuread-oauth2:\n%s", n, out)
		}
		if !strings.Contains(out, "not issued to this platform") {
			t.Fatalf("the refusals are not in the debug log; the check below would prove nothing:\n%s", out)
		}
		for _, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("the log holds a token or the app secret %.8s…", secret)
			}
		}
	})
}

// TestE2ESocialAudienceUnchecked: without the platform's apps, start-up
// warns once per backend that accepts tokens of any app, /metrics shows 0
// for it, and such a token is accepted, as SPEC §7's defaults do.
func TestE2ESocialAudienceUnchecked(t *testing.T) {
	t.Parallel()
	fakes := newSocialFakes(t)
	s := start(t, baseEnv(fakes.uncheckedEnv()))
	s.createMobileClient("app", nil)
	uid := s.createUser("quin")
	s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/identities", map[string]any{"provider": "google-oauth2", "subject": "quin"}, http.StatusCreated)
	out := s.out.String()
	for backend, fix := range map[string]string{"google-oauth2": "BFF_GOOGLE_CLIENT_IDS", "facebook": "BFF_FACEBOOK_APP_ID",
		"azuread-oauth2": "Microsoft Graph cannot tell which app"} {
		var warned int
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "accepts tokens issued to any app") &&
				strings.Contains(line, `"backend":"`+backend+`"`) && strings.Contains(line, fix) {
				warned++
			}
		}
		if warned != 1 {
			t.Errorf("%s: %d start-up warnings naming %s, want 1:\n%s", backend, warned, fix, out)
		}
	}
	if n := strings.Count(out, "accepts tokens issued to any app"); n != 3 {
		t.Errorf("%d such warnings, want 3 (apple-id checks aud)", n)
	}
	metrics := string(do(t, "GET", s.admin+"/metrics", nil, nil).body)
	for backend, want := range map[string]string{"google-oauth2": "0", "facebook": "0", "apple-id": "1", "azuread-oauth2": "0"} {
		if line := `bff_social_audience_checked{backend="` + backend + `"} ` + want; !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	r := s.postForm("/oauth2/exchange_access_token/google-oauth2/", url.Values{"client_id": {"app"},
		"access_token": {fakes.google.IssueFor(fakesocial.OtherGoogleClientID, "quin")}})
	if r.status != 200 {
		t.Errorf("unchecked: another app's token %d %s", r.status, r.body)
	}
}

// TestE2ESocialAudienceRequired: on PostgreSQL (production), a Google or
// Facebook backend without its apps configured, and Microsoft's, which
// has none, is off — 400 invalid_request naming the variables to set, and
// a start-up warning — unless BFF_SOCIAL_ACCEPT_ANY_APP opts it in, which
// keeps SPEC §7's behaviour with its warning. Apple, which always checks,
// is unaffected.
// (On the in-memory store nothing changes: TestE2ESocialAudienceUnchecked.)
func TestE2ESocialAudienceRequired(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		optIn  string
		off    map[string][]string // backend → what its 400 names
		anyApp []string
	}{
		{"no opt-in", "", map[string][]string{
			"google-oauth2":  {"BFF_GOOGLE_CLIENT_IDS", "BFF_SOCIAL_ACCEPT_ANY_APP"},
			"facebook":       {"BFF_FACEBOOK_APP_ID", "BFF_FACEBOOK_APP_SECRET", "BFF_SOCIAL_ACCEPT_ANY_APP"},
			"azuread-oauth2": {"BFF_SOCIAL_ACCEPT_ANY_APP", "azuread-oauth2"},
		}, nil},
		{"google opted in", "google-oauth2", map[string][]string{
			"facebook":       {"BFF_FACEBOOK_APP_ID", "BFF_FACEBOOK_APP_SECRET", "BFF_SOCIAL_ACCEPT_ANY_APP"},
			"azuread-oauth2": {"BFF_SOCIAL_ACCEPT_ANY_APP", "azuread-oauth2"},
		}, []string{"google-oauth2"}},
		{"microsoft opted in", "azuread-oauth2", map[string][]string{
			"google-oauth2": {"BFF_GOOGLE_CLIENT_IDS", "BFF_SOCIAL_ACCEPT_ANY_APP"},
			"facebook":      {"BFF_FACEBOOK_APP_ID", "BFF_FACEBOOK_APP_SECRET", "BFF_SOCIAL_ACCEPT_ANY_APP"},
		}, []string{"azuread-oauth2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fakes := newSocialFakes(t)
			s := start(t, baseEnv(fakes.uncheckedEnv(), map[string]string{
				"BFF_DATABASE_URL": testdb.URL(t), "BFF_SOCIAL_ACCEPT_ANY_APP": tt.optIn}))
			s.createMobileClient("app", nil)
			uid := s.createUser("vera")
			subjects := map[string]string{"google-oauth2": "vera-g", "facebook": "vera-fb", "apple-id": "001234.vera.1234", "azuread-oauth2": "vera-ms"}
			for backend, sub := range subjects {
				s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/identities", map[string]any{"provider": backend, "subject": sub}, http.StatusCreated)
			}
			out := s.out.String()
			for backend, names := range subjects {
				token := fakes.token(backend, names)
				if backend == "google-oauth2" {
					token = fakes.google.IssueFor(fakesocial.OtherGoogleClientID, names) // another app's
				}
				r := s.postForm("/oauth2/exchange_access_token/"+backend+"/", url.Values{"client_id": {"app"}, "access_token": {token}})
				vars, off := tt.off[backend]
				if !off {
					if r.status != 200 {
						t.Errorf("%s: %d %s, want 200", backend, r.status, r.body)
					}
					continue
				}
				body := r.json(t)
				if r.status != 400 || body["error"] != "invalid_request" {
					t.Errorf("%s without its apps: %d %s, want 400 invalid_request", backend, r.status, r.body)
					continue
				}
				for _, v := range vars {
					if !strings.Contains(body["error_description"].(string), v) {
						t.Errorf("%s: %q does not name %s", backend, body["error_description"], v)
					}
				}
				var warned int
				for _, line := range strings.Split(out, "\n") {
					if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "social exchange backend off") &&
						strings.Contains(line, `"backend":"`+backend+`"`) && strings.Contains(line, vars[0]) {
						warned++
					}
				}
				if warned != 1 {
					t.Errorf("%s: %d start-up warnings that it is off, want 1:\n%s", backend, warned, out)
				}
			}
			if n := strings.Count(out, "accepts tokens issued to any app"); n != len(tt.anyApp) {
				t.Errorf("%d warnings of backends accepting any app, want %d", n, len(tt.anyApp))
			}
			metrics := string(do(t, "GET", s.admin+"/metrics", nil, nil).body)
			for _, backend := range tt.anyApp {
				if line := `bff_social_audience_checked{backend="` + backend + `"} 0`; !strings.Contains(metrics, line) {
					t.Errorf("/metrics lacks %s", line)
				}
			}
			for backend := range tt.off {
				if strings.Contains(metrics, `bff_social_audience_checked{backend="`+backend+`"}`) {
					t.Errorf("/metrics has a gauge for %s, which is off", backend)
				}
			}
		})
	}
}

// TestE2ESocialAppleBinding: Sign in with Apple through the real binary
// (issue 13, #9). The app sends the raw nonce whose SHA-256 it gave Apple;
// someone who captured the identityToken but not the nonce is refused,
// also while the token's answer is cached, and an id_token for several
// audiences needs azp to be one of BFF_APPLE_AUDIENCE. Without a nonce the
// exchange is as before. Neither the nonce nor its hash is logged.
func TestE2ESocialAppleBinding(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		fakes := newSocialFakes(t)
		s := start(t, baseEnv(b.env, fakes.env(), map[string]string{"BFF_LOG_LEVEL": "debug"}))
		s.createMobileClient("app", nil)
		uid := s.createUser("quinn")
		const sub, raw = "001234.quinn.5678", "Zr4-pQ9_xLw2Kt7bNv5Hs1Mc8Ja3Ye6D"
		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/identities", map[string]any{"provider": "apple-id", "subject": sub}, http.StatusCreated)
		captured := fakes.apple.IDTokenWithNonce(sub, raw)
		plain := fakes.apple.IDToken(sub)
		multi := func(azp string) string {
			c := fakes.apple.Claims(sub, time.Now())
			c["aud"] = []string{"com.attacker.app", "org.example.app"}
			if azp != "" {
				c["azp"] = azp
			}
			return fakes.apple.Sign(fakes.apple.Current(), c)
		}
		tests := []struct {
			name, token, nonce string // nonce "" = no nonce field
			status             int
			hint               string
		}{
			{"the app, with its nonce", captured, raw, 200, ""},
			{"replayed with another nonce (cached answer)", captured, "guessed-nonce", 400, "nonce"},
			{"replayed with the nonce claim itself", captured, fakesocial.NonceClaim(raw), 400, "nonce"},
			{"the app again", captured, raw, 200, ""},
			{"no nonce field: as before", captured, "", 200, ""},
			{"nonce sent, token without nonce claim", plain, raw, 400, "no nonce claim"},
			{"token without nonce claim, no nonce field", plain, "", 200, ""},
			{"several audiences, no azp", multi(""), "", 400, "azp"},
			{"several audiences, azp another app", multi("com.attacker.app"), "", 400, "azp"},
			{"several audiences, azp ours", multi("org.example.app"), "", 200, ""},
		}
		for _, tt := range tests {
			form := url.Values{"client_id": {"app"}, "access_token": {tt.token}, "token_type": {"jwt"}}
			if tt.nonce != "" {
				form.Set("nonce", tt.nonce)
			}
			r := s.postForm("/oauth2/exchange_access_token/apple-id/", form)
			if r.status != tt.status {
				t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
				continue
			}
			body := r.json(t)
			if tt.status == 200 {
				if _, claims := s.verifyJWT(body["access_token"].(string)); claims["sub"] != itoa(uid) || claims["grant_type"] != "social_exchange" {
					t.Errorf("%s: claims %v", tt.name, claims)
				}
				continue
			}
			if body["error"] != "invalid_grant" || !strings.Contains(body["error_description"].(string), tt.hint) {
				t.Errorf("%s: %v, want invalid_grant with %q", tt.name, body, tt.hint)
			}
		}
		// A nonce for a backend whose token has none is a request error.
		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/identities", map[string]any{"provider": "google-oauth2", "subject": "quinn-g"}, http.StatusCreated)
		r := s.postForm("/oauth2/exchange_access_token/google-oauth2/", url.Values{"client_id": {"app"},
			"access_token": {fakes.google.Issue("quinn-g")}, "nonce": {raw}})
		if r.status != 400 || r.json(t)["error"] != "invalid_request" {
			t.Errorf("nonce with google-oauth2: %d %s", r.status, r.body)
		}
		metrics := string(do(t, "GET", s.admin+"/metrics", nil, nil).body)
		if !strings.Contains(metrics, `bff_social_verifications_total{backend="apple-id",result="cached"}`) {
			t.Error("no cached Apple answer: the replays did not go through the cache, so the test proves less than it says")
		}
		out := s.out.String()
		for _, secret := range []string{raw, fakesocial.NonceClaim(raw), captured} {
			if strings.Contains(out, secret) {
				t.Errorf("the log holds the nonce, its hash or the id_token %.8s…", secret)
			}
		}
	})
}
