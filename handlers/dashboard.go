package handlers

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
	"github.com/openedx/mobile-auth-bff/metrics"
)

// The dashboard is server-rendered: html/template pages, the stylesheet
// inlined (allowed by its hash in the Content-Security-Policy), charts as
// inline SVG computed here. No script, nothing from another origin: the
// admin machines are offline.

//go:embed templates/*.html templates/*.css
var assets embed.FS

var (
	dashboardCSS = mustRead("templates/dashboard.css")
	pageCSP      = "default-src 'none'; style-src 'sha256-" + cssHash(dashboardCSS) + "'; img-src 'self' data:; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	pages = template.Must(template.New("").Funcs(template.FuncMap{
		"css":          func() template.CSS { return template.CSS(dashboardCSS) },
		"authorizeCSS": func() template.CSS { return template.CSS(authorizeCSS) },
		"share":        formatShare,
	}).ParseFS(assets, "templates/*.html"))
)

func mustRead(name string) string {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func cssHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// renderPage writes an HTML page with the headers every admin page carries.
// Its referrer policy is same-origin, not no-referrer: with no-referrer
// browsers send "Origin: null" on the pages' own form posts, which the
// CSRF check (rightly) refuses.
func renderPage(c echo.Context, status int, name string, data any) error {
	return renderHTML(c, status, name, data, pageCSP, "same-origin")
}

// renderHTML renders template name and writes it with the headers every
// page of the service carries: its CSP, no caching, no framing, no
// sniffing, and its referrer policy.
func renderHTML(c echo.Context, status int, name string, data any, csp, referrer string) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", referrer)
	return c.HTMLBlob(status, buf.Bytes())
}

type errorPage struct {
	Status                         int
	Title, Code, Detail, RequestID string
}

// isForm reports whether a request body is form-encoded.
func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	return err == nil && mt == echo.MIMEApplicationForm
}

// parseAdminForm reads a form body of at most maxAdminBody bytes into
// r.PostForm (once: later calls find it parsed).
func parseAdminForm(c echo.Context) error {
	r := c.Request()
	if r.PostForm != nil {
		return nil
	}
	if !isForm(r) {
		return fmt.Errorf("%w: the body must be application/x-www-form-urlencoded", bff.ErrInvalidInput)
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxAdminBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errBodyTooLarge
		}
		return fmt.Errorf("%w: the body is not a valid form", bff.ErrInvalidInput)
	}
	return nil
}

// --- sign-in ---

type signInPage struct {
	TTL   string
	Error string
}

// handleSignInPage shows the sign-in form, or the dashboard to a browser
// that is signed in already.
func handleSignInPage(s *adminSessions) echo.HandlerFunc {
	return func(c echo.Context) error {
		_, ok, err := s.session(c)
		if err != nil {
			return pageFailure(err)
		}
		if ok {
			return c.Redirect(http.StatusSeeOther, "/admin/dashboard")
		}
		return renderPage(c, http.StatusOK, "signin.html", signInPage{TTL: adminSessionTTL.String()})
	}
}

// handleSignIn exchanges the admin token, typed once into the form, for a
// session cookie, and goes to the dashboard (never anywhere else).
func handleSignIn(s *adminSessions) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !sameOrigin(c.Request()) {
			return pageFailure(errCSRF)
		}
		if err := parseAdminForm(c); err != nil {
			return pageFailure(err)
		}
		if !s.checkToken(c.Request().PostForm.Get("admin_token")) {
			msg := "That is not the admin token."
			if s.token == "" {
				msg = "BFF_ADMIN_TOKEN is not set on this server: the dashboard is closed."
			}
			return renderPage(c, http.StatusUnauthorized, "signin.html", signInPage{TTL: adminSessionTTL.String(), Error: msg})
		}
		ck, err := s.issue(c.Request().Context())
		if err != nil {
			return pageFailure(err)
		}
		c.SetCookie(ck)
		return c.Redirect(http.StatusSeeOther, "/admin/dashboard")
	}
}

// handleSignOut ends the browser's session: the record is deleted, so the
// cookie (and any copy of it) is dead on every instance, and then the
// browser forgets it. When the store cannot delete it the answer is 503 and
// the cookie stays, so that signing out can be tried again.
func handleSignOut(s *adminSessions) echo.HandlerFunc {
	return func(c echo.Context) error {
		if id, ok := c.Get(adminSessionKey).(string); ok {
			if err := s.end(c.Request().Context(), id); err != nil {
				return pageFailure(err)
			}
		}
		c.SetCookie(s.clear())
		return c.Redirect(http.StatusSeeOther, "/admin/signin")
	}
}

// --- migration views ---

// migrationWindow reads the report window of a request.
func migrationWindow(c echo.Context) (admin.Window, error) {
	return admin.ParseWindow(c.QueryParam("period"), c.QueryParam("from"), c.QueryParam("to"),
		c.QueryParam("bucket"), time.Now())
}

