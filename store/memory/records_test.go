package memory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// TestCompactRecordsRoundTrip: whatever form a token's signature, family id,
// times and request take, the compact records give them back as they were
// written, and a signature is never found under another's key.
func TestCompactRecordsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, now := storeWithClient(t, bff.Client{ID: "svc"})
	hmacSig := strings.Repeat("A", 42) + "Q" // 43 characters of base64url, 32 bytes
	uuid := "0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9"
	requestAt := now.Add(-time.Millisecond).Format(time.RFC3339Nano)
	tmplRequest := `{"id":"` + uuid + `","requested_at":"` + requestAt + `","session":{"jti":"jti-1","expires_at":{"access_token":"` +
		now.Add(time.Hour).Format(time.RFC3339Nano) + `","refresh_token":"` + now.Add(48*time.Hour).Format(time.RFC3339Nano) +
		`"},"auth_time":"` + now.Add(-time.Minute).Format(time.RFC3339Nano) + `","note":"a \"quoted\" ` + uuid + `"}}`
	cases := []struct {
		name    string
		sig     string
		family  string
		request string
		auth    time.Time
	}{
		{"service form", hmacSig, uuid, tmplRequest, now.Add(-time.Minute)},
		{"three times of the request's own", hmacSig + "x", "1" + uuid[1:], `{"a":"` + requestAt + `","b":"` + requestAt + `","c":"` + requestAt + `"}`, time.Time{}},
		{"not JSON", "short", "family-1", "\x00\x01 not json \"", time.Time{}},
		{"unterminated string", strings.Repeat("B", 43), "0A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F9", `{"id":"`, time.Time{}},
		{"non-canonical base64", strings.Repeat("A", 42) + "B", "", `{"t":"2026-01-02T03:04:05+01:00","u":"1970-01-01T00:00:00Z"}`, time.Time{}},
		{"empty request", "", uuid[:35] + "g", "", time.Unix(0, 0).UTC()},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := bff.AccessToken{Signature: tc.sig, FamilyID: tc.family, JTI: "jti-1", Format: bff.FormatJWT, ClientID: "svc",
				UserID: 0, GrantType: bff.GrantClientCredentials, Scopes: []string{"read", "a\x00b"}, IssuedAt: now,
				ExpiresAt: now.Add(time.Hour), AuthTime: tc.auth, JKT: "thumb", Request: []byte(tc.request)}
			r := bff.RefreshToken{Signature: tc.sig + "-r", FamilyID: tc.family, AccessSignature: tc.sig, ClientID: "svc",
				GrantType: bff.GrantClientCredentials, Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(48 * time.Hour),
				AuthTime: tc.auth, Request: []byte(tc.request)}
			if tc.request == "" {
				a.Request, r.Request = nil, nil
			}
			if i == 0 {
				rotated := now.Add(time.Second)
				r.RotatedAt = &rotated
			}
			if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: a}, store.CreateRefreshToken{Token: r}}); err != nil {
				t.Fatal(err)
			}
			gotA, err := s.GetAccessToken(ctx, tc.sig)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(a, gotA); d != "" {
				t.Errorf("access token (-want +got):\n%s", d)
			}
			gotR, err := s.GetRefreshToken(ctx, tc.sig+"-r")
			if err != nil {
				t.Fatal(err)
			}
			// A signature that is not an HMAC's is kept hashed: it comes
			// back in its digest form, which names the same token.
			_, hashed := sigKeyOf(tc.sig)
			if hashed {
				r.AccessSignature = gotR.AccessSignature
				namesAccessToken(t, s, "the refresh token's access signature", gotR.AccessSignature, a)
			}
			if d := cmp.Diff(r, gotR); d != "" {
				t.Errorf("refresh token (-want +got):\n%s", d)
			}
			byJTI, err := s.GetAccessTokenByJTI(ctx, "jti-1")
			if err != nil || (!hashed && byJTI.Signature != tc.sig) {
				t.Errorf("by jti: %q, %v", byJTI.Signature, err)
			}
			namesAccessToken(t, s, "the signature of the record found by its JTI", byJTI.Signature, a)
			if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeFamily{FamilyID: tc.family, At: now}}); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.GetAccessToken(ctx, tc.sig); got.RevokedAt == nil {
				t.Error("the family's revocation does not reach its access token")
			}
		})
	}
	// The hashed key of a signature is a valid HMAC key of another: that
	// one finds nothing.
	k, _ := sigKeyOf("short")
	if _, err := s.GetAccessToken(ctx, k.string(false)); err == nil {
		t.Error("a signature found the record of another whose key is its hash")
	}
	// Everything pruned: no shape, family or id is left behind.
	if _, err := s.PruneTokens(ctx, now.Add(100*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(s.shapes)+len(s.templates)+len(s.families)+len(s.famIDs)+len(s.access)+len(s.refresh) != 0 {
		t.Errorf("after pruning: %d shapes, %d templates, %d families, %d family ids, %d access, %d refresh tokens",
			len(s.shapes), len(s.templates), len(s.families), len(s.famIDs), len(s.access), len(s.refresh))
	}
}

// namesAccessToken checks that sig, a signature the store gave back, finds
// the access token want (as written, revoked or not).
func namesAccessToken(t *testing.T, s *Store, what, sig string, want bff.AccessToken) {
	t.Helper()
	if sig != want.Signature && !strings.HasPrefix(sig, store.DigestPrefix) {
		t.Errorf("%s = %q: neither the signature nor a digest form", what, sig)
	}
	got, err := s.GetAccessToken(context.Background(), sig)
	if err != nil {
		t.Fatalf("%s %q finds no access token: %v", what, sig, err)
	}
	got.Signature, got.RevokedAt = want.Signature, want.RevokedAt
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s %q finds another access token (-want +got):\n%s", what, sig, d)
	}
}

