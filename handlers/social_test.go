package handlers_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/social"
	"github.com/openedx/mobile-auth-bff/store"
)

const (
	appleAudience   = "org.example.app"
	androidClientID = "1040000000001-android.apps.googleusercontent.com"
)

// socialEnv is a service whose providers are local fakes, with a public
// client "app" and a movable clock.
type socialEnv struct {
	*testenv.Env
	google, facebook, microsoft *fakesocial.Endpoint
	apple                       *fakesocial.Apple
	clock                       *clock
}

type socialOptions struct {
	postgres bool
	wrap     func(store.Store) store.Store
	social   func(*social.Config)
	// unchecked leaves out the platform's Google client ids and Facebook
	// app: Google and Facebook tokens of any app are accepted (userinfo,
	// /me), as SPEC §7's defaults do.
	unchecked bool
	log       io.Writer
}

func newSocialEnv(t testing.TB, o socialOptions) *socialEnv {
	t.Helper()
	e := &socialEnv{google: fakesocial.NewGoogle(t), facebook: fakesocial.NewFacebook(t), microsoft: fakesocial.NewMicrosoft(t),
		apple: fakesocial.NewApple(t, appleAudience), clock: &clock{}}
	e.Env = testenv.New(t, testenv.Options{Postgres: o.postgres, Cache: o.postgres, Wrap: o.wrap, Log: o.log, LogLevel: slog.LevelDebug, Config: func(c *oauth.Config) {
		c.Now = e.clock.now
		c.Social = social.Config{GoogleUserinfoURL: e.google.URL(), FacebookMeURL: e.facebook.URL(),
			AppleJWKSURL: e.apple.URL(), AppleAudiences: []string{appleAudience}, AzureADGraphMeURL: e.microsoft.URL()}
		if !o.unchecked {
			c.Social.GoogleTokeninfoURL, c.Social.GoogleClientIDs = e.google.CheckURL(), []string{fakesocial.GoogleClientID, androidClientID}
			c.Social.FacebookDebugTokenURL = e.facebook.CheckURL()
			c.Social.FacebookAppID, c.Social.FacebookAppSecret = fakesocial.FacebookAppID, fakesocial.FacebookAppSecret
		}
		if o.social != nil {
			o.social(&c.Social)
		}
	}})
	e.PublicClient(t, "app")
	return e
}

// link links a provider account to a user through the admin service.
func (e *socialEnv) link(t testing.TB, u bff.User, provider, subject string) {
	t.Helper()
	if _, _, err := e.Admin.LinkIdentity(context.Background(), u.ID, provider, subject); err != nil {
		t.Fatal(err)
	}
}

// providerToken returns a good token of backend for subject.
func (e *socialEnv) providerToken(backend, subject string) string {
	switch backend {
	case bff.ProviderGoogle:
		return e.google.Issue(subject)
	case bff.ProviderFacebook:
		return e.facebook.Issue(subject)
	case bff.ProviderAzureAD:
		return e.microsoft.Issue(subject)
	}
	return e.apple.IDToken(subject)
}

func (e *socialEnv) providerCalls() int {
	return e.google.Calls() + e.facebook.Calls() + e.microsoft.Calls() + e.apple.Fetches()
}

func (e *socialEnv) exchange(backend string, form url.Values, header ...string) *httptest.ResponseRecorder {
	return e.Post("/oauth2/exchange_access_token/"+backend+"/", form, header...)
}

func exchangeForm(token string, extra ...string) url.Values {
	f := url.Values{"client_id": {"app"}, "access_token": {token}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not JSON (%d): %s", rec.Code, rec.Body)
	}
	return m
}

var socialBackends = []string{bff.ProviderGoogle, bff.ProviderFacebook, bff.ProviderApple, bff.ProviderAzureAD}

