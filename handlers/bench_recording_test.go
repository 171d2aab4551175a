package handlers_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/testenv"
)

// BenchmarkTokenEndpoint is the token endpoint through the whole handler
// stack (in-process, memory store) with the per-client usage recording on
// and off — the budget is 5%. The grants avoid the password hash,
// which would hide everything else: client credentials (one token write)
// and refresh (a read, a rotation and two token writes). Tokens are
// opaque, the cheaper format, so that recording weighs the most.
//
//	go test -run '^$' -bench BenchmarkTokenEndpoint -count 8 ./handlers/ | benchstat -col /recording -
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, grant := range []string{"client_credentials", "refresh_token"} {
		for _, recording := range []string{"off", "on"} {
			b.Run("grant="+grant+"/recording="+recording, func(b *testing.B) {
				env := testenv.New(b, testenv.Options{NoUsage: recording == "off"})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go env.Metrics.Usage.Run(ctx, time.Second) // flushes during the run, as when serving
				_, secret := env.ConfidentialClient(b, "svc")
				env.PublicClient(b, "app")
				env.User(b, "alice")

				form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}}
				var refresh string
				if grant == "refresh_token" {
					refresh = env.Token(b, testenv.PasswordForm("app", "alice"))["refresh_token"].(string)
					form = url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}}
				}
				var out struct {
					Refresh string `json:"refresh_token"`
				}
				b.ReportAllocs()
				for b.Loop() {
					if refresh != "" {
						form.Set("refresh_token", refresh)
					}
					rec := env.Post("/oauth2/access_token", form)
					if rec.Code != 200 {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
					if refresh != "" {
						if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
							b.Fatal(err)
						}
						refresh = out.Refresh
					}
				}
			})
		}
	}
}

// BenchmarkRecordingOverhead is the same comparison, paired: each
// iteration sends one request to a service with recording on and one to a
// service with it off, in alternating order, and the medians are compared.
// On a shared machine, load drifts between two separate benchmarks far
// more than recording costs; pairing cancels the drift.
func BenchmarkRecordingOverhead(b *testing.B) {
	for _, grant := range []string{"client_credentials", "refresh_token"} {
		b.Run("grant="+grant, func(b *testing.B) {
			type side struct {
				env     *testenv.Env
				form    url.Values
				refresh string
				took    []time.Duration
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			newSide := func(noUsage bool) *side {
				env := testenv.New(b, testenv.Options{NoUsage: noUsage})
				go env.Metrics.Usage.Run(ctx, time.Second)
				_, secret := env.ConfidentialClient(b, "svc")
				env.PublicClient(b, "app")
				env.User(b, "alice")
				s := &side{env: env, form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}}}
				if grant == "refresh_token" {
					s.refresh = env.Token(b, testenv.PasswordForm("app", "alice"))["refresh_token"].(string)
					s.form = url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}}
				}
				return s
			}
			on, off := newSide(false), newSide(true)
			var out struct {
				Refresh string `json:"refresh_token"`
			}
			call := func(s *side) {
				if s.refresh != "" {
					s.form.Set("refresh_token", s.refresh)
				}
				start := time.Now()
				rec := s.env.Post("/oauth2/access_token", s.form)
				s.took = append(s.took, time.Since(start))
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				if s.refresh != "" {
					if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
						b.Fatal(err)
					}
					s.refresh = out.Refresh
				}
			}
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					call(on)
					call(off)
				} else {
					call(off)
					call(on)
				}
				i++
			}
			mOn, mOff := median(on.took), median(off.took)
			b.ReportMetric(float64(mOn.Nanoseconds()), "ns-median-on")
			b.ReportMetric(float64(mOff.Nanoseconds()), "ns-median-off")
			b.ReportMetric((float64(mOn)/float64(mOff)-1)*100, "%-overhead")
		})
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
