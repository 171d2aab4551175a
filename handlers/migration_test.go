package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/internal/testenv"
	"github.com/openedx/mobile-auth-bff/internal/testkit"
	"github.com/openedx/mobile-auth-bff/store"
)

// adminGet calls the admin listener with the admin token.
func adminGet(t *testing.T, env *testenv.Env, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+testenv.AdminToken)
	env.AdminH.ServeHTTP(rec, req)
	return rec
}

func migrationReport(t *testing.T, env *testenv.Env, query string) admin.MigrationReport {
	t.Helper()
	rec := adminGet(t, env, "/admin/migration?"+query)
	if rec.Code != 200 {
		t.Fatalf("GET /admin/migration: %d %s", rec.Code, rec.Body)
	}
	var rep admin.MigrationReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func clientOf(t *testing.T, rep admin.MigrationReport, id string) admin.ClientMigration {
	t.Helper()
	for _, c := range rep.Clients {
		if c.ClientID == id {
			return c
		}
	}
	t.Fatalf("client %q not in the report", id)
	return admin.ClientMigration{}
}

// TestMigrationReportGolden pins the JSON shape of the report over fixed
// aggregates: a client in rollout, a deleted client and unidentified tokens,
// DPoP-bound, unbound and counted before the binding was, by hour and by
// day.
func TestMigrationReportGolden(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.PublicClient(t, "app", func(c *admin.NewClient) { c.Name = "Mobile app"; c.JWTRolloutPercent = 25 })
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	u := func(at time.Time, client, kind, format, grant, endpoint, code string, n int64) bff.UsageCount {
		k := bff.UsageKey{Hour: at, ClientID: client, Kind: kind, Format: format, GrantType: grant, Endpoint: endpoint}
		if kind == bff.UsagePresented {
			k.Result, k.ErrorCode = bff.ResultOK, code
			if code != "" {
				k.Result = bff.ResultError
			}
		}
		return bff.UsageCount{UsageKey: k, Count: n}
	}
	bound := func(c bff.UsageCount, binding string) bff.UsageCount {
		c.Binding = binding
		return c
	}
	if err := env.Store.AddUsage(context.Background(), []bff.UsageCount{
		u(h, "app", bff.UsageIssued, "bearer", bff.GrantPassword, "", "", 6), // before the binding was counted
		u(h, "app", bff.UsageIssued, "jwt", bff.GrantPassword, "", "", 2),
		bound(u(h.Add(time.Hour), "app", bff.UsageIssued, "jwt", bff.GrantPassword, "", "", 4), bff.BindingDPoP),
		bound(u(h.Add(time.Hour), "app", bff.UsageIssued, "bearer", bff.GrantPassword, "", "", 1), bff.BindingNone),
		bound(u(h.Add(time.Hour), "app", bff.UsagePresented, "jwt", "", "me", "", 3), bff.BindingDPoP),
		bound(u(h.Add(time.Hour), "app", bff.UsagePresented, "jwt", "", "me", "invalid_dpop_proof", 1), bff.BindingDPoP),
		u(h.Add(time.Hour), "app", bff.UsageIssued, "jwt", bff.GrantTokenExchange, "", "", 3),
		u(h.Add(time.Hour), "app", bff.UsageIssued, "bearer", bff.GrantRefreshToken, "", "", 1),
		u(h, "app", bff.UsagePresented, "jwt", "", "me", "", 9),
		u(h.Add(time.Hour), "app", bff.UsagePresented, "jwt", "", "login", "token_expired", 2),
		u(h.Add(time.Hour), "app", bff.UsagePresented, "bearer", "", "me", "account_disabled", 1),
		u(h, "gone", bff.UsageIssued, "bearer", bff.GrantClientCredentials, "", "", 4),
		u(h, "", bff.UsagePresented, "jwt", "", "me", "non_asymmetric_token", 5),
		u(h, "", bff.UsagePresented, "none", "", "me", "invalid_token", 1),
		u(h.Add(48*time.Hour), "app", bff.UsageIssued, "jwt", bff.GrantPassword, "", "", 100), // outside the window
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, query string }{
		{"migration_report_hourly", "from=2026-03-01T09:30:00Z&to=2026-03-01T12:00:00Z"},
		{"migration_report_daily", "from=2026-03-01T10:00:00Z&to=2026-03-02T00:00:00Z&bucket=day"},
	} {
		rec := adminGet(t, env, "/admin/migration?"+tc.query)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		m["generated_at"] = "(now)"
		for _, c := range m["clients"].([]any) {
			if r, ok := c.(map[string]any)["rollout"].(map[string]any); ok {
				r["updated_at"] = "(creation)"
			}
		}
		b, _ := json.Marshal(m)
		testenv.Golden(t, tc.name, b)
	}
}

// TestMigrationCounts: what the token endpoint issues and what /api/me and
// /oauth2/login are presented with shows up per client — rejections of
// genuine tokens under their client, forged ones under "" — without
// waiting for a flush.
func TestMigrationCounts(t *testing.T) {
	t.Parallel()
	for _, pg := range testkit.StoreKinds() {
		t.Run(testkit.StoreName(pg), func(t *testing.T) {
			t.Parallel()
			clk := &clock{}
			env := testenv.New(t, testenv.Options{Postgres: pg, Cache: pg, Config: withClock(clk)})
			env.PublicClient(t, "app", exchanger)
			_, secret := env.ConfidentialClient(t, "svc")
			env.User(t, "alice")
			bob := env.User(t, "bob")

			b1 := env.Token(t, testenv.PasswordForm("app", "alice"))
			env.Token(t, testenv.PasswordForm("app", "alice"))
			j1 := env.Token(t, testenv.PasswordForm("app", "alice", "token_type", "jwt"))
			env.Token(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"},
				"refresh_token": {b1["refresh_token"].(string)}, "token_type": {"jwt"}})
			env.Token(t, tokenExchangeForm("app", b1["access_token"].(string)))
			cc := env.Token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}})
			bobs := env.Token(t, testenv.PasswordForm("app", "bob", "token_type", "jwt"))["access_token"].(string)
			// A failed request issues nothing.
			env.Post("/oauth2/access_token", testenv.PasswordForm("app", "alice", "password", "wrong"))

			mustMe(t, env, "bearer", b1["access_token"].(string), 200, "")
			mustMe(t, env, "jwt", j1["access_token"].(string), 200, "")
			mustMe(t, env, "forged", forgeHS256(t, j1["access_token"].(string), env), 401, "non_asymmetric_token")
			mustMe(t, env, "garbage", "garbage", 401, "invalid_token")
			clk.set(2 * time.Hour)
			mustMe(t, env, "expired", j1["access_token"].(string), 401, "token_expired")
			clk.reset()
			if _, err := env.Admin.DisableUser(context.Background(), bob.ID, "test"); err != nil {
				t.Fatal(err)
			}
			mustMe(t, env, "disabled", bobs, 401, "account_disabled")
			if rec := env.Post("/oauth2/login", url.Values{}, "Authorization", "Bearer "+cc["access_token"].(string)); rec.Code != 401 {
				t.Fatalf("login with client credentials: %d", rec.Code)
			}

			rep := migrationReport(t, env, "")
			app := clientOf(t, rep, "app")
			wantIssued := map[string]admin.FormatCounts{
				bff.GrantPassword:      {Bearer: 2, JWT: 2},
				bff.GrantRefreshToken:  {JWT: 1},
				bff.GrantTokenExchange: {JWT: 1},
			}
			if diff := cmp.Diff(wantIssued, app.Totals.Issued.ByGrant); diff != "" {
				t.Errorf("app issued by grant (-want +got):\n%s", diff)
			}
			if app.Totals.Issued.Total != 6 || app.Totals.Issued.JWT != 4 || *app.Totals.Issued.JWTShare < 0.66 {
				t.Errorf("app issued: %+v", app.Totals.Issued)
			}
			wantPresented := admin.PresentedStats{
				Total: 4, OK: 2, Errors: 2,
				ByFormat:   map[string]admin.ResultCounts{"bearer": {OK: 1}, "jwt": {OK: 1, Errors: 2}},
				ByEndpoint: map[string]admin.ResultCounts{"me": {OK: 2, Errors: 2}},
				ByBinding:  admin.BindingResults{None: admin.ResultCounts{OK: 2, Errors: 2}},
				ErrorCodes: map[string]int64{"token_expired": 1, "account_disabled": 1},
			}
			if diff := cmp.Diff(wantPresented, app.Totals.Presented); diff != "" {
				t.Errorf("app presented (-want +got):\n%s", diff)
			}
			// Active: alice's two Bearer and her JWTs; the exchanged-from
			// bearer and its family live on; bob's was revoked by disabling.
			if app.ActiveTokens.Bearer != 2 || app.ActiveTokens.JWT != 3 {
				t.Errorf("app active tokens: %+v", app.ActiveTokens)
			}
			if app.Rollout == nil || app.Rollout.JWTRolloutPercent != 0 || !app.Rollout.JWTEnabled {
				t.Errorf("app rollout: %+v", app.Rollout)
			}
			svc := clientOf(t, rep, "svc")
			if svc.Totals.Issued.ByGrant[bff.GrantClientCredentials].Bearer != 1 ||
				svc.Totals.Presented.ErrorCodes["non_supported_token"] != 1 || svc.Totals.Presented.ByEndpoint["login"].Errors != 1 {
				t.Errorf("svc: %+v", svc.Totals)
			}
			unknown := clientOf(t, rep, "")
			if diff := cmp.Diff(map[string]int64{"non_asymmetric_token": 1, "invalid_token": 1}, unknown.Totals.Presented.ErrorCodes); diff != "" {
				t.Errorf("unidentified error codes (-want +got):\n%s", diff)
			}
			if rep.Clients[len(rep.Clients)-1].ClientID != "" {
				t.Error("unidentified tokens are not listed last")
			}
			// The current hour's bucket holds the counts.
			last := app.Series[len(app.Series)-1]
			if len(app.Series) != 24 || last.Issued.Total != 6 || !last.Start.Equal(bff.HourOf(time.Now())) {
				t.Errorf("series: %d buckets, last %+v", len(app.Series), last)
			}
			if rep.Totals.Issued.Total != 7 || rep.ActiveTokens.Bearer != 3 {
				t.Errorf("totals: issued %d, active %+v", rep.Totals.Issued.Total, rep.ActiveTokens)
			}

			// The dashboard shows the same numbers.
			b := newBrowser(t, env)
			b.signIn(testenv.AdminToken)
			html := b.get("/admin/dashboard").body
			for _, want := range []string{
				`data-client="app"`, `data-stat="issued-jwt">4<`, `data-stat="issued-bearer">2<`, `data-stat="active-jwt">3<`,
				`data-code="token_expired"`, `data-code="account_disabled"`, `data-code="non_asymmetric_token"`,
				`data-grant="urn:ietf:params:oauth:grant-type:token-exchange"`, `<svg class="chart"`,
			} {
				if !strings.Contains(html, want) {
					t.Errorf("the dashboard lacks %s", want)
				}
			}
		})
	}
}

