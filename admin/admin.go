// Package admin holds the operations an operator runs on clients, users and
// keys. The admin HTTP API and the admin CLI both call it, so the two offer
// the same operations with the same checks.
package admin

import (
	"context"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/oauth"
	"github.com/openedx/mobile-auth-bff/store"
)

// Service runs admin operations.
type Service struct {
	store  store.Store
	keys   *oauth.KeyManager
	hasher Hasher
}

// Hasher hashes new passwords; *oauth.Service does, in the hashing slots
// that bound every argon2id hash and check of the process.
type Hasher interface {
	HashPassword(ctx context.Context, password string) (string, error)
}

// New returns an admin service.
func New(st store.Store, keys *oauth.KeyManager, hasher Hasher) *Service {
	return &Service{store: st, keys: keys, hasher: hasher}
}

// NewClient is a client to create.
type NewClient struct {
	ID                string          `json:"client_id"`
	Name              string          `json:"name"`
	Public            bool            `json:"public"`
	GrantTypes        []string        `json:"grant_types"`
	Scopes            []string        `json:"scopes"`
	TokenType         bff.TokenFormat `json:"token_type"`
	JWTRolloutPercent int             `json:"jwt_rollout_percent"`
	JWTEnabled        *bool           `json:"jwt_enabled"`
	Restricted        bool            `json:"restricted"`
	// JWTTokenType is "JWT", "Bearer" (any case) or "" (SPEC §5).
	JWTTokenType string `json:"jwt_token_type"`
	// RedirectURIs are the browser sign-in redirect URIs (SPEC §14).
	RedirectURIs []string `json:"redirect_uris"`
	// PKCERequired defaults to true.
	PKCERequired *bool `json:"pkce_required"`
	// DPoPBoundAccessTokens (default false) makes every token request of
	// the client carry a DPoP proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens"`
}

// CreatedClient is a new client and, for confidential clients, its secret,
// shown this once and stored only hashed.
type CreatedClient struct {
	Client bff.Client
	Secret string
}

