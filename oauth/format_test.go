package oauth_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// rolloutSubjects returns a user id inside and one outside a client's
// rollout at percent, so that the table does not depend on hash values.
func rolloutSubjects(t *testing.T, clientID string, percent int) (in, out string) {
	t.Helper()
	for i := 1; i < 10000 && (in == "" || out == ""); i++ {
		s := fmt.Sprint(i)
		if oauth.InRollout(clientID, s, percent) {
			if in == "" {
				in = s
			}
		} else if out == "" {
			out = s
		}
	}
	if in == "" || out == "" {
		t.Fatalf("no subjects on both sides of %d%%", percent)
	}
	return in, out
}

func TestSelectFormat(t *testing.T) {
	t.Parallel()
	const id = "mobile"
	in50, out50 := rolloutSubjects(t, id, 50)

	// client builds a client; everything that could make a JWT is off unless
	// the case turns it on.
	client := func(mutate ...func(*bff.Client)) bff.Client {
		c := bff.Client{ID: id, TokenType: bff.FormatBearer, JWTEnabled: true}
		for _, m := range mutate {
			m(&c)
		}
		return c
	}
	restricted := func(c *bff.Client) { c.Restricted = true }
	killed := func(c *bff.Client) { c.JWTEnabled = false }
	jwtDefault := func(c *bff.Client) { c.TokenType = bff.FormatJWT }
	rollout := func(p int) func(*bff.Client) { return func(c *bff.Client) { c.JWTRolloutPercent = p } }

	jwtLabel := func(l string) func(*bff.Client) { return func(c *bff.Client) { c.JWTTokenType = l } }

	everythingJWT := url.Values{"token_type": {"jwt"}, "asymmetric_jwt": {"true"}}
	everythingBearer := url.Values{"token_type": {"bearer"}}
	jwtHeader := http.Header{"X-Token-Type": {"jwt"}}
	bearerHeader := http.Header{"X-Token-Type": {"bearer"}}
	exchange := url.Values{"grant_type": {bff.GrantTokenExchange}}

	// The outcomes: a JWT asked for edX's way says "JWT", one chosen by
	// the client's settings or the exchange says "Bearer"; opaque is Bearer.
	asked := oauth.Selection{Format: bff.FormatJWT, TokenType: "JWT"}
	chosen := oauth.Selection{Format: bff.FormatJWT, TokenType: "Bearer"}
	opaque := oauth.Selection{Format: bff.FormatBearer, TokenType: "Bearer"}

	tests := []struct {
		name    string
		client  bff.Client
		form    url.Values
		header  http.Header
		subject string
		want    oauth.Selection
		wantErr bool
	}{
		// 0. token exchange → JWT, chosen by the exchange.
		{"exchange", client(), exchange, nil, "1", chosen, false},
		{"exchange ignores token_type", client(), url.Values{"grant_type": {bff.GrantTokenExchange}, "token_type": {"mac"}}, nil, "1", chosen, false},
		{"exchange with jwt_token_type JWT", client(jwtLabel("JWT")), exchange, nil, "1", asked, false},
		// 1. restricted → JWT, whatever else says.
		{"restricted", client(restricted), nil, nil, "1", chosen, false},
		{"restricted asked token_type=jwt", client(restricted), url.Values{"token_type": {"JWT"}}, nil, "1", asked, false},
		{"restricted asked asymmetric_jwt=1", client(restricted), url.Values{"asymmetric_jwt": {"1"}}, nil, "1", asked, false},
		{"restricted beats the kill switch", client(restricted, killed), nil, nil, "1", chosen, false},
		{"restricted beats token_type=bearer", client(restricted), everythingBearer, bearerHeader, "1", chosen, false},
		{"restricted ignores a bad token_type", client(restricted), url.Values{"token_type": {"mac"}}, nil, "1", chosen, false},
		{"restricted client credentials", client(restricted), nil, nil, "", chosen, false},
		// 2. kill switch → Bearer, whatever comes after.
		{"kill switch beats token_type=jwt", client(killed), everythingJWT, jwtHeader, "1", opaque, false},
		{"kill switch beats the header", client(killed), nil, jwtHeader, "1", opaque, false},
		{"kill switch beats asymmetric_jwt", client(killed), url.Values{"asymmetric_jwt": {"true"}}, nil, "1", opaque, false},
		{"kill switch beats a full rollout", client(killed, rollout(100)), nil, nil, "1", opaque, false},
		{"kill switch beats the client's token_type", client(killed, jwtDefault), nil, nil, "1", opaque, false},
		{"kill switch ignores a bad token_type", client(killed), url.Values{"token_type": {"mac"}}, nil, "1", opaque, false},
		{"kill switch beats jwt_token_type", client(killed, jwtLabel("JWT")), everythingJWT, nil, "1", opaque, false},
		// 3. token_type form field, any case.
		{"token_type=jwt", client(), url.Values{"token_type": {"jwt"}}, nil, "1", asked, false},
		{"token_type=JWT", client(), url.Values{"token_type": {"JWT"}}, nil, "1", asked, false},
		{"token_type=Jwt", client(), url.Values{"token_type": {"Jwt"}}, nil, "1", asked, false},
		{"token_type=Bearer", client(jwtDefault), url.Values{"token_type": {"Bearer"}}, nil, "1", opaque, false},
		{"token_type=BEARER", client(jwtDefault), url.Values{"token_type": {"BEARER"}}, nil, "1", opaque, false},
		{"token_type=jwt on a client rolled out", client(rollout(100)), url.Values{"token_type": {"jwt"}}, nil, "1", asked, false},
		{"token_type beats the header", client(), url.Values{"token_type": {"bearer"}}, jwtHeader, "1", opaque, false},
		{"token_type beats asymmetric_jwt", client(), url.Values{"token_type": {"bearer"}, "asymmetric_jwt": {"true"}}, nil, "1", opaque, false},
		{"token_type beats the rollout", client(rollout(100)), url.Values{"token_type": {"bearer"}}, nil, "1", opaque, false},
		{"token_type beats the client's token_type", client(jwtDefault), url.Values{"token_type": {"bearer"}}, nil, "1", opaque, false},
		{"bad token_type", client(), url.Values{"token_type": {"mac"}}, jwtHeader, "1", oauth.Selection{}, true},
		{"bad token_type with a good header", client(), url.Values{"token_type": {"jwt "}}, jwtHeader, "1", oauth.Selection{}, true},
		// 4. X-Token-Type header, any case.
		{"header jwt", client(), nil, jwtHeader, "1", asked, false},
		{"header JWT", client(), nil, http.Header{"X-Token-Type": {"JWT"}}, "1", asked, false},
		{"header BEARER", client(jwtDefault), nil, http.Header{"X-Token-Type": {"BEARER"}}, "1", opaque, false},
		{"header bearer beats asymmetric_jwt", client(), url.Values{"asymmetric_jwt": {"true"}}, bearerHeader, "1", opaque, false},
		{"header bearer beats the rollout", client(rollout(100)), nil, bearerHeader, "1", opaque, false},
		{"header bearer beats the client's token_type", client(jwtDefault), nil, bearerHeader, "1", opaque, false},
		{"bad header", client(jwtDefault), nil, http.Header{"X-Token-Type": {"opaque"}}, "1", oauth.Selection{}, true},
		{"empty token_type falls through to the header", client(), url.Values{"token_type": {""}}, jwtHeader, "1", asked, false},
		// 5. asymmetric_jwt=true|1.
		{"asymmetric_jwt=true", client(), url.Values{"asymmetric_jwt": {"true"}}, nil, "1", asked, false},
		{"asymmetric_jwt=True", client(), url.Values{"asymmetric_jwt": {"True"}}, nil, "1", asked, false},
		{"asymmetric_jwt=1 (iOS)", client(), url.Values{"asymmetric_jwt": {"1"}}, nil, "1", asked, false},
		{"asymmetric_jwt=false", client(), url.Values{"asymmetric_jwt": {"false"}}, nil, "1", opaque, false},
		{"asymmetric_jwt=0", client(), url.Values{"asymmetric_jwt": {"0"}}, nil, "1", opaque, false},
		{"asymmetric_jwt=0 on a client rolled out", client(rollout(100)), url.Values{"asymmetric_jwt": {"0"}}, nil, "1", chosen, false},
		{"asymmetric_jwt=yes is not true", client(), url.Values{"asymmetric_jwt": {"yes"}}, nil, "1", opaque, false},
		// 6. rollout, sticky per user.
		{"full rollout", client(rollout(100)), nil, nil, "1", chosen, false},
		{"user inside a 50% rollout", client(rollout(50)), nil, nil, in50, chosen, false},
		{"user outside a 50% rollout", client(rollout(50)), nil, nil, out50, opaque, false},
		{"no rollout", client(rollout(0)), nil, nil, in50, opaque, false},
		// 7. the client's token_type.
		{"client default jwt", client(jwtDefault), nil, nil, "1", chosen, false},
		{"client default jwt, outside the rollout", client(jwtDefault, rollout(50)), nil, nil, out50, chosen, false},
		{"client default bearer", client(), nil, nil, "1", opaque, false},
		{"client default for client credentials", client(jwtDefault), nil, nil, "", chosen, false},
		// jwt_token_type labels every JWT of the client, and no opaque token.
		{"jwt_token_type Bearer, asked edX's way", client(jwtLabel("Bearer")), url.Values{"token_type": {"JWT"}, "asymmetric_jwt": {"true"}}, nil, "1", chosen, false},
		{"jwt_token_type Bearer, restricted asked", client(restricted, jwtLabel("Bearer")), url.Values{"token_type": {"jwt"}}, nil, "1", chosen, false},
		{"jwt_token_type JWT, by rollout", client(rollout(100), jwtLabel("JWT")), nil, nil, "1", asked, false},
		{"jwt_token_type JWT, client default", client(jwtDefault, jwtLabel("JWT")), nil, nil, "", asked, false},
		{"jwt_token_type JWT, opaque asked", client(jwtLabel("JWT")), everythingBearer, nil, "1", opaque, false},
		{"jwt_token_type JWT, opaque by default", client(jwtLabel("JWT")), nil, nil, "1", opaque, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			form, header := tt.form, tt.header
			if form == nil {
				form = url.Values{}
			}
			if header == nil {
				header = http.Header{}
			}
			got, err := oauth.SelectFormat(tt.client, form, header, tt.subject)
			if tt.wantErr {
				if !errors.Is(err, fosite.ErrInvalidRequest) {
					t.Fatalf("SelectFormat() error = %v, want invalid_request", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SelectFormat() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("SelectFormat() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestInRollout(t *testing.T) {
	t.Parallel()
	const n = 400
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = fmt.Sprint(i + 1)
	}

	t.Run("bounds", func(t *testing.T) {
		t.Parallel()
		for _, s := range subjects {
			for _, p := range []int{-5, 0} {
				if oauth.InRollout("mobile", s, p) {
					t.Fatalf("user %s is in a %d%% rollout", s, p)
				}
			}
			for _, p := range []int{100, 150} {
				if !oauth.InRollout("mobile", s, p) {
					t.Fatalf("user %s is outside a %d%% rollout", s, p)
				}
			}
		}
	})

	t.Run("sticky", func(t *testing.T) {
		t.Parallel()
		for _, s := range subjects {
			first := oauth.InRollout("mobile", s, 37)
			for range 5 {
				if oauth.InRollout("mobile", s, 37) != first {
					t.Fatalf("user %s changes sides at the same percentage", s)
				}
			}
		}
	})

	t.Run("share", func(t *testing.T) {
		t.Parallel()
		for _, p := range []int{10, 50, 90} {
			in := 0
			for _, s := range subjects {
				if oauth.InRollout("mobile", s, p) {
					in++
				}
			}
			lo, hi := n*(p-15)/100, n*(p+15)/100
			if in < lo || in > hi {
				t.Errorf("%d%% rollout holds %d of %d users, want between %d and %d", p, in, n, lo, hi)
			}
		}
	})

	t.Run("raising the percentage only adds users", func(t *testing.T) {
		t.Parallel()
		for _, s := range subjects {
			was := false
			for p := 0; p <= 100; p++ {
				is := oauth.InRollout("mobile", s, p)
				if was && !is {
					t.Fatalf("user %s leaves the rollout when it rises to %d%%", s, p)
				}
				was = is
			}
			if !was {
				t.Fatalf("user %s is outside a 100%% rollout", s)
			}
		}
	})

	t.Run("per client", func(t *testing.T) {
		t.Parallel()
		// The bucket hashes client and user: two clients do not roll out
		// to the same half of the users.
		same := 0
		for _, s := range subjects {
			if oauth.InRollout("mobile-ios", s, 50) == oauth.InRollout("mobile-android", s, 50) {
				same++
			}
		}
		if same == n || same == 0 {
			t.Errorf("two clients agree on %d of %d users at 50%%", same, n)
		}
		// Client and user are separated, so ("ab","c") and ("a","bc") differ.
		diff := 0
		for p := 1; p < 100; p++ {
			if oauth.InRollout("ab", "c", p) != oauth.InRollout("a", "bc", p) {
				diff++
			}
		}
		if diff == 0 {
			t.Error(`("ab","c") and ("a","bc") fall in the same bucket`)
		}
	})
}
