// Command vulncheck reads govulncheck's JSON output (-format json) on
// standard input and fails when the code calls a vulnerable function that
// is not accepted below. govulncheck itself has no way to accept a finding,
// and in JSON mode it exits 0 whatever it found.
//
// Usage: govulncheck -db file://DB -format json ./... | go run .ci/vulncheck.go
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// accepted are called vulnerabilities that cannot be fixed by an upgrade
// today, each with why it stays. Remove an entry as soon as its fix can be
// taken; an entry that no longer matches a finding is reported, so that
// the list does not outlive its reasons.
var accepted = map[string]string{
	// echo v4: both advisories are about middleware the service does not
	// use (the reverse proxy, the rate limiter); no v4 release fixes them,
	// only echo v5.4.0. The client address comes from handlers.newEcho's
	// IPExtractor, which trusts X-Forwarded-For only from BFF_TRUSTED_PROXIES.
	"GO-2026-6875": "echo v4 proxy middleware forwards X-Real-IP (middleware not used; fixed only in v5)",
	"GO-2026-6872": "echo v4 rate limiter keys on spoofable X-Forwarded-For (middleware not used; fixed only in v5)",

	// Standard library of go1.26.8, fixed in go1.26.9 and go1.26.10: the
	// approved newer toolchain here is go1.27.3 (GOTOOLCHAIN), a move for
	// the whole project. Remove these when go.mod and the machines move.
	"GO-2026-6809": "crypto/x509, fixed in go1.26.10",
	"GO-2026-6617": "net/http, fixed in go1.26.9",
	"GO-2026-6613": "net/http, fixed in go1.26.9",
	"GO-2026-6612": "net/http, fixed in go1.26.9",
	"GO-2026-6611": "net/http, fixed in go1.26.9",
	"GO-2026-6610": "net/http, fixed in go1.26.9",
	"GO-2026-6608": "net/textproto, fixed in go1.26.9",
	"GO-2026-6607": "crypto/tls, fixed in go1.26.9",
	"GO-2026-6605": "net/http, fixed in go1.26.9",
	"GO-2026-6603": "net/http, fixed in go1.26.9",
	"GO-2026-6600": "html/template, fixed in go1.26.9",
	"GO-2026-6599": "html/template, fixed in go1.26.9",
}

// message is one value of govulncheck's JSON stream; only findings matter.
type message struct {
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
			Receiver string `json:"receiver"`
		} `json:"trace"`
	} `json:"finding"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	called := map[string]string{} // OSV id → the vulnerable function, as found
	dec := json.NewDecoder(in)
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("read govulncheck output: %w", err)
		}
		// A finding at symbol level names the function in its first frame;
		// module- and package-level findings (imported, not called) don't.
		if f := m.Finding; f != nil && len(f.Trace) > 0 && f.Trace[0].Function != "" {
			fr := f.Trace[0]
			fn := fr.Function
			if fr.Receiver != "" {
				fn = fr.Receiver + "." + fn
			}
			where := fmt.Sprintf("%s.%s in %s@%s", fr.Package, fn, fr.Module, fr.Version)
			if f.FixedVersion != "" {
				where += ", fixed in " + f.FixedVersion
			}
			if _, seen := called[f.OSV]; !seen { // the first trace stands for the others
				called[f.OSV] = where
			}
		}
	}
	ids := make([]string, 0, len(called))
	for id := range called {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var failing []string
	for _, id := range ids {
		if why, ok := accepted[id]; ok {
			fmt.Fprintf(out, "accepted %s: %s (%s)\n", id, called[id], why)
			continue
		}
		failing = append(failing, id)
		fmt.Fprintf(out, "CALLED   %s: %s — https://pkg.go.dev/vuln/%s\n", id, called[id], id)
	}
	for id := range accepted {
		if _, ok := called[id]; !ok {
			fmt.Fprintf(out, "stale    %s is accepted in .ci/vulncheck.go but no longer found: remove it\n", id)
		}
	}
	if len(failing) > 0 {
		return fmt.Errorf("the code calls %d vulnerable function(s) not accepted: %s; upgrade the module (go get, go mod tidy) or, if no fix exists, accept it with a reason in .ci/vulncheck.go",
			len(failing), strings.Join(failing, ", "))
	}
	fmt.Fprintf(out, "govulncheck: no called vulnerability beyond the %d accepted\n", len(called))
	return nil
}
