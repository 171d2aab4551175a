package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/oauth"
)

// The headers of DPoP (RFC 9449).
const (
	dpopHeader      = "DPoP"
	dpopNonceHeader = "DPoP-Nonce"
)

// dpopNonce gives a request that uses DPoP — a DPoP header, or the DPoP
// scheme — the server's current nonce in DPoP-Nonce (RFC 9449 §8.2), on
// success and failure alike, so that a client always holds the nonce its
// next proof needs. Other requests are left alone.
func dpopNonce(d *oauth.DPoP) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if !d.NoncesRequired() {
			return next
		}
		return func(c echo.Context) error {
			h := c.Request().Header
			scheme, _, _ := strings.Cut(h.Get(echo.HeaderAuthorization), " ")
			if len(h.Values(dpopHeader)) > 0 || strings.EqualFold(scheme, "DPoP") {
				c.Response().Header().Set(dpopNonceHeader, d.Nonce())
			}
			return next(c)
		}
	}
}

// dpopAlgs are the proof algorithms a DPoP challenge names.
var dpopAlgs = strings.Join(algNames(oauth.DPoPAlgorithms), " ")

// dpopChallenge is the WWW-Authenticate challenge of a DPoP rejection
// (RFC 9449 §7.1): the error and the algorithms a proof may use.
func dpopChallenge(code string) string {
	return `DPoP error="` + code + `", algs="` + dpopAlgs + `"`
}

// usesDPoP reports whether a rejected request is answered with DPoP's
// challenge: it presented a token with the DPoP scheme, or the rejection
// is about DPoP (a proof, or a bound token presented as Bearer).
func usesDPoP(r *http.Request, err error) bool {
	scheme, _, _ := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	return strings.EqualFold(scheme, "DPoP") || errors.Is(err, bff.ErrDPoPBound) ||
		errors.Is(err, bff.ErrInvalidDPoPProof) || errors.Is(err, bff.ErrUseDPoPNonce)
}

// dpopErrorCode is the error of a DPoP challenge: RFC 9449's two, or RFC
// 6750's invalid_token for every verdict on the token itself.
func dpopErrorCode(err error) string {
	switch {
	case errors.Is(err, bff.ErrUseDPoPNonce):
		return "use_dpop_nonce"
	case errors.Is(err, bff.ErrInvalidDPoPProof):
		return "invalid_dpop_proof"
	}
	return "invalid_token"
}