// CreateClient creates a client; the server generates a confidential
// client's secret.
func (s *Service) CreateClient(ctx context.Context, in NewClient) (CreatedClient, error) {
	now := time.Now().UTC()
	c := bff.Client{
		ID: in.ID, Name: in.Name, Public: in.Public, GrantTypes: in.GrantTypes, Scopes: in.Scopes,
		TokenType: in.TokenType, JWTRolloutPercent: in.JWTRolloutPercent, JWTEnabled: true,
		Restricted: in.Restricted, JWTTokenType: bff.CanonicalJWTTokenType(in.JWTTokenType),
		RedirectURIs: dedupe(in.RedirectURIs), PKCERequired: true, DPoPBoundAccessTokens: in.DPoPBoundAccessTokens,
		CreatedAt: now, UpdatedAt: now, Incarnation: bff.NewIncarnation(),
	}
	if in.PKCERequired != nil {
		c.PKCERequired = *in.PKCERequired
	}
	if c.TokenType == "" {
		c.TokenType = bff.FormatBearer
	}
	if in.JWTEnabled != nil {
		c.JWTEnabled = *in.JWTEnabled
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{bff.GrantPassword, bff.GrantRefreshToken}
		if !c.Public {
			c.GrantTypes = []string{bff.GrantClientCredentials}
		}
	}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	c.GrantTypes, c.Scopes = dedupe(c.GrantTypes), dedupe(c.Scopes)
	if !plainText(c.Name) {
		return CreatedClient{}, fmt.Errorf("%w: name must be printable text", bff.ErrInvalidInput)
	}
	if err := c.Validate(); err != nil {
		return CreatedClient{}, err
	}
	var secret string
	if !c.Public {
		secret = bff.RandomID(32) // 256 bits
		c.SecretHash = oauth.HashClientSecret(secret)
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		return CreatedClient{}, err
	}
	return CreatedClient{Client: c, Secret: secret}, nil
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// ClientPatch changes some fields of a client; nil fields stay.
type ClientPatch struct {
	Name              *string          `json:"name"`
	GrantTypes        *[]string        `json:"grant_types"`
	Scopes            *[]string        `json:"scopes"`
	TokenType         *bff.TokenFormat `json:"token_type"`
	JWTRolloutPercent *int             `json:"jwt_rollout_percent"`
	JWTEnabled        *bool            `json:"jwt_enabled"`
	Restricted        *bool            `json:"restricted"`
	// JWTTokenType is "JWT", "Bearer" (any case), or "" to leave the
	// label to the request again.
	JWTTokenType *string `json:"jwt_token_type"`
	// RedirectURIs replaces the list; [] clears it.
	RedirectURIs *[]string `json:"redirect_uris"`
	PKCERequired *bool     `json:"pkce_required"`
	// DPoPBoundAccessTokens turns the demand for a DPoP proof on or off;
	// tokens already issued keep their binding (or its absence).
	DPoPBoundAccessTokens *bool `json:"dpop_bound_access_tokens"`
}

// UpdateClient applies a patch atomically; the result must still be valid.
func (s *Service) UpdateClient(ctx context.Context, id string, p ClientPatch) (bff.Client, error) {
	return s.store.UpdateClient(ctx, id, func(c *bff.Client) error {
		if p.Name != nil {
			if !plainText(*p.Name) {
				return fmt.Errorf("%w: name must be printable text", bff.ErrInvalidInput)
			}
			c.Name = *p.Name
		}
		if p.GrantTypes != nil {
			c.GrantTypes = dedupe(*p.GrantTypes)
		}
		if p.Scopes != nil {
			c.Scopes = dedupe(*p.Scopes)
		}
		if p.TokenType != nil {
			c.TokenType = *p.TokenType
		}
		if p.JWTRolloutPercent != nil {
			c.JWTRolloutPercent = *p.JWTRolloutPercent
		}
		if p.JWTEnabled != nil {
			c.JWTEnabled = *p.JWTEnabled
		}
		if p.Restricted != nil {
			c.Restricted = *p.Restricted
		}
		if p.JWTTokenType != nil {
			c.JWTTokenType = bff.CanonicalJWTTokenType(*p.JWTTokenType)
		}
		if p.RedirectURIs != nil {
			c.RedirectURIs = dedupe(*p.RedirectURIs)
		}
		if p.PKCERequired != nil {
			c.PKCERequired = *p.PKCERequired
		}
		if p.DPoPBoundAccessTokens != nil {
			c.DPoPBoundAccessTokens = *p.DPoPBoundAccessTokens
		}
		c.UpdatedAt = time.Now().UTC()
		return c.Validate()
	})
}

// SecretRotation asks for a new secret of a confidential client.
type SecretRotation struct {
	// Secret is the new secret; "" lets the server generate one. An
	// operator's own secret must be as hard to guess as a generated one:
	// 32–256 printable ASCII characters.
	Secret string `json:"secret"`
	// Grace is how long the replaced secret keeps working, as a Go
	// duration ("1h"); "" or "0s" ends it at once. At most 168h.
	Grace string `json:"grace"`
}

// RotatedSecret is a client after a rotation and its new secret, shown
// this once and stored only hashed.
type RotatedSecret struct {
	Client bff.Client
	Secret string
}

// Bounds of an operator-chosen client secret. Secrets are stored as one
// SHA-256 (fosite_store.go), which is only as strong as the secret.
const (
	minClientSecret = 32
	maxClientSecret = 256
)

// RotateClientSecret gives a confidential client a new secret (generated
// unless in.Secret is set). During the grace the replaced secret still
// authenticates; a secret replaced by an earlier rotation stops at once.
// A public client is ErrInvalidInput.
func (s *Service) RotateClientSecret(ctx context.Context, id string, in SecretRotation) (RotatedSecret, error) {
	var grace time.Duration
	if in.Grace != "" {
		d, err := time.ParseDuration(in.Grace)
		if err != nil {
			return RotatedSecret{}, fmt.Errorf("%w: grace must be a duration such as \"1h\" or \"90s\"", bff.ErrInvalidInput)
		}
		grace = d
	}
	secret := in.Secret
	if secret == "" {
		secret = bff.RandomID(32) // 256 bits
	} else if err := validateClientSecret(secret); err != nil {
		return RotatedSecret{}, err
	}
	c, err := s.store.UpdateClient(ctx, id, func(c *bff.Client) error {
		return c.RotateSecret(oauth.HashClientSecret(secret), time.Now().UTC(), grace)
	})
	if err != nil {
		return RotatedSecret{}, err
	}
	return RotatedSecret{Client: c, Secret: secret}, nil
}

func validateClientSecret(secret string) error {
	if len(secret) < minClientSecret || len(secret) > maxClientSecret {
		return fmt.Errorf("%w: secret must be %d–%d characters", bff.ErrInvalidInput, minClientSecret, maxClientSecret)
	}
	for _, r := range secret {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("%w: secret may hold printable ASCII characters only, no spaces", bff.ErrInvalidInput)
		}
	}
	return nil
}

