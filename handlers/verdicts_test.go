package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	bff "github.com/openedx/mobile-auth-bff"
)

// TestVerdictTableRows: every row answers somewhere, no sentinel has two
// rows, and every surface gives a wrapped sentinel its own row's answer (no
// earlier row shadows it).
func TestVerdictTableRows(t *testing.T) {
	seen := map[error]bool{}
	for _, v := range verdicts {
		if seen[v.err] {
			t.Errorf("%v has two rows", v.err)
		}
		seen[v.err] = true
		if v.status == 0 && v.edx == 0 && v.oauth == 0 {
			t.Errorf("%v answers on no surface", v.err)
		}
		if v.token && (v.status == 0 || v.edx == 0 || v.appCode == "" || v.message == "") {
			t.Errorf("token verdict %v lacks a problem or edX answer", v.err)
		}
		err := fmt.Errorf("some context: %w", v.err)
		if v.status != 0 {
			status, code, detail := problemFor(err)
			if status != v.status || code != v.code || detail != orErr(v.detail, err) {
				t.Errorf("problem for %v = %d %s %q, want its row", v.err, status, code, detail)
			}
		}
		if v.oauth != 0 {
			status, body := oauthErrorFor(err)
			if status != v.oauth || body.Error != v.oauthError || body.Description != orErr(v.oauthDesc, err) {
				t.Errorf("OAuth error for %v = %d %+v, want its row", v.err, status, body)
			}
		}
		if got, _ := verdictOf(err); v.token && got.err != v.err {
			t.Errorf("verdict of %v is %v's row", v.err, got.err)
		}
	}
}

// TestVerdictTableAgreesWithTheDomain: the rows marked token are the
// domain's token verdicts (bff.IsTokenVerdict, which introspection and the
// token exchange ask), plus "no token at all" and "a token that acts for
// no user".
func TestVerdictTableAgreesWithTheDomain(t *testing.T) {
	for _, v := range verdicts {
		extra := v.err == bff.ErrNoCredential || v.err == bff.ErrNotSupportedToken
		if v.token != (bff.IsTokenVerdict(v.err) || extra) {
			t.Errorf("%v: token = %v, but bff.IsTokenVerdict = %v", v.err, v.token, bff.IsTokenVerdict(v.err))
		}
	}
	for _, e := range []error{bff.ErrInvalidToken, bff.ErrNonAsymmetricToken, bff.ErrTokenExpired, bff.ErrAccountDisabled, bff.ErrTokenRevoked} {
		if _, ok := verdictOf(e); !ok {
			t.Errorf("%v has no token row", e)
		}
	}
}

// TestVerdictTableMatchOrder: a token revoked by the disabling of its user
// is a disabled account's token on every surface; an unknown error is a 500.
func TestVerdictTableMatchOrder(t *testing.T) {
	both := fmt.Errorf("%w: %w", bff.ErrTokenRevoked, bff.ErrAccountDisabled)
	if _, code, _ := problemFor(both); code != "account_disabled" {
		t.Errorf("problem code = %s, want account_disabled", code)
	}
	if _, body := oauthErrorFor(both); body.Error != "account_disabled" {
		t.Errorf("OAuth error = %s, want account_disabled", body.Error)
	}
	if v, _ := verdictOf(both); v.appCode != "user_is_disabled" {
		t.Errorf("edX code = %s, want user_is_disabled", v.appCode)
	}
	if status, _, _ := problemFor(errors.New("boom")); status != http.StatusInternalServerError {
		t.Errorf("unknown error: %d", status)
	}
	if status, _ := oauthErrorFor(errors.New("boom")); status != http.StatusInternalServerError {
		t.Errorf("unknown error: %d", status)
	}
}