// TestUsageSurvivesStoreFailure: while the store refuses the statistics,
// token requests are served as usual and the counts wait in memory; once
// the store is back, nothing is missing. While the store is down entirely,
// the views answer 503.
func TestUsageSurvivesStoreFailure(t *testing.T) {
	t.Parallel()
	var fs *testenv.FailingStore
	env := testenv.New(t, testenv.Options{Wrap: func(s store.Store) store.Store {
		fs = &testenv.FailingStore{Store: s}
		return fs
	}})
	_, secret := env.ConfidentialClient(t, "svc")
	cc := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}}

	fs.UsageWrites.Store(true)
	for range 5 {
		env.Token(t, cc)
	}
	if err := env.Metrics.Usage.Flush(context.Background()); err == nil {
		t.Fatal("flush succeeded on a failing store")
	}
	env.Token(t, cc)
	if got := testutil.ToFloat64(env.Metrics.UsageFlushFailures); got != 1 {
		t.Errorf("flush failures = %v", got)
	}

	fs.All.Store(true)
	if rec := adminGet(t, env, "/admin/migration"); rec.Code != 503 {
		t.Errorf("report with the store down: %d %s", rec.Code, rec.Body)
	}
	if rec := adminGet(t, env, "/admin/dashboard"); rec.Code != 503 || !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
		t.Errorf("dashboard with the store down: %d", rec.Code)
	}
	fs.All.Store(false)
	fs.UsageWrites.Store(false)

	rep := migrationReport(t, env, "")
	if got := clientOf(t, rep, "svc").Totals.Issued.Total; got != 6 {
		t.Errorf("after the store came back: %d tokens issued, want 6", got)
	}
	if got := testutil.ToFloat64(env.Metrics.UsageDropped); got != 0 {
		t.Errorf("dropped = %v", got)
	}
}

