package postgres

import (
	"context"
	"fmt"
	"sync"

	bff "github.com/openedx/mobile-auth-bff"
	"github.com/openedx/mobile-auth-bff/store"
)

// maxGroup bounds how many token writes one transaction commits together.
const maxGroup = 64

// groupWriter commits concurrent token writes together (ADR 29). Each of
// its committers (one per two pool connections) takes the writes waiting
// when it is free (one alone when the service is quiet, so nothing waits
// for company) and applies them in one transaction: one BEGIN, one COMMIT
// and one WAL flush for the lot, instead of one each. A write's caller is
// answered after that commit, so an answer of success means the write is
// durable, as with a transaction of its own. When the group fails before
// its COMMIT (one write's guard refused, a unique violation, a deadlock),
// every write of it is applied again alone, in order, and its caller gets
// that answer: an innocent write never fails for another's, and none is
// answered before a commit holding it succeeded. A failed COMMIT fails the
// whole group with 503 (commit's comment says why).
type groupWriter struct {
	store   *Store
	writes  chan *tokenWrite // unbuffered: a write is only taken by a committer
	stop    chan struct{}
	stopped sync.WaitGroup
}

// tokenWrite is one ApplyTokenOps call waiting for its commit.
type tokenWrite struct {
	// ctx is the caller's, bounded by the store's timeout: a write applied
	// alone is applied within it, so that nothing is retried for a caller
	// that is gone.
	ctx  context.Context
	ops  []store.TokenOp
	done chan error // buffered: the committer never waits for the caller
}

func newGroupWriter(s *Store, committers int) *groupWriter {
	w := &groupWriter{store: s, writes: make(chan *tokenWrite), stop: make(chan struct{})}
	for range max(committers, 1) {
		w.stopped.Go(w.run)
	}
	return w
}

// close stops the committers; writes not yet taken fail.
func (w *groupWriter) close() {
	close(w.stop)
	w.stopped.Wait()
}

// apply hands ops to a committer and waits for its answer, at most the
// store's timeout (BFF_DATABASE_TIMEOUT), as long as a transaction of its
// own could have taken: with the database stuck, a write queued behind
// stuck groups answers 503 in time too. A caller that gives up (its
// context ends, or that timeout) is answered with that; its write may
// still commit, as a write whose commit acknowledgement was lost would.
func (w *groupWriter) apply(ctx context.Context, ops []store.TokenOp) error {
	ctx, cancel := w.store.pool.bound(ctx)
	defer cancel()
	tw := &tokenWrite{ctx: ctx, ops: ops, done: make(chan error, 1)}
	select {
	case w.writes <- tw:
	case <-w.stop:
		return fmt.Errorf("apply token ops: the store is closed: %w", bff.ErrUnavailable)
	case <-ctx.Done():
		return dbErr("apply token ops", ctx.Err())
	}
	select {
	case err := <-tw.done:
		return err
	case <-ctx.Done():
		return dbErr("apply token ops", ctx.Err())
	}
}

func (w *groupWriter) run() {
	for {
		var group []*tokenWrite
		select {
		case tw := <-w.writes:
			group = append(group, tw)
		case <-w.stop:
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case tw := <-w.writes:
				group = append(group, tw)
			default:
				break more
			}
		}
		w.commit(group)
	}
}

// commit applies a group in one transaction, or, when that fails before
// its COMMIT (nothing of it took effect), each of its writes alone. When
// the COMMIT itself fails, whether the group took effect is unknown: every
// write of it gets that error (503), as each would have alone. A group is
// bounded by the store's timeout, not by a caller's context: it is not any
// one caller's. A write applied alone is bounded by its caller's: when a
// group failed because the database is stuck, its callers have given up
// by then, and their writes fail at once instead of each waiting out the
// timeout again.
func (w *groupWriter) commit(group []*tokenWrite) {
	if len(group) > 1 {
		writes := make([][]store.TokenOp, len(group))
		for i, tw := range group {
			writes[i] = tw.ops
		}
		atCommit, err := w.store.applyTokenOps(context.Background(), writes...)
		if err == nil || atCommit {
			for _, tw := range group {
				tw.done <- err
			}
			return
		}
	}
	for _, tw := range group {
		_, err := w.store.applyTokenOps(tw.ctx, tw.ops)
		tw.done <- err
	}
}
