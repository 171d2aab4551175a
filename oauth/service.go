// Package oauth makes every decision about tokens: the fosite provider and
// its storage adapter, the two token formats and format selection, signing
// keys, the token validator, introspection and revocation.
package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/social"
	"github.com/openedx/mobile-auth-bff/store"
)

// Config is what the OAuth service needs to know.
type Config struct {
	Issuer            string
	Audience          string
	AccessTokenTTL    time.Duration
	RefreshTokenTTL   time.Duration
	RefreshReuseGrace time.Duration
	SessionTTL        time.Duration
	Throttle          ThrottleConfig
	// PasswordChecks bounds the password checks running and waiting.
	PasswordChecks PasswordCheckLimits
	// Social reaches the Google, Facebook and Apple sign-in providers.
	Social social.Config
	// DPoP says how DPoP proofs are judged (RFC 9449).
	DPoP DPoPConfig
	// Now is the clock of the validator, of client authentication (a
	// rotated secret's grace) and of the social exchange (Apple
	// id_token expiry, cached provider answers); nil means time.Now. Tests
	// move it to see tokens expire.
	Now func() time.Time
}

// Service issues, validates, introspects and revokes tokens.
type Service struct {
	cfg       Config
	secrets   *Secrets
	store     store.Store
	keys      *KeyManager
	provider  *fosite.Fosite
	fstore    *fositeStore
	validator *Validator
	refresh   *RefreshPolicy // judges every presented refresh token
	throttle  *Throttle
	hashSlots chan struct{} // bounds concurrent password checks
	hashQueue hashQueue     // bounds the requests waiting for a slot
	social    *social.Verifier
	log       *slog.Logger
	now       func() time.Time // the clock of client authentication (a rotated secret's grace)
}

// PasswordCheckLimits bound the password checks: each takes tens of
// milliseconds of one core and 19 MiB (argon2id), so a burst of logins
// must neither run them all at once nor queue without bound.
type PasswordCheckLimits struct {
	// Slots is how many checks run at once; 0 means GOMAXPROCS.
	Slots int
	// Queue is how many requests may wait for a slot; beyond it a request
	// is answered 503 at once. 0 means 32 per slot (a full queue drains
	// in about a second at the usual tens of milliseconds a check);
	// negative means none waits.
	Queue int
	// Wait is the longest a request waits for a slot before it is
	// answered 503; 0 means DefaultPasswordCheckWait.
	Wait time.Duration
}

// DefaultPasswordCheckWait is how long a password grant waits at most for
// a hashing slot. A phone retries a 503 sooner than it gives up on a
// request that hangs.
const DefaultPasswordCheckWait = 2 * time.Second

// hashQueue is the waiting room of the hashing slots.
type hashQueue struct {
	max     int64
	wait    time.Duration
	waiting atomic.Int64
}

// SupportedGrantTypes are the grant_type values the token endpoint knows.
var SupportedGrantTypes = []string{bff.GrantPassword, bff.GrantRefreshToken, bff.GrantClientCredentials, bff.GrantTokenExchange, bff.GrantAuthorizationCode}

