package main

// The app contract: every request of SPEC §0 as the shipped Open edX apps
// send it, replayed through the real binary on both stores, and what the
// apps' code needs of each answer. Each case names the app file it mirrors
// (openedx/openedx-app-android, openedx/openedx-app-ios).

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openedx/mobile-auth-bff/internal/fakeecommerce"
	"github.com/openedx/mobile-auth-bff/internal/fakesocial"
)

// appForm is a form body in one app's encoding.
type appForm struct {
	body, contentType string
}

// androidForm encodes fields as Retrofit's @Field parameters reach OkHttp's
// FormBody: in declaration order, booleans as "true", and the content type
// without a charset (auth/.../data/api/AuthApi.kt).
func androidForm(kv ...string) appForm {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1]))
	}
	return appForm{b.String(), "application/x-www-form-urlencoded"}
}

// iosForm encodes parameters as Alamofire's URLEncoding.httpBody does: keys
// sorted, Bool as 1, spaces as %20, and a charset in the content type
// (Core/Core/Network/AuthEndpoint.swift, RequestInterceptor.swift).
func iosForm(params map[string]string) appForm {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.PathEscape(k) + "=" + strings.ReplaceAll(url.QueryEscape(params[k]), "+", "%20"))
	}
	return appForm{b.String(), "application/x-www-form-urlencoded; charset=utf-8"}
}

// post sends an app's form, with the app's Authorization header if any.
func (s *server) post(path string, f appForm, authorization string) response {
	s.t.Helper()
	h := map[string]string{"Content-Type": f.contentType, "Accept": "application/json"}
	if authorization != "" {
		h["Authorization"] = authorization
	}
	return do(s.t, http.MethodPost, s.public+path, strings.NewReader(f.body), h)
}

// appToken is a token response as the apps decode it: Android's
// data/model/AuthResponse.kt (Gson: expires_in a Long, the rest strings, a
// non-null error fails the login) and iOS's Data_AuthResponse.swift
// (Decodable: expires_in an Int).
type appToken struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	ExpiresIn    int64   `json:"expires_in"`
	Scope        string  `json:"scope"`
	Error        *string `json:"error"`
	RefreshToken string  `json:"refresh_token"`
}

// wantBraces fails unless a JSON body starts with "{" and ends with "}":
// the iOS app reads an error body of a 400–403 only then.
func wantBraces(t *testing.T, what string, r response) {
	t.Helper()
	if !bytes.HasPrefix(r.body, []byte("{")) || !bytes.HasSuffix(r.body, []byte("}")) {
		t.Errorf("%s: body does not start with { and end with }: %q", what, r.body)
	}
}

// wantTokenResponse decodes a successful token response strictly, as both
// apps do, and checks its token_type.
func wantTokenResponse(t *testing.T, what string, r response, tokenType string) appToken {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, r.status, r.body)
	}
	wantBraces(t, what, r)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, k := range []string{"access_token", "token_type", "scope", "refresh_token"} {
		if v := raw[k]; len(v) == 0 || v[0] != '"' {
			t.Errorf("%s: %s is not a string: %s", what, k, v)
		}
	}
	if v := string(raw["expires_in"]); v == "" || strings.ContainsAny(v, `."eE`) {
		t.Errorf("%s: expires_in is not an integer: %s", what, v)
	}
	var tok appToken
	if err := json.Unmarshal(r.body, &tok); err != nil {
		t.Fatalf("%s: the apps cannot decode the response: %v", what, err)
	}
	if tok.Error != nil {
		t.Errorf("%s: error %q in a 200 (Android fails the login)", what, *tok.Error)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn < 0 || tok.ExpiresIn > 3600 {
		t.Errorf("%s: access token %d bytes, refresh token %d bytes, expires_in %d", what, len(tok.AccessToken), len(tok.RefreshToken), tok.ExpiresIn)
	}
	if tok.TokenType != tokenType {
		t.Errorf("%s: token_type %q, want %q", what, tok.TokenType, tokenType)
	}
	return tok
}

// appUser is my_user_info as the apps decode it (Android core User, iOS
// Data_User.swift: id an Int).
type appUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	Name     string `json:"name"`
}

