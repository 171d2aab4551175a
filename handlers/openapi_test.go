package handlers_test

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
)

// specPath is openapi.yaml at the module root; go test runs in handlers/.
const specPath = "../openapi.yaml"

// httpMethods are the operation keys of an OpenAPI path item. Echo's
// internal routes (RouteNotFound catch-alls of groups) use other "methods"
// and are therefore ignored.
var httpMethods = []string{
	http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete,
	http.MethodOptions, http.MethodHead, http.MethodPatch, http.MethodTrace,
}

// openAPIDoc is the part of an OpenAPI 3.x document this test reads.
type openAPIDoc struct {
	OpenAPI string `yaml:"openapi"`
	Info    struct {
		Title   string `yaml:"title"`
		Version string `yaml:"version"`
	} `yaml:"info"`
	Servers []server             `yaml:"servers"`
	Paths   map[string]yaml.Node `yaml:"paths"`
}

type server struct {
	URL      string `yaml:"url"`
	Listener string `yaml:"x-listener"`
}

// pathItem is an OpenAPI path item; operations are read from the raw node.
type pathItem struct {
	Listener   string      `yaml:"x-listener"`
	Servers    []server    `yaml:"servers"`
	Parameters []yaml.Node `yaml:"parameters"`
}

type operation struct {
	OperationID string                 `yaml:"operationId"`
	Parameters  []yaml.Node            `yaml:"parameters"`
	Responses   map[string]yaml.Node   `yaml:"responses"`
	Security    *[]map[string][]string `yaml:"security"`
}

type parameter struct {
	Name string `yaml:"name"`
	In   string `yaml:"in"`
}

// specOp is one operation of the spec, with the listener that serves it.
type specOp struct {
	listener, method, path string
	item                   pathItem
	op                     operation
}

func (o specOp) String() string { return o.method + " " + o.path }

// loadSpec parses openapi.yaml, failing the test when it is not an
// OpenAPI 3.x document this test can read.
func loadSpec(t *testing.T) (*yaml.Node, openAPIDoc, []specOp) {
	t.Helper()
	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatalf("%s is not valid YAML: %v", specPath, err)
	}
	var doc openAPIDoc
	if err := root.Decode(&doc); err != nil {
		t.Fatalf("%s does not have the shape of an OpenAPI document: %v", specPath, err)
	}
	if !regexp.MustCompile(`^3\.\d+\.\d+$`).MatchString(doc.OpenAPI) {
		t.Fatalf("openapi: %q, want an OpenAPI 3.x version like 3.1.0", doc.OpenAPI)
	}
	if doc.Info.Title == "" || doc.Info.Version == "" {
		t.Errorf("info.title and info.version are required (got %q, %q)", doc.Info.Title, doc.Info.Version)
	}
	if len(doc.Paths) == 0 {
		t.Fatal("the spec has no paths")
	}

	var ops []specOp
	for path, node := range doc.Paths {
		var item pathItem
		if err := node.Decode(&item); err != nil {
			t.Errorf("path %s: %v", path, err)
			continue
		}
		var keys map[string]yaml.Node
		if err := node.Decode(&keys); err != nil {
			t.Errorf("path %s: %v", path, err)
			continue
		}
		n := 0
		for key, opNode := range keys {
			method := strings.ToUpper(key)
			if !slices.Contains(httpMethods, method) {
				continue
			}
			var op operation
			if err := opNode.Decode(&op); err != nil {
				t.Errorf("%s %s: %v", method, path, err)
				continue
			}
			ops = append(ops, specOp{listener: item.Listener, method: method, path: path, item: item, op: op})
			n++
		}
		if n == 0 {
			t.Errorf("path %s has no operation", path)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].String() < ops[j].String() })
	return &root, doc, ops
}

