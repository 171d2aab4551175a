package memory

import (
	"bytes"
	"testing"
	"time"
)

// FuzzCompactRequest: whatever the request and the token's values,
// compactRequest does not panic, and a template it accepts expands back to
// the request byte for byte.
func FuzzCompactRequest(f *testing.F) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123, time.UTC)
	f.Add([]byte(`{"id":"fam","requested_at":"2026-12-06T10:00:00.000000123Z","session":{"user_id":7,"username":"ann","jti":"j"}}`),
		"fam", "j", "ann", int64(7))
	f.Add([]byte(`{"n":[7,70,17,7.5,-7],"s":"ann!","u":"ann"}`), "", "", "ann", int64(7))
	f.Add([]byte("\x00"), "", "", "", int64(0))
	f.Fuzz(func(t *testing.T, req []byte, family, jti, username string, userID int64) {
		v := recordValues{family: family, jti: jti, issued: stampOf(at), expires: stampOf(at.Add(time.Hour)),
			auth: stampOf(at.Add(-time.Minute)), username: username, userID: userID}
		tmpl, roles, times, ok := compactRequest(req, v, nil)
		if !ok {
			return
		}
		if got := expandRequest(nil, tmpl, roles, v, times); !bytes.Equal(got, req) {
			t.Fatalf("template %q expands to %q, want %q", tmpl, got, req)
		}
	})
}
