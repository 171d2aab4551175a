package main

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is where the deployment files are, seen from this package.
const repoRoot = "../.."

// The deployment files are checked by reading them: CI has no Docker
// engine, and a compose file that cannot start (a variable the service does
// not know, an admin port open to the network) should fail review, not a
// user's first `docker compose up`.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string      `yaml:"image"`
	Environment yaml.Node   `yaml:"environment"`
	Ports       []yaml.Node `yaml:"ports"`
	DependsOn   yaml.Node   `yaml:"depends_on"`
	Healthcheck *struct {
		Test yaml.Node `yaml:"test"`
	} `yaml:"healthcheck"`
	Volumes []string `yaml:"volumes"`
}

// env returns the service's environment, from either compose syntax (a
// mapping, or a list of KEY=VALUE).
func (s composeService) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch s.Environment.Kind {
	case 0:
	case yaml.MappingNode:
		if err := s.Environment.Decode(&out); err != nil {
			t.Fatalf("environment: %v", err)
		}
	case yaml.SequenceNode:
		var list []string
		if err := s.Environment.Decode(&list); err != nil {
			t.Fatalf("environment: %v", err)
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	default:
		t.Fatalf("environment: neither a mapping nor a list (line %d)", s.Environment.Line)
	}
	return out
}

// publishedPort is one entry of "ports", in either compose syntax.
type publishedPort struct {
	HostIP    string `yaml:"host_ip"`
	Published string `yaml:"published"`
	Target    string `yaml:"target"`
}

func (s composeService) ports(t *testing.T) []publishedPort {
	t.Helper()
	var out []publishedPort
	for _, n := range s.Ports {
		if n.Kind == yaml.MappingNode {
			var p publishedPort
			if err := n.Decode(&p); err != nil {
				t.Fatalf("ports (line %d): %v", n.Line, err)
			}
			out = append(out, p)
			continue
		}
		// Short syntax: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL], where
		// HOST_IP may be a bracketed IPv6 address.
		spec, _, _ := strings.Cut(n.Value, "/")
		var p publishedPort
		if strings.HasPrefix(spec, "[") {
			end := strings.Index(spec, "]")
			if end < 0 {
				t.Fatalf("ports: bad entry %q", n.Value)
			}
			p.HostIP, spec = spec[1:end], strings.TrimPrefix(spec[end+1:], ":")
		}
		parts := strings.Split(spec, ":")
		switch len(parts) {
		case 1:
			p.Target = parts[0]
		case 2:
			p.Published, p.Target = parts[0], parts[1]
		case 3:
			p.HostIP, p.Published, p.Target = parts[0], parts[1], parts[2]
		default:
			t.Fatalf("ports: bad entry %q", n.Value)
		}
		out = append(out, p)
	}
	return out
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"bff", "postgres"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no %q service", name)
		}
	}
	return c
}

// interpolation matches compose's ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?message} and ${VAR?message}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate replaces compose variables as if none were set in the
// environment: defaults are used, required variables become "set".
func interpolate(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		switch {
		case strings.HasSuffix(sub[2], "-"):
			return sub[3]
		case strings.HasSuffix(sub[2], "?"):
			return "set"
		}
		return ""
	})
}

// knownVariables are the BFF_* variables the service reads, taken from the
// string literals of its configuration code.
func knownVariables(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(BFF_[A-Z0-9_]+)"`).FindAllStringSubmatch(string(raw), -1) {
		known[m[1]] = true
	}
	for _, v := range []string{"BFF_ADDR", "BFF_ADMIN_ADDR", "BFF_DATABASE_URL", "BFF_SECRET", "BFF_ADMIN_TOKEN"} {
		if !known[v] {
			t.Fatalf("config.go does not mention %s: the variable scan reads the wrong file", v)
		}
	}
	return known
}