// handleMigration is GET /admin/migration: the report as JSON. This
// instance's buffered counts are flushed first, so that it reads its own
// writes; other instances' arrive with their next flush.
func handleMigration(svc *admin.Service, m *metrics.Metrics) echo.HandlerFunc {
	return func(c echo.Context) error {
		w, err := migrationWindow(c)
		if err != nil {
			return err
		}
		_ = m.Usage.Flush(c.Request().Context()) // a failure is logged, and the store read below answers for it
		rep, err := svc.Migration(c.Request().Context(), w)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, rep)
	}
}

type periodLink struct {
	Name, URL string
	Current   bool
}

type dashboardPage struct {
	Report  admin.MigrationReport
	Period  string
	Periods []periodLink
	Clients []clientPanel
	CSRF    string
	Updated string
	Error   string
}

type clientPanel struct {
	admin.ClientMigration
	Anchor, Label string
	Chart         chart
	Grants        []grantRow
	Formats       []resultRow
	Endpoints     []resultRow
	Bindings      []bindingRow
	Codes         []codeRow
}

type grantRow struct {
	Grant, Name, Share string
	Bearer, JWT        int64
}

type resultRow struct {
	Name       string
	OK, Errors int64
}

// bindingRow is one binding's line of a client: issued, presented and
// active tokens DPoP-bound or not.
type bindingRow struct {
	Binding, Name             string
	Issued, Active            int64
	PresentedOK, PresentedErr int64
}

type codeRow struct {
	Code, Meaning string
	Count         int64
}

// handleDashboard is GET /admin/dashboard.
func handleDashboard(svc *admin.Service, m *metrics.Metrics, s *adminSessions) echo.HandlerFunc {
	return func(c echo.Context) error {
		return renderDashboard(c, svc, m, s, http.StatusOK, c.QueryParam("period"), c.QueryParam("updated"), "")
	}
}

func renderDashboard(c echo.Context, svc *admin.Service, m *metrics.Metrics, s *adminSessions, status int, period, updated, problem string) error {
	if period == "" {
		period = admin.Periods[0].Name
	}
	w, err := admin.ParseWindow(period, "", "", "", time.Now())
	if err != nil {
		return pageFailure(err)
	}
	_ = m.Usage.Flush(c.Request().Context()) // see handleMigration
	rep, err := svc.Migration(c.Request().Context(), w)
	if err != nil {
		return pageFailure(err)
	}
	page := dashboardPage{Report: rep, Period: period, Error: problem}
	if id, ok := c.Get(adminSessionKey).(string); ok {
		page.CSRF = s.csrfToken(id)
	}
	for _, p := range admin.Periods {
		page.Periods = append(page.Periods, periodLink{Name: p.Name, URL: "/admin/dashboard?period=" + p.Name, Current: p.Name == period})
	}
	for _, cm := range rep.Clients {
		if updated != "" && cm.ClientID == updated && cm.Rollout != nil {
			page.Updated = updated
		}
		page.Clients = append(page.Clients, newClientPanel(cm, rep.Bucket))
	}
	return renderPage(c, status, "dashboard.html", page)
}

// grantNames are the grant labels operators read.
var grantNames = map[string]string{
	bff.GrantPassword:          "password (sign-in)",
	bff.GrantRefreshToken:      "refresh_token",
	bff.GrantClientCredentials: "client_credentials",
	bff.GrantTokenExchange:     "token exchange (RFC 8693)",
	bff.GrantSocialExchange:    "social exchange",
	bff.GrantAuthorizationCode: "authorization_code (browser sign-in)",
}

// codeMeanings explain the error codes of presented tokens.
var codeMeanings = map[string]string{
	"invalid_token":        "unparseable, bad signature, unknown kid or client, wrong iss/aud/typ, or absent",
	"non_asymmetric_token": "a JWT signed with HS* or none",
	"token_expired":        "past its exp",
	"account_disabled":     "the user is disabled",
	"token_revoked":        "revoked, or its family was",
	"non_supported_token":  "valid, but not usable there (e.g. client credentials at login)",
	"invalid_dpop_proof":   "a DPoP proof missing, malformed, replayed, by another key or for another request",
	"use_dpop_nonce":       "a DPoP proof without the server's current nonce (the client retries with it)",
	"unavailable":          "the store could not answer",
}

