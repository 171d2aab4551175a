package social

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// verdict names the outcome of a verification for table tests.
func verdict(id Identity, err error) string {
	switch {
	case err == nil:
		return "ok " + id.Subject
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, bff.ErrProviderUnavailable):
		return "unavailable"
	}
	return "error " + err.Error()
}

func TestGoogleProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		token  func(g *fakesocial.Endpoint) string
		want   string
	}{
		{"good token", 0, "", func(g *fakesocial.Endpoint) string { return g.Issue("111") }, "ok 111"},
		{"unknown token (401)", 0, "", func(*fakesocial.Endpoint) string { return "nope" }, "rejected"},
		{"400", 400, `{}`, nil, "rejected"},
		{"403 (scope)", 403, `{}`, nil, "rejected"},
		{"429 rate limited", 429, `{}`, nil, "unavailable"},
		{"500", 500, ``, nil, "unavailable"},
		{"503", 503, ``, nil, "unavailable"},
		{"302 redirect", 302, ``, nil, "unavailable"},
		{"200 not JSON", 200, `<html>`, nil, "unavailable"},
		{"200 without sub", 200, `{"email":"a@b.c"}`, nil, "rejected"},
		{"200 v2 endpoint (id)", 200, `{"id":"222"}`, nil, "ok 222"},
		{"200 sub wins over id", 200, `{"sub":"333","id":"x"}`, nil, "ok 333"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := fakesocial.NewGoogle(t)
			token := "any-token"
			if tt.token != nil {
				token = tt.token(g)
			}
			g.Fail(tt.status, tt.body)
			p := &googleProvider{client: newProviderClient(time.Second), endpoint: g.URL()}
			if got := verdict(p.Verify(context.Background(), token)); got != tt.want {
				t.Errorf("Verify = %q, want %q", got, tt.want)
			}
			for _, q := range g.Queries() {
				if strings.Contains(q, token) {
					t.Errorf("the token travelled in the URL: %q", q)
				}
			}
		})
	}
}

func TestProviderUnreachableAndSlow(t *testing.T) {
	t.Parallel()
	g := fakesocial.NewGoogle(t)
	token := g.Issue("1")
	g.Slow(10 * time.Second)
	p := &googleProvider{client: newProviderClient(100 * time.Millisecond), endpoint: g.URL()}
	start := time.Now()
	_, err := p.Verify(context.Background(), token)
	if !errors.Is(err, bff.ErrProviderUnavailable) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("slow provider: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout did not cut the call short: %s", d)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("the error names the token or the URL: %v", err)
	}

	down := &googleProvider{client: newProviderClient(time.Second), endpoint: fakesocial.UnreachableURL(t)}
	if got := verdict(down.Verify(context.Background(), token)); got != "unavailable" {
		t.Errorf("unreachable provider: %s", got)
	}
}

func TestFacebookProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		good   bool
		want   string
	}{
		{"good token", 0, "", true, "ok 10150"},
		{"invalid token (190)", 0, "", false, "rejected"},
		{"expired token (190/463)", 400, `{"error":{"code":190,"error_subcode":463}}`, false, "rejected"},
		{"rate limited (4)", 400, `{"error":{"code":4}}`, false, "unavailable"},
		{"user rate limited (17) as 403", 403, `{"error":{"code":17}}`, false, "unavailable"},
		{"transient", 400, `{"error":{"code":999,"is_transient":true}}`, false, "unavailable"},
		{"400 without a body", 400, ``, false, "rejected"},
		{"500", 500, `{"error":{"code":1}}`, false, "unavailable"},
		{"200 without id", 200, `{"name":"x"}`, false, "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := fakesocial.NewFacebook(t)
			token := "bad"
			if tt.good {
				token = f.Issue("10150")
			}
			f.Fail(tt.status, tt.body)
			p, err := newFacebookProvider(newProviderClient(time.Second), f.URL())
			if err != nil {
				t.Fatal(err)
			}
			if got := verdict(p.Verify(context.Background(), token)); got != tt.want {
				t.Errorf("Verify = %q, want %q", got, tt.want)
			}
			if q := f.Queries(); len(q) != 1 || q[0] != "fields=id" {
				t.Errorf("queries = %q, want [fields=id]", q)
			}
		})
	}
}

