package oauth

import (
	"testing"
	"time"
)

// TestHashMemory: the memory of password checks is given back once no
// check has run for the quiet period, and not while one runs.
func TestHashMemory(t *testing.T) {
	freed := make(chan struct{}, 10)
	h := &hashMemory{quiet: 20 * time.Millisecond, free: func() { freed <- struct{}{} }}
	waitFreed := func(what string) {
		t.Helper()
		select {
		case <-freed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the memory was not given back", what)
		}
	}

	h.begin()
	h.end()
	waitFreed("after one check")

	// A check running when the timer fires keeps its memory; its end
	// arms the timer again.
	h.begin()
	h.begin()
	h.end() // one still runs
	h.timer.Reset(0)
	time.Sleep(50 * time.Millisecond)
	select {
	case <-freed:
		t.Fatal("the memory was given back while a check ran")
	default:
	}
	h.end()
	waitFreed("after the last check")

	var none *hashMemory // the zero Service has none: nothing happens
	none.begin()
	none.end()
}

func TestHashMemoryCollectsAfterEachCheck(t *testing.T) {
	var collected int
	h := &hashMemory{quiet: time.Hour, free: func() {}, collect: func() { collected++ }}
	h.begin()
	h.begin()
	h.end() // another check is still in flight: its finished 19 MiB is collected now
	h.end()
	if collected != 2 {
		t.Errorf("collected %d times for 2 checks, want 2", collected)
	}
}