// myUserInfo calls GET /api/mobile/v0.5/my_user_info as both apps do right
// after signing in (Android ApiConstants.GET_USER_PROFILE, iOS
// AuthEndpoint.getUserInfo), with the header of their interceptors
// (Android HeadersInterceptor.kt, iOS RequestInterceptor.adapt).
func (s *server) myUserInfo(authorization string) response {
	s.t.Helper()
	return do(s.t, http.MethodGet, s.public+"/api/mobile/v0.5/my_user_info", nil,
		map[string]string{"Authorization": authorization, "Accept": "application/json"})
}

// Android's answers to a 401 (OauthRefreshTokenAuthenticator.authenticate).
const (
	actRefresh = "refresh"         // token_expired
	actRetry   = "retry-or-logout" // token_nonexistent, invalid_grant
	actLogout  = "logout"          // user_is_disabled
	actNothing = "nothing"         // the app stays on a dead session
)

// androidAction is what the Android app does with a 401 when its token type
// is JWT: getErrorCode reads error_code, else detail, else
// developer_message, and authenticate picks the action by it.
func androidAction(t *testing.T, r response) string {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Fatalf("want a 401, got %d %s", r.status, r.body)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		return actNothing
	}
	code, ok := body["error_code"].(string)
	if !ok {
		if code, ok = body["detail"].(string); !ok {
			code, _ = body["developer_message"].(string)
		}
	}
	switch code {
	case "token_expired", "Token has expired.":
		return actRefresh
	case "token_nonexistent", "invalid_grant", "Invalid token.":
		return actRetry
	case "user_is_disabled", "User account is disabled.":
		return actLogout
	}
	return actNothing
}

// appServer starts the binary with the app's client (password and refresh
// grants, payments scope) and a user, and a payment service behind the
// broker.
func appServer(t *testing.T, b backend, extra map[string]string) (*server, int64) {
	t.Helper()
	up := fakeecommerce.New(t)
	s := start(t, baseEnv(b.env, map[string]string{"BFF_ECOMMERCE_URL": up.URL, "BFF_COOKIE_SECURE": "false"}, extra))
	s.createMobileClient("app", map[string]any{"scopes": []string{"read", "email", "profile", "payments"}})
	return s, s.createUser("learner")
}

// appFacing are the app-facing routes where a presented token buys
// something, each called as the apps call it.
func appFacing(s *server, authorization string) map[string]response {
	return map[string]response{
		"my_user_info":     s.myUserInfo(authorization),
		"/oauth2/login/":   s.post("/oauth2/login/", appForm{"", ""}, authorization),
		"/api/ecommerce/…": do(s.t, http.MethodGet, s.public+"/api/ecommerce/api/v2/orders/", nil, map[string]string{"Authorization": authorization}),
	}
}

// wantActions checks Android's action for the 401 of every app-facing route.
func wantActions(t *testing.T, what string, got map[string]response, want string) {
	t.Helper()
	for route, r := range got {
		if a := androidAction(t, r); a != want {
			t.Errorf("%s at %s: Android would %s, want %s (%d %s)", what, route, a, want, r.status, r.body)
		}
		wantBraces(t, what+" at "+route, r)
		if route != "/oauth2/login/" && !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s at %s: WWW-Authenticate %q", what, route, r.header.Get("WWW-Authenticate"))
		}
	}
}