// echoParam matches an Echo path parameter (":id") or wildcard ("*").
var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)|\*`)

// routeKeys returns "METHOD /path" for every route of e, in OpenAPI's path
// syntax: ":id" becomes "{id}" and a trailing wildcard "*" becomes "{path}".
func routeKeys(e *echo.Echo) []string {
	var keys []string
	for _, r := range e.Routes() {
		if !slices.Contains(httpMethods, r.Method) {
			continue // Echo's RouteNotFound catch-alls and other internals
		}
		p := echoParam.ReplaceAllStringFunc(r.Path, func(m string) string {
			if m == "*" {
				return "{path}"
			}
			return "{" + m[1:] + "}"
		})
		keys = append(keys, r.Method+" "+p)
	}
	sort.Strings(keys)
	return slices.Compact(keys)
}

// TestOpenAPIMatchesRoutes fails when a route of either listener is missing
// from openapi.yaml, or the spec documents an operation the listener does
// not serve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, _, ops := loadSpec(t)

	routers := map[string]*echo.Echo{"public": env.Public, "admin": env.AdminH}
	documented := map[string][]string{}
	for _, o := range ops {
		if _, ok := routers[o.listener]; !ok {
			t.Errorf("%s: x-listener is %q, want public or admin", o, o.listener)
			continue
		}
		documented[o.listener] = append(documented[o.listener], o.String())
	}

	for _, listener := range []string{"public", "admin"} {
		served := routeKeys(routers[listener])
		if len(served) == 0 {
			t.Fatalf("the %s listener has no routes: the test reads the wrong router", listener)
		}
		var undocumented, unserved []string
		for _, k := range served {
			if !slices.Contains(documented[listener], k) {
				undocumented = append(undocumented, k)
			}
		}
		for _, k := range documented[listener] {
			if !slices.Contains(served, k) {
				unserved = append(unserved, k)
			}
		}
		if len(undocumented) > 0 {
			t.Errorf("%s listener: routes missing from openapi.yaml (add them with x-listener: %s):\n\t%s",
				listener, listener, strings.Join(undocumented, "\n\t"))
		}
		if len(unserved) > 0 {
			t.Errorf("%s listener: operations in openapi.yaml that the router does not serve:\n\t%s",
				listener, strings.Join(unserved, "\n\t"))
		}
	}
}

// TestOpenAPIDocument checks what a client generator relies on: operation
// ids, documented responses, path parameters, servers, security and
// references that resolve.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	root, doc, ops := loadSpec(t)

	serverOf := map[string]string{}
	for _, s := range doc.Servers {
		if s.Listener != "public" && s.Listener != "admin" {
			t.Errorf("server %s: x-listener is %q, want public or admin", s.URL, s.Listener)
			continue
		}
		if prev, dup := serverOf[s.Listener]; dup {
			t.Errorf("two servers for the %s listener: %s and %s", s.Listener, prev, s.URL)
		}
		serverOf[s.Listener] = s.URL
	}
	for _, l := range []string{"public", "admin"} {
		if serverOf[l] == "" {
			t.Errorf("no entry in servers with x-listener: %s", l)
		}
	}

	ids := map[string]string{}
	for _, o := range ops {
		if o.op.OperationID == "" {
			t.Errorf("%s has no operationId", o)
		} else if prev, dup := ids[o.op.OperationID]; dup {
			t.Errorf("operationId %q is used by %s and %s", o.op.OperationID, prev, o)
		} else {
			ids[o.op.OperationID] = o.String()
		}

		if len(o.op.Responses) == 0 {
			t.Errorf("%s documents no response", o)
		}
		for code := range o.op.Responses {
			if !regexp.MustCompile(`^([1-5]\d\d|[1-5]XX|default)$`).MatchString(code) {
				t.Errorf("%s: response key %q is not a status code", o, code)
			}
		}

		for _, s := range o.item.Servers {
			if s.URL != serverOf[o.listener] {
				t.Errorf("%s: path servers name %s, but the %s listener is %s", o, s.URL, o.listener, serverOf[o.listener])
			}
		}

		// Every {param} of the path is declared as a path parameter.
		declared := map[string]bool{}
		for _, pn := range append(slices.Clone(o.item.Parameters), o.op.Parameters...) {
			var p parameter
			if err := resolve(root, &pn).Decode(&p); err != nil {
				t.Errorf("%s: parameter: %v", o, err)
				continue
			}
			if p.In == "path" {
				declared[p.Name] = true
			}
		}
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(o.path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %q is not declared", o, m[1])
			}
		}

		// The admin API needs the admin token; nothing else does — but the
		// dashboard's sign-in page, which is where a browser types it.
		needsAdmin := (strings.HasPrefix(o.path, "/admin/") || o.path == "/admin") && o.path != "/admin/signin"
		hasAdmin := o.op.Security != nil && slices.ContainsFunc(*o.op.Security, func(req map[string][]string) bool {
			_, ok := req["adminToken"]
			return ok
		})
		if needsAdmin != hasAdmin {
			t.Errorf("%s: requires adminToken = %v, want %v", o, hasAdmin, needsAdmin)
		}
		// Every admin route also takes the dashboard's session cookie, and
		// then a state-changing one may answer 403 csrf_failed.
		if needsAdmin && o.path != "/admin/dashboard" {
			hasSession := o.op.Security != nil && slices.ContainsFunc(*o.op.Security, func(req map[string][]string) bool {
				_, ok := req["adminSession"]
				return ok
			})
			if !hasSession {
				t.Errorf("%s: the adminSession scheme is missing", o)
			}
			if _, ok := o.op.Responses["403"]; o.method != "GET" && !ok {
				t.Errorf("%s: a state-changing admin route documents no 403 (csrf_failed)", o)
			}
		}
	}

	var refs []string
	collectRefs(root, &refs)
	if len(refs) == 0 {
		t.Error("no $ref found: the reference check reads the wrong keys")
	}
	for _, ref := range refs {
		if !strings.HasPrefix(ref, "#/") {
			t.Errorf("$ref %q points outside the document", ref)
			continue
		}
		if lookup(root, ref) == nil {
			t.Errorf("$ref %q does not resolve", ref)
		}
	}
}

// collectRefs appends the value of every "$ref" key under n.
func collectRefs(n *yaml.Node, refs *[]string) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "$ref" && n.Content[i+1].Kind == yaml.ScalarNode {
				*refs = append(*refs, n.Content[i+1].Value)
			}
		}
	}
	for _, c := range n.Content {
		collectRefs(c, refs)
	}
}

// resolve follows a local $ref; other nodes are returned as they are.
func resolve(root, n *yaml.Node) *yaml.Node {
	for range 10 { // refs to refs, but no loops
		if n.Kind != yaml.MappingNode {
			return n
		}
		var ref struct {
			Ref string `yaml:"$ref"`
		}
		if err := n.Decode(&ref); err != nil || ref.Ref == "" {
			return n
		}
		target := lookup(root, ref.Ref)
		if target == nil {
			return n
		}
		n = target
	}
	return n
}

// lookup resolves a local JSON pointer ("#/components/schemas/Problem").
func lookup(root *yaml.Node, ref string) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == tok {
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// TestRouteKeys pins the Echo-to-OpenAPI path conversion the comparison
// relies on.
func TestRouteKeys(t *testing.T) {
	t.Parallel()
	e := echo.New()
	noop := func(echo.Context) error { return nil }
	e.GET("/a/:id/b/:other", noop)
	e.POST("/files/*", noop)
	g := e.Group("/g", func(next echo.HandlerFunc) echo.HandlerFunc { return next })
	g.DELETE("/x", noop)

	got := fmt.Sprint(routeKeys(e))
	want := "[DELETE /g/x GET /a/{id}/b/{other} POST /files/{path}]"
	if got != want {
		t.Errorf("routeKeys = %s, want %s", got, want)
	}
}