// TestGoogleProviderEmailScopeOnly: the Android app's token holds the
// userinfo.email scope alone — no openid, no profile — and userinfo answers
// it with sub, picture and the email, no name: enough to sign in.
func TestGoogleProviderEmailScopeOnly(t *testing.T) {
	t.Parallel()
	g := fakesocial.NewGoogle(t)
	token := g.IssueGrant(fakesocial.Grant{Subject: "110248495921238986420", Scope: fakesocial.GoogleEmailScope})
	p := &googleProvider{client: newProviderClient(time.Second), endpoint: g.URL()}
	if got := verdict(p.Verify(context.Background(), token)); got != "ok 110248495921238986420" {
		t.Errorf("Verify = %q", got)
	}
	// The answer, as Google gives it for such a token, parsed on its own.
	g.Fail(http.StatusOK, `{"sub":"110248495921238986420","picture":"https://lh3.googleusercontent.com/a/default-user=s96-c",`+
		`"email":"ana@gmail.com","email_verified":true}`)
	if got := verdict(p.Verify(context.Background(), "any")); got != "ok 110248495921238986420" {
		t.Errorf("Verify of the literal answer = %q", got)
	}
}

// TestAzureADProvider: Microsoft Graph's /me names the holder of a Graph
// token by id, with mail (else userPrincipalName) and displayName; a 401
// or 403 is a bad token, throttling and server errors are unavailability.
func TestAzureADProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		token  func(m *fakesocial.Endpoint) string
		want   string
		email  string
		reason string
	}{
		{"work account with mail", 0, "", func(m *fakesocial.Endpoint) string {
			return m.IssueGrant(fakesocial.Grant{Subject: "48d31887-5fad-4d73-a9f5-3c356e68a038", Mail: "ada@contoso.test"})
		}, "ok 48d31887-5fad-4d73-a9f5-3c356e68a038", "ada@contoso.test", ""},
		{"mail null: userPrincipalName", 0, "", func(m *fakesocial.Endpoint) string { return m.Issue("0b8f2e9a4c3d1e77") },
			"ok 0b8f2e9a4c3d1e77", "0b8f2e9a4c3d1e77@contoso.onmicrosoft.test", ""},
		{"only the id", 200, `{"id":"x1","mail":null,"displayName":null}`, nil, "ok x1", "", ""},
		{"unknown token (401)", 0, "", func(*fakesocial.Endpoint) string { return "EwBIA8l6BAAU" }, "rejected", "", "Graph does not accept it"},
		{"expired (401)", 0, "", func(m *fakesocial.Endpoint) string {
			return m.IssueGrant(fakesocial.Grant{Subject: "s", Expires: time.Now().Add(-time.Second)})
		}, "rejected", "", "invalid, expired"},
		{"403 without User.Read", 403, `{"error":{"code":"Authorization_RequestDenied"}}`, nil, "rejected", "", "User.Read"},
		{"400", 400, `{"error":{"code":"BadRequest"}}`, nil, "rejected", "", ""},
		{"429 throttled", 429, `{"error":{"code":"TooManyRequests"}}`, nil, "unavailable", "", ""},
		{"500", 500, ``, nil, "unavailable", "", ""},
		{"503", 503, `{"error":{"code":"serviceNotAvailable"}}`, nil, "unavailable", "", ""},
		{"504", 504, ``, nil, "unavailable", "", ""},
		{"302 redirect", 302, ``, nil, "unavailable", "", ""},
		{"200 not JSON", 200, `<html>`, nil, "unavailable", "", ""},
		{"200 without id", 200, `{"displayName":"Ada"}`, nil, "rejected", "", "does not identify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := fakesocial.NewMicrosoft(t)
			token := "EwB-any"
			if tt.token != nil {
				token = tt.token(m)
			}
			m.Fail(tt.status, tt.body)
			p := &azureADProvider{client: newProviderClient(time.Second), endpoint: m.URL()}
			id, err := p.Verify(context.Background(), token)
			if got := verdict(id, err); got != tt.want {
				t.Fatalf("Verify = %q (%v), want %q", got, err, tt.want)
			}
			if tt.reason != "" && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("reason %q lacks %q", err, tt.reason)
			}
			if err == nil && (id.Email != tt.email || !id.ExpiresAt.IsZero()) {
				t.Errorf("identity %+v, want email %q and no expiry (the cache's 60 s bound)", id, tt.email)
			}
			if err == nil && tt.status == 0 && id.Name != "Fake "+id.Subject {
				t.Errorf("name %q, want displayName", id.Name)
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("the error quotes the token: %v", err)
			}
			if leaks, q := m.URLLeaks(), m.Queries(); len(leaks) != 0 || len(q) != 1 || q[0] != "" {
				t.Errorf("requests carried %q in their URLs (queries %q); the token goes in Authorization only", leaks, q)
			}
		})
	}

	slow := fakesocial.NewMicrosoft(t)
	token := slow.Issue("s")
	slow.Slow(10 * time.Second)
	p := &azureADProvider{client: newProviderClient(100 * time.Millisecond), endpoint: slow.URL()}
	if _, err := p.Verify(context.Background(), token); !errors.Is(err, bff.ErrProviderUnavailable) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("slow Graph: %v", err)
	}
	down := &azureADProvider{client: newProviderClient(time.Second), endpoint: fakesocial.UnreachableURL(t)}
	if got := verdict(down.Verify(context.Background(), token)); got != "unavailable" {
		t.Errorf("unreachable Graph: %s", got)
	}
}

