// Package social verifies the tokens of the third-party sign-in providers
// (Google, Facebook, Apple, Microsoft): the HTTP clients that ask them, the
// local check of Apple's id_tokens, the cache of their good answers, and
// the configuration that says which app a token must have been issued to
// (SPEC §7, ADR 6).
//
// It answers one question: which provider account holds this token.
// Turning that answer into a user of the platform and tokens (linking,
// account checks, issuance) is the exchange grant's business, in package
// oauth.
package social

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// Config is how the service reaches the social sign-in providers
// (SPEC §7). A provider without its endpoint (or, for Apple, without an
// audience) is disabled: its exchanges answer invalid_request.
type Config struct {
	GoogleUserinfoURL string
	// GoogleClientIDs are the OAuth client ids of the platform's apps
	// (iOS, Android, web); entries may be comma-separated lists. When set,
	// Google access tokens are verified at GoogleTokeninfoURL instead of
	// userinfo, and only tokens issued to one of them (aud or azp) are
	// accepted.
	GoogleClientIDs    []string
	GoogleTokeninfoURL string

	FacebookMeURL string
	// FacebookAppID and FacebookAppSecret, both or neither, are the
	// platform's Facebook app. When set, Facebook tokens are verified at
	// FacebookDebugTokenURL with the app's token instead of /me, and only
	// valid user tokens of that app are accepted.
	FacebookAppID         string
	FacebookAppSecret     Redacted
	FacebookDebugTokenURL string

	AppleJWKSURL string
	// AppleAudiences are the accepted aud values of Apple id_tokens: the
	// app's bundle ID (native sign-in) and/or its Services ID (web and
	// Android); entries may be comma-separated lists.
	AppleAudiences []string

	// AzureADGraphMeURL is Microsoft Graph's /me, which names the holder of
	// a Graph access token. Graph cannot tell which app a token was issued
	// to, so azuread-oauth2 always accepts any app's tokens (ADR 6).
	AzureADGraphMeURL string

	// RequireAudienceCheck turns off the backends that cannot check which
	// app a token was issued to (Google without client ids, Facebook
	// without its app, Microsoft always), except those named in
	// AcceptAnyApp: they would accept a token another app obtained (ADR 6).
	// serve sets it on PostgreSQL.
	RequireAudienceCheck bool
	// AcceptAnyApp names the backends (google-oauth2, facebook,
	// azuread-oauth2) allowed to accept tokens issued to any app although
	// RequireAudienceCheck is set: the operator's explicit opt-in
	// (BFF_SOCIAL_ACCEPT_ANY_APP).
	AcceptAnyApp []string
	// Timeout bounds each provider call; zero means DefaultTimeout.
	Timeout time.Duration
	// Observe, when set, is told the result of every verification of a
	// provider token: ok, rejected, unavailable, or cached.
	Observe func(backend, result string)
}

// Verifier is the service's view of the providers: which backends are on,
// and the verification of a token by the backend that issued it, through
// the answer cache.
type Verifier struct {
	providers map[string]Provider
	disabled  map[string]string // backend → why
	// unchecked names the enabled backends that accept tokens issued to any
	// app, with the configuration that would make them check.
	unchecked map[string]string
	// withheld names the backends turned off because they cannot check the
	// audience (RequireAudienceCheck).
	withheld []string
	answers  *Cache
}