// NewService wires fosite to the store and the keys. v is the validator
// every surface shares (NewValidator); nil builds one for the service
// alone, for tests of the service by itself.
func NewService(st store.Store, keys *KeyManager, secrets *Secrets, v *Validator, cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.AccessTokenTTL <= 0 || cfg.AccessTokenTTL > bff.MaxAccessTokenTTL {
		return nil, fmt.Errorf("access token TTL must be in (0, %s]", bff.MaxAccessTokenTTL)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 14 * 24 * time.Hour
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	soc, err := social.New(cfg.Social, now)
	if err != nil {
		return nil, err
	}
	pc := cfg.PasswordChecks
	if pc.Slots <= 0 {
		pc.Slots = runtime.GOMAXPROCS(0)
	}
	switch {
	case pc.Queue == 0:
		pc.Queue = 32 * pc.Slots
	case pc.Queue < 0:
		pc.Queue = 0
	}
	if pc.Wait <= 0 {
		pc.Wait = DefaultPasswordCheckWait
	}
	s := &Service{cfg: cfg, secrets: secrets, store: st, keys: keys, throttle: NewThrottle(st, cfg.Throttle),
		social: soc, log: log, hashSlots: make(chan struct{}, pc.Slots), now: now}
	s.hashQueue.max, s.hashQueue.wait = int64(pc.Queue), pc.Wait
	s.fstore = &fositeStore{store: st, auth: s.authenticate}

	// Every getter of fosite.Config that would lazily fill a nil field is
	// set here, so that concurrent requests never write to the config.
	opaque := opaqueHMACConfig(secrets)
	fcfg := &fosite.Config{
		AccessTokenLifespan:          cfg.AccessTokenTTL,
		RefreshTokenLifespan:         cfg.RefreshTokenTTL,
		GlobalSecret:                 opaque.GlobalSecret,
		HMACHasher:                   opaque.HMACHasher,
		TokenEntropy:                 opaque.TokenEntropy,
		ScopeStrategy:                fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:     fosite.DefaultAudienceMatchingStrategy,
		RefreshTokenScopes:           []string{}, // refresh tokens without an "offline" scope
		ClientSecretsHasher:          secretHasher{},
		ClientAuthenticationStrategy: s.authenticateClient,
		AccessTokenIssuer:            cfg.Issuer,
		SendDebugMessagesToClients:   false,
		// Browser sign-in (SPEC §14): codes live a minute at most and keep
		// their redirect URI and PKCE challenge. (state needs no entropy
		// here: ParseAuthorize, ADR 23.)
		AuthorizeCodeLifespan:          bff.MaxAuthorizationCodeTTL,
		SanitationWhiteList:            sanitizedAuthorizeForm,
		EnablePKCEPlainChallengeMethod: false,
		RedirectSecureChecker:          func(_ context.Context, u *url.URL) bool { return bff.ValidateRedirectURI(u.String()) == nil },
		OmitRedirectScopeParam:         false,
	}
	if v == nil {
		v = NewValidator(st, keys, secrets, cfg)
	}
	s.validator = v
	hmac := oauth2.NewHMACSHAStrategy(v.enigma, fcfg)
	s.refresh = newRefreshPolicy(cfg.RefreshReuseGrace, now, s.validator.opaqueSignature)
	s.fstore.refresh = s.refresh
	strategy := &tokenStrategy{HMACSHAStrategy: hmac, refresh: s.refresh, keys: keys, users: st, issuer: cfg.Issuer, audience: cfg.Audience}
	tokenExchange := func(fosite.Configurator, any, any) any {
		return &tokenExchangeHandler{
			validator: s.validator, store: s.fstore, audience: cfg.Audience, ttl: cfg.AccessTokenTTL, now: now,
			issuer: &oauth2.HandleHelper{AccessTokenStrategy: strategy, AccessTokenStorage: s.fstore, Config: fcfg},
		}
	}
	s.provider = compose.Compose(fcfg, s.fstore, strategy,
		//lint:ignore SA1019 the password grant is kept for the first-party apps (ADR 1)
		compose.OAuth2ResourceOwnerPasswordCredentialsFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2AuthorizeExplicitFactory,
		pkceFactory,
		s.socialExchangeFactory,
		tokenExchange,
	).(*fosite.Fosite)
	for i, h := range fcfg.TokenEndpointHandlers {
		fcfg.TokenEndpointHandlers[i] = quickRefusal{h}
	}
	return s, nil
}

// quickRefusal is a token endpoint handler that refuses a request it
// cannot handle with fosite.ErrUnknownRequest itself. fosite asks every
// handler to populate every token response, and each of its handlers that
// does not handle the grant answers with a copy of that error carrying a
// stack trace: six stack walks per token request, about 1 % of a refresh
// grant's CPU.
type quickRefusal struct{ fosite.TokenEndpointHandler }

func (h quickRefusal) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, r, resp)
}

func (h quickRefusal) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, r)
}

// Keys returns the key manager.
func (s *Service) Keys() *KeyManager { return s.keys }