// TestAppContractAndroid replays the Android app's requests.
func TestAppContractAndroid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, uid := appServer(t, b, nil)

		// AuthApi.getAccessToken → ApiConstants.URL_ACCESS_TOKEN (trailing slash).
		signIn := func() appToken {
			r := s.post("/oauth2/access_token/", androidForm("grant_type", "password", "client_id", "app",
				"username", "learner", "password", e2ePassword, "token_type", "JWT", "asymmetric_jwt", "true"), "")
			tok := wantTokenResponse(t, "password grant", r, "JWT")
			s.verifyJWT(tok.AccessToken)
			return tok
		}
		tok := signIn()

		// A wrong password: the sign-in screen reads the error.
		r := s.post("/oauth2/access_token/", androidForm("grant_type", "password", "client_id", "app",
			"username", "learner", "password", "wrong", "token_type", "JWT", "asymmetric_jwt", "true"), "")
		if r.status != 400 || r.json(t)["error"] != "invalid_grant" {
			t.Errorf("wrong password: %d %s", r.status, r.body)
		}
		wantBraces(t, "wrong password", r)

		// AuthApi.getProfile right after signing in.
		r = s.myUserInfo("JWT " + tok.AccessToken)
		var me appUser
		if r.status != 200 || json.Unmarshal(r.body, &me) != nil || me.ID != uid || me.Username != "learner" || me.Email == "" {
			t.Fatalf("my_user_info: %d %s", r.status, r.body)
		}
		wantBraces(t, "my_user_info", r)

		// The web views' cookies: ApiConstants.URL_LOGIN, no body; 204 or 205.
		r = s.post("/oauth2/login/", appForm{"", ""}, "JWT "+tok.AccessToken)
		if r.status != 204 || !strings.Contains(r.header.Get("Set-Cookie"), "sessionid=") {
			t.Errorf("/oauth2/login/: %d %s", r.status, r.body)
		}

		// OauthRefreshTokenAuthenticator.refreshAccessToken.
		refresh := func(rt string) response {
			return s.post("/oauth2/access_token/", androidForm("grant_type", "refresh_token", "client_id", "app",
				"refresh_token", rt, "token_type", "JWT", "asymmetric_jwt", "true"), "")
		}
		tok = wantTokenResponse(t, "refresh", refresh(tok.RefreshToken), "JWT")

		// Two requests of the app hit 401 at once and both refresh the same
		// token; a refresh answered 400 makes the app sleep 1.5 s and carry
		// on. Neither, nor a retry 1.5 s later, ends the family.
		var wg sync.WaitGroup
		parallel := make([]response, 2)
		for i := range parallel {
			wg.Add(1)
			go func() { defer wg.Done(); parallel[i] = refresh(tok.RefreshToken) }()
		}
		wg.Wait()
		time.Sleep(1500 * time.Millisecond)
		retried := refresh(tok.RefreshToken)
		var newest appToken
		for i, r := range append(parallel, retried) {
			newest = wantTokenResponse(t, "parallel refresh "+itoa(int64(i)), r, "JWT")
		}
		if r := s.myUserInfo("JWT " + newest.AccessToken); r.status != 200 {
			t.Errorf("after parallel refreshes: %d %s", r.status, r.body)
		}
		tok = wantTokenResponse(t, "refresh after the race", refresh(newest.RefreshToken), "JWT")

		// A token the server does not know: retry with the stored token,
		// else log out.
		wantActions(t, "a forged token", appFacing(s, "JWT "+tok.AccessToken[:len(tok.AccessToken)-4]+"AAAA"), actRetry)

		// ProfileRepository.logout → ProfileApi.revokeAccessToken, with the
		// Authorization header HeadersInterceptor adds to every request.
		r = s.post("/oauth2/revoke_token/", androidForm("client_id", "app", "token", tok.RefreshToken,
			"token_type_hint", "refresh_token"), "JWT "+tok.AccessToken)
		if r.status != 200 {
			t.Fatalf("revoke_token: %d %s", r.status, r.body)
		}
		if r := refresh(tok.RefreshToken); r.status != 400 || r.json(t)["error"] != "invalid_grant" {
			t.Errorf("refresh after logout: %d %s", r.status, r.body)
		}
		wantActions(t, "the logged-out access token", appFacing(s, "JWT "+tok.AccessToken), actRetry)

		// A disabled account: the app logs out.
		tok = signIn()
		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/disable", nil, 200)
		wantActions(t, "a disabled account's token", appFacing(s, "JWT "+tok.AccessToken), actLogout)
		if r := refresh(tok.RefreshToken); r.status != 403 || r.json(t)["error"] != "account_disabled" {
			t.Errorf("refresh of a disabled account: %d %s", r.status, r.body)
		}
	})
}