func newClientPanel(cm admin.ClientMigration, bucket string) clientPanel {
	p := clientPanel{ClientMigration: cm, Anchor: "client-" + cm.ClientID, Label: cm.ClientID}
	switch {
	case cm.ClientID == "":
		p.Anchor, p.Label = "client-unidentified", "Unidentified tokens"
	case cm.Name != "":
		p.Label = cm.Name + " (" + cm.ClientID + ")"
	}
	for grant, n := range cm.Totals.Issued.ByGrant {
		name := grantNames[grant]
		if name == "" {
			name = grant
		}
		p.Grants = append(p.Grants, grantRow{Grant: grant, Name: name, Bearer: n.Bearer, JWT: n.JWT,
			Share: formatShare(ratio(n.JWT, n.Bearer+n.JWT))})
	}
	slices.SortFunc(p.Grants, func(a, b grantRow) int { return strings.Compare(a.Grant, b.Grant) })
	p.Formats = resultRows(cm.Totals.Presented.ByFormat)
	p.Endpoints = resultRows(cm.Totals.Presented.ByEndpoint)
	is, ps, act := cm.Totals.Issued.ByBinding, cm.Totals.Presented.ByBinding, cm.ActiveByBinding
	if is.DPoP+ps.DPoP.OK+ps.DPoP.Errors+act.DPoP > 0 || cm.Rollout != nil && cm.Rollout.DPoPBoundAccessTokens {
		p.Bindings = []bindingRow{
			{Binding: bff.BindingDPoP, Name: "DPoP-bound", Issued: is.DPoP, Active: act.DPoP,
				PresentedOK: ps.DPoP.OK, PresentedErr: ps.DPoP.Errors},
			{Binding: bff.BindingNone, Name: "unbound", Issued: is.None, Active: act.None,
				PresentedOK: ps.None.OK, PresentedErr: ps.None.Errors},
		}
	}
	for code, n := range cm.Totals.Presented.ErrorCodes {
		p.Codes = append(p.Codes, codeRow{Code: code, Meaning: codeMeanings[code], Count: n})
	}
	slices.SortFunc(p.Codes, func(a, b codeRow) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Code, b.Code)
	})
	p.Chart = newChart(cm, bucket)
	return p
}

func resultRows(m map[string]admin.ResultCounts) []resultRow {
	rows := make([]resultRow, 0, len(m))
	for name, r := range m {
		rows = append(rows, resultRow{Name: name, OK: r.OK, Errors: r.Errors})
	}
	slices.SortFunc(rows, func(a, b resultRow) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

func ratio(part, total int64) *float64 {
	if total == 0 {
		return nil
	}
	r := float64(part) / float64(total)
	return &r
}

// formatShare writes a share as a percentage; "–" without data.
func formatShare(f *float64) string {
	if f == nil {
		return "–"
	}
	return strconv.FormatFloat(*f*100, 'f', 1, 64) + "%"
}

// --- rollout controls ---

// rolloutPatch reads the rollout controls of a dashboard form; a field
// that is absent stays as it is.
func rolloutPatch(form url.Values) (admin.ClientPatch, error) {
	var p admin.ClientPatch
	if v, ok := formValue(form, "token_type"); ok {
		f := bff.TokenFormat(v)
		p.TokenType = &f // validated with the client
	}
	if v, ok := formValue(form, "jwt_token_type"); ok {
		p.JWTTokenType = &v // "" leaves the label to the request; validated with the client
	}
	if v, ok := formValue(form, "jwt_rollout_percent"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return p, fmt.Errorf("%w: jwt_rollout_percent must be a whole number between 0 and 100", bff.ErrInvalidInput)
		}
		p.JWTRolloutPercent = &n
	}
	for _, f := range []struct {
		name string
		dst  **bool
	}{{"jwt_enabled", &p.JWTEnabled}, {"restricted", &p.Restricted}} {
		if v, ok := formValue(form, f.name); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return p, fmt.Errorf("%w: %s must be true or false", bff.ErrInvalidInput, f.name)
			}
			*f.dst = &b
		}
	}
	return p, nil
}

func formValue(form url.Values, name string) (string, bool) {
	v, ok := form[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// handleDashboardUpdate is the dashboard's rollout form: the same
// operation as PATCH /admin/clients/{id}. A value the client refuses
// re-renders the dashboard with the message; success goes back to it.
func handleDashboardUpdate(svc *admin.Service, m *metrics.Metrics, s *adminSessions) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := parseAdminForm(c); err != nil {
			return pageFailure(err)
		}
		form := c.Request().PostForm
		period := form.Get("period")
		if _, err := admin.ParseWindow(period, "", "", "", time.Now()); err != nil {
			period = ""
		}
		id := c.Param("id")
		patch, err := rolloutPatch(form)
		if err == nil {
			_, err = svc.UpdateClient(c.Request().Context(), id, patch)
		}
		if errors.Is(err, bff.ErrInvalidInput) {
			msg := strings.TrimPrefix(err.Error(), bff.ErrInvalidInput.Error()+": ")
			return renderDashboard(c, svc, m, s, http.StatusBadRequest, period, "", "Not saved ("+id+"): "+msg)
		}
		if err != nil {
			return pageFailure(err)
		}
		q := url.Values{"updated": {id}}
		if period != "" {
			q.Set("period", period)
		}
		return c.Redirect(http.StatusSeeOther, "/admin/dashboard?"+q.Encode()+"#client-"+url.PathEscape(id))
	}
}