// TestSocialExchange: each provider's token becomes this service's tokens
// of either format, for the linked user, recorded as social_exchange; the
// refresh token works and keeps the grant; the tokens open a web session.
func TestSocialExchange(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			e := newSocialEnv(t, socialOptions{postgres: pg})
			u := e.User(t, "sofia")
			e.User(t, "other") // a second account, so that the right one must be found
			ctx := context.Background()
			v := e.Validator
			for _, backend := range socialBackends {
				subject := "sub-" + backend
				e.link(t, u, backend, subject)
				for _, format := range []string{"bearer", "jwt"} {
					name := backend + "/" + format
					path := "/oauth2/exchange_access_token/" + backend + "/"
					if format == "jwt" {
						path = strings.TrimSuffix(path, "/") // the route without the slash too
					}
					rec := e.Post(path, exchangeForm(e.providerToken(backend, subject), "token_type", format))
					if rec.Code != http.StatusOK {
						t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
					}
					if rec.Header().Get("Cache-Control") != "no-store" {
						t.Errorf("%s: Cache-Control = %q", name, rec.Header().Get("Cache-Control"))
					}
					body := decodeBody(t, rec)
					at, _ := body["access_token"].(string)
					rt, _ := body["refresh_token"].(string)
					wantType := map[string]string{"bearer": "Bearer", "jwt": "JWT"}[format]
					if body["token_type"] != wantType || (format == "jwt") != jwtShape.MatchString(at) || !strings.HasPrefix(rt, "ory_rt_") {
						t.Errorf("%s: response %v", name, body)
					}
					if body["scope"] != "read email profile payments" {
						t.Errorf("%s: scope %v, want every scope of the client", name, body["scope"])
					}
					p, err := v.Validate(ctx, oauth.Credential{Scheme: oauth.SchemeBearer, Token: at})
					if err != nil || p.User == nil || p.User.ID != u.ID || p.GrantType != bff.GrantSocialExchange || p.Client.ID != "app" {
						t.Fatalf("%s: principal %+v, %v", name, p, err)
					}
					if format == "jwt" {
						claims, err := v.VerifyJWT(ctx, at)
						if err != nil || claims.GrantType != bff.GrantSocialExchange || claims.Subject != u.Subject() || claims.PreferredUsername != "sofia" {
							t.Errorf("%s: claims %+v, %v", name, claims, err)
						}
					}

					// Refresh: a new pair, still social_exchange; the format may change.
					rec = e.Post("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
						"refresh_token": {rt}, "token_type": {"jwt"}})
					if rec.Code != http.StatusOK {
						t.Fatalf("%s: refresh %d %s", name, rec.Code, rec.Body)
					}
					refreshed := decodeBody(t, rec)["access_token"].(string)
					if claims, err := v.VerifyJWT(ctx, refreshed); err != nil || claims.GrantType != bff.GrantSocialExchange {
						t.Errorf("%s: refreshed token grant %q, %v", name, claims.GrantType, err)
					}

					// The token opens a web session (SPEC §6, ADR 6), and /api/me knows the user.
					if rec := e.Post("/oauth2/login", url.Values{}, "Authorization", "Bearer "+at); rec.Code != http.StatusNoContent {
						t.Errorf("%s: login %d %s", name, rec.Code, rec.Body)
					}
					me := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
					req.Header.Set("Authorization", wantType+" "+at)
					e.Public.ServeHTTP(me, req)
					if me.Code != 200 || decodeBody(t, me)["username"] != "sofia" {
						t.Errorf("%s: /api/me %d %s", name, me.Code, me.Body)
					}
				}
			}
			// Per backend: one Bearer exchange and one JWT exchange; the two
			// refreshes to JWT count as refreshes (the label is how a token
			// was obtained, ADR 11).
			for _, c := range []struct {
				format, grant string
				want          float64
			}{{"bearer", bff.GrantSocialExchange, 4}, {"jwt", bff.GrantSocialExchange, 4}, {"jwt", bff.GrantRefreshToken, 8}} {
				if n := counterValue(e.Metrics.TokensIssued.WithLabelValues("app", c.format, c.grant, bff.BindingNone)); n != c.want {
					t.Errorf("bff_tokens_issued_total{format=%s,grant_type=%s} = %v, want %v", c.format, c.grant, n, c.want)
				}
			}
		})
	}
}