// TestAppContractAndroidExpiry: an expired access token makes the Android
// app refresh (token_expired) on every app-facing route.
func TestAppContractAndroidExpiry(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := appServer(t, b, map[string]string{"BFF_ACCESS_TOKEN_TTL": "1s"})
		for _, format := range []string{"JWT", "BEARER"} {
			r := s.post("/oauth2/access_token/", androidForm("grant_type", "password", "client_id", "app",
				"username", "learner", "password", e2ePassword, "token_type", format, "asymmetric_jwt", "true"), "")
			want := map[string]string{"JWT": "JWT", "BEARER": "Bearer"}[format]
			tok := wantTokenResponse(t, "password grant", r, want)
			time.Sleep(2100 * time.Millisecond) // past exp, at second precision
			wantActions(t, "an expired "+format+" token", appFacing(s, format+" "+tok.AccessToken), actRefresh)
		}
	})
}

// TestAppContractIOS replays the iOS app's requests.
func TestAppContractIOS(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, uid := appServer(t, b, nil)

		// AuthEndpoint.getAccessToken: /oauth2/access_token, no slash.
		signIn := func(tokenType, password string) response {
			return s.post("/oauth2/access_token", iosForm(map[string]string{"grant_type": "password", "client_id": "app",
				"username": "learner", "password": password, "token_type": tokenType, "asymmetric_jwt": "1"}), "")
		}
		tok := wantTokenResponse(t, "password grant", signIn("JWT", e2ePassword), "JWT")
		s.verifyJWT(tok.AccessToken)

		// A wrong password: iOS shows the server's error only when the body
		// starts with { and ends with }.
		r := signIn("JWT", "wrong")
		if r.status != 400 || r.json(t)["error"] != "invalid_grant" {
			t.Errorf("wrong password: %d %s", r.status, r.body)
		}
		wantBraces(t, "wrong password", r)

		// AuthEndpoint.getUserInfo, with RequestInterceptor.adapt's header.
		r = s.myUserInfo("JWT " + tok.AccessToken)
		var me appUser
		if r.status != 200 || json.Unmarshal(r.body, &me) != nil || me.ID != uid {
			t.Fatalf("my_user_info: %d %s", r.status, r.body)
		}

		// AuthEndpoint.getAuthCookies: POST /oauth2/login/.
		if r := s.post("/oauth2/login/", appForm{"", ""}, "JWT "+tok.AccessToken); r.status != 204 {
			t.Errorf("/oauth2/login/: %d %s", r.status, r.body)
		}

		// RequestInterceptor.refreshToken (on any 401): it needs a non-empty
		// access_token and refresh_token, else it logs the user out.
		refresh := func(rt string) response {
			return s.post("/oauth2/access_token", iosForm(map[string]string{"grant_type": "refresh_token", "client_id": "app",
				"refresh_token": rt, "token_type": "JWT", "asymmetric_jwt": "1"}), "")
		}
		tok = wantTokenResponse(t, "refresh", refresh(tok.RefreshToken), "JWT")

		// TokenType.bearer: token_type=BEARER and "BEARER <token>".
		opaque := wantTokenResponse(t, "BEARER grant", signIn("BEARER", e2ePassword), "Bearer")
		if strings.Count(opaque.AccessToken, ".") == 2 {
			t.Errorf("token_type=BEARER gave a JWT")
		}
		if r := s.myUserInfo("BEARER " + opaque.AccessToken); r.status != 200 {
			t.Errorf("my_user_info with BEARER: %d %s", r.status, r.body)
		}

		// ProfileEndpoint.logOut: /oauth2/revoke_token/; iOS clears its
		// storage only on a 2xx, else the user is signed in at next launch.
		r = s.post("/oauth2/revoke_token/", iosForm(map[string]string{"token": tok.RefreshToken, "client_id": "app",
			"token_type_hint": "refresh_token"}), "JWT "+tok.AccessToken)
		if r.status/100 != 2 {
			t.Fatalf("revoke_token: %d %s", r.status, r.body)
		}
		if r := refresh(tok.RefreshToken); r.status != 400 {
			t.Errorf("refresh after logout: %d %s", r.status, r.body)
		}
		if r := s.myUserInfo("JWT " + tok.AccessToken); r.status != 401 {
			t.Errorf("my_user_info after logout: %d %s", r.status, r.body)
		}

		// A disabled account: every app-facing route answers 401, so iOS
		// refreshes, and the refresh fails, so it logs the user out.
		tok = wantTokenResponse(t, "password grant", signIn("JWT", e2ePassword), "JWT")
		s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/disable", nil, 200)
		for route, r := range appFacing(s, "JWT "+tok.AccessToken) {
			if r.status != 401 {
				t.Errorf("disabled account at %s: %d %s (iOS refreshes only on a 401)", route, r.status, r.body)
			}
		}
		r = refresh(tok.RefreshToken)
		var after appToken
		_ = json.Unmarshal(r.body, &after)
		if r.status != 403 || after.AccessToken != "" || after.RefreshToken != "" {
			t.Errorf("refresh of a disabled account: %d %s", r.status, r.body)
		}
		wantBraces(t, "refresh of a disabled account", r)
	})
}