// requestState carries what one token request learns along the way.
type requestState struct {
	user       *bff.User
	authTime   time.Time // when the password check began
	authFailed bool
	social     *socialRequest // social exchanges only
	// refreshScopes are the scopes the new refresh token of a refresh
	// grant keeps when scope narrowed its access token; nil otherwise.
	refreshScopes []string
	// proof is the request's checked DPoP proof; zero without one.
	proof Proof
}

type stateKey struct{}

func stateOf(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	if st == nil {
		return &requestState{}
	}
	return st
}

// authenticate checks a password grant's credentials. An unknown login and
// a wrong password take the same time and give the same answer.
func (s *Service) authenticate(ctx context.Context, login, password string) (bff.User, error) {
	st := stateOf(ctx)
	// The account is read now; a password change committed after this
	// instant makes the store refuse the tokens (see Session.AuthTime).
	st.authTime = time.Now().UTC()
	u, err := s.store.GetUserByLogin(ctx, login)
	if err != nil && !errors.Is(err, bff.ErrNotFound) {
		return bff.User{}, err
	}
	hash := u.PasswordHash
	if err != nil || hash == "" {
		hash = "" // unknown login, or an account without a password: burn the same time
	}
	ok, err := s.checkPassword(ctx, hash, password)
	if err != nil {
		return bff.User{}, err
	}
	if !ok {
		st.authFailed = true
		return bff.User{}, fosite.ErrNotFound
	}
	if u.Disabled {
		return bff.User{}, bff.ErrAccountDisabled
	}
	st.user = &u
	return u, nil
}

// HashPassword hashes a new password (HashPassword) in a hashing slot, as
// checkPassword checks one: an account created or a password set through
// the admin API or the CLI costs the same 19 MiB as a check, so a script
// creating accounts in parallel waits for the slots (or gets
// ErrUnavailable) instead of taking memory without bound.
func (s *Service) HashPassword(ctx context.Context, password string) (string, error) {
	if err := s.acquireHashSlot(ctx); err != nil {
		return "", err
	}
	defer func() { <-s.hashSlots }()
	return HashPassword(password)
}

// checkPassword runs one password check (or, with an empty hash, the time
// of one) in a hashing slot. Each check takes tens of milliseconds and
// 19 MiB; the slots keep a burst of logins from exhausting memory, and
// waiting callers give up when their request ends, when the wait bound
// passes or when too many already wait (acquireHashSlot).
func (s *Service) checkPassword(ctx context.Context, hash, password string) (bool, error) {
	if err := s.acquireHashSlot(ctx); err != nil {
		return false, err
	}
	defer func() { <-s.hashSlots }()
	if hash == "" {
		burnPasswordCheck(password)
		return false, nil
	}
	return CheckPassword(hash, password), nil
}

// acquireHashSlot takes a hashing slot, waiting for one at most the
// queue's wait and only when fewer than its max already wait; otherwise it
// fails with ErrUnavailable (503 temporarily_unavailable with Retry-After),
// so that a burst is answered at once instead of piling up requests.
func (s *Service) acquireHashSlot(ctx context.Context) error {
	select {
	case s.hashSlots <- struct{}{}:
		return nil
	default:
	}
	q := &s.hashQueue
	if q.waiting.Add(1) > q.max {
		q.waiting.Add(-1)
		return fmt.Errorf("waiting to check a password: %d requests already wait: %w", q.max, bff.ErrUnavailable)
	}
	defer q.waiting.Add(-1)
	timer := time.NewTimer(q.wait)
	defer timer.Stop()
	select {
	case s.hashSlots <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("waiting to check a password: no slot within %s: %w", q.wait, bff.ErrUnavailable)
	case <-ctx.Done():
		return fmt.Errorf("waiting to check a password: %w: %w", bff.ErrUnavailable, ctx.Err())
	}
}