// TestMigrationCountsDPoP: the migration statistics count DPoP-bound and
// unbound tokens apart — issued, presented (by the scheme they came with,
// whatever the verdict) and active — in the report, the dashboard and the
// Prometheus counters.
func TestMigrationCountsDPoP(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, pg bool) {
		env := newDPoPEnv(t, pg)
		key := testkit.NewDPoPKey(t)

		bound := env.boundToken(t, key, testenv.PasswordForm("mobile", "dora"))["access_token"].(string)
		env.boundToken(t, key, testenv.PasswordForm("mobile-jwt", "dora"))
		unbound := env.Token(t, testenv.PasswordForm("mobile", "dora"))["access_token"].(string)

		if rec := env.dpopMe(t, key, bound); rec.Code != http.StatusOK {
			t.Fatalf("/api/me with DPoP: %d %s", rec.Code, rec.Body)
		}
		wantDPoPRejection(t, "no proof", env.me("Authorization", "DPoP "+bound), "invalid_dpop_proof", "invalid_dpop_proof")
		if rec := env.me("Authorization", "Bearer "+unbound); rec.Code != http.StatusOK {
			t.Fatalf("/api/me with Bearer: %d %s", rec.Code, rec.Body)
		}
		wantDPoPRejection(t, "bound token as Bearer", env.me("Authorization", "Bearer "+bound), "invalid_token", "invalid_token")

		rep := migrationReport(t, env.Env, "")
		mobile := clientOf(t, rep, "mobile")
		if want := (admin.BindingCounts{DPoP: 1, None: 1}); mobile.Totals.Issued.ByBinding != want {
			t.Errorf("mobile issued by binding = %+v, want %+v", mobile.Totals.Issued.ByBinding, want)
		}
		if want := (admin.BindingResults{DPoP: admin.ResultCounts{OK: 1, Errors: 1}, None: admin.ResultCounts{OK: 1, Errors: 1}}); mobile.Totals.Presented.ByBinding != want {
			t.Errorf("mobile presented by binding = %+v, want %+v", mobile.Totals.Presented.ByBinding, want)
		}
		if want := (admin.BindingCounts{DPoP: 1, None: 1}); mobile.ActiveByBinding != want {
			t.Errorf("mobile active by binding = %+v, want %+v", mobile.ActiveByBinding, want)
		}
		if last := mobile.Series[len(mobile.Series)-1]; last.Issued.ByBinding.DPoP != 1 || last.Presented.ByBinding.DPoP.OK != 1 {
			t.Errorf("the current bucket: %+v", last.Stats)
		}
		jwt := clientOf(t, rep, "mobile-jwt")
		if jwt.Totals.Issued.ByBinding != (admin.BindingCounts{DPoP: 1}) || jwt.ActiveByBinding != (admin.BindingCounts{DPoP: 1}) {
			t.Errorf("mobile-jwt: issued %+v, active %+v; want one DPoP-bound", jwt.Totals.Issued.ByBinding, jwt.ActiveByBinding)
		}
		if rep.Totals.Issued.ByBinding != (admin.BindingCounts{DPoP: 2, None: 1}) || rep.ActiveByBinding != (admin.BindingCounts{DPoP: 2, None: 1}) {
			t.Errorf("totals: issued %+v, active %+v", rep.Totals.Issued.ByBinding, rep.ActiveByBinding)
		}

		rec := adminGet(t, env.Env, "/metrics")
		for _, want := range []string{
			`bff_tokens_issued_total{binding="dpop",client_id="mobile",format="bearer",grant_type="password"} 1`,
			`bff_tokens_issued_total{binding="none",client_id="mobile",format="bearer",grant_type="password"} 1`,
			`bff_tokens_issued_total{binding="dpop",client_id="mobile-jwt",format="jwt",grant_type="password"} 1`,
			`bff_tokens_presented_total{binding="dpop",endpoint="me",error_code="",format="bearer",result="ok"} 1`,
			`bff_tokens_presented_total{binding="dpop",endpoint="me",error_code="invalid_dpop_proof",format="bearer",result="error"} 1`,
			`bff_tokens_presented_total{binding="none",endpoint="me",error_code="",format="bearer",result="ok"} 1`,
			`bff_tokens_presented_total{binding="none",endpoint="me",error_code="invalid_token",format="bearer",result="error"} 1`,
		} {
			if !strings.Contains(rec.Body.String(), want+"\n") {
				t.Errorf("/metrics lacks %s", want)
			}
		}

		b := newBrowser(t, env.Env)
		b.signIn(testenv.AdminToken)
		html := b.get("/admin/dashboard").body
		section := html[strings.Index(html, `data-client="mobile"`):]
		section = section[:strings.Index(section, "</section>")]
		for _, want := range []string{
			`data-stat="issued-dpop">1<`, `data-stat="active-dpop">1<`,
			`<tr data-binding="dpop"><td>DPoP-bound</td><td class="num" data-col="issued">1</td><td class="num" data-col="active">1</td><td class="num" data-col="ok">1</td><td class="num" data-col="errors">1</td></tr>`,
			`<tr data-binding="none"><td>unbound</td><td class="num" data-col="issued">1</td><td class="num" data-col="active">1</td><td class="num" data-col="ok">1</td><td class="num" data-col="errors">1</td></tr>`,
			`data-code="invalid_dpop_proof"`,
		} {
			if !strings.Contains(section, want) {
				t.Errorf("the dashboard's mobile panel lacks %s", want)
			}
		}
		if !strings.Contains(html, `id="totals"`) || !strings.Contains(html[strings.Index(html, `id="totals"`):], `data-stat="active-dpop">2<`) {
			t.Error("the dashboard's totals lack 2 active DPoP-bound tokens")
		}
	})
}