// GetClient returns a client.
func (s *Service) GetClient(ctx context.Context, id string) (bff.Client, error) {
	return s.store.GetClient(ctx, id)
}

// ListClients returns every client.
func (s *Service) ListClients(ctx context.Context) ([]bff.Client, error) {
	return s.store.ListClients(ctx)
}

// DeleteClient removes a client and every token issued to it.
func (s *Service) DeleteClient(ctx context.Context, id string) error {
	return s.store.DeleteClient(ctx, id)
}

// NewUser is an account to create.
type NewUser struct {
	Username      string `json:"username"`
	Email         string `json:"email"`
	Name          string `json:"name"`
	Password      string `json:"password"`
	EmailVerified *bool  `json:"email_verified"`
	IsStaff       bool   `json:"is_staff"`
	IsSuperuser   bool   `json:"is_superuser"`
}

// CreateUser creates an account, hashing its password with argon2id. An
// account without a password can only sign in through a linked provider.
func (s *Service) CreateUser(ctx context.Context, in NewUser) (bff.User, error) {
	in.Username, in.Email, in.Name = strings.TrimSpace(in.Username), strings.TrimSpace(in.Email), strings.TrimSpace(in.Name)
	if err := validateUsername(in.Username); err != nil {
		return bff.User{}, err
	}
	if a, err := mail.ParseAddress(in.Email); err != nil || a.Address != in.Email || len(in.Email) > 254 {
		return bff.User{}, fmt.Errorf("%w: email must be a plain address like user@example.com", bff.ErrInvalidInput)
	}
	if !plainText(in.Name) || utf8.RuneCountInString(in.Name) > 255 {
		return bff.User{}, fmt.Errorf("%w: name must be at most 255 printable characters", bff.ErrInvalidInput)
	}
	u := bff.User{Username: in.Username, Email: in.Email, Name: in.Name, EmailVerified: true,
		IsStaff: in.IsStaff, IsSuperuser: in.IsSuperuser}
	if in.EmailVerified != nil {
		u.EmailVerified = *in.EmailVerified
	}
	if in.Password != "" {
		if err := validatePassword(in.Password); err != nil {
			return bff.User{}, err
		}
		hash, err := s.hasher.HashPassword(ctx, in.Password)
		if err != nil {
			return bff.User{}, err
		}
		u.PasswordHash = hash
	}
	return s.store.CreateUser(ctx, u)
}

// plainText reports whether s is valid UTF-8 without control characters.
func plainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func validateUsername(u string) error {
	if u == "" || len(u) > 150 {
		return fmt.Errorf("%w: username must be 1–150 characters", bff.ErrInvalidInput)
	}
	// No @: usernames and emails share one namespace (ADR 0021), and a
	// username that reads as an email would be one to whoever types it.
	if strings.ContainsRune(u, '@') {
		return fmt.Errorf("%w: username must not contain @ (usernames and emails share one namespace; sign-in accepts either)", bff.ErrInvalidInput)
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".+-_", r)) {
			return fmt.Errorf("%w: username may hold letters, digits and .+-_ only", bff.ErrInvalidInput)
		}
	}
	return nil
}