// authenticateClient replaces fosite's client authentication: HTTP Basic or
// client_secret in the body for confidential clients, client_id alone for
// public ones; nothing else (no assertions).
func (s *Service) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, fosite.ErrInvalidClient.WithHint("The client credentials in the Authorization header are not form-encoded.")
		}
		if form.Get("client_secret") != "" {
			return nil, fosite.ErrInvalidRequest.WithHint("Use one client authentication method, not both HTTP Basic and client_secret.")
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return nil, fosite.ErrInvalidRequest.WithHint("client_id does not match the HTTP Basic credentials.")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication is required: send client_id.")
	}
	c, err := s.store.GetClient(ctx, id)
	if errors.Is(err, bff.ErrNotFound) {
		return nil, fosite.ErrInvalidClient.WithHint("Unknown client.")
	}
	if err != nil {
		return nil, err
	}
	if c.Public {
		if secret != "" {
			return nil, fosite.ErrInvalidClient.WithHint("This client is public and has no secret.")
		}
		if form.Get("grant_type") == bff.GrantClientCredentials {
			// fosite answers invalid_grant; RFC 6749 §5.2 names this case
			// unauthorized_client, and standard clients act on that.
			return nil, fosite.ErrUnauthorizedClient.WithHint("A public client may not use the client_credentials grant.")
		}
		return fositeClient{c}, nil
	}
	if secret == "" || !c.AcceptsSecretHash(HashClientSecret(secret), s.now()) {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	}
	return fositeClient{c}, nil
}

// TokenResult is a successful token response.
type TokenResult struct {
	Body     map[string]any
	Format   bff.TokenFormat
	ClientID string
	// Grant is how the token was obtained: the grant_type of the request,
	// or social_exchange. The usage statistics count it.
	Grant string
	// GrantType is the grant of the family (password, client_credentials,
	// social_exchange), kept through refreshes and exchanges: the
	// grant_type claim.
	GrantType string
	// Bound says the access token is DPoP-bound (token_type DPoP).
	Bound bool
}

// Token handles a token request whose form is already parsed. clientAddr
// is the caller's address, for throttling.
func (s *Service) Token(ctx context.Context, r *http.Request, clientAddr string) (TokenResult, error) {
	grant := r.PostForm.Get("grant_type")
	if grant == "" {
		return TokenResult{}, fosite.ErrInvalidRequest.WithHint("The grant_type parameter is missing.")
	}
	if !slices.Contains(SupportedGrantTypes, grant) {
		return TokenResult{}, fosite.ErrUnsupportedGrantType.WithHintf("grant_type %q is not supported.", grant)
	}
	// A password attempt is counted before its password is checked, so
	// that concurrent attempts cannot all be checked (ADR 5).
	var attempt *Attempt
	if grant == bff.GrantPassword {
		a, err := s.reserveLogin(ctx, r.PostForm.Get("username"), clientAddr)
		if err != nil {
			return TokenResult{}, err
		}
		attempt = a
	}

	st := &requestState{}
	res, err := s.issue(ctx, r, st)
	if attempt != nil {
		s.settleLogin(ctx, attempt, st, err)
	}
	if err != nil {
		return TokenResult{}, err
	}
	return res, nil
}

// reserveLogin counts a password attempt in the throttle. The username
// bucket is the account's when the login (username or email) names one,
// so that alternating them does not double the allowance.
// settleLogin records how a reserved login attempt ended (the password
// grant's or the sign-in page's): succeeded when err is nil, failed when
// the password was checked and wrong, otherwise unchecked (the request
// failed before or beside the password check, which counts nothing).
func (s *Service) settleLogin(ctx context.Context, attempt *Attempt, st *requestState, err error) {
	outcome := Unchecked
	switch {
	case err == nil:
		outcome = Succeeded
	case st.authFailed:
		outcome = Failed
	}
	if serr := attempt.Settle(ctx, outcome); serr != nil {
		s.log.WarnContext(ctx, "settle login attempt", "err", serr)
	}
}

func (s *Service) reserveLogin(ctx context.Context, login, clientAddr string) (*Attempt, error) {
	var u *bff.User
	if s.cfg.Throttle.PerUsername > 0 {
		found, err := s.store.GetUserByLogin(ctx, login)
		switch {
		case err == nil:
			u = &found
		case !errors.Is(err, bff.ErrNotFound):
			return nil, err
		}
	}
	return s.throttle.Reserve(ctx, UserKey(u, login), clientAddr)
}

