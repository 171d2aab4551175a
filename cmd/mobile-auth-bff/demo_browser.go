package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/admin"
)

// demoRedirectURI is the demo client's loopback redirect URI; the demo's
// callback listens on a free port, which RFC 8252 §7.3 lets vary.
const demoRedirectURI = "http://127.0.0.1/callback"

// demoCallback is the app side of browser sign-in for serve --demo: a
// loopback listener that receives the code and redeems it with the PKCE
// verifier, as a native app would, and shows the token response.
type demoCallback struct {
	ln       net.Listener
	srv      *http.Server
	verifier string
	state    string

	mu       sync.Mutex
	tokenURL string
}

// startDemoCallback gives the demo client browser sign-in and starts the
// callback listener; it is closed when ctx ends.
func startDemoCallback(ctx context.Context, a *app) (*demoCallback, error) {
	grants := []string{bff.GrantPassword, bff.GrantRefreshToken, bff.GrantTokenExchange, bff.GrantAuthorizationCode}
	uris := []string{demoRedirectURI}
	if _, err := a.Admin.UpdateClient(ctx, demoMobileClient, admin.ClientPatch{GrantTypes: &grants, RedirectURIs: &uris}); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo callback listener: %w", err)
	}
	cb := &demoCallback{ln: ln, verifier: bff.RandomID(32), state: bff.RandomID(12)}
	cb.srv = &http.Server{Handler: http.HandlerFunc(cb.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = cb.srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = cb.srv.Close()
	}()
	return cb, nil
}

// redirectURI is where the demo's code arrives.
func (cb *demoCallback) redirectURI() string {
	return "http://" + cb.ln.Addr().String() + "/callback"
}

// authorizeURL is the URL to open in a browser, on the public listener.
func (cb *demoCallback) authorizeURL(public string) string {
	cb.mu.Lock()
	cb.tokenURL = public + "/oauth2/token"
	cb.mu.Unlock()
	sum := sha256.Sum256([]byte(cb.verifier))
	return public + "/oauth2/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {demoMobileClient}, "redirect_uri": {cb.redirectURI()},
		"state": {cb.state}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}, "scope": {"read email profile"},
	}.Encode()
}

var demoPage = template.Must(template.New("").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo app: signed in</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#111827">
<h1>{{.Title}}</h1>
<p>{{.Text}}</p>
{{with .Body}}<pre id="token-response" style="white-space:pre-wrap;word-break:break-all;background:#f3f4f6;padding:1rem">{{.}}</pre>{{end}}
</body></html>`))

func (cb *demoCallback) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	show := func(status int, title, text, body string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_ = demoPage.Execute(w, map[string]string{"Title": title, "Text": text, "Body": body})
	}
	q := r.URL.Query()
	switch {
	case r.URL.Path != "/callback":
		show(http.StatusNotFound, "Not found", "The demo app only has /callback.", "")
		return
	case q.Get("error") != "":
		show(http.StatusOK, "Sign-in failed", q.Get("error")+": "+q.Get("error_description"), "")
		return
	case q.Get("state") != cb.state:
		show(http.StatusBadRequest, "Wrong state", "This answer is not for the demo's request.", "")
		return
	}
	cb.mu.Lock()
	tokenURL := cb.tokenURL
	cb.mu.Unlock()
	res, err := http.PostForm(tokenURL, url.Values{
		"grant_type": {"authorization_code"}, "client_id": {demoMobileClient}, "code": {q.Get("code")},
		"redirect_uri": {cb.redirectURI()}, "code_verifier": {cb.verifier},
	})
	if err != nil {
		show(http.StatusBadGateway, "Token endpoint unreachable", err.Error(), "")
		return
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var pretty strings.Builder
	var v any
	if json.Unmarshal(b, &v) == nil {
		enc := json.NewEncoder(&pretty)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	} else {
		pretty.Write(b)
	}
	if res.StatusCode != http.StatusOK {
		show(http.StatusOK, "Code exchange failed", fmt.Sprintf("The token endpoint answered %d.", res.StatusCode), pretty.String())
		return
	}
	show(http.StatusOK, "Signed in", "The demo app received the code and exchanged it, with its PKCE verifier, for these tokens:", pretty.String())
}

// printDemoBrowser prints the browser sign-in URL once the public listener is up.
func printDemoBrowser(w io.Writer, cb *demoCallback, publicAddr net.Addr) error {
	if cb == nil {
		return nil
	}
	host, port, err := net.SplitHostPort(publicAddr.String())
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	public := "http://" + net.JoinHostPort(host, port)
	_, err = fmt.Fprintf(w, "\n# Browser sign-in (authorization code + PKCE): open this URL in a browser, sign in as %s / %s;\n"+
		"# the demo's own callback on %s redeems the code and shows the tokens:\n%s\n\n",
		demoUsername, demoPassword, cb.redirectURI(), cb.authorizeURL(public))
	return err
}
