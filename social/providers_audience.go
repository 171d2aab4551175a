package social

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// An access token is a bearer credential of whichever app the user granted
// it to. Google's userinfo and Facebook's /me say whose token it is, not
// which app obtained it, so any app the user ever signed in to could replay
// its token here and sign in as the user (token substitution, ADR 6). The
// providers below ask the endpoints that tell which app a token was issued
// to, and accept only the platform's own apps.

// Redacted is a configuration secret (the Facebook app secret): every way
// of printing, logging or marshalling it shows "[redacted]". Reveal is the
// one way to read it, where it is sent to the provider.
type Redacted string

const redactedText = "[redacted]"

// Reveal returns the secret itself.
func (r Redacted) Reveal() string { return string(r) }

// String returns a placeholder.
func (r Redacted) String() string { return redactedText }

// GoString returns a placeholder, for %#v.
func (r Redacted) GoString() string { return redactedText }

// Format writes a placeholder for every verb, %x and %d included.
func (r Redacted) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedText) }

// LogValue keeps the secret out of slog output.
func (r Redacted) LogValue() slog.Value { return slog.StringValue(redactedText) }

// MarshalText keeps the secret out of JSON, YAML and text encodings.
func (r Redacted) MarshalText() ([]byte, error) { return []byte(redactedText), nil }

// --- Google: tokeninfo ---

// googleTokeninfoProvider asks Google's tokeninfo endpoint about an access
// token and accepts it only when it was issued to one of the platform's
// OAuth clients (aud or azp). tokeninfo also names the account (sub), so
// one call per verification suffices: userinfo is not asked.
type googleTokeninfoProvider struct {
	client    *http.Client
	endpoint  string
	clientIDs []string
	now       func() time.Time
}