// issue runs a token request through fosite — the grant handler, scopes,
// format selection, one store transaction for every token written — and
// returns the response. The token endpoint and the social exchange both
// issue through it, so their tokens, responses and errors cannot drift.
func (s *Service) issue(ctx context.Context, r *http.Request, st *requestState) (TokenResult, error) {
	grant := r.PostForm.Get("grant_type")
	if dpop := r.Header.Values("DPoP"); len(dpop) > 0 {
		// A token request with a proof binds its tokens to the proof's
		// key; a bad proof fails the request (RFC 9449 §5).
		proof, err := s.validator.dpop.Check(ctx, ProofRequest{Headers: dpop, Method: r.Method, Path: r.URL.Path})
		if err != nil {
			return TokenResult{}, err
		}
		st.proof = proof
	}
	if grant == bff.GrantRefreshToken {
		// The HMAC first, before fosite looks the token up (RefreshPolicy.Signature).
		if _, ok := s.refresh.Signature(ctx, r.PostForm.Get("refresh_token")); !ok {
			return TokenResult{}, fosite.ErrInvalidGrant.WithHint("The refresh token is malformed or not valid.")
		}
	}
	ctx = context.WithValue(ctx, stateKey{}, st)
	if grant == bff.GrantAuthorizationCode {
		ctx = withPKCERequired(ctx, false) // the code's challenge decides (pkce.go)
	}
	ar, err := s.provider.NewAccessRequest(ctx, r, NewSession())
	if err != nil {
		return TokenResult{}, standardError(err)
	}
	client := clientOf(ar)
	sess := ar.GetSession().(*Session)
	if err := bindTokens(client, sess, st.proof); err != nil {
		return TokenResult{}, err
	}
	switch grant {
	case bff.GrantPassword:
		sess.GrantType = bff.GrantPassword
		sess.AuthTime = st.authTime
		if st.user != nil {
			sess.setUser(*st.user)
		}
	case bff.GrantClientCredentials:
		sess.GrantType = bff.GrantClientCredentials
		sess.AuthTime = time.Now().UTC()
	case bff.GrantAuthorizationCode:
		// The session is the code's: the user and the sign-in time, the
		// scopes granted at the authorize endpoint.
		if sess.GrantType == "" {
			sess.GrantType = bff.GrantAuthorizationCode
		}
	}
	// The grants that start a family grant nothing by themselves: without
	// scope, a token gets every scope of the client; the grant handler has
	// checked that requested scopes are the client's. (A social exchange's
	// handler has set the grant type and user.)
	if grant == bff.GrantPassword || grant == bff.GrantClientCredentials || grant == socialGrant {
		scopes := ar.GetRequestedScopes()
		if len(scopes) == 0 {
			scopes = client.Scopes
		}
		for _, sc := range scopes {
			ar.GrantScope(sc)
		}
	}
	if grant == bff.GrantRefreshToken {
		// fosite granted the family's scopes the client still has; scope
		// on the request may narrow them for this access token (ADR 0022).
		family := slices.Clone(ar.GetGrantedScopes())
		narrowed, err := refreshScopes(family, r.PostForm.Get("scope"))
		if err != nil {
			return TokenResult{}, err
		}
		if len(narrowed) != len(family) {
			req, ok := ar.(*fosite.AccessRequest)
			if !ok {
				return TokenResult{}, fmt.Errorf("narrow refresh scopes: unexpected request type %T", ar)
			}
			req.GrantedScope = narrowed
			st.refreshScopes = family
		}
	}
	// Every grant, the token exchange included, asks the one selection
	// for the format and the response's token_type (SPEC §5).
	sel, err := SelectFormat(client, r.PostForm, r.Header, sess.GetSubject())
	if err != nil {
		return TokenResult{}, err
	}
	sess.Format = sel.Format

	// Every token write of the response goes to the store in one call.
	txCtx := s.fstore.beginBatch(ctx)
	resp, err := s.provider.NewAccessResponse(txCtx, ar)
	if errors.Is(err, bff.ErrCodeUsed) || errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		// Another redemption of the code won the race (found when writing
		// the tokens, or when fosite loads the code a second time): this
		// one is a replay, and the tokens of the winner are revoked (RFC
		// 6749 §4.1.2).
		if rerr := s.fstore.RevokeAccessToken(ctx, ar.GetID()); rerr != nil {
			return TokenResult{}, rerr
		}
		return TokenResult{}, fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
	}
	if err != nil {
		return TokenResult{}, standardError(err)
	}
	if !client.HasGrant(bff.GrantRefreshToken) {
		// fosite hands a refresh token to every password grant; a client
		// that may not refresh gets none (and none is stored).
		s.fstore.dropRefreshTokens(txCtx)
		if r, ok := resp.(*fosite.AccessResponse); ok {
			delete(r.Extra, "refresh_token")
		}
	}
	if err := s.fstore.Commit(txCtx); err != nil {
		return TokenResult{}, err
	}
	resp.SetTokenType(sel.TokenType)
	if sess.JKT != "" {
		resp.SetTokenType(TokenTypeDPoP) // RFC 9449 §5: whatever the format
	}
	grantName := grant
	if grant == socialGrant {
		grantName = bff.GrantSocialExchange
	}
	return TokenResult{Body: resp.ToMap(), Format: sel.Format, ClientID: client.ID, Grant: grantName, GrantType: sess.GrantType,
		Bound: sess.JKT != ""}, nil
}

