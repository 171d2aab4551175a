package oauth

import (
	"context"
	"errors"
	"testing"
	"time"

	bff "github.com/openedx/mobile-auth-bff"
)

// slotService is a Service with only its hashing slots.
func slotService(slots, queue int, wait time.Duration) *Service {
	s := &Service{hashSlots: make(chan struct{}, slots)}
	s.hashQueue.max, s.hashQueue.wait = int64(queue), wait
	return s
}

// TestPasswordChecksAreBounded: a password check waits for a free hashing
// slot, and gives up with ErrUnavailable when its request ends first, when
// the wait bound passes, or at once when the queue is full.
func TestPasswordChecksAreBounded(t *testing.T) {
	t.Parallel()
	hash, err := HashPassword("right password")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("request ends", func(t *testing.T) {
		t.Parallel()
		s := slotService(1, 1, time.Hour)
		s.hashSlots <- struct{}{} // another check holds the only slot
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := s.checkPassword(ctx, hash, "right password"); !errors.Is(err, bff.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("check without a free slot: %v, want ErrUnavailable", err)
		}
	})

	t.Run("wait bound", func(t *testing.T) {
		t.Parallel()
		s := slotService(1, 1, 20*time.Millisecond)
		s.hashSlots <- struct{}{}
		start := time.Now()
		_, err := s.checkPassword(context.Background(), hash, "right password")
		if !errors.Is(err, bff.ErrUnavailable) {
			t.Fatalf("check without a free slot for longer than the bound: %v, want ErrUnavailable", err)
		}
		if waited := time.Since(start); waited < 20*time.Millisecond {
			t.Errorf("gave up after %s, before the 20ms bound", waited)
		}
		if n := s.hashQueue.waiting.Load(); n != 0 {
			t.Errorf("%d still counted as waiting", n)
		}
	})

	t.Run("queue full", func(t *testing.T) {
		t.Parallel()
		s := slotService(1, 1, time.Hour)
		s.hashSlots <- struct{}{}
		first := make(chan error, 1)
		go func() {
			_, err := s.checkPassword(context.Background(), hash, "wrong")
			first <- err
		}()
		for s.hashQueue.waiting.Load() != 1 {
			time.Sleep(time.Millisecond)
		}
		// One waits already: the next is refused at once, without waiting
		// the hour.
		if _, err := s.checkPassword(context.Background(), hash, "right password"); !errors.Is(err, bff.ErrUnavailable) {
			t.Fatalf("check with a full queue: %v, want ErrUnavailable", err)
		}
		<-s.hashSlots // the slot frees: the waiting check runs
		if err := <-first; err != nil {
			t.Errorf("the waiting check: %v", err)
		}
		if len(s.hashSlots) != 0 || s.hashQueue.waiting.Load() != 0 {
			t.Errorf("slots %d, waiting %d after every check ended", len(s.hashSlots), s.hashQueue.waiting.Load())
		}
	})

	t.Run("free slots", func(t *testing.T) {
		t.Parallel()
		s := slotService(1, 0, time.Hour)
		for _, tc := range []struct {
			hash, pw string
			want     bool
		}{{hash, "right password", true}, {hash, "wrong", false}, {"", "anything", false}} {
			ok, err := s.checkPassword(context.Background(), tc.hash, tc.pw)
			if err != nil || ok != tc.want {
				t.Errorf("checkPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
			}
		}
		if len(s.hashSlots) != 0 {
			t.Error("a check did not give its slot back")
		}
	})
}

// TestPasswordCheckLimitsDefaults: zero limits mean the documented
// defaults; a negative queue means nobody waits.
func TestPasswordCheckLimitsDefaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in                 PasswordCheckLimits
		slots, queue       int
		wait               time.Duration
		defaultSlotsOnHost bool
	}{
		{in: PasswordCheckLimits{}, queue: -1, wait: DefaultPasswordCheckWait, defaultSlotsOnHost: true},
		{in: PasswordCheckLimits{Slots: 3}, slots: 3, queue: 96, wait: DefaultPasswordCheckWait},
		{in: PasswordCheckLimits{Slots: 2, Queue: -1, Wait: time.Second}, slots: 2, queue: 0, wait: time.Second},
		{in: PasswordCheckLimits{Slots: 1, Queue: 5}, slots: 1, queue: 5, wait: DefaultPasswordCheckWait},
	} {
		s, err := NewService(nil, nil, &Secrets{}, nil, Config{AccessTokenTTL: time.Minute, PasswordChecks: tt.in}, nil)
		if err != nil {
			t.Fatal(err)
		}
		slots := cap(s.hashSlots)
		if tt.defaultSlotsOnHost {
			tt.slots, tt.queue = slots, 32*slots
			if slots < 1 {
				t.Errorf("%+v: %d slots", tt.in, slots)
			}
		}
		if slots != tt.slots || s.hashQueue.max != int64(tt.queue) || s.hashQueue.wait != tt.wait {
			t.Errorf("%+v: slots %d queue %d wait %s, want %d %d %s", tt.in, slots, s.hashQueue.max, s.hashQueue.wait, tt.slots, tt.queue, tt.wait)
		}
	}
}

// TestNewPasswordsTakeASlot: hashing a new password (the admin API's and
// the CLI's accounts) waits for a hashing slot like a check, gives up with
// ErrUnavailable, and gives the slot back.
func TestNewPasswordsTakeASlot(t *testing.T) {
	t.Parallel()
	s := slotService(1, 1, 20*time.Millisecond)
	s.hashSlots <- struct{}{} // a check holds the only slot
	if _, err := s.HashPassword(context.Background(), "a new password"); !errors.Is(err, bff.ErrUnavailable) {
		t.Fatalf("hash without a free slot: %v, want ErrUnavailable", err)
	}
	<-s.hashSlots
	hash, err := s.HashPassword(context.Background(), "a new password")
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(hash, "a new password") || CheckPassword(hash, "another") {
		t.Errorf("hash %q does not check as the password it was made of", hash)
	}
	if len(s.hashSlots) != 0 {
		t.Error("the hash did not give its slot back")
	}
}
