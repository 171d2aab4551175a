package memory_test

import (
	"testing"

	"github.com/openedx/mobile-auth-bff/store"
	"github.com/openedx/mobile-auth-bff/store/memory"
	"github.com/openedx/mobile-auth-bff/store/storetest"
)

// BenchmarkStore is the in-memory store's hot paths (see storetest.Bench),
// without its cap on tokens: a million issuances measure issuance, not the
// cap.
func BenchmarkStore(b *testing.B) {
	b.Run("store=memory", func(b *testing.B) {
		storetest.Bench(b, func(*testing.B) store.Store { return memory.NewWith(memory.Options{}) })
	})
}
