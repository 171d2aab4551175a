package broker_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/openedx/mobile-auth-bff/broker"
)

// FuzzAllowlistMatch checks the allowlist matcher against a plain
// reference: it never panics, a match is exactly the first route the
// reference finds, every segment of a matched path is made of unreserved
// characters and is no dot segment, and an escaped character (an encoded
// slash or dot, a percent sign) never reaches a route. routes is an
// allowlist in BFF_ECOMMERCE_ROUTES syntax ("" or an invalid one means
// DefaultRoutes); target is a request target below /api/ecommerce, put
// through url.ParseRequestURI and EscapedPath the way the handler gets it.
func FuzzAllowlistMatch(f *testing.F) {
	for _, s := range []struct{ routes, method, target string }{
		{"", "GET", "/api/v2/orders/"},
		{"", "GET", "/api/v2/orders/EDX-100001/"},
		{"", "POST", "/api/v2/payment/apple_pay.v2~x/"},
		{"", "GET", "/api/v2/orders/%2e%2e/"},
		{"", "GET", "/api/v2/orders/a%2Fb/"},
		{"", "GET", "/api/v2/baskets/../orders/"},
		{"", "GET", "/api/v2/orders//"},
		{"", "GET", `/api/v2/orders/..\..\/`},
		{"", "GET", "/api/v2/orders/%41/?q=1"},
		{"GET /", "GET", "/"},
		{"PUT /api/v3/baskets/{basket_id}/lines/{line}", "PUT", "/api/v3/baskets/7/lines/3"},
		{"DELETE /x, GET /{a}/{b}/", "GET", "/x/./"},
	} {
		f.Add(s.routes, s.method, s.target)
	}
	def := broker.Allowlist(broker.MustParseRoutes(broker.DefaultRoutes))
	f.Fuzz(func(t *testing.T, routes, method, target string) {
		list := def
		if parsed, err := broker.ParseRoutes(routes); err == nil {
			list = parsed
		}
		// The raw string, as a caller of Match might pass it.
		checkMatch(t, list, method, target)

		// The path the handler passes: the escaped path of the request.
		u, err := url.ParseRequestURI("/api/ecommerce" + target)
		if err != nil {
			return
		}
		path := strings.TrimPrefix(u.EscapedPath(), "/api/ecommerce")
		if r, ok := checkMatch(t, list, method, path); ok {
			// What the path means after decoding is what it says.
			if decoded := strings.TrimPrefix(u.Path, "/api/ecommerce"); decoded != path {
				t.Fatalf("%s %q matched %s, but decodes to %q", method, target, r, decoded)
			}
		}
	})
}

// checkMatch compares Match with referenceMatch and checks the invariants
// of a match.
func checkMatch(t *testing.T, list broker.Allowlist, method, path string) (broker.Route, bool) {
	t.Helper()
	r, ok := list.Match(method, path)
	want, wantOK := referenceMatch(list, method, path)
	if ok != wantOK || (ok && r.String() != want.String()) {
		t.Fatalf("Match(%q, %q) = %v, %v; the reference finds %v, %v", method, path, r, ok, want, wantOK)
	}
	if !ok {
		return r, false
	}
	if r.Method != method {
		t.Fatalf("Match(%q, %q) = %s: another method", method, path, r)
	}
	if strings.ContainsAny(path, "%\\?#;") || strings.Contains(path, "//") {
		t.Fatalf("Match(%q, %q) = %s: an escaped or empty segment matched", method, path, r)
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if seg == "" && i != 0 && i != len(segs)-1 {
			t.Fatalf("Match(%q, %q) = %s: empty segment %d", method, path, r, i)
		}
		if seg == "." || seg == ".." || len(seg) > 256 || !unreserved(seg) {
			t.Fatalf("Match(%q, %q) = %s: segment %q is not plain", method, path, r, seg)
		}
	}
	return r, true
}

// referenceMatch is the allowlist's matching rule written the slow, plain
// way: split both at slashes and compare segment by segment.
func referenceMatch(list broker.Allowlist, method, path string) (broker.Route, bool) {
	if len(path) > 2048 || !strings.HasPrefix(path, "/") {
		return broker.Route{}, false
	}
	got := strings.Split(path, "/")
	for _, r := range list {
		if r.Method != method {
			continue
		}
		want := strings.Split(r.Pattern, "/")
		if len(want) != len(got) {
			continue
		}
		match := true
		for i := range want {
			w, g := want[i], got[i]
			switch {
			case strings.HasPrefix(w, "{"):
				match = g != "" && g != "." && g != ".." && len(g) <= 256 && unreserved(g)
			default:
				match = w == g
			}
			if !match {
				break
			}
		}
		if match {
			return r, true
		}
	}
	return broker.Route{}, false
}

// unreserved reports whether s holds only RFC 3986 unreserved characters.
func unreserved(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	return true
}