// storeWithClient is an uncapped store holding c (named after its id, of
// bearer tokens), and the time it was made at.
func storeWithClient(t *testing.T, c bff.Client) (*Store, time.Time) {
	t.Helper()
	s := NewWith(Options{})
	now := time.Now().UTC()
	c.Name, c.TokenType, c.CreatedAt, c.UpdatedAt = c.ID, bff.FormatBearer, now, now
	if err := s.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return s, now
}

// TestRequestTemplatesShared: the requests of a client's tokens share one
// template, whatever their ids and times.
func TestRequestTemplatesShared(t *testing.T) {
	ctx := context.Background()
	s, now := storeWithClient(t, bff.Client{ID: "svc"})
	for i := range 3 {
		at := now.Add(time.Duration(i) * time.Second)
		family := "0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f" + string(rune('0'+i))
		req := `{"id":"` + family + `","requested_at":"` + at.Format(time.RFC3339Nano) + `","client_id":"svc","session":{"expires_at":{"access_token":"` +
			at.Add(time.Hour).Format(time.RFC3339Nano) + `"}}}`
		sig := strings.Repeat("A", 41) + string(rune('A'+i)) + "A"
		if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bff.AccessToken{Signature: sig, FamilyID: family,
			Format: bff.FormatBearer, ClientID: "svc", GrantType: bff.GrantClientCredentials, IssuedAt: at, ExpiresAt: at.Add(time.Hour),
			Request: []byte(req)}}}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetAccessToken(ctx, sig); err != nil || string(got.Request) != req {
			t.Fatalf("request %d = %s, %v; want %s", i, got.Request, err, req)
		}
	}
	if len(s.shapes) != 1 || len(s.templates) != 1 {
		t.Errorf("%d shapes and %d templates for three tokens of one client, want 1 and 1", len(s.shapes), len(s.templates))
	}
	for _, sh := range s.shapes {
		if sh.refs != 3 { // three tokens; their families, of user-less tokens, have no record
			t.Errorf("shape counted %d times, want 3", sh.refs)
		}
	}
	for _, tmpl := range s.templates {
		if tmpl.refs != 3 {
			t.Errorf("template counted %d times, want 3", tmpl.refs)
		}
	}
}