// TestSocialExchangeFormatSelection: the exchange selects the format by the
// token endpoint's rules (SPEC §5), for every kind of client and request.
func TestSocialExchangeFormatSelection(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{})
	u := e.User(t, "fran")
	e.link(t, u, bff.ProviderGoogle, "fran-google")
	clients := map[string]func(*admin.NewClient){
		"plain":      func(*admin.NewClient) {},
		"jwt-client": func(c *admin.NewClient) { c.TokenType = bff.FormatJWT },
		"restricted": func(c *admin.NewClient) { c.Restricted = true },
		"killswitch": func(c *admin.NewClient) { off := false; c.JWTEnabled = &off },
		"rollout":    func(c *admin.NewClient) { c.JWTRolloutPercent = 100 },
	}
	for id, mutate := range clients {
		e.PublicClient(t, id, mutate)
	}
	requests := []struct {
		name   string
		extra  []string
		header []string
	}{
		{"nothing", nil, nil},
		{"token_type=jwt", []string{"token_type", "jwt"}, nil},
		{"token_type=bearer", []string{"token_type", "bearer"}, nil},
		{"X-Token-Type: jwt", nil, []string{"X-Token-Type", "jwt"}},
		{"asymmetric_jwt", []string{"asymmetric_jwt", "true"}, nil},
		{"token_type wins over the header", []string{"token_type", "bearer"}, []string{"X-Token-Type", "jwt"}},
	}
	for id := range clients {
		for _, r := range requests {
			pw := testenv.PasswordForm(id, "fran", r.extra...)
			want := e.Post("/oauth2/access_token", pw, r.header...)
			form := exchangeForm(e.google.Issue("fran-google"), append([]string{"client_id", id}, r.extra...)...)
			got := e.exchange(bff.ProviderGoogle, form, r.header...)
			if want.Code != 200 || got.Code != 200 {
				t.Fatalf("%s/%s: password %d, exchange %d %s", id, r.name, want.Code, got.Code, got.Body)
			}
			if w, g := decodeBody(t, want)["token_type"], decodeBody(t, got)["token_type"]; w != g {
				t.Errorf("%s/%s: token endpoint gives %v, exchange gives %v", id, r.name, w, g)
			}
		}
	}
}

