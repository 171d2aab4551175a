package testenv

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// FailingStore wraps a store and, while switched on, fails the way an
// unreachable database does: every call returns bff.ErrUnavailable and
// changes nothing.
type FailingStore struct {
	store.Store
	// All fails every call; Writes fails only calls that change state;
	// UsageWrites fails only the flushes of the usage statistics.
	All, Writes, UsageWrites atomic.Bool
}

var errDown = fmt.Errorf("injected failure: %w", bff.ErrUnavailable)

func (f *FailingStore) read() error {
	if f.All.Load() {
		return errDown
	}
	return nil
}

func (f *FailingStore) write() error {
	if f.All.Load() || f.Writes.Load() {
		return errDown
	}
	return nil
}

func (f *FailingStore) Ping(ctx context.Context) error {
	if err := f.read(); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

func (f *FailingStore) GetClient(ctx context.Context, id string) (bff.Client, error) {
	if err := f.read(); err != nil {
		return bff.Client{}, err
	}
	return f.Store.GetClient(ctx, id)
}

func (f *FailingStore) GetUser(ctx context.Context, id int64) (bff.User, error) {
	if err := f.read(); err != nil {
		return bff.User{}, err
	}
	return f.Store.GetUser(ctx, id)
}

func (f *FailingStore) GetUserByLogin(ctx context.Context, login string) (bff.User, error) {
	if err := f.read(); err != nil {
		return bff.User{}, err
	}
	return f.Store.GetUserByLogin(ctx, login)
}

func (f *FailingStore) GetAccessToken(ctx context.Context, sig string) (bff.AccessToken, error) {
	if err := f.read(); err != nil {
		return bff.AccessToken{}, err
	}
	return f.Store.GetAccessToken(ctx, sig)
}

func (f *FailingStore) GetRefreshToken(ctx context.Context, sig string) (bff.RefreshToken, error) {
	if err := f.read(); err != nil {
		return bff.RefreshToken{}, err
	}
	return f.Store.GetRefreshToken(ctx, sig)
}

func (f *FailingStore) IsJTIRevoked(ctx context.Context, jti string) (bool, error) {
	if err := f.read(); err != nil {
		return false, err
	}
	return f.Store.IsJTIRevoked(ctx, jti)
}

func (f *FailingStore) ApplyTokenOps(ctx context.Context, ops []store.TokenOp) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.ApplyTokenOps(ctx, ops)
}

func (f *FailingStore) LoginFailures(ctx context.Context, key string) (int, time.Time, error) {
	if err := f.read(); err != nil {
		return 0, time.Time{}, err
	}
	return f.Store.LoginFailures(ctx, key)
}

func (f *FailingStore) RecordLoginFailure(ctx context.Context, key string, now time.Time, w time.Duration) (int, time.Time, error) {
	if err := f.write(); err != nil {
		return 0, time.Time{}, err
	}
	return f.Store.RecordLoginFailure(ctx, key, now, w)
}

func (f *FailingStore) ForgiveLoginFailure(ctx context.Context, key string, windowStart time.Time) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.ForgiveLoginFailure(ctx, key, windowStart)
}

func (f *FailingStore) ResetLoginFailures(ctx context.Context, key string) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.ResetLoginFailures(ctx, key)
}

func (f *FailingStore) SetUserDisabled(ctx context.Context, id int64, d bool, actor string, at time.Time) (bff.User, error) {
	if err := f.write(); err != nil {
		return bff.User{}, err
	}
	return f.Store.SetUserDisabled(ctx, id, d, actor, at)
}

func (f *FailingStore) CreateClient(ctx context.Context, c bff.Client) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.CreateClient(ctx, c)
}

func (f *FailingStore) ListClients(ctx context.Context) ([]bff.Client, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.ListClients(ctx)
}

func (f *FailingStore) FindIdentity(ctx context.Context, provider, subject string) (bff.Identity, error) {
	if err := f.read(); err != nil {
		return bff.Identity{}, err
	}
	return f.Store.FindIdentity(ctx, provider, subject)
}

func (f *FailingStore) ListIdentities(ctx context.Context, userID int64) ([]bff.Identity, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.ListIdentities(ctx, userID)
}

func (f *FailingStore) LinkIdentity(ctx context.Context, id bff.Identity) (bff.Identity, bool, error) {
	if err := f.write(); err != nil {
		return bff.Identity{}, false, err
	}
	return f.Store.LinkIdentity(ctx, id)
}

func (f *FailingStore) UnlinkIdentity(ctx context.Context, userID int64, provider, subject string) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.UnlinkIdentity(ctx, userID, provider, subject)
}

func (f *FailingStore) ClaimIdempotencyKey(ctx context.Context, rec bff.IdempotencyRecord) (bff.IdempotencyRecord, bool, error) {
	if err := f.write(); err != nil {
		return bff.IdempotencyRecord{}, false, err
	}
	return f.Store.ClaimIdempotencyKey(ctx, rec)
}

func (f *FailingStore) FinishIdempotencyKey(ctx context.Context, rec bff.IdempotencyRecord) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.FinishIdempotencyKey(ctx, rec)
}

func (f *FailingStore) ReleaseIdempotencyKey(ctx context.Context, userID int64, key, claimID string) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.ReleaseIdempotencyKey(ctx, userID, key, claimID)
}

func (f *FailingStore) AddUsage(ctx context.Context, counts []bff.UsageCount) error {
	if err := f.write(); err != nil {
		return err
	}
	if f.UsageWrites.Load() {
		return errDown
	}
	return f.Store.AddUsage(ctx, counts)
}

func (f *FailingStore) ListUsage(ctx context.Context, from, to time.Time) ([]bff.UsageCount, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.ListUsage(ctx, from, to)
}

func (f *FailingStore) CountActiveTokens(ctx context.Context, now time.Time) ([]bff.ActiveTokens, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.CountActiveTokens(ctx, now)
}

func (f *FailingStore) CreateAdminSession(ctx context.Context, s bff.AdminSession) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.CreateAdminSession(ctx, s)
}

func (f *FailingStore) GetAdminSession(ctx context.Context, id string, now time.Time) (bff.AdminSession, error) {
	if err := f.read(); err != nil {
		return bff.AdminSession{}, err
	}
	return f.Store.GetAdminSession(ctx, id, now)
}

func (f *FailingStore) DeleteAdminSession(ctx context.Context, id string) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.DeleteAdminSession(ctx, id)
}

func (f *FailingStore) UpdateClient(ctx context.Context, id string, update func(*bff.Client) error) (bff.Client, error) {
	if err := f.write(); err != nil {
		return bff.Client{}, err
	}
	return f.Store.UpdateClient(ctx, id, update)
}

func (f *FailingStore) UseDPoPProof(ctx context.Context, key string, now, expiresAt time.Time) (bool, error) {
	if err := f.write(); err != nil {
		return false, err
	}
	return f.Store.UseDPoPProof(ctx, key, now, expiresAt)
}
