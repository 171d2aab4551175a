package broker_test

import (
	"strings"
	"testing"

	"github.com/openedx/mobile-auth-bff/broker"
)

func TestDefaultAllowlist(t *testing.T) {
	t.Parallel()
	routes := broker.Allowlist(broker.MustParseRoutes(broker.DefaultRoutes))
	tests := []struct {
		method, path string
		want         string // the matched route, "" for none
	}{
		{"GET", "/api/v2/orders/", "GET /api/v2/orders/"},
		{"GET", "/api/v2/orders/EDX-100001/", "GET /api/v2/orders/{number}/"},
		{"GET", "/api/v2/baskets/42/", "GET /api/v2/baskets/{id}/"},
		{"POST", "/api/v2/baskets/", "POST /api/v2/baskets/"},
		{"POST", "/api/v2/checkout/", "POST /api/v2/checkout/"},
		{"POST", "/api/v2/payment/cybersource/", "POST /api/v2/payment/{processor}/"},
		{"POST", "/api/v2/payment/apple_pay.v2~x/", "POST /api/v2/payment/{processor}/"},

		// Trailing slashes are exact.
		{"GET", "/api/v2/orders", ""},
		{"GET", "/api/v2/orders/EDX-100001", ""},
		{"POST", "/api/v2/checkout", ""},
		// One segment per parameter, no more, no less.
		{"GET", "/api/v2/orders/EDX-1/items/", ""},
		{"GET", "/api/v2/orders/EDX-1/2/", ""},
		{"POST", "/api/v2/payment/", ""},
		{"GET", "/api/v2/", ""},
		{"GET", "/", ""},
		{"GET", "", ""},
		// Methods are part of the route.
		{"POST", "/api/v2/orders/", ""},
		{"HEAD", "/api/v2/orders/", ""},
		{"DELETE", "/api/v2/baskets/42/", ""},
		{"OPTIONS", "/api/v2/orders/", ""},
		{"get", "/api/v2/orders/", ""},
		// Case matters.
		{"GET", "/API/v2/orders/", ""},
		// Traversal, empty segments, escapes.
		{"GET", "/api/v2/orders/../", ""},
		{"GET", "/api/v2/orders/./", ""},
		{"GET", "/api/v2/baskets/../orders/", ""},
		{"GET", "/api/v2/orders/../../../admin/", ""},
		{"GET", "/api/v2/orders/..", ""},
		{"GET", "/api/v2/orders//", ""},
		{"GET", "//api/v2/orders/", ""},
		{"GET", "/api//v2/orders/", ""},
		{"GET", "/api/v2/orders/%2e%2e/", ""},
		{"GET", "/api/v2/orders/a%2Fb/", ""},
		{"GET", "/api/v2/orders/a%2fb/", ""},
		{"GET", "/api/v2/orders/%41/", ""},
		{"GET", `/api/v2/orders/a\b/`, ""},
		{"GET", `/api/v2/orders/..\..\/`, ""},
		{"GET", "/api/v2/orders/a;b/", ""},
		{"GET", "/api/v2/orders/a b/", ""},
		{"GET", "/api/v2/orders/a?b/", ""},
		{"GET", "/api/v2/orders/é/", ""},
		{"GET", "/api/v2/orders/a\x00/", ""},
		{"GET", "api/v2/orders/", ""},
		{"GET", "/api/v2/orders/" + strings.Repeat("a", 300) + "/", ""},
		{"GET", "/api/v2/orders/" + strings.Repeat("a/", 2000), ""},
	}
	for _, tt := range tests {
		r, ok := routes.Match(tt.method, tt.path)
		got := ""
		if ok {
			got = r.String()
		}
		if got != tt.want {
			t.Errorf("Match(%s %q) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestParseRoutes(t *testing.T) {
	t.Parallel()
	got, err := broker.ParseRoutes(`
		# the orders
		GET /api/v2/orders/, GET /api/v2/orders/{number}/
		PUT /api/v3/baskets/{basket_id}/lines/{line}
		DELETE /x
		GET /`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range got {
		names = append(names, r.String())
	}
	want := "GET /api/v2/orders/|GET /api/v2/orders/{number}/|PUT /api/v3/baskets/{basket_id}/lines/{line}|DELETE /x|GET /"
	if strings.Join(names, "|") != want {
		t.Errorf("ParseRoutes = %v, want %s", names, want)
	}
	routes := broker.Allowlist(got)
	for _, tc := range []struct {
		method, path string
		ok           bool
	}{
		{"PUT", "/api/v3/baskets/7/lines/3", true},
		{"PUT", "/api/v3/baskets/7/lines/3/", false},
		{"DELETE", "/x", true},
		{"DELETE", "/x/", false},
		{"GET", "/", true},
		{"GET", "//", false},
	} {
		if _, ok := routes.Match(tc.method, tc.path); ok != tc.ok {
			t.Errorf("Match(%s %s) = %v, want %v", tc.method, tc.path, ok, tc.ok)
		}
	}

	for _, bad := range []string{
		"", " , ,", "# only a comment",
		"GET", "/api/v2/orders/", "GET /a/ extra", "get /a/", "OPTIONS /a/", "TRACE /a/", "CONNECT /a/",
		"GET a/", "GET /a//b/", "GET //", "GET /a/../b/", "GET /a/./", "GET /a/{}/", "GET /a/{x y}/",
		"GET /a/{x-y}/", "GET /a/{x", "GET /a/%2F/", "GET /a/b c/", `GET /a\b/`, "GET /é/",
		"GET /a/, GET /a/",
	} {
		if _, err := broker.ParseRoutes(bad); err == nil {
			t.Errorf("ParseRoutes(%q) accepted it", bad)
		}
	}
}