// TokenTypeDPoP is the token_type of a DPoP-bound access token.
const TokenTypeDPoP = "DPoP"

// bindTokens decides the DPoP binding of the tokens a request issues
// (ADR 0028): the access token is bound to the request's proof key, if it
// has a proof, and so is a public client's refresh token (a confidential
// client's is bound to its authentication, RFC 9449 §5). A client with
// dpop_bound_access_tokens must send a proof; a refresh token bound to a
// key is refreshed only with a proof by that key. It runs after fosite
// checked the grant and before anything is written.
func bindTokens(client bff.Client, sess *Session, proof Proof) error {
	if client.DPoPBoundAccessTokens && proof.JKT == "" {
		return fmt.Errorf("%w: this client must send a DPoP proof (dpop_bound_access_tokens)", bff.ErrInvalidDPoPProof)
	}
	if sess.RefreshJKT != "" && sess.RefreshJKT != proof.JKT {
		// The presented refresh token is bound (a code or a first grant
		// has none): only its key may use it.
		if proof.JKT == "" {
			return fmt.Errorf("%w: the refresh token is DPoP-bound; send a DPoP proof by its key", bff.ErrInvalidDPoPProof)
		}
		return fmt.Errorf("%w: the proof is signed by another key than the refresh token is bound to", bff.ErrInvalidDPoPProof)
	}
	sess.JKT, sess.RefreshJKT = proof.JKT, ""
	if client.Public {
		sess.RefreshJKT = proof.JKT
	}
	return nil
}

// standardError corrects the fosite errors whose error code is not the one
// RFC 6749 §5.2 gives the case: a refresh token that lost a race with
// another use of itself, or that does not validate, is an invalid grant,
// not a malformed request.
func standardError(err error) error {
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) || rfc.ErrorField != fosite.ErrInvalidRequest.ErrorField {
		return err
	}
	switch {
	case errors.Is(err, fosite.ErrSerializationFailure):
		return fosite.ErrInvalidGrant.WithWrap(err).WithHint("The refresh token was used by another request at the same time; retry the request.")
	case errors.Is(err, fosite.ErrNotFound), errors.Is(err, fosite.ErrInactiveToken),
		errors.Is(err, fosite.ErrTokenSignatureMismatch), errors.Is(err, fosite.ErrInvalidTokenFormat):
		return fosite.ErrInvalidGrant.WithWrap(err).WithHint("The refresh token is not valid.")
	}
	return err
}
