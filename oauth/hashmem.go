package oauth

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// hashMem follows every argon2id hash and check of the process (the
// password grant, the sign-in page, the admin API's user creation).
var hashMem = newHashMemory()

// hashMemoryQuiet is how long no password check may run before their
// memory is given back.
const hashMemoryQuiet = 500 * time.Millisecond

// hashMemory gives the memory of password hashes and checks back to the operating
// system once a burst of them is over. An argon2id check takes 19 MiB,
// which the Go runtime otherwise keeps mapped for minutes: a few logins
// left the process at 60–120 MiB of RSS (issue 14). When the last check in
// flight ends and none begins for quiet, free runs (debug.FreeOSMemory: a
// collection and a scavenge, a few milliseconds on this heap); under
// steady password load it runs at most once per quiet. Under steady load
// every check's end also runs a collection (collect: runtime.GC, about a
// millisecond on a heap of argon2id blocks, which hold no pointers, beside
// the tens of milliseconds of the check), so that the next check reuses
// the finished one's 19 MiB instead of the heap growing to twice the
// checks in flight before the collector runs: peak RSS under 50
// concurrent logins 142.5 → 87.7 MiB, 56 → 58 req/s. A nil *hashMemory does
// nothing.
type hashMemory struct {
	inFlight atomic.Int64
	quiet    time.Duration
	free     func()
	collect  func()

	mu    sync.Mutex
	timer *time.Timer
}

func newHashMemory() *hashMemory {
	return &hashMemory{quiet: hashMemoryQuiet, free: debug.FreeOSMemory, collect: runtime.GC}
}

// begin is called as a check starts.
func (h *hashMemory) begin() {
	if h != nil {
		h.inFlight.Add(1)
	}
}

// end is called as a check ends; the last one in flight arms the timer.
func (h *hashMemory) end() {
	if h == nil {
		return
	}
	if h.collect != nil {
		h.collect()
	}
	if h.inFlight.Add(-1) != 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timer == nil {
		h.timer = time.AfterFunc(h.quiet, h.fire)
		return
	}
	h.timer.Reset(h.quiet)
}

func (h *hashMemory) fire() {
	if h.inFlight.Load() == 0 {
		h.free()
	}
}
