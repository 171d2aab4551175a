package bff

import (
	"encoding/json"
	"slices"
)

// Audience is the aud claim of a JWT: issued as one string, accepted as a
// string or an array (RFC 7519 §4.1.3). The service's own access tokens
// (oauth.Audience) and Apple's id_tokens (package social) read it alike.
type Audience []string

// MarshalJSON writes a single audience as a string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// Contains reports whether aud is one of the audiences.
func (a Audience) Contains(aud string) bool { return slices.Contains(a, aud) }