func TestComposeBFFService(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	bffSvc := c.Services["bff"]
	env := bffSvc.env(t)

	t.Run("database", func(t *testing.T) {
		raw, ok := env["BFF_DATABASE_URL"]
		if !ok {
			t.Fatal("BFF_DATABASE_URL is not set: the service would run on the in-memory store")
		}
		u, err := url.Parse(interpolate(raw))
		if err != nil {
			t.Fatalf("BFF_DATABASE_URL %q: %v", raw, err)
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			t.Errorf("BFF_DATABASE_URL scheme is %q, want postgres", u.Scheme)
		}
		if u.Hostname() != "postgres" {
			t.Errorf("BFF_DATABASE_URL host is %q, want the postgres service", u.Hostname())
		}
	})

	t.Run("secrets come from the environment", func(t *testing.T) {
		if v := env["BFF_SECRET"]; !regexp.MustCompile(`^\$\{BFF_SECRET:\?[^}]+\}$`).MatchString(v) {
			t.Errorf("BFF_SECRET = %q, want ${BFF_SECRET:?message}: required, never a default in the file", v)
		}
		v := env["BFF_ADMIN_TOKEN"]
		if v == "" {
			t.Fatal("BFF_ADMIN_TOKEN is not set: the admin API would refuse everything")
		}
		if !regexp.MustCompile(`^\$\{BFF_ADMIN_TOKEN:?\?[^}]+\}$`).MatchString(v) {
			t.Errorf("BFF_ADMIN_TOKEN = %q, want ${BFF_ADMIN_TOKEN:?message}: a token in the file is a published token", v)
		}
	})

	t.Run("listeners reachable in the container", func(t *testing.T) {
		for _, name := range []string{"BFF_ADDR", "BFF_ADMIN_ADDR"} {
			host, _, err := net.SplitHostPort(interpolate(env[name]))
			if err != nil {
				t.Errorf("%s = %q: %v", name, env[name], err)
				continue
			}
			if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
				t.Errorf("%s = %q binds loopback inside the container: published ports would not reach it", name, env[name])
			}
		}
	})

	t.Run("admin port on host loopback only", func(t *testing.T) {
		_, adminPort, err := net.SplitHostPort(interpolate(env["BFF_ADMIN_ADDR"]))
		if err != nil {
			t.Fatalf("BFF_ADMIN_ADDR: %v", err)
		}
		_, publicPort, err := net.SplitHostPort(interpolate(env["BFF_ADDR"]))
		if err != nil {
			t.Fatalf("BFF_ADDR: %v", err)
		}
		var admin, public int
		for _, p := range bffSvc.ports(t) {
			switch p.Target {
			case adminPort:
				admin++
				if ip := net.ParseIP(p.HostIP); ip == nil || !ip.IsLoopback() {
					t.Errorf("admin port %s is published on host address %q, want 127.0.0.1", adminPort, p.HostIP)
				}
			case publicPort:
				public++
			}
		}
		if admin == 0 {
			t.Errorf("admin port %s is not published (on 127.0.0.1)", adminPort)
		}
		if public == 0 {
			t.Errorf("public port %s is not published", publicPort)
		}
	})

	// The listener binds every interface, where serve refuses to start
	// without BFF_ISSUER (cmd/mobile-auth-bff/config.go checkIssuer and
	// requireIssuer hold the rule; this is the part a compose file can
	// get wrong).
	t.Run("issuer", func(t *testing.T) {
		raw, ok := env["BFF_ISSUER"]
		if !ok {
			t.Fatal("BFF_ISSUER is not set: with BFF_ADDR on 0.0.0.0 the service refuses to start")
		}
		iss := interpolate(raw)
		u, err := url.Parse(iss)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			t.Fatalf("BFF_ISSUER = %q (%q as interpolated), want an absolute https URL", raw, iss)
		}
		if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Errorf("BFF_ISSUER = %q: http is refused on a host other than loopback", iss)
		}
		if u.User != nil || strings.ContainsAny(iss, "?#") || strings.HasSuffix(iss, "/") {
			t.Errorf("BFF_ISSUER = %q: no userinfo, query, fragment or trailing slash", iss)
		}
	})

	t.Run("waits for a healthy postgres", func(t *testing.T) {
		var deps map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := bffSvc.DependsOn.Decode(&deps); err != nil {
			t.Fatalf("depends_on must be the long syntax with a condition: %v", err)
		}
		if got := deps["postgres"].Condition; got != "service_healthy" {
			t.Errorf("depends_on.postgres.condition = %q, want service_healthy", got)
		}
	})

	t.Run("only variables the service knows", func(t *testing.T) {
		known := knownVariables(t)
		for name, svc := range c.Services {
			for k := range svc.env(t) {
				if strings.HasPrefix(k, "BFF_") && !known[k] {
					t.Errorf("service %s sets %s, which the service does not read (typo?)", name, k)
				}
			}
		}
	})
}

