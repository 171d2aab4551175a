package memory

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// The token records are compact (issue 14; BenchmarkTokenBytes: ~1,000
// bytes of heap per live token before, ~300 now): what many tokens share
// (client, grant type, scopes, format, DPoP key) is one interned
// tokenShape, their serialized request with the token's own values taken
// out one interned reqTemplate, times are Unix nanoseconds, signatures,
// JTIs and family ids fixed-size keys (a JWT's signature is kept only as
// its SHA-256: ADR 32), and what few tokens have (a JTI or family id of an
// unusual form, a request that does not compact) hangs off an extra
// pointer that is nil otherwise. The store converts at its edge: its
// methods take and return the bff records as before.

// stamp is a time as Unix nanoseconds; zeroStamp is the zero time, and
// for the times that may be unset (a revocation, a rotation) 0 is a nil
// *time.Time (setStamp keeps the Unix epoch from it). Times outside
// 1678–2262 (what int64 nanoseconds hold) are kept as the nearest one
// inside.
type stamp int64

const zeroStamp stamp = math.MinInt64

var (
	minStampTime = time.Unix(0, math.MinInt64+1).UTC()
	maxStampTime = time.Unix(0, math.MaxInt64).UTC()
)

func stampOf(t time.Time) stamp {
	switch {
	case t.IsZero():
		return zeroStamp
	case t.Before(minStampTime):
		t = minStampTime
	case t.After(maxStampTime):
		t = maxStampTime
	}
	return stamp(t.UnixNano())
}

// setStamp is the stamp of a time that must read back as set (a
// revocation, a rotation): never 0.
func setStamp(t time.Time) stamp {
	if s := stampOf(t); s != 0 {
		return s
	}
	return 1
}

// setStampOf is the stamp of a revocation or rotation time, 0 for none.
func setStampOf(p *time.Time) stamp {
	if p == nil {
		return 0
	}
	return setStamp(*p)
}

func (s stamp) time() time.Time {
	if s == zeroStamp {
		return time.Time{}
	}
	return time.Unix(0, int64(s)).UTC()
}

// ptr is the time of a stamp that may be unset (0).
func (s stamp) ptr() *time.Time {
	if s == 0 {
		return nil
	}
	t := s.time()
	return &t
}

// sigKey is a token signature as a map key: the 32 bytes of an HMAC
// signature (43 characters of unpadded base64url, what opaque tokens
// have), or the SHA-256 of any other signature (hashed: a JWT's 342
// characters are not kept, ADR 32). Whether a record's key is hashed is in
// its shape (keyForms), so that no signature finds the record of another
// whose hashed key is its bytes.
type sigKey [32]byte

var strictBase64 = base64.RawURLEncoding.Strict()

func sigKeyOf(sig string) (k sigKey, hashed bool) {
	if len(sig) == 43 {
		if n, err := strictBase64.Decode(k[:], []byte(sig)); err == nil && n == len(k) {
			return k, false
		}
	}
	if d, ok := strings.CutPrefix(sig, store.DigestPrefix); ok && len(d) == 43 {
		if n, err := strictBase64.Decode(k[:], []byte(d)); err == nil && n == len(k) {
			return k, true
		}
	}
	return sha256.Sum256([]byte(sig)), true
}

// string is the signature of k: itself when not hashed, else its digest
// form (store.DigestPrefix), which sigKeyOf takes back as the same key.
func (k sigKey) string(hashed bool) string {
	var buf [len(store.DigestPrefix) + 43]byte // one allocation: the string
	b := buf[:0]
	if hashed {
		b = append(b, store.DigestPrefix...)
	}
	return string(strictBase64.AppendEncode(b, k[:]))
}

// jtiKey is a JWT's id as a record keeps it and as a map key: the 16 bytes
// of the service's ids (22 characters of unpadded base64url,
// bff.RandomID(16)), or the first 16 bytes of the SHA-256 of any other id
// (hashed: the record's extra keeps the id and a lookup compares it).
type jtiKey [16]byte

func jtiKeyOf(jti string) (k jtiKey, packed bool) {
	if len(jti) == 22 {
		if n, err := strictBase64.Decode(k[:], []byte(jti)); err == nil && n == len(k) {
			return k, true
		}
	}
	h := sha256.Sum256([]byte(jti))
	return jtiKey(h[:16]), false
}