// TestUserTemplatesShared: the logins of different users of a client share
// one template (their usernames and ids are marks), and every request
// comes back byte for byte, whatever numbers and strings beside them look
// like the user's.
func TestUserTemplatesShared(t *testing.T) {
	ctx := context.Background()
	s, now := storeWithClient(t, bff.Client{ID: "app", Public: true})
	var users []bff.User
	for _, name := range []string{"ann", "bob", "12"} {
		u, err := s.CreateUser(ctx, bff.User{Username: name, Email: name + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	request := func(u bff.User, family string, extra string) string {
		return fmt.Sprintf(`{"id":"%s","client_id":"app","session":{"user_id":%d,"username":"%s","grant_type":"password"%s}}`,
			family, u.ID, u.Username, extra)
	}
	for i, u := range users {
		family := fmt.Sprintf("0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f%d", i)
		for _, extra := range []string{"", fmt.Sprintf(`,"n":[%d,%d0,1%d,%d.5,-%d],"s":"%s!"`, u.ID, u.ID, u.ID, u.ID, u.ID, u.Username)} {
			sig := fmt.Sprintf("%042dQ", i*10+len(extra))
			req := request(u, family, extra)
			if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bff.AccessToken{Signature: sig, FamilyID: family,
				Format: bff.FormatBearer, ClientID: "app", UserID: u.ID, GrantType: bff.GrantPassword, IssuedAt: now,
				ExpiresAt: now.Add(time.Hour), AuthTime: now, Request: []byte(req)}}}); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetAccessToken(ctx, sig); err != nil || string(got.Request) != req {
				t.Errorf("request of %s = %s, %v; want %s", u.Username, got.Request, err, req)
			}
		}
	}
	plain := 0
	for text := range s.templates {
		if !strings.Contains(text, `"n":`) {
			plain++
		}
	}
	if plain != 1 {
		t.Errorf("%d templates for the plain logins of three users of one client, want 1", plain)
	}
}

// TestRecordlessFamilies: the family of a user-less access token has no
// record, until it is revoked: then its tokens read revoked, it gets no
// new token, and pruning its tokens prunes it.
func TestRecordlessFamilies(t *testing.T) {
	ctx := context.Background()
	s, now := storeWithClient(t, bff.Client{ID: "svc"})
	create := func(sig, family string) error {
		return s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: bff.AccessToken{Signature: sig, FamilyID: family,
			Format: bff.FormatBearer, ClientID: "svc", GrantType: bff.GrantClientCredentials, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}}})
	}
	for _, family := range []string{"0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9", "not-a-uuid"} {
		t.Run(family, func(t *testing.T) {
			first, second := family+"-1", family+"-2"
			if err := create(first, family); err != nil {
				t.Fatal(err)
			}
			if len(s.families) != 0 {
				t.Fatalf("%d family records for a user-less token", len(s.families))
			}
			if err := create(second, family); err != nil {
				t.Fatalf("a second token of the family: %v", err)
			}
			if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeFamily{FamilyID: family, At: now}}); err != nil {
				t.Fatal(err)
			}
			for _, sig := range []string{first, second} {
				if got, err := s.GetAccessToken(ctx, sig); err != nil || got.RevokedAt == nil {
					t.Errorf("%s after its family's revocation: %v, %v", sig, got.RevokedAt, err)
				}
			}
			if err := create(family+"-3", family); !errors.Is(err, bff.ErrTokenRevoked) {
				t.Errorf("a token of the revoked family: %v, want ErrTokenRevoked", err)
			}
			if _, err := s.PruneTokens(ctx, now.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if len(s.families)+len(s.famIDs)+len(s.access) != 0 {
				t.Errorf("after pruning: %d families, %d family ids, %d tokens", len(s.families), len(s.famIDs), len(s.access))
			}
			// Once pruned, the id is free again, as on PostgreSQL.
			if err := create(family+"-4", family); err != nil {
				t.Errorf("a token of a pruned family's id: %v", err)
			}
		})
	}
	// Revoking a family nothing is of creates nothing.
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeFamily{FamilyID: "none", At: now}}); err != nil || len(s.families) != 0 {
		t.Errorf("revoking an unknown family: %v, %d families", err, len(s.families))
	}
}
