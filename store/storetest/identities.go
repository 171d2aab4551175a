package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

func testIdentities(t *testing.T, s store.Store) {
	ctx := context.Background()
	ann := mustUser(t, s, "ann")
	bob := mustUser(t, s, "bob")
	google := bff.Identity{Provider: bff.ProviderGoogle, Subject: "1234567890", UserID: ann.ID, CreatedAt: now()}

	got, created, err := s.LinkIdentity(ctx, google)
	if err != nil || !created {
		t.Fatalf("LinkIdentity = %v, created %v", err, created)
	}
	if diff := cmp.Diff(google, got, timeOpts); diff != "" {
		t.Errorf("LinkIdentity (-want +got):\n%s", diff)
	}
	// Again to the same user: nothing changes, the first link is kept.
	again := google
	again.CreatedAt = google.CreatedAt.Add(3600e9)
	got, created, err = s.LinkIdentity(ctx, again)
	if err != nil || created {
		t.Fatalf("LinkIdentity again = %v, created %v", err, created)
	}
	if diff := cmp.Diff(google, got, timeOpts); diff != "" {
		t.Errorf("LinkIdentity again returned (-want +got):\n%s", diff)
	}
	// To another user: a conflict, and the owner stays.
	stolen := google
	stolen.UserID = bob.ID
	_, _, err = s.LinkIdentity(ctx, stolen)
	wantErr(t, "LinkIdentity to another user", err, bff.ErrConflict)
	// To a user that does not exist.
	_, _, err = s.LinkIdentity(ctx, bff.Identity{Provider: bff.ProviderApple, Subject: "x", UserID: 999999, CreatedAt: now()})
	wantErr(t, "LinkIdentity to an unknown user", err, bff.ErrNotFound)

	found, err := s.FindIdentity(ctx, bff.ProviderGoogle, "1234567890")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(google, found, timeOpts); diff != "" {
		t.Errorf("FindIdentity (-want +got):\n%s", diff)
	}
	// The same subject at another provider is another account.
	_, err = s.FindIdentity(ctx, bff.ProviderFacebook, "1234567890")
	wantErr(t, "FindIdentity at another provider", err, bff.ErrNotFound)
	_, err = s.FindIdentity(ctx, bff.ProviderGoogle, "123456789")
	wantErr(t, "FindIdentity of a prefix", err, bff.ErrNotFound)
	for _, v := range []string{"a\x00b", "\xff\xfe"} {
		if _, err := s.FindIdentity(ctx, bff.ProviderGoogle, v); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("FindIdentity(%q): %v", v, err)
		}
		if err := s.UnlinkIdentity(ctx, ann.ID, v, v); !errors.Is(err, bff.ErrNotFound) {
			t.Errorf("UnlinkIdentity(%q): %v", v, err)
		}
	}

	// A user may hold several identities, also of one provider.
	more := []bff.Identity{
		{Provider: bff.ProviderApple, Subject: "001234.abcdef.0987", UserID: ann.ID, CreatedAt: now()},
		{Provider: bff.ProviderGoogle, Subject: "0999", UserID: ann.ID, CreatedAt: now()},
		{Provider: bff.ProviderFacebook, Subject: "10150", UserID: bob.ID, CreatedAt: now()},
	}
	for _, id := range more {
		if _, _, err := s.LinkIdentity(ctx, id); err != nil {
			t.Fatalf("LinkIdentity(%+v): %v", id, err)
		}
	}
	list, err := s.ListIdentities(ctx, ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []bff.Identity{more[0], more[1], google}
	if diff := cmp.Diff(want, list, timeOpts); diff != "" {
		t.Errorf("ListIdentities (-want +got):\n%s", diff)
	}
	if list, err := s.ListIdentities(ctx, 999999); err != nil || len(list) != 0 {
		t.Errorf("ListIdentities(unknown user) = %v, %v", list, err)
	}

	// Unlinking needs the owner; afterwards the identity is free again.
	wantErr(t, "UnlinkIdentity by another user", s.UnlinkIdentity(ctx, bob.ID, bff.ProviderGoogle, "1234567890"), bff.ErrNotFound)
	if err := s.UnlinkIdentity(ctx, ann.ID, bff.ProviderGoogle, "1234567890"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "UnlinkIdentity twice", s.UnlinkIdentity(ctx, ann.ID, bff.ProviderGoogle, "1234567890"), bff.ErrNotFound)
	_, err = s.FindIdentity(ctx, bff.ProviderGoogle, "1234567890")
	wantErr(t, "FindIdentity after unlinking", err, bff.ErrNotFound)
	if _, created, err := s.LinkIdentity(ctx, stolen); err != nil || !created {
		t.Errorf("LinkIdentity of an unlinked identity to another user = %v, created %v", err, created)
	}
	// Disabling the user keeps the links (re-enabling must not need relinking).
	if _, err := s.SetUserDisabled(ctx, ann.ID, true, "test", now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindIdentity(ctx, bff.ProviderApple, more[0].Subject); err != nil {
		t.Errorf("identity of a disabled user: %v", err)
	}
}

// testIdentitiesConcurrentLink: users racing for one identity end with
// exactly one owner, and the others get ErrConflict.
func testIdentitiesConcurrentLink(t *testing.T, s store.Store) {
	ctx := context.Background()
	var users []bff.User
	for _, name := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
		users = append(users, mustUser(t, s, name))
	}
	var wg sync.WaitGroup
	results := make([]error, len(users))
	createdBy := make([]bool, len(users))
	for i, u := range users {
		wg.Go(func() {
			_, createdBy[i], results[i] = s.LinkIdentity(ctx, bff.Identity{
				Provider: bff.ProviderFacebook, Subject: "race", UserID: u.ID, CreatedAt: now()})
		})
	}
	wg.Wait()
	owners := 0
	for i, err := range results {
		switch {
		case err == nil && createdBy[i]:
			owners++
		case errors.Is(err, bff.ErrConflict):
		default:
			t.Errorf("user %d: created %v, err %v", users[i].ID, createdBy[i], err)
		}
	}
	if owners != 1 {
		t.Fatalf("%d users own the identity, want 1", owners)
	}
}
