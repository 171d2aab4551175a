package oauth

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	bff "github.com/openedx/mobile-auth-bff"
)

// Selection is the outcome of format selection: the format of the access
// token and the token_type label of the response that carries it.
type Selection struct {
	Format    bff.TokenFormat
	TokenType string
}

// SelectFormat decides the access-token format of a token request and the
// token_type of its response (SPEC §5); it is the one decision every
// issuing path asks (password, refresh, client credentials, social and
// token exchange). The first rule that matches wins:
//
//  0. an RFC 8693 token exchange (grant_type in form) gets a JWT — its
//     handler has refused it when the kill switch is off;
//  1. a restricted client gets a JWT;
//  2. a client whose kill switch is off (jwt_enabled=false) gets Bearer;
//  3. the token_type form field (jwt|bearer, any case);
//  4. the X-Token-Type header (jwt|bearer, any case);
//  5. asymmetric_jwt=true|1 (any case) gets a JWT;
//  6. the client's rollout percentage, sticky per user;
//  7. the client's token_type.
//
// A JWT's response says "JWT" when rules 3–5 asked for it (edX's way,
// whichever rule decided), "Bearer" when only the client's settings or the
// exchange chose it, and the client's jwt_token_type when it has one. An
// opaque token's response always says "Bearer".
//
// subject is the user id, or "" for client credentials.
func SelectFormat(c bff.Client, form url.Values, header http.Header, subject string) (Selection, error) {
	if form.Get("grant_type") == bff.GrantTokenExchange {
		return label(c, bff.FormatJWT, ""), nil
	}
	asked, err := askedFormat(form, header)
	switch {
	case c.Restricted:
		// A token_type that does not parse is ignored: the client decides.
		return label(c, bff.FormatJWT, asked), nil
	case !c.JWTEnabled:
		return label(c, bff.FormatBearer, asked), nil
	case err != nil:
		return Selection{}, err
	case asked != "":
		return label(c, asked, asked), nil
	case InRollout(c.ID, subject, c.JWTRolloutPercent), c.TokenType == bff.FormatJWT:
		return label(c, bff.FormatJWT, ""), nil
	}
	return label(c, bff.FormatBearer, ""), nil
}

// askedFormat is the format a request asks for edX's way (rules 3–5 of
// SelectFormat), or "" when it asks for none.
func askedFormat(form url.Values, header http.Header) (bff.TokenFormat, error) {
	if v := form.Get("token_type"); v != "" {
		return parseFormat(v, "token_type")
	}
	if v := header.Get("X-Token-Type"); v != "" {
		return parseFormat(v, "X-Token-Type")
	}
	// iOS (Alamofire) sends booleans as 1, Android as true.
	if v := form.Get("asymmetric_jwt"); strings.EqualFold(v, "true") || v == "1" {
		return bff.FormatJWT, nil
	}
	return "", nil
}

// label pairs a decided format with the token_type of its response.
func label(c bff.Client, f, asked bff.TokenFormat) Selection {
	s := Selection{Format: f, TokenType: bff.LabelBearer}
	if f == bff.FormatJWT {
		switch {
		case c.JWTTokenType != "":
			s.TokenType = c.JWTTokenType
		case asked == bff.FormatJWT:
			s.TokenType = bff.LabelJWT
		}
	}
	return s
}

func parseFormat(v, field string) (bff.TokenFormat, error) {
	switch strings.ToLower(v) {
	case "jwt":
		return bff.FormatJWT, nil
	case "bearer":
		return bff.FormatBearer, nil
	}
	return "", fosite.ErrInvalidRequest.WithHintf("%s must be \"jwt\" or \"bearer\".", field)
}

// InRollout reports whether a user falls inside a client's JWT rollout
// percentage. The bucket is a hash of client and user, so a user keeps the
// same format while the percentage stays, and raising it only adds users.
func InRollout(clientID, subject string, percent int) bool {
	if percent <= 0 {
		return false
	}
	if percent >= 100 {
		return true
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s", clientID, subject)))
	return int(binary.BigEndian.Uint64(sum[:8])%100) < percent
}
