package broker

import (
	"container/list"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// Signer signs the JWTs the broker sends upstream: typ JWT, so that they
// never pass as the service's own access tokens. *oauth.KeyManager is one.
type Signer interface {
	SignJWT(claims any) (string, error)
	// CurrentKID is the key new JWTs are signed with; a cached JWT signed
	// with another key is minted again, so that a rotation takes effect
	// at once.
	CurrentKID() string
}

// minter mints the JWTs sent upstream and caches them per user, audience,
// scopes and identity. A cached JWT is used while at least renewBefore of
// its lifetime is left; concurrent misses of one key sign once.
type minter struct {
	signer      Signer
	issuer      string
	audience    string
	ttl         time.Duration
	renewBefore time.Duration
	maxEntries  int
	now         func() time.Time
	onMint      func(cached bool)

	mu      sync.Mutex
	lru     *list.List // of *mintedJWT, most recently used first
	entries map[string]*list.Element
	flight  singleflight.Group
}

type mintedJWT struct {
	key     string
	token   string
	kid     string
	expires time.Time
}

func newMinter(signer Signer, issuer, audience string, maxEntries int, now func() time.Time, onMint func(cached bool)) *minter {
	return &minter{
		signer: signer, issuer: issuer, audience: audience,
		ttl: oauth.UpstreamTokenTTL, renewBefore: time.Minute, maxEntries: maxEntries, now: now, onMint: onMint,
		lru: list.New(), entries: map[string]*list.Element{},
	}
}

// token returns a JWT for the user of p, from the cache when one is fresh;
// cached says so.
func (m *minter) token(p bff.Principal) (token string, cached bool, err error) {
	u := *p.User
	scopes := slices.Clone(p.Scopes)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	key := m.cacheKey(u, scopes)
	kid := m.signer.CurrentKID()
	if tok, ok := m.lookup(key, kid); ok {
		m.onMint(true)
		return tok, true, nil
	}
	// Only the caller whose function runs signs; the others share its JWT.
	signed := false
	v, err, _ := m.flight.Do(key, func() (any, error) {
		if tok, ok := m.lookup(key, kid); ok { // a flight that just ended filled it
			return tok, nil
		}
		now := m.now()
		exp := now.Add(m.ttl)
		tok, err := m.signer.SignJWT(oauth.NewUpstreamClaims(oauth.UpstreamClaimsInput{
			Issuer: m.issuer, Audience: m.audience, User: u, Scopes: scopes,
			IssuedAt: now, ExpiresAt: exp, JTI: bff.RandomID(16),
		}))
		if err != nil {
			return "", err
		}
		signed = true
		m.onMint(false)
		m.put(&mintedJWT{key: key, token: tok, kid: kid, expires: exp})
		return tok, nil
	})
	if err != nil {
		return "", false, err
	}
	if !signed {
		m.onMint(true)
	}
	return v.(string), !signed, nil
}

// cacheKey names what a JWT says: the user, the audience, the scopes and
// the identity claims as they are now, so that a changed email or name is
// never served from a JWT minted before the change.
func (m *minter) cacheKey(u bff.User, scopes []string) string {
	var b strings.Builder
	b.Grow(64 + len(u.Username) + len(u.Email) + len(u.Name))
	b.WriteString(strconv.FormatInt(u.ID, 10))
	for _, s := range []string{m.audience, strings.Join(scopes, " "), u.Username, u.Email, u.Name, strconv.FormatBool(u.EmailVerified)} {
		b.WriteByte(0)
		b.WriteString(s)
	}
	return b.String()
}

func (m *minter) lookup(key, kid string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.entries[key]
	if !ok {
		return "", false
	}
	e := el.Value.(*mintedJWT)
	if e.kid != kid || !m.now().Before(e.expires.Add(-m.renewBefore)) {
		m.lru.Remove(el)
		delete(m.entries, key)
		return "", false
	}
	m.lru.MoveToFront(el)
	return e.token, true
}

func (m *minter) put(e *mintedJWT) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.entries[e.key]; ok {
		m.lru.Remove(el)
	}
	m.entries[e.key] = m.lru.PushFront(e)
	for m.lru.Len() > m.maxEntries {
		oldest := m.lru.Back()
		m.lru.Remove(oldest)
		delete(m.entries, oldest.Value.(*mintedJWT).key)
	}
}

// size is the number of cached JWTs.
func (m *minter) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}