// Why a backend without its audience configuration is off, with what
// turns it on: the 400 of an exchange and the start-up log say it.
const (
	googleWithheld = "BFF_GOOGLE_CLIENT_IDS (the OAuth client ids of the platform's apps) is not set, and without it " +
		"a Google token issued to any app would be accepted; to accept those anyway, add google-oauth2 to BFF_SOCIAL_ACCEPT_ANY_APP"
	facebookWithheld = "BFF_FACEBOOK_APP_ID and BFF_FACEBOOK_APP_SECRET (the platform's Facebook app) are not set, and without them " +
		"a Facebook token issued to any app would be accepted; to accept those anyway, add facebook to BFF_SOCIAL_ACCEPT_ANY_APP"
	azureADWithheld = "Microsoft Graph cannot tell which app a token was issued to, so " +
		"a Microsoft token issued to any app would be accepted; to accept those anyway, add azuread-oauth2 to BFF_SOCIAL_ACCEPT_ANY_APP"
	// azureADUnchecked is the start-up warning's "fix" for azuread-oauth2:
	// there is no configuration that makes it check.
	azureADUnchecked = "none: Microsoft Graph cannot tell which app a token was issued to; " +
		"on PostgreSQL the backend is off unless BFF_SOCIAL_ACCEPT_ANY_APP names azuread-oauth2"
)

// New builds the providers cfg enables; now is the clock of token expiry
// and of the answer cache. It fails only on a configuration that cannot
// be meant (half a Facebook app, a malformed /me URL).
func New(cfg Config, now func() time.Time) (*Verifier, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	client := newProviderClient(timeout)
	s := &Verifier{providers: map[string]Provider{}, disabled: map[string]string{}, unchecked: map[string]string{},
		answers: NewCache(now, cfg.Observe)}

	anyApp := func(backend string) bool {
		return !cfg.RequireAudienceCheck || slices.Contains(splitList(cfg.AcceptAnyApp), backend)
	}
	switch ids := splitList(cfg.GoogleClientIDs); {
	case len(ids) > 0 && cfg.GoogleTokeninfoURL == "":
		s.disabled[bff.ProviderGoogle] = "client ids are configured but no tokeninfo URL"
	case len(ids) > 0:
		s.providers[bff.ProviderGoogle] = &googleTokeninfoProvider{client: client, endpoint: cfg.GoogleTokeninfoURL, clientIDs: ids, now: now}
	case !anyApp(bff.ProviderGoogle):
		s.disabled[bff.ProviderGoogle] = googleWithheld
		s.withheld = append(s.withheld, bff.ProviderGoogle)
	case cfg.GoogleUserinfoURL != "":
		s.providers[bff.ProviderGoogle] = &googleProvider{client: client, endpoint: cfg.GoogleUserinfoURL}
		s.unchecked[bff.ProviderGoogle] = "set BFF_GOOGLE_CLIENT_IDS to the OAuth client ids of the platform's apps"
	default:
		s.disabled[bff.ProviderGoogle] = "no userinfo URL is configured"
	}

	switch {
	case (cfg.FacebookAppID == "") != (cfg.FacebookAppSecret == ""):
		return nil, errors.New("facebook: the app id and the app secret go together: set both or neither")
	case cfg.FacebookAppID != "" && cfg.FacebookDebugTokenURL == "":
		s.disabled[bff.ProviderFacebook] = "an app is configured but no debug_token URL"
	case cfg.FacebookAppID != "":
		s.providers[bff.ProviderFacebook] = &facebookDebugTokenProvider{client: client, endpoint: cfg.FacebookDebugTokenURL,
			appID: cfg.FacebookAppID, appSecret: cfg.FacebookAppSecret, now: now}
	case !anyApp(bff.ProviderFacebook):
		s.disabled[bff.ProviderFacebook] = facebookWithheld
		s.withheld = append(s.withheld, bff.ProviderFacebook)
	case cfg.FacebookMeURL != "":
		fb, err := newFacebookProvider(client, cfg.FacebookMeURL)
		if err != nil {
			return nil, fmt.Errorf("facebook /me URL: %w", err)
		}
		s.providers[bff.ProviderFacebook] = fb
		s.unchecked[bff.ProviderFacebook] = "set BFF_FACEBOOK_APP_ID and BFF_FACEBOOK_APP_SECRET to the platform's Facebook app"
	default:
		s.disabled[bff.ProviderFacebook] = "no /me URL is configured"
	}

	switch auds := splitList(cfg.AppleAudiences); {
	case cfg.AppleJWKSURL == "":
		s.disabled[bff.ProviderApple] = "no key set URL is configured"
	case len(auds) == 0:
		s.disabled[bff.ProviderApple] = "BFF_APPLE_AUDIENCE (the app's bundle ID or Services ID) is not set"
	default:
		s.providers[bff.ProviderApple] = &appleProvider{client: client, jwksURL: cfg.AppleJWKSURL, audiences: auds, now: now}
	}

	switch {
	case !anyApp(bff.ProviderAzureAD):
		s.disabled[bff.ProviderAzureAD] = azureADWithheld
		s.withheld = append(s.withheld, bff.ProviderAzureAD)
	case cfg.AzureADGraphMeURL != "":
		s.providers[bff.ProviderAzureAD] = &azureADProvider{client: client, endpoint: cfg.AzureADGraphMeURL}
		s.unchecked[bff.ProviderAzureAD] = azureADUnchecked
	default:
		s.disabled[bff.ProviderAzureAD] = "no Microsoft Graph /me URL is configured"
	}
	return s, nil
}

