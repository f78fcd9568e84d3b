package framework

import (
	"context"
	"sync/atomic"
	"time"
)

// missedHeartbeats is how many heartbeat intervals of silence end a
// subscription: Mesos advises reconnecting after about five, since a master
// that is gone or cut off may leave the TCP stream open for minutes.
const missedHeartbeats = 5

// watchdog ends a subscription whose stream has gone silent.
type watchdog struct {
	last atomic.Int64 // unix nanoseconds of the last event
}

// seen records that an event arrived.
func (w *watchdog) seen() { w.last.Store(time.Now().UnixNano()) }

// watch runs for one subscription (ctx is the subscription's): once no event
// has arrived for missedHeartbeats intervals, it calls expire.
func (w *watchdog) watch(ctx context.Context, interval time.Duration, expire func()) {
	if interval <= 0 {
		return
	}
	limit := missedHeartbeats * interval
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if time.Since(time.Unix(0, w.last.Load())) > limit {
				expire()
				return
			}
		}
	}
}
