package bff

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Social sign-in providers, named as the {backend} of the exchange endpoint
// (SPEC §7) and as edX's python-social-auth backends.
const (
	ProviderGoogle   = "google-oauth2"
	ProviderFacebook = "facebook"
	ProviderApple    = "apple-id"
	// ProviderAzureAD is Microsoft sign-in (Entra ID work and school
	// accounts, personal Microsoft accounts).
	ProviderAzureAD = "azuread-oauth2"
)

// Providers are the social sign-in providers the service knows.
var Providers = []string{ProviderGoogle, ProviderFacebook, ProviderApple, ProviderAzureAD}

// MaxSubjectLength bounds a provider's subject. Google's sub is at most 255
// ASCII characters; Facebook's, Apple's and Microsoft's are much shorter.
const MaxSubjectLength = 255

// Identity links an account of a social provider (its stable subject: sub
// for Google and Apple, id for Facebook and Microsoft Graph) to a user. One
// provider account belongs to at most one user; a user may link several.
type Identity struct {
	Provider  string
	Subject   string
	UserID    int64
	CreatedAt time.Time
}

// Validate checks the provider and subject an operator links.
func (i Identity) Validate() error {
	if !slices.Contains(Providers, i.Provider) {
		return fmt.Errorf("%w: unknown provider %q (use %s)", ErrInvalidInput, i.Provider, strings.Join(Providers, ", "))
	}
	if i.Subject == "" || len(i.Subject) > MaxSubjectLength {
		return fmt.Errorf("%w: subject must be 1–%d bytes", ErrInvalidInput, MaxSubjectLength)
	}
	if !utf8.ValidString(i.Subject) || strings.TrimSpace(i.Subject) != i.Subject {
		return fmt.Errorf("%w: subject must be UTF-8 text without leading or trailing spaces", ErrInvalidInput)
	}
	for _, r := range i.Subject {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: subject must not hold control characters", ErrInvalidInput)
		}
	}
	return nil
}