// TestSocialExchangeErrors: every failure has its documented status and
// RFC 6749 code (SPEC §7), and requests the client side gets wrong never
// reach a provider.
func TestSocialExchangeErrors(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{})
	u := e.User(t, "gus")
	for _, b := range socialBackends {
		e.link(t, u, b, "gus-"+b)
	}
	_, secret := e.ConfidentialClient(t, "backend", func(c *admin.NewClient) { c.GrantTypes = []string{bff.GrantPassword} })
	e.PublicClient(t, "no-password", func(c *admin.NewClient) { c.GrantTypes = []string{bff.GrantRefreshToken} })
	revoked := e.facebook.Issue("gus-facebook")
	e.facebook.Revoke(revoked)
	kid := e.apple.Current()
	appleClaims := func(change func(map[string]any)) map[string]any {
		c := e.apple.Claims("gus-apple-id", time.Now())
		change(c)
		return c
	}
	good := e.google.Issue("gus-google-oauth2")
	goodApple := e.apple.IDToken("gus-apple-id")
	parts := strings.Split(goodApple, ".")

	tests := []struct {
		name    string
		backend string
		body    string // form-encoded; "" = exchangeForm(good)
		header  []string
		status  int
		code    string
		calls   bool   // whether a provider may be asked
		hint    string // part of error_description
	}{
		// The request itself.
		{"unknown backend", "twitter", "", nil, 400, "invalid_request", false, "Unknown backend"},
		{"backend of another case", "Google-OAuth2", "", nil, 400, "invalid_request", false, ""},
		{"missing access_token", bff.ProviderGoogle, "client_id=app", nil, 400, "invalid_request", false, "access_token"},
		{"empty access_token", bff.ProviderGoogle, "client_id=app&access_token=", nil, 400, "invalid_request", false, ""},
		{"access_token over 8 KiB", bff.ProviderGoogle, exchangeForm(strings.Repeat("a", 9<<10)).Encode(), nil, 400, "invalid_request", false, ""},
		{"access_token twice", bff.ProviderGoogle, exchangeForm(good).Encode() + "&access_token=x", nil, 400, "invalid_request", false, ""},
		{"JSON body", bff.ProviderGoogle, `{"access_token":"x"}`, []string{"Content-Type", "application/json"}, 400, "invalid_request", false, ""},
		{"body over 64 KiB", bff.ProviderGoogle, exchangeForm(good, "pad", strings.Repeat("p", 70<<10)).Encode(), nil, 413, "invalid_request", false, ""},
		// The client (SPEC §7: invalid_client is a 400 here).
		{"no client_id", bff.ProviderGoogle, url.Values{"access_token": {good}}.Encode(), nil, 400, "invalid_client", false, ""},
		{"unknown client", bff.ProviderGoogle, exchangeForm(good, "client_id", "ghost").Encode(), nil, 400, "invalid_client", false, ""},
		{"confidential client", bff.ProviderGoogle, exchangeForm(good, "client_id", "backend", "client_secret", secret).Encode(), nil, 400, "invalid_client", false, "public clients"},
		{"confidential client, Basic", bff.ProviderGoogle, url.Values{"access_token": {good}}.Encode(), []string{"Authorization", basic("backend", secret)}, 400, "invalid_client", false, "public clients"},
		{"confidential client without its secret", bff.ProviderGoogle, exchangeForm(good, "client_id", "backend").Encode(), nil, 400, "invalid_client", false, ""},
		{"public client with a secret", bff.ProviderGoogle, exchangeForm(good, "client_secret", "x").Encode(), nil, 400, "invalid_client", false, ""},
		{"client without the password grant", bff.ProviderGoogle, exchangeForm(good, "client_id", "no-password").Encode(), nil, 400, "unauthorized_client", false, "password grant"},
		{"scope the client lacks", bff.ProviderGoogle, exchangeForm(good, "scope", "admin").Encode(), nil, 400, "invalid_scope", false, ""},
		// The provider token.
		{"google: unknown token", bff.ProviderGoogle, exchangeForm("ya29.not-a-token").Encode(), nil, 400, "invalid_grant", true, "google-oauth2 token was not accepted"},
		{"facebook: revoked token", bff.ProviderFacebook, exchangeForm(revoked).Encode(), nil, 400, "invalid_grant", true, ""},
		{"facebook: google's token", bff.ProviderFacebook, exchangeForm(good).Encode(), nil, 400, "invalid_grant", true, ""},
		{"apple: expired id_token", bff.ProviderApple, exchangeForm(e.apple.Sign(kid, appleClaims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }))).Encode(), nil, 400, "invalid_grant", true, "expired"},
		{"apple: wrong aud", bff.ProviderApple, exchangeForm(e.apple.Sign(kid, appleClaims(func(c map[string]any) { c["aud"] = "com.other.app" }))).Encode(), nil, 400, "invalid_grant", true, "aud"},
		{"apple: wrong iss", bff.ProviderApple, exchangeForm(e.apple.Sign(kid, appleClaims(func(c map[string]any) { c["iss"] = "https://accounts.google.com" }))).Encode(), nil, 400, "invalid_grant", true, "iss"},
		{"apple: bad signature", bff.ProviderApple, exchangeForm(parts[0] + "." + parts[1] + "." + tamper(parts[2])).Encode(), nil, 400, "invalid_grant", true, "signature"},
		{"apple: HS256", bff.ProviderApple, exchangeForm(e.apple.SignHS256(kid, appleClaims(func(map[string]any) {}))).Encode(), nil, 400, "invalid_grant", true, "RS256"},
		{"apple: google's access token", bff.ProviderApple, exchangeForm(good).Encode(), nil, 400, "invalid_grant", true, ""},
		{"unknown identity", bff.ProviderGoogle, exchangeForm(e.google.Issue("stranger")).Encode(), nil, 400, "invalid_grant", true, "not linked"},
		{"identity of another provider", bff.ProviderFacebook, exchangeForm(e.facebook.Issue("gus-google-oauth2")).Encode(), nil, 400, "invalid_grant", true, "not linked"},
		{"bad token_type", bff.ProviderGoogle, exchangeForm(good, "token_type", "xml").Encode(), nil, 400, "invalid_request", true, ""},
	}
	// Sequential: each case compares the providers' call counts before and after.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == "" {
				body = exchangeForm(good).Encode()
			}
			req := httptest.NewRequest(http.MethodPost, "/oauth2/exchange_access_token/"+tt.backend+"/", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			before := e.providerCalls()
			rec := httptest.NewRecorder()
			e.Public.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			got := decodeOAuthErr(t, rec)
			if got.Error != tt.code || !strings.Contains(got.Description, tt.hint) {
				t.Errorf("error %q %q, want %q with %q", got.Error, got.Description, tt.code, tt.hint)
			}
			if rec.Header().Get("WWW-Authenticate") != "" || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", rec.Header())
			}
			if strings.Contains(rec.Body.String(), good) {
				t.Error("the answer repeats the provider token")
			}
			if !tt.calls && e.providerCalls() != before {
				t.Errorf("a provider was asked (%d calls)", e.providerCalls()-before)
			}
		})
	}

	// The internal grant type is not a grant of the token endpoint.
	rec := e.Post("/oauth2/access_token", url.Values{"grant_type": {"urn:openedx:mobile-auth-bff:grant-type:social-exchange"},
		"client_id": {"app"}, "access_token": {good}})
	if rec.Code != 400 || decodeOAuthErr(t, rec).Error != "unsupported_grant_type" {
		t.Errorf("internal grant at the token endpoint: %d %s", rec.Code, rec.Body)
	}
}