func (g *googleTokeninfoProvider) Verify(ctx context.Context, token string) (Identity, error) {
	// POST, with the token in the body: tokeninfo also takes it in the
	// query string, where proxies and access logs would keep it.
	status, body, err := postForm(ctx, g.client, bff.ProviderGoogle, g.endpoint, url.Values{"access_token": {token}})
	if err != nil {
		return Identity{}, err
	}
	if status != http.StatusOK {
		if status == http.StatusBadRequest || status == http.StatusUnauthorized {
			return Identity{}, rejected("Google does not accept it (invalid, expired or revoked)")
		}
		return Identity{}, statusVerdict(bff.ProviderGoogle, status)
	}
	var info struct {
		Audience        string  `json:"aud"`
		AuthorizedParty string  `json:"azp"`
		Subject         string  `json:"sub"`
		ExpiresIn       jsonInt `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return Identity{}, unavailable(bff.ProviderGoogle, "malformed tokeninfo answer")
	}
	switch {
	case !slices.Contains(g.clientIDs, info.Audience) && !slices.Contains(g.clientIDs, info.AuthorizedParty):
		return Identity{}, rejected("the token was not issued to this platform's apps (aud/azp)")
	case info.ExpiresIn <= 0:
		return Identity{}, rejected("the token has expired")
	case info.Subject == "":
		return Identity{}, rejected("the token does not identify a Google account (%s)", googleIdentityScopes)
	}
	return Identity{Subject: info.Subject, ExpiresAt: g.now().Add(time.Duration(info.ExpiresIn) * time.Second)}, nil
}

// --- Facebook: debug_token ---

// facebookDebugTokenProvider asks the Graph API's debug_token about a user
// access token, with the platform app's own app token, and accepts it only
// when it is a valid user token of that app.
type facebookDebugTokenProvider struct {
	client    *http.Client
	endpoint  string
	appID     string
	appSecret Redacted
	now       func() time.Time
}

// Graph API error codes of debug_token that mean the app token itself was
// refused (a wrong BFF_FACEBOOK_APP_ID or BFF_FACEBOOK_APP_SECRET), which
// says nothing about the user's token.
var facebookAppTokenRefused = []int{102, 190}

func (f *facebookDebugTokenProvider) Verify(ctx context.Context, token string) (Identity, error) {
	// Both tokens travel in a POST body, never in the URL. The Graph API
	// reads a POST carrying method=get as the GET of the same edge (its
	// method override, which Facebook's JavaScript SDK uses for every call).
	form := url.Values{
		"method":       {"get"},
		"input_token":  {token},
		"access_token": {f.appID + "|" + f.appSecret.Reveal()},
	}
	status, body, err := postForm(ctx, f.client, bff.ProviderFacebook, f.endpoint, form)
	if err != nil {
		return Identity{}, err
	}
	var answer struct {
		Data *struct {
			AppID     jsonString `json:"app_id"`
			Type      string     `json:"type"`
			IsValid   bool       `json:"is_valid"`
			UserID    jsonString `json:"user_id"`
			ExpiresAt jsonInt    `json:"expires_at"`
			Error     *struct {
				Code    int `json:"code"`
				Subcode int `json:"subcode"`
			} `json:"error"`
		} `json:"data"`
		Error *struct {
			Code      int  `json:"code"`
			Transient bool `json:"is_transient"`
		} `json:"error"`
	}
	parsed := json.Unmarshal(body, &answer) == nil
	// debug_token judges the user's token in data. A Graph error instead
	// is about the call itself — rate limits, the app token, the request —
	// so the token was not judged: unavailable, never a verdict on it.
	if status != http.StatusOK || answer.Error != nil {
		switch e := answer.Error; {
		case status == http.StatusTooManyRequests || status >= 500:
			return Identity{}, unavailable(bff.ProviderFacebook, "debug_token: status %d", status)
		case e == nil:
			return Identity{}, unavailable(bff.ProviderFacebook, "debug_token: unexpected status %d", status)
		case e.Transient || slices.Contains(facebookTransient, e.Code):
			return Identity{}, unavailable(bff.ProviderFacebook, "debug_token: transient error %d", e.Code)
		case slices.Contains(facebookAppTokenRefused, e.Code):
			return Identity{}, unavailable(bff.ProviderFacebook,
				"debug_token refused the app token (error %d): check BFF_FACEBOOK_APP_ID and BFF_FACEBOOK_APP_SECRET", e.Code)
		}
		return Identity{}, unavailable(bff.ProviderFacebook, "debug_token: Graph API error %d", answer.Error.Code)
	}
	if !parsed || answer.Data == nil {
		return Identity{}, unavailable(bff.ProviderFacebook, "malformed debug_token answer")
	}
	d := answer.Data
	var expires time.Time
	if d.ExpiresAt > 0 { // 0: a token that does not expire
		expires = time.Unix(int64(d.ExpiresAt), 0)
	}
	switch {
	case !d.IsValid && d.Error != nil && d.Error.Subcode == 463:
		return Identity{}, rejected("the token has expired")
	case !d.IsValid:
		return Identity{}, rejected("Facebook says the token is not valid (expired, revoked or malformed)")
	case string(d.AppID) != f.appID:
		return Identity{}, rejected("the token was not issued to this platform's app (app_id)")
	case d.Type != "" && d.Type != "USER":
		return Identity{}, rejected("it is not a user access token (type %s)", d.Type)
	case !expires.IsZero() && !f.now().Before(expires):
		return Identity{}, rejected("the token has expired")
	case d.UserID == "":
		return Identity{}, rejected("the token does not identify a Facebook account")
	}
	return Identity{Subject: string(d.UserID), ExpiresAt: expires}, nil
}

// jsonInt is an integer that providers send as a number or as a string
// (Google's tokeninfo sends "3599").
type jsonInt int64

func (n *jsonInt) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %w", err)
	}
	*n = jsonInt(v)
	return nil
}

// jsonString is an id that providers send as a string or as a number.
type jsonString string

func (s *jsonString) UnmarshalJSON(b []byte) error {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	switch v := v.(type) {
	case string:
		*s = jsonString(v)
	case json.Number:
		*s = jsonString(v.String())
	case nil:
		*s = ""
	default:
		return fmt.Errorf("not an id: %T", v)
	}
	return nil
}
