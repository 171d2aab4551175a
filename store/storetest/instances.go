package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// RunInstances is the part of the conformance suite about several
// instances on one store: open returns two stores over the same, empty
// data (two service instances on one database, each with its caches and
// change feed up). Whatever one of them revokes, the other must see —
// within SeenWithin, the time a change event may take to arrive — even when
// it had just read the thing revoked (and a cache may hold it).
func RunInstances(t *testing.T, open func(t *testing.T) (a, b store.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"AccessTokenRevoked", testInstancesAccessTokenRevoked},
		{"FamilyRevoked", testInstancesFamilyRevoked},
		{"PasswordChanged", testInstancesPasswordChanged},
		{"UserDisabled", testInstancesUserDisabled},
		{"ClientDeleted", testInstancesClientDeleted},
		{"JTIRevoked", testInstancesJTIRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tt.fn(t, a, b)
		})
	}
}

// SeenWithin bounds how long a change made on one instance may take to be
// seen on another (the change feed's delivery; a loaded CI machine under
// -race is slow).
const SeenWithin = 10 * time.Second

// eventually polls check until it is true or SeenWithin passed.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(SeenWithin)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen by the other instance within %s", what, SeenWithin)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// instanceTokens has b issue a user's opaque access token in family fam
// and a read it (twice: a cache fills on the first read).
func instanceTokens(t *testing.T, a, b store.Store) (bff.User, bff.AccessToken) {
	t.Helper()
	ctx := context.Background()
	mustClient(t, b, "mobile")
	u := mustUser(t, b, "ivy")
	tok := accessToken("sig-shared", "fam-shared", now().Add(time.Hour))
	tok.UserID, tok.AuthTime = u.ID, now()
	if err := b.ApplyTokenOps(ctx, []store.TokenOp{store.CreateAccessToken{Token: tok}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := a.GetAccessToken(ctx, tok.Signature)
		if err != nil || got.RevokedAt != nil {
			t.Fatalf("the other instance reads the new token: revoked at %v, %v", got.RevokedAt, err)
		}
		if _, err := a.GetUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.GetClient(ctx, "mobile"); err != nil {
			t.Fatal(err)
		}
	}
	return u, tok
}

// revokedOn reports whether st reads the token as revoked.
func revokedOn(t *testing.T, st store.Store, sig string) bool {
	t.Helper()
	got, err := st.GetAccessToken(context.Background(), sig)
	if err != nil {
		t.Fatal(err)
	}
	return got.RevokedAt != nil
}

func testInstancesAccessTokenRevoked(t *testing.T, a, b store.Store) {
	_, tok := instanceTokens(t, a, b)
	if err := b.ApplyTokenOps(context.Background(), []store.TokenOp{store.RevokeAccessToken{Signature: tok.Signature, At: now()}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an access token revoked", func() bool { return revokedOn(t, a, tok.Signature) })
}

func testInstancesFamilyRevoked(t *testing.T, a, b store.Store) {
	_, tok := instanceTokens(t, a, b)
	if err := b.ApplyTokenOps(context.Background(), []store.TokenOp{store.RevokeFamily{FamilyID: tok.FamilyID, At: now()}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a family revoked", func() bool { return revokedOn(t, a, tok.Signature) })
}

func testInstancesPasswordChanged(t *testing.T, a, b store.Store) {
	u, tok := instanceTokens(t, a, b)
	if err := b.SetUserPassword(context.Background(), u.ID, "$argon2id$new", "test", now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a password change (revoking the user's tokens)", func() bool { return revokedOn(t, a, tok.Signature) })
}

func testInstancesUserDisabled(t *testing.T, a, b store.Store) {
	u, tok := instanceTokens(t, a, b)
	ctx := context.Background()
	if _, err := b.SetUserDisabled(ctx, u.ID, true, "test", now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a user disabled", func() bool {
		got, err := a.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Disabled && revokedOn(t, a, tok.Signature)
	})
}

func testInstancesClientDeleted(t *testing.T, a, b store.Store) {
	_, tok := instanceTokens(t, a, b)
	ctx := context.Background()
	if err := b.DeleteClient(ctx, "mobile"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a client deleted (with its tokens)", func() bool {
		_, errT := a.GetAccessToken(ctx, tok.Signature)
		_, errC := a.GetClient(ctx, "mobile")
		return errors.Is(errT, bff.ErrNotFound) && errors.Is(errC, bff.ErrNotFound)
	})
}

func testInstancesJTIRevoked(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	if revoked, err := a.IsJTIRevoked(ctx, "jti-shared"); err != nil || revoked {
		t.Fatalf("IsJTIRevoked before = %v, %v", revoked, err)
	}
	if err := b.ApplyTokenOps(ctx, []store.TokenOp{store.RevokeJTI{JTI: "jti-shared", ExpiresAt: now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a JWT id revoked", func() bool {
		revoked, err := a.IsJTIRevoked(ctx, "jti-shared")
		if err != nil {
			t.Fatal(err)
		}
		return revoked
	})
}