func newTestApple(t *testing.T, clock *testClock, audiences ...string) (*appleProvider, *fakesocial.Apple) {
	t.Helper()
	fake := fakesocial.NewApple(t, "org.example.app")
	if len(audiences) == 0 {
		audiences = []string{"org.example.app"}
	}
	return &appleProvider{client: newProviderClient(time.Second), jwksURL: fake.URL(),
		audiences: splitList(audiences), now: clock.Now}, fake
}

func TestAppleIDTokenChecks(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	p, fake := newTestApple(t, clock, "org.example.app, org.example.services")
	kid := fake.Current()
	claims := func(change func(c map[string]any)) map[string]any {
		c := fake.Claims("001234.abc.0987", clock.Now())
		if change != nil {
			change(c)
		}
		return c
	}
	good := fake.Sign(kid, claims(nil))
	other := fake.NewKey()
	parts := strings.Split(good, ".")
	otherPayload := strings.Split(fake.Sign(kid, claims(func(c map[string]any) { c["sub"] = "someone-else" })), ".")[1]

	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"good", good, "ok 001234.abc.0987"},
		{"Services ID audience", fake.Sign(kid, claims(func(c map[string]any) { c["aud"] = "org.example.services" })), "ok 001234.abc.0987"},
		{"aud array of one", fake.Sign(kid, claims(func(c map[string]any) { c["aud"] = []string{"org.example.app"} })), "ok 001234.abc.0987"},
		// Several audiences: azp names the app, and it must be one of ours.
		{"aud array holding ours, azp ours", fake.Sign(kid, claims(func(c map[string]any) {
			c["aud"], c["azp"] = []string{"x", "org.example.app"}, "org.example.app"
		})), "ok 001234.abc.0987"},
		{"aud array holding ours, azp our other audience", fake.Sign(kid, claims(func(c map[string]any) {
			c["aud"], c["azp"] = []string{"org.example.services", "org.example.app"}, "org.example.services"
		})), "ok 001234.abc.0987"},
		{"aud array holding ours, no azp", fake.Sign(kid, claims(func(c map[string]any) { c["aud"] = []string{"x", "org.example.app"} })), "rejected"},
		{"aud array holding ours, empty azp", fake.Sign(kid, claims(func(c map[string]any) {
			c["aud"], c["azp"] = []string{"x", "org.example.app"}, ""
		})), "rejected"},
		{"aud array holding ours, azp another app", fake.Sign(kid, claims(func(c map[string]any) {
			c["aud"], c["azp"] = []string{"org.attacker.app", "org.example.app"}, "org.attacker.app"
		})), "rejected"},
		{"aud array of ours only, no azp", fake.Sign(kid, claims(func(c map[string]any) {
			c["aud"] = []string{"org.example.services", "org.example.app"}
		})), "rejected"},
		{"single aud, azp ours", fake.Sign(kid, claims(func(c map[string]any) { c["azp"] = "org.example.app" })), "ok 001234.abc.0987"},
		{"single aud, azp another app", fake.Sign(kid, claims(func(c map[string]any) { c["azp"] = "org.attacker.app" })), "rejected"},
		{"azp ours but aud not", fake.Sign(kid, claims(func(c map[string]any) {
			c["aud"], c["azp"] = []string{"x", "y"}, "org.example.app"
		})), "rejected"},
		{"wrong aud", fake.Sign(kid, claims(func(c map[string]any) { c["aud"] = "org.attacker.app" })), "rejected"},
		{"no aud", fake.Sign(kid, claims(func(c map[string]any) { delete(c, "aud") })), "rejected"},
		{"wrong iss", fake.Sign(kid, claims(func(c map[string]any) { c["iss"] = "https://appleid.apple.com.evil" })), "rejected"},
		{"expired", fake.Sign(kid, claims(func(c map[string]any) { c["exp"] = clock.Now().Add(-time.Second).Unix() })), "rejected"},
		{"expires now", fake.Sign(kid, claims(func(c map[string]any) { c["exp"] = clock.Now().Unix() })), "rejected"},
		{"no exp", fake.Sign(kid, claims(func(c map[string]any) { delete(c, "exp") })), "rejected"},
		{"iat in the future", fake.Sign(kid, claims(func(c map[string]any) { c["iat"] = clock.Now().Add(time.Hour).Unix() })), "rejected"},
		{"nbf in the future", fake.Sign(kid, claims(func(c map[string]any) { c["nbf"] = clock.Now().Add(time.Hour).Unix() })), "rejected"},
		{"no sub", fake.Sign(kid, claims(func(c map[string]any) { delete(c, "sub") })), "rejected"},
		{"payload swapped (bad signature)", parts[0] + "." + otherPayload + "." + parts[2], "rejected"},
		{"signature of another key", parts[0] + "." + parts[1] + "." + strings.Split(fake.Sign(other, claims(nil)), ".")[2], "rejected"},
		{"HS256 keyed with the public key", fake.SignHS256(kid, claims(nil)), "rejected"},
		{"alg none", fakesocial.Unsigned(kid, claims(nil)), "rejected"},
		{"no kid", strings.Join([]string{"eyJhbGciOiJSUzI1NiJ9", parts[1], parts[2]}, "."), "rejected"},
		{"not a JWT", "ya29.an-access-token", "rejected"},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verdict(p.Verify(context.Background(), tt.token)); got != tt.want {
				t.Errorf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
	if n := fake.Fetches(); n != 1 {
		t.Errorf("key set fetched %d times, want once", n)
	}
	if id, err := p.Verify(context.Background(), good); err != nil || !id.ExpiresAt.Equal(time.Unix(claims(nil)["exp"].(int64), 0)) || id.Nonce != "" {
		t.Errorf("ExpiresAt = %v, nonce %q, %v", id.ExpiresAt, id.Nonce, err)
	}
	// The nonce claim is handed on, for the exchange to check.
	nonced := fake.Sign(kid, claims(func(c map[string]any) { c["nonce"] = fakesocial.NonceClaim("raw-nonce") }))
	if id, err := p.Verify(context.Background(), nonced); err != nil || id.Nonce != fakesocial.NonceClaim("raw-nonce") {
		t.Errorf("nonce = %q, %v", id.Nonce, err)
	}
}