// TestSocialExchangeDisabledAccount: edX's body, exactly (SPEC §7).
func TestSocialExchangeDisabledAccount(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{})
	u := e.User(t, "hal")
	e.link(t, u, bff.ProviderApple, "hal-apple")
	if _, err := e.Admin.DisableUser(context.Background(), u.ID, "test"); err != nil {
		t.Fatal(err)
	}
	rec := e.exchange(bff.ProviderApple, exchangeForm(e.apple.IDToken("hal-apple")))
	const want = `{"error":"account_disabled","error_description":"user account is disabled","error_code":403}`
	if rec.Code != http.StatusForbidden || strings.TrimSpace(rec.Body.String()) != want {
		t.Errorf("disabled account: %d %s, want 403 %s", rec.Code, rec.Body, want)
	}
	testenv.Golden(t, "social_error_account_disabled", append([]byte(`{"status":`+itoa(rec.Code)+`,"body":`), append(rec.Body.Bytes(), '}')...))
	// The token endpoint keeps its own shape, without error_code.
	if rec := e.Post("/oauth2/access_token", testenv.PasswordForm("app", "hal")); strings.Contains(rec.Body.String(), "error_code") {
		t.Errorf("token endpoint: %s", rec.Body)
	}
}

// TestSocialExchangeProviderUnavailable: a provider that is down, failing
// or too slow is a 502 provider_unavailable, told apart from a bad token.
func TestSocialExchangeProviderUnavailable(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{social: func(c *social.Config) {
		c.Timeout = time.Second
		c.FacebookMeURL, c.FacebookDebugTokenURL = fakesocial.UnreachableURL(t), fakesocial.UnreachableURL(t)
	}})
	u := e.User(t, "ida")
	for _, b := range socialBackends {
		e.link(t, u, b, "ida")
	}
	want502 := func(what string, rec *httptest.ResponseRecorder) {
		t.Helper()
		if rec.Code != http.StatusBadGateway || decodeOAuthErr(t, rec).Error != "provider_unavailable" || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: %d %s %v", what, rec.Code, rec.Body, rec.Header())
		}
	}
	want502("facebook down", e.exchange(bff.ProviderFacebook, exchangeForm("any")))

	token := e.google.Issue("ida")
	e.google.Fail(http.StatusServiceUnavailable, `{}`)
	want502("google 503", e.exchange(bff.ProviderGoogle, exchangeForm(token)))
	e.google.Fail(0, "")
	e.google.Slow(10 * time.Second)
	start := time.Now()
	want502("google slow", e.exchange(bff.ProviderGoogle, exchangeForm(token)))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the slow provider held the request %s; the timeout is 1s", d)
	}
	e.google.Slow(0)
	if rec := e.exchange(bff.ProviderGoogle, exchangeForm(token)); rec.Code != 200 {
		t.Errorf("google back: %d %s", rec.Code, rec.Body)
	}

	e.apple.Fail(http.StatusInternalServerError)
	want502("apple key set down", e.exchange(bff.ProviderApple, exchangeForm(e.apple.IDToken("ida"))))
	testenv.Golden(t, "social_error_provider_unavailable", e.exchange(bff.ProviderFacebook, exchangeForm("any")).Body.Bytes())

	got := counterValue(e.Metrics.SocialVerifications.WithLabelValues(bff.ProviderGoogle, "unavailable"))
	if got != 2 {
		t.Errorf("bff_social_verifications_total{google-oauth2,unavailable} = %v, want 2", got)
	}
}

// TestSocialExchangeAppleDisabled: without BFF_APPLE_AUDIENCE, apple-id
// says so; the other backends work.
func TestSocialExchangeAppleDisabled(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{social: func(c *social.Config) { c.AppleAudiences = nil }})
	rec := e.exchange(bff.ProviderApple, exchangeForm(e.apple.IDToken("x")))
	if rec.Code != 400 || !strings.Contains(decodeOAuthErr(t, rec).Description, "BFF_APPLE_AUDIENCE") {
		t.Errorf("apple-id without an audience: %d %s", rec.Code, rec.Body)
	}
	if e.apple.Fetches() != 0 {
		t.Error("the key set was fetched")
	}
	u := e.User(t, "jo")
	e.link(t, u, bff.ProviderGoogle, "jo")
	if rec := e.exchange(bff.ProviderGoogle, exchangeForm(e.google.Issue("jo"))); rec.Code != 200 {
		t.Errorf("google: %d %s", rec.Code, rec.Body)
	}
}

