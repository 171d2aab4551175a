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

// SelectFormat decides the access-token format of a token request (SPEC §5);
// the first rule that matches wins:
//
//  1. a restricted client gets a JWT;
//  2. a client whose kill switch is off (jwt_enabled=false) gets Bearer;
//  3. the token_type form field (jwt|bearer);
//  4. the X-Token-Type header (jwt|bearer);
//  5. asymmetric_jwt=true gets a JWT;
//  6. the client's rollout percentage, sticky per user;
//  7. the client's token_type.
//
// subject is the user id, or "" for client credentials.
func SelectFormat(c bff.Client, form url.Values, header http.Header, subject string) (bff.TokenFormat, error) {
	if c.Restricted {
		return bff.FormatJWT, nil
	}
	if !c.JWTEnabled {
		return bff.FormatBearer, nil
	}
	if v := form.Get("token_type"); v != "" {
		return parseFormat(v, "token_type")
	}
	if v := header.Get("X-Token-Type"); v != "" {
		return parseFormat(v, "X-Token-Type")
	}
	if strings.EqualFold(form.Get("asymmetric_jwt"), "true") {
		return bff.FormatJWT, nil
	}
	if InRollout(c.ID, subject, c.JWTRolloutPercent) {
		return bff.FormatJWT, nil
	}
	if c.TokenType == bff.FormatJWT {
		return bff.FormatJWT, nil
	}
	return bff.FormatBearer, nil
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