// TestAppContractSocialSignIn replays the apps' provider sign-ins: Android's
// AuthApi.exchangeAccessToken (fields access_token, client_id, token_type,
// asymmetric_jwt in that order, ApiConstants.URL_EXCHANGE_TOKEN with its
// trailing slash) for Google — whose token has the userinfo.email scope
// only (GoogleAuthHelper.kt) — and Microsoft (MicrosoftAuthHelper.kt), and
// iOS's AuthEndpoint.exchangeAccessToken (sorted, asymmetric_jwt=1) with
// Sign in with Apple's identityToken.
func TestAppContractSocialSignIn(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		fakes := newSocialFakes(t)
		s, uid := appServer(t, b, fakes.env())
		google := fakes.google.IssueGrant(fakesocialGrant("g-learner", androidClientID))
		for backend, subject := range map[string]string{"google-oauth2": "g-learner", "azuread-oauth2": "ms-learner", "apple-id": "a-learner"} {
			s.mustAdmin("POST", "/admin/users/"+itoa(uid)+"/identities", map[string]any{"provider": backend, "subject": subject}, 201)
		}
		for _, tc := range []struct {
			name, backend string
			form          appForm
		}{
			{"Android, Google", "google-oauth2", androidForm("access_token", google, "client_id", "app", "token_type", "JWT", "asymmetric_jwt", "true")},
			{"Android, Microsoft", "azuread-oauth2", androidForm("access_token", fakes.token("azuread-oauth2", "ms-learner"),
				"client_id", "app", "token_type", "JWT", "asymmetric_jwt", "true")},
			{"iOS, Apple", "apple-id", iosForm(map[string]string{"access_token": fakes.token("apple-id", "a-learner"),
				"client_id": "app", "token_type": "JWT", "asymmetric_jwt": "1"})},
		} {
			r := s.post("/oauth2/exchange_access_token/"+tc.backend+"/", tc.form, "")
			tok := wantTokenResponse(t, tc.name, r, "JWT")
			_, claims := s.verifyJWT(tok.AccessToken)
			if claims["grant_type"] != "social_exchange" || claims["user_id"] != float64(uid) {
				t.Errorf("%s: claims %v", tc.name, claims)
			}
			if r := s.myUserInfo("JWT " + tok.AccessToken); r.status != 200 {
				t.Errorf("%s: my_user_info %d %s", tc.name, r.status, r.body)
			}
		}
		// An unknown account: the sign-in screen reads the error body.
		r := s.post("/oauth2/exchange_access_token/google-oauth2/", androidForm("access_token",
			fakes.google.IssueGrant(fakesocialGrant("stranger", androidClientID)), "client_id", "app", "token_type", "JWT",
			"asymmetric_jwt", "true"), "")
		if r.status != 400 || r.json(t)["error"] != "invalid_grant" {
			t.Errorf("unknown Google account: %d %s", r.status, r.body)
		}
		wantBraces(t, "unknown Google account", r)
	})
}

// fakesocialGrant is a Google token of the Android app: its client id, and
// the userinfo.email scope alone.
func fakesocialGrant(subject, app string) fakesocial.Grant {
	return fakesocial.Grant{Subject: subject, Audience: app, AuthorizedParty: app, Scope: fakesocial.GoogleEmailScope}
}
