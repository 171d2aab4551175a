package oauth

import "testing"

// TestClientSubject: a client token's sub can never be read as a user's.
func TestClientSubject(t *testing.T) {
	for _, tc := range []struct {
		sub, client string
		want        bool
	}{
		{"client:2", "2", true},
		{"client:svc", "svc", true},
		{"svc", "svc", true}, // issued before the namespace: good until it expires
		{"2", "2", false},    // a user's subject
		{"client:3", "2", false},
		{"alice", "svc", false},
		{"", "svc", false},
	} {
		if got := clientSubject(tc.sub, tc.client); got != tc.want {
			t.Errorf("clientSubject(%q, %q) = %v, want %v", tc.sub, tc.client, got, tc.want)
		}
	}
}