func TestComposePostgresService(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	pg := c.Services["postgres"]

	if !strings.HasPrefix(pg.Image, "postgres:") {
		t.Errorf("postgres image = %q, want postgres:<version>", pg.Image)
	}
	if pg.Healthcheck == nil {
		t.Fatal("postgres has no healthcheck: depends_on service_healthy would never be met")
	}
	var test []string
	if err := pg.Healthcheck.Test.Decode(&test); err != nil {
		var s string
		if err := pg.Healthcheck.Test.Decode(&s); err != nil {
			t.Fatalf("healthcheck.test: %v", err)
		}
		test = []string{s}
	}
	if !strings.Contains(strings.Join(test, " "), "pg_isready") {
		t.Errorf("healthcheck.test = %q, want pg_isready", test)
	}

	named := false
	for _, v := range pg.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		if strings.HasPrefix(dst, "/var/lib/postgresql/data") {
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("postgres data volume %q is not a named volume declared under volumes:", src)
			}
			named = true
		}
	}
	if !named {
		t.Error("postgres data is not on a volume: it is lost with the container")
	}
}

// instruction is one Dockerfile instruction, continuations joined.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := parseDockerfile(t)

	last := -1
	for i, in := range ins {
		if in.cmd == "FROM" {
			last = i
		}
	}
	if last <= 0 {
		t.Fatal("the Dockerfile is not multi-stage: the build toolchain would ship in the image")
	}
	final := ins[last:]

	var build string
	for _, in := range ins[:last] {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	for _, want := range []string{"./cmd/mobile-auth-bff", "CGO_ENABLED=0", "-trimpath", "-X main.version="} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build step %q lacks %s", build, want)
		}
	}
	// -X silently does nothing when the variable does not exist.
	run, err := os.ReadFile("run.go")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^var version = `).Match(run) {
		t.Error("cmd/mobile-auth-bff has no `var version`: -X main.version would set nothing")
	}

	user := ""
	if strings.Contains(final[0].args, ":nonroot") {
		user = "nonroot"
	}
	var exposed []string
	for _, in := range final[1:] {
		switch in.cmd {
		case "USER":
			user = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		}
	}
	name, _, _ := strings.Cut(user, ":")
	if name == "" || name == "root" || name == "0" {
		t.Errorf("the final image runs as %q, want a non-root user", user)
	}
	for _, p := range []string{"8080", "8081"} {
		if !slices.Contains(exposed, p) {
			t.Errorf("the final image does not EXPOSE %s", p)
		}
	}

	// The image binds every interface, so serve needs BFF_ISSUER, which
	// only the deployment knows: no default baked in, and a comment that
	// tells the operator.
	imageEnv := map[string]string{}
	for _, in := range final {
		if in.cmd == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				imageEnv[k] = v
			}
		}
	}
	host, _, err := net.SplitHostPort(imageEnv["BFF_ADDR"])
	if ip := net.ParseIP(host); err != nil || host == "localhost" || ip != nil && ip.IsLoopback() {
		t.Errorf("the image's BFF_ADDR = %q, want host:port on every interface", imageEnv["BFF_ADDR"])
	}
	if v, ok := imageEnv["BFF_ISSUER"]; ok {
		t.Errorf("the image sets BFF_ISSUER=%s: an issuer is the deployment's public URL, never the image's", v)
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^#.*BFF_ISSUER`).Match(raw) {
		t.Error("the Dockerfile does not tell the operator to set BFF_ISSUER (serve refuses to start without it on 0.0.0.0)")
	}
}

func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum", "cmd", "migrations", "*.go", "*.sql", "*", "**"}
	for _, line := range strings.Split(string(raw), "\n") {
		p := strings.Trim(strings.TrimSpace(line), "/")
		p = strings.TrimPrefix(p, "**/")
		if p == "" || strings.HasPrefix(p, "#") || strings.HasPrefix(p, "!") {
			continue
		}
		if slices.Contains(needed, p) {
			t.Errorf(".dockerignore excludes %q, which the build needs", line)
		}
	}
}

// TestREADMEDocumentsEveryVariable: every BFF_* variable the service reads
// has a row in README.md's configuration table, and the table names no
// variable the service does not know.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "| `BFF_") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1] // the variable column, possibly several names
		for _, m := range regexp.MustCompile("`(BFF_[A-Z0-9_]+)`").FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	known := knownVariables(t)
	for v := range known {
		if !documented[v] {
			t.Errorf("%s is read by the service but missing from README.md's configuration table", v)
		}
	}
	for v := range documented {
		if !known[v] {
			t.Errorf("README.md documents %s, which the service does not read", v)
		}
	}
}