// TestSocialExchangeCache: a replayed provider token is verified once a
// minute at most; a token the provider revoked stops working when its
// cached answer expires. Linking is not cached: unlinking acts at once.
func TestSocialExchangeCache(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{})
	u := e.User(t, "kim")
	e.link(t, u, bff.ProviderGoogle, "kim")
	token := e.google.Issue("kim")
	for i := range 5 {
		if rec := e.exchange(bff.ProviderGoogle, exchangeForm(token)); rec.Code != 200 {
			t.Fatalf("exchange %d: %d %s", i, rec.Code, rec.Body)
		}
		e.clock.set(time.Duration(i) * 10 * time.Second)
	}
	if n := e.google.Calls(); n != 1 {
		t.Errorf("%d tokeninfo calls for 5 exchanges within a minute, want 1", n)
	}
	e.google.Revoke(token)
	e.clock.set(59 * time.Second)
	if rec := e.exchange(bff.ProviderGoogle, exchangeForm(token)); rec.Code != 200 {
		t.Errorf("revoked at Google, still cached: %d", rec.Code)
	}
	e.clock.set(61 * time.Second)
	if rec := e.exchange(bff.ProviderGoogle, exchangeForm(token)); rec.Code != 400 || decodeOAuthErr(t, rec).Error != "invalid_grant" {
		t.Errorf("revoked at Google, a minute later: %d %s", rec.Code, rec.Body)
	}
	if n := e.google.Calls(); n != 2 {
		t.Errorf("%d tokeninfo calls, want 2", n)
	}
	// Bad answers are not cached: the next attempt asks again.
	_ = e.exchange(bff.ProviderGoogle, exchangeForm(token))
	if n := e.google.Calls(); n != 3 {
		t.Errorf("%d tokeninfo calls after a second bad attempt, want 3", n)
	}

	// Unlinking takes effect at once, even with the provider answer cached.
	fresh := e.google.Issue("kim")
	if rec := e.exchange(bff.ProviderGoogle, exchangeForm(fresh)); rec.Code != 200 {
		t.Fatalf("fresh token: %d", rec.Code)
	}
	if err := e.Admin.UnlinkIdentity(context.Background(), u.ID, bff.ProviderGoogle, "kim"); err != nil {
		t.Fatal(err)
	}
	if rec := e.exchange(bff.ProviderGoogle, exchangeForm(fresh)); rec.Code != 400 || !strings.Contains(decodeOAuthErr(t, rec).Description, "not linked") {
		t.Errorf("after unlinking: %d %s", rec.Code, rec.Body)
	}
	if got := counterValue(e.Metrics.SocialVerifications.WithLabelValues(bff.ProviderGoogle, "cached")); got != 6 {
		t.Errorf("cached verifications = %v, want 6", got)
	}
}

// TestSocialExchangeStoreDown: a failing store is a 503 and loses nothing.
func TestSocialExchangeStoreDown(t *testing.T) {
	t.Parallel()
	var failing *testenv.FailingStore
	e := newSocialEnv(t, socialOptions{wrap: func(s store.Store) store.Store {
		failing = &testenv.FailingStore{Store: s}
		return failing
	}})
	u := e.User(t, "lou")
	e.link(t, u, bff.ProviderFacebook, "lou")
	token := e.facebook.Issue("lou")
	for _, mode := range []string{"all", "writes"} {
		if mode == "all" {
			failing.All.Store(true)
		} else {
			failing.Writes.Store(true)
		}
		rec := e.exchange(bff.ProviderFacebook, exchangeForm(token))
		if rec.Code != http.StatusServiceUnavailable || decodeOAuthErr(t, rec).Error != "temporarily_unavailable" {
			t.Errorf("store down (%s): %d %s", mode, rec.Code, rec.Body)
		}
		failing.All.Store(false)
		failing.Writes.Store(false)
	}
	rec := e.exchange(bff.ProviderFacebook, exchangeForm(token))
	if rec.Code != 200 {
		t.Fatalf("after recovery: %d %s", rec.Code, rec.Body)
	}
	rt := decodeBody(t, rec)["refresh_token"].(string)
	if rec := e.Post("/oauth2/access_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {rt}}); rec.Code != 200 {
		t.Errorf("refresh after recovery: %d %s", rec.Code, rec.Body)
	}
}