// TestCheckNonce: the id_token's nonce claim must be the lowercase hex
// SHA-256 of the raw nonce the app sends, exactly.
func TestCheckNonce(t *testing.T) {
	t.Parallel()
	const raw = "0a9Zq-Ld3_r8KxYv2mN7pT4sW1bE6uH5"
	good := fakesocial.NonceClaim(raw)
	if len(good) != 64 || strings.ToLower(good) != good {
		t.Fatalf("NonceClaim = %q", good)
	}
	tests := []struct {
		name, raw, claim string
		ok               bool
	}{
		{"SHA-256 of the raw nonce", raw, good, true},
		{"no nonce claim", raw, "", false},
		{"the raw nonce itself", raw, raw, false},
		{"uppercase hex", raw, strings.ToUpper(good), false},
		{"another nonce's hash", "another", good, false},
		{"hash of the hash", good, good, false},
		{"truncated", raw, good[:63], false},
		{"longer", raw, good + "0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckNonce(tt.raw, tt.claim)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrRejected)) {
				t.Errorf("CheckNonce = %v, want ok %v", err, tt.ok)
			}
			if err != nil && (strings.Contains(err.Error(), tt.raw) || strings.Contains(err.Error(), good)) {
				t.Errorf("the error quotes the nonce: %v", err)
			}
		})
	}
}