// famKey is a family id (fosite's request id) as a map key: the 16 bytes
// of a UUID in its canonical lowercase form, or the first 16 bytes of the
// SHA-256 of any other id (hashed: Store.famIDs and the tokens' extras
// keep those ids).
type famKey [16]byte

func famKeyOf(id string) (famKey, bool) {
	if k, ok := parseUUID(id); ok {
		return k, false
	}
	h := sha256.Sum256([]byte(id))
	return famKey(h[:16]), true
}

const hexDigits = "0123456789abcdef"

// parseUUID reads xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in lowercase hex,
// the only form famKey.uuid writes back.
func parseUUID(id string) (famKey, bool) {
	var k famKey
	if len(id) != 36 {
		return k, false
	}
	j := 0
	for i := 0; i < len(id); {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if id[i] != '-' {
				return k, false
			}
			i++
			continue
		}
		hi, lo := hexValue(id[i]), hexValue(id[i+1])
		if hi < 0 || lo < 0 {
			return k, false
		}
		k[j] = byte(hi<<4 | lo)
		i, j = i+2, j+1
	}
	return k, true
}

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// uuid is the id of a key that is not hashed.
func (k famKey) uuid() string {
	out := make([]byte, 0, 36)
	for i, c := range k {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return string(out)
}

// shapeKey is what tokens share: interned once in Store.shapes.
type shapeKey struct {
	client string
	grant  string
	format bff.TokenFormat
	scopes string // packScopes
	jkt    string
	// roles are what the time marks of the token's request template
	// stand for (compactRequest).
	roles timeRoles
	keys  keyForms
}

// keyForms says how a record keeps its keys.
type keyForms uint8

const (
	hashedSig    keyForms = 1 << iota // its signature's key is hashed (sigKeyOf)
	hashedAccess                      // a refresh token's access signature's key is
	packedJTI                         // an access token's JTI is in accessRec.jti
)

// has reports whether every form of f is in fs.
func (fs keyForms) has(f keyForms) bool { return fs&f == f }

// tokenShape is an interned shapeKey, counted by the records (tokens and
// families) that point to it.
type tokenShape struct {
	shapeKey
	scopes []string // unpacked; shared, never changed
	refs   int
}

// reqTemplate is a serialized request with a token's own values replaced
// by marks (compactRequest), interned in Store.templates and counted by
// the tokens that point to it: the access and refresh tokens of one
// client's user (of every client-credentials request of a client) share
// one.
type reqTemplate struct {
	text  string
	marks int
	refs  int
}

// internTemplate returns the template of text, counting one more token
// that points to it; nil for "".
func (s *Store) internTemplate(text string) *reqTemplate {
	if text == "" {
		return nil
	}
	t, ok := s.templates[text]
	if !ok {
		t = &reqTemplate{text: text, marks: strings.Count(text, string(rune(markByte)))}
		s.templates[text] = t
	}
	t.refs++
	return t
}

// releaseTemplate counts one token less pointing to t (nil: none) and
// forgets it with the last.
func (s *Store) releaseTemplate(t *reqTemplate) {
	if t == nil {
		return
	}
	if t.refs--; t.refs <= 0 {
		delete(s.templates, t.text)
	}
}

// packScopes writes scopes as one comparable string: each one's length,
// then the scope.
func packScopes(scopes []string) string {
	if len(scopes) == 0 {
		return ""
	}
	var b []byte
	for _, sc := range scopes {
		b = binary.AppendUvarint(b, uint64(len(sc)))
		b = append(b, sc...)
	}
	return string(b)
}

// internShape returns the shape of k with scopes, counting one more
// record that points to it.
func (s *Store) internShape(k shapeKey, scopes []string) *tokenShape {
	sh, ok := s.shapes[k]
	if !ok {
		sh = &tokenShape{shapeKey: k}
		if len(scopes) > 0 {
			sh.scopes = slices.Clone(scopes)
		}
		s.shapes[k] = sh
	}
	sh.refs++
	return sh
}

// releaseShape counts one record less pointing to sh and forgets it with
// the last.
func (s *Store) releaseShape(sh *tokenShape) {
	if sh.refs--; sh.refs <= 0 {
		delete(s.shapes, sh.shapeKey)
	}
}

// tokenExtra is what few tokens have; nil for most.
type tokenExtra struct {
	jti string // when the JTI is not packed (jtiKeyOf)
	// familyID is the family id when its key is hashed.
	familyID     string
	hashedFamily bool
	// auth is a refresh token's auth time when it is not its family's
	// (ownAuth).
	auth    stamp
	ownAuth bool
	request []byte // when compactRequest cannot take it apart
}

// orNil is e, or nil when it holds nothing.
func (e *tokenExtra) orNil() *tokenExtra {
	if e.jti == "" && e.request == nil && !e.hashedFamily && !e.ownAuth {
		return nil
	}
	return e
}

// family is the family id of the record of e, whose family has key k.
func (e *tokenExtra) family(k famKey) string {
	if e != nil && e.hashedFamily {
		return e.familyID
	}
	return k.uuid()
}

// accessRec is a stored access token (bff.AccessToken) without its
// signature, which is its key: 112 bytes.
type accessRec struct {
	shape                          *tokenShape
	tmpl                           *reqTemplate // nil: no request, or extra.request
	extra                          *tokenExtra
	userID                         int64
	issued, expires, auth, revoked stamp
	reqTimes                       [2]stamp // compactRequest's
	fam                            famKey
	jti                            jtiKey // when packed (keyForms)
}

// jtiOf is the JTI of the record, "" for none.
func (r *accessRec) jtiOf() string {
	if r.shape.keys.has(packedJTI) {
		return strictBase64.EncodeToString(r.jti[:])
	}
	if r.extra == nil {
		return ""
	}
	return r.extra.jti
}

// jtiKey is the key of the record's JTI, and whether it has one.
func (r *accessRec) jtiKey() (jtiKey, bool) {
	if r.shape.keys.has(packedJTI) {
		return r.jti, true
	}
	if r.extra == nil || r.extra.jti == "" {
		return jtiKey{}, false
	}
	k, _ := jtiKeyOf(r.extra.jti)
	return k, true
}

// refreshRec is a stored refresh token (bff.RefreshToken): 128 bytes, the
// most a map keeps in its slots. Its auth time is its family's (or
// extra's).
type refreshRec struct {
	shape                             *tokenShape
	tmpl                              *reqTemplate
	extra                             *tokenExtra
	userID                            int64
	issued, expires, revoked, rotated stamp
	reqTimes                          [2]stamp
	fam                               famKey
	access                            sigKey
}

// famRec is a stored token family without its id, which is its key: what
// the store's rules ask of it (bff.TokenFamily.MayIssue, MayOpen, the
// deletions by client and user). Its client is its first token's shape's.
type famRec struct {
	shape         *tokenShape
	userID        int64
	auth, revoked stamp
}

// familyID is the id of a stored family's key.
func (s *Store) familyID(k famKey) string {
	if id, ok := s.famIDs[k]; ok {
		return id
	}
	return k.uuid()
}

// recordValues are a token's own values that its serialized request may
// repeat: compactRequest replaces them with marks. The user's are its
// user's username and id, which a record gets back from the store's users
// (never renamed nor deleted: store.Users has no method for either).
type recordValues struct {
	family, jti           string
	issued, expires, auth stamp
	username              string // "" for none
	userID                int64  // 0 for none
}

// A mark in a request template: markByte, then what it stands for.
const (
	markByte   = 0x00
	markFamily = 'F'
	markJTI    = 'J'
	markTime   = 'T' // the next time; timeRoles says which
	markUser   = 'U' // the username, a string
	markUserID = 'N' // the user id, a number (no quotes)
)

// maxTimeMarks is how many times a template stands for; more stay text.
const maxTimeMarks = 4

// timeRoles says of each time mark of a template, in order, which time of
// its record it is: one of roleIssued…roleOwn (roleOwn+i: reqTimes[i]).
type timeRoles [maxTimeMarks]byte

const (
	roleIssued byte = 1 + iota
	roleExpires
	roleAuth
	roleOwn
)

// compactRequest takes the token's own values out of its serialized
// request: the JSON strings that are the family id, the JTI or a time
// (RFC 3339 in UTC, as encoding/json writes time.Time) become marks;
// roles say which time of the record each time mark is, the times not of
// the record (up to two) are kept in times. As the marks do not say which
// time they are, the access and refresh token written with one request
// have the same template, and the tokens of one client and user (of one
// client, for client credentials) share it. ok is false when req does not
// come back byte for byte from the template (the record then keeps it
// whole); the store never needs to understand it. The username and user
// id are marks too, so that the tokens of every user of a client share a
// template.
func compactRequest(req []byte, v recordValues, scratch []byte) (tmpl string, roles timeRoles, times [2]stamp, ok bool) {
	if len(req) == 0 || bytes.IndexByte(req, markByte) >= 0 {
		return "", roles, times, false
	}
	out := scratch[:0]
	marks, own := 0, 0
	for i := 0; i < len(req); {
		if req[i] != '"' {
			j := bytes.IndexByte(req[i:], '"')
			if j < 0 {
				j = len(req) - i
			}
			out = appendMarkingID(out, req[i:i+j], v.userID)
			i += j
			continue
		}
		end, escaped := i+1, false
		for end < len(req) && req[end] != '"' {
			if req[end] == '\\' {
				escaped = true
				end++
			}
			end++
		}
		if end >= len(req) {
			return "", roles, times, false
		}
		str := req[i+1 : end]
		mark := byte(0)
		switch {
		case escaped:
		case v.family != "" && string(str) == v.family:
			mark = markFamily
		case v.jti != "" && string(str) == v.jti:
			mark = markJTI
		case v.username != "" && string(str) == v.username:
			mark = markUser
		case marks < maxTimeMarks:
			t, isTime := parseStamp(str)
			if !isTime {
				break
			}
			role := byte(0)
			switch {
			case t == v.issued:
				role = roleIssued
			case t == v.expires:
				role = roleExpires
			case t == v.auth:
				role = roleAuth
			case own < len(times):
				times[own], role = t, roleOwn+byte(own)
				own++
			}
			if role != 0 {
				roles[marks], marks, mark = role, marks+1, markTime
			}
		}
		if mark == 0 {
			out = append(out, req[i:end+1]...)
		} else {
			out = append(out, markByte, mark)
		}
		i = end + 1
	}
	if !bytes.Equal(expandRequest(out[len(out):], string(out), roles, v, times), req) {
		return "", roles, times, false
	}
	return string(out), roles, times, true
}

// appendMarkingID appends seg, outside any string, to out with every
// number that is id's decimal digits whole replaced by markUserID.
func appendMarkingID(out, seg []byte, id int64) []byte {
	if id <= 0 {
		return append(out, seg...)
	}
	var buf [20]byte
	digits := strconv.AppendInt(buf[:0], id, 10)
	for k := 0; k < len(seg); {
		if !isDigit(seg[k]) {
			out = append(out, seg[k])
			k++
			continue
		}
		e := k
		for e < len(seg) && isDigit(seg[e]) {
			e++
		}
		if bytes.Equal(seg[k:e], digits) {
			out = append(out, markByte, markUserID)
		} else {
			out = append(out, seg[k:e]...)
		}
		k = e
	}
	return out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseStamp reads a time that encoding/json writes for a UTC time.Time and
// that comes back from its stamp as the same text.
func parseStamp(s []byte) (stamp, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || len(s) > len(time.RFC3339Nano) || s[4] != '-' || s[len(s)-1] != 'Z' {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil || t.Before(minStampTime) || t.After(maxStampTime) || t.IsZero() {
		return 0, false
	}
	st := stamp(t.UnixNano())
	var buf [len(time.RFC3339Nano)]byte
	if !bytes.Equal(st.time().AppendFormat(buf[:0], time.RFC3339Nano), s) {
		return 0, false
	}
	return st, true
}

// expandRequest appends the request of tmpl (compactRequest's) to dst.
func expandRequest(dst []byte, tmpl string, roles timeRoles, v recordValues, times [2]stamp) []byte {
	n := 0
	for {
		i := strings.IndexByte(tmpl, markByte)
		if i < 0 || i+1 >= len(tmpl) {
			return append(dst, tmpl...)
		}
		dst = append(dst, tmpl[:i]...)
		if tmpl[i+1] == markUserID {
			dst = strconv.AppendInt(dst, v.userID, 10)
			tmpl = tmpl[i+2:]
			continue
		}
		dst = append(dst, '"')
		switch tmpl[i+1] {
		case markUser:
			dst = append(dst, v.username...)
		case markFamily:
			dst = append(dst, v.family...)
		case markJTI:
			dst = append(dst, v.jti...)
		case markTime:
			var t stamp
			switch r := roles[n%maxTimeMarks]; r {
			case roleIssued:
				t = v.issued
			case roleExpires:
				t = v.expires
			case roleAuth:
				t = v.auth
			default:
				t = times[int(r-roleOwn)%len(times)]
			}
			dst = t.time().AppendFormat(dst, time.RFC3339Nano)
			n++
		}
		dst = append(dst, '"')
		tmpl = tmpl[i+2:]
	}
}
