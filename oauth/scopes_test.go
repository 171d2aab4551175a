package oauth

import (
	"errors"
	"slices"
	"testing"

	"github.com/ory/fosite"
)

func TestRefreshScopes(t *testing.T) {
	t.Parallel()
	family := []string{"read", "profile"}
	for _, c := range []struct {
		requested string
		want      []string
		err       bool
	}{
		{"", family, false},
		{"   ", family, false},
		{"read", []string{"read"}, false},
		{"profile read read", []string{"profile", "read"}, false},
		{"read email", nil, true}, // not in the family (or taken from the client)
		{"payments", nil, true},
	} {
		got, err := refreshScopes(family, c.requested)
		if c.err {
			if !errors.Is(err, fosite.ErrInvalidScope) {
				t.Errorf("refreshScopes(%q): %v, want invalid_scope", c.requested, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("refreshScopes(%q) = %q, %v; want %q", c.requested, got, err, c.want)
		}
	}
}