// TestAppleKeyRotation: an unknown kid makes the service fetch the key set
// again, at most once a minute, so that Apple's rotations are picked up and
// made-up kids do not make it hammer Apple.
func TestAppleKeyRotation(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	p, fake := newTestApple(t, clock)
	ctx := context.Background()
	check := func(step, token, want string, fetches int) {
		t.Helper()
		if got := verdict(p.Verify(ctx, token)); got != want {
			t.Errorf("%s: %q, want %q", step, got, want)
		}
		if n := fake.Fetches(); n != fetches {
			t.Errorf("%s: %d fetches of the key set, want %d", step, n, fetches)
		}
	}
	check("first token", fake.IDToken("a"), "ok a", 1)
	check("same key", fake.IDToken("b"), "ok b", 1)

	// Apple rotates: the new kid is unknown here. Right after a fetch it is
	// not fetched again.
	old := fake.Current()
	fake.Rotate()
	check("new kid within the minute", fake.IDToken("c"), "rejected", 1)
	clock.Add(30 * time.Second)
	check("new kid, 30 s later", fake.IDToken("c"), "rejected", 1)
	clock.Add(31 * time.Second)
	check("new kid after a minute", fake.IDToken("c"), "ok c", 2)
	// The withdrawn key is gone with the fresh set.
	check("withdrawn kid", fake.Sign(old, fake.Claims("d", clock.Now())), "rejected", 2)

	// Made-up kids: at most one fetch a minute, however many arrive.
	unknown := fake.NewKey()
	clock.Add(61 * time.Second)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := p.Verify(ctx, fake.Sign(unknown, fake.Claims("e", clock.Now()))); !errors.Is(err, ErrRejected) {
				t.Errorf("unknown kid: %v", err)
			}
		})
	}
	wg.Wait()
	check("after a burst of unknown kids", fake.Sign(unknown, fake.Claims("e", clock.Now())), "rejected", 3)
	check("the known kid still works", fake.IDToken("f"), "ok f", 3)

	// An hour on, the set is refreshed on use; a key Apple withdrew in the
	// meantime no longer verifies, though it was known.
	clock.Add(appleKeysMaxAge + time.Second)
	withdrawn := fake.Current()
	fake.Rotate()
	check("key withdrawn while the set was old", fake.Sign(withdrawn, fake.Claims("g", clock.Now())), "rejected", 4)
}

// TestAppleKeySetUnavailable: without a key set the answer is
// "unavailable" (502), retried every few seconds; an old set keeps
// serving while Apple cannot be reached.
func TestAppleKeySetUnavailable(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	p, fake := newTestApple(t, clock)
	ctx := context.Background()
	fake.Fail(http.StatusServiceUnavailable)
	if got := verdict(p.Verify(ctx, fake.IDToken("a"))); got != "unavailable" {
		t.Errorf("cold start, key set down: %s", got)
	}
	if got := verdict(p.Verify(ctx, fake.IDToken("a"))); got != "unavailable" || fake.Fetches() != 1 {
		t.Errorf("again at once: %s after %d fetches, want unavailable after 1", got, fake.Fetches())
	}
	fake.Fail(0)
	clock.Add(appleRetryInterval)
	if got := verdict(p.Verify(ctx, fake.IDToken("a"))); got != "ok a" || fake.Fetches() != 2 {
		t.Errorf("after the retry interval: %s after %d fetches", got, fake.Fetches())
	}
	// An hour later the set is old: it is fetched again, and while Apple
	// is down the old keys still verify.
	fake.Fail(http.StatusInternalServerError)
	clock.Add(appleKeysMaxAge + time.Second)
	if got := verdict(p.Verify(ctx, fake.Sign(fake.Current(), fake.Claims("b", clock.Now())))); got != "ok b" || fake.Fetches() != 3 {
		t.Errorf("old set, Apple down: %s after %d fetches", got, fake.Fetches())
	}
	// ...but an unknown kid cannot be judged: unavailable, not rejected.
	if got := verdict(p.Verify(ctx, fake.Sign(fake.NewKey(), fake.Claims("c", clock.Now())))); got != "unavailable" {
		t.Errorf("unknown kid while Apple is down: %s", got)
	}
}