// Off tells whether backend, one of bff.Providers, is disabled, and why:
// the reason an exchange's 400 gives, with what turns it on.
func (s *Verifier) Off(backend string) (why string, off bool) {
	why, off = s.disabled[backend]
	return why, off
}

// Disabled names the providers that cannot be used, and why: for a
// start-up log line.
func (s *Verifier) Disabled() map[string]string {
	return maps.Clone(s.disabled)
}

// Withheld names the backends that are off because they cannot check
// which app a token was issued to (Config.RequireAudienceCheck), in the
// order of bff.Providers: start-up warns of each, since turning one off
// changes what an existing deployment accepts. Disabled says how to turn
// it on.
func (s *Verifier) Withheld() []string {
	return slices.Clone(s.withheld)
}

// AudienceCheck tells whether an enabled social backend checks that a
// provider token was issued to the platform's own apps.
type AudienceCheck struct {
	Backend string
	Checked bool
	// Fix names the configuration that turns the check on, when it is off.
	Fix string
}

// AudienceChecks describes every enabled backend, in the order of
// bff.Providers: for a start-up warning and a metric, since a backend
// that does not check accepts tokens that other apps obtained (ADR 6).
func (s *Verifier) AudienceChecks() []AudienceCheck {
	var out []AudienceCheck
	for _, b := range bff.Providers {
		if _, on := s.providers[b]; !on {
			continue
		}
		fix, unchecked := s.unchecked[b]
		out = append(out, AudienceCheck{Backend: b, Checked: !unchecked, Fix: fix})
	}
	return out
}

// Verify asks backend, or the answer cache, who holds token. Errors wrap
// ErrRejected (a *Rejection, with a reason fit for the client) when the
// token is bad, and bff.ErrProviderUnavailable when the provider cannot be
// asked. A disabled backend (Off) is a programming error.
func (s *Verifier) Verify(ctx context.Context, backend, token string) (Identity, error) {
	p, on := s.providers[backend]
	if !on {
		return Identity{}, fmt.Errorf("social: the %s backend is not enabled", backend)
	}
	id, _, err := s.answers.Verify(ctx, backend, p, token)
	return id, err
}

// CheckNonce binds an Apple id_token to the request that presents it: the
// app asked Apple to sign the SHA-256 of a random nonce into the token
// (the nonce claim, lowercase hex) and sends the raw nonce along, which
// someone who only captured the token does not have. A token without a
// nonce claim is refused when a nonce is sent: it could be any token.
// The error is a *Rejection.
func CheckNonce(raw, claim string) error {
	if claim == "" {
		return rejected("a nonce was sent but the id_token has no nonce claim")
	}
	sum := sha256.Sum256([]byte(raw))
	if subtle.ConstantTimeCompare([]byte(claim), []byte(hex.EncodeToString(sum[:]))) != 1 {
		return rejected("the id_token's nonce is not the SHA-256 of the nonce sent")
	}
	return nil
}
