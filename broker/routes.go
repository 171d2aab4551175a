package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultRoutes is the allowlist of SPEC §10, in the syntax of
// BFF_ECOMMERCE_ROUTES.
const DefaultRoutes = "GET /api/v2/orders/, GET /api/v2/orders/{number}/, POST /api/v2/baskets/, " +
	"GET /api/v2/baskets/{id}/, POST /api/v2/checkout/, POST /api/v2/payment/{processor}/"

// Methods an allowlist entry may name. OPTIONS, TRACE and CONNECT are
// never brokered.
var allowedMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// Route is one allowlist entry: a method and a path pattern of the payment
// service. A {param} segment matches one path segment of safe characters;
// everything else matches itself, trailing slash included.
type Route struct {
	Method  string
	Pattern string
	// segs are the pattern's segments between slashes; "" is a parameter.
	segs          []string
	trailingSlash bool
	name          string // String(), built once
}

// String is "METHOD /pattern/": the route's name in metrics and logs.
func (r Route) String() string {
	if r.name == "" {
		return r.Method + " " + r.Pattern
	}
	return r.name
}

// ParseRoutes reads an allowlist: entries "METHOD /path/{param}/" separated
// by commas or newlines; blank entries and lines starting with # are
// skipped. At least one entry is required.
func ParseRoutes(s string) ([]Route, error) {
	var routes []Route
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, entry := range strings.Split(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			r, err := parseRoute(entry)
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(routes, func(o Route) bool { return o.String() == r.String() }) {
				return nil, fmt.Errorf("route %q is listed twice", entry)
			}
			routes = append(routes, r)
		}
	}
	if len(routes) == 0 {
		return nil, errors.New("no routes: list at least one \"METHOD /path/\" entry")
	}
	return routes, nil
}

// MustParseRoutes is ParseRoutes for allowlists known to be good.
func MustParseRoutes(s string) []Route {
	r, err := ParseRoutes(s)
	if err != nil {
		panic(err)
	}
	return r
}

func parseRoute(entry string) (Route, error) {
	fields := strings.Fields(entry)
	if len(fields) != 2 {
		return Route{}, fmt.Errorf("route %q: want \"METHOD /path/\"", entry)
	}
	method, pattern := fields[0], fields[1]
	if !slices.Contains(allowedMethods, method) {
		return Route{}, fmt.Errorf("route %q: method must be one of %s", entry, strings.Join(allowedMethods, ", "))
	}
	rest, ok := strings.CutPrefix(pattern, "/")
	if !ok {
		return Route{}, fmt.Errorf("route %q: the path must start with /", entry)
	}
	r := Route{Method: method, Pattern: pattern, name: method + " " + pattern}
	if pattern == "/" {
		return r, nil // no segments: matches "/" alone
	}
	rest, r.trailingSlash = strings.CutSuffix(rest, "/")
	for _, p := range strings.Split(rest, "/") {
		switch {
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			if !validParamName(p[1 : len(p)-1]) {
				return Route{}, fmt.Errorf("route %q: parameter %s must be {name} with letters, digits and _", entry, p)
			}
			r.segs = append(r.segs, "")
		case !safeSegment(p):
			return Route{}, fmt.Errorf("route %q: segment %q must be non-empty, not a dot segment, and hold only letters, digits and - . _ ~", entry, p)
		default:
			r.segs = append(r.segs, p)
		}
	}
	return r, nil
}

func validParamName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// safeSegment reports whether a path segment is made of unreserved
// characters only (RFC 3986 §2.3) and is not a dot segment. Nothing that
// needs escaping — an encoded slash, a percent sign, a backslash — is ever
// brokered.
func safeSegment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > maxSegment {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// Bounds on a brokered path.
const (
	maxPath    = 2048
	maxSegment = 256
)

// Allowlist is the set of routes the broker forwards.
type Allowlist []Route

// Match returns the first route whose method is method and whose pattern
// matches path, the escaped path of the request below /api/ecommerce. Paths
// with empty, dot or escaped segments match nothing.
func (a Allowlist) Match(method, path string) (Route, bool) {
	if len(path) > maxPath || !strings.HasPrefix(path, "/") {
		return Route{}, false
	}
	for _, r := range a {
		if r.Method == method && r.match(path[1:]) {
			return r, true
		}
	}
	return Route{}, false
}

// match compares path (without its leading slash) with the pattern,
// segment by segment, without allocating.
func (r Route) match(path string) bool {
	var ok bool
	if r.trailingSlash {
		if path, ok = strings.CutSuffix(path, "/"); !ok {
			return false
		}
	}
	if len(r.segs) == 0 {
		return path == ""
	}
	for i, want := range r.segs {
		part, rest, more := strings.Cut(path, "/")
		if !safeSegment(part) || (want != "" && want != part) {
			return false
		}
		if last := i == len(r.segs)-1; last != !more {
			return false // fewer or more segments than the pattern
		}
		path = rest
	}
	return true
}
