package bff

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// User is an account of the platform.
type User struct {
	ID            int64
	Username      string
	Email         string
	Name          string
	PasswordHash  string // argon2id or bcrypt, never the password
	EmailVerified bool
	IsStaff       bool
	IsSuperuser   bool
	Disabled      bool
	DisabledAt    *time.Time
	// TokensValidAfter is the last disabling or password change: tokens of
	// the user issued, or authenticated, before it are dead.
	TokensValidAfter *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Subject is the stable identifier used as a token's sub: the user id, never
// the username (usernames can change).
func (u User) Subject() string { return strconv.FormatInt(u.ID, 10) }

// ParseSubject turns a token subject back into a user id.
func ParseSubject(sub string) (int64, bool) {
	id, err := strconv.ParseInt(sub, 10, 64)
	return id, err == nil && id > 0
}

// GivenAndFamilyName splits Name at its first space. The platform keeps one
// display name; the claims given_name/family_name are derived from it.
func (u User) GivenAndFamilyName() (given, family string) {
	given, family, _ = strings.Cut(strings.TrimSpace(u.Name), " ")
	return given, strings.TrimSpace(family)
}

// AuditEvent records who changed an account and when.
type AuditEvent struct {
	ID     int64
	UserID int64
	Action string // "disable", "enable", "password"
	Actor  string
	At     time.Time
}

// LoginKey is the key of a username or an email in the one namespace both
// share (ADR 0021): ASCII letters folded to lower case, everything else kept
// as it is. A login typed at sign-in names the user whose username or email
// has its key; no two users hold the same key. The folding is ASCII-only so
// that it is the same in every store and database collation (PostgreSQL's
// lower(x COLLATE "C")), and so that no Unicode case rule (the Kelvin sign
// folding to "k", Turkish dotless i) can make two spellings one account.
func LoginKey(login string) string {
	for i := 0; i < len(login); i++ {
		if c := login[i]; 'A' <= c && c <= 'Z' {
			b := []byte(login)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return login
}

// ErrLoginTaken is the conflict of a new user whose username or email has
// the key of another user's username or email.
var ErrLoginTaken = fmt.Errorf("%w: the username or email is already another account's username or email "+
	"(usernames and emails share one case-insensitive namespace)", ErrConflict)

// LoginKeys returns the keys a user holds in the login namespace: its
// username's and its email's (one when they fold alike, as an imported
// username equal to its own email does).
func (u User) LoginKeys() []string {
	name, email := LoginKey(u.Username), LoginKey(u.Email)
	if name == email {
		return []string{name}
	}
	return []string{name, email}
}
