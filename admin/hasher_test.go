package admin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store/memory"
)

// busyHasher is a Hasher whose slots are all taken.
type busyHasher struct{ calls int }

func (h *busyHasher) HashPassword(context.Context, string) (string, error) {
	h.calls++
	return "", fmt.Errorf("waiting to hash a password: %w", bff.ErrUnavailable)
}

// TestPasswordsHashedThroughTheHasher: an account's password and a new
// password are hashed by the service's Hasher (the hashing slots), and
// when it is busy nothing is created or changed and the caller gets
// ErrUnavailable (503 temporarily_unavailable).
func TestPasswordsHashedThroughTheHasher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memory.New()
	h := &busyHasher{}
	svc := New(st, nil, h)
	_, err := svc.CreateUser(ctx, NewUser{Username: "alice", Email: "alice@example.com", Name: "Alice", Password: "correct horse battery"})
	if !errors.Is(err, bff.ErrUnavailable) {
		t.Fatalf("CreateUser with a busy hasher: %v, want ErrUnavailable", err)
	}
	if _, err := st.GetUserByLogin(ctx, "alice"); !errors.Is(err, bff.ErrNotFound) {
		t.Errorf("the account was created anyway: %v", err)
	}
	u, err := svc.CreateUser(ctx, NewUser{Username: "bob", Email: "bob@example.com", Name: "Bob"})
	if err != nil {
		t.Fatalf("an account without a password needs no hash: %v", err)
	}
	if err := svc.SetPassword(ctx, u.ID, "correct horse battery", "test"); !errors.Is(err, bff.ErrUnavailable) {
		t.Fatalf("SetPassword with a busy hasher: %v, want ErrUnavailable", err)
	}
	if got, err := st.GetUser(ctx, u.ID); err != nil || got.PasswordHash != "" {
		t.Errorf("bob after the refused SetPassword: hash %q, %v; want none", got.PasswordHash, err)
	}
	if h.calls != 2 {
		t.Errorf("hasher called %d times, want 2", h.calls)
	}
}