func validatePassword(p string) error {
	if len(p) < 8 || len(p) > oauth.MaxPasswordLength {
		return fmt.Errorf("%w: password must be 8–%d bytes", bff.ErrInvalidInput, oauth.MaxPasswordLength)
	}
	return nil
}

// GetUser returns an account.
func (s *Service) GetUser(ctx context.Context, id int64) (bff.User, error) {
	return s.store.GetUser(ctx, id)
}

// DisableUser disables an account: its tokens are revoked and every check
// of a JWT of it fails from now on.
func (s *Service) DisableUser(ctx context.Context, id int64, actor string) (bff.User, error) {
	return s.store.SetUserDisabled(ctx, id, true, actor, time.Now().UTC())
}

// EnableUser enables an account; revoked tokens stay revoked.
func (s *Service) EnableUser(ctx context.Context, id int64, actor string) (bff.User, error) {
	return s.store.SetUserDisabled(ctx, id, false, actor, time.Now().UTC())
}

// SetPassword replaces an account's password and revokes its tokens.
func (s *Service) SetPassword(ctx context.Context, id int64, password, actor string) error {
	if err := validatePassword(password); err != nil {
		return err
	}
	hash, err := s.hasher.HashPassword(ctx, password)
	if err != nil {
		return err
	}
	return s.store.SetUserPassword(ctx, id, hash, actor, time.Now().UTC())
}

// KeyInfo describes a signing key without its private part.
type KeyInfo struct {
	KID         string       `json:"kid"`
	Algorithm   string       `json:"alg"`
	State       bff.KeyState `json:"state"`
	Published   bool         `json:"published"`
	CreatedAt   time.Time    `json:"created_at"`
	ActivatedAt *time.Time   `json:"activated_at,omitempty"`
	RetiredAt   *time.Time   `json:"retired_at,omitempty"`
}

// ListKeys describes every signing key, newest first.
func (s *Service) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	keys, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	published := map[string]bool{}
	for _, k := range s.keys.Published() {
		published[k.KeyID] = true
	}
	out := make([]KeyInfo, len(keys))
	for i, k := range keys {
		out[i] = KeyInfo{KID: k.KID, Algorithm: k.Algorithm, State: k.State, Published: published[k.KID],
			CreatedAt: k.CreatedAt, ActivatedAt: k.ActivatedAt, RetiredAt: k.RetiredAt}
	}
	return out, nil
}

// RotateKeys retires the current key, promotes the next and creates a new next.
func (s *Service) RotateKeys(ctx context.Context) ([]KeyInfo, error) {
	if err := s.keys.Rotate(ctx); err != nil {
		return nil, err
	}
	return s.ListKeys(ctx)
}

// LinkIdentity links a provider account to a user, so that the user can
// exchange that provider's tokens (SPEC §7). Linking the same identity to
// the same user again changes nothing; created tells which happened. A
// provider account linked to another user is ErrConflict: unlink it first.
func (s *Service) LinkIdentity(ctx context.Context, userID int64, provider, subject string) (bff.Identity, bool, error) {
	id := bff.Identity{Provider: strings.TrimSpace(provider), Subject: strings.TrimSpace(subject), UserID: userID,
		CreatedAt: time.Now().UTC()}
	if err := id.Validate(); err != nil {
		return bff.Identity{}, false, err
	}
	return s.store.LinkIdentity(ctx, id)
}

// ListIdentities returns the provider accounts linked to a user.
func (s *Service) ListIdentities(ctx context.Context, userID int64) ([]bff.Identity, error) {
	if _, err := s.store.GetUser(ctx, userID); err != nil {
		return nil, err
	}
	return s.store.ListIdentities(ctx, userID)
}

// UnlinkIdentity removes a provider account from a user: its tokens stop
// being exchangeable at once. Tokens already issued through it stay valid;
// reset the password or disable the user to end them.
func (s *Service) UnlinkIdentity(ctx context.Context, userID int64, provider, subject string) error {
	return s.store.UnlinkIdentity(ctx, userID, provider, subject)
}
