package bff

import (
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