// TestSocialExchangeGolden pins the success response of each format.
func TestSocialExchangeGolden(t *testing.T) {
	t.Parallel()
	e := newSocialEnv(t, socialOptions{})
	u := e.User(t, "max")
	e.link(t, u, bff.ProviderGoogle, "max")
	for _, format := range []string{"bearer", "jwt"} {
		rec := e.exchange(bff.ProviderGoogle, exchangeForm(e.google.Issue("max"), "token_type", format, "scope", "read email"))
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", format, rec.Code, rec.Body)
		}
		body := decodeBody(t, rec)
		body["access_token"], body["refresh_token"], body["expires_in"] = "<"+format+">", "<opaque>", "<~3600>"
		out, _ := json.Marshal(body)
		testenv.Golden(t, "social_token_response_"+format, out)
	}
}

// TestSocialLifecycleMatrix: the account lifecycle of SPEC §11 holds for
// tokens obtained by a social exchange, at every endpoint.
func TestSocialLifecycleMatrix(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			e := newSocialEnv(t, socialOptions{postgres: pg})
			_, secret := e.ConfidentialClient(t, "rs")
			u := e.User(t, "nia")
			e.link(t, u, bff.ProviderGoogle, "nia")
			hold := func() credentials {
				t.Helper()
				bearer := decodeBody(t, e.exchange(bff.ProviderGoogle, exchangeForm(e.google.Issue("nia"))))
				jwt := decodeBody(t, e.exchange(bff.ProviderGoogle, exchangeForm(e.google.Issue("nia"), "token_type", "jwt")))
				rec := e.Post("/oauth2/login", url.Values{}, "Authorization", "JWT "+jwt["access_token"].(string))
				if rec.Code != 204 {
					t.Fatalf("login: %d %s", rec.Code, rec.Body)
				}
				cookies := (&http.Response{Header: rec.Header()}).Cookies()
				return credentials{opaque: bearer["access_token"].(string), jwt: jwt["access_token"].(string),
					refresh: bearer["refresh_token"].(string), cookie: cookies[0].Value}
			}
			before := verdicts(t, e.Env, secret, hold())
			for k, v := range before {
				if v != "204 " && v != "200 " && v != "200 true" {
					t.Errorf("before disabling, %s = %q", k, v)
				}
			}

			held := hold()
			ctx := context.Background()
			if _, err := e.Admin.DisableUser(ctx, u.ID, "test"); err != nil {
				t.Fatal(err)
			}
			assertVerdicts(t, "disabled", map[string]string{
				"login/opaque": "401 user_is_disabled", "login/jwt": "401 user_is_disabled",
				"me/opaque": "401 account_disabled", "me/jwt": "401 account_disabled",
				"introspect/opaque": "200 false", "introspect/jwt": "200 false", "introspect/refresh": "200 false",
				"me/session": "401 invalid_token", "refresh/refresh": "403 account_disabled",
			}, verdicts(t, e.Env, secret, held))
			if rec := e.exchange(bff.ProviderGoogle, exchangeForm(e.google.Issue("nia"))); rec.Code != 403 {
				t.Errorf("exchange while disabled: %d %s", rec.Code, rec.Body)
			}

			if _, err := e.Admin.EnableUser(ctx, u.ID, "test"); err != nil {
				t.Fatal(err)
			}
			assertVerdicts(t, "re-enabled", map[string]string{
				"login/opaque": "401 token_nonexistent", "login/jwt": "401 token_nonexistent",
				"me/opaque": "401 token_revoked", "me/jwt": "401 token_revoked",
				"introspect/opaque": "200 false", "introspect/jwt": "200 false", "introspect/refresh": "200 false",
				"me/session": "401 invalid_token", "refresh/refresh": "400 invalid_grant",
			}, verdicts(t, e.Env, secret, held))
			assertVerdicts(t, "new exchange after enabling", before, verdicts(t, e.Env, secret, hold()))
		})
	}
}

// counterValue reads one counter of a vector.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// adminDo calls the admin listener with the admin token.
func adminDo(e *testenv.Env, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testenv.AdminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.AdminH.ServeHTTP(rec, req)
	return rec
}

