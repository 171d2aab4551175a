package bff

import "testing"

func TestLoginKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                  "",
		"alice":             "alice",
		"Alice@Example.COM": "alice@example.com",
		"ÉMILE@x.org":       "Émile@x.org", // ASCII only, as PostgreSQL's lower(x COLLATE "C")
		"\u212Aen":          "\u212Aen",    // the Kelvin sign is not "k"
		"İstanbul":          "İstanbul",
	} {
		if got := LoginKey(in); got != want {
			t.Errorf("LoginKey(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (User{Username: "Bob@Example.com", Email: "bob@example.com"}).LoginKeys(); len(got) != 1 {
		t.Errorf("a username equal to its own email holds one key: %q", got)
	}
	if got := (User{Username: "bob", Email: "Bob@example.com"}).LoginKeys(); len(got) != 2 || got[0] != "bob" || got[1] != "bob@example.com" {
		t.Errorf("LoginKeys = %q", got)
	}
}