// countingProvider counts calls and answers what it is told.
type countingProvider struct {
	mu    sync.Mutex
	calls int
	delay time.Duration
	id    Identity
	err   error
}

func (p *countingProvider) Verify(ctx context.Context, _ string) (Identity, error) {
	p.mu.Lock()
	p.calls++
	id, err, delay := p.id, p.err, p.delay
	p.mu.Unlock()
	time.Sleep(delay)
	return id, err
}

func (p *countingProvider) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func TestAnswerCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("replays within a minute call once", func(t *testing.T) {
		t.Parallel()
		clock := newTestClock()
		c := NewCache(clock.Now, nil)
		p := &countingProvider{id: Identity{Subject: "s"}}
		for i := range 5 {
			id, cached, err := c.Verify(ctx, "google-oauth2", p, "tok")
			if err != nil || id.Subject != "s" || cached != (i > 0) {
				t.Fatalf("replay %d: %v cached=%v %v", i, id, cached, err)
			}
			clock.Add(10 * time.Second)
		}
		if p.count() != 1 {
			t.Errorf("%d provider calls within 50 s, want 1", p.count())
		}
		clock.Add(11 * time.Second) // 61 s after the call
		if _, cached, _ := c.Verify(ctx, "google-oauth2", p, "tok"); cached || p.count() != 2 {
			t.Errorf("after 61 s: cached=%v, %d calls", cached, p.count())
		}
		// Another token, or the same token at another backend, is another answer.
		_, _, _ = c.Verify(ctx, "google-oauth2", p, "tok2")
		_, _, _ = c.Verify(ctx, "facebook", p, "tok")
		if p.count() != 4 {
			t.Errorf("%d calls, want 4", p.count())
		}
	})

	t.Run("never beyond the token's expiry", func(t *testing.T) {
		t.Parallel()
		clock := newTestClock()
		c := NewCache(clock.Now, nil)
		p := &countingProvider{id: Identity{Subject: "s", ExpiresAt: clock.Now().Add(20 * time.Second)}}
		_, _, _ = c.Verify(ctx, "apple-id", p, "tok")
		clock.Add(19 * time.Second)
		if _, cached, _ := c.Verify(ctx, "apple-id", p, "tok"); !cached {
			t.Error("not cached within the token's validity")
		}
		clock.Add(time.Second)
		if _, cached, _ := c.Verify(ctx, "apple-id", p, "tok"); cached {
			t.Error("cached at the token's expiry")
		}
		p.id.ExpiresAt = clock.Now().Add(-time.Second)
		c = NewCache(clock.Now, nil)
		_, _, _ = c.Verify(ctx, "apple-id", p, "old")
		if c.len() != 0 {
			t.Error("an expired answer was cached")
		}
	})

	t.Run("bad answers are not kept", func(t *testing.T) {
		t.Parallel()
		c := NewCache(time.Now, nil)
		p := &countingProvider{err: rejected("no")}
		for range 3 {
			if _, _, err := c.Verify(ctx, "google-oauth2", p, "tok"); !errors.Is(err, ErrRejected) {
				t.Fatal(err)
			}
		}
		p.err = unavailable("google-oauth2", "down")
		_, _, _ = c.Verify(ctx, "google-oauth2", p, "tok")
		if p.count() != 4 || c.len() != 0 {
			t.Errorf("%d calls and %d entries, want 4 and 0", p.count(), c.len())
		}
	})

	t.Run("concurrent replays share one call", func(t *testing.T) {
		t.Parallel()
		c := NewCache(time.Now, nil)
		p := &countingProvider{id: Identity{Subject: "s"}, delay: 200 * time.Millisecond}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if id, _, err := c.Verify(ctx, "google-oauth2", p, "tok"); err != nil || id.Subject != "s" {
					t.Errorf("%v %v", id, err)
				}
			})
		}
		wg.Wait()
		if p.count() != 1 {
			t.Errorf("%d provider calls for 20 concurrent exchanges, want 1", p.count())
		}
	})

	t.Run("a caller that gives up", func(t *testing.T) {
		t.Parallel()
		c := NewCache(time.Now, nil)
		p := &countingProvider{id: Identity{Subject: "s"}, delay: 200 * time.Millisecond}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, _, err := c.Verify(cctx, "google-oauth2", p, "tok"); !errors.Is(err, bff.ErrProviderUnavailable) {
			t.Errorf("given up: %v", err)
		}
		// The call went on: the next caller shares it (or its cached
		// answer) rather than calling again, and its answer is kept.
		if _, _, err := c.Verify(ctx, "google-oauth2", p, "tok"); err != nil || p.count() != 1 {
			t.Errorf("the next caller: %v, %d calls", err, p.count())
		}
		if _, cached, err := c.Verify(ctx, "google-oauth2", p, "tok"); err != nil || !cached || p.count() != 1 {
			t.Errorf("after the call finished: cached=%v %v, %d calls", cached, err, p.count())
		}
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		clock := newTestClock()
		c := NewCache(clock.Now, nil)
		c.max = 3
		p := &countingProvider{id: Identity{Subject: "s"}}
		for i := range 10 {
			_, _, _ = c.Verify(ctx, "facebook", p, strings.Repeat("t", i+1))
			if c.len() > 3 {
				t.Fatalf("%d entries, bound 3", c.len())
			}
		}
		clock.Add(2 * time.Minute)
		_, _, _ = c.Verify(ctx, "facebook", p, "new")
		if c.len() != 1 {
			t.Errorf("%d entries after the others expired, want 1", c.len())
		}
	})

	t.Run("observes results", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		seen := map[string]int{}
		c := NewCache(time.Now, func(backend, result string) {
			mu.Lock()
			defer mu.Unlock()
			seen[backend+"/"+result]++
		})
		good := &countingProvider{id: Identity{Subject: "s"}}
		_, _, _ = c.Verify(ctx, "google-oauth2", good, "a")
		_, _, _ = c.Verify(ctx, "google-oauth2", good, "a")
		_, _, _ = c.Verify(ctx, "facebook", &countingProvider{err: rejected("x")}, "b")
		_, _, _ = c.Verify(ctx, "apple-id", &countingProvider{err: unavailable("apple-id", "x")}, "c")
		want := map[string]int{"google-oauth2/ok": 1, "google-oauth2/cached": 1, "facebook/rejected": 1, "apple-id/unavailable": 1}
		mu.Lock()
		defer mu.Unlock()
		for k, v := range want {
			if seen[k] != v {
				t.Errorf("%s = %d, want %d (all: %v)", k, seen[k], v, seen)
			}
		}
	})
}

func TestNewSocialDisabledProviders(t *testing.T) {
	t.Parallel()
	s, err := New(Config{GoogleUserinfoURL: "https://g.test/userinfo", AppleJWKSURL: "https://a.test/keys",
		AppleAudiences: []string{" , "}}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.providers[bff.ProviderGoogle]; !ok {
		t.Error("google disabled")
	}
	for _, b := range []string{bff.ProviderFacebook, bff.ProviderApple} {
		if _, ok := s.disabled[b]; !ok {
			t.Errorf("%s not disabled", b)
		}
	}
	if !strings.Contains(s.disabled[bff.ProviderApple], "BFF_APPLE_AUDIENCE") {
		t.Errorf("apple-id disabled for %q; the reason should name BFF_APPLE_AUDIENCE", s.disabled[bff.ProviderApple])
	}
}