// TestAdminIdentities: the admin API links, lists and unlinks identities.
func TestAdminIdentities(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg})
			ann, bob := env.User(t, "ann"), env.User(t, "bob")
			annPath, bobPath := "/admin/users/"+itoa(int(ann.ID))+"/identities", "/admin/users/"+itoa(int(bob.ID))+"/identities"
			problemCode := func(rec *httptest.ResponseRecorder) string {
				var p map[string]any
				_ = json.Unmarshal(rec.Body.Bytes(), &p)
				c, _ := p["code"].(string)
				return c
			}
			tests := []struct {
				name, method, path, body string
				status                   int
				code                     string
			}{
				{"link", "POST", annPath, `{"provider":"google-oauth2","subject":"1089"}`, 201, ""},
				{"link again", "POST", annPath, `{"provider":"google-oauth2","subject":"1089"}`, 200, ""},
				{"link to another user", "POST", bobPath, `{"provider":"google-oauth2","subject":"1089"}`, 409, "conflict"},
				{"unknown user", "POST", "/admin/users/999999/identities", `{"provider":"facebook","subject":"1"}`, 404, "not_found"},
				{"bad user id", "POST", "/admin/users/x/identities", `{"provider":"facebook","subject":"1"}`, 400, "invalid_request"},
				{"unknown provider", "POST", annPath, `{"provider":"twitter","subject":"1"}`, 400, "invalid_request"},
				{"empty subject", "POST", annPath, `{"provider":"facebook","subject":""}`, 400, "invalid_request"},
				{"subject too long", "POST", annPath, `{"provider":"facebook","subject":"` + strings.Repeat("1", 256) + `"}`, 400, "invalid_request"},
				{"control character", "POST", annPath, `{"provider":"facebook","subject":"a\u0000b"}`, 400, "invalid_request"},
				{"unknown field", "POST", annPath, `{"provider":"facebook","subject":"1","user":2}`, 400, "invalid_request"},
				{"no body", "POST", annPath, ``, 400, "invalid_request"},
				{"link apple, odd subject", "POST", annPath, `{"provider":"apple-id","subject":"001234.a/b c%.0987"}`, 201, ""},
				{"list", "GET", annPath, ``, 200, ""},
				{"list of an unknown user", "GET", "/admin/users/999999/identities", ``, 404, "not_found"},
				{"link microsoft", "POST", annPath, `{"provider":"azuread-oauth2","subject":"48d31887-5fad-4d73-a9f5-3c356e68a038"}`, 201, ""},
				{"unlink microsoft", "DELETE", annPath + "/azuread-oauth2/48d31887-5fad-4d73-a9f5-3c356e68a038", ``, 204, ""},
				{"unlink by another user", "DELETE", bobPath + "/google-oauth2/1089", ``, 404, "not_found"},
				{"unlink", "DELETE", annPath + "/google-oauth2/1089", ``, 204, ""},
				{"unlink again", "DELETE", annPath + "/google-oauth2/1089", ``, 404, "not_found"},
				{"unlink an escaped subject", "DELETE", annPath + "/apple-id/" + url.PathEscape("001234.a/b c%.0987"), ``, 204, ""},
				{"now bob may link it", "POST", bobPath, `{"provider":"google-oauth2","subject":"1089"}`, 201, ""},
			}
			for _, tt := range tests {
				rec := adminDo(env, tt.method, tt.path, tt.body)
				if rec.Code != tt.status || problemCode(rec) != tt.code {
					t.Errorf("%s: %d %s, want %d %q", tt.name, rec.Code, rec.Body, tt.status, tt.code)
				}
				if tt.name == "link" {
					if loc := rec.Header().Get("Location"); loc != annPath+"/google-oauth2/1089" {
						t.Errorf("Location = %q", loc)
					}
					var v admin.IdentityView
					if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.UserID != ann.ID || v.Provider != "google-oauth2" || v.Subject != "1089" || v.CreatedAt.IsZero() {
						t.Errorf("link answer %s", rec.Body)
					}
				}
				if tt.name == "list" {
					var l struct{ Identities []admin.IdentityView }
					_ = json.Unmarshal(rec.Body.Bytes(), &l)
					if len(l.Identities) != 2 || l.Identities[0].Provider != "apple-id" || l.Identities[1].Subject != "1089" {
						t.Errorf("list: %s", rec.Body)
					}
				}
			}
			req := httptest.NewRequest("GET", annPath, nil)
			rec := httptest.NewRecorder()
			env.AdminH.ServeHTTP(rec, req)
			if rec.Code != 401 {
				t.Errorf("without the admin token: %d", rec.Code)
			}
			if ids, _ := env.Store.ListIdentities(context.Background(), bob.ID); len(ids) != 1 {
				t.Errorf("bob holds %d identities, want 1", len(ids))
			}
		})
	}
}
