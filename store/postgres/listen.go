package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ListenerName ends the application_name of the notification connection.
const ListenerName = "change-feed"

// listenPing bounds how long a dead notification connection goes unnoticed
// when the network drops it silently (a killed backend is noticed at once):
// after a second without events the connection is pinged, with a second to
// answer. One tiny query a second per instance is cheap for a bound of ~2 s.
const listenPing = time.Second

// Listen delivers the change events of every instance (NOTIFY on Channel)
// until ctx ends, on a connection of its own. live(true) is called each
// time the subscription is (re-)established, live(false) each time it is
// lost: while it is down, events may be missed, so caches must not be
// trusted, and after it is back anything may have changed.
func (s *Store) Listen(ctx context.Context, event func(string), live func(bool)) {
	const minBackoff = 100 * time.Millisecond
	backoff := minBackoff
	for ctx.Err() == nil {
		wasLive, _ := s.listenOnce(ctx, event, live)
		if ctx.Err() != nil {
			return
		}
		if wasLive {
			live(false)
			backoff = minBackoff
		} else {
			backoff = min(backoff*2, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// listenOnce subscribes and delivers events until the connection fails;
// wasLive tells whether the subscription was established.
func (s *Store) listenOnce(ctx context.Context, event func(string), live func(bool)) (wasLive bool, err error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	// Named so that operators (and tests) can tell it in pg_stat_activity.
	cfg.RuntimeParams["application_name"] = strings.TrimSpace(cfg.RuntimeParams["application_name"] + " " + ListenerName)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		return false, err
	}
	live(true)
	for {
		waitCtx, cancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			event(n.Payload)
		case ctx.Err() != nil:
			return true, nil
		case errors.Is(err, context.DeadlineExceeded) || waitCtx.Err() != nil:
			// Quiet for a while: make sure the connection is still there.
			pingCtx, cancel := context.WithTimeout(ctx, listenPing)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return true, err
			}
		default:
			return true, err
		}
	}
}
