package storetest

import (
	"context"
	"strconv"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// Bench measures the hot paths of a store — what every presented token or
// issued token costs it — as sub-benchmarks named op=…, so that the
// benchmarks of every store line up in benchstat (`-col /store`). open
// returns a new, empty store.
//
//	op=GetAccessToken      an opaque token's record (introspection, /api/me)
//	op=GetRefreshToken     a refresh token's record (the refresh grant)
//	op=IsJTIRevoked        a JWT's revocation check (every JWT presented)
//	op=ApplyTokenOps/cc    one client-credentials issuance: a new family and its access token
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	b.Run("op=GetAccessToken", func(b *testing.B) {
		s := benchTokens(b, open(b))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetAccessToken(ctx, "bench-at"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=GetRefreshToken", func(b *testing.B) {
		s := benchTokens(b, open(b))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetRefreshToken(ctx, "bench-rt"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=IsJTIRevoked", func(b *testing.B) {
		s := benchTokens(b, open(b))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if revoked, err := s.IsJTIRevoked(ctx, "bench-jti"); err != nil || revoked {
				b.Fatal(revoked, err)
			}
		}
	})
	b.Run("op=ApplyTokenOps/cc", func(b *testing.B) {
		s := open(b)
		benchClient(b, s)
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			id := "bench-cc-" + strconv.Itoa(i)
			t := bff.AccessToken{Signature: id, FamilyID: id, Format: bff.FormatBearer, ClientID: "bench",
				GrantType: bff.GrantClientCredentials, Scopes: []string{"read"}, IssuedAt: time.Now(), ExpiresAt: exp,
				Request: benchRequest}
			if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: t}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchRequest is about the size of the serialized request fosite stores
// with a token.
var benchRequest = []byte(`{"id":"bench","requestedAt":"2026-12-03T10:00:00Z","client":{"id":"bench"},` +
	`"scopes":["read"],"grantedScopes":["read"],"form":{"grant_type":["client_credentials"]},` +
	`"session":{"user_id":0,"grant_type":"client_credentials","format":"bearer","expires_at":{"access_token":"2026-12-03T11:00:00Z"}}}`)

func benchClient(b *testing.B, s store.Store) {
	b.Helper()
	c := bff.Client{ID: "bench", Name: "bench", GrantTypes: []string{bff.GrantClientCredentials, bff.GrantPassword},
		Scopes: []string{"read"}, TokenType: bff.FormatBearer, SecretHash: []byte("bench"), CreatedAt: now(), UpdatedAt: now()}
	if err := s.CreateClient(context.Background(), c); err != nil {
		b.Fatal(err)
	}
}

// benchTokens stores a user's access token (bench-at), refresh token
// (bench-rt) and a JWT id that is not revoked among one that is.
func benchTokens(b *testing.B, s store.Store) store.Store {
	b.Helper()
	benchClient(b, s)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, bff.User{Username: "bench", Email: "bench@example.com", PasswordHash: "$argon2id$x"})
	if err != nil {
		b.Fatal(err)
	}
	exp := now().Add(time.Hour)
	at := bff.AccessToken{Signature: "bench-at", FamilyID: "bench-fam", Format: bff.FormatBearer, ClientID: "bench",
		UserID: u.ID, GrantType: bff.GrantPassword, Scopes: []string{"read"}, IssuedAt: now(), ExpiresAt: exp,
		AuthTime: now(), Request: benchRequest}
	rt := bff.RefreshToken{Signature: "bench-rt", FamilyID: "bench-fam", AccessSignature: "bench-at", ClientID: "bench",
		UserID: u.ID, GrantType: bff.GrantPassword, Scopes: []string{"read"}, IssuedAt: now(), ExpiresAt: exp,
		AuthTime: now(), Request: benchRequest}
	if err := s.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: at}, store.CreateRefreshToken{Token: rt},
		store.RevokeJTI{JTI: "bench-revoked", ExpiresAt: exp}}); err != nil {
		b.Fatal(err)
	}
	return s
}
